"""What the training-framework callbacks share (``labkeep.keras``, ``labkeep.lightning``,
``labkeep.huggingface``): the check that the framework is installed and new enough, and the
run a callback logs into.

A callback logs into the run it was given, else the process's active run; with neither it
starts one (``labkeep.init()``, which under ``labkeep run`` attaches to the runner's run) and
finishes it when training ends. Frameworks call "training ended" before the evaluation or
test a script often runs next: a run the callback started and finished is continued
(``init(id=..., resume="must")``) when more is logged, so those metrics land in it too.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labkeep.errors import IntegrationError, LabkeepError

if TYPE_CHECKING:
    from labkeep._run import Run

_log = logging.getLogger("labkeep")

#: The extra that installs every framework the integrations are tested with.
EXTRA = "labkeep[integrations]"


def release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string: ``"2.13.0+cpu"`` → ``(2, 13, 0)``."""
    numbers = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
        if digits.group() != part:
            break
    return tuple(numbers)


def installed_version(*distributions: str) -> tuple[str, str] | None:
    """The first of ``distributions`` that is installed, with its version."""
    for name in distributions:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def require(integration: str, distributions: tuple[str, ...], minimum: str) -> str:
    """The installed distribution's version, or one line naming what to install.

    >>> require("labkeep.keras", ("keras",), "3.0")  # doctest: +SKIP
    '3.15.1'
    """
    found = installed_version(*distributions)
    wanted = f"{distributions[0]}>={minimum}"
    if found is None:
        raise IntegrationError(
            f"{integration} needs {wanted}, which is not installed: "
            f"pip install '{wanted}' (or '{EXTRA}')"
        )
    name, version = found
    if release(version) < release(minimum):
        raise IntegrationError(
            f"{integration} needs {wanted}, found {name} {version}: "
            f"pip install --upgrade '{wanted}'"
        )
    return version


def import_framework(integration: str, module: str, distribution: str, minimum: str) -> Any:
    """``import module`` after :func:`require`, failing in one line when the import does."""
    import importlib

    require(integration, (distribution,), minimum)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise IntegrationError(
            f"{integration}: {distribution} is installed but 'import {module}' fails "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc


class TrainingRun:
    """The run a callback logs into (see the module's docstring).

    >>> runs = TrainingRun(None, experiment="mnist")  # doctest: +SKIP
    >>> runs.get().log({"loss": 0.3}, step=0)          # doctest: +SKIP
    >>> runs.end()                                     # doctest: +SKIP
    """

    def __init__(self, run: Run | None, *, experiment: str | None, name: str | None) -> None:
        self._given = run
        self._run: Run | None = run
        self._owned = False
        self._experiment = experiment
        self._name = name

    @property
    def owned(self) -> bool:
        """Whether the callback started the run (and so ends it)."""
        return self._owned

    def get(self) -> Run:
        """The run to log into now, started or continued when there is none."""
        run = self._run
        if run is not None and not run.finished:
            return run
        if self._given is not None:
            return self._given  # finished by its owner: logging to it says so
        from labkeep._api import active_run, init

        active = active_run()
        if active is not None:
            self._run, self._owned = active, False
            return active
        if run is not None and self._owned:
            run = init(id=run.uuid, resume="must", store=run.store_uri)
        else:
            run = init(experiment=self._experiment, name=self._name)
        self._run, self._owned = run, True
        return run

    def current(self) -> Run | None:
        """The run logged into so far, if any (never starts one)."""
        return self._run

    def end(self, status: str | None = None) -> None:
        """Finish the run if the callback started it; a run it was given is left running."""
        run = self._run
        if self._owned and run is not None and not run.finished:
            run.finish(status)


def params_of(values: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """A framework's config as params: nested mappings flattened to dotted keys, and a value
    labkeep cannot store as it is (an object, a function, an enum) kept as its ``str``, as
    MLflow keeps every param.

    >>> params_of({"optimizer": {"name": "adam", "lr": 0.01}, "act": print})
    {'optimizer.name': 'adam', 'optimizer.lr': 0.01, 'act': '<built-in function print>'}
    """
    from labkeep._values import check_value

    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(params_of(value, name + "."))
            continue
        try:
            out[name] = check_value(name, value)
        except LabkeepError:
            out[name] = str(value)
    return out


def log_params(run: Run, values: Mapping[Any, Any], what: str, prefix: str = "") -> None:
    """Record :func:`params_of` ``values`` in the run; a key labkeep refuses (empty, too
    long) is left out and said once in the log, and training goes on."""
    params = params_of(values, prefix)
    try:
        run.config.update(params)
        return
    except LabkeepError:
        pass
    for key, value in params.items():
        try:
            run.config.update({key: value})
        except LabkeepError as exc:
            _log.warning("%s: param %r not recorded: %s", what, key, exc)


def numeric(value: Any) -> float | None:
    """A metric value as a float (Python, NumPy, JAX or PyTorch scalar), None when it is not
    one number (a string, an array of several values)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        if getattr(value, "ndim", 0) != 0 and getattr(value, "size", 1) != 1:
            return None
        item = value.item() if hasattr(value, "item") else value
        return float(item)
    except (TypeError, ValueError, AttributeError):
        return None
