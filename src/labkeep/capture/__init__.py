"""Collectors of what reproduces a run, and the background system-metrics sampler.

Every collector is a pure function returning JSON-ready dicts; none needs a store. Storing code
files by hash is the caller's job (``store.put_blob(Path(f.abspath))`` for each
``Snapshot.code_files``).
"""

from labkeep.capture._code import collect_code
from labkeep.capture._environment import list_distributions
from labkeep.capture._git import collect_git
from labkeep.capture._host import redact_argv
from labkeep.capture._ignore import IgnoreRules
from labkeep.capture._inputs import fingerprint_input
from labkeep.capture._seed import seed_everything
from labkeep.capture._snapshot import Snapshot, capture_snapshot
from labkeep.capture._system import SystemMonitor

# What the layers above use; a test pins it (tests/unit/test_public_names.py).
__all__ = [
    "IgnoreRules",
    "Snapshot",
    "SystemMonitor",
    "capture_snapshot",
    "collect_code",
    "collect_git",
    "fingerprint_input",
    "list_distributions",
    "redact_argv",
    "seed_everything",
]
