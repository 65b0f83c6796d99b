"""Turn autolog on for each framework when the script imports it (or at once if it has).

The import hook (:mod:`._import_hook`) watches the module names of autolog's registry
(``sklearn``, ``xgboost``, ``lightgbm``…). When the script imports one, the hook lets the real
loader run the module unchanged and then :class:`Autologgers` hands it to the labkeep module
registered for it, whose
``install(module)`` patches the framework's own classes so that their training calls land in
a labkeep run (``labkeep.integrations._sklearn``…). Nothing is imported that the script does
not import itself: autolog on costs nothing for a framework the script never uses.

The registry is :attr:`Autologgers.autologgers` (``register()`` adds to it), so an
integration written later registers its framework in one line. This module imports nothing
but ``sys`` and the import hook: ``labkeep run --autolog``'s child bootstrap runs it from its
path before the script starts, without importing the labkeep package; ``labkeep.autolog()``
imports it normally and finds the same patcher registered with the hook on
:data:`sys.meta_path`.
"""

from __future__ import annotations

if "_import_hook" not in globals():
    # ``labkeep run``'s bootstrap loads this module by path with the hook module given as
    # ``_import_hook``, so that labkeep itself is not imported before the script imports it.
    from labkeep.integrations import _import_hook

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

#: Module imported by the script -> labkeep module whose ``install(module)`` autologs it.
AUTOLOGGERS = {
    "sklearn": "labkeep.integrations._sklearn",
    "xgboost": "labkeep.integrations._xgboost",
    "lightgbm": "labkeep.integrations._lightgbm",
}


class Autologgers:
    """Autolog's patcher for the import hook: which framework goes to which autologger."""

    def __init__(self) -> None:
        self.autologgers = dict(AUTOLOGGERS)
        #: Set by ``labkeep run --autolog``: autolog is on before ``labkeep.autolog()`` is
        #: called (``_autolog.SETTINGS`` reads it when first imported).
        self.enabled = False

    def watches(self, fullname: str) -> bool:
        return fullname in self.autologgers

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


def install(enable: bool = False) -> Autologgers:
    """Register autolog with the import hook (once) and autolog what is already imported;
    ``enable`` turns autolog on for this process (``labkeep run --autolog``)."""
    autologgers = _import_hook.register_patcher("autolog", Autologgers)
    if enable:
        autologgers.enabled = True
    _import_hook.patch_imported(autologgers, list(autologgers.autologgers))
    return autologgers


def register(module_name: str, autologger: str) -> None:
    """Autolog ``module_name`` with the module ``autologger`` (its ``install(module)``), now
    if the framework is imported and autolog is on, else once it is.

    >>> register("keras", "labkeep.integrations._keras_autolog")  # doctest: +SKIP
    """
    AUTOLOGGERS[module_name] = autologger
    autologgers: Autologgers | None = _import_hook.registered_patcher("autolog")
    if autologgers is None:
        return
    autologgers.autologgers[module_name] = autologger
    _import_hook.patch_imported(autologgers, [module_name])
