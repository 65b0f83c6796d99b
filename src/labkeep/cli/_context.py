"""What every command needs: the client of the store chosen by ``--store``."""

from __future__ import annotations

import click

from labkeep._client import Client


def client_from(ctx: click.Context) -> Client:
    """The client for this invocation's store, with crashed writers recovered."""
    obj = ctx.find_root().obj or {}
    client: Client | None = obj.get("client")
    if client is None:
        client = Client(obj.get("store"))
        obj["client"] = client
        ctx.find_root().call_on_close(client.close)
    return client
