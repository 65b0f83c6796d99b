"""What the bridge tests share: ``labkeep run`` in a subprocess, and reading what it recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import labkeep
from labkeep._client import Client
from labkeep._views import RunView

SRC = str(Path(labkeep.__file__).resolve().parents[1])
TOOL_MODULES = ("mlflow", "wandb", "sacred", "tensorboardX", "tensorboard", "torch", "labkeep")


def labkeep_run(cwd: Path, store: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("LABKEEP_", "WANDB_"))}
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, environ.get("PYTHONPATH")) if p)
    environ["LABKEEP_HOME"] = str(store)
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "run", "--no-scalars", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def last_run(store: Path) -> RunView:
    client = Client(store)
    try:
        return client.get_run("last")
    finally:
        client.close()


def series(run: RunView, key: str) -> list[tuple[int, float]]:
    points = run.series(key)
    return list(zip(points.steps.tolist(), points.values.tolist(), strict=True))


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path
