"""Running the app under uvicorn: one listener, one or more worker processes.

The listener and the worker supervisor are uvicorn's own (``Config.bind_socket`` and
``Multiprocess``: a worker that dies is replaced, one that fails on start stops the server,
SIGINT/SIGTERM stop them all). The server extra requires uvicorn 0.55.0, the first release
whose ``bind_socket`` gives the listener ``IPPROTO_TCP`` as its protocol: asyncio turns on
``TCP_NODELAY`` for an accepted connection only when the listener reports it, and before
that release every small keep-alive request under ``--workers`` waited ~40 ms for a delayed
ACK (uvicorn issue 3149).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError
from labkeep.server._auth import LOOPBACK_HOSTS, TokenSet

if TYPE_CHECKING:
    import socket

    import uvicorn


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """What ``labkeep server`` and ``labkeep ui`` run."""

    store: str | None
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    tokens: TokenSet | None = None
    read_only: bool = False
    log_level: str = "warning"
    #: The artifact store (a directory or ``s3://bucket/prefix``), recorded in the store.
    artifacts: str | None = None
    #: Clients send blobs through the server instead of straight to the object store.
    artifacts_proxy: bool = False

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_store(settings: ServeSettings) -> str:
    """Open the store once before serving (creating or checking its schema), so that a bad
    URI or an old schema is one error here rather than one per worker; returns its URI."""
    from labkeep.server._app import create_app

    app = create_app(settings.store, artifacts=settings.artifacts)
    client = app.state.client
    try:
        client.store.list_experiments()
        if settings.artifacts is not None:
            client.store.record_artifact_location(settings.artifacts)
            # Reachable, the bucket there, the credentials accepted: one line now, not a
            # failed upload later.
            client.store.keep_blob("0" * 64)
        return str(client.location.uri)
    finally:
        client.close()


@dataclass(frozen=True, slots=True)
class WorkerApp:
    """The app factory uvicorn calls in each worker (it travels to spawned workers pickled)."""

    settings: ServeSettings
    supervisor_pid: int

    def __call__(self) -> Any:
        from labkeep.server._app import create_app

        if os.getpid() != self.supervisor_pid:
            _exit_with_parent(self.supervisor_pid)
        return create_app(
            self.settings.store,
            tokens=self.settings.tokens,
            read_only=self.settings.read_only,
            allowed_hosts=LOOPBACK_HOSTS if self.settings.loopback else None,
            artifacts=self.settings.artifacts,
            artifacts_proxy=self.settings.artifacts_proxy,
        )


def uvicorn_config(settings: ServeSettings) -> uvicorn.Config:
    """uvicorn's configuration for ``settings``: the app made by :class:`WorkerApp`."""
    import uvicorn

    return uvicorn.Config(
        WorkerApp(settings, os.getpid()),
        factory=True,
        host=settings.host.strip("[]"),
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
        timeout_keep_alive=75,
        server_header=False,
        # The supervisor kills a worker that does not answer its ping in time. uvicorn's 5 s
        # killed workers busy applying batches from 8 clients on a loaded 2-core machine
        # (their requests failed and were retried); a hung worker is still replaced.
        timeout_worker_healthcheck=60,
    )


def serve(settings: ServeSettings, ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM. ``ready`` gets the URL once the socket listens."""
    if settings.workers < 1:
        raise InvalidInputError("--workers must be at least 1")
    check_store(settings)
    config = uvicorn_config(settings)
    sock = listen(config)
    host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{host}:{sock.getsockname()[1]}"
    try:
        if ready is not None:
            ready(url)
        if settings.workers == 1:
            import uvicorn

            uvicorn.Server(config).run(sockets=[sock])
        else:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


def listen(config: uvicorn.Config) -> socket.socket:
    """uvicorn's listener for ``config``, already listening (so a client that reads the URL
    can connect at once); a one-line error when the address is taken or not ours."""
    caught = _BindError()
    logger = logging.getLogger("uvicorn.error")
    logger.addFilter(caught)
    try:
        sock = config.bind_socket()
    except SystemExit:  # bind_socket logs the OSError and exits
        reason = f" ({caught.error.strerror})" if caught.error is not None else ""
        raise InvalidInputError(
            f"cannot listen on {config.host}:{config.port}{reason}: pick another --port or --host"
        ) from None
    finally:
        logger.removeFilter(caught)
    sock.listen(config.backlog)
    return sock


class _BindError(logging.Filter):
    """Keeps the OSError that ``bind_socket`` logs, to say it in labkeep's own line."""

    def __init__(self) -> None:
        super().__init__()
        self.error: OSError | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, OSError):
            self.error = record.msg
            return False
        return True


def _exit_with_parent(parent_pid: int) -> None:
    """Stop this worker gracefully when its supervisor is gone (killed with SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="labkeep-parent-watch", daemon=True).start()
