"""``labkeep run`` against plain ``python`` and Guild AI 0.9: start overhead, flag detection,
and whether a script printing 100,000 lines/s is slowed down.

Run: ``PYTHONPATH=src python benchmarks/bench_runner.py``. Guild is used from
``.bench/guild-venv`` when present (``python3 -m venv .bench/guild-venv &&
.bench/guild-venv/bin/pip install 'guildai==0.9.*'``). Prints a table and writes
``.bench/results/runner.json``.

Targets: overhead of ``labkeep run trivial.py`` over ``python trivial.py`` <= 250 ms; flag
detection of an argparse script <= 300 ms cold and <= 20 ms cached; a script printing
100,000 lines/s keeps (nearly) its speed under ``labkeep run``, with every line stored.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import labkeep

ROOT = Path(__file__).resolve().parents[1]
SRC = str(Path(labkeep.__file__).resolve().parents[1])
GUILD = ROOT / ".bench" / "guild-venv" / "bin" / "guild"
RESULTS = ROOT / ".bench" / "results" / "runner.json"
GUILD_HOME = Path(".bench/guild-home")  # set per run by main()
REPEAT = 7
SPAM_LINES = 500_000

TRIVIAL = "x = 1\n"
ARGPARSE = """\
import argparse
p = argparse.ArgumentParser()
p.add_argument("--learning_rate", type=float, default=0.01)
p.add_argument("--batch_size", type=int, default=32)
p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
args = p.parse_args()
"""
SPAM = f"""\
import sys, time
start = time.perf_counter()
write = sys.stdout.write
for i in range({SPAM_LINES}):
    write(f"step {{i}} loss={{1 / (i + 1):.5f}} some text to make it a realistic line\\n")
sys.stdout.flush()
elapsed = time.perf_counter() - start
open("elapsed.txt", "w").write(repr(elapsed))
"""


def env(store: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    # An installed labkeep has its bytecode compiled (pip does that); without it every run
    # would compile the whole package again, and that is not what a user waits for.
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, e.get("PYTHONPATH")) if p)
    e["LABKEEP_HOME"] = str(store)
    return e


def timed(argv: list[str], cwd: Path, environ: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, cwd=cwd, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - start


def median_of(argv: list[str], cwd: Path, environ: dict[str, str], warmup: int = 1) -> float:
    for _ in range(warmup):
        timed(argv, cwd, environ)
    return statistics.median(timed(argv, cwd, environ) for _ in range(REPEAT))


def bench_overhead(work: Path, store: Path) -> dict[str, Any]:
    (work / "trivial.py").write_text(TRIVIAL)
    e = env(store)
    python = median_of([sys.executable, "trivial.py"], work, e)
    labkeep_run = median_of(
        [sys.executable, "-m", "labkeep.cli", "run", "-q", "trivial.py"], work, e
    )
    result: dict[str, Any] = {
        "python_s": python,
        "labkeep_run_s": labkeep_run,
        "labkeep_overhead_ms": (labkeep_run - python) * 1000,
        "target_ms": 250,
    }
    if GUILD.exists():
        GUILD_HOME.mkdir(exist_ok=True)
        guild_env = {**os.environ, "GUILD_HOME": str(GUILD_HOME)}
        guild_env.pop("PYTHONDONTWRITEBYTECODE", None)
        guild = median_of([str(GUILD), "run", "-y", "trivial.py"], work, guild_env)
        result["guild_run_s"] = guild
        result["guild_overhead_ms"] = (guild - python) * 1000
    return result


def bench_detection(work: Path) -> dict[str, Any]:
    from labkeep.runner._detect import detect_flags

    script = work / "main.py"
    script.write_text(ARGPARSE)
    cold = []
    for _ in range(REPEAT):
        cache = Path(tempfile.mkdtemp(dir=work))
        start = time.perf_counter()
        detect_flags(script, cache)
        cold.append(time.perf_counter() - start)
    cached = []
    for _ in range(REPEAT * 3):
        start = time.perf_counter()
        flags = detect_flags(script, cache)
        cached.append(time.perf_counter() - start)
    assert [f.name for f in flags] == ["learning_rate", "batch_size", "optimizer"]
    return {
        "cold_ms": statistics.median(cold) * 1000,
        "cached_ms": statistics.median(cached) * 1000,
        "target_cold_ms": 300,
        "target_cached_ms": 20,
    }


def script_rate(argv: list[str], work: Path, environ: dict[str, str]) -> tuple[float, float]:
    """Lines/s the spam script reached (its own clock) and the command's wall time."""
    (work / "elapsed.txt").unlink(missing_ok=True)
    wall = timed(argv, work, environ)
    return SPAM_LINES / float((work / "elapsed.txt").read_text()), wall


def bench_output(work: Path, store: Path) -> dict[str, Any]:
    (work / "spam.py").write_text(SPAM)
    e = env(store)
    # ``python spam.py | consumer``: a reader on the pipe, as a terminal would be.
    plain = [sys.executable, "-c", "import subprocess, sys; subprocess.run([sys.executable, "
             "'spam.py'], stdout=subprocess.PIPE)"]  # fmt: skip
    rate_plain, wall_plain = script_rate(plain, work, e)
    rate_lk, wall_lk = script_rate([sys.executable, "-m", "labkeep.cli", "run", "spam.py"], work, e)
    from labkeep._client import Client

    client = Client(store)
    try:
        run = client.get_run("last")
        stored = len(client.store.get_output(run.number))
        scalars = run.metrics["loss"].count
    finally:
        client.close()
    result: dict[str, Any] = {
        "lines": SPAM_LINES,
        "python_lines_per_s": rate_plain,
        "labkeep_lines_per_s": rate_lk,
        "python_wall_s": wall_plain,
        "labkeep_wall_s": wall_lk,
        "labkeep_lines_stored": stored,
        "labkeep_loss_points": scalars,
        "target_lines_per_s": 100_000,
    }
    if GUILD.exists():
        guild_env = {**os.environ, "GUILD_HOME": str(GUILD_HOME)}
        guild_env.pop("PYTHONDONTWRITEBYTECODE", None)
        # Guild runs the script in its run directory: elapsed.txt lands there.
        start = time.perf_counter()
        subprocess.run([str(GUILD), "run", "-y", "spam.py"], cwd=work, env=guild_env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # fmt: skip
        result["guild_wall_s"] = time.perf_counter() - start
        found = sorted((GUILD_HOME / "runs").glob("*/elapsed.txt"), key=os.path.getmtime)
        if found:
            result["guild_lines_per_s"] = SPAM_LINES / float(found[-1].read_text())
    return result


def _loads(values: tuple[float, ...] | list[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


def main() -> None:
    global GUILD_HOME
    base = Path(tempfile.mkdtemp(prefix="labkeep-bench-runner-"))
    work, store, GUILD_HOME = base / "work", base / "store", base / "guild-home"
    work.mkdir()
    load_before = os.getloadavg()
    try:
        overhead = bench_overhead(work, store)
        detection = bench_detection(work)
        output = bench_output(work, store)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = [
        ("python trivial.py", f"{overhead['python_s'] * 1000:.0f} ms", ""),
        ("labkeep run trivial.py", f"{overhead['labkeep_run_s'] * 1000:.0f} ms",
         f"overhead {overhead['labkeep_overhead_ms']:.0f} ms (target <= 250)"),
    ]  # fmt: skip
    if "guild_run_s" in overhead:
        rows.append(("guild run -y trivial.py", f"{overhead['guild_run_s'] * 1000:.0f} ms",
                     f"overhead {overhead['guild_overhead_ms']:.0f} ms"))  # fmt: skip
    rows += [
        ("flags, argparse, cold", f"{detection['cold_ms']:.0f} ms", "target <= 300"),
        ("flags, argparse, cached", f"{detection['cached_ms']:.2f} ms", "target <= 20"),
        ("python spam.py | pipe", f"{output['python_lines_per_s']:,.0f} lines/s",
         f"wall {output['python_wall_s']:.2f} s"),
        ("labkeep run spam.py", f"{output['labkeep_lines_per_s']:,.0f} lines/s",
         f"wall {output['labkeep_wall_s']:.2f} s, {output['labkeep_lines_stored']:,} lines and "
         f"{output['labkeep_loss_points']:,} loss points stored"),
    ]  # fmt: skip
    if "guild_lines_per_s" in output:
        rows.append(("guild run -y spam.py", f"{output['guild_lines_per_s']:,.0f} lines/s",
                     f"wall {output['guild_wall_s']:.2f} s"))  # fmt: skip
    load = {"before": list(load_before), "after": list(os.getloadavg())}
    rows.append(("load average (1/5/15 min)", "", f"before {_loads(load_before)}, "
                 f"after {_loads(os.getloadavg())}"))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>18}  {note}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "runner",
                "labkeep_version": labkeep.__version__,
                "python": platform.python_version(),
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "load_average": load,
                "guild": str(GUILD) if GUILD.exists() else None,
                "overhead": overhead,
                "flag_detection": detection,
                "output": output,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
