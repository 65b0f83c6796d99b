import os
import subprocess
from pathlib import Path

import pytest

from labkeep.capture import collect_git

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "remote", "add", "origin", "https://alice:s3cret@example.com/lab/proj.git")
    (root / "train.py").write_text("print('hi')\n")
    (root / ".gitignore").write_text("*.ckpt\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_clean_repository(repo: Path) -> None:
    section = collect_git(repo)
    assert section["repo"] is True
    assert section["root"] == str(repo)
    assert section["commit"] == git(repo, "rev-parse", "HEAD")
    assert section["branch"] == "main"
    assert section["remote"] == "origin"
    assert section["remote_url"] == "https://example.com/lab/proj.git"
    assert section["dirty"] is False
    assert section["diff"] == ""
    assert "error" not in section


def test_dirty_edit_untracked_and_ignored(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    (repo / "notes.md").write_text("new\n")
    (repo / "model.ckpt").write_bytes(b"\0")
    section = collect_git(repo / ".")
    assert section["dirty"] is True
    assert section["changed"] == ["train.py"]
    assert section["untracked"] == ["notes.md"]
    assert "+print('changed')" in section["diff"]
    assert "-print('hi')" in section["diff"]
    assert "notes.md" not in section["diff"]


def test_untracked_files_alone_make_the_tree_dirty(repo: Path) -> None:
    (repo / "model.ckpt").write_bytes(b"\0")  # ignored: still clean
    clean = collect_git(repo)
    assert clean["dirty"] is False and clean["state"] == "clean"
    (repo / "notes.md").write_text("new\n")
    section = collect_git(repo)
    assert section["dirty"] is True
    assert section["state"] == "dirty: untracked files"
    assert section["changed"] == [] and section["untracked"] == ["notes.md"]
    (repo / "train.py").write_text("print('changed')\n")
    both = collect_git(repo)
    assert both["state"] == "dirty: uncommitted changes and untracked files"


def test_staged_change_is_in_the_diff(repo: Path) -> None:
    (repo / "train.py").write_text("print('staged')\n")
    git(repo, "add", "train.py")
    section = collect_git(repo)
    assert section["dirty"] is True
    assert "+print('staged')" in section["diff"]


def test_subdirectory_finds_the_root_and_detached_head(repo: Path) -> None:
    sub = repo / "src" / "pkg"
    sub.mkdir(parents=True)
    git(repo, "checkout", "-q", "--detach")
    section = collect_git(sub)
    assert section["root"] == str(repo)
    assert section["branch"] is None
    assert section["commit"] == git(repo, "rev-parse", "HEAD")


def test_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "trunk")
    (tmp_path / "a.py").write_text("x = 1\n")
    section = collect_git(tmp_path)
    assert section["repo"] is True
    assert section["commit"] is None
    assert section["branch"] == "trunk"
    assert section["diff"] is None
    assert section["untracked"] == ["a.py"]
    assert "error" not in section
    assert "remote_url" not in section


def test_linked_worktree_reads_remote_from_common_config(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(other))
    section = collect_git(other)
    assert section["root"] == str(other)
    assert section["branch"] == "feature"
    assert section["remote_url"] == "https://example.com/lab/proj.git"


def test_not_a_repository(tmp_path: Path) -> None:
    assert collect_git(tmp_path) == {"repo": False}


def test_git_missing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-bin-here"))
    section = collect_git(repo)
    assert section["repo"] is True
    assert "git is not installed" in section["error"]
    assert section["remote_url"] == "https://example.com/lab/proj.git"
