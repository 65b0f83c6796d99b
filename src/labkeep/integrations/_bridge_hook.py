"""Patch MLflow, W&B, TensorBoard writers (``tf.summary`` too) and Sacred right after the
script imports them.

A :data:`sys.meta_path` finder watches for the names in :data:`BRIDGES`. When the script
imports one, the finder asks the other finders for the real module, lets its loader run it
unchanged, and then hands the finished module to ``labkeep.integrations._bridge_<tool>``,
which replaces a few of its functions so that their calls also land in the labkeep run.
Nothing is imported that the script does not import itself, and a script whose tool is not
installed gets the usual ``ModuleNotFoundError`` (the finder finds nothing and says nothing).

This module imports nothing but ``sys``: ``labkeep run``'s child bootstrap runs it from its path
before the script starts, without importing the labkeep package (nor ``importlib.util``).

Modes (``LABKEEP_BRIDGES``, read by the bootstrap): ``on`` — the tool runs as it would
offline (W&B gets ``WANDB_MODE=offline`` unless it is set) and labkeep records its calls
too; ``only`` — labkeep records the calls and the tool writes nothing.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

MODES = ("on", "only")

#: Module imported by the script -> labkeep module that bridges it.
BRIDGES = {
    "mlflow": "labkeep.integrations._bridge_mlflow",
    "wandb": "labkeep.integrations._bridge_wandb",
    "tensorboardX": "labkeep.integrations._bridge_tensorboard",
    "torch.utils.tensorboard": "labkeep.integrations._bridge_tensorboard",
    "sacred": "labkeep.integrations._bridge_sacred",
    "tensorflow": "labkeep.integrations._bridge_tf_summary",
}


class BridgeFinder:
    """Finds nothing itself: it marks the watched modules' loaders to patch them once run."""

    labkeep_bridge = True

    def __init__(self, mode: str) -> None:
        self.mode = mode
        # Names being looked up by the other finders (the import lock of each module keeps
        # two threads from looking up the same name at once).
        self._busy: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in BRIDGES or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = _find_after(self, fullname, path, target)
        finally:
            self._busy.discard(fullname)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        real_exec = loader.exec_module
        finder = self

        def exec_module(module: ModuleType) -> None:
            try:
                real_exec(module)
            finally:
                loader.__dict__.pop("exec_module", None)
            finder.patch(fullname, module)

        if hasattr(loader, "__dict__"):  # a loader with slots leaves the module unbridged
            loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def patch(self, fullname: str, module: ModuleType) -> None:
        """Hand an imported tool module to its bridge (once per module object)."""
        if getattr(module, "__labkeep_bridged__", False):
            return
        import importlib

        module.__dict__["__labkeep_bridged__"] = True
        try:
            bridge = importlib.import_module(BRIDGES[fullname])
            bridge.install(module, only=self.mode == "only")
        except Exception as exc:  # a tool version the bridge does not know: the script goes on
            import logging

            logging.getLogger("labkeep.integrations").warning(
                "%s is not recorded in the labkeep run: %r", fullname, exc
            )


def _find_after(
    me: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    for finder in sys.meta_path:
        if finder is me or getattr(finder, "labkeep_bridge", False):
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec: ModuleSpec | None = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


def install(mode: str = "on") -> BridgeFinder:
    """Put the finder first on :data:`sys.meta_path` (once) and bridge what is already imported.

    >>> install("only")  # doctest: +SKIP
    """
    if mode not in MODES:
        raise ValueError(f"bridge mode {mode!r} is not one of {', '.join(MODES)}")
    finder: Any = next((f for f in sys.meta_path if getattr(f, "labkeep_bridge", False)), None)
    if finder is None:
        finder = BridgeFinder(mode)
        sys.meta_path.insert(0, finder)
    finder.mode = mode
    for name in BRIDGES:
        module = sys.modules.get(name)
        if module is not None:
            finder.patch(name, module)
    return finder  # type: ignore[no-any-return]


def bridge(only: bool = False) -> None:
    """Record this process's MLflow, W&B, TensorBoard writer and Sacred calls into labkeep.

    Tools already imported are bridged at once, the others when imported. ``only=True``
    keeps the tools themselves from writing anything (no W&B login, no ``mlruns/``).

    >>> import labkeep
    >>> labkeep.bridge()  # doctest: +SKIP
    >>> import mlflow  # doctest: +SKIP
    >>> mlflow.log_metric("loss", 0.3, step=1)  # doctest: +SKIP  (also labkeep's metric)
    """
    install("only" if only else "on")
