"""What every command needs: the client of the store chosen by ``--store``."""

from __future__ import annotations

import click

from labkeep._client import Client
from labkeep.cli._params import creation_problem
from labkeep.errors import StoreError


def client_from(ctx: click.Context) -> Client:
    """The client for this invocation's store, with crashed writers recovered."""
    obj = ctx.find_root().obj or {}
    client: Client | None = obj.get("client")
    if client is None:
        client = Client(obj.get("store"))
        location = client.location
        # A SQLite store that is not there yet must at least be creatable: else reads would
        # answer "no runs yet" for a place (/proc, below a file) that can never hold runs.
        problem = None
        if location.kind == "sqlite":
            db = location.sqlite_path
            problem = f"{db} is a directory" if db.is_dir() else creation_problem(db)
        if problem is not None:
            raise StoreError(
                f"no store at {location.uri}, and none can be created there: {problem}; "
                "give --store a directory you can write to"
            )
        obj["client"] = client
        ctx.find_root().call_on_close(client.close)
    return client
