"""Time the run-start capture in a git repository of 1,000 source files.

Builds the repository in a temporary directory (1,000 small .py files, one commit, a few dirty
edits, an untracked and an ignored file), then times ``capture_snapshot`` cold (empty hash
cache) and warm (cache filled), per section, with ``pip freeze`` and an MLflow-style git capture
(``git rev-parse HEAD``, ``git remote get-url origin``, ``git rev-parse --abbrev-ref HEAD``) as
reference points.

    PYTHONPATH=src python benchmarks/bench_capture.py [--files 1000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkeep.capture import capture_snapshot, list_distributions

GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *GIT_ID, *args], cwd=root, check=True, capture_output=True)


def build_repo(root: Path, n_files: int) -> None:
    root.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "remote", "add", "origin", "https://user:secret@example.com/lab/project.git")
    body = "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(20))
    for i in range(n_files):
        package = root / "src" / f"pkg{i // 40:02d}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"mod{i:04d}.py").write_text(f'"""module {i}"""\n\n{body}')
    (root / ".gitignore").write_text("*.ckpt\n")
    # Source written a minute before the run, as in a real project (a file modified within
    # the last 2 s is hashed on every capture: it may still change within one mtime tick).
    past = time.time() - 60
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            os.utime(path, (past, past))
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    for i in (0, 1, 2):  # dirty edits
        with open(root / "src" / "pkg00" / f"mod{i:04d}.py", "a") as f:
            f.write("# edited\n")
    (root / "notes.md").write_text("untracked\n")
    (root / "model.ckpt").write_bytes(b"\0" * 1024)


def pad_distributions(target: int, where: Path) -> int:
    """Add synthetic ``*.dist-info`` directories on sys.path until ``target`` are installed."""
    installed = len(list_distributions()[0])
    missing = max(0, target - installed)
    if missing:
        where.mkdir(parents=True)
        for i in range(missing):
            info = where / f"benchpad{i:03d}-1.{i}.0.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Name: benchpad{i:03d}\nVersion: 1.{i}.0\n\n")
        sys.path.append(str(where))
    return missing


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def time_subprocess(argv: list[str], cwd: Path, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
        samples.append(time.perf_counter() - t)
    return _ms(statistics.median(samples))


def time_mlflow_style_git(cwd: Path, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        for argv in (
            ["git", "rev-parse", "HEAD"],
            ["git", "remote", "get-url", "origin"],
            ["git", "rev-parse", "--abbrev-ref", "HEAD"],
        ):
            subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
        samples.append(time.perf_counter() - t)
    return _ms(statistics.median(samples))


def import_time_ms(pycache: Path, preload: str = "") -> float:
    """Median time of ``import labkeep.capture`` in a fresh interpreter, with bytecode cached
    (as in an installed package) even where PYTHONDONTWRITEBYTECODE is set."""
    code = (
        f"{preload}import time; t = time.perf_counter(); import labkeep.capture; "
        "print((time.perf_counter() - t) * 1000)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "PYTHONPYCACHEPREFIX": str(pycache),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
            ).stdout
        )
        for _ in range(6)
    ]
    return round(statistics.median(samples[1:]), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--packages", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labkeep-bench-") as tmp:
        base = Path(tmp)
        repo = base / "repo"
        build_repo(repo, args.files)
        padded = pad_distributions(args.packages, base / "site")
        cache_dir = base / "cache"

        cold = capture_snapshot(repo, ["train.py"], "train.py", cache_dir=cache_dir)
        assert cold.code["source"] == "git", cold.code
        assert "error" not in cold.git, cold.git
        warm_runs = [
            capture_snapshot(repo, ["train.py"], "train.py", cache_dir=cache_dir)
            for _ in range(args.repeat)
        ]
        no_code_runs = [
            capture_snapshot(repo, ["train.py"], "train.py", cache_dir=cache_dir, code=False)
            for _ in range(args.repeat)
        ]

        snap = warm_runs[-1]
        print(
            f"repository: {snap.code['file_count']} files captured "
            f"({snap.git['changed_count']} dirty, {snap.git['untracked_count']} untracked), "
            f"diff {len(snap.git['diff'] or '')} bytes"
        )
        packages = len(snap.environment["packages"])
        print(
            f"environment: {packages} distributions ({padded} synthetic to reach {args.packages})"
        )
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")

        sections = list(cold.timings_ms)
        print(f"{'section (ms)':<14}{'cold':>9}{'warm median':>13}{'warm p90':>10}")
        for name in sections:
            values = sorted(r.timings_ms[name] for r in warm_runs)
            p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
            print(
                f"{name:<14}{cold.timings_ms[name]:>9.1f}"
                f"{statistics.median(values):>13.1f}{p90:>10.1f}"
            )
        no_code = statistics.median(r.timings_ms["total"] for r in no_code_runs)
        print(f"{'total, code=False':<14}{'':>9}{no_code:>13.1f}")
        bare = import_time_ms(base / "pycache")
        after = import_time_ms(base / "pycache", "import labkeep.entities, labkeep.store; ")
        print(f"\nimport labkeep.capture, fresh interpreter: {bare} ms")
        print(f"import labkeep.capture after labkeep.entities and labkeep.store: {after} ms")

        print("\nreference (median ms):")
        freeze = time_subprocess([sys.executable, "-m", "pip", "freeze"], repo, 3)
        print(f"  pip freeze in a subprocess:            {freeze:>8.1f}")
        mlflow_git = time_mlflow_style_git(repo, args.repeat)
        print(f"  MLflow-style git (3 git processes):    {mlflow_git:>8.1f}")


if __name__ == "__main__":
    main()
