"""Parsing: each construct's tree, and errors with carets and suggestions."""

from __future__ import annotations

import re

import pytest

from labkeep.errors import InvalidInputError
from labkeep.query import (
    And,
    Compare,
    Field,
    HasKey,
    HasTag,
    In,
    KeyCatalog,
    Match,
    Not,
    Or,
    QueryError,
    parse_query,
    parse_sort,
    resolve,
)
from labkeep.query._nodes import Span, alias_attribute

NOW = 1_700_000_000.0


def root(text: str) -> object:
    return parse_query(text, now=NOW).root


def field_of(node: object) -> Field:
    assert isinstance(node, Compare | In | Match)
    return node.field


def test_comparison_of_a_param() -> None:
    node = root("params.lr >= 1e-3")
    assert node == Compare(Field("param", "lr", span=Span(0, 9)), ">=", 0.001, Span(0, 17))


def test_literal_on_the_left_is_flipped() -> None:
    node = root("0.1 < params.lr")
    assert isinstance(node, Compare)
    assert (node.field.key, node.op, node.value) == ("lr", ">", 0.1)


def test_chained_comparison_becomes_and() -> None:
    node = root("0.1 < lr <= 1")
    assert isinstance(node, And)
    assert [(c.op, c.value) for c in node.items if isinstance(c, Compare)] == [
        (">", 0.1),
        ("<=", 1),
    ]


def test_boolean_logic_flattens_and_keeps_not() -> None:
    node = root("a == 1 and (b == 2 and c == 3) or not d == 4")
    assert isinstance(node, Or)
    first, second = node.items
    assert isinstance(first, And) and len(first.items) == 3
    assert isinstance(second, Not)


@pytest.mark.parametrize(
    ("text", "source", "key", "accessor"),
    [
        ("metrics.loss < 1", "metric", "loss", "last"),
        ("metrics.loss.min < 1", "metric", "loss", "min"),
        ("metrics.loss.max < 1", "metric", "loss", "max"),
        ("metrics.loss.count < 1", "metric", "loss", "count"),
        ("metrics.loss.step < 1", "metric", "loss", "step"),
        ("metrics.loss.last < 1", "metric", "loss", "last"),
        ("metrics['val/loss'] < 1", "metric", "val/loss", "last"),
        ("metrics['val/loss'].min < 1", "metric", "val/loss", "min"),
        ("metrics['min'] < 1", "metric", "min", "last"),
        ("metrics.train.loss < 1", "metric", "train.loss", "last"),
        ("params['my key'] == 1", "param", "my key", "last"),
        ('params["it\'s"] == 1', "param", "it's", "last"),
        ("params.optimizer.lr == 1", "param", "optimizer.lr", "last"),
        ("params.optimizer['beta 1'] == 1", "param", "optimizer.beta 1", "last"),
        ("summary.acc > 1", "summary", "acc", "last"),
        ("git.commit == 'abc'", "snapshot", "git.commit", "last"),
        ("git.dirty == True", "snapshot", "git.dirty", "last"),
        ("status == 'failed'", "attr", "status", "last"),
        ("user == 'ann'", "attr", "user", "last"),
        ("lr == 1", "name", "lr", "last"),
        ("optimizer.lr == 1", "name", "optimizer.lr", "last"),
    ],
)
def test_field_forms(text: str, source: str, key: str, accessor: str) -> None:
    f = field_of(root(text))
    assert (f.source, f.key, f.accessor) == (source, key, accessor)


def test_in_lists_tags_and_keys() -> None:
    assert root("params.opt in ['adam', 'sgd', None]") == In(
        Field("param", "opt", span=Span(0, 10)), ("adam", "sgd", None), False, Span(0, 35)
    )
    node = root("number not in (1, 2)")
    assert isinstance(node, In) and node.negated and node.values == (1, 2)
    assert root("'baseline' in tags") == HasTag("baseline", False, Span(0, 18))
    assert root("'x' not in tags") == HasTag("x", True, Span(0, 15))
    assert root("'lr' in params") == HasKey("param", "lr", False, Span(0, 14))
    assert root("'loss' not in metrics") == HasKey("metric", "loss", True, Span(0, 21))


@pytest.mark.parametrize(
    ("text", "kind", "pattern", "negated"),
    [
        ("name.startswith('res')", "startswith", "res", False),
        ("name.endswith('-b')", "endswith", "-b", False),
        ("name.contains('net')", "contains", "net", False),
        ("'net' in name", "contains", "net", False),
        ("'net' not in name", "contains", "net", True),
        ("name.like('res%')", "like", "res%", False),
        ("name.matches('^r.s')", "regex", "^r.s", False),
        ("params.opt.startswith('ad')", "startswith", "ad", False),
    ],
)
def test_string_tests(text: str, kind: str, pattern: str, negated: bool) -> None:
    node = root(text)
    assert isinstance(node, Match)
    assert (node.kind, node.pattern, node.negated) == (kind, pattern, negated)


def test_is_none_and_negative_numbers() -> None:
    assert root("params.x is None") == Compare(
        Field("param", "x", span=Span(0, 8)), "==", None, Span(0, 16)
    )
    node = root("params.x > -2.5")
    assert isinstance(node, Compare) and node.value == -2.5


def test_dates_and_durations_become_seconds() -> None:
    node = root("started > '2h ago'")
    assert isinstance(node, Compare) and node.value == NOW - 7200
    node = root("started < '1970-01-02T00:00:00Z'")
    assert isinstance(node, Compare) and node.value == 86400.0
    node = root("duration > '1h30m'")
    assert isinstance(node, Compare) and node.value == 5400.0
    node = root("duration > 90")
    assert isinstance(node, Compare) and node.value == 90.0


def test_query_keeps_stripped_text() -> None:
    assert parse_query("  lr > 1 \n", now=NOW).text == "lr > 1"


def test_multiline_query_in_parentheses() -> None:
    node = root("(lr > 1\n and loss < 2)")
    assert isinstance(node, And)


def test_query_error_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError):
        parse_query("lr >")


def caret(text: str) -> tuple[str, str]:
    """The error's headline and the marked part of the expression."""
    with pytest.raises(QueryError) as info:
        parse_query(text, now=NOW)
    lines = str(info.value).split("\n")
    assert len(lines) == 3, str(info.value)
    assert lines[1] == "  " + text.strip().split("\n")[0] or "\n" in text
    start = lines[2].index("^")
    marked = lines[1][start : start + lines[2].count("^")]
    return lines[0], marked


@pytest.mark.parametrize(
    ("text", "headline", "marked"),
    [
        ("status > 3", "status can only be compared with == or != (or in)", "status"),
        ("status == 'faild'", "unknown status 'faild'; did you mean 'failed'?", "'faild'"),
        ("name < 5", "name is a string; it cannot be compared with a number", "5"),
        ("number == 'x'", "number is a number", "'x'"),
        ("started > 'tomorrow'", "not a date: 'tomorrow'", "'tomorrow'"),
        ("duration > '5 parsecs'", "not a duration: '5 parsecs'", "'5 parsecs'"),
        ("metrics.loss < 'low'", "metrics are numbers", "'low'"),
        ("metrics.loss == None", "metrics are numbers", "None"),
        ("tags == 'x'", "tags is a set of strings", "tags"),
        ("lr = 0.1", "syntax error", "="),
        ("lr > 0.1 AND loss < 1", "syntax error", "AND"),
        ("metrics.val/loss < 0.3", "arithmetic is not supported", "metrics.val/loss"),
        ("len(name) > 3", "function calls are not supported in a comparison", "len(name)"),
        ("name.upper() == 'X'", "function calls are not supported in a comparison", "name.upper()"),
        (
            "name.startswit('r')",
            "unknown string test .startswit(); did you mean .startswith()?",
            "name.startswit('r')",
        ),
        ("name.matches('(')", "invalid regular expression", "'('"),
        ("metrics.loss.startswith('a')", "metrics.loss is a number, not a string", "metrics.loss"),
        ("started.startswith('2024')", "started is not a string", "started"),
        ("lr", "a key on its own is not a test", "lr"),
        ("lr > 1 and 3", "a value on its own is not a test", "3"),
        ("lr < loss", "comparing two keys is not supported", "lr < loss"),
        ("1 < 2", "one side of a comparison must be a key", "1 < 2"),
        ("lr in []", "the list after `in` is empty", "[]"),
        ("lr == [1]", "a list goes only after `in`", "[1]"),
        ("params.lr < None", "None can only be compared with == or !=", "None"),
        ("lr is 3", "`is` only goes with None", "3"),
        ("params == 1", "params needs a key", "params"),
        ("params[1] == 1", "a key in brackets must be a quoted string", "1"),
        ("param.lr == 1", "unknown name 'param'; did you mean params?", "param"),
        ("name.first == 'x'", "name is a run attribute and has no part 'first'", "name.first"),
        ("lr == 10**30", "arithmetic is not supported", "10**30"),
        ("lr == 100000000000000000000", "the number is too large", "100000000000000000000"),
        ("name == '\\x00'", "strings cannot contain NUL characters", "'\\x00'"),
        ("name == '\\ud800'", "the string is not valid Unicode", "'\\ud800'"),
        ("lambda: 1", "lambda is not supported in a query", "lambda: 1"),
        ("'é' == name and x ==", "syntax error", ""),
        ("'héllo' == lr < ", "syntax error", ""),
    ],
)
def test_errors_point_at_the_problem(text: str, headline: str, marked: str) -> None:
    head, under = caret(text)
    assert head.startswith(headline)
    if marked:
        assert under == marked


def test_caret_counts_characters_not_bytes() -> None:
    _, under = caret("'ünïcödé' == name and status > 1")
    assert under == "status"


def test_caret_lands_on_the_right_line() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("(lr > 1 and\n status > 2)")
    assert str(info.value).split("\n")[1:] == ["   status > 2)", "   ^^^^^^"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 10_001])
def test_empty_or_huge_queries_are_refused(text: str) -> None:
    with pytest.raises(QueryError):
        parse_query(text)


def test_deep_nesting_is_refused_cleanly() -> None:
    with pytest.raises(QueryError):
        parse_query("not " * 3000 + "lr > 1")


def test_non_string_query_is_refused() -> None:
    with pytest.raises(QueryError, match="must be a string"):
        parse_query(3)  # type: ignore[arg-type]


def test_sql_habits_get_hints() -> None:
    with pytest.raises(QueryError, match=re.escape("write and / or instead of && / ||")):
        parse_query("lr > 1 && loss < 1")
    with pytest.raises(QueryError, match="compare with ==, not ="):
        parse_query("status = 'failed'")


# -- resolution ------------------------------------------------------------------------------

CATALOG = KeyCatalog.of(
    params=["lr", "optimizer", "both"], metrics=["loss", "both"], summaries=["acc"]
)


def test_bare_names_resolve_to_params_then_metrics() -> None:
    node = resolve(parse_query("lr > 1 and loss < 2 and loss.min < 1"), CATALOG).root
    assert isinstance(node, And)
    fields = [field_of(i) for i in node.items]
    assert [(f.source, f.key, f.accessor) for f in fields] == [
        ("param", "lr", "last"),
        ("metric", "loss", "last"),
        ("metric", "loss", "min"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("both > 1", "'both' is both a param and a metric; write params.both or metrics.both"),
        ("lrr > 1", "unknown name 'lrr': not a param, metric or attribute; did you mean 'lr'?"),
        ("statuss == 'x'", "did you mean 'status'?"),
        ("acc > 1", "unknown name 'acc': it is a summary key; write summary.acc"),
        ("params.optimiser == 'x'", "unknown param 'optimiser'; did you mean params.optimizer?"),
        ("metrics.lr < 1", "unknown metric 'lr'; it is in params: params.lr"),
        ("summary.zzz < 1", "unknown summary key 'zzz'; no run has it"),
        ("loss == 'x'", "metrics are numbers; metrics.loss cannot be compared with a string"),
        ("loss.startswith('x')", "metrics.loss is a number, not a string"),
    ],
)
def test_resolution_errors(text: str, message: str) -> None:
    with pytest.raises(QueryError) as info:
        resolve(parse_query(text), CATALOG)
    assert message in str(info.value).split("\n")[0]


def test_bare_names_need_a_catalog() -> None:
    with pytest.raises(QueryError, match="needs the store's keys"):
        resolve(parse_query("lr > 1"), None)


def test_explicit_keys_pass_without_a_catalog() -> None:
    query = parse_query("params.anything > 1")
    assert resolve(query, None) is query


def test_attribute_alias_is_configurable() -> None:
    from labkeep.query._nodes import ALIASES

    default = ALIASES.aliases["git.branch"]
    alias_attribute("git.branch", "param", "_git.branch")
    try:
        field = field_of(root("git.branch == 'main'"))
        assert (field.source, field.key) == ("param", "_git.branch")
    finally:
        ALIASES.aliases["git.branch"] = default
    with pytest.raises(ValueError, match="dotted identifiers"):
        alias_attribute("git.x", "snapshot", "git.x'); drop table runs; --")
    with pytest.raises(ValueError, match="cannot alias"):
        alias_attribute("status", "param", "x")


# -- sort specifications ---------------------------------------------------------------------


def test_sort_spec_forms() -> None:
    spec = parse_sort("-loss, params['my key'] desc, metrics.acc.max asc, +started")
    assert [(k.field.source, k.field.key, k.field.accessor, k.descending) for k in spec.keys] == [
        ("name", "loss", "last", True),
        ("param", "my key", "last", True),
        ("metric", "acc", "max", False),
        ("attr", "started", "last", False),
    ]
    assert [k.field.key for k in parse_sort(["a", "b, c"]).keys] == ["a", "b", "c"]
    assert [k.field.key for k in parse_sort("params['x,y']").keys] == ["x,y"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [("", "empty"), ("tags", "cannot be sorted by tags"), ("1", "must be a param")],
)
def test_bad_sort_specs(spec: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_sort(spec)
