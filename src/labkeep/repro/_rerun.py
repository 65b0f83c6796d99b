"""Re-execute a run from its snapshot: plan (command, interpreter, drift), then run.

The snapshot's code files are written to a fresh directory and the run's script is started
there with the same interpreter, flags (overridable), arguments and inputs (by absolute path).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError
from labkeep.repro._drift import (
    DriftItem,
    env_drift,
    fingerprint_now,
    git_drift,
    input_drift,
    interpreter_drift,
    package_drift,
    python_drift,
)
from labkeep.repro._environment import probe_interpreter
from labkeep.repro._source import RunSnapshot, load_snapshot

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep.repro._launch import LaunchResult

REDACTED = "***"


@dataclass(slots=True)
class RerunPlan:
    """Everything decided before anything runs: where, with what, and what has drifted."""

    source: RunSnapshot
    directory: Path
    workdir: PurePosixPath  # the run's working directory inside ``directory``
    interpreter: str
    script: str  # as passed to the interpreter, relative to the working directory
    args: list[str]
    flags: dict[str, Any] | None  # the detected flag interface (runner runs), else None
    values: dict[str, Any]  # effective flag values, overrides applied
    overrides: dict[str, Any]
    env: dict[str, str]
    drift: list[DriftItem] = field(default_factory=list)

    @property
    def blocking(self) -> list[DriftItem]:
        return [d for d in self.drift if d.severity == "block"]


def default_rerun_dir(client: Client, number: int) -> Path:
    """``<store>/reruns/<run>-<random>``: beside the store, never inside the user's tree."""
    base = client.location.journal_dir.parent / "reruns"
    return base / f"{number}-{secrets.token_hex(3)}"


def _entry_in_tree(snapshot: RunSnapshot, script: str) -> str:
    """The script as a path relative to the run's working directory inside the snapshot."""
    root = snapshot.code_root()
    workdir = snapshot.relative_cwd()
    if os.path.isabs(script):
        if root is None or os.path.relpath(script, root).startswith(os.pardir):
            raise InvalidInputError(
                f"run {snapshot.number}'s script {script} is outside its code snapshot "
                f"({root}); it cannot be rerun from the snapshot"
            )
        rel_to_root = PurePosixPath(Path(os.path.relpath(script, root)).as_posix())
        in_tree = rel_to_root
        script = os.path.relpath(str(rel_to_root), str(workdir))
    else:
        in_tree = PurePosixPath(os.path.normpath(str(workdir / script)))
    paths = {e.path for e in snapshot.manifest()}
    if str(in_tree) not in paths:
        raise InvalidInputError(
            f"run {snapshot.number}'s script {script} is not in its code snapshot; "
            "it cannot be rerun from the snapshot"
        )
    return script


def _command(snapshot: RunSnapshot) -> tuple[str, list[str], dict[str, Any] | None, dict[str, Any]]:
    """(script, args, flag interface, flag values) of the original run."""
    command = snapshot.section("command")
    if command.get("script"):
        flags = command.get("flags")
        values = command.get("values")
        return (
            str(command["script"]),
            [str(a) for a in command.get("args") or []],
            flags if isinstance(flags, dict) else None,
            dict(values) if isinstance(values, dict) else {},
        )
    host = snapshot.section("host")
    argv = [str(a) for a in host.get("argv") or []]
    entry = host.get("entry_point") or (argv[0] if argv else None)
    if not entry:
        raise InvalidInputError(
            f"run {snapshot.number} has no entry point (it ran from an interactive session); "
            "only script runs can be rerun"
        )
    return str(entry), argv[1:], None, {}


def _flag_set(snapshot: RunSnapshot, flags: dict[str, Any], directory: Path) -> Any:
    """The recorded flag interface, with a config file inside the code moved to the copy."""
    from labkeep.runner import FlagSet

    found = FlagSet.from_dict(flags)
    root = snapshot.code_root()
    config = found.config_file
    if config is not None and root is not None and config.is_absolute():
        rel = os.path.relpath(config, root)
        if not rel.startswith(os.pardir):
            from dataclasses import replace

            found = replace(found, config_file=directory / rel)
    return found


def plan_rerun(
    client: Client,
    ref: str | int,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    directory: Path | None = None,
) -> RerunPlan:
    """Decide how to rerun ``ref``; nothing is written or started.

    >>> plan = plan_rerun(client, 7, ["lr=0.02"])  # doctest: +SKIP
    >>> [d.name for d in plan.blocking]  # doctest: +SKIP
    ['/data/train.csv']
    """
    client.recover()
    snapshot = load_snapshot(client.store, ref)
    if not snapshot.section("code").get("manifest"):
        raise InvalidInputError(
            f"run {snapshot.number} kept no code files (code capture was off); "
            "it cannot be rerun from its snapshot"
        )
    script, args, flags, values = _command(snapshot)
    if any(REDACTED in a for a in args):
        raise InvalidInputError(
            f"run {snapshot.number}'s arguments had secret values that were not recorded (***); "
            "rerun it by hand"
        )
    script = _entry_in_tree(snapshot, script)
    target = (directory or default_rerun_dir(client, snapshot.number)).absolute()
    parsed: dict[str, Any] = {}
    if overrides:
        if flags is None:
            raise InvalidInputError(
                f"run {snapshot.number} was not started by `labkeep run`, so its flags are "
                "unknown; rerun it without NAME=VALUE overrides"
            )
        from labkeep.runner import resolve_overrides

        parsed = resolve_overrides(_flag_set(snapshot, flags, target), overrides)
        values = {**values, **parsed}
    environment = snapshot.section("environment")
    recorded = environment.get("executable")
    interpreter = (
        recorded if isinstance(recorded, str) and os.access(recorded, os.X_OK) else sys.executable
    )
    host_env = {
        str(k): str(v)
        for k, v in (snapshot.section("host").get("env") or {}).items()
        if not str(k).startswith("LABKEEP_")
    }
    env = {**os.environ, **host_env}
    now = probe_interpreter(
        interpreter, {k: v for k, v in env.items() if not k.startswith("LABKEEP_")}
    )
    drift: list[DriftItem] = []
    drift += interpreter_drift(recorded if isinstance(recorded, str) else None, interpreter)
    drift += python_drift(environment.get("python_version"), now.python_version)
    drift += package_drift(snapshot.packages(), now.packages)
    git_then = snapshot.section("git")
    if git_then.get("repo") and git_then.get("root"):
        git_now = None
        if Path(str(git_then["root"])).is_dir():
            from labkeep.capture import collect_git

            git_now = collect_git(Path(str(git_then["root"])))
        drift += git_drift(git_then, git_now)
    drift += env_drift(host_env, {k: v for k, v in os.environ.items()})
    drift += input_drift(
        snapshot.inputs, fingerprint_now(snapshot.inputs, client.location.cache_dir)
    )
    return RerunPlan(
        source=snapshot,
        directory=target,
        workdir=snapshot.relative_cwd(),
        interpreter=interpreter,
        script=script,
        args=args,
        flags=flags,
        values=values,
        overrides=parsed,
        env=env,
        drift=drift,
    )


def execute_rerun(client: Client, plan: RerunPlan, *, echo: bool = True) -> LaunchResult:
    """Materialise the snapshot into ``plan.directory`` and run it there as a new run that
    records which run it reproduces."""
    from labkeep.repro._launch import launch
    from labkeep.repro._materialise import materialise

    materialise(plan.source, plan.directory)
    # A repository of its own, so the new run's code snapshot is this tree and not that of a
    # repository around the store; without git the capture scans the directory instead.
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        subprocess.run(
            ["git", "init", "-q", str(plan.directory)],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
    link_inputs(plan.source, plan.directory)
    workdir = plan.directory.joinpath(*plan.workdir.parts)
    workdir.mkdir(parents=True, exist_ok=True)
    source = plan.source
    command: dict[str, Any] = {"script": plan.script, "args": plan.args, "values": plan.values}
    if plan.flags is not None:
        from labkeep.runner import build_command

        flag_set = _flag_set(source, plan.flags, plan.directory)
        config_dir = client.location.cache_dir / "rerun-config" / plan.directory.name
        argv, extra_env = build_command(
            Path(plan.script),
            flag_set,
            plan.values,
            plan.args,
            python=plan.interpreter,
            config_dir=config_dir,
        )
        command["flags"] = plan.flags
    else:
        argv, extra_env = [plan.interpreter, plan.script, *plan.args], {}
    rerun_section = {
        "of": source.info.uuid,
        "number": source.number,
        "directory": str(plan.directory),
        "overrides": plan.overrides,
        "drift": [d.to_dict() for d in plan.drift],
    }
    return launch(
        client,
        argv,
        cwd=workdir,
        experiment=source.info.experiment,
        script_argv=[plan.script, *plan.args],
        entry_point=plan.script,
        env=plan.env,
        extra_env=extra_env,
        params=plan.values if plan.flags is not None else None,
        reproduces_uuid=source.info.uuid,
        snapshot_extra={"command": command, "rerun": rerun_section},
        inputs=[
            str(i["path"])
            for i in source.inputs
            if isinstance(i.get("path"), str) and os.path.exists(str(i["path"]))
        ],
        echo=echo,
    )


def link_inputs(snapshot: RunSnapshot, directory: Path) -> list[Path]:
    """Inputs that lived inside the code tree but are not code (data git ignores) are linked
    into the rerun tree, so a script that opens ``data/train.csv`` finds the original file."""
    root = snapshot.code_root()
    made: list[Path] = []
    if root is None:
        return made
    for item in snapshot.inputs:
        path = item.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            continue
        rel = os.path.relpath(path, root)
        if rel == os.curdir or rel.startswith(os.pardir):
            continue
        target = directory / rel
        if target.exists() or target.is_symlink() or not os.path.exists(path):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path, target)
        made.append(target)
    return made
