"""Names a package loads from its modules when first used (PEP 562), so that importing the
package costs nothing: ``labkeep.runner`` (imported by ``labkeep run``'s child too),
``labkeep.sweep`` (Optuna), ``labkeep.integrations`` (the tools).

    __getattr__, __dir__ = lazy_names(__name__, globals(), {"launch": "_launch"})

Imports nothing: ``labkeep run``'s child imports it before the script starts.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def lazy_names(
    package: str, namespace: dict[str, object], modules: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The package's module ``__getattr__`` and ``__dir__``: name ``NAME`` is taken from the
    package's module ``modules[NAME]`` (``"_launch"``) when first asked for, then kept in the
    package's ``namespace``; ``dir()`` lists ``__all__`` too."""

    def __getattr__(name: str) -> object:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))  # type: ignore[call-overload]

    return __getattr__, __dir__
