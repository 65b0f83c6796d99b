"""How a run ends, in real child processes: completed, failed, interrupted, killed."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import labkeep
from conftest import child_env, run_python, start_python, wait_for_line
from labkeep import RunStatus


def _env(tmp_path: Path) -> dict[str, str]:
    return child_env(LABKEEP_HOME=str(tmp_path / "store"))


def _only_run(tmp_path: Path) -> labkeep.RunView:
    runs = labkeep.runs(store=tmp_path / "store")
    assert len(runs) == 1
    return runs[0]


def test_finish_completes(tmp_path: Path) -> None:
    result = run_python(
        "import labkeep\nrun = labkeep.init()\nrun.log({'x': 1.0})\nrun.finish()\n",
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    view = _only_run(tmp_path)
    assert view.status is RunStatus.COMPLETED
    assert view.error is None and view.end_time is not None


def test_script_that_never_calls_finish_completes_at_exit(tmp_path: Path) -> None:
    result = run_python(
        """
import labkeep
labkeep.init(config={"lr": 0.1})
for i in range(50):
    labkeep.log({"loss": 1.0 / (i + 1)})
""",
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    view = _only_run(tmp_path)
    assert view.status is RunStatus.COMPLETED
    assert view.metrics["loss"].count == 50
    assert not any((tmp_path / "store" / "journals").iterdir())


def test_uncaught_exception_fails_with_the_traceback(tmp_path: Path) -> None:
    result = run_python(
        """
import labkeep
labkeep.init()
labkeep.log({"x": 1.0})

def train():
    raise ValueError("loss diverged")

train()
""",
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    assert result.returncode == 1
    assert "ValueError: loss diverged" in result.stderr  # the user still sees it
    view = _only_run(tmp_path)
    assert view.status is RunStatus.FAILED
    assert view.error is not None
    assert "Traceback" in view.error and "in train" in view.error
    assert "ValueError: loss diverged" in view.error
    assert view.metrics["x"].count == 1


def test_exception_inside_with_block_fails(tmp_path: Path) -> None:
    result = run_python(
        """
import labkeep
with labkeep.init() as run:
    run.log({"x": 1.0})
    1 / 0
""",
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    assert result.returncode == 1
    view = _only_run(tmp_path)
    assert view.status is RunStatus.FAILED
    assert "ZeroDivisionError" in (view.error or "")


@pytest.mark.parametrize(("code", "status"), [(0, RunStatus.COMPLETED), (3, RunStatus.FAILED)])
def test_sys_exit_inside_the_run(tmp_path: Path, code: int, status: RunStatus) -> None:
    result = run_python(
        f"import sys, labkeep\nwith labkeep.init():\n    sys.exit({code})\n",
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    assert result.returncode == code, result.stderr
    view = _only_run(tmp_path)
    assert view.status is status
    assert view.record.info.exit_code == code


def test_sys_exit_zero_without_finish_completes(tmp_path: Path) -> None:
    result = run_python(
        "import sys, labkeep\nlabkeep.init()\nsys.exit(0)\n", cwd=tmp_path, env=_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert _only_run(tmp_path).status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    ("call", "code", "status"),
    [
        ("sys.exit(3)", 3, RunStatus.FAILED),
        ("exit(4)", 4, RunStatus.FAILED),
        ("quit(0)", 0, RunStatus.COMPLETED),
        ("sys.exit('bad input')", 1, RunStatus.FAILED),
    ],
)
def test_exit_codes_without_a_with_block(
    tmp_path: Path, call: str, code: int, status: RunStatus
) -> None:
    """Without ``with``, ``sys.exit`` and the ``exit``/``quit`` builtins still say how the
    run ended."""
    result = run_python(
        f"import sys, labkeep\nlabkeep.init()\n{call}\n", cwd=tmp_path, env=_env(tmp_path)
    )
    assert result.returncode == code, result.stderr
    view = _only_run(tmp_path)
    assert (view.status, view.record.info.exit_code) == (status, code)


def test_sys_exit_in_a_thread_does_not_end_the_run(tmp_path: Path) -> None:
    """``sys.exit`` in another thread ends only that thread."""
    script = (
        "import sys, threading, labkeep\nlabkeep.init()\n"
        "t = threading.Thread(target=sys.exit, args=(5,))\nt.start()\nt.join()\n"
    )
    result = run_python(script, cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert _only_run(tmp_path).status is RunStatus.COMPLETED


_LOOP = """
import time, labkeep
run = labkeep.init()
for i in range(20):
    run.log({"x": float(i)})
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_interrupt(tmp_path: Path, signum: signal.Signals) -> None:
    proc = start_python(_LOOP, cwd=tmp_path, env=_env(tmp_path))
    try:
        wait_for_line(proc, "ready")
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode in (-signum, 128 + signum, 1), stderr
    view = _only_run(tmp_path)
    assert view.status is RunStatus.INTERRUPTED, stderr
    assert view.metrics["x"].count == 20
    assert view.end_time is not None


def test_sigkill_is_recognised_as_killed_on_the_next_read(tmp_path: Path) -> None:
    proc = start_python(_LOOP, cwd=tmp_path, env=_env(tmp_path))
    try:
        wait_for_line(proc, "ready")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    # Nobody has read the store since: the run still says running in the database.
    from labkeep.store import locate_store, open_store

    raw = open_store(locate_store(tmp_path / "store"))
    try:
        infos = raw.list_runs()
        assert [i.status for i in infos] in ([RunStatus.RUNNING], [])
    finally:
        raw.close()
    view = _only_run(tmp_path)  # this read recovers the journal and marks the run killed
    assert view.status is RunStatus.KILLED
    assert view.metrics["x"].count == 20
    assert view.end_time is not None
    assert not any((tmp_path / "store" / "journals").iterdir())


def test_status_values() -> None:
    assert [s.value for s in RunStatus] == [
        "running",
        "completed",
        "failed",
        "interrupted",
        "killed",
    ]
    assert not RunStatus.RUNNING.finished and RunStatus.KILLED.finished
