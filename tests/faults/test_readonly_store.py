"""A store on a read-only file system: every read works (no write is attempted, not even
SQLite's recovery or a journal's), and each change fails with one line.

The store is mounted read-only with ``mount --bind -o ro`` (``chmod -R a-w`` would not stop
root). Where mounting is not permitted the tests are skipped, with the reason, and fail
under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from store_damage import assert_one_line_error, cli, fill_store

from conftest import LiveServer, child_env


def _mount_readonly(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(source), str(target)], capture_output=True, text=True
    )
    if done.returncode == 0:  # older mounts ignore ro on the first call: remount says it
        subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(target)], capture_output=True, text=True
        )
    probe = target / ".probe"
    try:
        probe.touch()
    except OSError:
        return
    probe.unlink()
    if done.returncode == 0:
        subprocess.run(["umount", str(target)], capture_output=True)
    reason = f"cannot mount a read-only bind mount here ({done.stderr.strip() or 'stays writable'})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the read-only store tests", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readonly") / "store"
    fill_store(root, runs=5, points=50)
    return root


def _readonly_copy(filled: Path, tmp_path: Path, leftover_journal: bool) -> Iterator[Path]:
    source = tmp_path / "source"
    shutil.copytree(filled, source)
    if leftover_journal:  # a run killed before its journal was ingested
        journal = source / "journals" / "deadbeef.w"
        journal.mkdir(parents=True)
        (journal / "00000000.seg").write_bytes(b"\0" * 4096)
    target = tmp_path / "ro"
    _mount_readonly(source, target)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


@pytest.fixture(params=[False, True], ids=["clean", "leftover-journal"])
def readonly(filled: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    yield from _readonly_copy(filled, tmp_path, request.param)


def test_reads_work_on_a_readonly_store(readonly: Path) -> None:
    listed = cli(readonly, "runs")
    assert listed.returncode == 0, listed.stderr
    assert "run-4" in listed.stdout
    assert "Traceback" not in listed.stderr
    shown = cli(readonly, "show", "2")
    assert shown.returncode == 0, shown.stderr
    assert "run-1" in shown.stdout and "model 1" in shown.stdout
    checked = cli(readonly, "db", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_changes_to_a_readonly_store_fail_with_one_line(readonly: Path) -> None:
    before = (readonly / "labkeep.db").read_bytes()
    for args in (("tag", "2", "best"), ("note", "2", "hello"), ("delete", "2")):
        assert_one_line_error(cli(readonly, *args), "read-only")
    assert (readonly / "labkeep.db").read_bytes() == before


def test_the_api_reads_a_readonly_store(filled: Path, tmp_path: Path) -> None:
    for store in _readonly_copy(filled, tmp_path, leftover_journal=False):
        with (
            LiveServer(store) as server,
            httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as api,
        ):
            runs = api.get("/runs")
            assert runs.status_code == 200, runs.text
            assert len(runs.json()["runs"]) == 5
            run = api.get("/runs/3")
            assert run.status_code == 200, run.text
            artifact = api.get("/runs/3/artifacts/out.txt")
            assert artifact.status_code == 200 and b"output of run 2" in artifact.content
            tagged = api.post("/runs/3/tags", json={"add": ["x"]})
            assert tagged.status_code >= 400 and "read-only" in tagged.json()["error"]


def test_a_run_into_a_readonly_store_fails_with_one_line(filled: Path, tmp_path: Path) -> None:
    for store in _readonly_copy(filled, tmp_path, leftover_journal=False):
        script = tmp_path / "train.py"
        script.write_text("import labkeep\nwith labkeep.init() as run:\n    run.log({'x': 1})\n")
        env = child_env()
        ran = subprocess.run(
            [sys.executable, "-m", "labkeep.cli", "--store", str(store), "run", str(script)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert_one_line_error(ran, "read-only")
        api = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            env={**env, "LABKEEP_HOME": str(store)},
            cwd=tmp_path,
            timeout=120,
        )
        assert api.returncode != 0
        assert api.stderr.strip().splitlines()[-1].startswith("labkeep.errors.ReadOnlyStoreError")
