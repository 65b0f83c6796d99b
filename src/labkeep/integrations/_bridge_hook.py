"""Patch MLflow, W&B, TensorBoard writers (``tf.summary`` too) and Sacred right after the
script imports them.

The import hook (:mod:`._import_hook`) watches for the names in :data:`BRIDGES`. When the
script imports one, the hook lets its loader run it unchanged, and then :class:`Bridges` hands
the finished module to ``labkeep.integrations._bridge_<tool>``, which replaces a few of its
functions so that their calls also land in the labkeep run. Nothing is imported that the
script does not import itself, and a script whose tool is not installed gets the usual
``ModuleNotFoundError``.

This module imports nothing but ``sys`` and the import hook: ``labkeep run``'s child bootstrap
runs it from its path before the script starts, without importing the labkeep package (nor
``importlib.util``).

Modes (``LABKEEP_BRIDGES``, read by the bootstrap): ``on`` — the tool runs as it would
offline (W&B gets ``WANDB_MODE=offline`` unless it is set) and labkeep records its calls
too; ``only`` — labkeep records the calls and the tool writes nothing.
"""

from __future__ import annotations

if "_import_hook" not in globals():
    # ``labkeep run``'s bootstrap loads this module by path with the hook module given as
    # ``_import_hook``, so that labkeep itself is not imported before the script imports it.
    from labkeep.integrations import _import_hook

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

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


class Bridges:
    """The bridges' patcher for the import hook: which tool module goes to which bridge."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def watches(self, fullname: str) -> bool:
        return fullname in BRIDGES

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


def install(mode: str = "on") -> Bridges:
    """Register the bridges with the import hook (once) and bridge what is already imported.

    >>> install("only")  # doctest: +SKIP
    """
    if mode not in MODES:
        raise ValueError(f"bridge mode {mode!r} is not one of {', '.join(MODES)}")
    bridges = _import_hook.register_patcher("bridges", lambda: Bridges(mode))
    bridges.mode = mode
    _import_hook.patch_imported(bridges, list(BRIDGES))
    return bridges


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
