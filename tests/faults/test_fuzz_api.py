"""Fuzz of the REST API through a real uvicorn server: odd path segments, query values and
bodies on every route get a 2xx, 3xx or 4xx with a JSON error, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labkeep
from conftest import LiveServer

NUMBERS = st.sampled_from(
    [
        "0",
        "1",
        "-1",
        "2",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
        "1" * 5000,
        "1e23",
        "1e400",
        "nan",
        "inf",
        "-inf",
        "true",
        "",
    ]
)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
#: Path segments: numbers, odd ones sent as they are (%00, %ff, .. included), and any text
#: percent-encoded as a client would send it.
SEGMENTS = st.one_of(
    NUMBERS,
    st.sampled_from(["last", "..", "%00", "%ff", "%2e%2e", "[/x]", "a" * 64, "x/y", "%", "~"]),
    TEXT.map(quote),
)
#: Routes with {} where a drawn path segment goes.
GET_ROUTES = [
    "/api/v1/experiments",
    "/api/v1/runs",
    "/api/v1/runs/{}",
    "/api/v1/compare",
    "/api/v1/runs/{}/metrics/{}/history",
    "/api/v1/runs/{}/output",
    "/api/v1/runs/{}/snapshot",
    "/api/v1/runs/{}/code",
    "/api/v1/runs/{}/code/{}",
    "/api/v1/runs/{}/diff",
    "/api/v1/runs/{}/packages",
    "/api/v1/runs/{}/artifacts",
    "/api/v1/runs/{}/artifacts/{}",
    "/api/v1/store/journal-position/{}",
    "/api/v1/store/blobs/{}",
    "/api/v1/store/resolve",
    "/api/v1/store/runs",
    "/api/v1/store/search",
    "/api/v1/store/history/{}",
    "/api/v1/store/snapshot/{}",
    "/api/v1/store/output/{}",
    "/api/v1/store/metric-keys/{}",
    "/api/v1/store/experiments",
    "/api/v1/store/running",
]
QUERY_NAMES = [
    "ref",
    "runs",
    "keys",
    "key",
    "where",
    "sort",
    "experiment",
    "limit",
    "offset",
    "deleted",
    "include_deleted",
    "deleted_only",
    "parent_uuid",
    "points",
    "x",
    "x_min",
    "x_max",
    "since",
    "after",
    "tail",
    "optional",
    "format",
    "download",
]
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([2**63, -(2**63) - 1, 10**30]),
        st.floats(allow_nan=False, allow_infinity=False),
        TEXT,
        st.sampled_from(["\x00", "\ud800", "a\udcffb", "[/x]", "k" * 300]),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
#: Write routes, each with bodies shaped roughly like what it takes.
WRITE_ROUTES: list[tuple[str, str, list[str]]] = [
    ("POST", "/api/v1/runs/{}/tags", ["add", "remove"]),
    ("PUT", "/api/v1/runs/{}/notes", ["notes"]),
    ("DELETE", "/api/v1/runs/{}", []),
    ("POST", "/api/v1/runs/{}/restore", []),
    ("POST", "/api/v1/store/records", ["numbers"]),
    ("POST", "/api/v1/store/mark-killed", ["numbers", "end_times"]),
    ("POST", "/api/v1/store/tags", ["number", "add", "remove"]),
    ("POST", "/api/v1/store/notes", ["number", "notes"]),
    ("POST", "/api/v1/store/deleted", ["numbers", "deleted"]),
    ("POST", "/api/v1/store/purge", ["numbers"]),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    store = tmp_path_factory.mktemp("fuzz-api") / "store"
    for name in ("first", "[/second]"):
        with labkeep.init("e", name=name, store=store, system_metrics=0) as run:
            run.config.update({"lr": 0.1})
            run.log({"loss": 0.5}, step=0)
            run.log({"loss": 0.25}, step=1)
    with LiveServer(store) as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def path_of(template: str, segments: list[str]) -> str:
    parts = iter(segments)
    return template.format(*(next(parts) for _ in range(template.count("{}"))))


def assert_no_server_error(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if 400 <= response.status_code < 500 and response.request.method != "HEAD":
        assert response.json()["error"], f"{what}: {response.text[:300]}"


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    template=st.sampled_from(GET_ROUTES),
    segments=st.lists(SEGMENTS, min_size=2, max_size=2),
    query=st.dictionaries(
        st.sampled_from(QUERY_NAMES), st.one_of(NUMBERS, TEXT, SEGMENTS), max_size=4
    ),
    method=st.sampled_from(["GET", "HEAD"]),
)
def test_reads_never_answer_500(
    http: httpx.Client, template: str, segments: list[str], query: dict[str, str], method: str
) -> None:
    path = path_of(template, segments)
    response = http.request(method, path, params=query)
    assert_no_server_error(response, f"{method} {path} {query!r}")


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(WRITE_ROUTES),
    ref=st.one_of(st.sampled_from(["1", "2", "last"]), SEGMENTS),
    body=st.data(),
)
def test_writes_never_answer_500(
    http: httpx.Client, route: tuple[str, str, list[str]], ref: str, body: st.DataObject
) -> None:
    method, template, fields = route
    keys = st.sampled_from([*fields, "other"]) if fields else st.just("other")
    drawn: Any = body.draw(
        st.one_of(st.dictionaries(keys, JSON_VALUES, max_size=4), JSON_VALUES), label="body"
    )
    path = path_of(template, [ref])
    response = http.request(method, path, content=json.dumps(drawn).encode(), headers=JSON_TYPE)
    assert_no_server_error(response, f"{method} {path} {drawn!r}")


JSON_TYPE = {"content-type": "application/json"}


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.just(b'{"writer": "w", "position": 1}'),
    ),
    media_type=st.sampled_from(
        ["application/json", "application/x-labkeep-batch", "text/plain", ""]
    ),
)
def test_batches_that_are_not_batches_never_answer_500(
    http: httpx.Client, body: bytes, media_type: str
) -> None:
    response = http.post("/api/v1/store/apply", content=body, headers={"content-type": media_type})
    assert_no_server_error(response, f"apply {media_type} {body[:80]!r}")


def valid_batch(run_uuid: str) -> dict[str, Any]:
    """The JSON form of a batch that starts, logs to and finishes a run."""
    return {
        "run_uuid": run_uuid,
        "writer": f"w-{run_uuid}",
        "position": 100,
        "start": {"uuid": run_uuid, "experiment": "e", "name": "n", "start_time": 1.0},
        "params": {"lr": 0.1},
        "summary": {"best": 1},
        "tags_added": ["t"],
        "tags_removed": [],
        "notes": "x",
        "artifacts": [],
        "finish": {"status": "completed", "end_time": 2.0, "error": None, "exit_code": 0},
        "heartbeat": 1.5,
        "snapshot": None,
        "snapshot_add": {},
        "output": [["stdout", 1.0, "hi"]],
        "metrics": {},
    }


FIELDS = [
    ("run_uuid",),
    ("writer",),
    ("position",),
    ("start",),
    ("start", "uuid"),
    ("start", "experiment"),
    ("start", "name"),
    ("start", "start_time"),
    ("start", "pid"),
    ("start", "parent_uuid"),
    ("start", "notes"),
    ("params",),
    ("params", "lr"),
    ("summary",),
    ("summary", "best"),
    ("tags_added",),
    ("tags_removed",),
    ("notes",),
    ("artifacts",),
    ("finish",),
    ("finish", "status"),
    ("finish", "end_time"),
    ("finish", "error"),
    ("finish", "exit_code"),
    ("heartbeat",),
    ("snapshot",),
    ("snapshot_add",),
    ("output",),
    ("metrics",),
]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    changes=st.lists(st.tuples(st.sampled_from(FIELDS), JSON_VALUES), min_size=1, max_size=3),
    run_uuid=st.uuids().map(str),
)
def test_batches_with_one_odd_field_never_answer_500(
    http: httpx.Client, changes: list[tuple[tuple[str, ...], Any]], run_uuid: str
) -> None:
    batch = valid_batch(run_uuid)
    for path, value in changes:
        target = batch
        for part in path[:-1]:
            target = target[part] if isinstance(target.get(part), dict) else {}
        target[path[-1]] = value
    response = http.post("/api/v1/store/apply", content=json.dumps(batch), headers=JSON_TYPE)
    assert_no_server_error(response, f"apply {changes!r}")


def test_the_store_still_answers_after_the_fuzz(http: httpx.Client, tmp_path: Path) -> None:
    assert http.get("/api/v1/health").status_code == 200
    assert http.get("/api/v1/runs").status_code == 200
