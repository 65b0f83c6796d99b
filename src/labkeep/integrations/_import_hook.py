"""labkeep's one import hook: patch a tool or framework right after the script imports it.

A :data:`sys.meta_path` finder, :class:`ImportHook`, finds nothing itself. When the script
imports a module that a registered patcher watches, the hook asks the other finders for the
real module, lets its loader run it unchanged, and then hands the finished module to each
patcher that watches its name. The bridges (``_bridge_hook``: MLflow, W&B, TensorBoard
writers, Sacred) and autolog (``_autolog_hook``: scikit-learn, XGBoost, LightGBM) register
their patcher with it under their own key (:func:`register_patcher`). Nothing is imported that the
script does not import itself, and a module that is not installed gets the usual
``ModuleNotFoundError`` (the hook finds nothing and says nothing).

This module imports nothing but ``sys``: ``labkeep run``'s child bootstrap loads it by path
before the script starts, without importing the labkeep package, and hands it to
``_bridge_hook`` and ``_autolog_hook`` (loaded by path too). Its state lives in the one hook
on :data:`sys.meta_path`, so a copy of this module imported later by name finds the same
patchers.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any, Protocol, TypeVar

    class Patcher(Protocol):
        """What registers with the hook: the module names it watches, and what it does to
        each once imported."""

        def watches(self, fullname: str) -> bool: ...

        def patch(self, fullname: str, module: ModuleType) -> None: ...

    P = TypeVar("P", bound=Patcher)


class ImportHook:
    """Finds nothing itself: it marks the watched modules' loaders to patch them once run."""

    labkeep_import_hook = True

    def __init__(self) -> None:
        #: Patchers by key (``"bridges"``, ``"autolog"``), in the order they registered.
        self.patchers: dict[str, Any] = {}
        # Names being looked up by the other finders (the import lock of each module keeps
        # two threads from looking up the same name at once).
        self._busy: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname in self._busy or not self._watched(fullname):
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
        hook = self

        def exec_module(module: ModuleType) -> None:
            try:
                real_exec(module)
            finally:
                loader.__dict__.pop("exec_module", None)
            hook.patch(fullname, module)

        if hasattr(loader, "__dict__"):  # a loader with slots leaves the module unpatched
            loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def patch(self, fullname: str, module: ModuleType) -> None:
        """Hand an imported module to each patcher that watches its name."""
        for patcher in list(self.patchers.values()):
            if patcher.watches(fullname):
                patcher.patch(fullname, module)

    def _watched(self, fullname: str) -> bool:
        return any(patcher.watches(fullname) for patcher in self.patchers.values())


def _find_after(
    me: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    for finder in sys.meta_path:
        if finder is me or getattr(finder, "labkeep_import_hook", False):
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec: ModuleSpec | None = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


def find_hook() -> ImportHook | None:
    """The hook on :data:`sys.meta_path`, if one was put there."""
    hook: Any = next((f for f in sys.meta_path if getattr(f, "labkeep_import_hook", False)), None)
    return hook  # type: ignore[no-any-return]


def registered_patcher(key: str) -> Any:
    """The patcher registered under ``key``, or None."""
    hook = find_hook()
    return None if hook is None else hook.patchers.get(key)


def register_patcher(key: str, make: Callable[[], P]) -> P:
    """Put the hook first on :data:`sys.meta_path` (once) and the patcher ``make()`` in it
    under ``key`` (once: later calls return the one registered first).

    >>> register_patcher("bridges", lambda: Bridges("on"))  # doctest: +SKIP
    """
    hook = find_hook()
    if hook is None:
        hook = ImportHook()
        sys.meta_path.insert(0, hook)
    patcher: P | None = hook.patchers.get(key)
    if patcher is None:
        patcher = make()
        hook.patchers[key] = patcher
    return patcher


def patch_imported(patcher: Patcher, names: Sequence[str]) -> None:
    """Hand ``patcher`` those of ``names`` that the script has imported already."""
    for name in names:
        module = sys.modules.get(name)
        if module is not None:
            patcher.patch(name, module)
