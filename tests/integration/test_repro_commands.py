"""labkeep diff, checkout, env and show --snapshot against real runs in a real repository."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from repro_helpers import Project, git, make_project, sha256


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Run 1, then a one-line code change and a notebook edit, then run 2."""
    project = make_project(tmp_path_factory.mktemp("cmds"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("# notes")]
    nbformat.write(nb, project.repo / "analysis.ipynb")
    git(project.repo, "add", "-A")
    git(project.repo, "commit", "-q", "-m", "notebook")
    project.script("train.py", str(project.data))
    source = (project.repo / "train.py").read_text()
    (project.repo / "train.py").write_text(source.replace("range(10)", "range(11)"))
    nb.cells[0].source = "x = 2"
    nbformat.write(nb, project.repo / "analysis.ipynb")
    (project.repo / "extra.py").write_text("EXTRA = 1\n")
    project.script("train.py", str(project.data))
    return project


def test_diff_shows_the_changed_line(two_runs: Project) -> None:
    result = two_runs.cli("diff", "1", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "-    loss = sum(random.random() for _ in range(10)) + len(data)" in out
    assert "+    loss = sum(random.random() for _ in range(11)) + len(data)" in out
    assert "+ extra.py" in out
    assert "loss" in out  # the metric differs
    assert "packages: the same" in out
    assert "output" in out


def test_diff_sections_one_at_a_time(two_runs: Project) -> None:
    flags = two_runs.cli("diff", "1", "2", "--flags")
    assert flags.returncode == 0
    assert "flags/params: the same" in flags.stdout and "code" not in flags.stdout
    code = two_runs.cli("diff", "1", "2", "--code")
    assert "range(11)" in code.stdout and "metrics" not in code.stdout
    output = two_runs.cli("diff", "1", "2", "--output")  # API runs keep no console output
    assert output.stdout.strip() == "output: neither run kept console output"


def test_diff_path_notebook_cell_by_cell(two_runs: Project) -> None:
    result = two_runs.cli("diff", "1", "2", "--path", "analysis.ipynb")
    assert result.returncode == 0, result.stderr
    assert "cell" in result.stdout
    assert "x = 1" in result.stdout and "x = 2" in result.stdout
    assert '"cell_type"' not in result.stdout  # nbdime, not a diff of the JSON
    same = two_runs.cli("diff", "1", "2", "--path", "unseeded.py")
    assert "the same" in same.stdout
    missing = two_runs.cli("diff", "1", "2", "--path", "nope.py")
    assert missing.returncode != 0 and "in neither run" in missing.stderr


def test_checkout_writes_exact_files(two_runs: Project, tmp_path: Path) -> None:
    target = tmp_path / "run1"
    result = two_runs.cli("checkout", "1", str(target))
    assert result.returncode == 0, result.stderr
    tracked = git(two_runs.repo, "ls-files").split()
    for name in tracked:
        if name in ("train.py", "analysis.ipynb", "extra.py"):
            continue  # changed after run 1
        assert sha256(target / name) == sha256(two_runs.repo / name), name
    original_train = git(two_runs.repo, "show", "HEAD:train.py")
    assert (target / "train.py").read_text() == original_train
    assert not (target / "extra.py").exists()
    assert os.stat(target / "tools" / "run.sh").st_mode & stat.S_IXUSR
    assert not os.stat(target / "train.py").st_mode & stat.S_IXUSR
    snapshot = json.loads((target / "labkeep-snapshot.json").read_text())
    assert snapshot["git"]["commit"]
    requirements = (target / "requirements.txt").read_text()
    assert "numpy==" in requirements
    again = two_runs.cli("checkout", "1", str(target))
    assert again.returncode != 0
    assert (
        again.stderr.strip()
        == f"labkeep: {target} is not empty; check out into a new or empty directory"
    )


def test_env_requirements(two_runs: Project) -> None:
    result = two_runs.cli("env", "1", "--requirements")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# python 3.")
    import numpy

    assert f"numpy=={numpy.__version__}" in lines
    assert all("==" in ln or ln.startswith("#") or " @ " in ln for ln in lines)


def test_env_venv_without_uv_says_how_to_get_it(two_runs: Project, tmp_path: Path) -> None:
    env = two_runs.env()
    env["PATH"] = str(tmp_path / "empty-bin")
    result = subprocess.run(
        [sys.executable, "-c", "from labkeep.cli import main; main()", "env", "1", "--venv",
         str(tmp_path / "venv")],
        cwd=two_runs.repo,
        env=env,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "labkeep: uv is not on PATH; install it with `pip install uv` (or see "
        "https://docs.astral.sh/uv/)"
    ]
    assert not (tmp_path / "venv").exists()


def find_uv() -> str:
    """uv on PATH, or the one the dev extra installs beside this interpreter (a venv's bin
    directory is not on PATH unless activated); the test fails under CI without it."""
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found is None:
        message = "uv is not installed (pip install -e '.[dev]' installs it)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel, written by hand: no index or network needed."""
    import base64
    import hashlib
    import zipfile

    module = name.replace("-", "_")
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n",
        f"{module}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ),
        f"{module}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{module}-{version}.dist-info/RECORD,,")
    files[f"{module}-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return target


def test_env_venv_with_uv_offline(two_runs: Project, tmp_path: Path) -> None:
    """A small real environment from local wheels: what installs is installed, a package no
    index has is reported, not fatal."""
    from labkeep.repro import recreate_venv, requirements_text

    uv = find_uv()
    wheels = tmp_path / "wheels"
    wheel(wheels, "labkeep-demo-dep", "1.2")
    text = requirements_text({"labkeep-demo-dep": "1.2", "no-such-package-here": "1.0"})
    result = recreate_venv(
        tmp_path / "venv",
        text,
        python=sys.executable,
        uv=uv,
        install_args=["--offline", "--find-links", str(wheels)],
    )
    assert "no-such-package-here==1.0" in result.failed
    assert result.installed == ["labkeep-demo-dep==1.2"]
    python = tmp_path / "venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", "import labkeep_demo_dep; print(labkeep_demo_dep.VERSION)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "1.2"


@pytest.mark.slow
def test_env_venv_command_recreates_the_runs_environment(two_runs: Project, tmp_path: Path) -> None:
    """``labkeep env RUN --venv`` end to end, offline: the run's packages that the local
    wheels have are installed, each other one is named, and the exit status says so."""
    import importlib.metadata

    uv = find_uv()
    wheels = tmp_path / "wheels"
    six = importlib.metadata.version("six")
    wheel(wheels, "six", six)
    venv = tmp_path / "venv"
    result = two_runs.cli(
        "env", "1", "--venv", str(venv), "--offline", "--find-links", str(wheels), "--uv", uv
    )
    assert result.returncode == 1, result.stderr
    assert f"creating {venv}" in result.stderr
    assert "could not get numpy==" in result.stderr
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import six; print(six.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in installed.stdout


def test_show_snapshot(two_runs: Project) -> None:
    result = two_runs.cli("show", "1", "--snapshot")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "from git" in out and "train.py" in out
    assert "on main" in out and "clean" in out
    assert "numpy" in out
    assert "argv" in out and "train.py" in out
    assert str(two_runs.data) in out and "unchanged" in out
    assert "seed 7" in out
    second = two_runs.cli("show", "2", "--snapshot")
    assert "dirty" in second.stdout and "train.py" in second.stdout
    everything = two_runs.cli("show", "1", "--snapshot", "--all")
    assert "numpy==" in everything.stdout and "tools/run.sh" in everything.stdout
    as_json = two_runs.cli("show", "1", "--snapshot", "--json")
    assert json.loads(as_json.stdout)["code"]["manifest"]


def test_show_snapshot_reports_changed_input(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.script("train.py", str(project.data))
    project.data.write_text("changed\n")
    result = project.cli("show", "1", "--snapshot")
    assert "changed" in result.stdout and "unchanged" not in result.stdout


def test_diff_shows_raw_arguments_that_differ(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project.repo / "echo.py").write_text("import sys\nprint('args', sys.argv[1:])\n")
    for name in ("a.csv", "b.csv"):
        made = project.cli("run", "echo.py", "--", name)
        assert made.returncode == 0, made.stderr
    flags = project.cli("diff", "1", "2", "--flags")
    assert flags.returncode == 0, flags.stderr
    assert "argv" in flags.stdout
    assert "a.csv" in flags.stdout and "b.csv" in flags.stdout
    same = project.cli("diff", "1", "1", "--flags")
    assert "argv: the same" in same.stdout


def test_show_snapshot_of_a_labkeep_run_prints_its_command_and_only_known_seed_facts(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    (project.repo / "flags.py").write_text(
        "import argparse\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--x', type=float, default=-1.0)\n"
        "p.add_argument('--epochs', type=int, default=3)\n"
        "p.parse_args()\n"
    )
    ran = project.cli("run", "-y", "-q", "--seed", "7", "flags.py", "x=2.0")
    assert ran.returncode == 0, ran.stderr
    out = project.cli("show", "1", "--snapshot").stdout
    seed_lines = [line for line in out.splitlines() if line.startswith("seed")]
    assert seed_lines == ["seed 7 (PYTHONHASHSEED 7, via labkeep run --seed)"], out
    assert "None" not in out
    command = next(line for line in out.splitlines() if line.startswith("command"))
    assert command.split(None, 1)[1].strip() == "labkeep run flags.py x=2.0", out
