"""The sweep API behind the sweep page: ``GET /api/v1/sweeps/{ref}``.

One answer carries what the page draws: the sweep run, its spec (space, objective,
direction), every trial in the order it ran (params, status, objective value) and the
parameter importances that ``labkeep sweep show`` prints (Optuna's evaluators, from
:func:`labkeep.sweep.param_importances`). The page polls it every second while the sweep
runs, and an importance fit (fANOVA's random forest: tens to hundreds of milliseconds) would
dominate each poll, so importances are kept per set of finished trials and computed again
only when a trial finishes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from labkeep.server._api_read import _client, _json, _LabkeepErrorRoute, _recover
from labkeep.server._auth import require_read

if TYPE_CHECKING:
    from labkeep.sweep import SweepReport

router = APIRouter(route_class=_LabkeepErrorRoute)
read = [Depends(require_read)]

#: Sets of finished trials whose importances are kept (a few sweeps' pages open at once).
IMPORTANCE_CACHE_SIZE = 32


class ImportanceCache:
    """Importances per (sweep, finished trials and their values): a poll that finds no
    newly finished trial reuses the last fit."""

    def __init__(self, size: int = IMPORTANCE_CACHE_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[Any, ...], dict[str, float]] = OrderedDict()

    def get(self, report: SweepReport) -> dict[str, float]:
        from labkeep.sweep import param_importances

        scored = tuple(
            sorted((t.record.info.number, t.value) for t in report.trials if t.value is not None)
        )
        key = (report.sweep.info.uuid, scored)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        importances = param_importances(report.spec, report.trials)
        with self._lock:
            self._kept[key] = importances
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return importances


def _importances(request: Request, report: SweepReport) -> dict[str, float]:
    state = request.app.state
    cache: ImportanceCache | None = getattr(state, "sweep_importances", None)
    if cache is None:
        cache = state.sweep_importances = ImportanceCache()
    return cache.get(report)


@router.get("/sweeps/{ref}", dependencies=read)
def get_sweep(request: Request, ref: str) -> Response:
    """Sweep ``ref`` (a run reference of the sweep run, or ``last``): spec, trials in the
    order they ran, counts, best trial and parameter importances."""
    from labkeep._json import plain, record_as_dict
    from labkeep.sweep import sweep_report

    _recover(request)
    report = sweep_report(_client(request), ref, importances=False)
    spec, summary = report.spec, report.sweep.summary
    best = report.best
    trials = sorted(
        report.trials,
        key=lambda t: (t.index is None, t.index or 0, t.record.info.number),
    )
    body = {
        "sweep": record_as_dict(report.sweep),
        "target": spec.target,
        "objective": spec.objective,
        "direction": spec.direction,
        "optimizer": spec.optimizer,
        "max_trials": spec.max_trials,
        "pruner": spec.pruner,
        "space": spec.space,
        "spelled": spec.spelled,
        "counts": {
            "completed": int(summary.get("trials.completed", 0) or 0),
            "failed": int(summary.get("trials.failed", 0) or 0),
            "pruned": int(summary.get("trials.pruned", 0) or 0),
            "total": spec.max_trials,
        },
        "best": None
        if best is None
        else {"number": best.record.info.number, "value": best.value, "index": best.index},
        "trials": [
            {
                "number": t.record.info.number,
                "index": t.index,
                "name": t.record.info.name,
                "status": t.status,
                "params": t.params,
                "value": t.value,
                "start_time": t.record.info.start_time,
                "end_time": t.record.info.end_time,
            }
            for t in trials
        ],
        "importances": _importances(request, report),
    }
    return _json(plain(body))
