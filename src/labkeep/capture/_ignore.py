"""A small matcher for gitignore-syntax files such as ``.labkeepignore``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILE = ".labkeepignore"


@dataclass(frozen=True, slots=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _translate_class(pattern: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at ``pattern[i] == '['``; return (regex, next i)."""
    j = i + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 1
    if j >= len(pattern):
        return re.escape("["), i + 1
    body = pattern[i + 1 : j]
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    body = body.replace("\\", "\\\\").replace("[", "\\[")
    return ("[^/" if negate else "[") + body + "]", j + 1


def _translate(body: str) -> str:
    """Regex for one gitignore pattern body (no '!', no trailing '/', no leading '/')."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "*":
            if body.startswith("**", i):
                at_start = i == 0
                after = body[i + 2 : i + 3]
                before_slash = i > 0 and body[i - 1] == "/"
                if (at_start or before_slash) and after == "/":
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                if before_slash and i + 2 == n:
                    out.append(".*")
                    i += 2
                    continue
                if at_start and n == 2:
                    out.append(".*")
                    i += 2
                    continue
                while i < n and body[i] == "*":
                    i += 1
                out.append("[^/]*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            cls, i = _translate_class(body, i)
            out.append(cls)
            continue
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(body[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class IgnoreRules:
    """Rules in gitignore syntax, matched against paths relative to the rules' directory.

    The last matching rule wins; ``!pattern`` re-includes; ``dir/`` matches directories only;
    a pattern with a slash is anchored to the root, one without matches at any depth.

    >>> rules = IgnoreRules.parse("data/\\n*.ckpt\\n!keep.ckpt")
    >>> rules.is_ignored("data/x.csv"), rules.is_ignored("a/b.ckpt"), rules.is_ignored("keep.ckpt")
    (True, True, False)
    """

    def __init__(self, rules: list[_Rule]) -> None:
        self._rules = rules
        self._dir_cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    @classmethod
    def parse(cls, text: str) -> IgnoreRules:
        rules: list[_Rule] = []
        for raw in text.splitlines():
            line = raw.rstrip("\r")
            # Trailing spaces are dropped unless escaped with a backslash.
            stripped = line.rstrip(" ")
            if stripped.endswith("\\") and len(stripped) < len(line):
                stripped += " "
            line = stripped
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate or line.startswith(("\\!", "\\#")):
                line = line[1:]
            dir_only = line.endswith("/") and not line.endswith("\\/")
            if dir_only:
                line = line.rstrip("/")
            if not line:
                continue
            anchored = "/" in line
            line = line.lstrip("/")
            regex = _translate(line)
            if not anchored:
                regex = "(?:.*/)?" + regex
            rules.append(_Rule(re.compile(regex + r"\Z", re.DOTALL), negate, dir_only))
        return cls(rules)

    @classmethod
    def load(cls, root: Path, name: str = IGNORE_FILE) -> IgnoreRules:
        """Rules from ``root/.labkeepignore`` (or another file of that syntax, such as
        ``.gitignore``); none when the file is absent or unreadable."""
        try:
            return cls.parse((root / name).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return cls([])

    def match(self, relpath: str, is_dir: bool = False) -> bool | None:
        """True if the last matching rule ignores ``relpath``, False if it re-includes it,
        None if no rule matches. Parent directories are not consulted."""
        result: bool | None = None
        for rule in self._rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.match(relpath):
                result = not rule.negate
        return result

    def is_ignored(self, relpath: str, is_dir: bool = False) -> bool:
        """Whether ``relpath`` (posix, relative) is ignored, itself or through a parent directory."""
        if not self._rules:
            return False
        parts = relpath.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            cached = self._dir_cache.get(parent)
            if cached is None:
                cached = self.match(parent, is_dir=True) is True
                self._dir_cache[parent] = cached
            if cached:
                return True
        return self.match(relpath, is_dir) is True
