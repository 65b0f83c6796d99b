"""Re-execute a run from its snapshot: plan (command, interpreter, drift), then run.

The snapshot's code files are written to a fresh directory and the run's script is started
there with the same interpreter, flags (overridable), arguments and inputs (by absolute path).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from labkeep._artifacts import PINS_ENV
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
    from labkeep.entities import RunRecord
    from labkeep.repro._verify import Verdict
    from labkeep.runner._launch import LaunchResult
    from labkeep.store._base import Store

REDACTED = "***"


@dataclass(slots=True)
class RerunPlan:
    """Everything decided before anything runs: where, with what, and what has drifted."""

    source: RunSnapshot
    directory: Path
    workdir: PurePosixPath  # the run's working directory inside ``directory``
    interpreter: str
    script: str  # the target, relative to the working directory
    args: list[str]  # the script's own arguments
    values: dict[str, Any]  # the original run's flag values (runs from `labkeep run`)
    overrides: tuple[str, ...]  # NAME=VALUE texts, checked
    config: str | None
    seed: int | None
    env: dict[str, str]  # recorded variables to restore for the rerun
    drift: list[DriftItem] = field(default_factory=list)
    #: The artifact versions the run used, by name: the rerun's use_artifact resolves an
    #: alias (``latest``) of these to the same version.
    artifacts: dict[str, int] = field(default_factory=dict)

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
        in_tree = PurePosixPath(Path(os.path.relpath(script, root)).as_posix())
        script = os.path.relpath(str(in_tree), str(workdir))
    else:
        in_tree = PurePosixPath(os.path.normpath(str(workdir / script)))
    paths = {e.path for e in snapshot.manifest()}
    if str(in_tree) not in paths:
        raise InvalidInputError(
            f"run {snapshot.number}'s script {script} is not in its code snapshot; "
            "it cannot be rerun from the snapshot"
        )
    return script


@dataclass(frozen=True, slots=True)
class _Command:
    target: str
    args: list[str]
    flags: dict[str, Any] | None
    values: dict[str, Any]
    config: str | None
    seed: int | None


def _command(snapshot: RunSnapshot) -> _Command:
    """The original command: the runner's ``command`` section, else the API run's argv."""
    command = snapshot.section("command")
    if command.get("target"):
        flags = command.get("flags")
        values = command.get("values")
        seed = command.get("seed")
        config = command.get("config")
        return _Command(
            str(command["target"]),
            [str(a) for a in command.get("extra_args") or []],
            flags if isinstance(flags, dict) else None,
            dict(values) if isinstance(values, dict) else {},
            str(config) if config else None,
            seed if isinstance(seed, int) else None,
        )
    host = snapshot.section("host")
    argv = [str(a) for a in host.get("argv") or []]
    entry = host.get("entry_point") or (argv[0] if argv else None)
    if not entry:
        raise InvalidInputError(
            f"run {snapshot.number} has no entry point (it ran from an interactive session); "
            "only script runs can be rerun"
        )
    return _Command(str(entry), argv[1:], None, {}, None, None)


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
    _refuse_child_run(client.store, ref)
    snapshot = load_snapshot(client.store, ref)
    if not snapshot.section("code").get("manifest"):
        raise InvalidInputError(
            f"run {snapshot.number} kept no code files (code capture was off); "
            "it cannot be rerun from its snapshot"
        )
    command = _command(snapshot)
    if any(REDACTED in a for a in command.args):
        raise InvalidInputError(
            f"run {snapshot.number}'s arguments had secret values that were not recorded (***); "
            "rerun it by hand"
        )
    script = _entry_in_tree(snapshot, command.target)
    target = (directory or default_rerun_dir(client, snapshot.number)).absolute()
    if overrides:
        if command.flags is None:
            raise InvalidInputError(
                f"run {snapshot.number} was not started by `labkeep run`, so its flags are "
                "unknown; rerun it without NAME=VALUE overrides"
            )
        from labkeep.runner import FlagSet, resolve_overrides

        resolve_overrides(FlagSet.from_dict(command.flags), overrides)  # fails early
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
    probe_env = {
        k: v for k, v in {**os.environ, **host_env}.items() if not k.startswith("LABKEEP_")
    }
    now = probe_interpreter(interpreter, probe_env)
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
    drift += env_drift(host_env, dict(os.environ))
    drift += input_drift(
        snapshot.inputs, fingerprint_now(snapshot.inputs, client.location.cache_dir)
    )
    pins = used_artifact_versions(client.store, snapshot.info.uuid)
    env = dict(host_env)
    if pins:
        env[PINS_ENV] = json.dumps(pins)
    return RerunPlan(
        source=snapshot,
        directory=target,
        workdir=snapshot.relative_cwd(),
        interpreter=interpreter,
        script=script,
        args=command.args,
        values=command.values,
        overrides=tuple(overrides),
        config=command.config,
        seed=command.seed,
        env=env,
        drift=drift,
        artifacts=pins,
    )


def used_artifact_versions(store: Store, run_uuid: str) -> dict[str, int]:
    """The version of each named artifact the run used (the latest, if it used several)."""
    pins: dict[str, int] = {}
    for link in store.list_artifact_links(run_uuid=run_uuid):
        if link.role == "used":
            pins[link.name] = max(link.version, pins.get(link.name, link.version))
    return pins


def _refuse_child_run(store: Store, ref: str | int) -> None:
    """A child run (one ``labkeep.init()`` of several in a script) has no snapshot of its
    own: the script that made it is its parent's to rerun."""
    if not store.exists():
        return
    info = store.resolve_run(ref)
    if info.parent_uuid is None:
        return
    # Seeds or inputs it recorded make a snapshot without code; a run that captured its
    # own code (a script started inside a sweep, say) can be rerun by itself.
    code = (store.get_snapshot(info.number) or {}).get("code")
    if isinstance(code, dict) and code.get("manifest"):
        return
    parent = store.resolve_run(info.parent_uuid).number
    raise InvalidInputError(
        f"run {info.number} is a child of run {parent}, whose script made it: "
        f"`labkeep rerun {parent}` reruns them all"
    )


def verify_rerun(
    client: Client,
    plan: RerunPlan,
    number: int,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    ignore: Sequence[str] = (),
) -> Verdict:
    """Did run ``number`` reproduce the plan's run? The two runs, then their child runs
    pairwise (see :func:`labkeep.repro.compare_with_children`).

    >>> verify_rerun(client, plan, result.number, rtol=1e-6).differing_children  # doctest: +SKIP
    ['child 2 (run 3 → 7, iris)']
    """
    from labkeep.repro._output_verdict import volatile_names
    from labkeep.repro._verify import compare_with_children

    store = client.store
    original, new = store.get_records([plan.source.number, number])
    new_snapshot = store.get_snapshot(number) or {}
    new_inputs = new_snapshot.get("inputs")
    original_children = _children(store, original.info.uuid)
    new_children = _children(store, new.info.uuid)
    # A child run that marked an artifact volatile wrote the mark to its own snapshot, while
    # the runner collects the same file on the parent: a mark on any run of the tree counts.
    volatile = [*volatile_names(plan.source.data), *volatile_names(new_snapshot)]
    for child in (*original_children, *new_children):
        volatile.extend(volatile_names(store.get_snapshot(child.info.number)))
    return compare_with_children(
        original,
        new,
        original_children,
        new_children,
        rtol=rtol,
        atol=atol,
        original_inputs=plan.source.inputs,
        new_inputs=[i for i in new_inputs if isinstance(i, dict)]
        if isinstance(new_inputs, list)
        else [],
        ignore=ignore,
        volatile=volatile,
        read_blob=lambda sha: store.blob_path(sha).read_bytes(),
    )


def _children(store: Store, uuid: str) -> list[RunRecord]:
    numbers = store.search_numbers(None, "number", parent_uuid=uuid)
    return store.get_records(numbers) if numbers else []


@contextlib.contextmanager
def _restored_environment(variables: dict[str, str]) -> Iterator[None]:
    """The recorded variables set in this process (the child inherits them), then put back."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def rerun_notes(plan: RerunPlan) -> str:
    """The new run's notes: which run it reproduces and the drift found before it started."""
    lines = [f"rerun of run {plan.source.number} ({plan.source.info.uuid})"]
    if plan.overrides:
        lines.append("overrides: " + " ".join(plan.overrides))
    for item in plan.drift[:20]:
        lines.append(f"drift: {item.kind} {item.name}: {item.then} -> {item.now}")
    if len(plan.drift) > 20:
        lines.append(f"drift: … {len(plan.drift) - 20} more")
    return "\n".join(lines)


def execute_rerun(
    client: Client,
    plan: RerunPlan,
    *,
    on_output: Callable[[str, bytes], None] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> LaunchResult:
    """Materialise the snapshot into ``plan.directory`` and launch it there (with the runner)
    as a new run that records which run it reproduces."""
    from labkeep.repro._materialise import materialise
    from labkeep.runner._launch import LaunchSpec, launch, prepare_launch

    materialise(plan.source, plan.directory)
    _commit_tree(plan.directory, plan.source.number)
    link_inputs(plan.source, plan.directory)
    workdir = plan.directory.joinpath(*plan.workdir.parts)
    workdir.mkdir(parents=True, exist_ok=True)
    source = plan.source
    spec = LaunchSpec(
        target=Path(plan.script),
        assignments=plan.overrides,
        values=plan.values or None,
        extra_args=tuple(plan.args),
        args_yield=True,  # overrides given to rerun win over the replayed arguments
        cwd=workdir,
        experiment=source.info.experiment,
        notes=rerun_notes(plan),
        config=Path(plan.config) if plan.config else None,
        inputs=tuple(
            str(i["path"])
            for i in source.inputs
            if isinstance(i.get("path"), str) and os.path.exists(str(i["path"]))
        ),
        seed=plan.seed,
        reproduces_uuid=source.info.uuid,
        python=plan.interpreter,
        on_output=on_output,
        on_message=on_message,
    )
    with _restored_environment(plan.env):
        prepared = prepare_launch(spec, client)
        return launch(spec, client, prepared)


def _commit_tree(directory: Path, number: int) -> None:
    """Make the snapshot's files one commit of a repository of their own, so the new run's
    code snapshot is this tree (not a repository around the store), its git state is clean,
    and every file of the original snapshot is code again (untracked binaries would not be).
    Without git the capture scans the directory instead."""
    identity = ["-c", "user.name=labkeep", "-c", "user.email=labkeep@localhost"]
    steps = [
        ["init", "-q"],
        ["add", "-A", "-f"],  # -f: the snapshot's files are the tree, whatever .gitignore says
        [*identity, "commit", "-q", "--no-verify", "--no-gpg-sign", "-m", f"run {number}"],
    ]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        for step in steps:
            subprocess.run(
                ["git", "-C", str(directory), *step],
                check=True,
                capture_output=True,
                stdin=subprocess.DEVNULL,
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
