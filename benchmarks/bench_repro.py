"""What capture adds to a run, end to end, and what 100 snapshots of unchanged code cost.

In a git repository of 1,000 source files with 150 installed distributions (synthetic ones
added to reach it), a fresh process starts and finishes runs through ``Client.start_run``,
alternately with ``capture=True`` and ``capture=False``; the added time is the difference of
the medians. Then 100 captured runs of the unchanged tree are made in a fresh store, and the
blob directory and database are measured after the first and after the hundredth. Guild's
``pip freeze`` and MLflow's git context (three git processes) are timed as reference points.
Results go to ``.bench/results/repro.json``.

    PYTHONPATH=src python benchmarks/bench_repro.py [--files 1000] [--repeat 9] [--runs 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_capture import build_repo, time_mlflow_style_git, time_subprocess

CHILD = r"""
import json, statistics, sys, time
from pathlib import Path
from labkeep._client import Client

store, repo, repeat, runs = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
client = Client(store)

def one(capture):
    t = time.perf_counter()
    run = client.start_run(experiment="bench", capture=capture, system_metrics=None,
                           argv=["train.py"], entry_point="train.py", cwd=repo)
    run.log({"loss": 1.0})
    run.finish()
    return (time.perf_counter() - t) * 1000

out = {"cold_with_capture_ms": one(True)}
with_capture, without = [], []
for _ in range(repeat):
    without.append(one(False))
    with_capture.append(one(True))
out["with_capture_ms"] = with_capture
out["without_capture_ms"] = without
print(json.dumps(out))
"""

SPACE = r"""
import json, os, sys
from pathlib import Path
from labkeep._client import Client

store, repo, runs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
client = Client(store)

def size(path):
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0

def db_size():
    # bytes of the database and of its snapshots table, after a WAL checkpoint
    import sqlite3
    con = sqlite3.connect(client.location.sqlite_path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = con.execute("PRAGMA page_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
        table = con.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'snapshots'").fetchone()[0]
    finally:
        con.close()
    return pages, table or 0

def make(capture=True):
    run = client.start_run(experiment="space", capture=capture, system_metrics=None,
                           argv=["train.py"], entry_point="train.py", cwd=repo)
    run.log({"loss": 1.0})
    run.finish()

make()
blobs = client.location.blob_dir
after_one = {"blob_bytes": size(blobs), "blob_files": sum(1 for f in blobs.rglob("*") if f.is_file()),
             "db_bytes": db_size()[0], "snapshots_table_bytes": db_size()[1]}
for _ in range(runs - 1):
    make()
after_all = {"blob_bytes": size(blobs), "blob_files": sum(1 for f in blobs.rglob("*") if f.is_file()),
             "db_bytes": db_size()[0], "snapshots_table_bytes": db_size()[1]}
numbers = [i.number for i in client.store.list_runs(limit=None)]
rows = [len(json.dumps(client.store.get_snapshot(n), separators=(",", ":"))) for n in numbers]
for _ in range(runs):
    make(capture=False)
after_plain = {"db_bytes": db_size()[0]}
print(json.dumps({"after_1": after_one, "after_n": after_all, "after_n_more_without_capture": after_plain,
                  "snapshot_row_bytes_median": sorted(rows)[len(rows) // 2],
                  "snapshot_row_bytes_max": max(rows)}))
"""


def pad_dir(target: int, where: Path) -> tuple[Path, int]:
    """A directory of synthetic ``*.dist-info`` entries that brings the count to ``target``."""
    from labkeep.capture import list_distributions

    missing = max(0, target - len(list_distributions()[0]))
    where.mkdir(parents=True)
    for i in range(missing):
        info = where / f"benchpad{i:03d}-1.{i}.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Name: benchpad{i:03d}\nVersion: 1.{i}.0\n\n")
    return where, missing


def _child(code: str, args: list[str], cwd: Path, pythonpath: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--packages", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path(".bench/results/repro.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labkeep-bench-repro-") as tmp:
        base = Path(tmp)
        repo = base / "repo"
        build_repo(repo, args.files)
        pad, padded = pad_dir(args.packages, base / "site")
        pythonpath = os.pathsep.join([*sys.path[1:], str(pad)])

        timing = _child(
            CHILD, [str(base / "store-time"), str(repo), str(args.repeat), "0"], repo, pythonpath
        )
        with_capture = statistics.median(timing["with_capture_ms"])  # type: ignore[arg-type]
        without = statistics.median(timing["without_capture_ms"])  # type: ignore[arg-type]
        space = _child(
            SPACE, [str(base / "store-space"), str(repo), str(args.runs)], repo, pythonpath
        )
        freeze = time_subprocess([sys.executable, "-m", "pip", "freeze"], repo, 3)
        mlflow_git = time_mlflow_style_git(repo, args.repeat)

    after_1, after_n = space["after_1"], space["after_n"]  # type: ignore[index]
    result = {
        "files": args.files,
        "packages": args.packages,
        "synthetic_packages": padded,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "run_ms_median_with_capture": round(with_capture, 1),
        "run_ms_median_without_capture": round(without, 1),
        "capture_added_ms_median": round(with_capture - without, 1),
        "cold_first_run_with_capture_ms": round(timing["cold_with_capture_ms"], 1),  # type: ignore[arg-type]
        "reference_pip_freeze_ms": freeze,
        "reference_mlflow_git_ms": mlflow_git,
        "space": space,
        "runs_for_space": args.runs,
        "blob_growth_bytes_1_to_n": after_n["blob_bytes"] - after_1["blob_bytes"],  # type: ignore[index]
        "db_growth_bytes_per_run": round(
            (after_n["db_bytes"] - after_1["db_bytes"]) / max(1, args.runs - 1)  # type: ignore[index]
        ),
        "db_growth_bytes_per_run_without_capture": round(
            (space["after_n_more_without_capture"]["db_bytes"] - after_n["db_bytes"])  # type: ignore[index]
            / args.runs
        ),
        "snapshots_table_growth_bytes_per_run": round(
            (after_n["snapshots_table_bytes"] - after_1["snapshots_table_bytes"])  # type: ignore[index]
            / max(1, args.runs - 1)
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
