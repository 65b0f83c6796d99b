"""The public names, pinned: ``labkeep.__all__`` is the user's API, and each subpackage's
``__all__`` is what the layers above it use, nothing more (tests import private modules).

A name added here is a promise to keep it; a name dropped is a change for its importers."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "labkeep": [
        "Histogram", "Image", "LabkeepError", "MediaItem", "MediaSeries", "MetricSeries",
        "MetricSummary", "ModelInfo", "Run", "RunList", "Table",
        "RunStatus", "RunTags", "RunView", "TrialPruned", "__version__", "active_run", "autolog",
        "choice", "bridge", "config", "finish", "get_model_info", "get_run", "huggingface", "init",
        "intrange", "keras", "lightgbm", "lightning", "load_model", "log",
        "log_artifact", "log_model", "loguniform", "runs", "seed", "summary", "sweep", "uniform",
        "use_input", "xgboost",
        # the model registry and versioned artifacts
        "ArtifactVersion", "ModelVersion", "VersionedArtifact", "delete_alias", "register_model",
        "set_alias", "use_artifact",
    ],
    "labkeep.capture": [
        "IgnoreRules", "Snapshot", "SystemMonitor", "capture_snapshot", "collect_code",
        "collect_git", "fingerprint_input", "list_distributions", "redact_argv",
        "seed_everything",
    ],
    "labkeep.cli": ["main"],
    "labkeep.integrations": [
        "ExportReport", "GuildSource", "ImportReport", "MlflowSource", "SacredSource", "Source",
        "TensorboardSource", "WandbSource", "check_port", "export_runs", "import_runs",
        "require_tensorboard", "start_tensorboard",
    ],
    "labkeep.models": [
        "ModelInfo", "get_model_info", "list_models", "load_input_example", "load_model",
        "log_model", "parse_model_uri",
    ],
    "labkeep.query": [
        "And", "Compare", "CompareOp", "Field", "HasKey", "HasTag", "In", "KeyCatalog",
        "Match", "Node", "Not", "Or", "Query", "QueryError", "Scalar", "SortSpec",
        "filter_records", "like_to_glob", "match_like", "parse_query", "parse_sort", "resolve",
        "resolve_sort", "snapshot_path", "sort_records", "sqlite_regexp", "suggest",
    ],
    "labkeep.repro": [
        "DiffSection", "DriftRow", "KeyTable", "Line", "RunSnapshot", "SnapshotView",
        "VerdictReport", "blocked_message", "check_target", "diff_file", "diff_runs",
        "drift_rows", "execute_rerun", "find_uv", "load_snapshot", "load_snapshot_any",
        "materialise", "no_drift_line", "plan_rerun", "recreate_venv", "requirements_text",
        "snapshot_view", "verdict_report", "verify_rerun",
    ],
    "labkeep.runner": [
        "DETECT_TIMEOUT", "DETECT_TIMEOUT_ENV", "Flag", "FlagSet", "FlagValue", "LaunchResult",
        "LaunchSpec", "SEARCH_FUNCTIONS", "coerce_value", "detect", "launch",
        "parse_assignment", "parse_flag_value", "parse_literal", "prepare_launch",
        "resolve_overrides", "stop_run", "unknown_flag_error",
    ],
    "labkeep.server": ["ServeSettings", "TokenSet", "create_app", "is_loopback", "serve"],
    "labkeep.store": [
        "BlobDirectory", "MetricColumns", "RunFinish", "RunStart", "Store", "StoreLocation",
        "WriteBatch", "file_sha256", "garbage_report_to_json", "implied_total", "locate_store",
        "open_store",
    ],
    "labkeep.store.rest": ["RestStore", "codec"],
    "labkeep.store.sql": ["SqlStore", "check_store", "recover_sqlite", "upgrade_store"],
    "labkeep.sweep": [
        "SweepReport", "SweepResult", "TrialRow", "dask_address", "list_sweeps",
        "param_importances", "parse_opt_flags", "plan_sweep", "plan_wandb_sweep",
        "resume_sweep", "split_assignments", "start_sweep", "stop_sweep", "sweep_report",
    ],
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    assert len(module.__all__) == len(set(module.__all__))


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_every_package_is_pinned() -> None:
    """A new subpackage states its public names here too."""
    from pathlib import Path

    import labkeep

    root = Path(labkeep.__file__).parent
    packages = {
        "labkeep." + ".".join(init.parent.relative_to(root).parts)
        for init in root.rglob("__init__.py")
        if "migrations" not in init.parts
    }
    assert packages - {"labkeep."} == set(PUBLIC) - {"labkeep"}
