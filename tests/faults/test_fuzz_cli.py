"""Fuzz of the command line's arguments: every invocation succeeds or ends in one line
(``labkeep: …``, or click's usage ``Error: …``) with a non-zero exit, never another exception
or a traceback. Runs in-process through click's CliRunner on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labkeep
from labkeep.cli._main import cli

HUGE_INTS = st.sampled_from(
    [
        "0",
        "-1",
        "1",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
        "1" * 40,
        "1" * 5000,
        "1e23",
        "1e400",
        "nan",
        "inf",
        "-inf",
        "0x10",
        "²",
        "٣",
        "1_000",
    ]
)
PATHS = st.sampled_from(
    [
        "/proc/nope/x",
        "/proc/x.db",
        "/etc/passwd/x",
        "/",
        "",
        ".",
        "..",
        "/dev/null",
        "/dev/null/x",
        "~nobody/x",
    ]
)
MARKUP = st.sampled_from(
    ["[bold red]x[/bold red]", "[/x]", "[link](javascript:alert(1))", "[", "]", "[/]"]
)
#: A command line cannot carry a NUL byte (argv is C strings), so none is drawn.
TOKENS = st.one_of(
    HUGE_INTS,
    PATHS,
    MARKUP,
    st.sampled_from(["last", "1", "x", "-", "--", "-n", "--all", "--json", "--help"]),
    st.text(st.characters(exclude_characters="\x00"), max_size=30),
    st.text(alphabet="0123456789-+.e", min_size=1, max_size=25),
)
#: Each command and the options it takes; what it is given is drawn from TOKENS. `run`,
#: `rerun`, `stop`, `server`, `ui`, `sync` and `env --venv` start processes or servers and
#: are left to their own tests.
COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("runs",): (
        "-e",
        "-w",
        "-s",
        "-n",
        "--limit",
        "--all",
        "--deleted",
        "--params",
        "--metrics",
    ),
    ("show",): ("--json", "--snapshot", "--all"),
    ("models",): ("-e", "-n", "--limit", "--json"),
    ("compare",): ("-w", "-e", "-s", "-n", "-c", "--all", "--csv", "--json", "--markdown"),
    ("diff",): ("--code", "--flags", "--output", "--path"),
    ("tag",): ("-r",),
    ("note",): ("-a",),
    ("delete",): (),
    ("restore",): (),
    ("purge",): ("--all", "-y"),
    ("checkout",): (),
    ("env",): ("--requirements",),
    ("db", "path"): (),
}


@st.composite
def invocations(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    options = COMMANDS[command]
    args: list[str] = list(command)
    for _ in range(draw(st.integers(0, 5))):
        if options and draw(st.booleans()):
            args.append(draw(st.sampled_from(options)))
        args.append(draw(TOKENS))
    return args


def assert_clean(result: Result, args: list[str]) -> None:
    """Success, or a usage error, or one ``labkeep:`` line; never an uncaught exception."""
    where = f"labkeep {args!r}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{where} raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.output, where
    if result.exit_code == 0:
        return
    lines = result.stderr.strip("\n").split("\n")  # user text may hold \x85 or \u2028
    assert lines != [""], f"{where} failed silently"
    if lines[0].startswith(("Usage: ", "Error: ")) or lines[-1] == "Aborted!":
        return  # click: a usage error, or a confirmation answered no
    assert lines[0].startswith("labkeep: "), f"{where}: {result.stderr!r}"
    # One line; a malformed query adds itself and a caret under the fault, and a message
    # that quotes a path or text with a line break in it has more.
    caret = len(lines) == 3 and set(lines[2].strip()) == {"^"}
    quoted_break = any("\n" in arg or "\r" in arg for arg in args)
    assert len(lines) == 1 or caret or quoted_break, f"{where}: {result.stderr!r}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("fuzz-cli") / "store"
    for notes in ("[bold]first[/bold]", "[/x] second"):
        with labkeep.init("[e]", name="[/n]", notes=notes, store=store, system_metrics=0) as run:
            run.config.update({"lr": 0.1, "[k]": "[/v]"})
            run.log({"loss": 0.5, "acc": 0.25}, step=0)
            run.tags.add("[t]")
    return store


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=invocations())
def test_cli_arguments_end_in_success_or_one_line(
    store: Path, tmp_path: Path, args: list[str]
) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--store", str(store), *args], input="n\n", catch_exceptions=True)
    assert_clean(result, args)


@settings(max_examples=40, deadline=None)
@given(uri=st.one_of(PATHS, st.sampled_from(["sqlite:////proc/x.db", "sqlite:///", "ftp://x"])))
def test_store_options_end_in_success_or_one_line(uri: str) -> None:
    result = CliRunner().invoke(cli, ["--store", uri, "runs"], catch_exceptions=True)
    assert_clean(result, ["--store", uri, "runs"])


@settings(max_examples=60, deadline=None)
@given(
    command=st.sampled_from(["checkout", "rerun --dir"]),
    path=st.one_of(PATHS, st.text(st.characters(exclude_characters="\x00"))),
)
def test_target_directories_end_in_success_or_one_line(command: str, path: str) -> None:
    """Where no directory can be made, the command says so before it looks for the run."""
    args = [*command.split(), "nope", path]
    result = CliRunner().invoke(cli, ["--store", "store", *args], catch_exceptions=True)
    assert_clean(result, args)
