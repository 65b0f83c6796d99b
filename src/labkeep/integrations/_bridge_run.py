"""The labkeep run a bridged tool's calls go to, and the config overrides ``labkeep run`` set.

Under ``labkeep run`` the first bridged call attaches to the runner's run (``labkeep.init()``
reads it from the environment); in a plain process it is the active run, or a new one.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labkeep._run import Run

_run: Run | None = None


def bridged_run() -> Run:
    """The run to record into: the active one, else one ``labkeep.init()`` starts or attaches."""
    global _run
    run = _run
    if run is not None and not run.finished:
        return run
    from labkeep._api import active_run, init

    run = active_run()
    if run is None:
        run = init()
    _run = run
    return run


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
