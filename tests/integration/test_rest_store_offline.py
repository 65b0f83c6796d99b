"""Logging to a server that goes away: nothing lost, nothing duplicated, nothing blocks.

The runs are real child processes logging with ``labkeep.init(store=URL)``; the server is a
real ``labkeep server`` that the tests kill (SIGKILL) and start again on the same port.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
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
