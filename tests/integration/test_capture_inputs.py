import hashlib
import os
import shutil
from pathlib import Path

import pytest

from labkeep.capture import fingerprint_input
from labkeep.errors import InvalidInputError


def _dataset(root: Path) -> Path:
    (root / "train").mkdir(parents=True)
    (root / "train" / "a.csv").write_text("x,y\n1,2\n")
    (root / "train" / "b.csv").write_text("x,y\n3,4\n")
    (root / "labels.txt").write_text("cat\ndog\n")
    return root


def test_file_fingerprint(tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_bytes(b"a,b\n1,2\n")
    fp = fingerprint_input(f)
    assert fp == {
        "path": str(f),
        "kind": "file",
        "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest(),
        "size": 8,
        "files": 1,
    }


def test_file_edit_changes_fingerprint(tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_text("one\n")
    before = fingerprint_input(f, tmp_path / "cache")
    f.write_text("two!\n")
    after = fingerprint_input(f, tmp_path / "cache")
    assert before["sha256"] != after["sha256"]


def test_directory_fingerprint_counts_and_sizes(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data")
    fp = fingerprint_input(data)
    assert fp["kind"] == "dir"
    assert fp["files"] == 3
    assert fp["size"] == 8 + 8 + 8
    assert len(fp["sha256"]) == 64


def test_directory_hash_depends_on_content_and_names_only(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    base = fingerprint_input(data, cache)["sha256"]

    # Touching files (mtime only) and copying the tree keep the fingerprint.
    for f in data.rglob("*.csv"):
        os.utime(f, (1_000_000_000, 1_000_000_000))
    assert fingerprint_input(data, cache)["sha256"] == base
    copy = shutil.copytree(data, tmp_path / "copy")
    assert fingerprint_input(copy, cache)["sha256"] == base

    (data / "train" / "a.csv").write_text("x,y\n9,9\n")
    edited = fingerprint_input(data, cache)["sha256"]
    assert edited != base

    (data / "train" / "a.csv").rename(data / "train" / "c.csv")
    assert fingerprint_input(data, cache)["sha256"] not in (base, edited)

    (data / "extra.txt").write_text("")
    assert fingerprint_input(data, cache)["files"] == 4


def test_directory_follows_symlinks_without_looping(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data")
    (data / "loop").symlink_to(data, target_is_directory=True)
    (data / "alias.txt").symlink_to(data / "labels.txt")
    fp = fingerprint_input(data)
    assert fp["files"] == 4  # three files plus the file link; the loop is walked once


def test_missing_input_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        fingerprint_input(tmp_path / "nope.csv")
