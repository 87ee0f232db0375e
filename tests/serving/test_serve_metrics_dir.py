"""The metrics folder `python -m serving.serve` gives several workers: emptied of
prometheus_client's files only, never a link or someone else's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import ConfigError
from serving.metrics import MULTIPROC_ENV
from serving.serve import metrics_dir


def test_one_worker_needs_no_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "unused"))
    assert metrics_dir(1, 8000) is None
    assert not (tmp_path / "unused").exists()


def test_given_folder_is_emptied_of_an_earlier_runs_counts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    for name in ["counter_12.db", "histogram_12.db", "gauge_livesum_12.db", "notes.txt"]:
        (folder / name).write_bytes(b"x")
    monkeypatch.setenv(MULTIPROC_ENV, str(folder))
    assert metrics_dir(2, 8000) == str(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_a_folder_with_other_databases_is_refused_untouched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # prometheus_client would read predictions.db at every scrape and /metrics would fail.
    (tmp_path / "predictions.db").write_bytes(b"the prediction log")
    (tmp_path / "counter_12.db").write_bytes(b"x")
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=r"predictions\.db"):
        metrics_dir(2, 8000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_12.db", "predictions.db"]


def test_default_folder_is_per_user_and_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    folder = Path(metrics_dir(2, 8123) or "")
    assert folder == tmp_path / f"serving-metrics-{os.getuid()}-8123"
    assert folder.is_dir() and (folder.stat().st_mode & 0o777) == 0o700


def test_a_link_in_place_of_the_folder_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "counter_1.db").write_bytes(b"someone else's file")
    link = tmp_path / "metrics"
    link.symlink_to(victim)
    monkeypatch.setenv(MULTIPROC_ENV, str(link))
    with pytest.raises(ConfigError, match="link"):
        metrics_dir(2, 8000)
    assert (victim / "counter_1.db").read_bytes() == b"someone else's file"
