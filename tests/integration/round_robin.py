"""A round-robin HTTP load balancer for tests: each request (not each connection) goes to
the next of several upstream servers, so a client behind it alternates between them on
every call, keep-alive or not."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter

import httpx

from conftest import free_port


class RoundRobin:
    """``with RoundRobin([url_a, url_b]) as lb: lb.url``; ``lb.served`` counts the requests
    each upstream answered."""

    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = upstreams
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.served: Counter[str] = Counter()
        self._next = itertools.cycle(upstreams)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def __enter__(self) -> RoundRobin:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(timeout=300)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._client.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
                fields = {k.strip().lower(): v.strip() for k, v in headers}
                body = await reader.readexactly(int(fields.get("content-length", "0")))
                upstream = next(self._next)
                self.served[upstream] += 1
                forwarded = {
                    k.strip(): v.strip()
                    for k, v in headers
                    if k.strip().lower() not in ("host", "content-length", "connection")
                }
                response = await self._client.request(
                    method, upstream + target, headers=forwarded, content=body
                )
                out = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
                for k, v in response.headers.items():
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        out.append(f"{k}: {v}")
                out.append(f"content-length: {len(response.content)}")
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + response.content)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
