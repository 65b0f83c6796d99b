"""The interpreter, installed distributions and GPUs a run used.

Distributions are found the way ``importlib.metadata`` finds them (``*.dist-info`` and
``*.egg-info`` entries on ``sys.path``, first one wins) but read from directory names: importing
``importlib.metadata`` and parsing every METADATA file costs ~150 ms for 150 packages, the
directory listing ~2 ms. Only entries whose names carry no version are opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from labkeep.capture._git import strip_credentials

_NORMALIZE = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name (``PyYAML`` -> ``pyyaml``, ``a_b.c`` -> ``a-b-c``)."""
    return _NORMALIZE.sub("-", name).lower()


def _read_headers(path: str) -> tuple[str | None, str | None]:
    """(Name, Version) from the header block of a METADATA / PKG-INFO file."""
    name = version = None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key == "Name" and name is None:
                    name = value.strip()
                elif key == "Version" and version is None:
                    version = value.strip()
                if name and version:
                    break
    except OSError:
        pass
    return name, version


def _from_entry(directory: str, entry: str) -> tuple[str, str] | None:
    """(name, version) for one ``*.dist-info`` / ``*.egg-info`` entry of a path directory."""
    if entry.endswith(".dist-info"):
        stem, meta = entry[: -len(".dist-info")], "METADATA"
    elif entry.endswith(".egg-info"):
        stem, meta = entry[: -len(".egg-info")], "PKG-INFO"
    else:
        return None
    parts = stem.split("-")
    if len(parts) >= 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    full = os.path.join(directory, entry)
    header_file = os.path.join(full, meta) if os.path.isdir(full) else full
    name, version = _read_headers(header_file)
    if name and version:
        return name, version
    return None


def _direct_url(directory: str, entry: str) -> dict[str, Any] | None:
    """Where a distribution came from when not from an index (PEP 610 ``direct_url.json``)."""
    path = os.path.join(directory, entry, "direct_url.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    source: dict[str, Any] = {"url": strip_credentials(data["url"])}
    dir_info = data.get("dir_info")
    if isinstance(dir_info, dict) and dir_info.get("editable"):
        source["editable"] = True
    vcs = data.get("vcs_info")
    if isinstance(vcs, dict):
        source["vcs"] = vcs.get("vcs")
        source["commit"] = vcs.get("commit_id")
    return source


def list_distributions(
    paths: Sequence[str] | None = None,
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(``{canonical name: version}``, ``{name: direct source}``) of installed distributions.

    >>> versions, sources = list_distributions()
    >>> versions["psutil"]  # doctest: +SKIP
    '7.2.2'
    """
    versions: dict[str, str] = {}
    sources: dict[str, dict[str, Any]] = {}
    for item in sys.path if paths is None else paths:
        directory = item or "."
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue  # zip files, missing directories
        for entry in entries:
            if not entry.endswith("-info"):
                continue
            found = _from_entry(directory, entry)
            if found is None:
                continue
            name = canonical_name(found[0])
            if name in versions:
                continue
            versions[name] = found[1]
            if entry.endswith(".dist-info"):
                source = _direct_url(directory, entry)
                if source is not None:
                    sources[name] = source
    return dict(sorted(versions.items())), sources


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def nvidia_driver_present() -> bool:
    """Cheap check before loading NVML: on Linux the driver exposes /proc and /dev nodes."""
    if sys.platform.startswith("linux"):
        return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")
    return True


def load_nvml() -> ModuleType | None:
    """The ``pynvml`` module (nvidia-ml-py) when a driver is present and it is installed."""
    if not nvidia_driver_present():
        return None
    if "pynvml" not in sys.modules:
        import importlib.util

        if importlib.util.find_spec("pynvml") is None:
            return None
    import pynvml

    module: ModuleType = pynvml
    return module


def probe_gpus(nvml: ModuleType | None = None) -> dict[str, Any] | None:
    """Driver, CUDA driver version and GPU names through NVML; None when there is no GPU.

    ``nvml`` is a ``pynvml``-shaped module (tests pass one that stands in for hardware).
    """
    module = nvml if nvml is not None else load_nvml()
    if module is None:
        return None
    try:
        module.nvmlInit()
    except Exception:
        return None  # no driver, no library, no permission: the same as no GPU
    try:
        count = int(module.nvmlDeviceGetCount())
        if count == 0:
            return None
        info: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            info["driver_version"] = _text(module.nvmlSystemGetDriverVersion())
        try:
            cuda = int(module.nvmlSystemGetCudaDriverVersion())
            info["cuda_driver_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        except Exception:
            pass
        gpus: list[dict[str, Any]] = []
        for index in range(count):
            gpu: dict[str, Any] = {"index": index}
            try:
                handle = module.nvmlDeviceGetHandleByIndex(index)
                gpu["name"] = _text(module.nvmlDeviceGetName(handle))
                gpu["memory_total_mb"] = round(
                    int(module.nvmlDeviceGetMemoryInfo(handle).total) / 2**20
                )
                gpu["uuid"] = _text(module.nvmlDeviceGetUUID(handle))
            except Exception as exc:
                gpu["error"] = f"{type(exc).__name__}: {exc}"
            gpus.append(gpu)
        info["gpus"] = gpus
        return info
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        with contextlib.suppress(Exception):
            module.nvmlShutdown()


def python_info() -> dict[str, Any]:
    """Interpreter and platform, without spawning processes (``platform.platform()`` reads the
    executable and ``platform.processor()`` runs ``uname -p``, so neither is used)."""
    import platform

    uname = platform.uname()
    info: dict[str, Any] = {
        "python_version": platform.python_version(),
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "prefix": sys.prefix,
        "virtualenv": sys.prefix != sys.base_prefix,
        "platform": sys.platform,
        "system": uname.system,
        "release": uname.release,
        "machine": uname.machine,
    }
    if hasattr(os, "confstr"):
        try:
            libc = os.confstr("CS_GNU_LIBC_VERSION")
        except (ValueError, OSError):
            libc = None
        if libc:
            info["libc"] = libc
    torch = sys.modules.get("torch")
    if torch is not None:  # only when the run imported it already: importing costs seconds
        version = getattr(torch, "version", None)
        if getattr(version, "cuda", None):
            info["torch_cuda"] = str(version.cuda)  # type: ignore[union-attr]
    return info


def collect_environment(*, nvml: ModuleType | None = None, gpu: bool = True) -> dict[str, Any]:
    """The ``environment`` section: interpreter, platform, packages and (if present) GPUs.

    >>> env = collect_environment()
    >>> env["python_version"], len(env["packages"])  # doctest: +SKIP
    ('3.11.7', 139)
    """
    section = python_info()
    packages, sources = list_distributions()
    section["packages"] = packages
    if sources:
        section["package_sources"] = sources
    if gpu:
        gpus = probe_gpus(nvml)
        if gpus is not None:
            section["gpu"] = gpus
    return section
