"""Flag detection for scripts and notebooks, cached by content hash. Nothing of a script runs.

A script that imports argparse or click has its parser read from the source where it is built
from literals (``_static_flags.py``); where it is not, the flags are left to the script's next
real run, which reports its parser as it parses (``_bootstrap.py``, ``_intercept.py``) and
stores them here with :func:`store_run_flags`: one run, never a second execution for detection.
Any other script gets its module-level literal globals, read with :mod:`ast`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from labkeep._version import __version__
from labkeep.errors import InvalidInputError
from labkeep.runner._config_file import config_flags, is_config_path
from labkeep.runner._flag import Flag, FlagSet, Interface
from labkeep.runner._script_globals import global_flags

#: Seconds a run whose flags are read from its live parser may take to reach that parser
#: before labkeep says so (``labkeep run --detect-timeout``, ``LABKEEP_DETECT_TIMEOUT``).
DETECT_TIMEOUT = 10.0
DETECT_TIMEOUT_ENV = "LABKEEP_DETECT_TIMEOUT"

_CACHE_FORMAT = 3


def detect_flags(
    path: Path,
    cache_dir: Path | None = None,
    *,
    config: Path | None = None,
    python: str | None = None,
) -> FlagSet:
    """Detect the flags of the script or notebook at ``path``.

    ``config`` is a YAML/JSON file the run will pass as ``--config`` (by default, the file named
    by the script's own ``--config`` default, if it exists); its keys become ``config`` flags.
    ``python`` is the interpreter that will run the script (part of the cache key). With
    ``cache_dir``, the result is stored under a hash of the script's bytes, the config's bytes
    and the labkeep version, and a later call with the same inputs reads it back. A script whose
    parser is built at run time gets a :class:`FlagSet` with ``deferred`` set, never cached:
    its run reports the parser, and :func:`store_run_flags` caches that.

    >>> flags = detect_flags(Path("train.py"), Path(".labkeep/cache/flags"))  # doctest: +SKIP
    >>> flags.defaults()  # doctest: +SKIP
    {'lr': 0.01, 'epochs': 10}
    """
    path = Path(path)
    data = _read(path)
    python = python or sys.executable
    config_bytes = _read(config) if config is not None else b""
    key = _cache_key(data, config, config_bytes, python)
    if cache_dir is not None:
        cached = _read_cache(cache_dir, key)
        if cached is not None:
            return cached.with_source(path)
    if path.suffix.lower() == ".ipynb":
        from labkeep.runner._notebook_flags import detect_notebook_flags

        found = detect_notebook_flags(path, data)
    else:
        found = _detect_script(path, data)
    found = _add_config_flags(found, config)
    if cache_dir is not None and not found.warnings and found.deferred is None:
        _write_cache(cache_dir, key, found)
    return found


def store_run_flags(
    path: Path,
    cache_dir: Path | None,
    interface: Interface,
    records: list[dict[str, object]],
    *,
    config: Path | None = None,
    python: str | None = None,
) -> FlagSet:
    """The flags a run read from the script's live parser, cached as :func:`detect_flags`
    would have cached them, so later runs know them before they start."""
    found = FlagSet(
        source=path, interface=interface, flags=tuple(Flag.from_dict(r) for r in records)
    )
    found = _add_config_flags(found, config)
    if cache_dir is not None:
        config_bytes = _read(config) if config is not None else b""
        key = _cache_key(_read(path), config, config_bytes, python or sys.executable)
        _write_cache(cache_dir, key, found)
    return found


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}; check the path") from None


def _cache_key(data: bytes, config: Path | None, config_bytes: bytes, python: str) -> str:
    digest = hashlib.sha256()
    for part in (
        f"labkeep {__version__} format {_CACHE_FORMAT}".encode(),
        data,
        str(config.resolve() if config is not None else "").encode(),
        config_bytes,
        python.encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _read_cache(cache_dir: Path, key: str) -> FlagSet | None:
    try:
        record = json.loads((cache_dir / f"{key}.json").read_text(encoding="utf-8"))
        flags = FlagSet.from_dict(record)
        # A config found through the script's --config default is not part of the key.
        if flags.config_file is not None and record.get("config_sha256") != _file_sha256(
            flags.config_file
        ):
            return None
        return flags
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, unreadable or stale: detect again and rewrite it


def _file_sha256(path: Path) -> str:
    from labkeep.store._blobs import file_sha256

    return file_sha256(path)[0]


def _write_cache(cache_dir: Path, key: str, flags: FlagSet) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".flags-", suffix=".tmp")
        record = flags.to_dict()
        if flags.config_file is not None:
            record["config_sha256"] = _file_sha256(flags.config_file)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(tmp, cache_dir / f"{key}.json")
    except OSError:
        pass  # a read-only cache only costs speed


def cache_path(
    path: Path, cache_dir: Path, *, config: Path | None = None, python: str | None = None
) -> Path:
    """Where :func:`detect_flags` caches the flags of ``path`` as it is now."""
    config_bytes = _read(config) if config is not None else b""
    key = _cache_key(_read(path), config, config_bytes, python or sys.executable)
    return cache_dir / f"{key}.json"


def parser_modes(tree: ast.Module) -> list[str]:
    """Which argument parsers a script imports anywhere: ``["argparse", "click"]`` or fewer."""
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
    modes = []
    if "argparse" in modules:
        modes.append("argparse")
    if modules & {"click", "typer"}:
        modes.append("click")
    return modes


def _detect_script(path: Path, data: bytes) -> FlagSet:
    from labkeep.runner._static_flags import static_flags

    try:
        tree = ast.parse(data, filename=str(path))
    except SyntaxError as exc:
        raise InvalidInputError(
            f"cannot parse {path.name} line {exc.lineno}: {exc.msg}; fix the syntax error"
        ) from None
    lines = data.decode("utf-8", errors="replace").split("\n")
    globals_ = tuple(global_flags(tree, lines))
    modes = parser_modes(tree)
    if modes:
        found = static_flags(tree, modes, {f.name: f.default for f in globals_})
        if isinstance(found, tuple):
            interface, records = found
            flags = tuple(Flag.from_dict(record) for record in records)
            return _with_tool_flags(FlagSet(source=path, interface=interface, flags=flags), tree)
        if isinstance(found, str):
            interface = "argparse" if "argparse" in modes else "click"
            return FlagSet(source=path, interface=interface, deferred=found)
    return _with_tool_flags(FlagSet(source=path, interface="globals", flags=globals_), tree)


def _with_tool_flags(found: FlagSet, tree: ast.Module) -> FlagSet:
    """Add the keys of a ``wandb.init(config={...})`` literal and of Sacred config scopes,
    unless a flag has the name."""
    from labkeep.runner._tool_flags import sacred_config_flags, wandb_config_flags

    taken = {f.name for f in found.flags}
    extra: list[Flag] = []
    for flag in (*wandb_config_flags(tree), *sacred_config_flags(tree)):
        if flag.name not in taken:
            taken.add(flag.name)
            extra.append(flag)
    if not extra:
        return found
    return FlagSet(source=found.source, interface=found.interface, flags=found.flags + tuple(extra))


def _add_config_flags(found: FlagSet, config: Path | None) -> FlagSet:
    option_flag = next(
        (f for f in found.flags if f.kind in ("argparse", "click") and f.name == "config"), None
    )
    option = option_flag.option if option_flag is not None else "--config"
    is_default = False
    if config is None and option_flag is not None and isinstance(option_flag.default, str):
        config = _find_default_config(option_flag.default, found.source)
        is_default = config is not None
    if config is None:
        return found
    if not is_config_path(config):
        raise InvalidInputError(f"config {config} must be a .json, .yaml or .yml file")
    taken = {f.name for f in found.flags}
    extra = tuple(f for f in config_flags(config) if f.name not in taken)
    return FlagSet(
        source=found.source,
        interface=found.interface,
        flags=found.flags + extra,
        config_file=config,
        config_option=option,
        config_is_default=is_default,
        warnings=found.warnings,
        deferred=found.deferred,
    )


def _find_default_config(default: str, script: Path) -> Path | None:
    """The script's ``--config`` default as a file: relative to the working dir, else the script."""
    candidate = Path(default)
    if not default or not is_config_path(candidate):
        return None
    for base in (Path.cwd(), script.parent):
        full = candidate if candidate.is_absolute() else base / candidate
        if full.is_file():
            return full
    return None
