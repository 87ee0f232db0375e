"""core/io.py: atomic writes of files and folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.io import atomic_dir, atomic_write_text


def test_atomic_dir_replaces_the_folder_whole(tmp_path: Path) -> None:
    target = tmp_path / "out"
    atomic_write_text(target / "old.txt", "old")
    with atomic_dir(target) as staging:
        (staging / "new.txt").write_text("new")
        assert (target / "old.txt").is_file()  # readers see the old folder until the swap
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging or old folder left


def test_atomic_dir_keeps_the_old_folder_on_an_error(tmp_path: Path) -> None:
    target = tmp_path / "out"
    atomic_write_text(target / "old.txt", "old")
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("build failed")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
