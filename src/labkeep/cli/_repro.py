"""``labkeep rerun``, ``diff``, ``checkout``, ``env`` and the snapshot view of ``show``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from labkeep.cli._context import client_from
from labkeep.cli._format import format_size, format_value
from labkeep.cli._params import check_creatable
from labkeep.errors import InvalidInputError, NotFoundError, StoreError

if TYPE_CHECKING:
    from rich.console import Console

    from labkeep.repro import DriftItem, RunSnapshot, Verdict

#: Packages worth naming in a snapshot summary (when installed).
NOTABLE_PACKAGES = (
    "torch", "tensorflow", "jax", "jaxlib", "numpy", "scipy", "pandas", "scikit-learn",
    "xgboost", "lightgbm", "transformers", "keras", "lightning", "pytorch-lightning",
    "torchvision", "cupy", "polars", "labkeep",
)  # fmt: skip
TOP_FILES = 10


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _diff_syntax(text: str) -> Any:
    from rich.syntax import Syntax

    return Syntax(text.rstrip("\n"), "diff", theme="ansi_dark", background_color="default")


# -- show --snapshot --------------------------------------------------------------------------
def render_snapshot(ctx: click.Context, run: str, show_all: bool, as_json: bool) -> None:
    """The snapshot of ``run``: code, git, packages, host, inputs (checked now) and seeds."""
    from rich.markup import escape
    from rich.table import Table

    from labkeep.repro._drift import fingerprint_now

    def e(value: object) -> str:  # what the run recorded is text, never markup
        return escape(str(value))

    client = client_from(ctx)
    client.recover()
    snap = load_snapshot_any(client.store, run)
    if as_json:
        click.echo(json.dumps(snap.data, indent=2, sort_keys=True))
        return
    console = _console()
    info = snap.info
    console.print(f"[bold]snapshot of run {info.number}[/]  {e(info.name)}")
    if info.reproduces_uuid:
        try:
            original = client.store.resolve_run(info.reproduces_uuid)
            console.print(f"rerun of run {original.number} ({info.reproduces_uuid[:8]})")
        except NotFoundError:
            console.print(f"rerun of {e(info.reproduces_uuid)} (no longer in the store)")
    if "error" in snap.data:
        console.print(f"[red]capture failed:[/] {e(snap.data['error'])}")

    code = snap.section("code")
    grid = _grid()
    if code.get("error"):
        grid.add_row("code", f"[red]{e(code['error'])}[/]")
    elif code.get("manifest"):
        manifest = snap.manifest()
        total = sum(e.size for e in manifest)
        grid.add_row(
            "code",
            f"{len(manifest)} files, {format_size(total)} (from {e(code.get('source'))}: "
            f"{e(code.get('root'))})",
        )
        biggest = manifest if show_all else sorted(manifest, key=lambda e: -e.size)[:TOP_FILES]
        for entry in sorted(biggest, key=lambda e: e.path):
            x = " [dim]x[/]" if entry.executable else ""
            grid.add_row("", f"{e(entry.path)}  [dim]{format_size(entry.size)}[/]{x}")
        if not show_all and len(manifest) > TOP_FILES:
            grid.add_row("", f"[dim]… {len(manifest) - TOP_FILES} more (--all lists them)[/]")
        if code.get("skipped_count"):
            grid.add_row(
                "",
                f"[yellow]{code['skipped_count']} file(s) left out (not source, binary, "
                "size or limits)[/]",
            )
        if code.get("unstored"):
            grid.add_row("", f"[red]{len(code['unstored'])} file(s) could not be stored[/]")
    else:
        grid.add_row("code", "[dim]not kept (code capture was off)[/]")

    git = snap.section("git")
    if git.get("repo"):
        grid.add_row(
            "git", f"{e(str(git.get('commit') or '(no commit)')[:12])} on {e(git.get('branch'))}"
        )
        if git.get("remote_url"):
            grid.add_row("", f"{e(git.get('remote'))}: {e(git['remote_url'])}")
        if git.get("dirty"):
            parts = []
            for what in ("changed", "untracked"):
                paths = git.get(what) or []
                count = git.get(f"{what}_count", len(paths))
                if count:
                    more = "…" if count > 8 else ""
                    parts.append(f"{count} {what} ({e(', '.join(paths[:8]))}{more})")
            grid.add_row("", "[yellow]dirty[/]: " + ", ".join(parts))
        else:
            grid.add_row("", "clean")
        if git.get("error"):
            grid.add_row("", f"[red]{e(git['error'])}[/]")
    elif git.get("error"):
        grid.add_row("git", f"[red]{e(git['error'])}[/]")
    else:
        grid.add_row("git", "[dim]not a git repository[/]")

    environment = snap.section("environment")
    packages = snap.packages()
    grid.add_row(
        "python",
        f"{e(environment.get('python_version'))} ({e(environment.get('executable'))})",
    )
    notable = [e(f"{n} {packages[n]}") for n in NOTABLE_PACKAGES if n in packages]
    grid.add_row("packages", f"{len(packages)}" + (f": {', '.join(notable)}" if notable else ""))
    if show_all:
        for name, version in packages.items():
            grid.add_row("", e(f"{name}=={version}"))
    gpu = environment.get("gpu")
    if isinstance(gpu, dict) and gpu.get("gpus"):
        names = ", ".join(str(g.get("name")) for g in gpu["gpus"])
        grid.add_row("gpu", e(f"{names} (driver {gpu.get('driver_version')})"))

    host = snap.section("host")
    if host:
        memory = host.get("memory_total_bytes")
        grid.add_row("host", e(f"{host.get('user')}@{host.get('hostname')}"))
        grid.add_row(
            "",
            e(f"{host.get('cpu_model')}, {host.get('cpu_count')} CPUs")
            + (f", {format_size(int(memory))} memory" if memory else ""),
        )
        grid.add_row("argv", e(" ".join(str(a) for a in host.get("argv") or [])))
        grid.add_row("cwd", e(host.get("cwd")))
        for key, value in (host.get("env") or {}).items():
            grid.add_row("", f"[dim]{e(f'{key}={value}')}[/]")
    command = snap.section("command")
    if command.get("target"):
        grid.add_row("command", e(command_text(command)))
    console.print(grid)

    if snap.inputs:
        table = Table(title="inputs", title_justify="left", box=None, header_style="bold")
        for col in ("path", "sha256", "size", "now"):
            table.add_column(col, justify="right" if col == "size" else "left")
        now = fingerprint_now(snap.inputs, client.location.cache_dir)
        for item in snap.inputs:
            path = str(item.get("path"))
            current = now.get(path)
            if item.get("sha256") is None:
                state = f"[red]{e(item.get('error', 'not fingerprinted'))}[/]"
            elif isinstance(current, dict) and current.get("sha256") == item.get("sha256"):
                state = "[green]unchanged[/]"
            elif isinstance(current, dict):
                state = "[red]changed[/]"
            else:
                state = f"[red]{e(current or 'missing')}[/]"
            table.add_row(
                e(path),
                str(item.get("sha256") or "")[:12],
                format_size(int(item.get("size") or 0)),
                state,
            )
        console.print(table)
    for seed in snap.seeds:
        console.print(seed_text(seed))


def seed_text(seed: dict[str, Any]) -> str:
    """One recorded seed as a line, with only what is known: ``seed 7: random, numpy
    (PYTHONHASHSEED 7)``, or ``seed 7 (PYTHONHASHSEED 7, via labkeep run --seed)``."""
    from rich.markup import escape

    seeded = escape(", ".join(str(s) for s in seed.get("seeded") or []))
    # labkeep.seed() records ``pythonhashseed``; ``labkeep run --seed`` ``PYTHONHASHSEED``.
    hash_seed = seed.get("pythonhashseed", seed.get("PYTHONHASHSEED"))
    details = [escape(f"PYTHONHASHSEED {hash_seed}")] if hash_seed is not None else []
    if seed.get("via"):
        details.append(escape(f"via {seed['via']}"))
    text = f"[bold]seed[/] {escape(str(seed.get('seed')))}" + (f": {seeded}" if seeded else "")
    return text + (f" [dim]({', '.join(details)})[/]" if details else "")


def command_text(command: dict[str, Any]) -> str:
    """The ``labkeep run`` command a run's ``command`` section records, as typed:
    ``labkeep run train.py lr=0.01 -- --extra``."""
    words = ["labkeep", "run", str(command.get("target"))]
    overrides = command.get("overrides")
    if isinstance(overrides, dict):
        words += [f"{k}={format_value(v)}" for k, v in overrides.items()]
    extra = [str(a) for a in command.get("extra_args") or []]
    if extra:
        words += ["--", *extra]
    return " ".join(words)


def _grid() -> Any:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def load_snapshot_any(store: Any, ref: str) -> RunSnapshot:
    """Like :func:`load_snapshot`, but runs in the trash can still be looked at."""
    from labkeep.repro import RunSnapshot

    if not store.exists():
        raise NotFoundError(f"no run {ref!r}: the store at {store.uri} has no runs yet")
    info = store.resolve_run(ref)
    data = store.get_snapshot(info.number)
    if data is None:
        raise NotFoundError(
            f"run {info.number} has no snapshot (it ran with capture off, or is still starting)"
        )
    return RunSnapshot(store, info, data)


# -- rerun ------------------------------------------------------------------------------------
def _drift_table(items: list[DriftItem]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="drift since the run", title_justify="left", box=None, header_style="bold")
    for col in ("", "what", "then", "now", "why"):
        table.add_column(col, overflow="fold")
    marks = {"block": "[red]✗[/]", "warn": "[yellow]![/]", "note": "[dim]·[/]"}
    for item in items:
        table.add_row(  # names, versions and paths are text, never markup
            marks[item.severity],
            Text(f"{item.kind} {item.name}"),
            Text(str(item.then)) if item.then is not None else "[dim]-[/]",
            Text(str(item.now)) if item.now is not None else "[dim]-[/]",
            Text(item.why),
        )
    return table


def _verdict_table(verdict: Verdict, original: int, new: int) -> Any:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    ok = verdict.reproduced
    table = Table(
        title=f"run {new} {'[green]reproduced[/]' if ok else '[red]did not reproduce[/]'} run {original}",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("item", overflow="fold")
    table.add_column(f"run {original}", overflow="fold")
    table.add_column(f"run {new}", overflow="fold")
    table.add_column("verdict")
    for item in verdict.items:
        label = (f"{item.child}: " if item.child else "") + (
            f"{item.kind} {item.name}" if item.kind != "status" else "status"
        )
        table.add_row(  # names and values are text, never markup
            Text(label),
            Text(str(item.original) if item.original is not None else "-"),
            Text(str(item.new) if item.new is not None else "-"),
            # ``why`` says how it differs ("differs by 0.06", "only in the rerun").
            "[green]reproduced[/]"
            if item.reproduced
            else f"[red]{escape(item.why or 'differs')}[/]",
        )
    return table


def _skipped_line(skipped: tuple[tuple[str, str], ...], limit: int = 12) -> str:
    from rich.markup import escape

    why = {"ignored": "--ignore", "other tracker": "another tracker's"}
    shown = ", ".join(f"{path} ({why.get(reason, reason)})" for path, reason in skipped[:limit])
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"[dim]not compared: {escape(shown)}{more}[/]"


@click.command("rerun", context_settings={"ignore_unknown_options": False})
@click.argument("run")
@click.argument("overrides", nargs=-1)
@click.option("--verify", is_flag=True, help="Compare the new run with RUN and print a verdict.")
@click.option("--rtol", type=click.FloatRange(min=0), default=0.0, help="Relative tolerance.")
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, help="Absolute tolerance.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the snapshot's code (default: <store>/reruns/RUN-xxxxxx).",
)
@click.option(
    "--allow-changed-inputs", is_flag=True, help="Run even if an input changed since RUN."
)
@click.option(
    "--ignore",
    "ignore",
    metavar="PATTERN",
    multiple=True,
    help="With --verify, leave output files matching PATTERN (gitignore syntax) out of the "
    "verdict; repeatable.",
)
@click.pass_context
def rerun_command(
    ctx: click.Context,
    run: str,
    overrides: tuple[str, ...],
    verify: bool,
    rtol: float,
    atol: float,
    directory: Path | None,
    allow_changed_inputs: bool,
    ignore: tuple[str, ...],
) -> None:
    """Run RUN again from its snapshot: same code, interpreter, flags and inputs.

    NAME=VALUE arguments override flags (runs started with `labkeep run`). Drift since RUN
    (Python, packages, git, inputs) is reported first; a changed input stops the rerun unless
    --allow-changed-inputs. With --verify, exit status 0 means reproduced.
    """
    from labkeep.repro import check_target, execute_rerun, plan_rerun, verify_rerun

    if ignore and not verify:
        raise InvalidInputError("--ignore only applies to a verdict: add --verify")
    client = client_from(ctx)
    if directory is not None:
        check_creatable(directory, "directory")
        check_target(directory.absolute())
    plan = plan_rerun(client, run, overrides, directory=directory)
    err = _console(stderr=True)
    number = plan.source.number
    if plan.drift:
        err.print(_drift_table(plan.drift))
    else:
        err.print(f"[dim]no drift since run {number}[/]")
    if plan.blocking and not allow_changed_inputs:
        first = plan.blocking[0]
        more = f" (and {len(plan.blocking) - 1} more)" if len(plan.blocking) > 1 else ""
        raise InvalidInputError(
            f"input {first.name} {first.why} since run {number}{more}; "
            "pass --allow-changed-inputs to rerun anyway"
        )
    err.print(f"[bold]rerunning run {number}[/] in {plan.directory}")
    sys.stdout.flush()
    result = execute_rerun(client, plan, on_output=_write_output, on_message=_message)
    if result.number is None:
        raise StoreError(
            f"the rerun ({result.status.value}) is kept on this machine as run "
            f"{result.uuid[:8]}: `labkeep sync` sends it when {client.location.uri} is back"
        )
    err.print(
        f"run {result.number} ({result.status.value}, exit code {result.exit_code}) "
        f"is a rerun of run {number}"
    )
    if verify:
        verdict = verify_rerun(client, plan, result.number, rtol=rtol, atol=atol, ignore=ignore)
        _console().print(_verdict_table(verdict, number, result.number))
        if verdict.differing_children:
            _console().print(
                "child runs that did not reproduce: " + "; ".join(verdict.differing_children)
            )
        if verdict.skipped:
            _console().print(_skipped_line(verdict.skipped), soft_wrap=True)
        ctx.exit(0 if verdict.reproduced else 1)
    ctx.exit(0 if result.exit_code == 0 else 1)


def _write_output(stream: str, data: bytes) -> None:
    out = sys.stdout if stream == "stdout" else sys.stderr
    out.buffer.write(data)
    out.buffer.flush()


def _message(text: str) -> None:
    click.secho(f"labkeep: {text}", fg="yellow", err=True)


# -- diff -------------------------------------------------------------------------------------
def _rows_table(title: str, rows: list[Any], a: int, b: int, show_same: bool) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold", box=None)
    table.add_column("key", overflow="fold")
    table.add_column(f"run {a}", overflow="fold")
    table.add_column(f"run {b}", overflow="fold")
    styles = {"changed": "yellow", "added": "green", "removed": "red", "same": "dim"}
    for row in rows:
        if row.state == "same" and not show_same:
            continue
        style = styles[row.state]
        table.add_row(  # keys and values are text, never markup
            Text(row.key, style=style),
            Text("-" if row.state == "added" else format_value(row.a)),
            Text("-" if row.state == "removed" else format_value(row.b)),
        )
    return table


def _section_rows(
    console: Console, title: str, rows: list[Any], a: int, b: int, show_same: bool
) -> None:
    differing = [r for r in rows if r.state != "same"]
    same = len(rows) - len(differing)
    if not rows:
        console.print(f"[bold]{title}[/]: [dim]none in either run[/]")
    elif not differing and not show_same:
        console.print(f"[bold]{title}[/]: [green]the same[/] ({same})")
    else:
        console.print(_rows_table(title, rows, a, b, show_same))
        if same and not show_same:
            console.print(f"[dim]{same} the same (--all shows them)[/]")
    console.print()


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--flags", "sections", flag_value="flags", multiple=True, help="Flags and params.")
@click.option("--metrics", "sections", flag_value="metrics", multiple=True, help="Metrics.")
@click.option("--packages", "sections", flag_value="packages", multiple=True, help="Packages.")
@click.option("--code", "sections", flag_value="code", multiple=True, help="Code files.")
@click.option("--output", "sections", flag_value="output", multiple=True, help="Console output.")
@click.option("--path", "path", metavar="FILE", help="One code file (notebooks cell by cell).")
@click.option("--all", "show_all", is_flag=True, help="Also list what is the same.")
@click.pass_context
def diff_command(
    ctx: click.Context,
    run_a: str,
    run_b: str,
    sections: tuple[str, ...],
    path: str | None,
    show_all: bool,
) -> None:
    """Show what differs between RUN_A and RUN_B: flags/params, metrics, packages, code and
    console output (all of them unless one is chosen)."""
    from rich.markup import escape

    from labkeep.repro import diff_argv, diff_manifests, diff_mappings, file_diff, output_diff

    client = client_from(ctx)
    client.recover()
    store = client.store
    if not store.exists():
        raise InvalidInputError(f"the store at {store.uri} has no runs yet")
    info_a, info_b = store.resolve_run(run_a), store.resolve_run(run_b)
    a, b = info_a.number, info_b.number
    console = _console()
    snaps = {}
    for info in (info_a, info_b):
        data = store.get_snapshot(info.number)
        if data is not None:
            from labkeep.repro import RunSnapshot

            snaps[info.number] = RunSnapshot(store, info, data)

    def need_snapshots(what: str) -> bool:
        missing = [n for n in (a, b) if n not in snaps]
        if not missing:
            return True
        message = f"run {missing[0]} has no snapshot, so its {what} are unknown"
        if path is not None or sections:
            raise InvalidInputError(message + "; compare runs that have snapshots")
        console.print(f"[bold]{what}[/]: [dim]{message}[/]\n")
        return False

    if path is not None:
        need_snapshots("code files")
        ma = {e.path: e for e in snaps[a].manifest()}
        mb = {e.path: e for e in snaps[b].manifest()}
        key = Path(path).as_posix().removeprefix("./")
        if key not in ma and key not in mb:
            raise InvalidInputError(
                f"{path} is in neither run's code snapshot; `labkeep show RUN --snapshot --all` "
                "lists the files"
            )
        text = file_diff(snaps[a], snaps[b], key, (ma.get(key), mb.get(key)))
        if text:
            console.print(_diff_syntax(text))
        else:
            console.print(f"{escape(key)}: [green]the same[/] in runs {a} and {b}")
        return

    chosen = set(sections) or {"flags", "metrics", "packages", "code", "output"}
    rec_a, rec_b = store.get_records([a, b])
    if "flags" in chosen:
        _section_rows(
            console, "flags/params", diff_mappings(rec_a.params, rec_b.params), a, b, show_all
        )
        if a in snaps and b in snaps:
            argv = diff_argv(snaps[a], snaps[b])
            if argv.state == "same" and not show_all:
                shown = escape(argv.a) or "no arguments"
                console.print(f"[bold]argv[/]: [green]the same[/] ({shown})\n")
            else:
                console.print(_rows_table("script arguments", [argv], a, b, show_same=True))
                console.print()
    if "metrics" in chosen:
        last_a = {k: m.last for k, m in rec_a.metrics.items() if not k.startswith("sys/")}
        last_b = {k: m.last for k, m in rec_b.metrics.items() if not k.startswith("sys/")}
        rows = diff_mappings({**last_a, **rec_a.summary}, {**last_b, **rec_b.summary})
        _section_rows(console, "metrics (last) and summary", rows, a, b, show_all)
    if "packages" in chosen and need_snapshots("packages"):
        rows = diff_mappings(snaps[a].packages(), snaps[b].packages())
        _section_rows(console, "packages", rows, a, b, show_all)
    if "code" in chosen and need_snapshots("code files"):
        code = diff_manifests(snaps[a].manifest(), snaps[b].manifest())
        if code.empty:
            console.print(f"[bold]code[/]: [green]the same[/] ({code.unchanged} files)\n")
        else:
            console.print(
                f"[bold]code[/]: {len(code.changed)} changed, {len(code.added)} added, "
                f"{len(code.removed)} removed, {code.unchanged} the same"
            )
            for entry in code.added:
                console.print(f"  [green]+ {escape(entry.path)}[/]")
            for entry in code.removed:
                console.print(f"  [red]- {escape(entry.path)}[/]")
            for x, y in code.changed:
                text = file_diff(snaps[a], snaps[b], x.path, (x, y))
                if text:
                    console.print(_diff_syntax(text))
            console.print()
    if "output" in chosen:
        lines_a = [line.text for line in store.get_output(a)]
        lines_b = [line.text for line in store.get_output(b)]
        text = output_diff(lines_a, lines_b, (f"run {a} output", f"run {b} output"))
        if not lines_a and not lines_b:
            console.print("[bold]output[/]: [dim]neither run kept console output[/]")
        elif not text:
            console.print(f"[bold]output[/]: [green]the same[/] ({len(lines_a)} lines)")
        else:
            console.print("[bold]output[/]")
            console.print(_diff_syntax(text))


# -- checkout, env ----------------------------------------------------------------------------
@click.command("checkout")
@click.argument("run")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def checkout_command(ctx: click.Context, run: str, directory: Path) -> None:
    """Write RUN's code files into DIRECTORY (new or empty), with labkeep-snapshot.json and
    pinned requirements beside them."""
    from labkeep.repro import check_target, load_snapshot, materialise

    check_creatable(directory, "directory")
    check_target(directory.absolute())
    client = client_from(ctx)
    client.recover()
    snap = load_snapshot(client.store, run)
    done = materialise(snap, directory, extras=True)
    click.echo(
        f"run {snap.number}: {done.files} files ({format_size(done.bytes)}) written to "
        f"{done.directory}, with {', '.join(done.extras)}"
    )


@click.command("env")
@click.argument("run")
@click.option("--requirements", "as_requirements", is_flag=True, help="Print pinned requirements.")
@click.option(
    "--venv",
    "venv",
    type=click.Path(path_type=Path, file_okay=False),
    help="Recreate the environment in this directory with uv.",
)
@click.option("--offline", is_flag=True, help="With --venv: use only uv's cache and --find-links.")
@click.option(
    "--find-links",
    "find_links",
    multiple=True,
    type=click.Path(path_type=Path),
    help="With --venv: a directory of wheels to install from.",
)
@click.option("--uv", "uv", metavar="PATH", help="The uv executable (default: uv on PATH).")
@click.pass_context
def env_command(
    ctx: click.Context,
    run: str,
    as_requirements: bool,
    venv: Path | None,
    offline: bool,
    find_links: tuple[Path, ...],
    uv: str | None,
) -> None:
    """RUN's Python environment: pinned requirements (the default), or recreated with --venv."""
    import os

    from labkeep.repro import load_snapshot, recreate_venv, requirements_text
    from labkeep.repro._environment import find_uv

    client = client_from(ctx)
    client.recover()
    snap = load_snapshot(client.store, run)
    environment = snap.section("environment")
    version = environment.get("python_version")
    text = requirements_text(snap.packages(), snap.package_sources(), python_version=version)
    if venv is None:
        click.echo(text, nl=False)
        return
    check_creatable(venv, "environment")
    if as_requirements:
        click.echo(text, nl=False)
    find_uv(uv)
    executable = environment.get("executable")
    python = (
        executable
        if isinstance(executable, str) and os.access(executable, os.X_OK)
        else str(version or f"{sys.version_info.major}.{sys.version_info.minor}")
    )
    args: list[str] = ["--offline"] if offline else []
    for link in find_links:
        args += ["--find-links", str(link.absolute())]
    err = _console(stderr=True)
    err.print(f"creating {venv} with Python {python} …")
    result = recreate_venv(venv, text, python=python, uv=uv, install_args=args)
    err.print(f"{len(result.installed)} package(s) installed in {result.directory}")
    for name in result.skipped:
        err.print(f"[yellow]not installed[/] {name}: a local or editable install")
    for requirement, why in result.failed.items():
        err.print(f"[red]could not get[/] {requirement}: {why}")
    if result.failed:
        ctx.exit(1)
