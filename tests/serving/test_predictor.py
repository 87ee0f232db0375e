"""The served scoring paths against the sklearn pipeline, the probe check, and micro-batching."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.bundle import MANIFEST_FILE, load_bundle, read_metadata, write_bundle
from core.compiled import ARRAYS_FILE, COMPILED_FILE, PROBES_FILE
from core.config import Config, load_config
from core.data import read_table
from core.errors import BundleIntegrityError
from core.frames import feature_frame, target_vector
from core.io import sha256_file
from serving.predictor import MicroBatcher, Predictor, load_predictor
from tests.conftest import CREDIT_CONFIG
from tests.serving.conftest import request_records
from training.compile import model_files
from training.model import build_pipeline


def served(path: Path, config: Config) -> Predictor:
    return load_predictor(path, read_metadata(path), config.contract)[1]


def reseal(bundle: Path) -> None:
    """Recompute the manifest after an edit: what someone who changes a bundle on purpose does."""
    files = {p.name: sha256_file(p) for p in sorted(bundle.iterdir()) if p.name != MANIFEST_FILE}
    (bundle / MANIFEST_FILE).write_text(json.dumps({"algorithm": "sha256", "files": files}))


def test_compiled_path_matches_sklearn_on_the_whole_default_data(
    trained_bundle: Path, config: Config, default_frame: pd.DataFrame
) -> None:
    predictor = served(trained_bundle, config)
    assert predictor.mode == "compiled" and predictor.parity_error is not None
    assert predictor.parity_error <= 1e-12
    recs = request_records(default_frame, config.contract, len(default_frame))
    pipeline = load_bundle(trained_bundle).pipeline
    expected = pipeline.predict_proba(feature_frame(default_frame, config.contract))[:, 1]
    np.testing.assert_allclose(predictor(recs), expected, rtol=0, atol=1e-12)
    # one record at a time takes the same path as a batch
    for i in (0, 488, 7042):  # 488 has a missing total_charges
        assert predictor([recs[i]])[0] == pytest.approx(expected[i], abs=1e-12)


def test_unseen_category_scores_like_sklearn(
    trained_bundle: Path, config: Config, records: list[dict[str, Any]]
) -> None:
    # OneHotEncoder(handle_unknown="ignore"): a category the contract allows but training never saw
    rec = {**records[0], "contract": "Never seen"}
    pipeline = load_bundle(trained_bundle).pipeline
    frame = feature_frame(pd.DataFrame([rec]), config.contract)
    reference = pipeline.predict_proba(frame)[0, 1]
    assert served(trained_bundle, config)([rec])[0] == pytest.approx(reference, abs=1e-12)


@pytest.mark.slow
def test_a_model_that_does_not_compile_is_served_by_sklearn_through_skops(
    tmp_path: Path,
) -> None:
    # HistGradientBoosting (the second data set's model) has no compiled form: the skops model
    # serves it, checked against the same probes.
    credit = load_config(CREDIT_CONFIG)
    frame = read_table(credit.data_path)
    pipeline = build_pipeline(credit).fit(
        feature_frame(frame, credit.contract), target_vector(frame, credit.contract)
    )
    files = model_files(pipeline, credit.contract)
    assert COMPILED_FILE not in files and PROBES_FILE in files
    meta = {"threshold": 0.5, "contract": credit.contract.model_dump(mode="json")}
    bundle = write_bundle(tmp_path / "b", pipeline, meta, files)
    predictor = served(bundle, credit)
    assert predictor.mode == "sklearn" and predictor.parity_error == 0.0
    recs = request_records(frame, credit.contract, 500)
    expected = pipeline.predict_proba(feature_frame(frame.head(500), credit.contract))[:, 1]
    np.testing.assert_allclose(predictor(recs), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("edit", ["coefficient", "probe score", "probe label"])
def test_an_edited_compiled_form_or_probe_file_is_refused(
    tmp_path: Path, trained_bundle: Path, config: Config, edit: str
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    if edit == "coefficient":
        with np.load(bundle / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["coef"][0] += 1e-6
        np.savez(bundle / ARRAYS_FILE, allow_pickle=False, **arrays)
    else:
        probes = json.loads((bundle / PROBES_FILE).read_text())
        if edit == "probe score":
            probes["scores"][3] += 1e-8
        else:  # a bare pipeline carries no labels: give it some that disagree
            probes["threshold"], probes["positive"] = 0.5, [False] * len(probes["scores"])
        (bundle / PROBES_FILE).write_text(json.dumps(probes))
    reseal(bundle)
    with pytest.raises(BundleIntegrityError, match=r"was changed"):
        served(bundle, config)


def test_a_compiled_form_that_would_unpickle_is_refused(
    tmp_path: Path, trained_bundle: Path, config: Config
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    np.savez(bundle / ARRAYS_FILE, coef=np.array([{"a": 1}], dtype=object))
    reseal(bundle)
    with pytest.raises(BundleIntegrityError, match=r"cannot be read"):
        served(bundle, config)


def test_micro_batcher_scores_concurrent_requests_together(records: list[dict[str, Any]]) -> None:
    calls: list[int] = []

    def score(batch: Any) -> np.ndarray:
        calls.append(len(batch))
        return np.array([float(r["tenure"]) for r in batch])

    async def run() -> list[float]:
        batcher = MicroBatcher(score, max_batch=16)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.score(r) for r in records[:40]))
        finally:
            await batcher.stop()

    results = asyncio.run(run())
    assert results == [float(r["tenure"]) for r in records[:40]]
    assert sum(calls) == 40 and max(calls) == 16 and len(calls) == 3


def test_a_scoring_failure_fails_its_requests_not_the_batcher(
    records: list[dict[str, Any]],
) -> None:
    def score(batch: Any) -> np.ndarray:
        if any(r.get("boom") for r in batch):
            raise ValueError("bad")
        return np.zeros(len(batch))

    async def run() -> tuple[BaseException | float, float]:
        batcher = MicroBatcher(score, offload=True)
        batcher.start()
        try:
            first = await asyncio.gather(batcher.score({"boom": 1}), return_exceptions=True)
            return first[0], await batcher.score({"boom": 0})
        finally:
            await batcher.stop()

    failed, ok = asyncio.run(run())
    assert isinstance(failed, ValueError) and ok == 0.0
