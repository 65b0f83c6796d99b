"""Text to :class:`Query`: Python's own parser (``ast``, never ``eval``), then a walk that
accepts only the constructs of the query language and checks literal types early."""

from __future__ import annotations

import ast
import re
import time
from typing import NoReturn

from labkeep.query._dates import parse_duration, parse_time
from labkeep.query._errors import QueryError, suggest
from labkeep.query._nodes import (
    ALIASES,
    ATTRIBUTES,
    METRIC_ACCESSORS,
    RUN_STATUSES,
    And,
    Compare,
    CompareOp,
    Field,
    HasKey,
    HasTag,
    In,
    Match,
    MatchKind,
    Node,
    Not,
    Or,
    Query,
    Scalar,
    SortKey,
    SortSpec,
    Span,
)

#: Longer queries are refused (a server takes them from anyone).
MAX_QUERY_LENGTH = 10_000
_INT64 = 2**63 - 1

_CONTAINERS = {"params": "param", "metrics": "metric", "summary": "summary"}
_CONTAINER_TYPOS = {
    "param": "params",
    "metric": "metrics",
    "summaries": "summary",
    "config": "params",
}
_STRING_TESTS: dict[str, MatchKind] = {
    "startswith": "startswith",
    "endswith": "endswith",
    "contains": "contains",
    "like": "like",
    "matches": "regex",
}
_OPS: dict[type[ast.cmpop], CompareOp] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_FLIPPED: dict[CompareOp, CompareOp] = {
    "==": "==",
    "!=": "!=",
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
}
_EXAMPLE = "e.g. metrics.loss < 0.2 and params.lr >= 1e-3"
_TESTS_HINT = (
    "the string tests are .startswith('x'), .endswith('x'), .contains('x'), "
    ".like('x%'), .matches('regex')"
)


def parse_query(text: str, *, now: float | None = None) -> Query:
    """Parse a query; relative times such as ``'2h ago'`` count back from ``now``
    (default: the current time). Raises :class:`QueryError`.

    >>> parse_query("metrics.loss < 0.2 and 'baseline' in tags").root
    And(items=(Compare(...), HasTag(...)))
    """
    if not isinstance(text, str):
        raise QueryError(f"a query must be a string, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise QueryError("the query is empty", hint=f"write an expression, {_EXAMPLE}")
    if len(stripped) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    converter = _Converter(stripped, time.time() if now is None else now)
    return Query(stripped, converter.root())


def parse_sort(spec: str | list[str] | tuple[str, ...]) -> SortSpec:
    """Parse a sort specification: keys separated by commas (or given as a list), each a
    field (``metrics.loss``, ``params['my key']``, ``started``, a bare ``loss``), ``-`` in
    front or `` desc`` after for descending.

    >>> [(k.field.key, k.descending) for k in parse_sort("-loss, params.lr").keys]
    [('loss', True), ('lr', False)]
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    text = ", ".join(items)
    keys: list[SortKey] = []
    for item in items:
        if not isinstance(item, str):
            raise QueryError(f"a sort key must be a string, not {type(item).__name__}")
        for part in _split_top_level(item):
            keys.append(_parse_sort_key(part))
    if not keys:
        raise QueryError("the sort specification is empty", hint="write e.g. -metrics.loss")
    return SortSpec(text, tuple(keys))


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are outside quotes and brackets."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    escaped = False
    for ch in text:
        if quote:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _parse_sort_key(item: str) -> SortKey:
    descending = False
    body = item
    lowered = body.lower()
    for suffix, desc in ((" desc", True), (" asc", False)):
        if lowered.endswith(suffix):
            body = body[: -len(suffix)].rstrip()
            descending = desc
            break
    converter = _Converter(body, 0.0)
    node = converter.tree()
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        if isinstance(node.op, ast.USub):
            descending = not descending
        node = node.operand
    field = converter.field(node)
    if field is None:
        converter.fail(
            "a sort key must be a param, metric or attribute", node, hint="e.g. -metrics.loss"
        )
    if field.source == "attr" and ATTRIBUTES[field.key].kind == "tags":
        converter.fail("runs cannot be sorted by tags", node)
    return SortKey(field, descending)


class _Converter:
    def __init__(self, text: str, now: float) -> None:
        self.text = text
        self.now = now
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    # -- positions and errors ---------------------------------------------------------------
    def _offset(self, lineno: int, col_bytes: int) -> int:
        start = self.line_starts[lineno - 1]
        end = self.line_starts[lineno] if lineno < len(self.line_starts) else len(self.text)
        line = self.text[start:end].encode("utf-8")
        return start + len(line[:col_bytes].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> Span:
        lineno = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0)
        end_lineno = getattr(node, "end_lineno", None) or lineno
        end_col = getattr(node, "end_col_offset", None)
        start = self._offset(lineno, col)
        end = self._offset(end_lineno, end_col) if end_col is not None else start + 1
        return Span(start, end)

    def fail(self, problem: str, where: ast.AST | Span, *, hint: str | None = None) -> NoReturn:
        span = where if isinstance(where, Span) else self.span(where)
        raise QueryError(problem, self.text, span.start, span.end, hint=hint)

    # -- entry points -------------------------------------------------------------------------
    def tree(self) -> ast.expr:
        nul = self.text.find("\x00")
        if nul >= 0:
            raise QueryError("the query contains a NUL character", self.text, nul, nul + 1)
        try:
            return ast.parse(self.text, mode="eval").body
        except SyntaxError as exc:
            self._syntax_error(exc)
        except (RecursionError, MemoryError):
            raise QueryError("the query is nested too deeply") from None

    def root(self) -> Node:
        body = self.tree()
        try:
            return self.node(body)
        except RecursionError:
            raise QueryError("the query is nested too deeply") from None

    def _syntax_error(self, exc: SyntaxError) -> NoReturn:
        lineno = min(max(exc.lineno or 1, 1), len(self.line_starts))
        base = self.line_starts[lineno - 1]
        start = base + max((exc.offset or 1) - 1, 0)
        end = start + 1
        if (
            exc.end_offset
            and (exc.end_lineno or lineno) == lineno
            and exc.end_offset > (exc.offset or 0)
        ):
            end = base + exc.end_offset - 1
        message = (exc.msg or "invalid syntax").rstrip(".")
        raise QueryError(
            f"syntax error: {message}", self.text, start, end, hint=self._syntax_hint()
        ) from None

    def _syntax_hint(self) -> str:
        outside = re.sub(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", "''", self.text)
        if "&&" in outside or "||" in outside:
            return "write and / or instead of && / ||"
        if re.search(r"\b(AND|OR|NOT|And|Or|Not)\b", outside):
            return "write and / or / not in lower case"
        if re.search(r"(?<![=!<>])=(?!=)", outside):
            return "compare with ==, not ="
        if re.search(r"!(?!=)", outside):
            return "write not instead of !"
        if re.search(r"\.\s*\w*[/\-:@ ]", outside):
            return "quote keys with odd characters: metrics['val/loss']"
        return _EXAMPLE.replace("e.g.", "a query looks like")

    # -- expressions -------------------------------------------------------------------------
    def node(self, n: ast.expr) -> Node:
        if isinstance(n, ast.BoolOp):
            items: list[Node] = []
            group = And if isinstance(n.op, ast.And) else Or
            for value in n.values:
                item = self.node(value)
                items.extend(item.items if isinstance(item, group) else (item,))
            return And(tuple(items)) if group is And else Or(tuple(items))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
            return Not(self.node(n.operand))
        if isinstance(n, ast.Compare):
            return self.compare(n)
        if isinstance(n, ast.Call):
            return self.call(n)
        if isinstance(n, ast.BinOp):
            self.arithmetic(n)
        if isinstance(n, ast.Name | ast.Attribute | ast.Subscript):
            self.fail(
                "a key on its own is not a test",
                n,
                hint=f"compare it with a value, e.g. {ast.unparse(n)} == True",
            )
        if isinstance(n, ast.Constant | ast.List | ast.Tuple):
            self.fail("a value on its own is not a test", n, hint=_EXAMPLE)
        self.fail(f"{_describe(n)} is not supported in a query", n, hint=_EXAMPLE)

    def arithmetic(self, n: ast.BinOp) -> NoReturn:
        hint = "queries compare keys with values; arithmetic is not supported"
        if isinstance(n.op, ast.Div | ast.Sub) and isinstance(n.left, ast.Attribute | ast.Name):
            key = self.text[self.span(n).start : self.span(n).end]
            head, _, tail = key.partition(".")
            if tail and head in _CONTAINERS:
                hint = f"if {tail!r} is a key, quote it: {head}[{tail!r}]"
        self.fail("arithmetic is not supported", n, hint=hint)

    def compare(self, n: ast.Compare) -> Node:
        operands = [n.left, *n.comparators]
        atoms: list[Node] = []
        for i, op in enumerate(n.ops):
            left, right = operands[i], operands[i + 1]
            start, end = self.span(left).start, self.span(right).end
            atoms.append(self.pair(left, op, right, Span(start, end)))
        return atoms[0] if len(atoms) == 1 else And(tuple(atoms))

    def pair(self, left: ast.expr, op: ast.cmpop, right: ast.expr, span: Span) -> Node:
        if isinstance(op, ast.In | ast.NotIn):
            return self.membership(left, isinstance(op, ast.NotIn), right, span)
        if isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(right, ast.Constant) and right.value is None):
                self.fail("`is` only goes with None", right, hint="compare values with ==")
            field = self.require_field(left)
            value_op: CompareOp = "==" if isinstance(op, ast.Is) else "!="
            return Compare(field, value_op, self.check(field, value_op, None, right), span)
        for operand in (left, right):
            if isinstance(operand, ast.BinOp):
                self.arithmetic(operand)
            if isinstance(operand, ast.Call):
                self.fail(
                    "function calls are not supported in a comparison",
                    operand,
                    hint=f"compare a key with a value; {_TESTS_HINT}",
                )
        cmp = _OPS[type(op)]
        lf, rf = self.field(left), self.field(right)
        if lf is not None and rf is not None:
            self.fail(
                "comparing two keys is not supported",
                Span(span.start, span.end),
                hint="compare a key with a value, e.g. params.lr < 0.1",
            )
        if lf is None and rf is None:
            self.fail(
                "one side of a comparison must be a key",
                Span(span.start, span.end),
                hint="e.g. params.lr < 0.1 or metrics['val/loss'] < 0.2",
            )
        if lf is not None:
            field, literal_node = lf, right
        else:
            assert rf is not None
            field, literal_node, cmp = rf, left, _FLIPPED[cmp]
        value = self.literal(literal_node)
        return Compare(field, cmp, self.check(field, cmp, value, literal_node), span)

    def membership(self, left: ast.expr, negated: bool, right: ast.expr, span: Span) -> Node:
        if isinstance(right, ast.Name) and right.id == "tags":
            tag = self.string(left, "a tag")
            return HasTag(tag, negated, span)
        if isinstance(right, ast.Name) and right.id in _CONTAINERS:
            key = self.string(left, "a key")
            source = _CONTAINERS[right.id]
            assert source in ("param", "metric", "summary")
            return HasKey(source, key, negated, span)  # type: ignore[arg-type]
        if isinstance(right, ast.List | ast.Tuple | ast.Set):
            field = self.require_field(left)
            if not right.elts:
                self.fail("the list after `in` is empty", right)
            values = tuple(self.check(field, "==", self.literal(e), e) for e in right.elts)
            return In(field, values, negated, span)
        target = self.field(right)
        if target is not None:
            pattern = self.string(left, "a string")
            self.check_text_field(target, right)
            return Match(target, "contains", pattern, negated, span)
        self.fail(
            "`in` needs a list, tags, params/metrics/summary, or a text key on its right",
            right,
            hint="e.g. params.optimizer in ['adam', 'sgd'] or 'baseline' in tags",
        )

    def call(self, n: ast.Call) -> Node:
        func = n.func
        if not isinstance(func, ast.Attribute):
            self.fail("function calls are not supported", n, hint=_TESTS_HINT)
        kind = _STRING_TESTS.get(func.attr)
        if kind is None:
            close = suggest(func.attr, _STRING_TESTS)
            hint = f"did you mean .{close}()?" if close else _TESTS_HINT
            self.fail(f"unknown string test .{func.attr}()", n, hint=hint)
        field = self.field(func.value)
        if field is None:
            self.fail(f".{func.attr}() must follow a key", func.value, hint=_TESTS_HINT)
        if n.keywords or len(n.args) != 1 or isinstance(n.args[0], ast.Starred):
            self.fail(f".{func.attr}() takes one string", n)
        pattern = self.string(n.args[0], "a pattern")
        if kind == "regex":
            try:
                re.compile(pattern)
            except re.error as exc:
                self.fail(f"invalid regular expression: {exc}", n.args[0])
        self.check_text_field(field, func.value)
        return Match(field, kind, pattern, False, self.span(n))

    # -- fields and literals ---------------------------------------------------------------
    def require_field(self, n: ast.expr) -> Field:
        field = self.field(n)
        if field is None:
            self.fail("expected a key here", n, hint="e.g. params.lr, metrics.loss or status")
        return field

    def field(self, n: ast.expr) -> Field | None:
        """The field ``n`` names, or None when ``n`` is not shaped like one."""
        parts: list[tuple[str, bool]] = []
        cur = n
        while True:
            if isinstance(cur, ast.Attribute):
                parts.append((cur.attr, False))
                cur = cur.value
            elif isinstance(cur, ast.Subscript):
                index = cur.slice
                if not (isinstance(index, ast.Constant) and isinstance(index.value, str)):
                    self.fail(
                        "a key in brackets must be a quoted string",
                        index,
                        hint="e.g. metrics['val/loss']",
                    )
                parts.append((self.checked_text(index.value, index), True))
                cur = cur.value
            elif isinstance(cur, ast.Name):
                break
            else:
                return None
        parts.reverse()
        base = cur.id
        span = self.span(n)
        if base in _CONTAINERS:
            source = _CONTAINERS[base]
            if not parts:
                self.fail(
                    f"{base} needs a key",
                    n,
                    hint=f"e.g. {base}.lr or {base}['my key'], or test presence: 'lr' in {base}",
                )
            accessor = "last"
            if (
                source == "metric"
                and len(parts) > 1
                and not parts[-1][1]
                and parts[-1][0] in METRIC_ACCESSORS
            ):
                accessor = parts.pop()[0]
            key = ".".join(p for p, _ in parts)
            if not key:
                self.fail("a key cannot be empty", n)
            return Field(source, key, accessor, span)  # type: ignore[arg-type]
        dotted = ".".join([base, *(p for p, _ in parts)])
        if not parts and base in ATTRIBUTES:
            return Field("attr", base, "last", span)
        alias = ALIASES.aliases.get(dotted)
        if alias is not None:
            return Field(alias.source, alias.key, "last", span)
        if base in ATTRIBUTES:
            self.fail(
                f"{base} is a run attribute and has no part {parts[0][0]!r}",
                n,
                hint=f"for a param or metric with that name write params.{dotted} or metrics.{dotted}",
            )
        if base in _CONTAINER_TYPOS and parts:
            self.fail(f"unknown name {base!r}", cur, hint=f"did you mean {_CONTAINER_TYPOS[base]}?")
        return Field("name", dotted, "last", span)

    def literal(self, n: ast.expr) -> Scalar:
        if isinstance(n, ast.Constant):
            value = n.value
            if value is None or isinstance(value, bool):
                return value
            if isinstance(value, int):
                if abs(value) > _INT64:
                    self.fail("the number is too large", n, hint="write it as a float, e.g. 1e30")
                return value
            if isinstance(value, float):
                return value
            if isinstance(value, str):
                return self.checked_text(value, n)
            self.fail(f"{type(value).__name__} values are not supported", n)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub | ast.UAdd):
            inner = self.literal(n.operand)
            if isinstance(inner, bool) or not isinstance(inner, int | float):
                self.fail("only numbers have a sign", n)
            return -inner if isinstance(n.op, ast.USub) else inner
        if isinstance(n, ast.List | ast.Tuple | ast.Set):
            self.fail("a list goes only after `in`", n, hint="e.g. params.lr in [0.1, 0.01]")
        if isinstance(n, ast.BinOp):
            self.arithmetic(n)
        self.fail(
            f"expected a value here, not {_describe(n)}", n, hint="e.g. 0.1, 'adam', True, None"
        )

    def string(self, n: ast.expr, what: str) -> str:
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            return self.checked_text(n.value, n)
        self.fail(f"expected {what} as a quoted string here", n, hint="e.g. 'baseline'")

    def checked_text(self, value: str, n: ast.AST) -> str:
        if "\x00" in value:
            self.fail("strings cannot contain NUL characters", n)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("the string is not valid Unicode (lone surrogate)", n)
        return value

    # -- typing ----------------------------------------------------------------------------
    def check_text_field(self, field: Field, n: ast.AST) -> None:
        problem = text_field_problem(field)
        if problem:
            self.fail(problem[0], n, hint=problem[1])

    def check(self, field: Field, op: CompareOp, value: Scalar, n: ast.AST) -> Scalar:
        """The literal as the field compares it (dates become epoch seconds); a type that
        cannot match raises."""
        if field.source == "metric":
            problem = metric_value_problem(field, value)
            if problem:
                self.fail(problem[0], n, hint=problem[1])
            return value
        if field.source != "attr":
            if value is None and op not in ("==", "!="):
                self.fail("None can only be compared with == or !=", n)
            return value
        spec = ATTRIBUTES[field.key]
        if spec.kind == "tags":
            self.fail(
                "tags is a set of strings",
                field.span,
                hint="test it with 'baseline' in tags or 'baseline' not in tags",
            )
        if value is None:
            if not spec.nullable:
                self.fail(
                    f"{field.key} is never empty",
                    n,
                    hint=f"compare it with a {_kind_word(spec.kind)}",
                )
            if op not in ("==", "!="):
                self.fail("None can only be compared with == or !=", n)
            return None
        if spec.kind == "status":
            if op not in ("==", "!="):
                self.fail("status can only be compared with == or != (or in)", field.span)
            if not isinstance(value, str):
                self.fail("status is a string", n, hint="e.g. status == 'failed'")
            if value not in RUN_STATUSES:
                close = suggest(value, RUN_STATUSES)
                hint = f"did you mean {close!r}?" if close else "one of " + ", ".join(RUN_STATUSES)
                self.fail(f"unknown status {value!r}", n, hint=hint)
            return value
        if spec.kind == "text":
            if not isinstance(value, str):
                self.fail(
                    f"{field.key} is a string; it cannot be compared with {_typename(value)}",
                    n,
                    hint=f"quote the value, e.g. {field.key} == '{value}'",
                )
            return value
        if spec.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(f"{field.key} is a number", n, hint=f"e.g. {field.key} > 10")
            return value
        if isinstance(value, bool):
            self.fail(f"{field.key} cannot be compared with {value}", n)
        if isinstance(value, int | float):
            if value != value:
                self.fail("NaN cannot be compared", n)
            return float(value)
        assert isinstance(value, str)
        try:
            if spec.kind == "time":
                return parse_time(value, self.now)
            return parse_duration(value)
        except ValueError:
            if spec.kind == "time":
                hint = "use an ISO date ('2024-05-01', '2024-05-01T13:00') or '2h ago', '3 days ago', 'yesterday'"
                self.fail(f"not a date: {value!r}", n, hint=hint)
            self.fail(
                f"not a duration: {value!r}",
                n,
                hint="use seconds or '90s', '5m', '1h30m', '2 days'",
            )


def metric_value_problem(field: Field, value: Scalar) -> tuple[str, str] | None:
    """Why ``value`` cannot be compared with a metric, or None when it can."""
    ref = field.describe()
    if value is None:
        key = field.key
        return (
            f"metrics are numbers; {ref} cannot be None",
            f"to find runs without it: {key!r} not in metrics",
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (
            f"metrics are numbers; {ref} cannot be compared with {_typename(value)}",
            f"e.g. {ref} < 0.2",
        )
    return None


def text_field_problem(field: Field) -> tuple[str, str] | None:
    """Why ``field`` cannot take a string test, or None when it can."""
    if field.source == "metric":
        return f"{field.describe()} is a number, not a string", "compare it with < or >"
    if field.source == "attr":
        kind = ATTRIBUTES[field.key].kind
        if kind == "tags":
            return "tags is a set of strings", "test it with 'baseline' in tags"
        if kind not in ("text", "status"):
            return f"{field.key} is not a string", f"compare it with a {_kind_word(kind)}"
    return None


def _kind_word(kind: str) -> str:
    return {
        "status": "status such as 'failed'",
        "text": "string",
        "int": "number",
        "time": "date such as '2024-05-01' or '2h ago'",
        "duration": "duration such as 300 or '5m'",
        "tags": "tag",
    }[kind]


def _typename(value: Scalar) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True/False"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


def _describe(n: ast.AST) -> str:
    names = {
        "Lambda": "lambda",
        "IfExp": "`x if c else y`",
        "Dict": "a dict",
        "ListComp": "a comprehension",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "GeneratorExp": "a generator",
        "Await": "await",
        "Yield": "yield",
        "YieldFrom": "yield",
        "NamedExpr": "`:=`",
        "JoinedStr": "an f-string",
        "Starred": "`*`",
        "Slice": "a slice",
        "UnaryOp": "this operator",
        "Call": "a call",
        "Name": "a name",
        "Attribute": "a key",
        "Subscript": "a key",
        "Compare": "a comparison",
        "BoolOp": "a test",
    }
    return names.get(type(n).__name__, "this expression")
