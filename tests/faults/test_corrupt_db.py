"""A damaged ``labkeep.db``: one line naming the file instead of a traceback, ``labkeep db
check`` finds damage anywhere in it (and in the blobs), ``labkeep db recover`` rebuilds what
can be read into a new file and keeps the old one. Real files, damaged at several offsets."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest
from store_damage import PAGE, assert_one_line_error, cli, damage, fill_store

from conftest import child_env


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "store"
    fill_store(root)
    return root


@pytest.fixture
def store(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the filled store, free to damage."""
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(pristine, copy)
    return copy


def db(store: Path) -> Path:
    return store / "labkeep.db"


def test_a_zero_byte_database_is_an_error_not_an_empty_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    db(store).write_bytes(b"")
    for args in (("runs",), ("show", "1"), ("tag", "1", "x")):
        assert_one_line_error(cli(store, *args), str(db(store)), "empty")
    assert db(store).stat().st_size == 0  # not turned into an empty store


def test_a_file_that_is_not_a_database_gives_one_line(store: Path) -> None:
    damage(db(store), 0, 100)
    for args in (("runs",), ("show", "1"), ("tag", "1", "x"), ("note", "1", "hello")):
        assert_one_line_error(cli(store, *args), str(db(store)), "labkeep db recover")


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75, 0.95])
def test_damage_anywhere_is_found_by_db_check(store: Path, fraction: float) -> None:
    damage(db(store), int(db(store).stat().st_size * fraction))
    checked = cli(store, "db", "check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "Traceback" not in checked.stderr
    assert "damaged" in checked.stdout + checked.stderr
    for args in (("runs",), ("show", "1"), ("show", "60")):
        shown = cli(store, *args)
        assert "Traceback" not in shown.stderr, shown.stderr
        if shown.returncode != 0:
            assert_one_line_error(shown, str(db(store)))


def test_db_check_of_a_sound_store(store: Path) -> None:
    checked = cli(store, "db", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok" in checked.stdout


def test_db_check_finds_a_changed_and_a_missing_blob(store: Path) -> None:
    blobs = sorted(p for p in (store / "blobs").rglob("*") if p.is_file())
    changed, missing = blobs[0], blobs[1]
    os.chmod(changed, 0o644)
    changed.write_bytes(changed.read_bytes() + b"!")
    missing.unlink()
    checked = cli(store, "db", "check")
    assert checked.returncode == 1
    out = checked.stdout + checked.stderr
    assert changed.parent.name + changed.name[:10] in out
    assert missing.parent.name + missing.name[:10] in out
    assert "Traceback" not in out


def _runs_in(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return int(raw.execute("SELECT count(*) FROM runs").fetchone()[0])


@pytest.mark.parametrize("method", ["sqlite3-cli", "python"])
@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_db_recover_rebuilds_what_can_be_read(store: Path, fraction: float, method: str) -> None:
    env = child_env()
    if method == "python":  # no sqlite3 program on the PATH: the row-by-row copy is used
        env["PATH"] = str(Path(sys.executable).parent)
    original = db(store).read_bytes()
    damage(db(store), int(len(original) * fraction))
    damaged = db(store).read_bytes()
    recovered = cli(store, "db", "recover", env=env)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "Traceback" not in recovered.stderr
    kept = sorted(store.glob("labkeep.db.damaged-*"))
    assert [p.name for p in kept if not p.name.endswith(("-wal", "-shm"))], list(store.iterdir())
    assert kept[0].read_bytes() == damaged  # the old file is kept as it was
    runs = _runs_in(db(store))
    assert 0 < runs <= 120
    assert str(runs) in recovered.stdout
    listed = cli(store, "runs", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    assert cli(store, "db", "check").returncode == 0


def test_db_recover_of_a_sound_store_keeps_every_run(store: Path) -> None:
    recovered = cli(store, "db", "recover")
    assert recovered.returncode == 0, recovered.stderr
    assert _runs_in(db(store)) == 120
    shown = cli(store, "show", "7")
    assert shown.returncode == 0 and "run-6" in shown.stdout, shown.stdout + shown.stderr


def test_page_size_assumption(store: Path) -> None:
    with sqlite3.connect(db(store)) as raw:
        assert raw.execute("PRAGMA page_size").fetchone()[0] == PAGE


def test_db_recover_rewrites_a_damaged_file_header(store: Path) -> None:
    """Only the 100-byte header is damaged (``file is not a database``): every page after it
    is still readable under a rewritten header, so every run comes back."""
    damage(db(store), 0, 100)
    recovered = cli(store, "db", "recover")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "rewritten file header" in recovered.stdout
    assert _runs_in(db(store)) == 120


def test_db_recover_of_a_file_with_nothing_readable_says_so(store: Path) -> None:
    size = db(store).stat().st_size
    damage(db(store), 0, size)
    before = db(store).read_bytes()
    assert_one_line_error(cli(store, "db", "recover"), str(db(store)), "backup")
    assert db(store).read_bytes() == before
    assert sorted(p.name for p in store.iterdir() if p.name.startswith("labkeep.db")) == [
        "labkeep.db"
    ]
