"""One call that captures everything that reproduces a run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from labkeep.capture._code import (
    DEFAULT_GIT_MAX_FILE_SIZE,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MAX_FILES,
    CodeFile,
    collect_code,
)
from labkeep.capture._environment import collect_environment, probe_gpus
from labkeep.capture._git import DEFAULT_TIMEOUT, GitProbe, finish_git, finish_ls_files, start_git
from labkeep.capture._hashcache import HashCache
from labkeep.capture._host import collect_host
from labkeep.capture._inputs import fingerprint_input

T = TypeVar("T")


def _error(exc: BaseException) -> dict[str, Any]:
    message = str(exc).strip().splitlines()
    return {"error": f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__}


def _guarded(fn: Callable[[], T], fallback: Callable[[dict[str, Any]], T]) -> T:
    """``fn()``, or ``fallback({"error": why})`` if it raises: no collector is fatal."""
    try:
        return fn()
    except Exception as exc:
        return fallback(_error(exc))


@dataclass(slots=True)
class Snapshot:
    """What reproduces a run, as JSON-ready sections, plus the code files to store by hash.

    A section that could not be collected is ``{"error": "why"}``.
    """

    code: dict[str, Any]
    git: dict[str, Any]
    environment: dict[str, Any]
    host: dict[str, Any]
    inputs: list[dict[str, Any]]
    code_files: list[CodeFile] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The sections as one JSON-serialisable dict (``code_files`` are in ``code.files``)."""
        return {
            "code": self.code,
            "git": self.git,
            "environment": self.environment,
            "host": self.host,
            "inputs": self.inputs,
            "timings_ms": self.timings_ms,
        }


class _GpuProbe:
    """NVML start-up can take tens of milliseconds: probe on a thread while the rest runs."""

    def __init__(self, nvml: ModuleType | None) -> None:
        self.result: dict[str, Any] | None = None
        self._nvml = nvml
        self._thread = threading.Thread(target=self._run, name="labkeep-gpu-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = probe_gpus(self._nvml)
        except Exception as exc:
            self.result = _error(exc)

    def join(self, timeout: float) -> dict[str, Any] | None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            return {"error": f"NVML did not answer within {timeout:g} s"}
        return self.result


def capture_snapshot(
    cwd: Path,
    argv: Sequence[str],
    entry_point: str | None,
    *,
    code: bool = True,
    inputs: Iterable[str | os.PathLike[str]] = (),
    extra_env_allow: Iterable[str] = (),
    cache_dir: Path | None = None,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    max_files: int = DEFAULT_MAX_FILES,
    git_max_file_size: int = DEFAULT_GIT_MAX_FILE_SIZE,
    git_timeout: float = DEFAULT_TIMEOUT,
    gpu: bool = True,
    nvml: ModuleType | None = None,
) -> Snapshot:
    """Capture code, git state, environment, host and input fingerprints for a run in ``cwd``.

    Never raises for what it finds: a failing collector leaves ``{"error": why}`` in its section.
    File hashes are cached in ``cache_dir`` (pass the store's cache directory) so an unchanged
    tree costs only ``stat`` calls. Git processes, the GPU probe and Python-side collectors run
    concurrently.

    >>> snap = capture_snapshot(Path.cwd(), sys.argv, "train.py", cache_dir=Path(".labkeep/cache"))
    >>> for f in snap.code_files:  # doctest: +SKIP
    ...     store.put_blob(Path(f.abspath))
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    cwd = Path(cwd).absolute()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round((now - since) * 1000, 2)
        return now

    probe: GitProbe | None = _guarded(lambda: start_git(cwd, list_files=code), lambda _e: None)
    gpu_probe = _GpuProbe(nvml) if gpu else None
    cache = HashCache(cache_dir)
    try:
        t = lap("start", t0)
        environment = _guarded(lambda: collect_environment(gpu=False), lambda e: e)
        t = lap("environment", t)
        host = _guarded(lambda: collect_host(argv, cwd, entry_point, extra_env_allow), lambda e: e)
        t = lap("host", t)
        input_sections: list[dict[str, Any]] = []
        for item in inputs:
            try:
                input_sections.append(fingerprint_input(item, cache=cache))
            except Exception as exc:
                input_sections.append({"path": os.fspath(item), **_error(exc)})
        t = lap("inputs", t)
        git = _guarded(lambda: finish_git(probe, git_timeout), lambda e: e)
        t = lap("git", t)
        code_section: dict[str, Any] = {}
        code_files: list[CodeFile] = []
        if code:
            code_section, code_files = _guarded(
                lambda: _collect_code(
                    cwd,
                    probe,
                    cache,
                    git_timeout,
                    max_file_size,
                    max_files,
                    git_max_file_size,
                    entry_point,
                ),
                lambda e: (e, []),
            )
            t = lap("code", t)
        if gpu_probe is not None and "error" not in environment:
            gpus = gpu_probe.join(timeout=5.0)
            if gpus is not None:
                environment["gpu"] = gpus
            t = lap("gpu", t)
    finally:
        if probe is not None:
            probe.close()
        cache.save()
    timings["total"] = round((time.perf_counter() - t0) * 1000, 2)
    return Snapshot(
        code=code_section,
        git=git,
        environment=environment,
        host=host,
        inputs=input_sections,
        code_files=code_files,
        timings_ms=timings,
    )


def _collect_code(
    cwd: Path,
    probe: GitProbe | None,
    cache: HashCache,
    timeout: float,
    max_file_size: int,
    max_files: int,
    git_max_file_size: int,
    entry_point: str | None,
) -> tuple[dict[str, Any], list[CodeFile]]:
    """Git mode when git lists the files, else a scan of the repository root (or ``cwd``)."""
    fallback_reason: str | None = None
    root = probe.root if probe is not None else cwd
    keep = _entry_in_root(root, cwd, entry_point)
    if probe is not None:
        listed = finish_ls_files(probe, timeout)
        if not isinstance(listed, str):
            return collect_code(
                probe.root,
                git_files=listed,
                cache=cache,
                max_file_size=max_file_size,
                git_max_file_size=git_max_file_size,
                keep=keep,
            )
        fallback_reason = listed
    section, files = collect_code(
        root,
        cache=cache,
        max_file_size=max_file_size,
        max_files=max_files,
        git_max_file_size=git_max_file_size,
        keep=keep,
    )
    if fallback_reason is not None:
        section["git_error"] = fallback_reason
    return section, files


def _entry_in_root(root: Path, cwd: Path, entry_point: str | None) -> list[str]:
    """The entry point as a path relative to ``root``, if it is a file inside it."""
    if not entry_point or entry_point in ("-c", "-m", "-"):
        return []
    path = (cwd / entry_point).resolve()
    try:
        rel = path.relative_to(root.resolve())
    except ValueError:
        return []
    return [rel.as_posix()] if path.is_file() else []
