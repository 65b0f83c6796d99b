"""Running the app: one listening socket, one or more uvicorn worker processes.

The socket is bound here, once, with ``IPPROTO_TCP`` as its protocol and ``TCP_NODELAY``
set, then handed to every worker. asyncio turns on ``TCP_NODELAY`` for an accepted
connection only when the listener reports ``proto == IPPROTO_TCP``; uvicorn's own
``--workers`` path binds with ``proto`` 0, so every small keep-alive request there waits
~40 ms for a delayed ACK (uvicorn issue 3149). Binding it ourselves keeps small requests
sub-millisecond with any number of workers.
"""

from __future__ import annotations

import ipaddress
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labkeep.errors import InvalidInputError
from labkeep.server._auth import LOOPBACK_HOSTS, TokenSet

_log = logging.getLogger(__name__)
#: A worker that dies sooner than this after its start is not restarted (it would again).
_MIN_UPTIME_S = 5.0


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


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP listener whose accepted connections get TCP_NODELAY (see the module docstring)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InvalidInputError(
            f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port or --host"
        ) from None
    sock.set_inheritable(True)
    return sock


def check_store(settings: ServeSettings) -> str:
    """Open the store once before serving (creating or checking its schema), so that a bad
    URI or an old schema is one error here rather than one per worker; returns its URI."""
    from labkeep.server._app import create_app

    app = create_app(settings.store)
    client = app.state.client
    try:
        client.store.list_experiments()
        return str(client.location.uri)
    finally:
        client.close()


def serve(settings: ServeSettings, ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM. ``ready`` gets the URL once the socket listens."""
    if settings.workers < 1:
        raise InvalidInputError("--workers must be at least 1")
    check_store(settings)
    sock = listening_socket(settings.host, settings.port)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{sock.getsockname()[1]}"
    try:
        if settings.workers == 1:
            if ready is not None:
                ready(url)
            run_worker(sock, settings, None)
        else:
            _Supervisor(sock, settings).run(lambda: ready(url) if ready else None)
    finally:
        sock.close()


def run_worker(sock: socket.socket, settings: ServeSettings, parent_pid: int | None) -> None:
    """One uvicorn server on the shared listener (in a worker process, or in-process)."""
    import uvicorn

    from labkeep.server._app import create_app

    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    app = create_app(
        settings.store,
        tokens=settings.tokens,
        read_only=settings.read_only,
        allowed_hosts=LOOPBACK_HOSTS if settings.loopback else None,
    )
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        access_log=False,
        timeout_keep_alive=75,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


def _exit_with_parent(parent_pid: int) -> None:
    """Stop this worker gracefully when its supervisor is gone (killed with SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="labkeep-parent-watch", daemon=True).start()


class _Supervisor:
    """Starts the workers, restarts one that dies, and stops them all on SIGINT/SIGTERM."""

    def __init__(self, sock: socket.socket, settings: ServeSettings) -> None:
        self.sock = sock
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()
        self.workers: list[tuple[Any, float]] = []

    def _start(self) -> tuple[Any, float]:
        process = self.context.Process(
            target=run_worker,
            args=(self.sock, self.settings, os.getpid()),
            name="labkeep-server-worker",
        )
        process.start()
        return process, time.monotonic()

    def run(self, ready: Callable[[], None]) -> None:
        previous = {
            sig: signal.signal(sig, lambda *_: self.stopping.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.workers = [self._start() for _ in range(self.settings.workers)]
            ready()
            while not self.stopping.wait(0.5):
                self._replace_dead()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop_all()

    def _replace_dead(self) -> None:
        for index, (process, started) in enumerate(self.workers):
            if process.is_alive():
                continue
            if time.monotonic() - started < _MIN_UPTIME_S:
                _log.error("server worker exited with code %s on start; stopping", process.exitcode)
                self.stopping.set()
                return
            _log.warning(
                "server worker %s died (code %s); restarting", process.pid, process.exitcode
            )
            self.workers[index] = self._start()

    def _stop_all(self) -> None:
        for process, _ in self.workers:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 10.0
        for process, _ in self.workers:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
