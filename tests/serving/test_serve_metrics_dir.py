"""The metrics folder `python -m serving.serve` gives several workers: new, private and empty for
each run; earlier runs' folders go once their processes are gone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serving.metrics import MULTIPROC_ENV
from serving.serve import metrics_dir


def test_one_worker_uses_no_folder_even_when_one_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    assert metrics_dir(1, 8000) is None
    assert MULTIPROC_ENV not in os.environ  # the worker keeps its own registry
    assert list(tmp_path.iterdir()) == []


def test_each_run_gets_a_new_private_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    first = Path(metrics_dir(2, 8000) or "")
    (first / f"counter_{os.getpid()}.db").write_bytes(b"a running service's counts")
    second = Path(metrics_dir(2, 8000) or "")
    assert first != second and first.parent == second.parent == tmp_path
    assert list(second.iterdir()) == []
    assert (second.stat().st_mode & 0o777) == 0o700
    # The first folder belongs to a live process (this one): left alone.
    assert (first / f"counter_{os.getpid()}.db").read_bytes() == b"a running service's counts"


def test_folders_of_finished_runs_on_the_port_are_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    done = tmp_path / "serving-metrics-8000-old"
    done.mkdir()
    (done / "counter_999999999.db").write_bytes(b"x")  # no such pid
    other_port = tmp_path / "serving-metrics-9000-old"
    other_port.mkdir()
    (other_port / "counter_999999999.db").write_bytes(b"x")
    metrics_dir(2, 8000)
    assert not done.exists() and other_port.exists()
