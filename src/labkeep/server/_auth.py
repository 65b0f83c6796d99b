"""Bearer tokens. A token file has one token per line: ``TOKEN [rw|ro] [name]`` (``rw`` when
omitted); ``#`` starts a comment. Without tokens the server is open (loopback only, unless
``--insecure``)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

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


def _token_of(request: Request) -> Token | None:
    tokens: TokenSet | None = request.app.state.tokens
    if tokens is None:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        secret = request.cookies.get("labkeep_token", "")
    token = tokens.find(secret.strip()) if secret else None
    if token is None:
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
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
