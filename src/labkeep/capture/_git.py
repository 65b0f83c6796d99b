"""Git state of a working tree: root, commit, branch, remote, dirty flag and uncommitted diff.

Three git processes at most (``status``, ``diff`` and, for the code snapshot, ``ls-files``) are
started at once and collected later, so they run while the other collectors work. The remote
URL is read from the repository's config file without a process.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Uncommitted diffs larger than this are cut; the section says so.
MAX_DIFF_BYTES = 10 * 1024 * 1024
# Changed and untracked paths listed in the section (the counts are always complete).
MAX_LISTED_PATHS = 200
DEFAULT_TIMEOUT = 10.0


def find_repo(start: Path) -> tuple[Path, Path] | None:
    """(work tree root, git dir) of the repository enclosing ``start``, or None."""
    for directory in (start, *start.parents):
        dotgit = directory / ".git"
        if dotgit.is_dir():
            return directory, dotgit
        if dotgit.is_file():
            try:
                text = dotgit.read_text(encoding="utf-8").strip()
            except OSError:
                continue
            if text.startswith("gitdir:"):
                git_dir = Path(text[len("gitdir:") :].strip())
                if not git_dir.is_absolute():
                    git_dir = directory / git_dir
                return directory, git_dir
    return None


def _common_dir(git_dir: Path) -> Path:
    """The directory holding the shared config (differs from ``git_dir`` in linked worktrees)."""
    try:
        rel = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    common = Path(rel)
    return common if common.is_absolute() else (git_dir / common)


_SECTION = re.compile(r'^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(.*)$')


def _config_value(raw: str) -> str:
    """A git config value with quotes, escapes and trailing comments resolved."""
    out: list[str] = []
    quoted = False
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(nxt, nxt))
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c in "#;" and not quoted:
            break
        else:
            out.append(c)
        i += 1
    return "".join(out).strip()


def parse_remotes(config_text: str) -> dict[str, str]:
    """``{remote name: url}`` from the text of a git config file (first url per remote)."""
    remotes: dict[str, str] = {}
    current: str | None = None
    for line in config_text.splitlines():
        match = _SECTION.match(line)
        if match:
            section, sub, rest = match.group(1).lower(), match.group(2), match.group(3)
            if sub is not None:
                current = sub.replace('\\"', '"').replace("\\\\", "\\")
                current = current if section == "remote" else None
            elif section.startswith("remote."):
                current = section[len("remote.") :]
            else:
                current = None
            line = rest
            if not line.strip():
                continue
        if current is None:
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "url" and current not in remotes:
            remotes[current] = _config_value(value)
    return remotes


def strip_credentials(url: str) -> str:
    """``url`` without user credentials: ``https://user:tok@host/x`` -> ``https://host/x``.

    ssh URLs keep their user name (``git@host``), which is an account, not a secret.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return url
    userinfo, _, host = authority.rpartition("@")
    if "ssh" in scheme.lower():
        user = userinfo.split(":", 1)[0]
        return f"{scheme}://{user}@{host}{slash}{path}"
    return f"{scheme}://{host}{slash}{path}"


def parse_status(output: bytes) -> dict[str, Any]:
    """Fields of ``git status --porcelain=v2 --branch -z`` output."""
    commit: str | None = None
    branch: str | None = None
    upstream: str | None = None
    ahead = behind = None
    changed: list[str] = []
    untracked: list[str] = []
    fields = output.split(b"\0")
    skip_next = False
    for raw in fields:
        if skip_next:  # the original path of a rename or copy
            skip_next = False
            continue
        if not raw:
            continue
        line = raw.decode("utf-8", "surrogateescape")
        if line.startswith("# "):
            key, _, value = line[2:].partition(" ")
            if key == "branch.oid":
                commit = None if value == "(initial)" else value
            elif key == "branch.head":
                branch = None if value == "(detached)" else value
            elif key == "branch.upstream":
                upstream = value
            elif key == "branch.ab":
                parts = value.split()
                if len(parts) == 2:
                    ahead, behind = int(parts[0]), -int(parts[1])
        elif line[:2] in ("1 ", "u "):
            changed.append(line.split(" ", 8 if line[0] == "1" else 10)[-1])
        elif line.startswith("2 "):
            changed.append(line.split(" ", 9)[-1])
            skip_next = True
        elif line.startswith("? "):
            untracked.append(line[2:])
    return {
        "commit": commit,
        "branch": branch,
        "upstream": upstream,
        "ahead": ahead,
        "behind": behind,
        "changed": changed,
        "untracked": untracked,
    }


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # Read-only: never take index.lock (a concurrent `git commit` of the user must not fail),
    # never prompt, and keep messages in English for parsing.
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C", LANGUAGE="C")
    return env


@dataclass(slots=True)
class GitProbe:
    """Git processes started for one work tree; collect them with :func:`finish_git` and
    :func:`finish_ls_files`."""

    root: Path
    git_dir: Path
    started: float
    status: subprocess.Popen[bytes] | None = None
    diff: subprocess.Popen[bytes] | None = None
    ls_files: subprocess.Popen[bytes] | None = None
    error: str | None = None
    _results: dict[str, tuple[int, bytes, bytes] | str] = field(default_factory=dict)

    def collect(self, name: str, timeout: float) -> tuple[int, bytes, bytes] | str:
        """(returncode, stdout, stderr) of one started process, or why there is none."""
        if name in self._results:
            return self._results[name]
        proc: subprocess.Popen[bytes] | None = getattr(self, name)
        result: tuple[int, bytes, bytes] | str
        if proc is None:
            result = self.error or f"git {name} was not started"
        else:
            remaining = max(0.1, timeout - (time.monotonic() - self.started))
            try:
                out, err = proc.communicate(timeout=remaining)
                result = (proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                result = f"git {name.replace('_', '-')} took longer than {timeout:g} s"
        self._results[name] = result
        return result

    def close(self) -> None:
        """Kill and reap any process not collected yet."""
        for name in ("status", "diff", "ls_files"):
            proc: subprocess.Popen[bytes] | None = getattr(self, name)
            if proc is not None and name not in self._results:
                proc.kill()
                proc.communicate()
                self._results[name] = f"git {name} was abandoned"


def start_git(cwd: Path, *, list_files: bool = False, git: str = "git") -> GitProbe | None:
    """Start the git processes for the repository enclosing ``cwd``; None if there is none."""
    found = find_repo(cwd.resolve())
    if found is None:
        return None
    root, git_dir = found
    probe = GitProbe(root=root, git_dir=git_dir, started=time.monotonic())
    env = _git_env()
    base = [git, "-c", "core.quotepath=off", "--no-optional-locks"]
    commands: dict[str, list[str]] = {
        "status": [*base, "status", "--porcelain=v2", "--branch", "-z"],
        "diff": [*base, "diff", "HEAD", "--no-color", "--no-ext-diff", "--no-textconv"],
    }
    if list_files:
        # -t tags each path: "H" tracked, "?" untracked (other tags are tracked states too).
        commands["ls_files"] = [*base, "ls-files", "-t", "-co", "--exclude-standard", "-z"]
    for name, argv in commands.items():
        try:
            proc = subprocess.Popen(
                argv,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            probe.error = "git is not installed or not on PATH; install git to record git state"
            break
        except OSError as exc:
            probe.error = f"cannot run git: {exc}"
            break
        setattr(probe, name, proc)
    return probe


def _first_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no message"


def finish_git(probe: GitProbe | None, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The ``git`` section from a started probe (``{"repo": False}`` outside a repository)."""
    if probe is None:
        return {"repo": False}
    section: dict[str, Any] = {"repo": True, "root": str(probe.root)}
    remotes = _read_remotes(probe.git_dir)
    if remotes:
        name = "origin" if "origin" in remotes else sorted(remotes)[0]
        section["remote"] = name
        section["remote_url"] = strip_credentials(remotes[name])
    status = probe.collect("status", timeout)
    if isinstance(status, str):
        section["error"] = status
        return section
    code, out, err = status
    if code != 0:
        section["error"] = f"git status failed: {_first_line(err)}"
        return section
    parsed = parse_status(out)
    changed: list[str] = parsed.pop("changed")
    untracked: list[str] = parsed.pop("untracked")
    section.update(parsed)
    # Untracked files the script may import or read make the tree differ from the commit too.
    section["dirty"] = bool(changed or untracked)
    section["state"] = git_state(len(changed), len(untracked))
    section["changed"] = changed[:MAX_LISTED_PATHS]
    section["changed_count"] = len(changed)
    section["untracked"] = untracked[:MAX_LISTED_PATHS]
    section["untracked_count"] = len(untracked)
    section["diff"] = None
    section["diff_truncated"] = False
    diff = probe.collect("diff", timeout)
    if parsed["commit"] is None:
        pass  # no commit yet: there is nothing to diff against, the code snapshot has it all
    elif isinstance(diff, str):
        section["diff_error"] = diff
    elif diff[0] != 0:
        section["diff_error"] = f"git diff failed: {_first_line(diff[2])}"
    else:
        data = diff[1]
        if len(data) > MAX_DIFF_BYTES:
            data = data[:MAX_DIFF_BYTES]
            section["diff_truncated"] = True
        section["diff"] = (
            data.decode("utf-8", "surrogateescape")
            .encode("utf-8", "backslashreplace")
            .decode("utf-8")
        )
    return section


def git_state(changed: int, untracked: int) -> str:
    """``clean``, or ``dirty:`` and why, for the snapshot and the terminal.

    >>> git_state(0, 3)
    'dirty: untracked files'
    """
    reasons = [
        what for what, n in (("uncommitted changes", changed), ("untracked files", untracked)) if n
    ]
    return "dirty: " + " and ".join(reasons) if reasons else "clean"


def parse_ls_files(output: bytes) -> dict[str, bool]:
    """``{path: tracked}`` from ``git ls-files -t -co -z`` output, in git's order."""
    seen: dict[str, bool] = {}
    for raw in output.split(b"\0"):
        tag, space, path = raw.partition(b" ")
        if not (space and path):
            continue
        name = path.decode("utf-8", "surrogateescape")
        seen[name] = seen.get(name, False) or tag != b"?"
    return seen


def finish_ls_files(probe: GitProbe, timeout: float = DEFAULT_TIMEOUT) -> dict[str, bool] | str:
    """``{path: tracked}`` for the paths (relative to the root) git does not ignore, or why
    they are unknown."""
    result = probe.collect("ls_files", timeout)
    if isinstance(result, str):
        return result
    code, out, err = result
    if code != 0:
        return f"git ls-files failed: {_first_line(err)}"
    return parse_ls_files(out)


def _read_remotes(git_dir: Path) -> dict[str, str]:
    try:
        text = (_common_dir(git_dir) / "config").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return parse_remotes(text)


def collect_git(cwd: Path, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The ``git`` section for ``cwd`` on its own (two git processes, run concurrently).

    >>> collect_git(Path("."))["commit"]  # doctest: +SKIP
    '3f2a...'
    """
    probe = start_git(cwd)
    try:
        return finish_git(probe, timeout)
    finally:
        if probe is not None:
            probe.close()
