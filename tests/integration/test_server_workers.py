"""Several worker processes on one listener, with TCP_NODELAY on every connection."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from labkeep_server import CLI, ServerProcess, child_env, free_port, isolated

from labkeep.server._serve import ServeSettings, is_loopback, listen, uvicorn_config
from labkeep.store import locate_store, open_store

__all__ = ["isolated"]


def _report_nodelay(sock: socket.socket) -> None:
    """In a spawned child, as a server worker gets the listener: accept one connection with
    asyncio and answer whether asyncio left TCP_NODELAY on for it."""

    class Report(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            flag = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            transport.write(b"1" if flag else b"0")  # type: ignore[attr-defined]
            transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Report, sock=sock)
        async with server:
            await asyncio.sleep(20)

    asyncio.run(main())


def test_connections_accepted_by_a_spawned_worker_have_tcp_nodelay() -> None:
    sock = listen(uvicorn_config(ServeSettings(store=None, port=0, workers=2)))
    assert sock.proto == socket.IPPROTO_TCP
    child = multiprocessing.get_context("spawn").Process(target=_report_nodelay, args=(sock,))
    child.start()
    try:
        with socket.create_connection(sock.getsockname(), timeout=20) as conn:
            assert conn.recv(1) == b"1"
    finally:
        child.terminate()
        child.join()
        sock.close()


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_workers_take_writes_from_several_processes(tmp_path: Path, isolated: None) -> None:
    proc = ServerProcess(str(tmp_path / "store"), args=("--workers", "2")).start()
    try:
        code = (
            "import labkeep, sys\n"
            f"with labkeep.init(experiment='w', store={proc.url!r}) as run:\n"
            "    for i in range(10000):\n"
            "        run.log({'x': float(i), 'y': 1.0}, step=i)\n"
        )
        children = [
            subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=child_env())
            for _ in range(3)
        ]
        assert [c.wait(120) for c in children] == [0, 0, 0]
        statuses = set()
        with httpx.Client(base_url=proc.url) as client:
            for _ in range(40):  # new connections spread over the workers
                with httpx.Client(base_url=proc.url) as fresh:
                    statuses.add(fresh.get("/api/v1/store/experiments").status_code)
            schema = client.get("/api/v1/openapi.json").json()
        assert statuses == {200}
        assert "/api/v1/store/apply" in schema["paths"]
        assert proc.stop() == 0  # SIGTERM stops the supervisor and its workers
    finally:
        proc.kill()
    store = open_store(locate_store(str(tmp_path / "store")))
    runs = store.list_runs("w")
    assert len(runs) == 3
    records = store.get_records([r.number for r in runs])
    assert [r.metrics["x"].count for r in records] == [10000] * 3
    assert all(r.info.status.value == "completed" for r in records)


def test_a_port_in_use_is_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for workers in ("1", "2"):
            command = [*CLI, "--store", str(tmp_path / "store"), "server", "--port", str(port)]
            done = subprocess.run(
                [*command, "--workers", workers],
                env=child_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode != 0
            assert done.stderr.strip().splitlines() == [
                f"labkeep: cannot listen on 127.0.0.1:{port} (Address already in use): "
                "pick another --port or --host"
            ]


def test_ui_binds_loopback_on_the_local_store(tmp_path: Path) -> None:
    port = free_port()
    ui = subprocess.Popen(
        [*CLI, "--store", str(tmp_path / "store"), "ui", "--port", str(port)],
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert ui.stdout is not None
        assert ui.stdout.readline().strip().startswith(f"labkeep ui on http://127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert health.json()["status"] == "ok"
        listeners = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
        local_addresses = [line.split()[3] for line in listeners.splitlines()]
        assert local_addresses == [f"127.0.0.1:{port}"]
    finally:
        ui.terminate()
        ui.wait(30)
