"""Shared pieces of the reproducibility tests: a git repository, a store, the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")

DETERMINISTIC = """\
import sys, random
import labkeep

with labkeep.init(experiment="repro", config={"lr": 0.1}) as run:
    labkeep.seed(7)
    run.use_input(sys.argv[1])
    data = open(sys.argv[1]).read()
    loss = sum(random.random() for _ in range(10)) + len(data)
    run.log({"loss": loss}, step=0)
    with open("out.txt", "w") as f:
        f.write(repr(loss))
    run.log_artifact("out.txt")
    print("loss", loss)
"""

UNSEEDED = """\
import random
import labkeep

with labkeep.init(experiment="repro") as run:
    run.log({"loss": random.random()})
"""


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Project:
    """A git repository with scripts, a data file outside it, and a store beside it."""

    repo: Path
    data: Path
    store: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
        env.update(
            PYTHONPATH=SRC,
            LABKEEP_HOME=str(self.store),
            LABKEEP_SYSTEM_METRICS="0",
            NO_COLOR="1",
            COLUMNS="200",
        )
        return env

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``python ARGS`` in the repository, tracked through the API."""
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.repo,
            env=self.env(),
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def cli(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from labkeep.cli import main; main()", *args],
            cwd=cwd or self.repo,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )


def make_project(tmp_path: Path) -> Project:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text(DETERMINISTIC)
    (repo / "unseeded.py").write_text(UNSEEDED)
    (repo / "tools").mkdir()
    run_sh = repo / "tools" / "run.sh"
    run_sh.write_text("#!/bin/sh\necho run\n")
    run_sh.chmod(0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    return Project(repo, data, tmp_path / "store")
