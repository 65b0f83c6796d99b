"""``labkeep checkout`` and ``labkeep env``: a run's code written to a directory, and its Python
environment as pinned requirements or rebuilt with uv (the work is in :mod:`labkeep.repro`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labkeep.cli._context import client_from
from labkeep.cli._format import format_size
from labkeep.cli._params import check_creatable
from labkeep.cli._terminal import console


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

    from labkeep.repro import find_uv, load_snapshot, recreate_venv, requirements_text

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
    err = console(stderr=True)
    err.print(f"creating {venv} with Python {python} …")
    result = recreate_venv(venv, text, python=python, uv=uv, install_args=args)
    err.print(f"{len(result.installed)} package(s) installed in {result.directory}")
    for name in result.skipped:
        err.print(f"[yellow]not installed[/] {name}: a local or editable install")
    for requirement, why in result.failed.items():
        err.print(f"[red]could not get[/] {requirement}: {why}")
    if result.failed:
        ctx.exit(1)
