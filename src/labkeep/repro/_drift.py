"""What changed between a run's start and now: interpreter, packages, git, inputs, env vars.

The comparisons are pure functions of two states; :func:`collect_drift` gathers the state of
now (probing the interpreter that will run, re-fingerprinting inputs, asking git).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Severity = Literal["note", "warn", "block"]


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One difference between then and now. ``block`` items stop a rerun (changed inputs)."""

    kind: str  # python, interpreter, package, git, input, env
    name: str
    then: str | None
    now: str | None
    severity: Severity = "warn"
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "then": self.then,
            "now": self.now,
            "severity": self.severity,
            "why": self.why,
        }


def package_drift(then: Mapping[str, str], now: Mapping[str, str]) -> list[DriftItem]:
    """Packages added, removed or at another version, sorted by name.

    >>> [(d.name, d.then, d.now) for d in package_drift({"a": "1", "b": "2"}, {"b": "3", "c": "1"})]
    [('a', '1', None), ('b', '2', '3'), ('c', None, '1')]
    """
    items: list[DriftItem] = []
    for name in sorted(set(then) | set(now)):
        a, b = then.get(name), now.get(name)
        if a == b:
            continue
        why = "removed" if b is None else "added" if a is None else "changed"
        items.append(DriftItem("package", name, a, b, "warn", why))
    return items


def python_drift(then: str | None, now: str) -> list[DriftItem]:
    if then is None or then == now:
        return []
    return [DriftItem("python", "python", then, now, "warn", "another Python version")]


def interpreter_drift(recorded: str | None, chosen: str) -> list[DriftItem]:
    if recorded is None or recorded == chosen:
        return []
    return [
        DriftItem(
            "interpreter",
            "executable",
            recorded,
            chosen,
            "warn",
            "the original interpreter no longer exists; using this one",
        )
    ]


def git_drift(then: Mapping[str, Any], now: Mapping[str, Any] | None) -> list[DriftItem]:
    """The original repository now against then: commit moved, work tree dirty or gone.

    The rerun runs the snapshot's files either way; this tells the user how far the
    repository has moved since."""
    if not then.get("repo"):
        return []
    root = str(then.get("root", ""))
    if now is None or not now.get("repo"):
        return [DriftItem("git", root, "repository", None, "note", "the repository is gone")]
    items: list[DriftItem] = []
    a, b = then.get("commit"), now.get("commit")
    if a != b:
        items.append(DriftItem("git", "commit", _short(a), _short(b), "note", "HEAD moved"))
    if then.get("branch") != now.get("branch"):
        items.append(DriftItem("git", "branch", then.get("branch"), now.get("branch"), "note", ""))
    dirty_then, dirty_now = bool(then.get("dirty")), bool(now.get("dirty"))
    if dirty_then or dirty_now:
        changed = [*(now.get("changed") or []), *(now.get("untracked") or [])]
        items.append(
            DriftItem(
                "git",
                "dirty",
                "dirty" if dirty_then else "clean",
                "dirty" if dirty_now else "clean",
                "note",
                (
                    "uncommitted changes then (kept in the snapshot)"
                    if dirty_then and not dirty_now
                    else f"{_dirty_why(now)} now: {', '.join(changed[:5])}"
                    if dirty_now
                    else ""
                ),
            )
        )
    return items


def _dirty_why(git: Mapping[str, Any]) -> str:
    """``uncommitted changes``, ``untracked files`` or both, from the section's state."""
    state = str(git.get("state") or "")
    return state.partition(": ")[2] or "uncommitted changes"


def _short(commit: Any) -> str | None:
    return str(commit)[:12] if commit else None


def input_drift(
    recorded: Sequence[Mapping[str, Any]], current: Mapping[str, Mapping[str, Any] | str]
) -> list[DriftItem]:
    """Inputs missing or changed since the run: ``current`` maps each recorded path to its
    fingerprint now, or to why it cannot be read. Both block a rerun."""
    items: list[DriftItem] = []
    for rec in recorded:
        path = str(rec.get("path", ""))
        then = rec.get("sha256")
        if then is None:
            continue  # not fingerprinted at the time (it was missing then): nothing to compare
        now = current.get(path)
        if now is None or isinstance(now, str):
            items.append(DriftItem("input", path, _short(then), None, "block", now or "missing"))
        elif now.get("sha256") != then:
            items.append(
                DriftItem(
                    "input",
                    path,
                    _short(then),
                    _short(now.get("sha256")),
                    "block",
                    f"content changed ({rec.get('size')} -> {now.get('size')} bytes)",
                )
            )
    return items


def env_drift(then: Mapping[str, str], now: Mapping[str, str]) -> list[DriftItem]:
    """Recorded environment variables whose value differs now (the rerun restores them)."""
    items: list[DriftItem] = []
    for name in sorted(then):
        if name.startswith("LABKEEP_") or now.get(name) == then[name]:
            continue
        items.append(
            DriftItem("env", name, then[name], now.get(name), "note", "restored for the rerun")
        )
    return items


def fingerprint_now(
    recorded: Sequence[Mapping[str, Any]], cache_dir: Path | None
) -> dict[str, dict[str, Any] | str]:
    """Each recorded input's fingerprint now, or why it cannot be taken."""
    from labkeep.capture import fingerprint_input
    from labkeep.errors import LabkeepError

    result: dict[str, dict[str, Any] | str] = {}
    for rec in recorded:
        path = str(rec.get("path", ""))
        if not path or rec.get("sha256") is None:
            continue
        try:
            result[path] = fingerprint_input(path, cache_dir)
        except LabkeepError as exc:
            result[path] = "missing" if not Path(path).exists() else str(exc)
    return result
