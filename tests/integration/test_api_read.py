"""The read API against a real uvicorn server on a temporary SQLite store filled by real
``labkeep.init()`` runs (``tests/browser/populate_store.py`` in a subprocess)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from labkeep.server._auth import Token, TokenSet

POPULATE = Path(__file__).parents[1] / "browser" / "populate_store.py"
SRC = Path(__file__).parents[2] / "src"
XSS_NAME = "<script>alert(1)</script>"


def populate(store: Path, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "train.py"
    script.write_text(POPULATE.read_text())
    env = {**os.environ, "PYTHONPATH": str(SRC), "LABKEEP_HOME": str(store)}
    subprocess.run(
        [sys.executable, str(script), str(store), str(workdir)],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api_read")
    populate(root / "store", root / "work")
    return root / "store"


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[LiveServer]:
    with LiveServer(store) as live:
        yield live


@pytest.fixture()
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as client:
        yield client


def numbers(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["number"] for row in response.json()["runs"]]


# -- runs ----------------------------------------------------------------------------------------


def test_experiments_with_run_counts(api: httpx.Client) -> None:
    assert api.get("/experiments").json() == [
        {"name": "mnist", "runs": 4},
        {"name": "<b>xss</b>", "runs": 1},
    ]


def test_runs_page_shape(api: httpx.Client) -> None:
    response = api.get("/runs")
    body = response.json()
    assert body["total"] == 5
    assert [r["number"] for r in body["runs"]] == [5, 4, 3, 2, 1]
    first = body["runs"][-1]
    assert first["name"] == "lr-0.1"
    assert first["status"] == "completed"
    assert first["params"] == {"lr": 0.1, "optimizer": "sgd", "batch_size": 32, "model.depth": 2}
    assert first["metrics"]["loss"]["count"] == 60
    assert first["metrics"]["loss"]["last_step"] == 59
    assert first["summary"] == {"best_acc": 1.0}
    assert first["tags"] == ["baseline"]
    assert {a["path"] for a in first["artifacts"]} >= {"confusion.png", "predictions.csv"}
    assert body["keys"]["params"] == ["batch_size", "lr", "model.depth", "note", "optimizer"]
    assert "sys/cpu_percent" in body["keys"]["metrics"]
    assert "val/loss" in body["keys"]["metrics"]
    assert body["keys"]["summary"] == ["best_acc"]
    assert "app;dur=" in response.headers["server-timing"]


def test_failed_run_row_carries_the_traceback_and_nan(api: httpx.Client) -> None:
    row = api.get("/runs/diverged").json()
    assert row["status"] == "failed"
    assert "FloatingPointError: loss is NaN at step 1" in row["error"]
    assert row["metrics"]["loss"]["last"] == "nan"
    assert row["metrics"]["loss"]["min"] == 1.0


def test_filter_with_the_query_language(api: httpx.Client) -> None:
    assert numbers(
        api.get("/runs", params={"where": "params.lr < 0.05 and optimizer == 'adam'"})
    ) == [3, 2]
    assert numbers(api.get("/runs", params={"where": "'baseline' in tags"})) == [1]
    assert numbers(api.get("/runs", params={"where": "status == 'failed'"})) == [4]
    assert numbers(api.get("/runs", params={"where": "metrics['val/loss'].min < 0.01"})) == [1]


def test_sort_by_metric_param_and_attribute(api: httpx.Client) -> None:
    by_loss = numbers(
        api.get("/runs", params={"where": "experiment == 'mnist'", "sort": "metrics.loss"})
    )
    assert by_loss[:3] == [1, 2, 3]  # the NaN of run 4 is not a number: it sorts last
    assert numbers(api.get("/runs", params={"sort": "-params.lr", "experiment": "mnist"})) == [
        4,
        1,
        2,
        3,
    ]
    assert numbers(api.get("/runs", params={"sort": "name"})) == [5, 4, 3, 2, 1]
    assert numbers(api.get("/runs", params={"sort": "-name"})) == [1, 2, 3, 4, 5]


def test_pages_and_total(api: httpx.Client) -> None:
    body = api.get("/runs", params={"limit": 2, "offset": 2}).json()
    assert body["total"] == 5
    assert [r["number"] for r in body["runs"]] == [3, 2]
    assert api.get("/runs", params={"limit": 2, "offset": 4}).json()["runs"][0]["number"] == 1
    assert api.get("/runs", params={"limit": 0}).status_code == 400  # validation: one-line error


def test_experiment_filter(api: httpx.Client) -> None:
    body = api.get("/runs", params={"experiment": "<b>xss</b>"}).json()
    assert body["total"] == 1
    assert body["runs"][0]["name"] == XSS_NAME


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("lrr > 0.1", "did you mean 'lr'"),
        ("loss <", ""),
        ("params.lr >> 2", ""),
        ("__import__('os').system('true')", ""),
    ],
)
def test_query_errors_are_400_with_the_message(
    api: httpx.Client, where: str, fragment: str
) -> None:
    response = api.get("/runs", params={"where": where})
    assert response.status_code == 400
    message = response.json()["error"]
    assert fragment in message
    assert "^" in message  # the caret line under the culprit
    assert where.strip() in message


def test_sort_errors_are_400(api: httpx.Client) -> None:
    response = api.get("/runs", params={"sort": "-nosuchkey"})
    assert response.status_code == 400
    assert "nosuchkey" in response.json()["error"]


def test_get_run_by_number_name_uuid_and_last(api: httpx.Client) -> None:
    row = api.get("/runs/1").json()
    assert row["name"] == "lr-0.1"
    assert row["reproduces_uuid"] is None
    assert row["parent_uuid"] is None
    assert api.get("/runs/lr-0.01").json()["number"] == 2
    assert api.get(f"/runs/{row['uuid'][:8]}").json()["number"] == 1
    assert api.get("/runs/last").json()["number"] == 5


def test_unknown_run_is_404_with_a_message(api: httpx.Client) -> None:
    response = api.get("/runs/999")
    assert response.status_code == 404
    assert "no run '999'" in response.json()["error"]
    assert api.get("/runs/999/output").status_code == 404
    assert api.get("/runs/999/metrics/loss/history").status_code == 404


def test_a_name_several_runs_have_is_409_on_every_route(tmp_path: Path) -> None:
    """An ambiguous run reference answers 409 with the runs' numbers, from the read API's
    routes as from the others (one mapping of errors to statuses for all)."""
    import labkeep

    store = tmp_path / "store"
    for _ in range(2):
        with labkeep.init("twins", name="twin", store=store) as run:
            run.log({"loss": 0.5})
    with LiveServer(store) as live:
        for path in ("/api/v1/runs/twin", "/api/v1/runs/twin/metrics/loss/history"):
            response = httpx.get(f"{live.url}{path}", timeout=30)
            assert response.status_code == 409, path
            assert response.json()["error"] == "2 runs are named 'twin' (1, 2): use a number"


# -- histories and output ---------------------------------------------------------------------------


def test_history_shape(api: httpx.Client) -> None:
    body = api.get("/runs/2/metrics/loss/history").json()
    assert body["key"] == "loss"
    assert body["total"] == 60
    assert body["downsampled"] is False
    assert body["steps"] == list(range(60))
    assert len(body["values"]) == len(body["times"]) == 60
    assert body["values"][30] > body["values"][29] + 0.2  # the spike at step 30


def test_history_of_keys_with_slashes(api: httpx.Client) -> None:
    assert api.get("/runs/1/metrics/val/loss/history").json()["total"] == 60
    assert api.get("/runs/1/metrics/sys%2Fcpu_percent/history").json()["steps"] == [0, 1, 2, 3, 4]


def test_history_since_and_time_axis(api: httpx.Client) -> None:
    body = api.get("/runs/2/metrics/loss/history", params={"since": 55, "x": "time"}).json()
    assert body["total"] == 60
    assert body["steps"] == [55, 56, 57, 58, 59]
    assert body["times"] == sorted(body["times"])


def test_history_non_finite_values_are_strings(api: httpx.Client) -> None:
    body = api.get("/runs/4/metrics/loss/history").json()
    assert body["values"] == [1.0, "nan"]


def test_history_of_a_missing_key_is_404(api: httpx.Client) -> None:
    response = api.get("/runs/1/metrics/nope/history")
    assert response.status_code == 404
    assert "no metric 'nope'" in response.json()["error"]


def test_output_lines_after_and_tail(api: httpx.Client) -> None:
    body = api.get("/runs/1/output").json()
    texts = [line["text"] for line in body["lines"]]
    assert texts == ["training with lr=0.1", "epoch 1 done", "epoch 2 done", "a warning on stderr"]
    assert [line["stream"] for line in body["lines"]][-1] == "stderr"
    assert body["last_id"] == body["lines"][-1]["id"]
    after = api.get("/runs/1/output", params={"after": body["lines"][1]["id"]}).json()
    assert [line["text"] for line in after["lines"]] == texts[2:]
    tail = api.get("/runs/1/output", params={"tail": 1}).json()
    assert [line["text"] for line in tail["lines"]] == ["a warning on stderr"]
    nothing = api.get("/runs/1/output", params={"after": body["last_id"]}).json()
    assert nothing == {"lines": [], "last_id": body["last_id"]}


# -- snapshot and code ---------------------------------------------------------------------------------


def test_snapshot_code_and_highlighting(api: httpx.Client) -> None:
    snapshot = api.get("/runs/1/snapshot").json()
    assert snapshot["host"]["entry_point"].endswith("train.py")
    files = api.get("/runs/1/code").json()
    assert "train.py" in [f["path"] for f in files]
    text = api.get("/runs/1/code/train.py")
    assert text.headers["content-type"].startswith("text/plain")
    assert "XSS_NAME" in text.text
    tokens = api.get("/runs/1/code/train.py", params={"format": "tokens"}).json()
    assert tokens["language"] == "Python"
    assert "".join(t[1] for t in tokens["tokens"]) == text.text
    assert ["kn", "import"] in tokens["tokens"]
    assert api.get("/runs/1/code/../store/labkeep.db").status_code == 404
    assert api.get("/runs/1/code/nope.py").status_code == 404
    assert isinstance(api.get("/runs/1/packages").json(), dict | list)
    assert api.get("/runs/1/diff").json()["tokens"] == []  # not a git repository


def test_run_without_snapshot(api: httpx.Client) -> None:
    response = api.get("/runs/2/snapshot")
    assert response.status_code == 404
    assert "no snapshot" in response.json()["error"]
    assert api.get("/runs/2/snapshot", params={"optional": "true"}).json() is None
    assert api.get("/runs/2/code").status_code == 404


# -- artifacts -------------------------------------------------------------------------------------------


def test_artifact_list_with_preview_kinds(api: httpx.Client) -> None:
    listed = {a["path"]: a for a in api.get("/runs/1/artifacts").json()}
    assert {p: a["preview"] for p, a in listed.items()} == {
        "confusion.png": "image",
        "notes.txt": "text",
        "predictions.csv": "csv",
        "report.html": "html",
        "train.ipynb": "notebook",
    }
    assert listed["confusion.png"]["media_type"] == "image/png"


def test_artifact_content_media_type_and_sandbox(api: httpx.Client, store: Path) -> None:
    png = api.get("/runs/1/artifacts/confusion.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content == (store.parent / "work" / "confusion.png").read_bytes()
    html = api.get("/runs/1/artifacts/report.html")
    assert html.headers["content-type"].startswith("text/html")
    assert "sandbox" in html.headers["content-security-policy"]
    assert html.headers["x-content-type-options"] == "nosniff"
    assert html.headers["content-disposition"].startswith("inline")
    download = api.get("/runs/1/artifacts/report.html", params={"download": "true"})
    assert download.headers["content-disposition"].startswith("attachment")


def test_artifact_range_requests(api: httpx.Client) -> None:
    whole = api.get("/runs/1/artifacts/predictions.csv").content
    part = api.get("/runs/1/artifacts/predictions.csv", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206
    assert part.content == whole[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(whole)}"


def raw_get(server: LiveServer, path: str) -> tuple[int, bytes]:
    """A request with the path sent exactly as written (httpx would resolve '..')."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "path",
    [
        "../../../../../../etc/passwd",
        "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "../store/labkeep.db",
        "confusion.png/../../../labkeep.db",
        "..\\..\\..\\etc\\passwd",
    ],
)
def test_artifact_paths_cannot_leave_the_run(server: LiveServer, path: str) -> None:
    status, body = raw_get(server, f"/api/v1/runs/1/artifacts/{path}")
    assert status == 404
    assert b"root:" not in body
    assert b"SQLite format" not in body
    status, body = raw_get(server, f"/api/v1/runs/1/code/{path}")
    assert status == 404
    assert b"root:" not in body


def test_artifact_of_another_run_is_not_served(api: httpx.Client) -> None:
    response = api.get("/runs/2/artifacts/confusion.png")
    assert response.status_code == 404
    assert "run 2 has no artifact 'confusion.png'" in response.json()["error"]


def test_notebook_renders_to_html_without_scripts(api: httpx.Client) -> None:
    response = api.get("/runs/1/artifacts/train.ipynb", params={"render": "html"})
    assert response.status_code == 200, response.text
    assert "Training notebook" in response.text
    assert "accuracy 0.93" in response.text
    assert "<script" not in response.text.lower()
    csp = response.headers["content-security-policy"]
    assert csp.startswith("sandbox;")
    assert "script-src" not in csp  # default-src 'none' forbids scripts
    assert api.get("/runs/1/artifacts/notes.txt", params={"render": "html"}).status_code == 404


# -- compare ---------------------------------------------------------------------------------------


def test_compare_params_and_differences(api: httpx.Client) -> None:
    body = api.get("/compare", params={"runs": "1,2,3"}).json()
    assert [r["number"] for r in body["runs"]] == [1, 2, 3]
    assert body["params"]["keys"] == ["batch_size", "lr", "model.depth", "optimizer"]
    assert body["params"]["differ"] == ["lr", "model.depth", "optimizer"]
    assert "loss" in body["metrics"]["keys"]
    only = api.get("/compare", params={"runs": "1,lr-0.01", "keys": "loss,acc"}).json()
    assert only["metrics"]["keys"] == ["acc", "loss"]
    assert api.get("/compare", params={"runs": "1,4"}).json()["params"]["differ"] == [
        "batch_size",
        "lr",
        "model.depth",
    ]


def test_compare_errors(api: httpx.Client) -> None:
    assert api.get("/compare", params={"runs": ""}).status_code == 400
    missing = api.get("/compare", params={"runs": "1,999"})
    assert missing.status_code == 404


# -- edits ---------------------------------------------------------------------------------------------


def test_edit_tags(api: httpx.Client) -> None:
    added = api.post("/runs/3/tags", json={"add": ["keep", "best"]})
    assert added.json() == {"number": 3, "tags": ["best", "keep"]}
    assert numbers(api.get("/runs", params={"where": "'keep' in tags"})) == [3]
    removed = api.post("/runs/3/tags", json={"remove": ["keep", "best"]})
    assert removed.json()["tags"] == []
    bad = api.post("/runs/3/tags", json={"add": [" "]})
    assert bad.status_code == 400
    assert "empty tag" in bad.json()["error"]


def test_edit_notes(api: httpx.Client) -> None:
    assert api.put("/runs/3/notes", json={"notes": "looks good"}).status_code == 200
    assert api.get("/runs/3").json()["notes"] == "looks good"
    assert api.put("/runs/3/notes", json={}).status_code == 400


def test_delete_and_restore(api: httpx.Client) -> None:
    assert api.delete("/runs/2").json() == {"number": 2, "deleted": True}
    assert 2 not in numbers(api.get("/runs"))
    assert numbers(api.get("/runs", params={"deleted": "true"})) == [2]
    assert api.get("/runs/2").json()["deleted"] is True
    assert api.post("/runs/2/restore").json() == {"number": 2, "deleted": False}
    assert 2 in numbers(api.get("/runs"))
    assert numbers(api.get("/runs", params={"deleted": "true"})) == []


# -- auth --------------------------------------------------------------------------------------------


def test_reads_need_a_token_and_read_only_tokens_cannot_write(store: Path) -> None:
    tokens = TokenSet([Token("r" * 20, False, "reader"), Token("w" * 20, True, "writer")])
    with LiveServer(store, tokens=tokens) as live:
        base = f"{live.url}/api/v1"
        assert httpx.get(f"{base}/runs").status_code == 401
        reader = {"Authorization": f"Bearer {'r' * 20}"}
        assert httpx.get(f"{base}/runs", headers=reader).json()["total"] == 5
        assert httpx.get(f"{base}/runs/1/artifacts/notes.txt", headers=reader).status_code == 200
        assert (
            httpx.post(f"{base}/runs/1/tags", json={"add": ["x"]}, headers=reader).status_code
            == 403
        )
        assert httpx.delete(f"{base}/runs/1", headers=reader).status_code == 403
        cookie = {"labkeep_token": "w" * 20}
        response = httpx.post(f"{base}/runs/1/tags", json={"add": ["x"]}, cookies=cookie)
        assert response.status_code == 200
        httpx.post(f"{base}/runs/1/tags", json={"remove": ["x"]}, cookies=cookie)


def test_read_only_server_refuses_edits(store: Path) -> None:
    with LiveServer(store, read_only=True) as live:
        assert httpx.put(f"{live.url}/api/v1/runs/1/notes", json={"notes": "x"}).status_code == 403
        assert httpx.get(f"{live.url}/api/v1/runs/1").status_code == 200


def test_empty_store_lists_nothing(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "empty") as live:
        body = httpx.get(f"{live.url}/api/v1/runs").json()
        assert body == {
            "total": 0,
            "offset": 0,
            "limit": 50,
            "runs": [],
            "keys": {"params": [], "metrics": [], "summary": []},
        }
        assert httpx.get(f"{live.url}/api/v1/experiments").json() == []
        assert httpx.get(f"{live.url}/api/v1/runs/1").status_code == 404
    assert not (tmp_path / "empty" / "labkeep.db").exists()
