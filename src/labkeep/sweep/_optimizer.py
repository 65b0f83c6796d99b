"""Optimizers (Optuna's samplers, by Guild's names) and the objective a sweep optimizes.

``grid`` walks every combination in order (labkeep enumerates the points and hands each to
Optuna as an enqueued trial, so a resumed grid continues exactly where it stopped);
``random``, ``tpe``, ``cmaes`` and ``qmc`` are Optuna's samplers of those names; ``gp`` (Guild's
``bayesian``) is Optuna's ``GPSampler``, which needs PyTorch. PyTorch is gigabytes, so it is
not in the ``sweep`` extra: it comes with ``labkeep[gp]``, and ``gp`` without it is a one-line
error naming that extra.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from labkeep.errors import InvalidInputError

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

    from labkeep.entities import RunRecord

OPTIMIZERS = ("grid", "random", "tpe", "gp", "cmaes", "qmc")
ALIASES = {"bayesian": "gp", "gaussian": "gp"}
#: Trials when no ``--max-trials`` is given and the space is no grid (Guild's default).
DEFAULT_MAX_TRIALS = 20

Direction = Literal["minimize", "maximize"]
_ACCESSORS = ("last", "min", "max")


def optimizer_name(name: str) -> str:
    """The canonical name of ``name``; an unknown one is an :class:`InvalidInputError`."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in OPTIMIZERS:
        raise InvalidInputError(
            f"unknown optimizer {name!r}: choose grid, random, tpe, gp (or bayesian), cmaes or qmc"
        )
    return key


PRUNERS = ("median", "hyperband", "asha")


def pruner_name(name: str) -> str:
    key = name.strip().lower()
    if key not in PRUNERS:
        raise InvalidInputError(f"unknown pruner {name!r}: choose median, hyperband or asha")
    return key


def make_pruner(name: str | None, options: Mapping[str, Any] | None = None) -> BasePruner:
    """Optuna's pruner of that name (``asha`` is its SuccessiveHalvingPruner) built with
    ``options``; none: a pruner that never prunes."""
    import optuna

    kwargs = dict(options or {})
    if name == "median":
        return optuna.pruners.MedianPruner(**kwargs)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**kwargs)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(**kwargs)
    return optuna.pruners.NopPruner()


def parse_opt_flags(texts: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["seed=1", "n_startup_trials=5"]`` as ``{"seed": 1, "n_startup_trials": 5}``."""
    from labkeep.runner._overrides import parse_literal

    out: dict[str, Any] = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--opt-flag takes KEY=VALUE, got {text!r}")
        out[key.strip()] = parse_literal(raw)
    return out


def check_available(optimizer: str) -> None:
    """Raise a one-line error naming the extra to install when ``optimizer`` cannot run here."""
    needs = [("optuna", "labkeep[sweep]")]
    if optimizer == "gp":
        needs.append(("torch", "labkeep[gp]"))
    elif optimizer == "cmaes":
        needs.append(("cmaes", "labkeep[sweep]"))
    elif optimizer == "qmc":
        needs.append(("scipy", "labkeep[sweep]"))
    for module, extra in needs:
        if importlib.util.find_spec(module) is None:
            what = "PyTorch" if module == "torch" else module
            raise InvalidInputError(
                f"optimizer {optimizer} needs {what}, which is not installed: pip install '{extra}'"
            )


def make_sampler(optimizer: str, options: Mapping[str, Any]) -> BaseSampler:
    """Optuna's sampler for ``optimizer`` built with ``options`` (``--opt-flag``)."""
    check_available(optimizer)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers: dict[str, type[BaseSampler]] = {
        "grid": optuna.samplers.RandomSampler,  # the points are enqueued (see the docstring)
        "random": optuna.samplers.RandomSampler,
        "tpe": optuna.samplers.TPESampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "qmc": optuna.samplers.QMCSampler,
    }
    if optimizer == "gp":
        samplers["gp"] = optuna.samplers.GPSampler
    cls = samplers[optimizer]
    if optimizer == "cmaes":
        # CMA-ES draws choices at random: the sweep says so once, not Optuna on every trial.
        options = {"warn_independent_sampling": False, **options}
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidInputError(
            f"optimizer {optimizer} has no option {unknown[0]!r}; it takes: "
            + ", ".join(sorted(accepted))
        )
    try:
        with warnings.catch_warnings():
            # qmc and gp are "experimental" in Optuna: nothing the user can act on.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return cls(**options)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"optimizer {optimizer}: bad --opt-flag ({exc})") from None


@dataclass(frozen=True)
class Objective:
    """What a sweep optimizes: a metric's ``last`` value (or ``min``/``max``: ``loss.min``)."""

    key: str
    accessor: str
    direction: Direction

    @property
    def spelled(self) -> str:
        return self.key if self.accessor == "last" else f"{self.key}.{self.accessor}"

    def value(self, record: RunRecord) -> float | None:
        """The trial's objective value, or None when it never logged the metric."""
        summary = record.metrics.get(self.key)
        if summary is not None:
            if self.accessor == "last":
                return summary.last
            return summary.min if self.accessor == "min" else summary.max
        value = record.summary.get(self.key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None

    def missing(self, label: str, record: RunRecord) -> str:
        """``trial 4 logged no 'loss'; it logged: acc, val_loss``."""
        logged = sorted(
            k for k in [*record.metrics, *record.summary]
            if not k.startswith(("system/", "sys/", "labkeep."))
        )  # fmt: skip
        said = ", ".join(dict.fromkeys(logged)) if logged else "nothing"
        return f"{label} logged no {self.key!r}; it logged: {said}"


def pareto_front(values: Sequence[tuple[float, ...]], directions: Sequence[str]) -> list[int]:
    """The positions in ``values`` that no other point dominates (no worse in every
    objective and better in one): Optuna's definition of a multi-objective study's best
    trials. Equal points are all kept."""
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    keyed = [tuple(s * v for s, v in zip(signs, point, strict=True)) for point in values]
    front = []
    for i, a in enumerate(keyed):
        dominated = any(
            all(x <= y for x, y in zip(b, a, strict=True)) and b != a
            for j, b in enumerate(keyed)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def parse_objective(text: str, direction: Direction) -> Objective:
    """``loss`` (its last value), ``loss.min`` or ``acc.max``."""
    key = text.strip()
    if not key:
        raise InvalidInputError(f"--{direction} needs a metric name, such as loss")
    head, _, tail = key.rpartition(".")
    if head and tail in _ACCESSORS:
        return Objective(head, tail, direction)
    return Objective(key, "last", direction)
