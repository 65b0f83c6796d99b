"""Logging to a server that goes away: nothing lost, nothing duplicated, nothing blocks.

The runs are real child processes logging with ``labkeep.init(store=URL)``; the server is a
real ``labkeep server`` that the tests kill (SIGKILL) and start again on the same port.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from labkeep_server import ServerProcess, child_env, cli, free_port, isolated, server

from labkeep.entities import RunStatus
from labkeep.store import locate_store, open_store

__all__ = ["isolated", "server"]

N_BEFORE, N_DURING = 30_000, 20_000


def _child(tmp_path: Path, code: str) -> subprocess.Popen[str]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _expect(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdout is not None
    got = proc.stdout.readline().strip()
    if got != line:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"expected {line!r}, got {got!r}; stderr:\n{err}")


def _tell(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def _journals(url: str) -> list[Path]:
    root = locate_store(url).journal_dir
    return sorted(root.iterdir()) if root.is_dir() else []


def test_server_restart_in_the_middle_of_a_run_loses_and_duplicates_nothing(
    tmp_path: Path, isolated: None
) -> None:
    store_dir = tmp_path / "server-store"
    server = ServerProcess(str(store_dir)).start()
    url = server.url
    proc = _child(
        tmp_path,
        f"""
        import sys, time
        import labkeep
        run = labkeep.init(experiment="restart", store={url!r})
        for i in range({N_BEFORE}):
            run.log({{"a": float(i), "b": -float(i)}}, step=i)
        run._ingester.flush(60)
        print("before", flush=True)
        sys.stdin.readline()  # the server is killed now
        for i in range({N_BEFORE}, {N_BEFORE + N_DURING}):
            run.log({{"a": float(i), "b": -float(i)}}, step=i)
        t0 = time.monotonic()
        while run._ingester.error is None and time.monotonic() - t0 < 30:
            time.sleep(0.05)  # until the ingester has failed to send at least once
        print("during", run._ingester.error is not None, flush=True)
        sys.stdin.readline()  # the server is back
        run.log({{"a": -1.0}}, step={N_BEFORE + N_DURING})
        run.finish()
        print("done", run.number, flush=True)
        """,
    )
    try:
        _expect(proc, "before")
        server.kill()
        _tell(proc)
        _expect(proc, "during True")
        server = ServerProcess(str(store_dir), port=server.port).start()
        _tell(proc)
        _expect(proc, "done 1")
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        server.kill()

    store = open_store(locate_store(str(store_dir)))
    record = store.get_records([1])[0]
    total = N_BEFORE + N_DURING
    assert record.info.status is RunStatus.COMPLETED
    assert (record.metrics["a"].count, record.metrics["b"].count) == (total + 1, total)
    history = store.get_history(1, "b")
    assert history.steps == list(range(total))  # each point once, in order
    assert history.values == [-float(i) for i in range(total)]
    assert store.get_history(1, "a").values[-1] == -1.0
    assert _journals(url) == []  # sent, so the local journal is gone


def test_finish_keeps_the_journal_when_the_server_is_down_and_sync_sends_it(
    tmp_path: Path, isolated: None
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _child(
        tmp_path,
        f"""
        import labkeep
        with labkeep.init(experiment="offline", store={url!r}, config={{"lr": 0.5}}) as run:
            for i in range(5000):
                run.log({{"loss": 1.0 / (i + 1), "acc": i / 5000}}, step=i)
        print("finished", flush=True)
        """,
    )
    out, err = proc.communicate(timeout=90)  # finish returns although nobody answers
    assert proc.returncode == 0, err
    assert out.strip() == "finished"
    assert "kept in" in err and "labkeep sync" in err
    assert len(_journals(url)) == 1

    down = cli("--store", url, "sync")
    assert down.returncode != 0
    assert "cannot reach the labkeep server" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1
    assert len(_journals(url)) == 1

    server = ServerProcess(str(tmp_path / "server-store"), port=port).start()
    try:
        sent = cli("--store", url, "sync")
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == f"sent 1 run (10,000 points) to {url}"
        assert _journals(url) == []
        assert cli("--store", url, "sync").stdout.strip() == f"nothing to send to {url}"
        shown = cli("--store", url, "runs")
        assert shown.returncode == 0 and "offline" in shown.stdout
    finally:
        server.kill()
    store = open_store(locate_store(str(tmp_path / "server-store")))
    record = store.get_records([1])[0]
    assert record.info.status is RunStatus.COMPLETED
    assert record.params == {"lr": 0.5}
    assert record.metrics["loss"].count == record.metrics["acc"].count == 5000


def test_tracking_uri_selects_the_server_and_labkeep_home_wins(
    tmp_path: Path, server: ServerProcess, isolated: None
) -> None:
    code = "import labkeep\nwith labkeep.init(experiment='env') as run:\n    run.log({'x': 1.0})\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=child_env(LABKEEP_TRACKING_URI=server.url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    listed = cli("runs", env=child_env(LABKEEP_TRACKING_URI=server.url))
    assert "env" in listed.stdout
    local = tmp_path / "local"
    both = cli("runs", env=child_env(LABKEEP_TRACKING_URI=server.url, LABKEEP_HOME=str(local)))
    assert both.returncode == 0 and "env" not in both.stdout


TRAIN = """
import time
from pathlib import Path

import labkeep

Path("started").write_text(repr(time.time()))
with labkeep.init() as run:
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
time.sleep(0.5)
print("trained", flush=True)
"""


def _workdir(tmp_path: Path) -> Path:
    """A project directory with a script and a helper module (code the snapshot keeps)."""
    work = tmp_path / "project"
    work.mkdir()
    (work / "train.py").write_text(textwrap.dedent(TRAIN))
    (work / "helper.py").write_text("VALUE = 1\n")
    return work


def test_labkeep_run_against_a_down_server_runs_at_once_and_sync_sends_it_whole(
    tmp_path: Path, isolated: None
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = _workdir(tmp_path)
    env = child_env(LABKEEP_TRACKING_URI=url)
    began = time.time()
    done = cli("run", "train.py", env=env, cwd=work, timeout=120)
    took = time.time() - began
    assert done.returncode == 0, done.stderr
    assert "trained" in done.stdout
    assert took < 20, f"labkeep run took {took:.1f}s against a down server"
    started = float((work / "started").read_text())
    assert started - began < 15, "the script waited for the server"
    assert "labkeep sync" in done.stderr and "Traceback" not in done.stderr
    assert _journals(url), "the run is kept on this machine"

    server = ServerProcess(str(tmp_path / "server-store"), port=port).start()
    try:
        sent = cli("sync", env=env)
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("sent 1 run ("), sent.stdout  # the script's and the runner's
        assert _journals(url) == []
        shown = cli("show", "1", "--snapshot", env=env)
        assert shown.returncode == 0, shown.stderr
        assert "capture failed" not in shown.stdout
        assert "not kept" not in shown.stdout and "python None" not in shown.stdout
        assert "train.py" in shown.stdout and "helper.py" in shown.stdout
        checkout = cli("checkout", "1", str(tmp_path / "out"), env=env)
        assert checkout.returncode == 0, checkout.stderr
        assert (tmp_path / "out" / "helper.py").read_text() == "VALUE = 1\n"
    finally:
        server.kill()
    store = open_store(locate_store(str(tmp_path / "server-store")))
    record = store.get_records([1])[0]
    assert record.info.status is RunStatus.COMPLETED
    assert record.metrics["loss"].count == 3
    snapshot = store.get_snapshot(1) or {}
    assert "error" not in snapshot
    assert snapshot["environment"]["python_version"]
    assert record.info.end_time is not None
    assert record.info.end_time - record.info.start_time < 10  # the script's, not the waits


def test_finish_returns_at_once_when_the_server_is_down_and_the_snapshot_is_spooled(
    tmp_path: Path, isolated: None
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = _workdir(tmp_path)
    code = f"""
        import time
        import labkeep
        run = labkeep.init(experiment="api", store={url!r}, capture=True)
        run.log({{"x": 1.0}})
        t0 = time.monotonic()
        run.finish()
        print(f"finish {{time.monotonic() - t0:.3f}}", flush=True)
        """
    (work / "api.py").write_text(textwrap.dedent(code))
    done = subprocess.run(
        [sys.executable, "api.py"],
        cwd=work,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    took = float(done.stdout.split()[-1])
    assert took < 5, f"finish() took {took:.1f}s against a down server"

    server = ServerProcess(str(tmp_path / "server-store"), port=port).start()
    try:
        sent = cli("--store", url, "sync")
        assert sent.returncode == 0, sent.stderr
    finally:
        server.kill()
    store = open_store(locate_store(str(tmp_path / "server-store")))
    record = store.get_records([1])[0]
    assert record.info.end_time is not None
    assert record.info.end_time - record.info.start_time < 5
    snapshot = store.get_snapshot(1) or {}
    assert "error" not in snapshot, snapshot.get("error")
    assert snapshot["code"]["file_count"] >= 2
    assert snapshot["environment"]["python_version"]


def test_labkeep_run_with_a_read_only_token_fails_with_one_line_before_the_script_runs(
    tmp_path: Path, isolated: None
) -> None:
    read_only = secrets.token_hex(16)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{read_only} ro dashboards\n")
    server = ServerProcess(str(tmp_path / "server-store"), args=("--token-file", str(tokens)))
    server.start()
    work = _workdir(tmp_path)
    try:
        began = time.time()
        done = cli(
            "run",
            "train.py",
            env=child_env(LABKEEP_TRACKING_URI=server.url, LABKEEP_TOKEN=read_only),
            cwd=work,
            timeout=120,
        )
        took = time.time() - began
        no_token = cli("run", "train.py", env=child_env(LABKEEP_TRACKING_URI=server.url), cwd=work)
    finally:
        server.kill()
    assert no_token.returncode != 0
    assert len(no_token.stderr.strip().splitlines()) == 1, no_token.stderr
    assert "needs a token: set LABKEEP_TOKEN" in no_token.stderr
    assert done.returncode != 0
    assert took < 20, f"labkeep run took {took:.1f}s to refuse a read-only token"
    assert not (work / "started").exists(), "the script ran"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "read-only" in lines[0] and "LABKEEP_TOKEN" in lines[0]
    assert _journals(server.url) == [], "nothing is left to sync"


def test_runs_against_a_down_server_says_so_in_one_line(tmp_path: Path, isolated: None) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    began = time.time()
    done = cli("--store", url, "runs")
    assert time.time() - began < 20
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot reach the labkeep server at {url}" in lines[0]
    assert "journal" not in lines[0]


def test_labkeep_run_against_a_server_that_never_answers_does_not_hang(
    tmp_path: Path, isolated: None
) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), answers nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        work = _workdir(tmp_path)
        began = time.time()
        done = cli("run", "train.py", env=child_env(LABKEEP_TRACKING_URI=url), cwd=work)
        took = time.time() - began
    assert done.returncode == 0, done.stderr
    assert "trained" in done.stdout
    assert float((work / "started").read_text()) - began < 20, "the script waited"
    assert took < 60, f"labkeep run took {took:.1f}s against a silent server"
    assert "labkeep sync" in done.stderr
    assert len(_journals(url)) == 2  # the runner's and the script's, kept for sync
