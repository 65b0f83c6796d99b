"""``labkeep run``'s logic: launch a script or notebook as a tracked run, unmodified.

:func:`prepare_launch` does everything that can fail on bad input (missing script, syntax
error, notebook that is not JSON, unknown flag, value of the wrong type) before any run
exists; :func:`launch` then checks that the store takes writes (a refused token is an error
before anything runs; an unreachable server is not waited for: the run is journalled on this
machine for ``labkeep sync``), creates the run, starts the script in its working directory with
the run handed over through ``LABKEEP_RUN_ID``/``LABKEEP_HOME`` (so ``labkeep.init()`` in the
script attaches to it), records its flags as params and its command in the snapshot, turns its
output into console lines and metrics, stores the files it created or changed, and finishes
the run with the script's exit status. Nothing here prints: output and messages go to the
callbacks of the :class:`LaunchSpec`. ``labkeep rerun`` calls :func:`launch` with ``cwd`` set
to a materialised snapshot.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.entities import RunStatus
from labkeep.errors import InvalidInputError
from labkeep.runner._child import ChildOutcome, ChildProcess, OutputCallback
from labkeep.runner._detect import DETECT_TIMEOUT, detect_flags
from labkeep.runner._flag import FlagSet, FlagValue
from labkeep.runner._output_recorder import OutputRecorder
from labkeep.runner._outputs import MAX_ENTRIES, TreeState, changed_files, scan_tree
from labkeep.runner._overrides import (
    coerce_value,
    parse_assignment,
    parse_raw_args,
    resolve_overrides,
    unknown_flag_error,
)

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep._run import Run
    from labkeep.runner._scalars import OutputScalarParser

MessageCallback = Callable[[str], None]

#: Exit status of ``labkeep run`` when the run was interrupted (Ctrl-C, ``labkeep stop``).
EXIT_INTERRUPTED = 130
#: How long the script's start waits for a reachable store to register its run, so that
#: ``labkeep.init()`` in the script attaches to a run the store knows. An unreachable store
#: is not waited for at all.
REGISTER_WAIT_S = 5.0


@dataclass(frozen=True)
class LaunchSpec:
    """What to launch and how to track it.

    ``target`` is a script or ``.ipynb`` path (relative to ``cwd``, default the current
    directory); ``assignments`` are ``name=value`` texts as typed, ``values`` flag values
    already typed (what ``labkeep rerun`` reads back from a snapshot; ``assignments`` win);
    ``extra_args`` go to the script untouched. ``on_output`` receives the child's output bytes
    as they arrive (``None``: not shown), ``on_message`` labkeep's own remarks.
    """

    target: Path
    assignments: tuple[str, ...] = ()
    values: Mapping[str, FlagValue] | None = None
    extra_args: tuple[str, ...] = ()
    args_yield: bool = False
    cwd: Path | None = None
    experiment: str = "default"
    name: str = ""
    tags: tuple[str, ...] = ()
    notes: str = ""
    config: Path | None = None
    inputs: tuple[str, ...] = ()
    seed: int | None = None
    capture: bool = True
    scalars: bool = True
    scalar_patterns: tuple[str, ...] = ()
    scalar_keys: tuple[str, ...] = ()
    system_metrics: float | None = 10.0
    collect_outputs: bool = True
    #: Record the script's MLflow/W&B/TensorBoard/Sacred calls: ``"on"`` (the tool runs too,
    #: offline), ``"only"`` (the tool writes nothing), ``None`` (not recorded).
    bridges: str | None = "on"
    #: Turn ``labkeep.autolog()`` on in the script before it runs (``--autolog``).
    autolog: bool = False
    reproduces_uuid: str | None = None
    grace: float = 5.0
    detect_timeout: float = DETECT_TIMEOUT
    python: str | None = None
    on_output: OutputCallback | None = None
    on_message: MessageCallback | None = None
    #: A sweep's trial: the sweep run it belongs to, summary values to record at its start,
    #: and an event that stops the script (as ``labkeep stop`` does) when set.
    parent_uuid: str | None = None
    summary: Mapping[str, Any] | None = None
    stop: threading.Event | None = None


@dataclass(frozen=True)
class PreparedLaunch:
    """A checked launch: the target, its detected flags and the values the run will use.

    ``overrides`` are the flags set by the values, the script arguments and the assignments
    of the spec; ``args`` what is left of the script arguments once its flags were read.
    """

    spec: LaunchSpec
    cwd: Path
    path: Path
    shown: str
    notebook: bool
    flags: FlagSet
    overrides: dict[str, FlagValue]
    values: dict[str, FlagValue]
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchResult:
    """How a launched run ended. ``exit_code`` is what ``labkeep run`` exits with;
    ``number`` is None when the store could not be reached (the run waits on this machine
    for ``labkeep sync``)."""

    number: int | None
    uuid: str
    status: RunStatus
    exit_code: int
    duration: float
    error: str | None = None
    artifacts: list[str] = field(default_factory=list)


def flags_cache_dir(client: Client) -> Path:
    return client.location.cache_dir / "flags"


def detect(spec: LaunchSpec, client: Client) -> tuple[Path, FlagSet]:
    """The target's absolute path and its detected flags (``labkeep run --flags``)."""
    cwd = (spec.cwd or Path.cwd()).resolve()
    path = spec.target if spec.target.is_absolute() else cwd / spec.target
    if not path.is_file():
        kind = "notebook" if path.suffix.lower() == ".ipynb" else "script"
        raise InvalidInputError(f"no {kind} {spec.target} in {cwd}; check the path")
    config = spec.config
    if config is not None:
        config = config if config.is_absolute() else cwd / config
        if not config.is_file():
            raise InvalidInputError(f"no config file {spec.config} in {cwd}; check the path")
    flags = detect_flags(path, flags_cache_dir(client), config=config, python=spec.python)
    return path, flags


def prepare_launch(spec: LaunchSpec, client: Client) -> PreparedLaunch:
    """Check everything about ``spec`` that can be checked without running it.

    Raises :class:`InvalidInputError` with a one-line message; no run exists yet.
    """
    cwd = (spec.cwd or Path.cwd()).resolve()
    path, flags = detect(spec, client)
    notebook = path.suffix.lower() == ".ipynb"
    if notebook:
        from labkeep.runner._notebook_run import check_notebook_support

        check_notebook_support()
        if spec.autolog:
            raise InvalidInputError(
                "--autolog runs with scripts: in a notebook, call labkeep.autolog() in a cell"
            )
    if flags.deferred is None:
        overrides, rest = check_values(flags, spec, path)
    else:  # read from the parser when the script parses (``_live_parser.py``)
        for text in spec.assignments:
            parse_assignment(text)
        overrides, rest = {}, list(spec.extra_args)
    if not spec.bridges:
        through_wandb = [n for n in overrides if (f := flags.find(n)) and f.kind == "wandb"]
        if through_wandb:
            raise InvalidInputError(
                f"{', '.join(through_wandb)} reaches the script through wandb.init(config=...), "
                "which --no-bridges leaves alone: drop --no-bridges to set it"
            )
    for item in spec.inputs:
        if not (cwd / item).exists():
            raise InvalidInputError(f"input {item} does not exist in {cwd}; check the path")
    values = {**flags.defaults(), **overrides}
    try:
        shown = path.relative_to(cwd).as_posix()
    except ValueError:
        shown = str(path)
    return PreparedLaunch(spec, cwd, path, shown, notebook, flags, overrides, values, tuple(rest))


def check_values(
    flags: FlagSet, spec: LaunchSpec, path: Path
) -> tuple[dict[str, FlagValue], list[str]]:
    """The flags ``spec`` sets (its values, the options among its script arguments, then its
    assignments) and what is left of the script arguments. Raises ``InvalidInputError`` for an
    unknown flag, a bad value, a flag given both as NAME=VALUE and after ``--``, or a missing
    required flag."""
    overrides: dict[str, FlagValue] = {}
    for name, value in (spec.values or {}).items():
        flag = flags.find(name)
        if flag is None:
            raise unknown_flag_error(flags, name)
        try:
            overrides[flag.name] = coerce_value(flag, value)
        except ValueError:
            raise InvalidInputError(
                f"bad value {value!r} for flag '{flag.name}' of {path.name}: expected {flag.type}"
            ) from None
    raw = parse_raw_args(flags, spec.extra_args)
    assigned = resolve_overrides(flags, spec.assignments)
    if not spec.args_yield:
        for name in raw.values.keys() & assigned.keys():
            typed = next(t for t in spec.assignments if _assigned_flag(flags, t) == name)
            raise InvalidInputError(
                f"flag '{name}' of {path.name} is given twice, as {typed} and as "
                f"{raw.spelled[name]} after --; give it once"
            )
    overrides.update(raw.values)
    overrides.update(assigned)
    missing = [f.name for f in flags if f.required and f.name not in overrides]
    if missing:
        raise InvalidInputError(
            f"{path.name} requires {', '.join(missing)}: give "
            + " ".join(f"{name}=VALUE" for name in missing)
        )
    return overrides, raw.rest


def _assigned_flag(flags: FlagSet, text: str) -> str | None:
    flag = flags.find(parse_assignment(text)[0])
    return None if flag is None else flag.name


def launch(
    spec: LaunchSpec, client: Client, prepared: PreparedLaunch | None = None
) -> LaunchResult:
    """Run ``spec`` as a tracked run and return how it ended.

    >>> result = launch(LaunchSpec(Path("train.py"), ("lr=0.1",)), Client())  # doctest: +SKIP
    >>> result.status, result.number  # doctest: +SKIP
    (<RunStatus.COMPLETED: 'completed'>, 12)
    """
    ready = prepared if prepared is not None else prepare_launch(spec, client)
    online = client.store.check_writable()
    if not online and spec.on_message is not None:
        spec.on_message(
            f"cannot reach {client.location.uri}: the run is kept on this machine and "
            "`labkeep sync` sends it later"
        )
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="labkeep-run-"))
    try:
        command = None if ready.notebook else script_command(ready, workdir)
        script_args = list(ready.args) if command is None else command.script_args
        run = client.start_run(
            experiment=spec.experiment,
            name=spec.name,
            tags=list(spec.tags),
            notes=spec.notes,
            reproduces_uuid=spec.reproduces_uuid,
            parent_uuid=spec.parent_uuid,
            capture=spec.capture,
            argv=[ready.shown, *script_args],  # what the script's sys.argv will be
            entry_point=ready.shown,
            cwd=ready.cwd,
            system_metrics=None,  # started below, on the child's process tree
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        return _track(ready, client, run, workdir, started, command, online)
    except BaseException as exc:
        if not run.finished:
            if isinstance(exc, KeyboardInterrupt):
                run.finish(RunStatus.INTERRUPTED)
            else:
                run.finish(RunStatus.FAILED, error="".join(traceback.format_exception(exc)))
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _track(
    ready: PreparedLaunch,
    client: Client,
    run: Run,
    workdir: Path,
    started: float,
    command: ScriptCommand | None,
    online: bool,
) -> LaunchResult:
    spec = ready.spec
    if ready.values:
        run.config.update(ready.values)
    if spec.summary:
        run.summary.update(spec.summary)
    for item in spec.inputs:
        run.use_input(ready.cwd / item)
    if spec.seed is not None:
        run.record_seed(
            {"seed": spec.seed, "via": "labkeep run --seed", "PYTHONHASHSEED": spec.seed}
        )
    env = child_environment(run, client, spec.seed)
    if spec.bridges:
        from labkeep.runner._bootstrap import ENV_BRIDGES

        env[ENV_BRIDGES] = spec.bridges
    if spec.autolog:
        from labkeep.runner._bootstrap import ENV_AUTOLOG

        env[ENV_AUTOLOG] = "1"
    parser = None
    if spec.scalars:
        from labkeep.runner._scalars import OutputScalarParser

        ignore = flag_echo_keys(ready.flags, spec)
        parser = OutputScalarParser(
            spec.scalar_patterns or None, ignore_keys=ignore, asked_keys=spec.scalar_keys
        )
    recorder = OutputRecorder(run, parser)
    skip = [client.location.journal_dir.parent, client.location.blob_dir]
    # A script whose tracker calls labkeep records leaves that tracker's files out.
    trackers = spec.bridges is None or ready.notebook
    before = scan_tree(ready.cwd, skip, trackers=trackers) if spec.collect_outputs else None
    if ready.notebook:
        _wait_for_row(run, online)  # the kernel attaches to the run
        status, exit_code, error, artifacts = _run_notebook(
            ready, client, run, env, recorder, workdir
        )
    else:
        assert command is not None
        outcome = _run_script(ready, client, run, env, recorder, command, workdir, parser, online)
        status, exit_code, error = _verdict(outcome, recorder)
        artifacts = []
    if before is not None:
        artifacts += _store_outputs(
            run, before, scan_tree(ready.cwd, skip, trackers=trackers), spec.on_message
        )
    run.finish(status, error=error, exit_code=exit_code)
    return LaunchResult(
        number=run.wait_registered(0),
        uuid=run.uuid,
        status=status,
        exit_code=EXIT_INTERRUPTED if status is RunStatus.INTERRUPTED else exit_code,
        duration=time.monotonic() - started,
        error=error,
        artifacts=artifacts,
    )


def flag_echo_keys(flags: FlagSet, spec: LaunchSpec) -> set[str]:
    """Keys the output-scalar parser skips: scripts echo their flags (``lr=0.1``), and a flag
    is no metric unless ``spec.scalar_keys`` asks for it."""
    keys = {f.name for f in flags} | {a for f in flags for a in f.aliases}
    return keys - set(spec.scalar_keys)


def child_environment(run: Run, client: Client, seed: int | None) -> dict[str, str]:
    """The environment of the script: this one, plus the run to attach to (and its
    experiment: an ``init()`` that names another one starts a child run instead)."""
    from labkeep._api import RUN_EXPERIMENT_ENV, RUN_ID_ENV, STORE_ENV

    env = dict(os.environ)
    env[RUN_ID_ENV] = run.uuid
    env[RUN_EXPERIMENT_ENV] = run.experiment
    env[STORE_ENV] = client.location.uri
    if seed is not None:
        from labkeep.runner._bootstrap import ENV_SEED

        env["PYTHONHASHSEED"] = str(seed)
        env[ENV_SEED] = str(seed)
    return env


def _wait_for_row(run: Run, online: bool) -> None:
    """Give a reachable store a moment to register the run before the script attaches to it
    (its writes would otherwise be refused and retried until the row is there)."""
    if online:
        run.wait_registered(REGISTER_WAIT_S)


@dataclass(frozen=True)
class ScriptCommand:
    """How the child starts: its argv, the variables to add, and the script's own arguments
    (its ``sys.argv[1:]``: injected flag options, then the arguments left after ``--``)."""

    argv: list[str]
    env: dict[str, str]
    script_args: list[str]


def script_command(ready: PreparedLaunch, workdir: Path) -> ScriptCommand:
    """The command that runs ``ready``'s script with its flag values injected."""
    import json

    from labkeep.runner import _bootstrap
    from labkeep.runner._inject import build_command

    spec = ready.spec
    argv, extra_env = build_command(
        Path(ready.shown) if not Path(ready.shown).is_absolute() else ready.path,
        ready.flags,
        ready.overrides,
        ready.args,
        python=spec.python,
        config_dir=workdir,
    )
    # The bootstrap by path rather than ``-m``: the child then never imports the labkeep
    # package (and its API's dependencies) unless the script itself does.
    if argv[-2:] == ["-m", _bootstrap.__name__]:
        argv[-2:] = [str(Path(_bootstrap.__file__))]
    script_args = [str(a) for a in json.loads(extra_env[_bootstrap.ENV_ARGS])]
    return ScriptCommand(argv, extra_env, script_args)


def _run_script(
    ready: PreparedLaunch,
    client: Client,
    run: Run,
    env: dict[str, str],
    recorder: OutputRecorder,
    command: ScriptCommand,
    workdir: Path,
    scalars: OutputScalarParser | None,
    online: bool,
) -> ChildOutcome:
    from labkeep.runner._bootstrap import ENV_LIVE_PARSER, ENV_PARENT_PID

    spec = ready.spec
    argv, extra_env = command.argv, command.env
    env.update(extra_env)
    env[ENV_PARENT_PID] = str(os.getpid())
    record_command(run, ready, command)
    live = None
    if ready.flags.deferred is not None:
        import ast

        from labkeep.runner._detect import parser_modes
        from labkeep.runner._live_parser import LiveParser

        live = LiveParser(
            ready,
            run,
            workdir / "parser",
            cache_dir=flags_cache_dir(client),
            workdir=workdir,
            scalars=scalars,
            timeout=spec.detect_timeout,
            on_message=spec.on_message,
        )
        env[ENV_LIVE_PARSER] = live.environment(parser_modes(ast.parse(ready.path.read_bytes())))
        live.start()
    child = ChildProcess(
        argv, env, ready.cwd, recorder, spec.on_output, grace=spec.grace, stop=spec.stop
    )
    # Everything above overlapped with the store registering the run; the child's attach
    # (``labkeep.init()`` in the script) wants the run's row, so wait for it only now.
    _wait_for_row(run, online)

    def on_start(pid: int) -> None:
        if spec.system_metrics:
            run.monitor_system(spec.system_metrics, pid=pid)

    try:
        return child.run(on_start)
    finally:
        if live is not None:
            live.close()
        recorder.close()


def record_command(run: Run, ready: PreparedLaunch, command: ScriptCommand | None) -> None:
    """What ``labkeep rerun`` needs to run this again: the command, flags and their values."""
    spec = ready.spec
    run.set_snapshot_value(
        "command",
        {
            "target": ready.shown,
            "kind": "notebook" if ready.notebook else "script",
            "cwd": str(ready.cwd),
            "interface": ready.flags.interface,
            "flags": ready.flags.to_dict(),
            "values": ready.values,
            "overrides": ready.overrides,
            "extra_args": list(ready.args),
            "raw_args": list(spec.extra_args),
            "script_args": None if command is None else command.script_args,
            "config": None if spec.config is None else str(spec.config),
            "seed": spec.seed,
            "scalars": {
                "enabled": spec.scalars,
                "patterns": list(spec.scalar_patterns),
                "keys": list(spec.scalar_keys),
            },
            "argv": None if command is None else command.argv,
            "env": {} if command is None else dict(command.env),
            "python": spec.python or sys.executable,
        },
    )


def _verdict(outcome: ChildOutcome, recorder: OutputRecorder) -> tuple[RunStatus, int, str | None]:
    if outcome.stopped is not None:
        return RunStatus.INTERRUPTED, outcome.exit_code, None
    if outcome.exit_code == 0:
        return RunStatus.COMPLETED, 0, None
    tail = "\n".join(recorder.stderr_tail).strip()
    return RunStatus.FAILED, outcome.exit_code, tail or f"exit status {outcome.exit_code}"


def _run_notebook(
    ready: PreparedLaunch,
    client: Client,
    run: Run,
    env: dict[str, str],
    recorder: OutputRecorder,
    workdir: Path,
) -> tuple[RunStatus, int, str | None, list[str]]:
    from labkeep.runner._notebook_flags import write_notebook_with_overrides
    from labkeep.runner._notebook_run import execute_notebook, kernel_spec_dir

    spec = ready.spec
    copy = write_notebook_with_overrides(
        ready.path, workdir / "input" / ready.path.name, ready.overrides
    )
    if spec.seed is not None:
        _insert_seed_cell(copy, spec.seed)
    record_command(run, ready, None)
    if spec.system_metrics:
        run.monitor_system(spec.system_metrics)
    on_output = spec.on_output

    def on_text(stream: str, text: str) -> None:
        if on_output is not None:
            on_output(stream, text.encode())
        recorder.feed_text(stream if stream in ("stdout", "stderr") else "stdout", text)

    try:
        outcome = execute_notebook(
            copy,
            workdir / "output",
            cwd=ready.cwd,
            env=env,
            kernel_dir=kernel_spec_dir(client.location.cache_dir),
            on_text=on_text,
        )
    finally:
        recorder.close()
    artifacts = [run.log_artifact(outcome.executed, f"notebook/{ready.path.name}")]
    if outcome.html is not None:
        artifacts.append(run.log_artifact(outcome.html, f"notebook/{outcome.html.name}"))
    for name, path in outcome.images:
        artifacts.append(run.log_artifact(path, f"notebook/{name}"))
    if outcome.interrupted:
        return RunStatus.INTERRUPTED, EXIT_INTERRUPTED, None, artifacts
    if outcome.error is not None:
        log = outcome.kernel_log
        if log is not None and log.is_file() and log.stat().st_size:
            artifacts.append(run.log_artifact(log, "notebook/kernel.log", volatile=True))
        if on_output is not None:
            on_output("stderr", (outcome.error + "\n").encode())
        return RunStatus.FAILED, 1, outcome.error, artifacts
    return RunStatus.COMPLETED, 0, None, artifacts


def _insert_seed_cell(notebook: Path, seed: int) -> None:
    import json

    data: dict[str, Any] = json.loads(notebook.read_text(encoding="utf-8"))
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": ["injected-seed"]},
        "outputs": [],
        "source": [f"import labkeep.capture\nlabkeep.capture.seed_everything({seed});"],
    }
    if (data.get("nbformat"), data.get("nbformat_minor", 0)) >= (4, 5):
        cell["id"] = f"labkeep-seed-{seed}"[:64]
    data["cells"].insert(0, cell)
    notebook.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _store_outputs(
    run: Run, before: TreeState, after: TreeState, on_message: MessageCallback | None
) -> list[str]:
    if not (before.complete and after.complete):
        if on_message is not None:
            on_message(
                f"more than {MAX_ENTRIES:,} files under {before.root}: outputs were not "
                "collected; log them with run.log_artifact()"
            )
        return []
    stored = []
    for rel in changed_files(before, after):
        try:
            stored.append(run.log_artifact(before.root / rel, name=rel))
        except (OSError, InvalidInputError):
            continue  # removed again or unreadable: nothing to keep
    return stored
