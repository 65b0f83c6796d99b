"""Run structure as people see it: child runs nested under their parent in ``labkeep runs``
(collapsed when many, ``--expand``, ``--flat``) and in ``labkeep show``; child runs left
open inside their parent's ``with`` block end with it when the process exits; a resumed
run's system metrics go on after its earlier steps. On SQLite, PostgreSQL and through a
labkeep server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkeep_server import ServerProcess, cli

import labkeep
from conftest import BACKENDS, child_env, require_postgres, run_python
from labkeep import RunStatus


@pytest.fixture(params=[*BACKENDS, pytest.param("http", id="http")])
def tree_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A store URI: a SQLite directory, this session's PostgreSQL schema, or a labkeep
    server (on a SQLite store of its own) reached over HTTP."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a remote store's journals
    if request.param == "sqlite":
        yield str(tmp_path / "store")
    elif request.param == "postgresql":
        require_postgres(request.node.nodeid)
        yield str(request.getfixturevalue("pg_schema_uri"))
    else:
        server = ServerProcess(str(tmp_path / "server-store")).start()
        try:
            yield server.url
        finally:
            server.kill()


def _env(tmp_path: Path, store: str) -> dict[str, str]:
    return child_env(
        LABKEEP_HOME=store,
        LABKEEP_CAPTURE="0",
        LABKEEP_SYSTEM_METRICS="0",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )


_LEFT_OPEN = """
import sys, labkeep
how = sys.argv[1]
with labkeep.init(sys.argv[2], name="outer") as parent:
    child = labkeep.init(parent=parent, name="child")
    child.log({"x": 1.0})
    grandchild = labkeep.init(parent=child, name="grandchild")
    grandchild.log({"y": 2.0})
    if how == "raise":
        raise ValueError("boom")
    if how == "exit":
        sys.exit(3)
"""


def test_child_runs_left_open_end_with_the_process(tmp_path: Path, tree_store: str) -> None:
    exp = f"nest-{uuid.uuid4().hex[:8]}"
    done = run_python(_LEFT_OPEN, cwd=tmp_path, env=_env(tmp_path, tree_store), args=("ok", exp))
    assert done.returncode == 0, done.stderr
    runs = {r.name: r for r in labkeep.runs(experiment=exp, store=tree_store)}
    assert {n: r.status for n, r in runs.items()} == {
        "outer": RunStatus.COMPLETED,
        "child": RunStatus.COMPLETED,
        "grandchild": RunStatus.COMPLETED,
    }
    assert runs["child"].parent_uuid == runs["outer"].uuid
    assert runs["grandchild"].parent_uuid == runs["child"].uuid
    assert runs["grandchild"].metrics["y"].last == 2.0


@pytest.mark.parametrize(
    ("how", "status", "exit_code"),
    [("raise", RunStatus.FAILED, None), ("exit", RunStatus.FAILED, 3)],
)
def test_child_runs_left_open_end_as_their_parent_did(
    tmp_path: Path, how: str, status: RunStatus, exit_code: int | None
) -> None:
    store = str(tmp_path / "store")
    done = run_python(_LEFT_OPEN, cwd=tmp_path, env=_env(tmp_path, store), args=(how, "nest"))
    assert done.returncode != 0
    runs = {r.name: r for r in labkeep.runs(experiment="nest", store=store)}
    assert {r.status for r in runs.values()} == {status}
    for name in ("child", "grandchild"):
        info = runs[name].info
        if exit_code is None:
            assert info.error is not None and "ValueError: boom" in info.error
        else:
            assert info.exit_code == exit_code


def test_a_resumed_runs_system_metrics_go_on_after_its_earlier_steps(
    tmp_path: Path, tree_store: str
) -> None:
    def sampled(run: labkeep.Run, at_least: int) -> None:
        deadline = time.monotonic() + 60
        while run._sys_step < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run._sys_step >= at_least

    first = labkeep.init("sys", system_metrics=0.05, capture=False, store=tree_store)
    first.log({"loss": 1.0})
    sampled(first, 3)
    first.finish()
    before = labkeep.get_run(first.uuid, store=tree_store)
    key = next(k for k in before.metrics if k.startswith("sys/"))
    steps_before = before.series(key).steps.tolist()
    again = labkeep.init("sys", id=first.uuid, resume="must", system_metrics=0.05, store=tree_store)
    assert again._sys_step == steps_before[-1] + 1
    again.log({"loss": 0.5})
    sampled(again, steps_before[-1] + 3)
    again.finish()
    after = labkeep.get_run(first.uuid, store=tree_store)
    steps = after.series(key).steps.tolist()
    assert steps[: len(steps_before)] == steps_before  # the earlier points are intact
    assert len(steps) > len(steps_before)
    assert steps == sorted(set(steps))  # no step logged twice
    assert after.series("loss").steps.tolist() == [0, 1]


def _family(store: str, experiment: str, trials: int = 0) -> dict[str, labkeep.Run]:
    """A plain run, a parent with two children (one with a child of its own), and a sweep-like
    parent with ``trials`` children."""
    made: dict[str, labkeep.Run] = {}
    with labkeep.init(
        experiment, name="plain", store=store, capture=False, system_metrics=0
    ) as run:
        made["plain"] = run
    with labkeep.init(experiment, name="parent", store=store, capture=False, system_metrics=0) as p:
        made["parent"] = p
        p.wait_registered(60)  # numbers in the order the runs start
        with labkeep.init(parent=p, name="kid-a") as a:
            made["kid-a"] = a
            a.wait_registered(60)
            with labkeep.init(parent=a, name="grandkid") as g:
                made["grandkid"] = g
                g.wait_registered(60)
        with labkeep.init(parent=p, name="kid-b") as b:
            made["kid-b"] = b
            b.wait_registered(60)
            b.log({"acc": 0.5})
    if trials:
        with labkeep.init(
            experiment, name="many", store=store, capture=False, system_metrics=0
        ) as m:
            made["many"] = m
            m.wait_registered(60)
            for i in range(trials):
                labkeep.init(parent=m, name=f"trial-{i}").finish("failed" if i == 0 else None)
    return made


def _names(stdout: str) -> list[str]:
    """The name cell of each row of a ``labkeep runs`` table, with its tree prefix."""
    lines = stdout.splitlines()
    header = lines[0]
    start, end = header.index("name"), header.index("experiment")
    return [line[start:end].rstrip() for line in lines[1:] if line[:start].strip().isdigit()]


def test_runs_nests_children_under_their_parent(tmp_path: Path, tree_store: str) -> None:
    exp = f"fam-{uuid.uuid4().hex[:8]}"  # a PostgreSQL schema is shared by the session
    made = _family(tree_store, exp, trials=12)
    env = _env(tmp_path, tree_store)
    listed = cli("runs", "-e", exp, "--params", "0", "--metrics", "0", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = _names(listed.stdout)
    # Top-level runs newest first; children under their parent, oldest first.
    assert names == ["many", "parent", "├─ kid-a", "│  └─ grandkid", "└─ kid-b", "plain"]
    # Twelve children are too many to list: one line counts them.
    assert "12 child runs (11 completed, 1 failed)" in listed.stdout
    assert "trial-3" not in listed.stdout
    many = made["many"].number
    expanded = cli(
        "runs", "-e", exp, "--expand", "--params", "0", "--metrics", "0", env=env, cwd=tmp_path
    )
    assert expanded.returncode == 0, expanded.stderr
    assert sum("trial-" in n for n in _names(expanded.stdout)) == 12
    flat = cli(
        "runs",
        "-e",
        exp,
        "--flat",
        "--all",
        "--params",
        "0",
        "--metrics",
        "0",
        env=env,
        cwd=tmp_path,
    )
    assert flat.returncode == 0, flat.stderr
    flat_names = _names(flat.stdout)
    assert len(flat_names) == 5 + 1 + 12
    assert all(not n.startswith(("├", "└", "│")) for n in flat_names)
    assert "parent" in flat.stdout.splitlines()[0]  # the flat list names each child's parent
    # A filter lists the runs it matches, children included, each naming its parent.
    where = cli("runs", "-e", exp, "--where", "name == 'kid-b'", env=env, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    row = next(line for line in where.stdout.splitlines() if "kid-b" in line)
    assert str(made["parent"].number) in row.split("kid-b")[1]
    assert many > made["parent"].number


def test_show_names_the_parent_and_lists_the_children(tmp_path: Path, tree_store: str) -> None:
    made = _family(tree_store, f"fam-{uuid.uuid4().hex[:8]}")
    env = _env(tmp_path, tree_store)
    parent = cli("show", str(made["parent"].number), env=env, cwd=tmp_path)
    assert parent.returncode == 0, parent.stderr
    for kid in ("kid-a", "kid-b"):
        assert f"{made[kid].number}  {kid}  completed" in parent.stdout
    assert "grandkid" not in parent.stdout  # only its own children
    kid = cli("show", str(made["kid-a"].number), env=env, cwd=tmp_path)
    assert kid.returncode == 0, kid.stderr
    assert f"parent      {made['parent'].number}  parent" in kid.stdout
    assert f"{made['grandkid'].number}  grandkid  completed" in kid.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_read_api_pages_top_level_runs_and_children(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    import httpx

    if backend == "sqlite":
        store = str(tmp_path / "store")
    else:
        require_postgres(request.node.nodeid)
        store = str(request.getfixturevalue("pg_schema_uri"))
    exp = f"fam-{uuid.uuid4().hex[:8]}"
    made = _family(store, exp, trials=7)
    server = ServerProcess(store).start()
    try:
        api = f"{server.url}/api/v1"
        top = httpx.get(f"{api}/runs", params={"experiment": exp, "top": "true"}, timeout=30)
        assert top.status_code == 200, top.text
        body = top.json()
        assert [r["name"] for r in body["runs"]] == ["many", "parent", "plain"]
        assert body["total"] == 3
        counts = {r["name"]: r["children"] for r in body["runs"]}
        assert counts == {
            "many": {"completed": 6, "failed": 1},
            "parent": {"completed": 2},
            "plain": {},
        }
        kids = httpx.get(
            f"{api}/runs",
            params={"parent": str(made["parent"].number), "sort": "number"},
            timeout=30,
        ).json()
        assert [(r["name"], r["children"]) for r in kids["runs"]] == [
            ("kid-a", {"completed": 1}),
            ("kid-b", {}),
        ]
        run = httpx.get(f"{api}/runs/{made['kid-a'].number}", timeout=30).json()
        assert run["parent"] == {
            "number": made["parent"].number,
            "name": "parent",
            "status": "completed",
        }
        assert [c["name"] for c in run["children"]] == ["grandkid"]
        assert run["children_total"] == 1
        missing = httpx.get(f"{api}/runs", params={"parent": "99999"}, timeout=30)
        assert missing.status_code == 404
    finally:
        server.kill()
