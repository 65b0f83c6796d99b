"""What ``labkeep sweep show`` reports: a sweep's trials sorted by the objective, its best
trial and the importance of each searched flag (Optuna's evaluators)."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkeep.entities import RunStatus
from labkeep.sweep._optimizer import pareto_front
from labkeep.sweep._space import optuna_params
from labkeep.sweep._spec import (
    PRUNED_KEY,
    SweepSpec,
    get_sweep,
    sweep_trials,
    trial_params,
)

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep.entities import RunRecord

_log = logging.getLogger("labkeep")


@dataclass(frozen=True)
class TrialRow:
    """One trial: its run, its index in the sweep, the values it was given and its
    objective value (None when it failed, was cut short, or logged no objective)."""

    record: RunRecord
    index: int | None
    params: dict[str, Any]
    value: float | None
    #: Every objective's value when the sweep has several (None when one is missing).
    values: tuple[float, ...] | None = None

    @property
    def status(self) -> str:
        """The run's status, or ``pruned`` for a trial the pruner stopped."""
        if PRUNED_KEY in self.record.summary:
            return "pruned"
        return self.record.info.status.value


@dataclass(frozen=True)
class SweepReport:
    sweep: RunRecord
    spec: SweepSpec
    trials: list[TrialRow]
    importances: dict[str, float] = field(default_factory=dict)
    #: With several objectives: the trials on the Pareto front, in the order of ``trials``.
    front: list[TrialRow] = field(default_factory=list)

    @property
    def best(self) -> TrialRow | None:
        """The best trial; None with several objectives (see :attr:`front`)."""
        if self.spec.multi_objective:
            return None
        return self.trials[0] if self.trials and self.trials[0].value is not None else None

    @property
    def completed(self) -> int:
        return sum(1 for t in self.trials if t.value is not None)


def sweep_report(client: Client, ref: str | int, *, importances: bool = True) -> SweepReport:
    """Sweep ``ref``'s trials, best first (by its objective and direction); without
    ``importances`` it leaves them out (they cost a model fit; see :func:`param_importances`)."""
    record, spec = get_sweep(client, ref)
    objectives = spec.objective_specs()
    rows = []
    for trial in sweep_trials(client, record):
        found = []
        if objectives and trial.info.status is RunStatus.COMPLETED:
            found = [o.value(trial) for o in objectives]
        value = found[0] if found else None
        values = None
        if spec.multi_objective and found and None not in found:
            values = tuple(v for v in found if v is not None)
        elif spec.multi_objective:
            value = None
        index = trial.summary.get("labkeep.trial")
        params = trial_params(trial) or {k: trial.params.get(k) for k in spec.spelled}
        rows.append(
            TrialRow(trial, index if isinstance(index, int) else None, params, value, values)
        )
    sign = -1.0 if spec.direction == "maximize" else 1.0
    rows.sort(
        key=lambda r: (r.value is None, sign * r.value if r.value is not None else 0.0,
                       r.record.info.number)
    )  # fmt: skip
    if spec.multi_objective:
        scored = [r for r in rows if r.values is not None]
        on_front = pareto_front(
            [r.values for r in scored if r.values], [d for _, d in spec.objectives]
        )
        front = [scored[i] for i in on_front]
        return SweepReport(record, spec, rows, {}, front)
    return SweepReport(record, spec, rows, param_importances(spec, rows) if importances else {})


def param_importances(spec: SweepSpec, rows: list[TrialRow]) -> dict[str, float]:
    """How much each searched flag moved the objective; empty below three finished trials or
    with a single searched flag (nothing to compare)."""
    scored = [r for r in rows if r.value is not None]
    if len(spec.space) < 2 or len(scored) < 3 or importlib.util.find_spec("optuna") is None:
        return {}
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = spec.distributions()
    distributions = {k: d.to_optuna() for k, d in space.items()}
    study = optuna.create_study(
        direction="maximize" if spec.direction == "maximize" else "minimize"
    )
    for row in scored:
        try:
            study.add_trial(
                optuna.trial.create_trial(
                    params=optuna_params(space, row.params),
                    distributions=distributions,
                    value=row.value,
                )
            )
        except ValueError:
            continue  # a value outside the space (the space was edited): leave it out
    # Seeded, so that the same trials always report the same importances.
    evaluator: Any = (
        optuna.importance.FanovaImportanceEvaluator(seed=0)
        if importlib.util.find_spec("sklearn") is not None
        else optuna.importance.PedAnovaImportanceEvaluator()
    )
    try:
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (RuntimeError, ValueError) as exc:
        _log.info("parameter importances could not be computed: %s", exc)
        return {}
