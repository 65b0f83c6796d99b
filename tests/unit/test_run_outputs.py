"""Which files a run created or changed in its working directory."""

from __future__ import annotations

import os
from pathlib import Path

from labkeep.runner._outputs import changed_files, scan_tree


def test_new_and_changed_files_are_found(tmp_path: Path) -> None:
    (tmp_path / "same.txt").write_text("a")
    (tmp_path / "model.pkl").write_text("v1")
    (tmp_path / "sub").mkdir()
    before = scan_tree(tmp_path)
    (tmp_path / "model.pkl").write_text("version 2")
    (tmp_path / "sub" / "plot.png").write_bytes(b"png")
    assert changed_files(before, scan_tree(tmp_path)) == ["model.pkl", "sub/plot.png"]


def test_same_size_rewrite_is_found_by_mtime(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    path.write_text("v1")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = scan_tree(tmp_path)
    path.write_text("v2")
    assert changed_files(before, scan_tree(tmp_path)) == ["m.bin"]


def test_vcs_caches_venvs_and_skipped_dirs_are_ignored(tmp_path: Path) -> None:
    for name in (".git", "__pycache__", ".labkeep", "env", "store"):
        (tmp_path / name).mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr")
    before = scan_tree(tmp_path, skip=[tmp_path / "store"])
    for name in (".git", "__pycache__", ".labkeep", "env", "store"):
        (tmp_path / name / "new.txt").write_text("x")
    (tmp_path / "out.txt").write_text("x")
    assert changed_files(before, scan_tree(tmp_path, skip=[tmp_path / "store"])) == ["out.txt"]


def test_too_many_entries_compares_nothing(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}").write_text("x")
    before = scan_tree(tmp_path, max_entries=3)
    assert not before.complete
    (tmp_path / "new").write_text("x")
    assert changed_files(before, scan_tree(tmp_path, max_entries=3)) == []
    assert scan_tree(tmp_path, max_entries=100).complete


def test_other_trackers_stores_are_left_out_when_asked(tmp_path: Path) -> None:
    before = scan_tree(tmp_path, trackers=False)
    before_all = scan_tree(tmp_path)
    for name in ("mlruns", "mlartifacts", "wandb", "runs"):
        (tmp_path / name).mkdir()
    (tmp_path / "mlruns" / "meta.yaml").write_text("x")
    (tmp_path / "wandb" / "debug.log").write_text("x")
    (tmp_path / "mlflow.db").write_text("x")
    (tmp_path / "runs" / "events.out.tfevents.1.host").write_text("x")
    (tmp_path / "runs" / "plot.png").write_text("x")
    assert changed_files(before, scan_tree(tmp_path, trackers=False)) == ["runs/plot.png"]
    assert changed_files(before_all, scan_tree(tmp_path)) == [
        "mlflow.db", "mlruns/meta.yaml", "runs/events.out.tfevents.1.host", "runs/plot.png",
        "wandb/debug.log",
    ]  # fmt: skip
