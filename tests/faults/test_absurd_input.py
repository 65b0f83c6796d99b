"""Absurd input from the command line, the logging API and the REST API: each one is a
one-line LabkeepError (a non-zero exit from the CLI) or a 4xx, never a traceback or a 500."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest

import labkeep
from conftest import LiveServer, child_env, run_python
from labkeep.errors import InvalidInputError, NotFoundError

HUGE = "99999999999999999999999"  # past any 64-bit integer
FORTY_DIGITS = "1234567890" * 4
HOSTILE_NOTES = "[link](javascript:alert(1)) [bold red]loud[/bold red] [/oops] [dim]"


def labkeep_cli(store: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line in a child process, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=child_env(COLUMNS="200", NO_COLOR="1"),
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labkeep: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one run (number 1) that kept its code, with hostile notes and argv."""
    directory = tmp_path_factory.mktemp("absurd")
    store = directory / "store"
    code = f"""
        import labkeep
        with labkeep.init(experiment="e", name="[/x]", store={str(store)!r}) as run:
            run.log({{"loss": 0.5}}, step=0)
            run.notes = {HOSTILE_NOTES!r}
    """
    done = run_python(code, cwd=directory, args=("names=[a,b]", "[/x]"))
    assert done.returncode == 0, done.stderr
    return store


# -- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize("ref", [FORTY_DIGITS, HUGE, "1" * 5000, "²", "٣"])
def test_show_of_a_number_no_store_can_hold_is_not_found(store: Path, ref: str) -> None:
    assert_one_line_error(labkeep_cli(store, "show", ref), "no run")


def test_runs_with_a_limit_past_64_bits_lists_every_run(store: Path) -> None:
    result = labkeep_cli(store, "runs", "--limit", HUGE)
    assert result.returncode == 0, result.stderr
    assert "[/x]" in result.stdout


def test_runs_with_a_float_limit_is_a_usage_error(store: Path) -> None:
    result = labkeep_cli(store, "runs", "--limit", "1e23")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--limit" in result.stderr


def test_compare_with_a_limit_past_64_bits(store: Path) -> None:
    result = labkeep_cli(store, "compare", "--limit", HUGE, "--json")
    assert result.returncode == 0, result.stderr


def test_checkout_where_no_directory_can_be_made(store: Path) -> None:
    assert_one_line_error(labkeep_cli(store, "checkout", "1", "/proc/nope/x"), "/proc/nope/x")


def test_checkout_below_a_file(store: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert_one_line_error(
        labkeep_cli(store, "checkout", "1", str(tmp_path / "file" / "x")), "not a directory"
    )


@pytest.mark.parametrize(
    "uri", ["sqlite:////proc/x.db", "/proc/nope/store", "sqlite:////proc/nope/x.db"]
)
def test_a_store_that_cannot_be_created_is_an_error(uri: str) -> None:
    assert_one_line_error(labkeep_cli(uri, "runs"), "/proc")


def test_a_store_below_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert_one_line_error(labkeep_cli(tmp_path / "file" / "store", "runs"), "not a directory")


def test_a_store_not_created_yet_in_a_writable_place_has_no_runs(tmp_path: Path) -> None:
    result = labkeep_cli(tmp_path / "new" / "store", "runs")
    assert result.returncode == 0, result.stderr
    assert "No runs yet" in result.stdout
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", ["note", "tag", "show"])
def test_bytes_that_are_not_utf8_on_the_command_line(store: Path, command: str) -> None:
    """A shell passes any bytes; Python reads invalid UTF-8 as lone surrogates, which no
    database takes as text."""
    args: list[str | bytes] = [command, b"1" if command != "show" else b"\xff"]
    if command != "show":
        args.append(b"caf\xe9")
    result = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert_one_line_error(result, "surrogate")


def test_show_prints_notes_and_names_as_written(store: Path) -> None:
    result = labkeep_cli(store, "show", "1")
    assert result.returncode == 0, result.stderr
    assert "[link](javascript:alert(1))" in result.stdout
    assert "[bold red]loud[/bold red] [/oops] [dim]" in result.stdout
    assert "1  [/x]" in result.stdout


def test_a_printed_step_past_64_bits_does_not_fail_the_run(tmp_path: Path) -> None:
    """``labkeep run`` reads scalars from the script's output: a step no store can hold
    drops those scalars, and the run and its other scalars go on."""
    script = tmp_path / "train.py"
    script.write_text(
        f"print('loss: 0.5')\nprint('step {HUGE}')\nprint('loss: 0.25')\n"
        f"print('acc: 0.75 (step {HUGE}0)')\nprint('step 7')\nprint('loss: 0.125')\n"
    )
    store = tmp_path / "store"
    result = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), "run", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_env(LABKEEP_CAPTURE="0", LABKEEP_SYSTEM_METRICS="0"),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    view = labkeep.get_run("last", store=store)
    assert view.status is labkeep.RunStatus.COMPLETED
    assert list(view.history("loss")["step"]) == [0, 7]
    assert "acc" not in view.metrics


def test_show_snapshot_prints_what_the_run_recorded_as_written(store: Path) -> None:
    result = labkeep_cli(store, "show", "--snapshot", "1")
    assert result.returncode == 0, result.stderr
    assert "names=[a,b] [/x]" in result.stdout
    assert "snapshot of run 1  [/x]" in result.stdout


def test_diff_prints_keys_and_values_as_written(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for value in ("[/a]", "[bold]b"):
        with labkeep.init(store=store, config={"[k]": value}, capture=False, system_metrics=0):
            pass
    result = labkeep_cli(store, "diff", "1", "2", "--flags")
    assert result.returncode == 0, result.stderr
    assert "[k]" in result.stdout
    assert "[/a]" in result.stdout and "[bold]b" in result.stdout


# -- the logging API ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "step", "fragment"),
    [
        (5, None, "dict"),
        ([("x", 1.0)], None, "dict"),
        ("loss", None, "dict"),
        (None, None, "dict"),
        ({"x": 10**400}, None, "'x'"),
        ({"x": 1.0, "y": 10**400}, None, "'y'"),
        ({"x": Fraction(10**400)}, None, "'x'"),
        ({"x": 1.0}, 2**70, "step"),
        ({"x": 1.0, "y": 2.0}, -(2**70), "step"),
        ({"x": 1.0}, 2**63, "step"),
        ({"\ud800": 1.0}, None, "key"),
    ],
)
def test_log_refuses_absurd_input_with_one_line(
    tmp_path: Path, data: Any, step: Any, fragment: str
) -> None:
    with labkeep.init(store=tmp_path / "s", capture=False, system_metrics=0) as run:
        with pytest.raises(InvalidInputError) as info:
            run.log(data, step=step)
        message = str(info.value)
        assert fragment in message and "\n" not in message
        run.log({"ok": 1.0})  # the run goes on
        run.log({"ok": 2.0, "ok2": 3.0})
    view = labkeep.get_run("last", store=tmp_path / "s")
    assert view.metrics["ok"].count == 2
    assert view.status is labkeep.RunStatus.COMPLETED


def test_log_takes_the_largest_and_smallest_64_bit_steps(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s", capture=False, system_metrics=0) as run:
        run.log({"x": 1.0}, step=2**63 - 1)
        run.log({"x": 2.0, "y": 1.0}, step=-(2**63))
    view = labkeep.get_run("last", store=tmp_path / "s")
    assert sorted(view.history("x")["step"]) == [-(2**63), 2**63 - 1]


def test_log_after_the_largest_step_names_the_step(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s", capture=False, system_metrics=0) as run:
        run.log({"x": 1.0}, step=2**63 - 1)
        with pytest.raises(InvalidInputError, match="step"):
            run.log({"x": 2.0})


def test_config_with_a_lone_surrogate_is_refused(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s", capture=False, system_metrics=0) as run:
        with pytest.raises(InvalidInputError, match="'bad'"):
            run.config["bad"] = "a\ud800b"
        with pytest.raises(InvalidInputError, match="key"):
            run.summary["\udcff"] = 1


@pytest.mark.parametrize("ref", [10**30, -(10**30), FORTY_DIGITS, "²"])
def test_get_run_of_a_number_no_store_can_hold_is_not_found(store: Path, ref: Any) -> None:
    with pytest.raises(NotFoundError, match="no run"):
        labkeep.get_run(ref, store=store)


def test_get_run_of_a_number_too_long_to_print_in_a_store_with_no_runs(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no run"):
        labkeep.get_run(10**5000, store=tmp_path / "empty")


@pytest.mark.parametrize(
    ("limit", "offset"), [(None, 10**30), (10**30, 0), (None, -1), (-5, 0), (None, 2.5)]
)
def test_runs_with_absurd_paging_lists_nothing_or_says_why(
    store: Path, limit: Any, offset: Any
) -> None:
    try:
        listed = labkeep.runs(limit=limit, offset=offset, store=store)
    except InvalidInputError as exc:
        assert "whole number" in str(exc)
    else:
        assert len(listed) in (0, len(labkeep.runs(store=store)))


# -- the REST API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(store: Path) -> Any:
    with LiveServer(store) as live:
        yield live


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/runs/{HUGE}",
        f"/api/v1/runs/{HUGE}/output",
        f"/api/v1/runs/{HUGE}/metrics/loss/history",
        f"/api/v1/runs/{HUGE}/snapshot",
        f"/api/v1/runs/{HUGE}/artifacts",
        f"/api/v1/store/resolve?ref={HUGE}",
        f"/api/v1/compare?runs={HUGE}",
        f"/api/v1/runs?offset={HUGE}",
        f"/api/v1/store/runs?offset={HUGE}",
        f"/api/v1/store/runs?experiment=e&limit={HUGE}",
        f"/api/v1/store/search?limit={HUGE}",
        f"/api/v1/store/search?offset={HUGE}",
        f"/api/v1/store/history/{HUGE}?key=loss",
        f"/api/v1/store/snapshot/{HUGE}",
        f"/api/v1/store/output/{HUGE}",
        f"/api/v1/store/output/1?after={HUGE}",
        f"/api/v1/store/output/1?limit={HUGE}",
        f"/api/v1/store/metric-keys/{HUGE}",
        f"/api/v1/runs/1/output?after={HUGE}",
        f"/api/v1/runs/1/metrics/loss/history?since={HUGE}",
        "/api/v1/runs/1/metrics/loss/history?x_min=nan&x_max=inf",
        "/api/v1/runs/1/metrics/loss/history?x_min=1e308&x_max=-1e308",
    ],
)
def test_api_answers_absurd_numbers_with_a_4xx(server: LiveServer, path: str) -> None:
    response = httpx.get(server.url + path, timeout=30)
    assert 400 <= response.status_code < 500 or response.status_code == 200, response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert error and "\n" not in error


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/store/records", {"numbers": [int(HUGE)]}),
        ("/api/v1/store/tags", {"number": int(HUGE), "add": ["x"], "remove": []}),
        ("/api/v1/store/notes", {"number": int(HUGE), "notes": "x"}),
        ("/api/v1/store/deleted", {"numbers": [int(HUGE)], "deleted": True}),
        ("/api/v1/store/purge", {"numbers": [int(HUGE)]}),
    ],
)
def test_api_answers_absurd_numbers_in_bodies_with_a_4xx(
    server: LiveServer, path: str, body: dict[str, Any]
) -> None:
    response = httpx.post(server.url + path, json=body, timeout=30)
    assert 400 <= response.status_code < 500 or response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        b"null",
        b"[]",
        b'{"run_uuid": "u1", "writer": "w1", "position": 1, "start": {"uuid": null, '
        b'"experiment": "e", "name": "", "start_time": 1.0}}',
        b'{"run_uuid": "u2", "writer": "w2", "position": 1, "start": {"uuid": "u2", '
        b'"experiment": "e", "name": "", "start_time": "yesterday"}}',
        b'{"run_uuid": "u3", "writer": "w3", "position": 99999999999999999999999}',
        b'{"run_uuid": "u4", "writer": "w4", "position": 1, "finish": {"status": [], '
        b'"end_time": 1.0}}',
    ],
)
def test_api_refuses_batches_the_store_cannot_apply(server: LiveServer, body: bytes) -> None:
    response = httpx.post(
        server.url + "/api/v1/store/apply",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "\n" not in response.json()["error"]


@pytest.mark.postgres
def test_postgresql_api_answers_numbers_past_its_32_bit_run_numbers_with_a_4xx(
    pg_schema_uri: str,
) -> None:
    """Run numbers are 32-bit in PostgreSQL: 3,000,000,000 is refused or not found there."""
    with labkeep.init(store=pg_schema_uri, capture=False, system_metrics=0) as run:
        run.log({"x": 1.0}, step=2**63 - 1)
    big = 3_000_000_000
    with LiveServer(pg_schema_uri) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        answers = [
            http.get(f"/api/v1/runs/{big}"),
            http.get(f"/api/v1/store/snapshot/{big}"),
            http.get("/api/v1/store/search", params={"limit": 2**61, "offset": 2**61}),
            http.get("/api/v1/runs", params={"offset": 2**61}),
            http.post("/api/v1/store/deleted", json={"numbers": [big], "deleted": True}),
            http.post("/api/v1/store/purge", json={"numbers": [big]}),
            http.post("/api/v1/store/tags", json={"number": big, "add": ["t"]}),
        ]
        for response in answers:
            assert response.status_code < 500, (response.request.url, response.text)
        assert labkeep.get_run("last", store=pg_schema_uri).metrics["x"].last_step == 2**63 - 1
    with pytest.raises(NotFoundError):
        labkeep.get_run(str(big), store=pg_schema_uri)
