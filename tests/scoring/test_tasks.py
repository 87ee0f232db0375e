"""Batch scoring writes the task's columns: a multiclass model's probability per class and its
label, a regression's value; the same numbers as the model in process. On bundles fitted on the
shipped task examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.bundle import load_bundle
from core.columns import LABEL, MODEL_VERSION, SCORE
from core.config import Config, TaskType
from core.data import read_table
from core.frames import feature_frame
from core.task import class_column, model_scores, output_columns
from scoring.stream import score_file


def test_the_output_columns_follow_the_task(
    task_bundle: tuple[Config, Path], tmp_path: Path
) -> None:
    config, folder = task_bundle
    target = config.contract.target
    frame = read_table(config.data_path).head(500)
    source = tmp_path / "input.csv"
    frame.to_csv(source, index=False)
    bundle = load_bundle(folder)
    output = tmp_path / "scores.parquet"
    summary = score_file(source, output, bundle, config, chunk_rows=200)
    scored = pd.read_parquet(output)
    assert len(scored) == 500 and summary is not None
    names = [name for name, _ in output_columns(target)]
    assert list(scored.columns) == [*config.contract.id_columns, *names, MODEL_VERSION]
    want = model_scores(bundle.pipeline, feature_frame(frame, config.contract), target)
    if target.type is TaskType.multiclass:
        by_class = scored[[class_column(c) for c in target.classes]].to_numpy()
        np.testing.assert_allclose(by_class, want, atol=1e-12)
        assert scored[LABEL].tolist() == [target.classes[i] for i in want.argmax(axis=1)]
        np.testing.assert_allclose(scored[SCORE], want.max(axis=1), atol=1e-12)
    else:
        assert LABEL not in scored.columns
        np.testing.assert_allclose(scored[SCORE], want, atol=1e-12)
