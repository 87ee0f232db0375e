"""Statistics of the drift check: known values from scipy and by hand, BH, sample-size rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.columns import REFERENCE_LABEL, REFERENCE_SCORE
from core.config import Config, Drift, FeatureType, load_config
from core.data import read_table
from core.frames import feature_frame
from core.metrics import bootstrap_standard_error
from tests.conftest import CONFIGS
from tools.scenarios import generate
from validation.drift import (
    auc_standard_error,
    benjamini_hochberg,
    binned_counts,
    chi2_test,
    compare_levels,
    detect_drift,
    ks_test,
    level_counts,
    live_metrics,
    psi,
    psi_noise,
    quantile_edges,
)

CFG = Drift()


def test_psi_is_zero_for_identical_histograms_and_matches_a_hand_computed_case() -> None:
    assert psi(np.array([3, 5, 2]), np.array([30, 50, 20])) == pytest.approx(0.0)
    # shares (0.5, 0.5) -> (0.25, 0.75): 0.25 ln 2 + 0.25 ln 1.5
    assert psi(np.array([1, 1]), np.array([1, 3])) == pytest.approx(
        0.25 * math.log(2) + 0.25 * math.log(1.5)
    )


def test_psi_floors_empty_bins_at_epsilon_without_renormalising() -> None:
    eps = 1e-4
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) * 2 + (0.2 - eps) * math.log(0.2 / eps)
    assert psi(np.array([5, 5, 0]), np.array([4, 4, 2]), eps) == pytest.approx(expected)
    assert expected == pytest.approx(1.564, abs=1e-3)


def test_psi_is_symmetric_and_refuses_mismatched_or_empty_bins() -> None:
    a, b = np.array([10, 20, 70]), np.array([30, 30, 40])
    assert psi(a, b) == pytest.approx(psi(b, a))
    with pytest.raises(ValueError, match="bins differ"):
        psi(np.array([1, 2]), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="at least one count"):
        psi(np.array([0, 0]), np.array([1, 2]))


def test_ks_matches_the_exact_value_for_separated_samples() -> None:
    statistic, p = ks_test(np.arange(1.0, 6.0), np.arange(6.0, 11.0))
    assert statistic == 1.0
    assert p == pytest.approx(2 / math.comb(10, 5))


def test_chi2_matches_the_two_proportion_z_test() -> None:
    statistic, p = chi2_test(np.array([10, 20]), np.array([20, 10]))
    assert statistic == pytest.approx(20 / 3)
    assert p == pytest.approx(stats.chi2.sf(20 / 3, 1))
    z = (10 / 30 - 20 / 30) / math.sqrt(0.5 * 0.5 * (2 / 30))
    assert p == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_chi2_with_one_level_cannot_differ() -> None:
    assert chi2_test(np.array([40, 0]), np.array([12, 0])) == (0.0, 1.0)


def test_unseen_categories_and_nulls_are_their_own_levels() -> None:
    ref = pd.Series(["a"] * 300 + ["b"] * 300, dtype=object)
    cur = pd.Series(["a"] * 200 + ["b"] * 200 + ["new"] * 100 + [np.nan] * 100, dtype=object)
    levels, r, c = level_counts(ref, cur)
    assert levels == ["a", "b", "new", "(missing)"]
    assert r.tolist() == [300, 300, 0, 0]
    assert c.tolist() == [200, 200, 100, 100]

    result = compare_levels("x", FeatureType.categorical, ref, cur, CFG)
    assert result.unseen == ["new"]
    assert result.p_value is not None and result.p_value < 1e-10
    assert result.psi is not None and result.psi > 1


def test_quantile_edges_merge_ties_and_nan_has_its_own_bin() -> None:
    ref = np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, 4], dtype=float)
    edges = quantile_edges(ref, 10)
    assert len(edges) == len(np.unique(edges)) < 9
    counts = binned_counts(np.array([0.0, 5.0, np.nan, np.nan]), edges)
    assert counts[-1] == 2 and counts.sum() == 4


def test_benjamini_hochberg_matches_the_textbook_steps_and_skips_untested() -> None:
    adjusted = benjamini_hochberg([0.01, 0.04, None, 0.03, 0.005])
    assert adjusted[2] is None
    assert adjusted == pytest.approx([0.02, 0.04, None, 0.04, 0.02])
    assert benjamini_hochberg([None, None]) == [None, None]


def _sample(frame: pd.DataFrame, config: Config, n: int, seed: int) -> pd.DataFrame:
    rows = frame.sample(n, random_state=seed, replace=n > len(frame)).reset_index(drop=True)
    out = feature_frame(rows, config.contract)
    out[REFERENCE_SCORE] = np.random.default_rng(seed).beta(2, 5, size=n)
    return out


def test_no_drift_between_halves_and_drift_after_a_shift(
    config: Config, default_frame: pd.DataFrame
) -> None:
    shuffled = default_frame.sample(frac=1, random_state=3).reset_index(drop=True)
    half = len(shuffled) // 2
    reference = _sample(shuffled.iloc[:half], config, half, 1)
    current = _sample(shuffled.iloc[half:], config, 1000, 2)
    calm = detect_drift(reference, current, config.contract, config.drift)
    assert calm.verdict == "no drift", calm.reasons
    numeric = config.contract.of_type(FeatureType.numeric)[0].name
    shifted = current.copy()
    shifted[numeric] = shifted[numeric] + shifted[numeric].std()
    result = detect_drift(reference, shifted, config.contract, config.drift)
    assert result.verdict == "drift"
    assert [f.name for f in result.features if f.drifted] == [numeric]
    assert result.to_dict()["drifted"] is True


def test_each_type_gets_its_test(config: Config, default_frame: pd.DataFrame) -> None:
    data = _sample(default_frame, config, 600, 4)
    result = detect_drift(data, data, config.contract, config.drift)
    tests = {f.name: f.test for f in result.features}
    for feature in config.contract.features:
        assert tests[feature.name] == ("ks" if feature.type.value == "numeric" else "chi2")
    assert result.score is not None and result.score.test == "ks"


def test_small_windows_say_not_enough_data(config: Config, default_frame: pd.DataFrame) -> None:
    reference = _sample(default_frame, config, 2000, 5)
    current = _sample(default_frame, config, config.drift.min_samples - 1, 6)
    result = detect_drift(reference, current, config.contract, config.drift)
    assert result.verdict == "not enough data"
    assert not result.drifted and not result.features


def test_a_mostly_null_feature_is_not_tested(config: Config, default_frame: pd.DataFrame) -> None:
    reference = _sample(default_frame, config, 2000, 7)
    current = _sample(default_frame, config, 400, 8)
    nullable = next(f.name for f in config.contract.features if f.nullable)
    current.loc[current.index[:300], nullable] = np.nan
    result = detect_drift(reference, current, config.contract, config.drift)
    row = next(f for f in result.features if f.name == nullable)
    assert row.status == "not enough data" and row.q_value is None
    assert row.null_share_current == pytest.approx(0.75, abs=0.01)


def test_live_metrics_drop_when_labels_flip(config: Config, default_frame: pd.DataFrame) -> None:
    reference = _sample(default_frame, config, 2000, 9)
    current = _sample(default_frame, config, 500, 10)
    rng = np.random.default_rng(0)
    labels = rng.random(500) < current[REFERENCE_SCORE]  # calibrated: AUC well above 0.5
    current[REFERENCE_LABEL] = labels.astype(float)
    good = detect_drift(
        reference, current, config.contract, config.drift, training_metrics={"roc_auc": 0.70}
    )
    assert good.performance is not None and good.performance.status == "ok"
    current[REFERENCE_LABEL] = 1.0 - current[REFERENCE_LABEL]
    bad = detect_drift(
        reference, current, config.contract, config.drift, training_metrics={"roc_auc": 0.70}
    )
    assert bad.performance is not None and bad.performance.status == "drift"
    assert bad.verdict == "drift" and "roc_auc" in bad.reasons[0]
    few = current.copy()
    few.loc[few.index[50:], REFERENCE_LABEL] = np.nan
    some = detect_drift(
        reference, few, config.contract, config.drift, training_metrics={"roc_auc": 0.70}
    )
    assert some.performance is not None and some.performance.status == "not enough data"


def test_validation_failures_above_the_limit_are_a_reason(
    config: Config, default_frame: pd.DataFrame
) -> None:
    data = _sample(default_frame, config, 600, 11)
    name = config.contract.feature_names[0]
    result = detect_drift(
        data, data, config.contract, config.drift, invalid_share={name: 0.2, "other": 0.0}
    )
    assert result.verdict == "drift" and result.invalid_columns == [name]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_shipped_config_compares_without_names_in_code(name: str) -> None:
    config = load_config(CONFIGS[name])
    frame = read_table(config.data_path).sample(frac=1, random_state=0).reset_index(drop=True)
    half = len(frame) // 2
    reference = _sample(frame.iloc[:half], config, half, 1)
    current = _sample(frame.iloc[half:], config, len(frame) - half, 2)
    result = detect_drift(reference, current, config.contract, config.drift)
    assert result.verdict == "no drift", result.reasons
    # One comparison per feature, two for a text (its length and its vocabulary).
    assert [f.name.split(": ")[0] for f in result.features] == [
        f.name for f in config.contract.features for _ in range(2 if f.type.value == "text" else 1)
    ]
    moved = generate(frame.iloc[half:], config.contract, "covariate", 1000, seed=3)
    shifted = feature_frame(moved.rows, config.contract)
    shifted[REFERENCE_SCORE] = current[REFERENCE_SCORE].to_numpy()[:1000]
    drifted = detect_drift(reference, shifted, config.contract, config.drift)
    assert {f.name.split(": ")[0] for f in drifted.features if f.drifted} <= set(moved.changed)
    assert drifted.verdict == "drift"


def test_a_live_metric_drop_must_be_significant_and_large(
    config: Config, default_frame: pd.DataFrame
) -> None:
    reference = _sample(default_frame, config, 2000, 12)
    current = _sample(default_frame, config, 1000, 13)
    current[REFERENCE_LABEL] = (
        np.random.default_rng(1).random(1000) < current[REFERENCE_SCORE]
    ).astype(float)
    small = current.copy()
    small.loc[small.index[150:], REFERENCE_LABEL] = np.nan
    live = {
        n: live_metrics(
            f[REFERENCE_LABEL].dropna().to_numpy(int),
            f.loc[f[REFERENCE_LABEL].notna(), REFERENCE_SCORE].to_numpy(),
            0.5,
        )["roc_auc"]
        for n, f in (("small", small), ("big", current))
    }
    noisy = detect_drift(
        reference,
        small,
        config.contract,
        config.drift,
        training_metrics={"roc_auc": live["small"] + 0.06},
    )
    assert noisy.performance is not None and noisy.performance.drop == pytest.approx(0.06)
    assert noisy.performance.standard_error is not None and noisy.performance.standard_error > 0.03
    assert noisy.performance.status == "ok" and noisy.verdict == "no drift"
    clear = detect_drift(
        reference,
        current,
        config.contract,
        config.drift,
        training_metrics={"roc_auc": live["big"] + 0.15},
    )
    assert clear.performance is not None and clear.performance.q_value is not None
    assert clear.performance.q_value < 0.05 and clear.performance.status == "drift"
    within = detect_drift(
        reference,
        current,
        config.contract,
        config.drift,
        training_metrics={"roc_auc": live["big"] + 0.03},
    )
    assert (
        within.performance is not None and within.performance.status == "ok"
    )  # below max_metric_drop


def test_delong_standard_error_agrees_with_the_bootstrap_and_a_closed_form() -> None:
    rng = np.random.default_rng(5)
    labels = (rng.random(800) < 0.3).astype(int)
    scores = rng.normal(labels * 1.0, 1.0)
    delong = auc_standard_error(labels, scores)
    assert delong == pytest.approx(
        bootstrap_standard_error("roc_auc", labels, scores, 0.5), rel=0.15
    )
    # Perfect separation: every placement value is 1 (or 0), so the variance is zero.
    assert auc_standard_error(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert auc_standard_error(np.array([0, 1]), np.array([0.1, 0.9])) == math.inf


def test_psi_noise_is_the_mean_psi_of_two_samples_of_one_distribution() -> None:
    assert psi_noise(np.array([300] * 10), np.array([50] * 10)) == pytest.approx(
        9 * (1 / 3000 + 1 / 500)
    )
    assert psi_noise(np.array([5, 0]), np.array([3, 0])) == 0.0  # one bin holds everything
    rng = np.random.default_rng(11)
    edges = quantile_edges(rng.normal(size=3000), 10)
    observed = [
        psi(
            binned_counts(rng.normal(size=3000), edges),
            binned_counts(rng.normal(size=500), edges),
        )
        for _ in range(300)
    ]
    noise = psi_noise(
        binned_counts(rng.normal(size=3000), edges), binned_counts(rng.normal(size=500), edges)
    )
    assert np.mean(observed) == pytest.approx(noise, rel=0.15)


def test_a_text_in_new_words_drifts_by_vocabulary_and_reports_its_unseen_tokens() -> None:
    config = load_config(CONFIGS["reviews"])
    text = config.contract.of_type(FeatureType.text)[0].name
    frame = read_table(config.data_path).sample(frac=1, random_state=4).reset_index(drop=True)
    reference = feature_frame(frame.iloc[:2000], config.contract)
    current = feature_frame(frame.iloc[2000:2600], config.contract)
    # Same lengths, other words: each word's first letter moved to its end.
    current[text] = current[text].str.replace(r"(?u)\b(\w)(\w+)\b", r"\2\1", regex=True)
    result = detect_drift(reference, current, config.contract, config.drift)
    by_name = {f.name: f for f in result.features}
    vocabulary = by_name[f"{text}: vocabulary"]
    assert vocabulary.drifted and vocabulary.unseen_share is not None
    assert vocabulary.unseen_share > 0.5 and vocabulary.unseen
    assert by_name[f"{text}: length"].status == "ok"
    assert result.verdict == "drift"
