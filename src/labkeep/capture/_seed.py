"""Seeding every random number generator a run is likely to use."""

from __future__ import annotations

import os
import sys
from typing import Any

from labkeep.errors import InvalidInputError

MAX_SEED = 2**32 - 1  # numpy's legacy seed range, the narrowest of the libraries seeded


def _available(module: str) -> bool:
    """Installed or imported, found without importing it."""
    if module in sys.modules:
        return True
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def seed_everything(n: int) -> dict[str, Any]:
    """Seed ``random``, numpy and torch (with CUDA) when installed; return what was seeded.

    ``PYTHONHASHSEED`` cannot change for a running interpreter: it is set for child processes
    (data loader workers, subprocesses) when unset, and ``labkeep run --seed`` sets it for the
    run's own process.

    >>> seed_everything(42)["seeded"]  # doctest: +SKIP
    ['random', 'numpy', 'torch']
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_SEED:
        raise InvalidInputError(f"seed must be an integer from 0 to {MAX_SEED}, got {n!r}")
    seeded: list[str] = []
    errors: dict[str, str] = {}

    import random

    random.seed(n)
    seeded.append("random")

    if _available("numpy"):
        try:
            import numpy

            numpy.random.seed(n)
            seeded.append("numpy")
        except Exception as exc:
            errors["numpy"] = f"{type(exc).__name__}: {exc}"

    if _available("torch"):
        try:
            import torch  # type: ignore[import-not-found, unused-ignore]

            torch.manual_seed(n)  # also seeds every CUDA device, lazily
            seeded.append("torch")
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(n)
                seeded.append("torch.cuda")
        except Exception as exc:
            errors["torch"] = f"{type(exc).__name__}: {exc}"

    # TensorFlow takes seconds to import: seed it only when the run already uses it.
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            tf.random.set_seed(n)
            seeded.append("tensorflow")
        except Exception as exc:
            errors["tensorflow"] = f"{type(exc).__name__}: {exc}"

    hash_seed = os.environ.get("PYTHONHASHSEED")
    if hash_seed is None:
        os.environ["PYTHONHASHSEED"] = str(n)
    result: dict[str, Any] = {
        "seed": n,
        "seeded": seeded,
        "pythonhashseed": hash_seed if hash_seed is not None else str(n),
        "pythonhashseed_in_process": hash_seed is not None,
    }
    if errors:
        result["errors"] = errors
    return result
