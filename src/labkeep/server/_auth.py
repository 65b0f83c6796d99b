"""Bearer tokens. A token file has one token per line: ``TOKEN [rw|ro] [name]`` (``rw`` when
omitted); ``#`` starts a comment. Without tokens the server is open (loopback only, unless
``--insecure``).

Two layers check every request: the route dependencies (``require_read`` on reads,
``require_write`` on writes) and :class:`RequestGuard`, an ASGI middleware that refuses any
mutating method (whatever route it reaches) without a writable token, on a read-only server,
from another web origin, or addressed to a host name the server does not answer to (DNS
rebinding against a server on 127.0.0.1).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from labkeep.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class Token:
    secret: str
    writable: bool
    name: str


class TokenSet:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens

    @classmethod
    def from_file(cls, path: Path) -> TokenSet:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise InvalidInputError(f"cannot read token file {path}: {exc.strerror}") from None
        tokens = []
        for number, line in enumerate(lines, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            mode = fields[1] if len(fields) > 1 else "rw"
            if mode not in ("rw", "ro"):
                raise InvalidInputError(f"{path}:{number}: mode must be rw or ro, not {mode!r}")
            if len(fields[0]) < 16:
                raise InvalidInputError(f"{path}:{number}: tokens must be at least 16 characters")
            tokens.append(
                Token(fields[0], mode == "rw", fields[2] if len(fields) > 2 else f"token{number}")
            )
        if not tokens:
            raise InvalidInputError(f"token file {path} holds no tokens")
        return cls(tokens)

    def find(self, secret: str) -> Token | None:
        for token in self.tokens:
            if hmac.compare_digest(token.secret.encode(), secret.encode()):
                return token
        return None


COOKIE = "labkeep_token"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_UNAUTHORIZED = "a valid bearer token is required: send Authorization: Bearer TOKEN"


def _secret(authorization: str, cookies: dict[str, str]) -> str:
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        secret = cookies.get(COOKIE, "")
    return secret.strip()


def _token_of(request: Request) -> Token | None:
    tokens: TokenSet | None = request.app.state.tokens
    if tokens is None:
        return None
    secret = _secret(request.headers.get("authorization", ""), dict(request.cookies))
    token = tokens.find(secret) if secret else None
    if token is None:
        raise HTTPException(401, _UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
    return token


def require_read(request: Request) -> None:
    """FastAPI dependency for every read."""
    _token_of(request)


def require_write(request: Request) -> None:
    """FastAPI dependency for every mutating request."""
    token = _token_of(request)
    if token is not None and not token.writable:
        raise HTTPException(403, "this token is read-only")
    if request.app.state.read_only:
        raise HTTPException(403, "this server is read-only")


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestGuard:
    """ASGI middleware: the checks that hold for every route, before routing.

    ``allowed_hosts`` (host names without port) limits the ``Host`` header; None allows any.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            return 403, f"this server does not answer to host {host!r}: use 127.0.0.1"
        if scope["method"] not in MUTATING:
            return None
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return 403, "cross-origin writes are refused: use the labkeep UI or API client"
        state = scope["app"].state
        tokens: TokenSet | None = state.tokens
        if tokens is not None:
            cookies = {}
            if "cookie" in headers:
                jar: SimpleCookie = SimpleCookie()
                jar.load(headers["cookie"])
                cookies = {key: morsel.value for key, morsel in jar.items()}
            secret = _secret(headers.get("authorization", ""), cookies)
            token = tokens.find(secret) if secret else None
            if token is None:
                return 401, _UNAUTHORIZED
            if not token.writable:
                return 403, "this token is read-only"
        if state.read_only:
            return 403, "this server is read-only"
        return None


def _hostname(host: str) -> str:
    """``host[:port]`` or ``[v6]:port`` → the lowercase host name."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
