"""Collectors of what reproduces a run, and the background system-metrics sampler.

Every collector is a pure function returning JSON-ready dicts; none needs a store. Storing code
files by hash is the caller's job (``store.put_blob(Path(f.abspath))`` for each
``Snapshot.code_files``).
"""

from labkeep.capture._code import CodeFile, collect_code
from labkeep.capture._environment import collect_environment, list_distributions, probe_gpus
from labkeep.capture._git import collect_git, strip_credentials
from labkeep.capture._hashcache import HashCache
from labkeep.capture._host import collect_host, redact_argv, select_env
from labkeep.capture._ignore import IgnoreRules
from labkeep.capture._inputs import fingerprint_input
from labkeep.capture._seed import seed_everything
from labkeep.capture._snapshot import Snapshot, capture_snapshot
from labkeep.capture._system import SystemMonitor

__all__ = [
    "CodeFile",
    "HashCache",
    "IgnoreRules",
    "Snapshot",
    "SystemMonitor",
    "capture_snapshot",
    "collect_code",
    "collect_environment",
    "collect_git",
    "collect_host",
    "fingerprint_input",
    "list_distributions",
    "probe_gpus",
    "redact_argv",
    "seed_everything",
    "select_env",
    "strip_credentials",
]
