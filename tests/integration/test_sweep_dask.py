"""Sweeps whose trials run on a real Dask cluster: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1, the trials' store on the real PostgreSQL. The workers get a cache
directory of their own, so the code reaches them through the store, not the file system."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from test_run_command import cli_env, write

from labkeep._client import Client
from labkeep.entities import RunRecord, RunStatus
from labkeep.sweep._spec import RETRIED_KEY, get_sweep, sweep_trials

pytest.importorskip("optuna")
pytest.importorskip("distributed")

DASK = Path(sys.executable).with_name("dask")

#: A trial. With ``marker`` set, the first trial to claim ``marker/claimed`` writes its pid to
#: ``marker/sleeper`` and sleeps, so that a test can kill its worker; the others run at once.
TRAIN = """\
import os, time
x = 0.0
marker = ""
if marker:
    try:
        fd = os.open(os.path.join(marker, "claimed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        fd = None
    if fd is not None:
        os.close(fd)
        with open(os.path.join(marker, "sleeper.tmp"), "w") as out:
            out.write(str(os.getpid()))
        os.replace(os.path.join(marker, "sleeper.tmp"), os.path.join(marker, "sleeper"))
        time.sleep(60)
print(f"loss: {(x - 1.0) ** 2}")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    address: str
    processes: list[subprocess.Popen[bytes]]

    def worker_pids(self) -> set[int]:
        import distributed

        with distributed.Client(self.address, timeout=10) as client:
            return set(client.run(os.getpid).values())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A scheduler and two single-threaded workers on 127.0.0.1, torn down after the test."""
    import distributed

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = cli_env(Path("."), XDG_CACHE_HOME=str(tmp_path / "worker-cache"))
    env.pop("LABKEEP_HOME")
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as log:
            command = [str(DASK), *args]
            processes.append(
                subprocess.Popen(
                    command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
                )
            )

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port),
              "--no-dashboard")  # fmt: skip
        for n in range(2):
            start(f"worker{n}", "worker", address, "--nworkers", "1", "--nthreads", "1",
                  "--host", "127.0.0.1", "--no-dashboard")  # fmt: skip
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield Cluster(address, processes)
    finally:
        for proc in reversed(processes):
            _stop(proc)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    write(path / "train.py", TRAIN)
    return path


def _labkeep(
    work: Path, store: str, *args: str, timeout: float = 180, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", *args],
        cwd=work, env=cli_env(Path("."), LABKEEP_HOME=store, **env), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def _sweep(store: str) -> tuple[RunRecord, list[RunRecord]]:
    client = Client(store)
    try:
        record, _spec = get_sweep(client, "last")
        return record, sweep_trials(client, record)
    finally:
        client.close()


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_a_sweep_runs_its_trials_on_the_dask_workers(
    work: Path, cluster: Cluster, pg_schema_uri: str
) -> None:
    result = _labkeep(work, pg_schema_uri, "run", "train.py", "x=[0.5,1.0,1.5,2.0]",
                      "--minimize", "loss", "-q", LABKEEP_DASK=cluster.address)  # fmt: skip
    assert result.returncode == 0, result.stderr
    sweep, trials = _sweep(pg_schema_uri)
    assert sweep.info.status is RunStatus.COMPLETED
    assert sweep.summary["trials.completed"] == 4 and sweep.summary["best.value"] == 0.0
    assert sorted(t.params["x"] for t in trials) == [0.5, 1.0, 1.5, 2.0]
    assert all(t.info.status is RunStatus.COMPLETED for t in trials)
    # Each trial was launched by a worker, in a directory of its own written from the store.
    assert {t.info.pid for t in trials} <= cluster.worker_pids()
    client = Client(pg_schema_uri)
    try:
        from labkeep.repro import load_snapshot

        for trial in trials:
            # (Its blobs are in the workers' cache: a PostgreSQL store keeps them per machine.)
            snapshot = load_snapshot(client.store, trial.info.number)
            assert snapshot.section("code")["file_count"] == 1
            assert not str(snapshot.code_root()).startswith(str(work))
    finally:
        client.close()


def _wait_for(predicate: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _running_trial(store: str) -> bool:
    client = Client(store)
    try:
        return any(r.parent_uuid is not None for r in client.store.running_runs())
    finally:
        client.close()


@pytest.mark.postgres
@pytest.mark.timeout(300)
@pytest.mark.parametrize("retries", [0, 1])
def test_a_worker_killed_mid_trial_leaves_its_run_killed_and_the_sweep_goes_on(
    work: Path, cluster: Cluster, tmp_path: Path, retries: int
) -> None:
    from conftest import drop_pg_schema, new_pg_schema

    schema, store = new_pg_schema()
    marker = tmp_path / "marker"
    marker.mkdir()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "labkeep.cli", "run", "train.py", "x=[0.5,1.0,1.5,2.0]",
             f"marker={marker}", "--minimize", "loss", "-q", "--dask", cluster.address,
             "--retry-failed", str(retries)],
            cwd=work, env=cli_env(Path("."), LABKEEP_HOME=store), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_for(lambda: (marker / "sleeper").exists(), "a trial to sleep")
            _wait_for(lambda: _running_trial(store), "the sleeping trial's run")
            script = psutil.Process(int((marker / "sleeper").read_text()))
            workers = cluster.worker_pids()
            worker = next(p for p in script.parents() if p.pid in workers)
            os.kill(worker.pid, signal.SIGKILL)
            _out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == 0, err
        assert "killed" in err
        sweep, trials = _sweep(store)
        assert sweep.info.status is RunStatus.COMPLETED
        killed = [t for t in trials if t.info.status is RunStatus.KILLED]
        completed = [t for t in trials if t.info.status is RunStatus.COMPLETED]
        assert len(killed) == 1 and len(trials) == 4 + retries
        assert len(completed) == 3 + retries
        assert sweep.summary["trials.completed"] == 3 + retries
        if retries:
            assert killed[0].summary[RETRIED_KEY] == 1
            assert sorted(t.params["x"] for t in completed) == [0.5, 1.0, 1.5, 2.0]
        assert not _alive(script)  # the trial's script died with its worker
    finally:
        drop_pg_schema(schema)


@pytest.mark.timeout(180)
def test_a_sweep_file_with_a_sqlite_store_and_a_cluster_on_this_machine(
    work: Path, cluster: Cluster, tmp_path: Path
) -> None:
    pytest.importorskip("yaml")
    store = str(tmp_path / "store")
    write(work / "sweep.yaml", """\
        program: train.py
        method: grid
        metric: {name: loss, goal: minimize}
        parameters:
          x: {values: [0.5, 1.0]}
    """)  # fmt: skip
    result = _labkeep(work, store, "sweep", "sweep.yaml", "--dask", cluster.address, "-q")
    assert result.returncode == 0, result.stderr
    sweep, trials = _sweep(store)
    assert sweep.summary["trials.completed"] == 2 and sweep.summary["best.value"] == 0.0
    assert {t.info.pid for t in trials} <= cluster.worker_pids()


@pytest.mark.timeout(180)
def test_ctrl_c_stops_the_trials_on_the_workers(
    work: Path, cluster: Cluster, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    marker = tmp_path / "marker"
    marker.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkeep.cli", "run", "train.py", "x=[0.5,1.0]",
         f"marker={marker}", "--minimize", "loss", "-q", "--dask", cluster.address],
        cwd=work, env=cli_env(Path(store)), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: (marker / "sleeper").exists(), "a trial to sleep")
        script = psutil.Process(int((marker / "sleeper").read_text()))
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode != 0, err
    _wait_for(lambda: not _alive(script), "the sleeping trial to stop", timeout=30)
    sweep, trials = _sweep(store)
    assert sweep.info.status is RunStatus.INTERRUPTED
    assert RunStatus.INTERRUPTED in {t.info.status for t in trials}


@pytest.mark.timeout(180)
def test_stopping_one_trial_on_a_worker_stops_it_alone_and_the_sweep_goes_on(
    work: Path, cluster: Cluster, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    marker = tmp_path / "marker"
    marker.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkeep.cli", "run", "train.py", "x=[0.5,1.0,1.5]",
         f"marker={marker}", "--minimize", "loss", "-q", "--dask", cluster.address],
        cwd=work, env=cli_env(Path(store)), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: (marker / "sleeper").exists(), "a trial to sleep")
        script = psutil.Process(int((marker / "sleeper").read_text()))

        def statuses() -> list[str]:
            return sorted(t.info.status.value for t in _sweep(store)[1])

        # The other two trials run on the other worker meanwhile.
        _wait_for(lambda: statuses() == ["completed", "completed", "running"], "the others")
        _, trials = _sweep(store)
        sleeping = [t.info.number for t in trials if t.info.status is RunStatus.RUNNING]
        # The trial's recorded pid is its worker's, which a signal would stop whole.
        stopped = _labkeep(work, store, "stop", str(sleeping[0]))
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.strip() == f"run {sleeping[0]} interrupted"
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert not _alive(script)
    sweep, trials = _sweep(store)
    assert sweep.info.status is RunStatus.COMPLETED
    assert sorted(t.info.status.value for t in trials) == ["completed", "completed", "interrupted"]
    assert len(cluster.worker_pids()) == 2  # no worker was stopped with the trial


def test_a_sqlite_store_with_a_remote_scheduler_is_refused(work: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    result = _labkeep(work, store, "run", "train.py", "x=[0.5,1.0]", "--dask",
                      "tcp://10.9.8.7:8786", timeout=60)  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SQLite" in lines[0] and "PostgreSQL" in lines[0], result.stderr
    assert not (tmp_path / "store" / "labkeep.db").exists() or not _has_runs(store)


def _has_runs(store: str) -> bool:
    client = Client(store)
    try:
        return bool(client.store.search_numbers())
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_an_unreachable_scheduler_is_one_line_and_starts_nothing(
    work: Path, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    result = _labkeep(work, store, "run", "train.py", "x=[0.5,1.0]", "--dask", address,
                      timeout=45)  # fmt: skip
    assert time.monotonic() - started < 40
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "Dask scheduler" in lines[0], lines
    assert not (tmp_path / "store" / "labkeep.db").exists() or not _has_runs(store)


FLAKY = """\
import os, sys
x = 0.0
if not os.path.exists("failed-once"):
    open("failed-once", "w").close()
    sys.exit(3)
print(f"loss: {(x - 1.0) ** 2}")
"""


@pytest.mark.timeout(180)
def test_retry_failed_runs_a_failed_trial_again_and_resume_does_not(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    write(work / "train.py", FLAKY)
    store = str(tmp_path / "store")
    result = _labkeep(work, store, "run", "train.py", "x=[0.5,1.0]", "--minimize", "loss",
                      "--retry-failed", "1", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "running it again" in result.stderr
    sweep, trials = _sweep(store)
    failed = [t for t in trials if t.info.status is RunStatus.FAILED]
    assert len(trials) == 3 and len(failed) == 1 and failed[0].summary[RETRIED_KEY] == 1
    assert sweep.summary["trials.completed"] == 2 and sweep.summary["trials.failed"] == 0
    again = _labkeep(work, store, "sweep", "resume", "last", "-q")
    assert again.returncode == 0 and "no trials left to run" in again.stderr, again.stderr
    assert len(_sweep(store)[1]) == 3


def test_a_script_outside_the_sweeps_directory_is_refused_before_connecting(
    tmp_path: Path,
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    (tmp_path / "elsewhere").mkdir()
    write(tmp_path / "elsewhere" / "train.py", TRAIN)
    store = str(tmp_path / "store")
    result = _labkeep(here, store, "run", "../elsewhere/train.py", "x=[0.5,1.0]", "--dask",
                      f"tcp://127.0.0.1:{_free_port()}", timeout=60)  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "outside" in lines[0] and "--dask" in lines[0], result.stderr


def _alive(process: psutil.Process) -> bool:
    """Running, not a zombie: a process that died waits as a zombie until its parent (or
    init, when the parent died first) reaps it, which is no business of these tests."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
