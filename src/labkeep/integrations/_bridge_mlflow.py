"""MLflow's fluent API, recorded into the labkeep run.

``log_param(s)`` become params (typed, not stringified), ``log_metric(s)`` metrics at their
step (no step: labkeep's next step), ``set_tag(s)`` and ``start_run(tags=...)`` tags written
``key=value``, ``log_artifact(s)``, ``log_text`` and ``log_dict`` artifacts under their
``artifact_path``. With ``only`` MLflow itself is not called (figures, tables, inputs and
experiment settings are then dropped): ``start_run`` returns a stand-in run, and a ``log_metric`` costs
one ``Run.log`` (microseconds, where MLflow's own takes milliseconds).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from labkeep.errors import LabkeepError
from labkeep.integrations._bridge_run import (
    bridged_run,
    end_nested,
    not_recorded,
    start_nested,
    update_params,
)

if TYPE_CHECKING:
    from labkeep._run import Run


class _StandInRun:
    """What ``mlflow.start_run`` returns when MLflow does not run: ``run.info.run_id`` and a
    context manager that ends the run."""

    def __init__(self, end: Callable[[str], None], name: str | None, experiment_id: str) -> None:
        run_id = uuid.uuid4().hex
        self.info = SimpleNamespace(
            run_id=run_id,
            run_uuid=run_id,
            run_name=name or run_id[:8],
            experiment_id=experiment_id,
            status="RUNNING",
            artifact_uri="",
        )
        self.data = SimpleNamespace(params={}, metrics={}, tags={})
        self._end = end

    def __enter__(self) -> _StandInRun:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        self._end("FAILED" if kind is not None else "FINISHED")


def install(mlflow: ModuleType, *, only: bool) -> None:
    """Replace ``mlflow``'s fluent logging functions by ones that record into labkeep."""
    original = {name: getattr(mlflow, name, None) for name in _NAMES}
    fluent = getattr(getattr(mlflow, "tracking", None), "fluent", None)
    # MLflow's ActiveRun.__exit__ (a ``with mlflow.start_run()`` block) and its atexit hook
    # call the fluent module's end_run, not mlflow.end_run.
    fluent_end_run = getattr(fluent, "end_run", None)
    #: One entry per MLflow run started and not ended, innermost last: its stand-in (only),
    #: and the labkeep child run of a nested one (None for the outermost, the labkeep run).
    stack: list[tuple[Any, Run | None]] = []

    def real(name: str, *args: Any, **kwargs: Any) -> Any:
        function = original[name]
        return None if only or function is None else function(*args, **kwargs)

    def start_run(*args: Any, **kwargs: Any) -> Any:
        started = None if only else real("start_run", *args, **kwargs)
        child = None
        if stack and (kwargs.get("nested") or (len(args) >= 4 and args[3])):
            try:
                child = start_nested(kwargs.get("run_name"))
            except LabkeepError as exc:
                not_recorded("mlflow.start_run(nested=True)", exc)
        tags = kwargs.get("tags")
        if tags:
            try:
                _tag(bridged_run(), tags)
            except LabkeepError as exc:
                not_recorded("mlflow.start_run(tags=...)", exc)
        if only:
            started = _StandInRun(
                end_run, kwargs.get("run_name"), str(kwargs.get("experiment_id") or 0)
            )
        stack.append((started, child))
        return started

    def end_run(status: str = "FINISHED", *args: Any, **kwargs: Any) -> Any:
        if stack:
            _started, child = stack.pop()
            if child is not None:
                end_nested(child, _END_STATUS.get(str(status).upper()))
        return real("end_run", status, *args, **kwargs)

    def active_run() -> Any:
        return (stack[-1][0] if stack else None) if only else real("active_run")

    def log_param(key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        update_params({key: value}, "mlflow.log_param")
        return real("log_param", key, value, *args, **kwargs) if not only else value

    def log_params(params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        update_params(dict(params), "mlflow.log_params")
        return real("log_params", params, *args, **kwargs)

    def log_metric(key: str, value: float, step: int | None = None, *a: Any, **k: Any) -> Any:
        try:
            bridged_run().log({key: value}, step)
        except LabkeepError as exc:
            not_recorded("mlflow.log_metric", exc)
        if not only:
            return original["log_metric"](key, value, step, *a, **k)  # type: ignore[misc]
        return None

    def log_metrics(metrics: dict[str, float], step: int | None = None, *a: Any, **k: Any) -> Any:
        try:
            bridged_run().log(dict(metrics), step)
        except LabkeepError as exc:
            not_recorded("mlflow.log_metrics", exc)
        return real("log_metrics", metrics, step, *a, **k)

    def set_tag(key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            _tag(bridged_run(), {key: value})
        except LabkeepError as exc:
            not_recorded("mlflow.set_tag", exc)
        return real("set_tag", key, value, *args, **kwargs)

    def set_tags(tags: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            _tag(bridged_run(), tags)
        except LabkeepError as exc:
            not_recorded("mlflow.set_tags", exc)
        return real("set_tags", tags, *args, **kwargs)

    def log_artifact(local_path: str, artifact_path: str | None = None, *a: Any, **k: Any) -> Any:
        name = os.path.basename(os.path.normpath(local_path))
        try:
            bridged_run().log_artifact(local_path, _join(artifact_path, name))
        except LabkeepError as exc:
            not_recorded("mlflow.log_artifact", exc)
        return real("log_artifact", local_path, artifact_path, *a, **k)

    def log_artifacts(local_dir: str, artifact_path: str | None = None, *a: Any, **k: Any) -> Any:
        try:
            run = bridged_run()
            for root, _dirs, files in os.walk(local_dir):
                for file in sorted(files):
                    path = os.path.join(root, file)
                    rel = os.path.relpath(path, local_dir).replace(os.sep, "/")
                    run.log_artifact(path, _join(artifact_path, rel))
        except LabkeepError as exc:
            not_recorded("mlflow.log_artifacts", exc)
        return real("log_artifacts", local_dir, artifact_path, *a, **k)

    def log_text(text: str, artifact_file: str, *args: Any, **kwargs: Any) -> Any:
        _log_content(text.encode(), artifact_file)
        return real("log_text", text, artifact_file, *args, **kwargs)

    def log_dict(dictionary: Any, artifact_file: str, *args: Any, **kwargs: Any) -> Any:
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml  # MLflow's own dependency, as it writes YAML there too

            content = yaml.safe_dump(dictionary, default_flow_style=False)
        else:
            import json

            content = json.dumps(dictionary, indent=2, default=str)
        _log_content(content.encode(), artifact_file)
        return real("log_dict", dictionary, artifact_file, *args, **kwargs)

    replacements: dict[str, Callable[..., Any]] = {
        "log_text": log_text,
        "log_dict": log_dict,
        "start_run": start_run,
        "end_run": end_run,
        "active_run": active_run,
        "log_param": log_param,
        "log_params": log_params,
        "log_metric": log_metric,
        "log_metrics": log_metrics,
        "set_tag": set_tag,
        "set_tags": set_tags,
        "log_artifact": log_artifact,
        "log_artifacts": log_artifacts,
    }
    if only:
        # What would make MLflow create its store or reach a server does nothing.
        for name in _WRITE_NOTHING:
            if original.get(name) is not None:
                replacements[name] = _nothing
    for name, function in replacements.items():
        if original.get(name) is not None:
            setattr(mlflow, name, functools.wraps(original[name])(function))  # type: ignore[arg-type]
    if fluent is not None and fluent_end_run is not None:
        fluent.end_run = mlflow.end_run
    started = None if only or original["active_run"] is None else original["active_run"]()
    if started is not None:
        # MLflow was used before the bridge (labkeep.bridge() called late): what its run
        # holds so far is recorded now, and its end_run pops it as the bridge's own.
        stack.append((started, None))
        _catch_up(mlflow, started.info.run_id)


def _catch_up(mlflow: ModuleType, run_id: str) -> None:
    """Record the params, user tags and metric histories an MLflow run already holds."""
    from labkeep.integrations._mlflow import _param_value

    client = mlflow.MlflowClient()
    data = client.get_run(run_id).data
    try:
        run = bridged_run()
        if data.params:
            update_params(
                {k: _param_value(v) for k, v in data.params.items()}, "mlflow (before bridge)"
            )
        tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}
        if tags:
            _tag(run, tags)
        for key in sorted(data.metrics):
            history = client.get_metric_history(run_id, key)
            for point in sorted(history, key=lambda m: (m.timestamp, m.step)):
                run.log({key: point.value}, point.step)
    except LabkeepError as exc:
        not_recorded("mlflow (before bridge)", exc)


#: MLflow's run statuses as labkeep's (``end_run(status=...)``, or a ``with`` block's exit).
_END_STATUS = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "interrupted"}


#: What would make MLflow create its store or reach a server: nothing with ``only``.
_WRITE_NOTHING = (
    "set_experiment", "set_tracking_uri", "autolog", "create_experiment", "log_figure",
    "log_image", "log_table", "log_input", "set_experiment_tag", "set_experiment_tags",
    "delete_tag", "log_outputs",
)  # fmt: skip
_NAMES = (
    "start_run", "end_run", "active_run", "log_param", "log_params", "log_metric",
    "log_metrics", "set_tag", "set_tags", "log_artifact", "log_artifacts", "log_text",
    "log_dict", *_WRITE_NOTHING,
)  # fmt: skip


def _log_content(content: bytes, artifact_file: str) -> None:
    """Store text MLflow would write as ``artifact_file`` as the artifact of that name."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="labkeep-mlflow-") as tmp:
        path = os.path.join(tmp, os.path.basename(artifact_file) or "artifact")
        with open(path, "wb") as f:
            f.write(content)
        try:
            bridged_run().log_artifact(path, artifact_file.strip("/"))
        except LabkeepError as exc:
            not_recorded("mlflow.log_text/log_dict", exc)


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


def _tag(run: Any, tags: dict[str, Any]) -> None:
    run.tags.add(*(f"{key}={value}" for key, value in tags.items()))


def _join(prefix: str | None, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix else name
