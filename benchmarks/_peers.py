"""Peer tools (MLflow, Guild AI) in their own virtual environments under `.bench/`.

Each peer lives in `.bench/<name>-venv`, created on first use and reused afterwards, so the
benchmarks run labkeep and the peer side by side without mixing their dependencies.

    python benchmarks/_peers.py mlflow      # create (or check) the MLflow venv, print its python
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / ".bench"


@dataclass(frozen=True)
class Peer:
    """A peer tool: the venv name, what pip installs, and the module whose version we report."""

    name: str
    requirement: str
    module: str
    distribution: str
    #: Pins installed beside the peer, for parts of it that break on today's releases.
    pins: tuple[str, ...] = ()

    @property
    def requirements(self) -> list[str]:
        return [self.requirement, *self.pins]

    @property
    def venv_dir(self) -> Path:
        return BENCH_DIR / f"{self.name}-venv"

    @property
    def python(self) -> Path:
        return self.venv_dir / "bin" / "python"

    @property
    def marker(self) -> Path:
        """Written after a successful install; its absence means the venv is incomplete."""
        return self.venv_dir / "labkeep-bench.json"


# The issue measured MLflow 3.17 on its default SQLite store. The full `mlflow` package is
# needed (not `mlflow-skinny`): the SQL store needs SQLAlchemy and Alembic.
# boto3 beside it: MLflow's S3 artifact repository (bench_artifacts, bench_team) needs it.
MLFLOW = Peer(
    name="mlflow",
    requirement="mlflow==3.17.*",
    module="mlflow",
    distribution="mlflow",
    pins=("boto3>=1.34",),
)
# Guild 0.9's optimizers (random, gp...) run its vendored scikit-optimize, which imports
# numpy.core.umath_tests (gone in NumPy 2) and predates scikit-learn 1.6's estimator tags.
# With NumPy 1.26 that module also needs NUMPY_EXPERIMENTAL_DTYPE_API=1 (see GUILD_ENV).
GUILD = Peer(
    name="guild",
    requirement="guildai==0.9.*",
    module="guild",
    distribution="guildai",
    pins=("numpy<2", "scikit-learn<1.6"),
)
#: What a Guild command's environment needs besides GUILD_HOME.
GUILD_ENV = {"NUMPY_EXPERIMENTAL_DTYPE_API": "1"}
# MLflow's Keras autolog beside labkeep's Keras callback: MLflow with Keras 3 on JAX (no
# TensorFlow), the same releases as labkeep's `integrations` extra installs here. A venv of
# its own, so that the plain MLflow venv stays the size the other benchmarks need.
MLFLOW_KERAS = Peer(
    name="mlflow-keras",
    requirement="mlflow==3.17.*",
    module="mlflow",
    distribution="mlflow",
    pins=("keras==3.15.*", "jax==0.10.*"),
)
PEERS = {peer.name: peer for peer in (MLFLOW, GUILD, MLFLOW_KERAS)}


class PeerSetupError(RuntimeError):
    """The peer venv could not be created (PyPI unreachable, pip failed)."""


def ensure_peer(peer: Peer, *, quiet: bool = False) -> Path:
    """Return the peer venv's python, creating the venv and installing the peer if needed."""
    if peer.marker.exists() and peer.python.exists():
        installed = json.loads(peer.marker.read_text()).get("requirements", [peer.requirement])
        if installed == peer.requirements:
            return peer.python

    def say(message: str) -> None:
        if not quiet:
            print(f"[peers] {message}", flush=True)

    if peer.venv_dir.exists():
        say(f"removing incomplete or outdated {peer.venv_dir}")
        shutil.rmtree(peer.venv_dir)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    say(f"creating {peer.venv_dir} (one-off; later runs reuse it)")
    venv.EnvBuilder(with_pip=True, clear=True).create(peer.venv_dir)
    wanted = " ".join(peer.requirements)
    say(f"pip install {wanted} (this downloads the peer and its dependencies)")
    _pip(peer, ["install", *peer.requirements], quiet=quiet)
    version = _installed_version(peer)
    peer.marker.write_text(
        json.dumps(
            {"requirement": peer.requirement, "requirements": peer.requirements, "version": version}
        )
    )
    say(f"{peer.distribution} {version} ready in {peer.venv_dir}")
    return peer.python


def peer_version(peer: Peer) -> str | None:
    """The installed version of the peer, or None when its venv has not been created."""
    if not peer.marker.exists():
        return None
    version = json.loads(peer.marker.read_text()).get("version")
    return str(version) if version is not None else None


def _pip(peer: Peer, args: list[str], *, quiet: bool) -> None:
    cmd = [str(peer.python), "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        tail = [*tail[-40:], line]
        # pip prints one "Collecting"/"Downloading" line per package: enough to show progress.
        if not quiet and line.startswith(("Collecting", "Successfully installed")):
            print(f"[peers]   {line}", flush=True)
    if proc.wait() != 0:
        shutil.rmtree(peer.venv_dir, ignore_errors=True)
        # Without network pip rarely names the connection error: it finds no versions at all.
        unreachable = any(
            word in line
            for line in tail
            for word in (
                "from versions: none",
                "NewConnectionError",
                "Could not fetch URL",
                "Max retries",
                "Temporary failure",
                "timed out",
            )
        )
        reason = "PyPI is unreachable" if unreachable else f"pip failed: {_last_error(tail)}"
        raise PeerSetupError(
            f"cannot install {peer.requirement} into {peer.venv_dir}: {reason}; "
            "check network access to PyPI and run again"
        )


def _last_error(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.strip().startswith("ERROR"):
            return line.strip()
    return lines[-1].strip() if lines else "no output"


def _installed_version(peer: Peer) -> str:
    code = f"import importlib.metadata as m; print(m.version({peer.distribution!r}))"
    out = subprocess.run(
        [str(peer.python), "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return out.strip()


def main(argv: list[str]) -> int:
    names = argv or ["mlflow"]
    for name in names:
        if name not in PEERS:
            print(f"unknown peer {name!r}; choose from {', '.join(PEERS)}", file=sys.stderr)
            return 2
        try:
            print(ensure_peer(PEERS[name]))
        except PeerSetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
