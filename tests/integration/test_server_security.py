"""Tokens, read-only access, host and origin checks, and blob paths that never escape."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from labkeep_server import ServerProcess, cli, isolated
from starlette.routing import Mount

from labkeep.server import create_app

__all__ = ["isolated"]

RW = secrets.token_hex(16)
RO = secrets.token_hex(16)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("guarded")
    tokens = root / "tokens"
    tokens.write_text(f"# who may do what\n{RW} rw alice\n{RO} ro dashboards\n")
    proc = ServerProcess(str(root / "store"), args=("--token-file", str(tokens))).start()
    yield proc
    proc.kill()


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route, into included routers and mounts (FastAPI keeps
    included routers as one node in recent versions, as copied routes in older ones)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _walk(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)
        elif getattr(route, "methods", None):
            yield prefix + route.path, set(route.methods)


def _mutating_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the app that changes something, path parameters filled in:
    the routes walked, and the OpenAPI schema's paths."""
    app = create_app("/nonexistent-store-never-opened")
    found: set[tuple[str, str]] = set()
    for path, methods in _walk(app.routes):
        found |= {(m, path) for m in methods & MUTATING}
    for path, operations in app.openapi()["paths"].items():
        found |= {(m.upper(), path) for m in operations if m.upper() in MUTATING}
    return sorted((m, re.sub(r"\{[^}]+\}", "1", path)) for m, path in found)


def test_there_are_mutating_routes_to_check() -> None:
    paths = {path for _, path in _mutating_routes()}
    assert {"/api/v1/store/apply", "/api/v1/store/blobs/1", "/api/v1/store/purge"} <= paths


@pytest.mark.parametrize(("method", "path"), _mutating_routes())
def test_a_read_only_token_is_refused_on_every_mutating_route(
    guarded: ServerProcess, method: str, path: str
) -> None:
    for token, status in ((RO, 403), ("", 401), ("not-a-token-at-all", 401)):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        response = httpx.request(method, guarded.url + path, headers=headers, content=b"{}")
        assert response.status_code == status, (method, path, token, response.text)
        assert set(response.json()) == {"error"}


def test_tokens_on_reads_and_writes(guarded: ServerProcess) -> None:
    url = guarded.url + "/api/v1/store/experiments"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": f"Bearer {RO}"}).json() == []
    assert httpx.get(url, cookies={"labkeep_token": RO}).status_code == 200
    written = httpx.post(
        guarded.url + "/api/v1/store/deleted",
        json={"numbers": [], "deleted": True},
        headers={"authorization": f"Bearer {RW}"},
    )
    assert written.status_code == 200, written.text


def test_rest_store_sends_labkeep_token(
    guarded: ServerProcess, monkeypatch: pytest.MonkeyPatch, isolated: None
) -> None:
    from labkeep.errors import StoreError
    from labkeep.store import locate_store, open_store

    store = open_store(locate_store(guarded.url))
    with pytest.raises(StoreError, match="LABKEEP_TOKEN"):
        store.list_experiments()
    monkeypatch.setenv("LABKEEP_TOKEN", RO)
    store = open_store(locate_store(guarded.url))
    assert store.list_experiments() == []
    with pytest.raises(StoreError, match="read-only"):
        store.set_deleted([1], True)


def test_read_only_server_refuses_writes(tmp_path: Path) -> None:
    proc = ServerProcess(str(tmp_path / "store"), args=("--read-only",)).start()
    try:
        response = httpx.post(proc.url + "/api/v1/store/purge", json={"numbers": [1]})
        assert response.status_code == 403
        assert response.json() == {"error": "this server is read-only"}
        assert httpx.get(proc.url + "/api/v1/store/running").status_code == 200
    finally:
        proc.kill()


def test_non_loopback_host_needs_tokens_or_insecure(tmp_path: Path) -> None:
    done = cli("server", "--store", str(tmp_path / "s"), "--host", "0.0.0.0", "--port", "0")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--token-file" in lines[0] and "--insecure" in lines[0]


def test_bad_token_file_is_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("short\n")
    done = cli("server", "--store", str(tmp_path / "s"), "--token-file", str(tokens))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"labkeep: {tokens}:1: tokens must be at least 16 characters"
    ]


def test_loopback_server_refuses_foreign_host_and_cross_origin_writes(tmp_path: Path) -> None:
    proc = ServerProcess(str(tmp_path / "store")).start()
    try:
        rebound = httpx.get(proc.url + "/api/v1/health", headers={"host": "evil.example:5000"})
        assert rebound.status_code == 403
        body = {"numbers": [], "deleted": True}
        url = proc.url + "/api/v1/store/deleted"
        foreign = httpx.post(url, json=body, headers={"origin": "http://evil.example"})
        assert foreign.status_code == 403
        same = httpx.post(url, json=body, headers={"origin": proc.url})
        assert same.status_code == 200
    finally:
        proc.kill()


TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2Fetc%2Fpasswd",
    "..%5C..%5Cetc%5Cpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "....//....//etc/passwd",
    "0" * 62 + "..",
    "ab/../../../../etc/passwd",
]


@pytest.mark.parametrize("attempt", TRAVERSALS)
def test_blob_paths_never_escape(guarded: ServerProcess, attempt: str) -> None:
    headers = {"authorization": f"Bearer {RW}"}
    secret = Path("/etc/passwd").read_bytes()
    with httpx.Client(base_url=guarded.url, headers=headers) as client:
        for method in ("GET", "HEAD"):
            response = client.request(method, f"/api/v1/store/blobs/{attempt}")
            assert response.status_code in (400, 404), (attempt, response.status_code)
            assert secret not in response.content
        put = client.put(f"/api/v1/store/blobs/{attempt}", content=b"x")
        assert put.status_code in (400, 404, 405), (attempt, put.status_code)
        # Artifact routes, where the read API has them, are confined the same way.
        for route in ("/api/v1/runs/1/artifacts/", "/api/v1/runs/1/code/"):
            response = client.get(route + attempt)
            assert response.status_code in (400, 403, 404, 405), (route, attempt)
            assert secret not in response.content


def test_errors_are_one_line_json(guarded: ServerProcess) -> None:
    headers = {"authorization": f"Bearer {RW}"}
    missing = httpx.get(guarded.url + "/api/v1/store/resolve?ref=nope", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["type"] == "NotFoundError"
    assert "\n" not in missing.json()["error"]
    bad = httpx.post(
        guarded.url + "/api/v1/store/apply",
        headers={**headers, "content-type": "text/plain"},
        content=b"hello",
    )
    assert bad.status_code == 400 and "write batch" in bad.json()["error"]
    wrong = httpx.put(
        guarded.url + "/api/v1/store/blobs/" + "a" * 64, headers=headers, content=b"x"
    )
    assert wrong.status_code == 400 and "upload the file again" in wrong.json()["error"]
