"""The bootstrap runs unmodified scripts in a real child process with flag values injected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import labkeep
from labkeep.runner import resolve_overrides
from labkeep.runner._bootstrap import ENV_ARGS, ENV_FLAGS, ENV_MODULE, ENV_SCRIPT
from labkeep.runner._detect import detect_flags
from labkeep.runner._inject import build_command

SRC = str(Path(labkeep.__file__).resolve().parents[1])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def bootstrap(
    cwd: Path,
    *,
    script: str | None = None,
    args: list[str] | None = None,
    flags: dict[str, object] | None = None,
    module: str | None = None,
) -> subprocess.CompletedProcess[str]:
    extra = {ENV_ARGS: json.dumps(args or [])}
    if script is not None:
        extra[ENV_SCRIPT] = script
    if module is not None:
        extra[ENV_MODULE] = module
    if flags is not None:
        extra[ENV_FLAGS] = json.dumps(flags)
    return subprocess.run(
        [sys.executable, "-m", "labkeep.runner._bootstrap"],
        cwd=cwd,
        env=child_env(extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


REPORT = """
    import json, os, sys
    import helper
    lr = 0.01
    epochs: int = 5
    a = b = 1
    layers = [64]
    name = "x"
    lr = lr * 2 if False else lr
    print(json.dumps({
        "lr": lr, "epochs": epochs, "a": a, "b": b, "layers": layers, "name": name,
        "argv": sys.argv, "path0": sys.path[0], "file": __file__, "main": __name__,
        "helper": helper.VALUE, "is_main": sys.modules["__main__"].__dict__ is globals(),
        "env": sorted(k for k in os.environ if k.startswith("LABKEEP_")),
    }))
"""


def test_globals_are_replaced_in_memory_and_the_file_is_untouched(tmp_path: Path) -> None:
    project = tmp_path / "project"
    script = write(project / "train.py", REPORT)
    write(project / "helper.py", "VALUE = 'sibling import works'\n")
    before = script.read_bytes()
    proc = bootstrap(
        tmp_path,  # started elsewhere: sys.path[0] must still be the script's directory
        script="project/train.py",
        args=["--data", "d.csv"],
        flags={"lr": 0.5, "epochs": 7, "a": 3, "layers": [1, -2], "name": "é"},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == {
        "lr": 0.5,
        "epochs": 7,
        "a": 3,
        "b": 1,
        "layers": [1, -2],
        "name": "é",
        "argv": ["project/train.py", "--data", "d.csv"],
        "path0": str(project.resolve()),
        "file": str(tmp_path / "project" / "train.py"),
        "main": "__main__",
        "helper": "sibling import works",
        "is_main": True,
        "env": [],
    }
    assert script.read_bytes() == before


def test_no_overrides_runs_the_script_as_is(tmp_path: Path) -> None:
    write(tmp_path / "helper.py", "VALUE = 1\n")
    write(tmp_path / "train.py", REPORT)
    proc = bootstrap(tmp_path, script="train.py")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["lr"] == 0.01


def test_traceback_points_at_the_users_file_and_line(tmp_path: Path) -> None:
    script = write(
        tmp_path / "train.py",
        """
        epochs = 1

        def check(n):
            if n > 10:
                raise ValueError(f"too many epochs: {n}")

        check(epochs)
        """,
    )
    proc = bootstrap(tmp_path, script="train.py", flags={"epochs": 50})
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert f'File "{script}", line 8, in <module>' in lines[1]
    assert f'File "{script}", line 6, in check' in proc.stderr
    assert lines[-1] == "ValueError: too many epochs: 50"
    assert "_bootstrap" not in proc.stderr and "runpy" not in proc.stderr


def test_exit_status_and_interrupt_are_the_scripts_own(tmp_path: Path) -> None:
    write(tmp_path / "exit.py", "import sys\ncode = 0\nsys.exit(code)\n")
    assert bootstrap(tmp_path, script="exit.py", flags={"code": 3}).returncode == 3
    write(tmp_path / "ctrlc.py", "raise KeyboardInterrupt\n")
    proc = bootstrap(tmp_path, script="ctrlc.py")
    assert proc.returncode == -signal.SIGINT
    assert proc.stderr.strip().endswith("KeyboardInterrupt")


def test_syntax_error_reads_like_python(tmp_path: Path) -> None:
    write(tmp_path / "bad.py", "x = (\n")
    proc = bootstrap(tmp_path, script="bad.py")
    assert proc.returncode == 1
    assert "bad.py" in proc.stderr and "SyntaxError" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_launches_exit_2_with_one_line(tmp_path: Path) -> None:
    write(tmp_path / "t.py", "x = 1\nc, d = 1, 2\n")
    proc = bootstrap(tmp_path, script="t.py", flags={"nope": 1})
    assert (proc.returncode, proc.stderr) == (
        2,
        "labkeep: t.py has no module-level assignment of 'nope'\n",
    )
    proc = bootstrap(tmp_path, script="t.py", flags={"c": 1})
    assert proc.returncode == 2 and "not a plain assignment" in proc.stderr
    proc = bootstrap(tmp_path, script="missing.py")
    assert proc.returncode == 2 and "cannot open missing.py" in proc.stderr
    proc = bootstrap(tmp_path)
    assert proc.returncode == 2 and "set exactly one of" in proc.stderr


def test_classes_defined_in_the_script_pickle(tmp_path: Path) -> None:
    write(
        tmp_path / "p.py",
        """
        import pickle
        class Point:
            pass
        print(type(pickle.loads(pickle.dumps(Point()))).__module__)
        """,
    )
    proc = bootstrap(tmp_path, script="p.py")
    assert (proc.returncode, proc.stdout) == (0, "__main__\n"), proc.stderr


def test_module_target_runs_like_python_dash_m(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(
        tmp_path / "pkg" / "train.py",
        """
        import sys
        from . import __name__ as parent
        steps = 10
        print(parent, __name__, steps, sys.argv[1:])
        """,
    )
    proc = bootstrap(tmp_path, module="pkg.train", flags={"steps": 20}, args=["x"])
    assert (proc.returncode, proc.stdout) == (0, "pkg __main__ 20 ['x']\n"), proc.stderr


# --- end to end: detect, resolve, build, run -----------------------------------------------


def run_built(
    script: Path,
    assignments: list[str],
    extra: list[str] | None = None,
    config_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    flags = detect_flags(script)
    values = resolve_overrides(flags, assignments)
    argv, env = build_command(script, flags, values, extra or [], config_dir=config_dir)
    return subprocess.run(
        argv,
        cwd=script.parent,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_argparse_script_gets_its_values_on_the_command_line(tmp_path: Path) -> None:
    script = write(
        tmp_path / "train.py",
        """
        import argparse, json
        p = argparse.ArgumentParser()
        p.add_argument("data")
        p.add_argument("--lr", type=float, default=0.01)
        p.add_argument("--fast", action="store_true")
        p.add_argument("--no-shuffle", dest="shuffle", action="store_false")
        p.add_argument("--aug", action=argparse.BooleanOptionalAction, default=True)
        p.add_argument("--layers", nargs="+", type=int, default=[64])
        p.add_argument("--shift", type=float, default=0.0)
        print(json.dumps(vars(p.parse_args())))
        """,
    )
    proc = run_built(
        script,
        ["lr=0.5", "fast=true", "shuffle=false", "aug=no", "layers=[1, 2]", "shift=-1.5"],
        ["data.csv"],
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "data": "data.csv",
        "lr": 0.5,
        "fast": True,
        "shuffle": False,
        "aug": False,
        "layers": [1, 2],
        "shift": -1.5,
    }


def test_click_script_gets_its_values_on_the_command_line(tmp_path: Path) -> None:
    script = write(
        tmp_path / "train.py",
        """
        import json
        import click

        @click.command()
        @click.option("--lr", type=float, default=0.01)
        @click.option("--fast", is_flag=True)
        @click.option("--shuffle/--no-shuffle", default=True)
        @click.option("--tag", multiple=True)
        def main(lr, fast, shuffle, tag):
            print(json.dumps({"lr": lr, "fast": fast, "shuffle": shuffle, "tag": list(tag)}))

        if __name__ == "__main__":
            main()
        """,
    )
    proc = run_built(script, ["lr=1e-3", "fast=1", "shuffle=0", "tag=[a, b]"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "lr": 0.001,
        "fast": True,
        "shuffle": False,
        "tag": ["a", "b"],
    }


def test_globals_script_end_to_end(tmp_path: Path) -> None:
    script = write(tmp_path / "train.py", "lr = 0.1\nepochs = 2\nprint(lr, epochs)\n")
    proc = run_built(script, ["lr=0.25"])
    assert (proc.returncode, proc.stdout) == (0, "0.25 2\n"), proc.stderr


def test_config_script_reads_the_run_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "conf.json", json.dumps({"model": {"depth": 2}, "seed": 1}))
    script = write(
        tmp_path / "train.py",
        """
        import argparse, json
        p = argparse.ArgumentParser()
        p.add_argument("--config", default="conf.json")
        args = p.parse_args()
        print(args.config, json.load(open(args.config)))
        """,
    )
    proc = run_built(script, ["model.depth=5"], config_dir=tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stdout == f"{tmp_path / 'run' / 'conf.json'} {{'model': {{'depth': 5}}, 'seed': 1}}\n"
    )
    proc = run_built(script, [])
    assert proc.stdout == "conf.json {'model': {'depth': 2}, 'seed': 1}\n"


def test_bootstrap_and_package_imports_stay_lean(tmp_path: Path) -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "import labkeep.runner._bootstrap\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=child_env({}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(proc.stdout.split())
    assert {m for m in loaded if m.startswith("labkeep")} == {
        "labkeep",
        "labkeep._api",
        "labkeep._lazy",  # the packages' lazy names: imports nothing itself
        "labkeep._version",
        "labkeep.errors",
        "labkeep.runner",
        "labkeep.runner._bootstrap",
    }
    assert not loaded & {"ast", "dataclasses", "subprocess", "yaml", "click"}
