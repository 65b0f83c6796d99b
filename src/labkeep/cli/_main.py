"""The command group, the global ``--store`` option, and the one place where errors become
messages and exit codes."""

from __future__ import annotations

import sys
from typing import Any

import click

from labkeep._version import __version__
from labkeep.errors import LabkeepError


class LabkeepGroup(click.Group):
    """Maps LabkeepError to a one-line message and its exit code; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabkeepError as exc:
            message = str(exc).strip() or type(exc).__name__
            click.secho(f"labkeep: {message}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("labkeep: interrupted", fg="yellow", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added, most used first


@click.group(cls=LabkeepGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="labkeep")
@click.option(
    "--store",
    envvar="LABKEEP_HOME",
    metavar="URI",
    help="Store to use: a directory, sqlite:///FILE, postgresql://… or http(s)://… "
    "(default: the nearest .labkeep directory).",
)
@click.pass_context
def cli(ctx: click.Context, store: str | None) -> None:
    """labkeep: track, compare and reproduce machine-learning runs."""
    from labkeep._log_handler import install_stderr_handler

    install_stderr_handler()  # the library's warnings, as `labkeep: …` lines
    ctx.obj = {"store": store}


def _register() -> None:
    from labkeep.cli import (
        _artifacts,
        _checkout_env,
        _compare,
        _db,
        _diff,
        _edit,
        _gc,
        _import,
        _models,
        _rerun,
        _run,
        _server,
        _show,
        _sweep,
        _tensorboard,
    )

    for command in (
        _run.run_command,
        _run.stop_command,
        _show.runs_command,
        _show.show_command,
        _compare.compare_command,
        _models.models_group,
        _artifacts.artifacts_group,
        _diff.diff_command,
        _rerun.rerun_command,
        _checkout_env.checkout_command,
        _checkout_env.env_command,
        _edit.tag_command,
        _edit.note_command,
        _edit.delete_command,
        _edit.restore_command,
        _edit.purge_command,
        _gc.gc_command,
        _db.db_group,
        _server.server_command,
        _server.ui_command,
        _server.sync_command,
        _sweep.sweeps_command,
        _sweep.sweep_group,
        _import.import_group,
        _tensorboard.tensorboard_command,
    ):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="labkeep")
