import os
import subprocess
from pathlib import Path

import pytest

from labkeep.capture import collect_code
from labkeep.capture._hashcache import HashCache, sha256_file
from labkeep.capture._snapshot import capture_snapshot

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True)


def paths(section: dict[str, object]) -> list[str]:
    files = section["files"]
    assert isinstance(files, list)
    return [f["path"] for f in files]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text("print('hi')\n")
    (root / "src" / "model.py").write_text("W = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / ".gitignore").write_text("*.ckpt\nlogs/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    (root / "model.ckpt").write_bytes(b"\0" * 10)
    (root / "logs").mkdir()
    (root / "logs" / "out.txt").write_text("log\n")
    (root / "untracked.py").write_text("u = 1\n")
    return root


def test_git_mode_lists_tracked_and_untracked_not_ignored(repo: Path) -> None:
    snap = capture_snapshot(repo, ["train.py"], "train.py", gpu=False)
    assert snap.code["source"] == "git"
    assert paths(snap.code) == [".gitignore", "run.sh", "src/model.py", "train.py", "untracked.py"]
    by_path = {f.path: f for f in snap.code_files}
    assert by_path["train.py"].sha256 == sha256_file(repo / "train.py")
    assert by_path["train.py"].abspath == str(repo / "train.py")
    assert by_path["train.py"].size == len("print('hi')\n")
    assert by_path["run.sh"].mode == "100755"
    assert by_path["train.py"].mode == "100644"


def test_git_mode_from_subdirectory_snapshots_whole_repository(repo: Path) -> None:
    snap = capture_snapshot(repo / "src", ["model.py"], "model.py", gpu=False)
    assert snap.code["root"] == str(repo)
    assert "train.py" in paths(snap.code)


def test_labkeepignore_applies_in_git_mode(repo: Path) -> None:
    (repo / ".labkeepignore").write_text("src/\n")
    snap = capture_snapshot(repo, [], None, gpu=False)
    assert "src/model.py" not in paths(snap.code)
    assert "train.py" in paths(snap.code)


def test_git_mode_size_limit_and_deleted_file(repo: Path) -> None:
    (repo / "src" / "model.py").unlink()
    (repo / "big.json").write_bytes(b"1" * 5000)
    git(repo, "add", "big.json")  # tracked: the git limit applies
    snap = capture_snapshot(repo, [], None, gpu=False, git_max_file_size=1000)
    assert "src/model.py" not in paths(snap.code)
    assert snap.code["skipped"] == [{"path": "big.json", "reason": "size", "size": 5000}]


def test_symlink_is_recorded_as_link(repo: Path) -> None:
    (repo / "latest.py").symlink_to("train.py")
    snap = capture_snapshot(repo, [], None, gpu=False)
    assert {"path": "latest.py", "target": "train.py"} in snap.code["links"]
    assert "latest.py" not in paths(snap.code)


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    root = tmp_path / "plain"
    (root / "pkg").mkdir(parents=True)
    (root / "train.py").write_text("print(1)\n")
    (root / "config.yaml").write_text("lr: 0.1\n")
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "data.csv").write_text("a,b\n1,2\n")
    (root / "weights.bin").write_bytes(b"\0" * 100)
    (root / ".env").write_text("API_KEY=secret\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.py").write_text("cached\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "h.py").write_text("h\n")
    venv = root / "myenv"
    (venv / "lib").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr\n")
    (venv / "lib" / "site.py").write_text("s\n")
    return root


def test_scan_mode_selects_source_files(plain: Path) -> None:
    section, files = collect_code(plain)
    assert section["source"] == "scan"
    assert paths(section) == ["config.yaml", "pkg/mod.py", "train.py"]
    assert [f.path for f in files] == paths(section)
    assert section["truncated"] is False


def test_scan_mode_labkeepignore_excludes_and_reincludes(plain: Path) -> None:
    (plain / ".labkeepignore").write_text("pkg/\n!data.csv\n!.hidden/\n")
    section, _ = collect_code(plain)
    assert paths(section) == [".hidden/h.py", "config.yaml", "data.csv", "train.py"]


def test_scan_mode_size_and_count_limits(plain: Path) -> None:
    (plain / "huge.py").write_text("#" * 3000)
    section, _ = collect_code(plain, max_file_size=2000)
    assert "huge.py" not in paths(section)
    assert section["skipped"] == [{"path": "huge.py", "reason": "size", "size": 3000}]

    section, _ = collect_code(plain, max_files=2)
    assert section["truncated"] is True
    assert paths(section) == ["config.yaml", "huge.py"]


def test_no_git_directory_falls_back_to_scan(plain: Path) -> None:
    snap = capture_snapshot(plain, [], None, gpu=False)
    assert snap.git == {"repo": False}
    assert snap.code["source"] == "scan"
    assert paths(snap.code) == ["config.yaml", "pkg/mod.py", "train.py"]


def test_git_missing_falls_back_to_scan_of_repo_root(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-bin"))
    snap = capture_snapshot(repo / "src", [], None, gpu=False)
    assert "error" in snap.git
    assert snap.code["source"] == "scan"
    assert snap.code["root"] == str(repo)
    assert "git is not installed" in snap.code["git_error"]
    assert "train.py" in paths(snap.code)


def test_hash_cache_skips_unchanged_files(repo: Path, tmp_path: Path) -> None:
    old = 1_600_000_000
    for f in (repo / "train.py", repo / "src" / "model.py"):
        os.utime(f, (old, old))
    cache_dir = tmp_path / "cache"
    capture_snapshot(repo, [], None, cache_dir=cache_dir, gpu=False)
    cache = HashCache(cache_dir)
    collect_code(repo, git_files=["train.py", "src/model.py"], cache=cache)
    assert cache.hits == 2 and cache.misses == 0
    (repo / "train.py").write_text("print('edited')\n")
    cache = HashCache(cache_dir)
    _, files = collect_code(repo, git_files=["train.py", "src/model.py"], cache=cache)
    assert cache.misses == 1
    assert {f.path: f.sha256 for f in files}["train.py"] == sha256_file(repo / "train.py")


# -- what counts as code in a git repository --------------------------------------------------
def _untracked_outputs(repo: Path) -> None:
    """What training leaves in a work tree that git does not ignore."""
    (repo / "checkpoint.pt").write_bytes(os.urandom(200_000))
    (repo / "mlruns" / "0" / "abc").mkdir(parents=True)
    (repo / "mlruns" / "0" / "abc" / "model.pkl").write_bytes(b"\x80\x04" + os.urandom(1000))
    (repo / "mlruns" / "0" / "meta.yaml").write_text("name: Default\n")
    (repo / "wandb" / "run-1").mkdir(parents=True)
    (repo / "wandb" / "run-1" / "config.yaml").write_text("lr: 1\n")
    (repo / "outputs").mkdir()
    (repo / "outputs" / "result.json").write_text("{}\n")
    (repo / "fake.txt").write_bytes(b"text\0with a NUL")
    (repo / "generated.py").write_text("#" * 2_000_000)
    (repo / ".env").write_text("API_KEY=secret\n")
    (repo / "conf").mkdir()
    (repo / "conf" / "params.yaml").write_text("lr: 0.1\n")
    (repo / "requirements.txt").write_text("numpy\n")


def test_git_mode_keeps_untracked_source_only(repo: Path) -> None:
    (repo / "assets").mkdir()
    (repo / "assets" / "logo.png").write_bytes(b"\x89PNG\0\0")
    git(repo, "add", "assets/logo.png")
    git(repo, "commit", "-q", "-m", "logo")
    _untracked_outputs(repo)
    snap = capture_snapshot(repo, ["train.py"], "train.py", gpu=False)
    assert snap.code["source"] == "git"
    assert paths(snap.code) == [
        ".gitignore",
        "assets/logo.png",  # tracked: part of the commit, whatever its type
        "conf/params.yaml",
        "requirements.txt",
        "run.sh",
        "src/model.py",
        "train.py",
        "untracked.py",
    ]
    reasons = {s["path"]: s["reason"] for s in snap.code["skipped"]}
    assert reasons == {
        "checkpoint.pt": "not source",
        "fake.txt": "binary",
        "generated.py": "size",
    }
    assert snap.git["dirty"] is True
    assert snap.git["state"] == "dirty: untracked files"


def test_git_mode_labkeepignore_brings_back_untracked_files(repo: Path) -> None:
    _untracked_outputs(repo)
    (repo / ".labkeepignore").write_text("!checkpoint.pt\n!outputs/\nconf/\n")
    snap = capture_snapshot(repo, [], None, gpu=False)
    kept = paths(snap.code)
    assert "checkpoint.pt" in kept and "outputs/result.json" in kept
    assert "conf/params.yaml" not in kept and "mlruns/0/meta.yaml" not in kept


def test_entry_point_is_code_whatever_its_size_or_name(repo: Path) -> None:
    (repo / "analysis.ipynb").write_text('{"cells": [], "x": "' + "a" * 2_000_000 + '"}')
    (repo / "tools").mkdir()
    (repo / "tools" / "train").write_text("#!/usr/bin/env python\nprint(1)\n")
    assert "analysis.ipynb" in paths(capture_snapshot(repo, [], "analysis.ipynb", gpu=False).code)
    snap = capture_snapshot(repo / "tools", ["train"], "train", gpu=False)
    assert "tools/train" in paths(snap.code)
    assert "analysis.ipynb" not in paths(snap.code)


def test_scan_mode_honours_gitignore(plain: Path) -> None:
    (plain / ".gitignore").write_text("config.yaml\n")
    (plain / "pkg" / ".gitignore").write_text("mod.py\n")
    (plain / "pkg" / "keep.py").write_text("k = 1\n")
    (plain / "notes.txt").write_bytes(b"\0\0binary")
    section, _ = collect_code(plain)
    assert paths(section) == ["pkg/keep.py", "train.py"]
    assert section["skipped"] == [{"path": "notes.txt", "reason": "binary"}]


def test_diff_of_runs_that_changed_a_checkpoint_says_code_is_the_same(tmp_path: Path) -> None:
    from repro_helpers import make_project

    project = make_project(tmp_path)
    (project.repo / ".gitignore").write_text("out.txt\n")  # what train.py writes
    git(project.repo, "add", ".gitignore")
    git(project.repo, "commit", "-q", "-m", "ignore")
    for content in (b"\0first", b"\0second"):
        (project.repo / "model.ckpt").write_bytes(content)
        project.script("train.py", str(project.data))
    result = project.cli("diff", "1", "2", "--code")
    assert result.returncode == 0, result.stderr
    assert "model.ckpt" not in result.stdout
    assert "code: the same (4 files)" in result.stdout
    shown = project.cli("show", "2", "--snapshot")
    assert "dirty: 1 untracked (model.ckpt)" in shown.stdout
    assert "1 file(s) left out" in shown.stdout
