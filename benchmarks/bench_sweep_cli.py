"""Sweeps from the command line: per-trial overhead beside Guild 0.9, parallel trials, a Dask
cluster, and whether labkeep's optimizers reach what Optuna reaches on its own.

- **Overhead.** ``labkeep run trivial.py 'x=[-2.0:2.0]' --optimizer random --max-trials N
  --minimize loss`` (labkeep asks for the objective Guild assumes: ``loss``) and Guild's
  ``guild run trivial.py x=[-2.0:2.0] --optimizer random --max-trials N -y`` (GUILD_HOME in a
  temporary directory), each at two sizes N1 < N2. Per trial is the slope of the linear fit
  through the two sizes, (T(N2) - T(N1)) / (N2 - N1): what one more trial costs, the
  controller's start-up left out. The detail also gives (T(N2) - one run's wall time) / N2.
- **Parallel.** A trial that burns 1 s of its own CPU time (``time.process_time``, so trials
  that share a core take longer, as real work would) in a grid of N trials with
  ``--parallel 1`` and ``--parallel 2``; the rate is N over the span from the first trial's
  start to the last one's end, read from the store (the controller's start-up left out).
  Beside it, the machine's ceiling: two plain ``python busy.py`` together against one after
  the other (2.0 on two idle cores).
- **Dask.** The same trials with ``--dask tcp://127.0.0.1:PORT`` on a ``dask scheduler`` this
  benchmark starts, first with one ``dask worker --nthreads 1``, then with two.
- **Optimizers.** Seeded TPE (and GP when PyTorch is importable: it is ``labkeep[gp]``, not
  installed by default) on Guild's get-started function ``sin(5x)(1 - tanh(x^2)) + noise``
  (x in [-2, 2], noise 0.1, drawn from a generator seeded by x so both sides see one
  function) and on Branin, through ``labkeep.sweep`` and through Optuna's ``study.optimize``
  with the same sampler and seed; one TPE case also through ``labkeep run``. The same best
  value (to 1e-9) and the same point drawn by every trial mean the search is Optuna's.

Results of a whole run go to ``.bench/results/sweep_cli.json`` (RESULTS.md's section via
run_all.py); ``--only`` prints its figures and leaves that file as it was, unless ``--merge``
puts its rows in place of the same rows there. ``--repeat N`` measures the Dask ratio N times
on the same cluster and reports the median (a shared machine's load moves single figures).

    PYTHONPATH=src python benchmarks/bench_sweep_cli.py [--quick] [--only overhead,parallel,dask,optimizers] [--merge] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine_info, write_results
from _peers import GUILD, GUILD_ENV, PeerSetupError, ensure_peer, peer_version

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
SECTIONS = ("overhead", "parallel", "dask", "optimizers")

TRIVIAL = 'x = 0.0\nprint(f"loss: {x}")\n'

#: One CPU-second of work, however long the trial must wait for a core to get it.
BUSY = """\
import time
x = 0.0
seconds = 1.0
start = time.process_time()
while time.process_time() - start < seconds:
    pass
print(f"loss: {x}")
"""

#: Guild's get-started example, its noise drawn from a generator seeded by x.
NOISY = """\
import math, random
x = 0.0
noise = 0.1
loss = math.sin(5 * x) * (1 - math.tanh(x**2)) + noise * random.Random(repr(x)).gauss(0, 1)
print(f"loss: {loss!r}")
"""


def noisy(x: float, noise: float = 0.1) -> float:
    """The function NOISY prints, for the in-process side."""
    return math.sin(5 * x) * (1 - math.tanh(x**2)) + noise * random.Random(repr(x)).gauss(0, 1)


def branin(x1: float, x2: float) -> float:
    """Branin on [-5, 10] x [0, 15]; its minimum is 0.397887."""
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def labkeep_env(store: Path | str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    env["LABKEEP_HOME"] = str(store)
    env.update(extra)
    return env


def labkeep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "labkeep.cli", *args]


def timed(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    took = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(cmd[:6])}... exited {done.returncode}: {' | '.join(tail)}")
    return took


def last_sweep(store: Path | str) -> tuple[Any, list[Any]]:
    from labkeep._client import Client
    from labkeep.sweep._spec import get_sweep, sweep_trials

    client = Client(str(store))
    try:
        record, _spec = get_sweep(client, "last")
        return record, sweep_trials(client, record)
    finally:
        client.close()


def trial_rate(store: Path | str) -> tuple[float, int]:
    """Trials per second over the span of the last sweep's trials, and how many completed."""
    _sweep, trials = last_sweep(store)
    done = [t for t in trials if t.info.end_time]
    span = max(t.info.end_time for t in done) - min(t.info.start_time for t in done)
    return len(done) / span, len(done)


def fresh_dir(base: Path, name: str, script: str, text: str) -> Path:
    """An empty directory holding only the script (Guild snapshots everything beside it)."""
    path = base / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    (path / script).write_text(text)
    return path


# -- overhead ------------------------------------------------------------------------------


def bench_overhead(base: Path, quick: bool) -> list[dict[str, Any]]:
    sizes, repeat = ((4, 8), 1) if quick else ((10, 30), 3)
    guild_sizes, guild_repeat = ((2, 4), 1) if quick else ((5, 15), 2)
    work = fresh_dir(base, "overhead", "trivial.py", TRIVIAL)
    n1, n2 = sizes

    def labkeep_sweep(n: int, r: int) -> float:
        env = labkeep_env(base / f"overhead-store-{n}-{r}")
        return timed(labkeep_cmd("run", "trivial.py", "x=[-2.0:2.0]", "--optimizer", "random",
                                 "--max-trials", str(n), "--minimize", "loss", "-q"), work, env)  # fmt: skip

    single_store = base / "overhead-single"
    timed(labkeep_cmd("run", "trivial.py", "x=0.5", "-q"), work, labkeep_env(single_store))
    single = statistics.median(
        timed(labkeep_cmd("run", "trivial.py", "x=0.5", "-q"), work, labkeep_env(single_store))
        for _ in range(max(3, repeat))
    )
    t1 = statistics.median(labkeep_sweep(n1, r) for r in range(repeat))
    t2 = statistics.median(labkeep_sweep(n2, r) for r in range(repeat))
    slope = (t2 - t1) / (n2 - n1) * 1000
    row: dict[str, Any] = {
        "id": "cli_per_trial",
        "figure": "labkeep run sweep, random, trivial script: time per trial",
        "unit": "ms",
        "labkeep": round(slope, 1),
        "target": "≤ 250 ms",
        "target_met": slope <= 250,
        "labkeep_detail": (
            f"slope of the fit through {n1} and {n2} trials ({t1:.2f} s and {t2:.2f} s, "
            f"medians of {repeat}); (T({n2}) - one run's {single * 1000:.0f} ms) / {n2} = "
            f"{(t2 - single) / n2 * 1000:.0f} ms"
        ),
    }
    try:
        guild_python = ensure_peer(GUILD)
    except PeerSetupError as exc:
        row.update(peer=None, peer_error=str(exc))
        return [row]
    guild = str(guild_python.with_name("guild"))
    g1, g2 = guild_sizes

    def guild_run(*args: str) -> float:
        home = base / "guild-home"
        home.mkdir(exist_ok=True)
        env = {**os.environ, "GUILD_HOME": str(home), **GUILD_ENV}
        env.pop("PYTHONPATH", None)
        gwork = fresh_dir(base, "guild-work", "trivial.py", TRIVIAL)
        return timed([guild, "run", "trivial.py", *args, "-y"], gwork, env)

    try:
        guild_run("x=0.5")  # Guild's first run in a GUILD_HOME sets it up
        guild_single = statistics.median(guild_run("x=0.5") for _ in range(guild_repeat))

        def guild_sweep(n: int) -> float:
            return guild_run("x=[-2.0:2.0]", "--optimizer", "random", "--max-trials", str(n))

        gt1 = statistics.median(guild_sweep(g1) for _ in range(guild_repeat))
        gt2 = statistics.median(guild_sweep(g2) for _ in range(guild_repeat))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        row.update(peer=None, peer_error=str(exc))
        return [row]
    guild_slope = (gt2 - gt1) / (g2 - g1) * 1000
    row.update(
        peer=round(guild_slope, 1),
        ratio=round(guild_slope / slope, 2) if slope > 0 else None,
        peer_detail=(
            f"`guild run trivial.py x=[-2.0:2.0] --optimizer random --max-trials N -y`; slope "
            f"through {g1} and {g2} trials ({gt1:.2f} s and {gt2:.2f} s, medians of "
            f"{guild_repeat}); (T({g2}) - one run's {guild_single * 1000:.0f} ms) / {g2} = "
            f"{(gt2 - guild_single) / g2 * 1000:.0f} ms"
        ),
    )
    return [row]


# -- parallel and Dask ---------------------------------------------------------------------


def _busy_sweep(work: Path, store: Path, trials: int, *extra: str) -> tuple[float, float]:
    grid = "x=[" + ",".join(str(i) for i in range(trials)) + "]"
    wall = timed(labkeep_cmd("run", "busy.py", grid, "--minimize", "loss", "-q", *extra), work,
                 labkeep_env(store))  # fmt: skip
    rate, done = trial_rate(store)
    if done != trials:
        raise RuntimeError(f"{done} of {trials} trials completed")
    return rate, wall


_CEILING: list[float] = []


def machine_ceiling(base: Path) -> float:
    """What this machine gives two processes at once: the rate of two plain ``python busy.py``
    run together over the rate of two run one after the other (2.0 on two idle cores). On a
    loaded machine labkeep's ratios can reach no further than this."""
    if not _CEILING:
        script = fresh_dir(base, "ceiling", "busy.py", BUSY) / "busy.py"
        cmd = [sys.executable, str(script)]
        start = time.perf_counter()
        for _ in range(2):
            subprocess.run(cmd, check=True, capture_output=True)
        serial = time.perf_counter() - start
        start = time.perf_counter()
        together = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(2)]
        if any(proc.wait() != 0 for proc in together):
            raise RuntimeError("busy.py failed")
        _CEILING.append(serial / (time.perf_counter() - start))
    return _CEILING[0]


def bench_parallel(base: Path, quick: bool) -> list[dict[str, Any]]:
    trials = 4 if quick else 8
    work = fresh_dir(base, "parallel", "busy.py", BUSY)
    one, wall1 = _busy_sweep(work, base / "parallel-1", trials, "--parallel", "1")
    two, wall2 = _busy_sweep(work, base / "parallel-2", trials, "--parallel", "2")
    ceiling = machine_ceiling(base)
    ratio = two / one
    return [
        {
            "id": "parallel_ratio",
            "figure": f"--parallel 2 against --parallel 1, {trials} trials of 1 CPU-second",
            "unit": "",
            "labkeep": round(ratio, 2),
            "peer": None,
            "peer_text": "(baseline: --parallel 1)",
            "target": "≥ 1.8x",
            "target_met": ratio >= 1.8,
            "labkeep_detail": (
                f"{two:.2f} trials/s against {one:.2f} (first trial's start to last one's end); "
                f"whole command {wall2:.1f} s against {wall1:.1f} s; this machine's ceiling "
                f"(two plain `python busy.py` together against one after the other) {ceiling:.2f}x"
            ),
        }
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_dask(base: Path, quick: bool, repeat: int = 1) -> list[dict[str, Any]]:
    import distributed

    trials = 4 if quick else 8
    work = fresh_dir(base, "dask", "busy.py", BUSY)
    dask = [sys.executable, "-m", "dask"]  # the dask command, whichever venv runs this
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = labkeep_env(".", XDG_CACHE_HOME=str(base / "dask-worker-cache"))
    env.pop("LABKEEP_HOME")
    processes: list[subprocess.Popen[bytes]] = []
    logs = base / "dask-logs"
    logs.mkdir(exist_ok=True)

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as log:
            processes.append(subprocess.Popen([*dask, *args], env=env, cwd=base, stdout=log,
                                              stderr=subprocess.STDOUT))  # fmt: skip

    def worker(n: int) -> None:
        start(f"worker{n}", "worker", address, "--nworkers", "1", "--nthreads", "1",
              "--host", "127.0.0.1", "--no-dashboard")  # fmt: skip
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(n + 1, timeout=60)

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port),
              "--no-dashboard")  # fmt: skip
        worker(0)
        load = os.getloadavg()[0]
        ones = [_busy_sweep(work, base / f"dask-1-{i}", trials, "--dask", address)
                for i in range(repeat)]  # fmt: skip
        worker(1)
        twos = [_busy_sweep(work, base / f"dask-2-{i}", trials, "--dask", address)
                for i in range(repeat)]  # fmt: skip
        ceiling = machine_ceiling(base)
    finally:
        for proc in reversed(processes):
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    one, wall1 = sorted(ones)[len(ones) // 2]
    two, wall2 = sorted(twos)[len(twos) // 2]
    ratio = two / one
    each = ""
    if repeat > 1:
        each = (
            f"; median of {repeat}: one worker {', '.join(f'{r:.3f}' for r, _ in ones)}, "
            f"two {', '.join(f'{r:.3f}' for r, _ in twos)} trials/s"
        )
    return [
        {
            "id": "dask_ratio",
            "figure": f"Dask, two local workers against one, {trials} trials of 1 CPU-second",
            "unit": "",
            "labkeep": round(ratio, 2),
            "peer": None,
            "peer_text": "(baseline: one worker)",
            "target": "≥ 1.8x",
            "target_met": ratio >= 1.8,
            "labkeep_detail": (
                f"`--dask {address}`, workers `--nthreads 1`; {two:.2f} trials/s against "
                f"{one:.2f}; whole command {wall2:.1f} s against {wall1:.1f} s; this "
                f"machine's ceiling {ceiling:.2f}x (load average {load:.1f} at the start){each}"
            ),
        }
    ]


# -- optimizers ----------------------------------------------------------------------------

Problem = tuple[str, dict[str, tuple[float, float]], Callable[..., float]]
PROBLEMS: list[Problem] = [
    ("Guild's noisy 1-D function", {"x": (-2.0, 2.0)}, lambda x: noisy(x)),
    ("Branin", {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}, branin),
]


Points = list[tuple[float, ...]]


def _optuna_best(optimizer: str, seed: int, problem: Problem, trials: int) -> tuple[float, Points]:
    import optuna

    _name, bounds, fn = problem
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if optimizer == "tpe"
        else optuna.samplers.GPSampler(seed=seed)
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: fn(*(t.suggest_float(k, lo, hi) for k, (lo, hi) in bounds.items())),
        n_trials=trials,
    )
    points = [tuple(t.params[k] for k in bounds) for t in study.trials]
    return float(study.best_value), points


def _labkeep_best(
    optimizer: str, seed: int, problem: Problem, trials: int, store: Path
) -> tuple[float, Points]:
    import labkeep

    _name, bounds, fn = problem
    result = labkeep.sweep(
        lambda run: fn(*(run.config[k] for k in bounds)),
        space={k: labkeep.uniform(lo, hi) for k, (lo, hi) in bounds.items()},
        minimize="loss",
        n_trials=trials,
        optimizer=optimizer,
        options={"seed": seed},
        store=str(store),
    )
    assert result.best_value is not None
    ordered = sorted(result.trials, key=lambda t: t.number)
    return float(result.best_value), [tuple(t.config[k] for k in bounds) for t in ordered]


def _parity_row(
    case: str,
    optimizer: str,
    seed: int,
    mine: tuple[float, Points],
    theirs: tuple[float, Points],
) -> dict[str, Any]:
    """The peer column of these rows is Optuna's (in peer_text), not Guild's. Same means the
    same best value (to 1e-9) and the same points drawn in the same order."""
    (best, points), (optuna_best, optuna_points) = mine, theirs
    trials = len(optuna_points)
    alike = sum(
        len(a) == len(b)
        and all(math.isclose(u, v, rel_tol=1e-12) for u, v in zip(a, b, strict=True))
        for a, b in zip(points, optuna_points, strict=False)
    )
    same = math.isclose(best, optuna_best, rel_tol=1e-9, abs_tol=1e-9) and alike == trials
    same = same and len(points) == trials
    return {
        "id": f"best_{optimizer}_{case}".replace(" ", "_").replace("'", "").lower(),
        "figure": f"{optimizer.upper()}, seed {seed}, {trials} trials: best value, {case}",
        "unit": "",
        "labkeep": best,
        "peer": None,
        "peer_text": f"Optuna: {optuna_best:.6g}",
        "target": "same as Optuna",
        "target_met": same,
        "labkeep_detail": (
            f"{best!r} against Optuna's {optuna_best!r}; {alike} of {trials} trials drew the "
            "same point as Optuna's, in the same order"
        ),
    }


def bench_optimizers(base: Path, quick: bool) -> tuple[list[dict[str, Any]], list[str]]:
    import importlib.util

    seed = 7
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    optimizers = [("tpe", 30 if quick else 100)]
    if importlib.util.find_spec("torch") is not None:
        import torch

        optimizers.append(("gp", 15 if quick else 40))
        notes.append(f"GP ran with PyTorch {torch.__version__} (10 random start-up trials).")
    else:
        notes.append(
            "GP not measured: PyTorch is not importable here. It comes with `labkeep[gp]`; "
            "torch 2.14.1 from PyPI is a 555 MB wheel plus about 2.1 GB of NVIDIA CUDA wheels "
            "(download.pytorch.org's CPU-only index was unreachable). TPE always runs."
        )
    for optimizer, trials in optimizers:
        for problem in PROBLEMS:
            name = problem[0]
            store = base / f"opt-{optimizer}-{len(rows)}"
            mine = _labkeep_best(optimizer, seed, problem, trials, store)
            theirs = _optuna_best(optimizer, seed, problem, trials)
            rows.append(_parity_row(f"{name}, labkeep.sweep", optimizer, seed, mine, theirs))

    # One case through the command line: the script prints the loss, labkeep reads it back.
    trials = 15 if quick else 40
    work = fresh_dir(base, "noisy", "noisy.py", NOISY)
    store = base / "opt-cli"
    timed(labkeep_cmd("run", "noisy.py", "x=[-2.0:2.0]", "--optimizer", "tpe", "--opt-flag",
                      f"seed={seed}", "--minimize", "loss", "--max-trials", str(trials), "-q"),
          work, labkeep_env(store))  # fmt: skip
    sweep, records = last_sweep(store)
    ordered = sorted(records, key=lambda r: r.info.number)
    mine = (float(sweep.summary["best.value"]), [(r.params["x"],) for r in ordered])
    theirs = _optuna_best("tpe", seed, PROBLEMS[0], trials)
    rows.append(_parity_row(f"{PROBLEMS[0][0]}, labkeep run", "tpe", seed, mine, theirs))
    rows[-1]["labkeep_detail"] += (
        f"; `labkeep run noisy.py x=[-2.0:2.0] --optimizer tpe --opt-flag seed={seed} "
        f"--minimize loss --max-trials {trials}`"
    )
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: about a minute")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument(
        "--merge", action="store_true",
        help="with --only: put these rows in place of the same rows of the last whole run's file",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1, help="Dask: measurements to take the median of"
    )
    args = parser.parse_args()
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section {sorted(unknown)[0]!r}; choose from {', '.join(SECTIONS)}")

    import optuna

    machine = machine_info()
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    failed: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labkeep-bench-sweep-cli-") as tmp:
        base = Path(tmp)
        for section in wanted:
            print(f"[sweep_cli] {section}...", file=sys.stderr, flush=True)
            try:
                if section == "overhead":
                    rows += bench_overhead(base, args.quick)
                elif section == "parallel":
                    rows += bench_parallel(base, args.quick)
                elif section == "dask":
                    rows += bench_dask(base, args.quick, max(1, args.repeat))
                else:
                    found, more = bench_optimizers(base, args.quick)
                    rows += found
                    notes += more
            except Exception as exc:  # one section failing must not hide the others
                failed.append(section)
                rows.append({"id": section, "figure": section, "labkeep_error": str(exc)})
    notes.append(
        f"Whole benchmark: {time.perf_counter() - started:.0f} s. Optimizer rows compare best "
        "values to 1e-9; the peer column there is Optuna "
        f"{optuna.__version__} used directly with the same sampler and seed."
    )
    payload = {
        "title": "Sweeps: labkeep run against Guild, parallel trials, Dask, Optuna's optimizers",
        "quick": args.quick,
        "peer": {"name": "Guild", "version": peer_version(GUILD)},
        "machine": machine,
        "rows": rows,
        "notes": notes,
    }
    print(json.dumps(payload, indent=2))
    if wanted == list(SECTIONS):  # a partial run leaves the last whole one's results
        path = write_results("sweep_cli", payload)
        print(f"results: {path}", file=sys.stderr)
    elif args.merge and not failed:
        path = merge_rows("sweep_cli", payload)
        print(
            f"results: {path} (rows {', '.join(r['id'] for r in rows)} replaced)", file=sys.stderr
        )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


def merge_rows(name: str, payload: dict[str, Any]) -> Path:
    """The last whole run's results with ``payload``'s rows in place of the rows of the same
    id, and a note of when and where those were measured."""
    from _harness import RESULTS_DIR

    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"no {path} to merge into: run every section once first")
    whole = json.loads(path.read_text())
    fresh = {row["id"]: row for row in payload["rows"]}
    whole["rows"] = [fresh.pop(row["id"], row) for row in whole["rows"]] + list(fresh.values())
    machine = payload["machine"]
    whole.setdefault("notes", []).append(
        f"Rows {', '.join(r['id'] for r in payload['rows'])} measured again on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine.get('cpu', '?')}, "
        f"{machine.get('cores', '?')} cores; load average then {os.getloadavg()[0]:.1f}."
    )
    path.write_text(json.dumps(whole, indent=2) + "\n")
    return path


if __name__ == "__main__":
    main()
