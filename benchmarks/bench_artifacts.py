"""Artifacts through S3-compatible object storage: labkeep's `run.log_artifact` and reading
the files back, against MLflow's `mlflow.log_artifacts` and `mlflow.artifacts.download_artifacts`
on the same S3 server (moto's server mode on 127.0.0.1, started here).

Run: ``PYTHONPATH=src python benchmarks/bench_artifacts.py [--quick] [--large-mb N]``.

Two workloads, each tool in a fresh process on a fresh bucket (so neither finds the content
there already), the clock around the call only (the run's start and end are outside):

- one large file of random bytes (1 GiB by default): upload, then download into an empty
  cache / destination;
- 10,000 small files of 1 KiB: upload as one directory, then download every file.

labkeep's store is a SQLite directory with ``LABKEEP_ARTIFACTS=s3://…``; MLflow's a SQLite
tracking database with the experiment's artifact location ``s3://…``. Both reach moto through
boto3 with the same AWS variables. The figures are MB/s (large) and files/s (small): higher
is better, so "labkeep advantage" is labkeep's rate over MLflow's. moto keeps objects in this
machine's memory and serves them from one Python process: the absolute rates are moto's as
much as the clients'; the ratio is the comparison.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Interpreter,
    SnippetError,
    default_labkeep_interpreter,
    machine_info,
    package_version,
    run_once,
    scratch,
    write_results,
)
from _peers import MLFLOW, PeerSetupError, ensure_peer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from s3_server import MotoServer  # the tests' S3 server: moto in a subprocess

LABKEEP_UPLOAD = """
import json, os, time
os.environ["LABKEEP_ARTIFACTS"] = ARTIFACTS
import labkeep
run = labkeep.init(store=STORE, experiment="bench")
t = time.perf_counter()
run.log_artifact(SOURCE, NAME)
took = time.perf_counter() - t
run.finish()
print(json.dumps({"s": took}))
"""

LABKEEP_DOWNLOAD = """
import json, os, time
from concurrent.futures import ThreadPoolExecutor
os.environ["LABKEEP_ARTIFACTS"] = ARTIFACTS
import labkeep
view = labkeep.runs(store=STORE)[0]
t = time.perf_counter()
names = [artifact.path for artifact in view.artifacts]
with ThreadPoolExecutor(8) as pool:  # as MLflow's download_artifacts does for a directory
    n = len(list(pool.map(view.artifact_path, names)))
took = time.perf_counter() - t
print(json.dumps({"s": took, "files": n}))
"""

MLFLOW_UPLOAD = """
import json, os, time, mlflow
mlflow.set_tracking_uri("sqlite:///" + os.path.join(STORE, "mlflow.db"))
experiment = mlflow.create_experiment("bench", artifact_location=ARTIFACTS)
with mlflow.start_run(experiment_id=experiment) as run:
    t = time.perf_counter()
    if os.path.isdir(SOURCE):
        mlflow.log_artifacts(SOURCE, NAME)
    else:
        mlflow.log_artifact(SOURCE)
    took = time.perf_counter() - t
print(json.dumps({"s": took}))
"""

MLFLOW_DOWNLOAD = """
import json, os, time, mlflow
mlflow.set_tracking_uri("sqlite:///" + os.path.join(STORE, "mlflow.db"))
run = mlflow.search_runs(experiment_names=["bench"], output_format="list")[0]
t = time.perf_counter()
got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=DEST)
took = time.perf_counter() - t
n = sum(len(files) for _, _, files in os.walk(got))
print(json.dumps({"s": took, "files": n}))
"""


def _write_large(path: Path, size: int) -> None:
    block = 16 << 20
    with open(path, "wb") as out:
        left = size
        while left > 0:
            out.write(secrets.token_bytes(min(block, left)))
            left -= block


def _write_small(root: Path, count: int, size: int) -> None:
    for i in range(count):
        folder = root / f"{i // 1000:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(secrets.token_bytes(size))


def _pair(
    lk: Interpreter,
    peer: Interpreter | None,
    moto: MotoServer,
    dirs: Any,
    source: Path,
    name: str,
) -> dict[str, dict[str, float] | str]:
    """Upload then download ``source`` with each tool; the figures of each, or its error."""
    out: dict[str, dict[str, float] | str] = {}
    for side, interp in (("labkeep", lk), ("peer", peer)):
        if interp is None:
            continue
        bucket = moto.new_bucket()
        store = dirs.new(f"{side}-{name}")
        params = {"SOURCE": str(source), "NAME": name, "ARTIFACTS": f"s3://{bucket}/runs"}
        upload, download = (
            (LABKEEP_UPLOAD, LABKEEP_DOWNLOAD)
            if side == "labkeep"
            else (MLFLOW_UPLOAD, MLFLOW_DOWNLOAD)
        )
        try:
            _, up = run_once(interp, upload, store=store, params=params, timeout=3600)
            params["DEST"] = str(dirs.new(f"{side}-{name}-dest"))
            _, down = run_once(interp, download, store=store, params=params, timeout=3600)
        except SnippetError as exc:
            out[side] = str(exc)
            continue
        out[side] = {"up_s": float(up["s"]), "down_s": float(down["s"]), "files": down["files"]}
    return out


def _rows(
    figures: dict[str, dict[str, float] | str], what: str, amount: float, unit: str
) -> list[dict[str, Any]]:
    rows = []
    for key, verb in (("up_s", "upload"), ("down_s", "download")):
        row: dict[str, Any] = {"figure": f"{verb} {what}", "unit": unit}
        for side in ("labkeep", "peer"):
            got = figures.get(side)
            if isinstance(got, str):
                row[f"{side}_error"] = got
            elif got is not None:
                row[side] = round(amount / got[key], 1)
                row[f"{side}_detail"] = f"{got[key]:.2f} s"
        if row.get("labkeep") and row.get("peer"):
            row["ratio"] = round(row["labkeep"] / row["peer"], 2)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 MB and 500 files")
    parser.add_argument("--large-mb", type=int, default=1024, help="size of the large file")
    parser.add_argument("--small-count", type=int, default=10_000)
    parser.add_argument("--small-bytes", type=int, default=1024)
    parser.add_argument("--no-peer", action="store_true", help="labkeep only")
    args = parser.parse_args()
    large_mb = 16 if args.quick else args.large_mb
    small_count = 500 if args.quick else args.small_count

    lk = default_labkeep_interpreter()
    peer: Interpreter | None = None
    peer_error = None
    if not args.no_peer:
        try:
            peer = Interpreter(label="mlflow", python=ensure_peer(MLFLOW, quiet=True))
        except PeerSetupError as exc:
            peer_error = str(exc)
    with scratch() as dirs:
        moto = MotoServer(log=dirs.root / "moto.log").start()
        try:
            env = {**moto.env(), "LABKEEP_PROGRESS": "0", "LABKEEP_CAPTURE": "0"}
            lk = Interpreter(lk.label, lk.python, {**lk.env, **env})
            if peer is not None:
                peer = Interpreter(peer.label, peer.python, {**peer.env, **env})
            data = dirs.new("data")
            large = data / "large.bin"
            _write_large(large, large_mb << 20)
            small = data / "small"
            _write_small(small, small_count, args.small_bytes)

            rows: list[dict[str, Any]] = []
            started = time.perf_counter()
            print(f"large file: {large_mb} MB", flush=True)
            figures = _pair(lk, peer, moto, dirs, large, "large.bin")
            rows += _rows(figures, f"a {large_mb:,} MB file", float(large_mb), "MB/s")
            print(f"{small_count:,} small files of {args.small_bytes} B", flush=True)
            figures = _pair(lk, peer, moto, dirs, small, "small")
            for side in ("labkeep", "peer"):
                got = figures.get(side)
                if isinstance(got, dict) and got["files"] != small_count:
                    figures[side] = f"read back {got['files']} files of {small_count}"
            rows += _rows(
                figures, f"{small_count:,} files of {args.small_bytes:,} B", small_count, "files/s"
            )
            took = time.perf_counter() - started
        finally:
            moto.stop()
    for row in rows:
        print(row, flush=True)
    moto_version = _moto_version()
    payload = {
        "title": "Artifacts through S3-compatible object storage",
        "quick": args.quick,
        "machine": machine_info(),
        "labkeep_version": package_version(lk, "labkeep", "labkeep"),
        "peer": {
            "name": "MLflow",
            "version": package_version(peer, MLFLOW.distribution, MLFLOW.module) if peer else None,
            "store": f"SQLite tracking, s3:// artifacts on moto {moto_version}",
        },
        "rows": rows,
        "notes": [
            f"One moto server ({moto_version}, in-memory, on 127.0.0.1) for both tools, a fresh "
            "bucket per tool and workload; one measured run each (the whole section took "
            f"{took:,.0f} s).",
            "labkeep hashes a file before it sends it (content addressing): a file under "
            "256 KiB goes in one PUT, a larger one only after a HEAD says it is not there yet "
            "(a second upload of the same content costs that HEAD); files of 64 MB or more go "
            "in 16 MB parts, 8 at a time; a directory's files go 8 at a time. A download not "
            "yet cached is one GET of the first 64 MB (all of a smaller blob; ranged parallel "
            "GETs for the rest of a larger one), checked against the sha256; the small files "
            "are read with 8 threads of the script's own.",
            "MLflow uploads each file with boto3's upload_file (multipart above 8 MB) and "
            "downloads with download_file after listing the run's artifacts.",
            *(["MLflow could not be set up: " + peer_error] if peer_error else []),
        ],
    }
    path = write_results("artifacts", payload)
    print(f"wrote {path}")


def _moto_version() -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import moto; print(moto.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "?"


if __name__ == "__main__":
    os.environ.setdefault("LABKEEP_PROGRESS", "0")
    main()
