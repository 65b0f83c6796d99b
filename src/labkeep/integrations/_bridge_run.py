"""The labkeep run a bridged tool's calls go to, and the config overrides ``labkeep run`` set.

Under ``labkeep run`` the first bridged call attaches to the runner's run (``labkeep.init()``
reads it from the environment); in a plain process it is the active run, or a new one.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

from labkeep._api import bridge_run

if TYPE_CHECKING:
    from labkeep._run import Run

_log = logging.getLogger(__name__)
_warned: set[str] = set()


def not_recorded(call: str, exc: Exception) -> None:
    """Say once per call site that a value the tool took is not in the labkeep run (a type
    labkeep refuses, say): the script goes on exactly as with the tool alone."""
    if call not in _warned:
        _warned.add(call)
        _log.warning("%s: not recorded in the labkeep run: %s", call, exc)


#: Child runs started for a tool's nested runs (``mlflow.start_run(nested=True)``), innermost
#: last: the calls go to the innermost one until the tool ends it.
_nested: list[Run] = []


def bridged_run() -> Run:
    """The run to record into: the innermost nested run, else the active one, else one
    ``labkeep.init()`` starts or attaches."""
    while _nested:
        child = _nested[-1]
        if not child.finished:
            return child
        _nested.pop()
    return bridge_run()


def start_nested(name: str | None) -> Run:
    """Start a child run of the run being recorded into, and record into it from now on."""
    from labkeep._api import init

    child = init(parent=bridged_run(), name=name or None)
    _nested.append(child)
    return child


def end_nested(child: Run, status: str | None) -> None:
    """Finish a child run of :func:`start_nested` (``status``: a labkeep status, or None for
    completed); the calls go to its parent again."""
    if not child.finished:
        child.finish(status)
    if child in _nested:
        _nested.remove(child)


def update_params(values: dict[str, Any], call: str) -> None:
    """Record a tool's params; a value labkeep cannot store as it is (an object in a W&B
    config, say) is kept as its ``str``, as MLflow keeps every param, and said once."""
    from labkeep.errors import LabkeepError

    run = bridged_run()
    try:
        run.config.update(values)
        return
    except LabkeepError:
        pass
    for key, value in values.items():
        try:
            run.config.update({key: value})
        except LabkeepError as exc:
            not_recorded(call, exc)
            try:
                run.config.update({key: str(value)})
            except LabkeepError:
                continue


def config_overrides() -> dict[str, Any]:
    """Values ``labkeep run NAME=VALUE`` gives the keys of a tool's config (``wandb.init``)."""
    from labkeep.runner._bootstrap import ENV_BRIDGE_CONFIG

    raw = os.environ.get(ENV_BRIDGE_CONFIG)
    if not raw:
        return {}
    values = json.loads(raw)
    return values if isinstance(values, dict) else {}


def params_of(config: Any) -> dict[str, Any]:
    """A tool's config as a plain dict: a dict, an argparse Namespace, or an object's vars."""
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    if hasattr(config, "as_dict"):
        return dict(config.as_dict())
    if hasattr(config, "__dict__"):
        return {k: v for k, v in vars(config).items() if not k.startswith("_")}
    return dict(config)
