"""Streamed scoring: same probabilities as in-process predict_proba, rejects kept, atomic output."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.bundle import MODEL_FILE, bundle_digest, load_bundle
from core.config import Config, FeatureType, load_config
from core.frames import feature_frame
from scoring import score
from scoring.stream import AtomicParquet, rejects_path, score_file
from tests.conftest import CHURN_CONFIG, CONFIGS, ROOT


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `scoring.score` on the churn fixture config (the bundle's), not the root one.

    The bundle's digest is passed as the anchor `make package` would have recorded.
    """
    anchor = []
    if "--bundle" in args and (bundle := Path(args[args.index("--bundle") + 1])).is_dir():
        anchor = ["--expected-digest", bundle_digest(bundle)]
    code = score.main(["--config", str(CHURN_CONFIG), *args, *anchor])
    out, err = capsys.readouterr()
    return code, out, err


def expected_scores(frame: pd.DataFrame, bundle_dir: Path, config: Config) -> np.ndarray:
    pipeline = load_bundle(bundle_dir).pipeline
    return pipeline.predict_proba(feature_frame(frame, config.contract))[:, 1]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_streamed_scores_match_predict_proba_in_small_chunks(
    fmt: str,
    tmp_path: Path,
    trained_bundle: Path,
    config: Config,
    default_frame: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        source.write_bytes(config.data_path.read_bytes())
    else:
        default_frame.to_parquet(source, index=False)
    out = tmp_path / "scores.parquet"
    args = ["--input", str(source), "--output", str(out), "--bundle", str(trained_bundle)]
    code, stdout, err = run([*args, "--chunk-rows", "1000"], capsys)
    assert code == 0, err
    scored = pd.read_parquet(out)
    assert len(scored) == len(default_frame)
    want = expected_scores(default_frame, trained_bundle, config)
    id_col = config.contract.id_columns[0]
    assert (scored[id_col].to_numpy() == default_frame[id_col].to_numpy()).all()
    np.testing.assert_allclose(scored["score"].to_numpy(), want, rtol=0, atol=1e-9)
    t = config.contract.target
    assert set(scored["label"]) <= {t.positive, t.negative}
    assert (scored["label"] == t.positive).to_numpy().tolist() == (want >= 0.5).tolist()
    assert (scored["model_version"] == "0").all()
    assert len(pd.read_parquet(rejects_path(out))) == 0
    # Progress: one line per chunk (at least 7 for 7,043 rows at 1,000 per chunk).
    assert stdout.count("rows/s") >= 7


def test_bad_rows_go_to_the_rejects_file_with_their_reason(
    tmp_path: Path, trained_bundle: Path, config: Config, default_frame: pd.DataFrame
) -> None:
    numeric = next(f for f in config.contract.of_type(FeatureType.numeric) if f.max is not None)
    label = config.contract.of_type(FeatureType.categorical)[0].name
    frame = default_frame.copy()
    frame[label] = frame[label].astype(object)
    frame.loc[3, numeric.name] = numeric.max + 1000
    frame.loc[5, label] = "Never seen"
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    out = tmp_path / "scores.parquet"
    summary = score_file(source, out, load_bundle(trained_bundle), config, chunk_rows=2000)
    assert (summary.rows, summary.rejected, summary.scored) == (len(frame), 2, len(frame) - 2)
    rejects = pd.read_parquet(rejects_path(out))
    assert rejects["row"].tolist() == [3, 5]
    assert numeric.name in rejects["reject_reason"][0] and "outside" in rejects["reject_reason"][0]
    assert label in rejects["reject_reason"][1] and "Never seen" in rejects["reject_reason"][1]
    id_col = config.contract.id_columns[0]
    scored = pd.read_parquet(out)
    assert not set(scored[id_col]) & set(frame.loc[[3, 5], id_col])
    keep = frame.drop(index=[3, 5])
    want = expected_scores(keep, trained_bundle, config)
    np.testing.assert_allclose(scored["score"].to_numpy(), want, rtol=0, atol=1e-9)


def _score_err(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, _, err = run(args, capsys)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return code, lines[0]


def test_bad_inputs_are_one_line_and_non_zero(
    tmp_path: Path,
    trained_bundle: Path,
    config: Config,
    default_frame: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "scores.parquet"
    base = ["--output", str(out), "--bundle", str(trained_bundle)]
    numeric = config.contract.of_type(FeatureType.numeric)[0].name
    cases: dict[str, tuple[pd.DataFrame | bytes, list[str]]] = {
        "unknown.csv": (default_frame.assign(notes="x"), ["notes", "not in the contract"]),
        "missing.csv": (default_frame.drop(columns=[numeric]), ["missing feature column", numeric]),
        "wrong_type.csv": (
            default_frame.astype({numeric: object}).assign(**{numeric: "abc"}),
            [f"column {numeric}", "abc"],
        ),
        "empty.csv": (b"", ["empty"]),
        "header.csv": (",".join(default_frame.columns).encode() + b"\n", ["no data rows"]),
    }
    for name, (content, fragments) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content.to_csv(path, index=False)
        code, line = _score_err(["--input", str(path), *base], capsys)
        assert code == 3, (name, line)
        for fragment in fragments:
            assert fragment in line, (name, fragment, line)
        assert not out.exists() and not list(tmp_path.glob(".scores*")), name
    # A folder whose files disagree on the columns.
    folder = tmp_path / "mixed"
    folder.mkdir()
    default_frame.head(100).to_parquet(folder / "a.parquet", index=False)
    default_frame.head(100).drop(columns=[numeric]).to_parquet(folder / "b.parquet", index=False)
    code, line = _score_err(["--input", str(folder), *base], capsys)
    assert code == 3 and "one schema" in line and numeric in line
    # Not found.
    code, line = _score_err(["--input", str(tmp_path / "nope.csv"), *base], capsys)
    assert code == 3 and "not found" in line


def test_existing_output_is_refused_unless_overwrite(
    tmp_path: Path,
    trained_bundle: Path,
    config: Config,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"precious")
    args = ["--input", str(config.data_path), "--output", str(out), "--bundle", str(trained_bundle)]
    code, line = _score_err(args, capsys)
    assert code == 3 and "exists" in line and "OVERWRITE=1" in line
    assert out.read_bytes() == b"precious"
    assert run([*args, "--overwrite"], capsys)[0] == 0
    assert len(pd.read_parquet(out)) > 0


def test_tampered_bundle_is_refused(
    tmp_path: Path, trained_bundle: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    with (bundle / MODEL_FILE).open("ab") as fh:
        fh.write(b"\0")
    out = tmp_path / "scores.parquet"
    code, line = _score_err(
        ["--input", str(config.data_path), "--output", str(out), "--bundle", str(bundle)], capsys
    )
    assert code == 5 and MODEL_FILE in line
    assert not out.exists()


def test_interrupted_run_leaves_nothing_under_the_final_name(tmp_path: Path) -> None:
    target = tmp_path / "scores.parquet"
    writer = AtomicParquet(target)
    writer.write(pd.DataFrame({"score": [0.1, 0.2]}))
    assert not target.exists()
    writer.abort()
    assert not target.exists() and not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.e2e
def test_make_score_on_the_second_dataset(tmp_path: Path) -> None:
    """Credit data, a credit bundle built with build_pipeline from its config: config only."""
    from core.bundle import write_bundle
    from core.data import read_table
    from core.frames import target_vector
    from training.model import build_pipeline

    credit = load_config(CONFIGS["credit"])
    frame = read_table(credit.data_path)
    pipeline = build_pipeline(credit).fit(
        feature_frame(frame, credit.contract), target_vector(frame, credit.contract)
    )
    bundle = write_bundle(
        tmp_path / "bundle", pipeline, {"model_version": "7", "threshold": 0.3, "contract": {}}
    )
    out = tmp_path / "credit_scores.parquet"
    proc = subprocess.run(
        [
            "make",
            "score",
            f"CONFIG={CONFIGS['credit'].relative_to(ROOT)}",
            f"INPUT={credit.data_path}",
            f"OUTPUT={out}",
        ],
        cwd=ROOT,
        env={**os.environ, "MODEL_BUNDLE": str(bundle)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    scored = pd.read_parquet(out)
    rejects = pd.read_parquet(rejects_path(out))
    assert len(scored) + len(rejects) == len(frame)
    assert (scored["model_version"] == "7").all()
    good = frame[frame[credit.contract.id_columns[0]].isin(scored[credit.contract.id_columns[0]])]
    want = pipeline.predict_proba(feature_frame(good, credit.contract))[:, 1]
    np.testing.assert_allclose(scored["score"].to_numpy(), want, rtol=0, atol=1e-9)
