"""``import labkeep`` stays cheap: no heavy library is loaded until it is needed."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_python

HEAVY = (
    "sqlalchemy", "alembic", "numpy", "pandas", "fastapi", "rich", "click", "psycopg", "optuna",
    "keras", "jax", "torch", "lightning", "pytorch_lightning", "transformers",
)  # fmt: skip


def _loaded_after(code: str, cwd: Path) -> list[str]:
    probe = f"""
import json, sys
{code}
heavy = {HEAVY!r}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}})))
"""
    result = run_python(probe, cwd=cwd)
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_import_labkeep_loads_no_heavy_library(tmp_path: Path) -> None:
    assert _loaded_after("import labkeep", tmp_path) == []


def test_search_spaces_load_no_optimizer(tmp_path: Path) -> None:
    code = (
        "import labkeep\n"
        "space = {'x': labkeep.uniform(-2, 2), 'lr': labkeep.loguniform(1e-5, 1e-1),\n"
        "         'n': labkeep.intrange(2, 8), 'opt': labkeep.choice('adam', 'sgd')}\n"
        "assert callable(labkeep.sweep)"
    )
    assert _loaded_after(code, tmp_path) == []


def test_logging_to_an_existing_store_needs_no_sqlalchemy(tmp_path: Path) -> None:
    """The write path talks DB-API: a short run into an existing store skips SQLAlchemy."""
    first = run_python(
        "import labkeep\nlabkeep.init(store='s').log({'x': 1.0})\nlabkeep.finish()", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    code = """
import labkeep
with labkeep.init(store="s", config={"lr": 0.1}) as run:
    for i in range(100):
        run.log({"loss": 1.0 / (i + 1)})
    run.summary["best"] = 0.01
"""
    loaded = _loaded_after(code, tmp_path)
    assert "sqlalchemy" not in loaded and "alembic" not in loaded


def test_listing_runs_with_a_query_needs_no_sqlalchemy_rich_or_asyncio(tmp_path: Path) -> None:
    """``labkeep runs --where … --sort …`` reads through DB-API and prints a plain table:
    the most typed command imports neither SQLAlchemy, rich nor asyncio."""
    code = """
import labkeep
with labkeep.init(store="s", config={"lr": 0.1}) as run:
    run.log({"loss": 0.5})
"""
    first = run_python(code, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    probe = """
import json, sys
from labkeep.cli._main import cli
argv = ["--store", "s", "runs", "--where", "loss < 1 and lr > 0.01 and 'x' not in tags",
        "--sort", "-loss, name"]
try:
    cli.main(argv, prog_name="labkeep")
except SystemExit as exc:
    assert not exc.code, exc.code
wanted = ("sqlalchemy", "alembic", "rich", "asyncio")
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(wanted))))
"""
    result = run_python(probe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[1].split()[0] == "1", result.stdout  # the run, under the header
    assert json.loads(lines[-1]) == []


def test_naming_the_model_functions_loads_no_framework(tmp_path: Path) -> None:
    """``labkeep.load_model`` and ``run.log_model`` import skops, scikit-learn or
    cloudpickle only when a model is saved or loaded."""
    code = (
        "import sys, labkeep\n"
        "labkeep.load_model, labkeep.get_model_info, labkeep.ModelInfo\n"
        "assert not {'sklearn', 'skops', 'cloudpickle'} & {m.split('.')[0] for m in sys.modules}"
    )
    assert _loaded_after(code, tmp_path) == []
