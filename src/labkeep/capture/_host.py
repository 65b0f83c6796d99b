"""The machine and invocation: hostname, user, CPU, memory, argv, cwd and allowed env vars."""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Variables that change what a run computes or where it runs.
ALLOWED_ENV = (
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CUDA_LAUNCH_BLOCKING",
    "CUBLAS_WORKSPACE_CONFIG",
    "NVIDIA_VISIBLE_DEVICES",
    "PYTORCH_CUDA_ALLOC_CONF",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "TF_CPP_MIN_LOG_LEVEL",
    "XLA_FLAGS",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "JAX_PLATFORMS",
    "JAX_ENABLE_X64",
    "PYTHONHASHSEED",
    "PYTHONPATH",
    "PYTHONOPTIMIZE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "TOKENIZERS_PARALLELISM",
    "HF_HUB_OFFLINE",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
    "CONDA_PREFIX",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "LANG",
    "LC_ALL",
    "TZ",
    "LABKEEP_*",
)
# A name containing any of these is never stored, whatever the allow-list says.
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
# user:password@ inside URL-shaped values (a LABKEEP_STORE with a database password).
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def is_secret_name(name: str) -> bool:
    """Whether an environment variable name looks like it holds a secret."""
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


def scrub_value(value: str) -> str:
    """``value`` with credentials removed from any URLs in it."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>", value)


def select_env(environ: Mapping[str, str], extra_allow: Iterable[str] = ()) -> dict[str, str]:
    """Variables of ``environ`` matching the allow-list or ``extra_allow`` (fnmatch patterns),
    never secrets, with URL credentials scrubbed from values.

    >>> select_env({"OMP_NUM_THREADS": "4", "LABKEEP_API_KEY": "x", "HOME": "/root"})
    {'OMP_NUM_THREADS': '4'}
    """
    patterns = (*ALLOWED_ENV, *extra_allow)
    exact = {p for p in patterns if not any(c in p for c in "*?[")}
    wild = [p for p in patterns if p not in exact]
    selected: dict[str, str] = {}
    for name, value in environ.items():
        if is_secret_name(name):
            continue
        if name in exact or any(fnmatch.fnmatchcase(name, p) for p in wild):
            selected[name] = scrub_value(value)
    return dict(sorted(selected.items()))


_FLAG = re.compile(r"^(?P<name>-{0,2}[A-Za-z0-9_.-]+)(?P<sep>=)(?P<value>.*)$", re.DOTALL)
REDACTED = "***"


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with the values of secret-named flags replaced by ``***``.

    >>> redact_argv(["train.py", "--api-key", "abc", "token=xyz", "lr=0.1"])
    ['train.py', '--api-key', '***', 'token=***', 'lr=0.1']
    """
    out: list[str] = []
    redact_next = False
    for arg in argv:
        if redact_next:
            out.append(REDACTED)
            redact_next = False
            continue
        match = _FLAG.match(arg)
        if match and is_secret_name(match.group("name")):
            out.append(f"{match.group('name')}={REDACTED}")
        elif arg.startswith("-") and len(arg) > 1 and is_secret_name(arg):
            out.append(arg)
            redact_next = True
        else:
            out.append(scrub_value(arg))
    return out


def parse_cpu_model(cpuinfo: str) -> str | None:
    """The CPU model from the text of /proc/cpuinfo (x86 ``model name``, ARM fallbacks)."""
    found: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and value.strip() and key not in found:
            found[key] = value.strip()
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor", "cpu"):
        if key in found:
            return found[key]
    return None


def cpu_model() -> str | None:
    """CPU model name. Reads only the first processor's block: a full /proc/cpuinfo read makes
    the kernel query every core's frequency, which takes milliseconds on large machines."""
    if sys.platform.startswith("linux"):
        try:
            fd = os.open("/proc/cpuinfo", os.O_RDONLY)
            try:
                head = os.read(fd, 8192).decode("utf-8", "replace")
            finally:
                os.close(fd)
            model = parse_cpu_model(head)
            if model:
                return model
        except OSError:
            pass
        return os.uname().machine or None
    import platform

    return platform.processor() or platform.machine() or None


def memory_total_bytes() -> int | None:
    """Total physical memory: /proc/meminfo on Linux, psutil elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:
        return None


def _user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name and no passwd entry (containers)
        return None


def collect_host(
    argv: Sequence[str],
    cwd: Path,
    entry_point: str | None,
    extra_env_allow: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``host`` section.

    >>> collect_host(sys.argv, Path.cwd(), "train.py")["cpu_count"]  # doctest: +SKIP
    16
    """
    import socket

    section: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "user": _user(),
        "pid": os.getpid(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        section["cpu_usable"] = len(os.sched_getaffinity(0))
    section["memory_total_bytes"] = memory_total_bytes()
    section["argv"] = redact_argv(argv)
    section["cwd"] = str(cwd)
    section["entry_point"] = entry_point
    section["env"] = select_env(os.environ if environ is None else environ, extra_env_allow)
    return section
