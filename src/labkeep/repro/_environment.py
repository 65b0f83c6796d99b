"""A run's Python environment, then and now: pinned requirements, the packages of an
interpreter, and recreating the environment with uv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkeep.errors import InvalidInputError, LabkeepError

UV_HINT = "uv is not on PATH; install it with `pip install uv` (or see https://docs.astral.sh/uv/)"
_PROBE = "import json, platform, sys; print(json.dumps([platform.python_version(), sys.path]))"


def _is_local(source: Mapping[str, Any]) -> bool:
    url = str(source.get("url", ""))
    return bool(source.get("editable")) or url.startswith("file:")


def requirements_text(
    packages: Mapping[str, str],
    sources: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    python_version: str | None = None,
) -> str:
    """Pinned requirements: ``name==version``; VCS installs as ``name @ git+url@commit``;
    editable and local installs as comments (no index has them).

    >>> print(requirements_text({"numpy": "1.26.4", "mylib": "0.1"},
    ...                         {"mylib": {"url": "file:///src/mylib", "editable": True}}))
    # mylib==0.1 (editable install from file:///src/mylib)
    numpy==1.26.4
    <BLANKLINE>
    """
    sources = sources or {}
    lines: list[str] = []
    if python_version:
        lines.append(f"# python {python_version}")
    for name in sorted(packages):
        version = packages[name]
        source = sources.get(name)
        if source is not None and _is_local(source):
            kind = "editable install" if source.get("editable") else "local install"
            lines.append(f"# {name}=={version} ({kind} from {source.get('url')})")
        elif source is not None and source.get("vcs") and source.get("commit"):
            lines.append(f"{name} @ {source['vcs']}+{source['url']}@{source['commit']}")
        else:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def pinned_requirements(text: str) -> list[str]:
    """The installable lines of :func:`requirements_text` output (comments dropped)."""
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@dataclass(frozen=True, slots=True)
class Interpreter:
    """A Python interpreter as seen from outside: its version and installed distributions."""

    executable: str
    python_version: str
    packages: dict[str, str]


def probe_interpreter(
    executable: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> Interpreter:
    """Version and packages of the interpreter at ``executable`` (one short subprocess; the
    distributions are read from its ``sys.path`` here, the way the capture reads them)."""
    from labkeep.capture import list_distributions

    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    try:
        out = subprocess.run(
            [executable, "-c", _PROBE],
            capture_output=True,
            timeout=timeout,
            check=True,
            env=dict(env),
            stdin=subprocess.DEVNULL,
        ).stdout
        version, path = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise LabkeepError(f"cannot start the interpreter {executable} ({exc})") from None
    packages, _ = list_distributions([str(p) for p in path])
    return Interpreter(executable, str(version), packages)


@dataclass(slots=True)
class VenvResult:
    """What :func:`recreate_venv` did: the environment, what it installed, what it could not."""

    directory: Path
    python: str
    installed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def find_uv(uv: str | None = None) -> str:
    found = shutil.which(uv or "uv")
    if found is None:
        raise InvalidInputError(UV_HINT)
    return found


def _last_line(text: bytes) -> str:
    lines = [ln.strip() for ln in text.decode("utf-8", "replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith(("error", "\u00d7", "\u2570"))]
    return (errors or lines or ["no message"])[-1]


def recreate_venv(
    directory: Path,
    requirements: str,
    *,
    python: str,
    uv: str | None = None,
    install_args: Sequence[str] = (),
    timeout: float = 1800.0,
) -> VenvResult:
    """Create a virtual environment at ``directory`` with ``uv venv`` and install the pinned
    ``requirements`` (text of :func:`requirements_text`) with ``uv pip install``.

    All at once first; if that fails, package by package (without dependencies, which are pinned
    too), so one package no index has does not stop the rest. ``install_args`` go to
    ``uv pip install`` (``--offline``, ``--find-links DIR``, ``--index-url URL``).

    >>> recreate_venv(Path("venv7"), text, python="3.11.7")  # doctest: +SKIP
    """
    uv_path = find_uv(uv)
    directory = directory.absolute()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InvalidInputError(f"{directory} exists and is not empty; pick a new directory")
    created = subprocess.run(
        [uv_path, "venv", str(directory), "--python", python, "--quiet"],
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if created.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise LabkeepError(
            f"uv could not create a Python {python} environment: {_last_line(created.stderr)}"
        )
    result = VenvResult(directory, python)
    result.skipped = [
        ln[2:].split(" ", 1)[0]
        for ln in requirements.splitlines()
        if ln.startswith("# ") and "==" in ln
    ]
    wanted = pinned_requirements(requirements)
    if not wanted:
        return result
    target_python = str(directory / "bin" / "python")
    base = [uv_path, "pip", "install", "--python", target_python, *install_args]
    req_file = directory / "labkeep-requirements.txt"
    req_file.write_text("\n".join(wanted) + "\n")
    whole = subprocess.run(
        [*base, "-r", str(req_file)], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if whole.returncode == 0:
        result.installed = wanted
        return result
    for requirement in wanted:
        one = subprocess.run(
            [*base, "--no-deps", requirement],
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if one.returncode == 0:
            result.installed.append(requirement)
        else:
            result.failed[requirement] = _last_line(one.stderr)
    return result
