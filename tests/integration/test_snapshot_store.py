"""store_snapshot: blobs once per content, and a manifest only of files that are stored."""

from __future__ import annotations

import json
from pathlib import Path

from labkeep._client import Client
from labkeep._snapshot import store_snapshot
from labkeep.capture import capture_snapshot
from labkeep.capture._code import CodeFile


def test_unchanged_code_reuses_the_manifest_and_unstored_files_are_left_out(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.py").write_text("A = 1\n")
    (tree / "b.py").write_text("B = 2\n")
    client = Client(tmp_path / "store")
    try:
        snap = capture_snapshot(tree, ["a.py"], "a.py", gpu=False)
        first = store_snapshot(client.store, snap)
        second = store_snapshot(client.store, capture_snapshot(tree, ["a.py"], "a.py", gpu=False))
        assert first["code"]["manifest"] == second["code"]["manifest"]
        assert "unstored" not in first["code"]

        (tree / "c.py").write_text("C = 3\n")
        snap = capture_snapshot(tree, ["a.py"], "a.py", gpu=False)
        gone = next(f for f in snap.code_files if f.path == "c.py")
        (tree / "c.py").unlink()  # vanishes between listing and storing
        snap.code_files = [
            f if f is not gone else CodeFile(f.path, f.abspath, f.sha256, f.size, f.mode)
            for f in snap.code_files
        ]
        data = store_snapshot(client.store, snap)
        assert [u["path"] for u in data["code"]["unstored"]] == ["c.py"]
        manifest = json.loads(client.store.blob_path(data["code"]["manifest"]).read_bytes())
        assert [f["path"] for f in manifest] == ["a.py", "b.py"]
        assert data["code"]["file_count"] == 2
    finally:
        client.close()
