"""``labkeep server``, ``labkeep ui`` and ``labkeep sync``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from labkeep.cli._context import client_from


def _announce(what: str, extra: str = "") -> Callable[[str], None]:
    def ready(url: str) -> None:
        click.echo(f"labkeep {what} on {url}{extra} (Ctrl+C stops it)")

    return ready


@click.command("server")
@click.option(
    "--store", "store", metavar="URI", help="Store to serve (default: the global --store)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bearer tokens, one per line: TOKEN [rw|ro] [name].",
)
@click.option("--insecure", is_flag=True, help="Allow a non-loopback --host without tokens.")
@click.option("--read-only", is_flag=True, help="Refuse every write.")
@click.option(
    "--artifacts",
    metavar="URI",
    help="Artifact store: a directory or s3://BUCKET/PREFIX (endpoint and credentials from "
    "the AWS variables). Recorded in the store, so every server and client finds it.",
)
@click.option(
    "--artifacts-proxy",
    is_flag=True,
    help="Clients send artifacts through this server (else straight to the object store, "
    "with their own credentials).",
)
@click.option("--log-level", default="warning", show_default=True, hidden=True)
@click.pass_context
def server_command(
    ctx: click.Context,
    store: str | None,
    host: str,
    port: int,
    workers: int,
    token_file: Path | None,
    insecure: bool,
    read_only: bool,
    artifacts: str | None,
    artifacts_proxy: bool,
    log_level: str,
) -> None:
    """Serve a store to other machines: the REST API, the store protocol and the web UI.

    Clients log to it with LABKEEP_HOME=http://HOST:PORT (or labkeep.init(store=URL)) and
    LABKEEP_TOKEN=TOKEN.
    """
    from labkeep.errors import InvalidInputError
    from labkeep.server._auth import TokenSet
    from labkeep.server._serve import ServeSettings, is_loopback, serve

    tokens = TokenSet.from_file(token_file) if token_file is not None else None
    if tokens is None and not is_loopback(host) and not insecure:
        raise InvalidInputError(
            f"refusing to serve {host} without tokens: give --token-file FILE "
            "(or --insecure to allow anyone on the network to read and write)"
        )
    settings = ServeSettings(
        store=store or (ctx.find_root().obj or {}).get("store"),
        host=host,
        port=port,
        workers=workers,
        tokens=tokens,
        read_only=read_only,
        log_level=log_level,
        artifacts=artifacts,
        artifacts_proxy=artifacts_proxy,
    )
    mode = ", read-only" if read_only else ""
    auth = ", tokens required" if tokens else ""
    serve(settings, _announce("server", f" ({workers} worker{'s' * (workers > 1)}{auth}{mode})"))


@click.command("ui")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--log-level", default="warning", show_default=True, hidden=True)
@click.pass_context
def ui_command(ctx: click.Context, port: int, log_level: str) -> None:
    """Open the web UI on the local store, at http://127.0.0.1:PORT (this machine only)."""
    from labkeep.server._serve import ServeSettings, serve

    settings = ServeSettings(
        store=(ctx.find_root().obj or {}).get("store"), port=port, log_level=log_level
    )
    serve(settings, _announce("ui"))


@click.command("sync")
@click.pass_context
def sync_command(ctx: click.Context) -> None:
    """Send what was logged while the store was unreachable (journals kept on this machine).

    Exits non-zero with one line when the store still cannot be reached."""
    from labkeep._spool import sync

    client = client_from(ctx)
    result = sync(client)
    uri = client.location.uri
    if not result.pending:
        click.echo(f"nothing to send to {uri}")
        return
    click.echo(
        f"sent {result.runs} run{'s' * (result.runs != 1)} "
        f"({result.points:,} point{'s' * (result.points != 1)}) to {uri}"
    )
    if result.left:
        click.echo(
            f"{result.left} journal{'s' * (result.left != 1)} left: attached to runs "
            f"that {uri} does not have"
        )
