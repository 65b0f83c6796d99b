"""Logging 1,000 small images: ``run.log({"samples": labkeep.Image(a)}, step=i)`` against
``mlflow.log_image(a, key="samples", step=i)``, time and bytes on disk; and how fast the
labkeep server answers the request the UI's image panel makes for one step.

Run: ``PYTHONPATH=src python benchmarks/bench_media.py [--quick] [--repeat N] [--images N]``.

Each logging measurement is a fresh process on a fresh store created before the clock
starts (labkeep: one empty run; MLflow: its database migrated and an experiment made). The
images are the same for both tools: 32x32 RGB uint8 noise from a fixed seed (the worst case
for PNG compression, so neither tool gains from the content), made before the clock. "log"
spans starting the run, logging every image at its own step and ending the run (labkeep's
``finish`` waits until the store holds every record; MLflow writes the images on background
threads, waited for with ``mlflow.flush_artifact_async_logging()``). Bytes are what the store directory
holds afterwards minus what it held before: ``bytes`` the files' sizes, ``disk bytes`` the
blocks the file system allocated for them (``st_blocks``; one small file costs a whole
block), both counting the database.

The panel figure: the last labkeep store is served by ``labkeep``'s app under uvicorn in a
subprocess, and ``GET /api/v1/runs/1/media/content?key=samples&step=S`` (what the slider
asks for; a PNG) is timed for steps spread over the run, each asked once, plus the entries
list the panel loads first (``/media/entries``, every step's meta).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    LABKEEP_STORE,
    MLFLOW_STORE,
    STORE_BYTES,
    compared_row,
    default_labkeep_interpreter,
    measure_pair,
    mlflow_peer,
    scratch,
    write_mlflow_results,
)

#: The panel shows any step within this (the issue's target).
PANEL_TARGET_MS = 200.0

IMAGES = (
    "import numpy as np\n"
    "IMAGES = np.random.default_rng(0).integers(0, 256, (N, 32, 32, 3), dtype=np.uint8)\n"
)

LABKEEP = (
    STORE_BYTES
    + IMAGES
    + LABKEEP_STORE
    + """
before, disk_before, files_before = size(STORE), disk(STORE), files(STORE)
blobs_before = size(f"{STORE}/blobs")
t0 = time.perf_counter()
with labkeep.init(store=STORE, capture=False, system_metrics=0) as run:
    for i in range(N):
        run.log({"samples": labkeep.Image(IMAGES[i])}, step=i)
t1 = time.perf_counter()
media = labkeep.get_run(run.uuid, store=STORE).media("samples")
assert len(media) == N and (media[N // 2].to_numpy() == IMAGES[N // 2]).all()
print(json.dumps({"log_ms": (t1 - t0) * 1e3, "bytes": size(STORE) - before,
                  "disk_bytes": disk(STORE) - disk_before,
                  "file_bytes": size(f"{STORE}/blobs") - blobs_before,
                  "files": files(STORE) - files_before}))
"""
)

MLFLOW_CODE = (
    STORE_BYTES
    + IMAGES
    + MLFLOW_STORE
    + """
before, disk_before, files_before = size(STORE), disk(STORE), files(STORE)
t0 = time.perf_counter()
with mlflow.start_run(experiment_id=experiment):
    for i in range(N):
        mlflow.log_image(IMAGES[i], key="samples", step=i)
# log_image writes its files on background threads, still at work when the run ends: the
# clock stops when they are written, as labkeep's finish() waits for its store.
mlflow.flush_artifact_async_logging()
deadline = time.monotonic() + 300
while (written(STORE, ".png") < N or written(STORE, ".webp") < N) and time.monotonic() < deadline:
    time.sleep(0.005)  # every image's PNG and WebP files in place
t1 = time.perf_counter()
print(json.dumps({"log_ms": (t1 - t0) * 1e3, "bytes": size(STORE) - before,
                  "disk_bytes": disk(STORE) - disk_before,
                  "file_bytes": size(f"{STORE}/artifacts"),
                  "files": files(STORE) - files_before}))
"""
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def panel_timings(store: Path, images: int, asks: int) -> dict[str, float]:
    """Wall times of the panel's requests against a server on ``store`` (in a subprocess)."""
    import httpx

    port = _free_port()
    code = (
        "import uvicorn\n"
        "from labkeep.server import create_app\n"
        f"uvicorn.run(create_app({str(store)!r}), host='127.0.0.1', port={port}, "
        "log_level='warning')\n"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    server = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": src})
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/health")
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            entries_ms = []
            for _ in range(5):
                t0 = time.perf_counter()
                response = client.get("/runs/last/media/entries", params={"key": "samples"})
                entries_ms.append((time.perf_counter() - t0) * 1e3)
                response.raise_for_status()
            assert len(response.json()["entries"]) == images
            steps = random.Random(0).sample(range(images), min(asks, images))
            step_ms = []
            for step in steps:
                t0 = time.perf_counter()
                response = client.get(
                    "/runs/last/media/content", params={"key": "samples", "step": step}
                )
                step_ms.append((time.perf_counter() - t0) * 1e3)
                response.raise_for_status()
                assert response.headers["content-type"] == "image/png"
    finally:
        server.terminate()
        server.wait(30)
    step_ms.sort()
    return {
        "step_median_ms": statistics.median(step_ms),
        "step_p95_ms": step_ms[max(0, round(0.95 * len(step_ms)) - 1)],
        "step_max_ms": step_ms[-1],
        "entries_median_ms": statistics.median(entries_ms),
        "entries_max_ms": max(entries_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images, one measured run each")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--no-peer", action="store_true", help="labkeep only")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    images = 200 if args.quick else args.images
    labkeep = default_labkeep_interpreter()
    peer, peer_note = mlflow_peer(args.no_peer)
    rows: list[dict[str, Any]] = []
    with scratch() as dirs:
        stores: list[Path] = []

        def labkeep_store() -> Path:
            stores.append(dirs.new("labkeep") / "store")
            return stores[-1]

        ours, theirs = measure_pair(
            labkeep,
            LABKEEP,
            peer,
            MLFLOW_CODE,
            repeat=repeat,
            labkeep_store=labkeep_store,
            peer_store=dirs.new,
            params={"N": images},
        )
        for key, label, unit in (
            ("log_ms", f"log {images:,} 32x32 RGB images (start run, log, end run)", "ms"),
            ("bytes", "bytes added to the store (database and files)", "B"),
            ("disk_bytes", "disk space added (allocated blocks)", "B"),
            ("file_bytes", "bytes of the image files (labkeep blobs, MLflow artifacts)", "B"),
            ("files", "files added", "files"),
        ):
            value = ours.figures[key]
            other = theirs.figures.get(key) if theirs else None
            rows.append(compared_row(key, label, unit, value, other))
            line = f"{key:<12} labkeep {value:>14,.1f}"
            if other is not None:
                line += f"   mlflow {other:>14,.1f}"
            print(line, flush=True)
        panel = panel_timings(stores[-1], images, asks=100 if not args.quick else 30)
    for key, label, target in (
        ("step_median_ms", "image panel: one step's image (median)", None),
        ("step_p95_ms", "image panel: one step's image (95th percentile)", None),
        ("step_max_ms", "image panel: one step's image (slowest)", PANEL_TARGET_MS),
        ("entries_median_ms", f"image panel: the entries of {images:,} steps (median)", None),
        ("entries_max_ms", f"image panel: the entries of {images:,} steps (slowest)", None),
    ):
        value = panel[key]
        rows.append(
            {
                "id": key,
                "figure": label,
                "unit": "ms",
                "labkeep": round(value, 2),
                "peer": None,
                "peer_text": "not measured",
                "ratio": None,
                "target": f"≤ {PANEL_TARGET_MS:.0f} ms" if target else "",
                "target_met": value <= target if target else None,
            }
        )
        print(f"{key:<18} {value:8.2f} ms", flush=True)
    write_mlflow_results(
        "media",
        title="Media (1,000 images through run.log against mlflow.log_image)",
        quick=args.quick,
        peer=peer,
        peer_note=peer_note,
        rows=rows,
        runs={
            "labkeep": list(ours.runs),
            "mlflow": list(theirs.runs) if theirs else None,
            "panel": panel,
        },
        notes=[
            f"medians of {repeat} fresh processes per logging figure; a store made before the "
            "clock",
            "the same 32x32 RGB noise images for both tools (incompressible: PNG gains nothing)",
            "labkeep stores one PNG blob per distinct image and one database row per step; "
            "MLflow 3.17 writes each image as a PNG file plus a compressed WebP copy (for noise "
            "images the copy is the larger file), on background threads that are still writing "
            "when the run ends: its clock stops after mlflow.flush_artifact_async_logging()",
            "store bytes include SQLite's write-ahead log as the process left it (labkeep's "
            "store runs in WAL mode; the log's space is reused, not grown, by later writes)",
            "panel figures: requests to labkeep's server (uvicorn, 127.0.0.1) for 100 steps in "
            "random order, each asked once; MLflow's UI was not measured",
        ],
    )


if __name__ == "__main__":
    main()
