"""Which MLflow artifact locations the importer reads as local directories."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from labkeep.integrations._mlflow import _local_path


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/srv/mlruns/1/abc/artifacts", "/srv/mlruns/1/abc/artifacts"),
        ("mlruns/1/abc/artifacts", "mlruns/1/abc/artifacts"),
        ("file:///srv/ml%20runs/1/artifacts", "/srv/ml runs/1/artifacts"),
        # MLflow writes this form too (``file:`` and one slash); it is not a relative path.
        ("file:/srv/mlruns/1/artifacts", "/srv/mlruns/1/artifacts"),
    ],
)
def test_local_locations(uri: str, path: str) -> None:
    assert _local_path(uri) == Path(path)


@pytest.mark.parametrize(
    "uri", ["s3://bucket/1/artifacts", "mlflow-artifacts:/1/abc/artifacts", "dbfs:/x", "runs:/a/b"]
)
def test_remote_locations(uri: str) -> None:
    assert _local_path(uri) is None
