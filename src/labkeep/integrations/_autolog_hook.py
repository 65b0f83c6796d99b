"""Turn autolog on for each framework when the script imports it (or at once if it has).

A :data:`sys.meta_path` finder watches the module names of its registry (``sklearn``,
``xgboost``, ``lightgbm``…). When the script imports one, the finder lets the real loader run
the module unchanged and then hands it to the labkeep module registered for it, whose
``install(module)`` patches the framework's own classes so that their training calls land in
a labkeep run (``labkeep.integrations._sklearn``…). Nothing is imported that the script does
not import itself: autolog on costs nothing for a framework the script never uses.

The registry is the finder's :attr:`AutologFinder.autologgers` (``register()`` adds to it), so
an integration written later registers its framework in one line. This module imports nothing
but ``sys``: ``labkeep run --autolog``'s child bootstrap runs it from its path before the script
starts, without importing the labkeep package; ``labkeep.autolog()`` imports it normally and
finds the same finder on :data:`sys.meta_path`.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

#: Module imported by the script -> labkeep module whose ``install(module)`` autologs it.
AUTOLOGGERS = {
    "sklearn": "labkeep.integrations._sklearn",
    "xgboost": "labkeep.integrations._xgboost",
    "lightgbm": "labkeep.integrations._lightgbm",
}


class AutologFinder:
    """Finds nothing itself: it marks the watched modules' loaders to patch them once run."""

    labkeep_autolog = True

    def __init__(self) -> None:
        self.autologgers = dict(AUTOLOGGERS)
        #: Set by ``labkeep run --autolog``: autolog is on before ``labkeep.autolog()`` is
        #: called (``_autolog.SETTINGS`` reads it when first imported).
        self.enabled = False
        self._busy: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.autologgers or fullname in self._busy:
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

        if hasattr(loader, "__dict__"):
            loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def patch(self, fullname: str, module: ModuleType) -> None:
        """Hand an imported framework to its autologger (once per module object)."""
        if getattr(module, "__labkeep_autolog__", False):
            return
        import importlib

        module.__dict__["__labkeep_autolog__"] = True
        try:
            autologger = importlib.import_module(self.autologgers[fullname])
            autologger.install(module)
        except Exception as exc:  # a version the integration refuses: the script goes on
            import logging

            logging.getLogger("labkeep.integrations").warning(
                "%s is not autologged: %s", fullname, exc
            )


def _find_after(
    me: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    for finder in sys.meta_path:
        if finder is me or getattr(finder, "labkeep_autolog", False):
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec: ModuleSpec | None = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


def install(enable: bool = False) -> AutologFinder:
    """Put the finder on :data:`sys.meta_path` (once) and autolog what is already imported;
    ``enable`` turns autolog on for this process (``labkeep run --autolog``)."""
    finder: Any = next((f for f in sys.meta_path if getattr(f, "labkeep_autolog", False)), None)
    if finder is None:
        finder = AutologFinder()
        sys.meta_path.insert(0, finder)
    if enable:
        finder.enabled = True
    for name in list(finder.autologgers):
        module = sys.modules.get(name)
        if module is not None:
            finder.patch(name, module)
    return finder  # type: ignore[no-any-return]


def register(module_name: str, autologger: str) -> None:
    """Autolog ``module_name`` with the module ``autologger`` (its ``install(module)``), now
    if the framework is imported and autolog is on, else once it is.

    >>> register("keras", "labkeep.integrations._keras_autolog")  # doctest: +SKIP
    """
    AUTOLOGGERS[module_name] = autologger
    finder: Any = next((f for f in sys.meta_path if getattr(f, "labkeep_autolog", False)), None)
    if finder is None:
        return
    finder.autologgers[module_name] = autologger
    module = sys.modules.get(module_name)
    if module is not None:
        finder.patch(module_name, module)
