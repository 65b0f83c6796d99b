"""Bare names to params or metrics, and explicit keys checked, against a :class:`KeyCatalog`."""

from __future__ import annotations

from dataclasses import replace

from labkeep.query._errors import QueryError, suggest
from labkeep.query._nodes import (
    ALIASES,
    ATTRIBUTES,
    METRIC_ACCESSORS,
    And,
    Compare,
    Field,
    HasKey,
    HasTag,
    In,
    KeyCatalog,
    Match,
    Node,
    Not,
    Or,
    Query,
    Scalar,
    SortKey,
    SortSpec,
)
from labkeep.query._parse import metric_value_problem, text_field_problem


def resolve(query: Query, catalog: KeyCatalog | None, *, check_keys: bool = True) -> Query:
    """``query`` with every bare name resolved (a param first, then a metric) and, with
    ``check_keys``, every explicit key checked against ``catalog``. Without a catalog,
    explicit keys are taken as they are and bare names raise :class:`QueryError`."""
    resolver = _Resolver(query.text, catalog, check_keys)
    root = resolver.node(query.root)
    return query if root is query.root else Query(query.text, root)


def resolve_sort(
    spec: SortSpec, catalog: KeyCatalog | None, *, check_keys: bool = True
) -> SortSpec:
    """``spec`` with bare names resolved, as :func:`resolve` does for a query."""
    resolver = _Resolver(spec.text, catalog, check_keys)
    keys = tuple(SortKey(resolver.field(k.field), k.descending) for k in spec.keys)
    return SortSpec(spec.text, keys)


class _Resolver:
    def __init__(self, text: str, catalog: KeyCatalog | None, check_keys: bool) -> None:
        self.text = text
        self.catalog = catalog
        self.check_keys = check_keys
        self.alias_targets = {(a.source, a.key) for a in ALIASES.aliases.values()}

    def fail(self, problem: str, field: Field, hint: str | None = None) -> QueryError:
        return QueryError(problem, self.text, field.span.start, field.span.end, hint=hint)

    def node(self, node: Node) -> Node:
        if isinstance(node, And | Or):
            items = tuple(self.node(i) for i in node.items)
            if all(a is b for a, b in zip(items, node.items, strict=True)):
                return node
            return type(node)(items)
        if isinstance(node, Not):
            item = self.node(node.item)
            return node if item is node.item else Not(item)
        if isinstance(node, HasTag | HasKey):
            return node
        field = self.field(node.field)
        if field.source == "metric" and node.field.source == "name":
            if isinstance(node, Match):
                problem = text_field_problem(field)
                assert problem is not None
                raise self.fail(problem[0], node.field, problem[1])
            values: tuple[Scalar, ...] = (node.value,) if isinstance(node, Compare) else node.values
            for value in values:
                trouble = metric_value_problem(field, value)
                if trouble:
                    raise self.fail(trouble[0], node.field, trouble[1])
        if field is node.field:
            return node
        if isinstance(node, Compare | In | Match):
            return replace(node, field=field)
        raise AssertionError(node)

    def field(self, field: Field) -> Field:
        catalog = self.catalog
        if field.source in ("attr", "snapshot"):
            return field
        if field.source != "name":
            if (
                catalog is None
                or not self.check_keys
                or (field.source, field.key) in self.alias_targets
            ):
                return field
            known = {
                "param": catalog.params,
                "metric": catalog.metrics,
                "summary": catalog.summaries,
            }[field.source]
            if field.key in known:
                return field
            raise self._unknown(field, known)
        if catalog is None:
            raise self.fail(
                f"bare name {field.key!r} needs the store's keys to resolve",
                field,
                f"write params.{field.key} or metrics.{field.key}",
            )
        key = field.key
        in_params, in_metrics = key in catalog.params, key in catalog.metrics
        if in_params and in_metrics:
            raise self.fail(
                f"{key!r} is both a param and a metric",
                field,
                f"write params.{key} or metrics.{key}",
            )
        if in_params:
            return Field("param", key, "last", field.span)
        if in_metrics:
            return Field("metric", key, "last", field.span)
        head, _, tail = key.rpartition(".")
        if head and tail in METRIC_ACCESSORS and head in catalog.metrics:
            if head in catalog.params:
                raise self.fail(
                    f"{head!r} is both a param and a metric",
                    field,
                    f"write metrics.{key}",
                )
            return Field("metric", head, tail, field.span)
        if key in catalog.summaries:
            raise self.fail(
                f"unknown name {key!r}: it is a summary key", field, f"write summary.{key}"
            )
        choices = [*catalog.params, *catalog.metrics, *ATTRIBUTES, *ALIASES.aliases]
        close = suggest(key, choices)
        hint = (
            f"did you mean {close!r}?" if close else "write params.KEY, metrics.KEY or summary.KEY"
        )
        raise self.fail(f"unknown name {key!r}: not a param, metric or attribute", field, hint)

    def _unknown(self, field: Field, known: frozenset[str]) -> QueryError:
        assert self.catalog is not None
        word = {"param": "param", "metric": "metric", "summary": "summary key"}[field.source]
        close = suggest(field.key, known)
        elsewhere = [
            prefix
            for prefix, keys in (
                ("params", self.catalog.params),
                ("metrics", self.catalog.metrics),
                ("summary", self.catalog.summaries),
            )
            if field.key in keys
        ]
        if close:
            hint = f"did you mean {replace(field, key=close).describe()}?"
        elif elsewhere:
            hint = f"it is in {elsewhere[0]}: {elsewhere[0]}.{field.key}"
        else:
            hint = "no run has it"
        return self.fail(f"unknown {word} {field.key!r}", field, hint)
