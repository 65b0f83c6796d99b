"""The typed form of a query: frozen dataclasses, independent of any database.

A :class:`Query` is what :func:`parse_query` returns; :func:`compile_query` turns it into SQL
and :func:`evaluate` runs it against one run in Python, with the same answers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

#: Where a field's value comes from. ``name`` is a bare name that the catalog resolves to a
#: param or a metric; ``snapshot`` is a path into the run's snapshot (``git.commit``).
Source = Literal["param", "summary", "metric", "attr", "name", "snapshot"]

#: What a metric reference reads from the per-key summary.
Accessor = Literal["last", "min", "max", "count", "step"]
METRIC_ACCESSORS: tuple[Accessor, ...] = ("last", "min", "max", "count", "step")

CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]
MatchKind = Literal["startswith", "endswith", "contains", "like", "regex"]

#: A literal the user typed. Numbers are int or float; bools compare as 1 and 0, as in Python.
Scalar = int | float | str | bool | None


@dataclass(frozen=True, slots=True)
class Span:
    """Character offsets ``[start, end)`` into :attr:`Query.text`, for error carets."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Field:
    """A value of a run: ``params.lr``, ``metrics.loss.min``, ``status`` or a bare ``lr``."""

    source: Source
    key: str
    accessor: Accessor = "last"
    span: Span = Span(0, 0)

    def describe(self) -> str:
        """How the user would write this field."""
        if self.source in ("attr", "name", "snapshot"):
            return self.key
        prefix = {"param": "params", "summary": "summary", "metric": "metrics"}[self.source]
        ref = f"{prefix}.{self.key}" if _plain_key(self.key) else f"{prefix}[{self.key!r}]"
        if self.source == "metric" and self.accessor != "last":
            ref += f".{self.accessor}"
        return ref


def _plain_key(key: str) -> bool:
    return all(part.isidentifier() for part in key.split("."))


@dataclass(frozen=True, slots=True)
class Compare:
    """``field op value``; a literal on the left was flipped to the right."""

    field: Field
    op: CompareOp
    value: Scalar
    span: Span


@dataclass(frozen=True, slots=True)
class In:
    """``field in [a, b]`` (``negated``: ``field not in [a, b]``)."""

    field: Field
    values: tuple[Scalar, ...]
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Match:
    """A string test: ``name.startswith('res')``, ``'sub' in name``, ``name.like('r%')``,
    ``name.matches('^r')``. ``negated`` comes from ``'sub' not in name``."""

    field: Field
    kind: MatchKind
    pattern: str
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class HasTag:
    """``'baseline' in tags`` (``negated``: ``not in``)."""

    tag: str
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class HasKey:
    """``'lr' in params``: the run has the key at all (any value, null included)."""

    source: Literal["param", "summary", "metric"]
    key: str
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Compare | In | Match | HasTag | HasKey | And | Or | Not


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: the text the user typed and its tree."""

    text: str
    root: Node

    def fields(self) -> list[Field]:
        """Every field the query tests, in the order written."""
        found: list[Field] = []
        pending: list[Node] = [self.root]
        while pending:
            node = pending.pop()
            if isinstance(node, And | Or):
                pending.extend(reversed(node.items))
            elif isinstance(node, Not):
                pending.append(node.item)
            elif isinstance(node, Compare | In | Match):
                found.append(node.field)
        return found


@dataclass(frozen=True, slots=True)
class SortKey:
    """One key of a sort: a field and its direction."""

    field: Field
    descending: bool = False


@dataclass(frozen=True, slots=True)
class SortSpec:
    """A parsed sort specification, such as ``-loss, params.lr``."""

    text: str
    keys: tuple[SortKey, ...]


@dataclass(frozen=True, slots=True)
class KeyCatalog:
    """The param, metric and summary keys a store holds: what bare names resolve against and
    what unknown-key errors suggest from."""

    params: frozenset[str] = frozenset()
    metrics: frozenset[str] = frozenset()
    summaries: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        params: Iterable[str] = (),
        metrics: Iterable[str] = (),
        summaries: Iterable[str] = (),
    ) -> KeyCatalog:
        """A catalog from any iterables of keys."""
        return cls(frozenset(params), frozenset(metrics), frozenset(summaries))

    @classmethod
    def from_records(cls, records: Iterable[RunRecordLike]) -> KeyCatalog:
        """The keys present in ``records``."""
        p: set[str] = set()
        m: set[str] = set()
        s: set[str] = set()
        for record in records:
            p.update(record.params)
            m.update(record.metrics)
            s.update(record.summary)
        return cls(frozenset(p), frozenset(m), frozenset(s))


# -- what the evaluator reads from a run ---------------------------------------------------


class RunInfoLike(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def experiment(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def start_time(self) -> float: ...
    @property
    def end_time(self) -> float | None: ...
    @property
    def user(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def duration(self) -> float | None: ...


class MetricSummaryLike(Protocol):
    @property
    def last(self) -> float: ...
    @property
    def last_step(self) -> int: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...
    @property
    def count(self) -> int: ...


class RunRecordLike(Protocol):
    """What :func:`evaluate` needs from a run; :class:`labkeep.entities.RunRecord` fits."""

    @property
    def info(self) -> RunInfoLike: ...
    @property
    def params(self) -> Mapping[str, object]: ...
    @property
    def metrics(self) -> Mapping[str, MetricSummaryLike]: ...
    @property
    def summary(self) -> Mapping[str, object]: ...
    @property
    def tags(self) -> Collection[str]: ...


# -- attributes ------------------------------------------------------------------------------

AttrKind = Literal["status", "text", "int", "time", "duration", "tags"]


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """A run attribute the query language knows: its type and whether it can be empty."""

    name: str
    kind: AttrKind
    nullable: bool = False
    doc: str = ""


ATTRIBUTES: dict[str, AttributeSpec] = {
    a.name: a
    for a in (
        AttributeSpec("status", "status", doc="running, completed, failed, interrupted, killed"),
        AttributeSpec("experiment", "text", doc="the experiment's name"),
        AttributeSpec("name", "text", doc="the run's name"),
        AttributeSpec("number", "int", doc="the run's number"),
        AttributeSpec("user", "text", doc="who started the run"),
        AttributeSpec("host", "text", doc="the machine it ran on"),
        AttributeSpec("group", "text", nullable=True, doc="init(group=...), e.g. 'cv-5fold'"),
        AttributeSpec("job_type", "text", nullable=True, doc="init(job_type=...), e.g. 'fold'"),
        AttributeSpec(
            "parent",
            "text",
            nullable=True,
            doc="the parent run's uuid (init(parent=...), a sweep's trials); parent == None: "
            "top-level runs",
        ),
        AttributeSpec("started", "time", doc="start time: ISO date, '2h ago', or epoch seconds"),
        AttributeSpec("ended", "time", nullable=True, doc="end time (empty while running)"),
        AttributeSpec("duration", "duration", nullable=True, doc="seconds, or '5m', '1h30m'"),
        AttributeSpec("tags", "tags", doc="use 'x' in tags"),
    )
}

RUN_STATUSES = ("running", "completed", "failed", "interrupted", "killed")


AliasSource = Literal["param", "summary", "snapshot"]


@dataclass(frozen=True, slots=True)
class AttributeAlias:
    """A dotted name such as ``git.commit`` that reads a param, a summary key, or a path into
    the run's snapshot (``snapshot``: ``key`` is the dotted path, ``git.commit`` reads
    ``{"git": {"commit": …}}``)."""

    source: AliasSource
    key: str


@dataclass(slots=True)
class AttributeAliases:
    """Names that read a param, a summary key or a snapshot path: where reproducibility data
    such as ``git.commit`` lands is the store's business, so the mapping is editable
    (:func:`alias_attribute`)."""

    aliases: dict[str, AttributeAlias] = field(default_factory=dict)


ALIASES = AttributeAliases(
    {
        "git.commit": AttributeAlias("snapshot", "git.commit"),
        "git.branch": AttributeAlias("snapshot", "git.branch"),
        "git.dirty": AttributeAlias("snapshot", "git.dirty"),
        # A sweep's trials record its number: ``sweep == 3`` selects them.
        "sweep": AttributeAlias("summary", "labkeep.sweep"),
    }
)


def snapshot_path(key: str) -> tuple[str, ...]:
    """The parts of a snapshot path; each must be an identifier, as the SQL compiler writes
    them into the JSON path."""
    parts = tuple(key.split("."))
    if not all(p.isidentifier() and p.isascii() for p in parts):
        raise ValueError(f"a snapshot path is dotted identifiers, not {key!r}")
    return parts


def alias_attribute(name: str, source: AliasSource, key: str) -> None:
    """Make the attribute ``name`` (e.g. ``git.commit``) read ``source`` key ``key``.

    >>> alias_attribute("git.remote", "snapshot", "git.remote_url")
    """
    if source not in ("param", "summary", "snapshot"):
        raise ValueError(f"source must be 'param', 'summary' or 'snapshot', not {source!r}")
    if name in ATTRIBUTES or not all(p.isidentifier() for p in name.split(".")):
        raise ValueError(f"cannot alias {name!r}: it must be a new dotted identifier")
    if source == "snapshot":
        snapshot_path(key)
    ALIASES.aliases[name] = AttributeAlias(source, key)
