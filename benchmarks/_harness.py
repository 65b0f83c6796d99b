"""Run code snippets in fresh interpreter processes and collect timings and figures.

A snippet is Python source run as `python -c SOURCE` in a new process of the given interpreter,
with `STORE` (a str path) and any `params` defined as globals ahead of it. The harness times the
whole process (interpreter startup included) and, when the snippet prints a JSON object on its
last stdout line, collects those figures too (rates measured inside the process, sizes...).

    m = measure(python, "import json; print(json.dumps({'x': 1.0}))", repeat=5)
    m.wall_s, m.figures["x"]
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / ".bench" / "results"

Params = Mapping[str, Any]


class SnippetError(RuntimeError):
    """A snippet exited non-zero; the message carries the tail of its stderr."""


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter plus the environment a snippet runs under."""

    label: str
    python: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update(self.env)
        return env


@dataclass(frozen=True)
class Measurement:
    """Median wall time of the measured runs and the median of each figure they printed."""

    wall_s: float
    walls: tuple[float, ...]
    figures: dict[str, float]
    runs: tuple[dict[str, Any], ...]


def run_once(
    interp: Interpreter,
    code: str,
    *,
    store: Path | None = None,
    params: Params | None = None,
    timeout: float = 900.0,
) -> tuple[float, dict[str, Any]]:
    """Run `code` once in a fresh process; return (wall seconds, figures from its last line)."""
    source = _prelude(store, params) + code
    # Run beside the store, not in it, so nothing a tool drops in its cwd counts as store bytes.
    cwd = store.parent if store is not None else Path(tempfile.gettempdir())
    start = time.perf_counter()
    proc = subprocess.run(
        [str(interp.python), "-c", source],
        cwd=cwd,
        env=interp.environ(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = " | ".join(line for line in proc.stderr.strip().splitlines()[-3:])
        raise SnippetError(f"{interp.label} snippet exited {proc.returncode}: {tail}")
    return wall, _figures(proc.stdout)


def measure(
    interp: Interpreter,
    code: str,
    *,
    repeat: int,
    warmup: bool = True,
    store: Callable[[], Path] | None = None,
    params: Params | None = None,
    timeout: float = 900.0,
) -> Measurement:
    """Run `code` `repeat` times (after one unmeasured warm-up) in fresh processes.

    `store` is called before every run, warm-up included, for the store directory that run
    gets: return a new empty directory for "fresh store" figures, or the same prepared one.
    """
    if warmup:
        run_once(interp, code, store=store() if store else None, params=params, timeout=timeout)
    walls: list[float] = []
    runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        wall, figures = run_once(
            interp, code, store=store() if store else None, params=params, timeout=timeout
        )
        walls.append(wall)
        runs.append(figures)
    return Measurement(
        wall_s=statistics.median(walls),
        walls=tuple(walls),
        figures=_median_figures(runs),
        runs=tuple(runs),
    )


#: Snippet lines that make a fresh labkeep store (one empty run) before the clock starts.
LABKEEP_STORE = """
import json, time
import labkeep
labkeep.init(store=STORE, capture=False, system_metrics=0).finish()
"""

#: Snippet lines that make a fresh MLflow store before the clock starts: its SQLite database
#: migrated under STORE, artifacts in STORE/artifacts, an experiment made (`experiment`), and
#: its warnings and log lines off.
MLFLOW_STORE = """
import json, logging, time, warnings
warnings.simplefilter("ignore")
logging.getLogger("mlflow").setLevel(logging.ERROR)
import mlflow
mlflow.set_tracking_uri(f"sqlite:///{STORE}/mlflow.db")
experiment = mlflow.create_experiment("bench", artifact_location=f"file://{STORE}/artifacts")
"""

#: Snippet functions that measure a store's bytes: `size(root)` the files' sizes, `disk(root)`
#: the blocks allocated for them, `files(root)` how many, `written(root, suffix)` how many end
#: so (a file moved away while it is read does not count).
STORE_BYTES = """
import os
def stats(root):
    for d, _, fs in os.walk(root):
        for f in fs:
            try:
                yield f, os.stat(os.path.join(d, f))
            except FileNotFoundError:  # a temporary file moved away meanwhile
                pass
def size(root):
    return sum(st.st_size for _, st in stats(root))
def disk(root):
    return sum(st.st_blocks * 512 for _, st in stats(root))
def written(root, suffix):
    return sum(f.endswith(suffix) for f, _ in stats(root))
def files(root):
    return sum(len(fs) for _, _, fs in os.walk(root))
"""


def mlflow_peer(skip: bool, env: Mapping[str, str] | None = None) -> tuple[Interpreter | None, str]:
    """MLflow's interpreter (installed on first use) and "", or None and why it is not
    measured (also None, with no reason, when `skip`: `--no-peer`)."""
    from _peers import MLFLOW, PeerSetupError, ensure_peer

    if skip:
        return None, ""
    try:
        return Interpreter(
            label="mlflow", python=ensure_peer(MLFLOW, quiet=True), env=env or {}
        ), ""
    except PeerSetupError as exc:
        return None, f"MLflow not measured: {exc}"


def mlflow_description(peer: Interpreter | None) -> dict[str, Any]:
    """The results file's `peer` entry for MLflow on SQLite and local artifacts."""
    from _peers import MLFLOW

    return {
        "name": "MLflow",
        "version": package_version(peer, MLFLOW.distribution, MLFLOW.module) if peer else None,
        "store": "SQLite + local artifacts",
    }


def measure_pair(
    labkeep: Interpreter,
    labkeep_code: str,
    peer: Interpreter | None,
    peer_code: str,
    *,
    repeat: int,
    labkeep_store: Callable[[], Path],
    peer_store: Callable[[], Path],
    warmup: bool = True,
    params: Params | None = None,
) -> tuple[Measurement, Measurement | None]:
    """`measure` labkeep's snippet, then the peer's (None when there is no peer), each
    process on the store its callable returns (a fresh one: `Scratch.new`)."""
    ours = measure(
        labkeep, labkeep_code, repeat=repeat, warmup=warmup, store=labkeep_store, params=params
    )
    if peer is None:
        return ours, None
    theirs = measure(peer, peer_code, repeat=repeat, warmup=warmup, store=peer_store, params=params)
    return ours, theirs


def write_mlflow_results(
    name: str,
    *,
    title: str,
    quick: bool,
    peer: Interpreter | None,
    peer_note: str,
    rows: list[dict[str, Any]],
    runs: Any,
    notes: list[str],
) -> None:
    """Write the results of a benchmark against MLflow (`write_results`) and say where."""
    payload = {
        "title": title,
        "quick": quick,
        "peer": mlflow_description(peer),
        "peer_note": peer_note,
        "machine": machine_info(),
        "rows": rows,
        "runs": runs,
        "notes": notes,
    }
    path = write_results(name, payload)
    print(f"results: {path}", file=sys.stderr)


def ratio(peer: float | None, ours: float | None) -> float | None:
    """The peer's figure over labkeep's (above 1: labkeep is better), or None."""
    return round(peer / ours, 3) if peer is not None and ours else None


def result_row(
    id: str,
    figure: str,
    unit: str,
    better: str,
    labkeep: float | None,
    peer: float | None = None,
    *,
    target: str | None = None,
    target_value: float | None = None,
    labkeep_detail: str = "",
    peer_detail: str = "",
) -> dict[str, Any]:
    """A results row: the ratio says how many times better labkeep is (``better``: "higher"
    or "lower" is better), ``target_met`` whether labkeep reached ``target_value``."""
    ratio = None
    if labkeep and peer:
        ratio = labkeep / peer if better == "higher" else peer / labkeep
    met = None
    if target_value is not None and labkeep is not None:
        met = labkeep >= target_value if better == "higher" else labkeep <= target_value
    return {
        "id": id,
        "figure": figure,
        "unit": unit,
        "better": better,
        "labkeep": labkeep,
        "peer": peer,
        "target": target,
        "target_value": target_value,
        "labkeep_detail": labkeep_detail,
        "peer_detail": peer_detail,
        "labkeep_error": None,
        "peer_error": None,
        "comparable": labkeep is not None and peer is not None,
        "ratio": ratio,
        "target_met": met,
    }


def compared_row(
    row_id: str, figure: str, unit: str, ours: float, peer: float | None, digits: int = 1
) -> dict[str, Any]:
    """A results row for a figure both tools were measured on, with no target."""
    return {
        "id": row_id,
        "figure": figure,
        "unit": unit,
        "labkeep": round(ours, digits),
        "peer": None if peer is None else round(peer, digits),
        "ratio": ratio(peer, ours),
        "target": "",
        "target_met": None,
    }


class Scratch:
    """Temporary store directories for one benchmark session, removed on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0

    def new(self, prefix: str = "store") -> Path:
        self._count += 1
        path = self.root / f"{prefix}-{self._count:03d}"
        path.mkdir(parents=True)
        return path


@contextmanager
def scratch(keep: bool = False) -> Iterator[Scratch]:
    """Yield a `Scratch` under a temp dir; everything in it is removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="labkeep-bench-"))
    try:
        yield Scratch(root)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def dir_bytes(path: Path) -> int:
    """Total size of the regular files under `path` (database, WAL, anything else in it)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def machine_info(python: Path | None = None) -> dict[str, Any]:
    """CPU model, cores, RAM, OS and Python version of this machine, for the results file."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib: float | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    py_version = platform.python_version()
    if python is not None:
        py_version = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "os": platform.platform(),
        "python": py_version,
        # Other work on the machine skews timings; the 1-minute load average shows how much.
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def package_version(interp: Interpreter, distribution: str, module: str) -> str | None:
    """Version of `module` as the interpreter sees it (None if it cannot be imported)."""
    code = (
        "import importlib.metadata as m\n"
        f"try:\n    print(m.version({distribution!r}))\n"
        f"except m.PackageNotFoundError:\n    import {module}; print({module}.__version__)\n"
    )
    proc = subprocess.run(
        [str(interp.python), "-c", code],
        env=interp.environ(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write a benchmark's results as `.bench/results/<name>.json` (what run_all.py reads)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"benchmark": name, "date": _dt.datetime.now().astimezone().isoformat(), **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def default_labkeep_interpreter() -> Interpreter:
    """This interpreter, importing labkeep from this checkout's `src/`."""
    return Interpreter(
        label="labkeep", python=Path(sys.executable), env={"PYTHONPATH": str(REPO_ROOT / "src")}
    )


def format_value(value: float | None, unit: str) -> str:
    """A figure for a table: `1,234 ms`, `7.3 ms`, `253.1 B`, `312,000` (rates)."""
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms"
    if unit == "B/point":
        return f"{value:,.1f} B"
    if unit == "s":
        return f"{value:,.2f} s"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.2f}"


def format_ratio(ratio: float | None) -> str:
    """labkeep's advantage as `37x` or `0.85x` (below 1: the peer is better)."""
    if ratio is None:
        return "—"
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:,.2f}x"


def _prelude(store: Path | None, params: Params | None) -> str:
    lines = [f"STORE = {str(store)!r}"] if store is not None else []
    lines += [f"{key} = {value!r}" for key, value in (params or {}).items()]
    return "".join(line + "\n" for line in lines)


def _figures(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines or not lines[-1].lstrip().startswith("{"):
        return {}
    try:
        value = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _median_figures(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = {k for run in runs for k, v in run.items() if isinstance(v, int | float)}
    return {
        k: statistics.median(float(run[k]) for run in runs if isinstance(run.get(k), int | float))
        for k in sorted(keys)
    }
