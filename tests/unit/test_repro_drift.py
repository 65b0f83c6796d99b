from labkeep.repro._drift import (
    env_drift,
    git_drift,
    input_drift,
    interpreter_drift,
    package_drift,
    python_drift,
)


def test_package_drift() -> None:
    items = package_drift({"numpy": "1.26.0", "torch": "2.1"}, {"numpy": "2.0.0", "rich": "13"})
    assert [(i.name, i.then, i.now, i.why) for i in items] == [
        ("numpy", "1.26.0", "2.0.0", "changed"),
        ("rich", None, "13", "added"),
        ("torch", "2.1", None, "removed"),
    ]
    assert package_drift({"a": "1"}, {"a": "1"}) == []


def test_python_and_interpreter_drift() -> None:
    assert python_drift("3.11.7", "3.11.7") == []
    assert python_drift("3.11.7", "3.12.1")[0].now == "3.12.1"
    assert interpreter_drift("/gone/python", "/usr/bin/python3")[0].then == "/gone/python"
    assert interpreter_drift("/x", "/x") == []


def test_git_drift() -> None:
    then = {"repo": True, "root": "/r", "commit": "a" * 40, "branch": "main", "dirty": True}
    now = {"repo": True, "commit": "b" * 40, "branch": "main", "dirty": False, "changed": []}
    items = {i.name: i for i in git_drift(then, now)}
    assert items["commit"].then == "a" * 12 and items["commit"].now == "b" * 12
    assert items["dirty"].then == "dirty" and items["dirty"].now == "clean"
    assert git_drift(then, None)[0].why == "the repository is gone"
    assert git_drift({"repo": False}, None) == []
    same = {"repo": True, "commit": "a", "branch": "main", "dirty": False}
    assert git_drift(same, same) == []


def test_input_drift_blocks_changed_and_missing() -> None:
    recorded = [
        {"path": "/a", "sha256": "1" * 64, "size": 3},
        {"path": "/b", "sha256": "2" * 64, "size": 3},
        {"path": "/c", "sha256": "3" * 64, "size": 3},
        {"path": "/never", "error": "missing then"},
    ]
    now = {
        "/a": {"sha256": "1" * 64, "size": 3},
        "/b": {"sha256": "9" * 64, "size": 4},
        "/c": "missing",
    }
    items = input_drift(recorded, now)
    assert [(i.name, i.severity) for i in items] == [("/b", "block"), ("/c", "block")]
    assert "3 -> 4 bytes" in items[0].why
    assert items[1].why == "missing"


def test_env_drift_ignores_labkeep_vars() -> None:
    items = env_drift({"OMP_NUM_THREADS": "4", "LABKEEP_HOME": "/x"}, {"OMP_NUM_THREADS": "8"})
    assert [(i.name, i.then, i.now) for i in items] == [("OMP_NUM_THREADS", "4", "8")]


def test_git_drift_names_untracked_files() -> None:
    then = {"repo": True, "root": "/r", "commit": "a", "branch": "main", "dirty": False}
    now = {
        "repo": True,
        "commit": "a",
        "branch": "main",
        "dirty": True,
        "changed": [],
        "untracked": ["notes.md"],
        "state": "dirty: untracked files",
    }
    (item,) = git_drift(then, now)
    assert (item.name, item.then, item.now) == ("dirty", "clean", "dirty")
    assert item.why == "untracked files now: notes.md"
