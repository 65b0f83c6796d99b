"""``Store.search_runs`` and ``Store.get_run_table`` on real SQLite and PostgreSQL stores,
with runs written through the store's own batch path."""

from __future__ import annotations

import math
import uuid
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import BACKENDS, drop_pg_schema, new_pg_schema
from labkeep.errors import InvalidInputError, NotFoundError
from labkeep.query import QueryError
from labkeep.store import Store, WriteBatch, locate_store, open_store
from labkeep.store._base import MetricColumns, RunFinish, RunStart, columns_of
from labkeep.store.sql import SqlStore
from labkeep.store.sql._search import CatalogCache

T0 = 1_700_000_000.0


def open_test_store(backend: str, tmp: Path) -> Iterator[Store]:
    """A fresh store: a SQLite directory, or a PostgreSQL schema of its own (chosen with
    ``?options=-csearch_path=…`` in the URI) that is dropped afterwards."""
    if backend == "sqlite":
        store = open_store(locate_store(str(tmp / "store")))
        yield store
        store.close()
        return
    name, uri = new_pg_schema()
    store = open_store(locate_store(uri))
    try:
        yield store
    finally:
        store.close()
        drop_pg_schema(name)


def write_run(
    store: Store,
    i: int,
    *,
    experiment: str = "mnist",
    status: str = "completed",
    params: dict[str, Any] | None = None,
    metrics: dict[str, list[float]] | None = None,
    summary: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    snapshot: dict[str, Any] | None = None,
    parent_uuid: str | None = None,
) -> int:
    """Write run ``i`` (its uuid derives from i) through ``store.apply``; return its number."""
    run_uuid = str(uuid.UUID(int=i))
    batch = WriteBatch(
        run_uuid=run_uuid,
        writer=f"w-{run_uuid}",
        position=1,
        start=RunStart(
            uuid=run_uuid,
            experiment=experiment,
            name=f"run-{i}",
            start_time=T0 + i,
            user="ann",
            host="h1",
            parent_uuid=parent_uuid,
        ),
        params=dict(params or {}),
        summary=dict(summary or {}),
        tags_added=list(tags or []),
        snapshot=snapshot,
        finish=RunFinish(status=status, end_time=T0 + i + 10 * i),
    )
    for key, values in (metrics or {}).items():
        batch.metrics[key] = MetricColumns(
            array("q", range(len(values))),
            array("d", values),
            array("d", (T0 + i + s for s in range(len(values)))),
        )
    return store.apply(batch)


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    for opened in open_test_store(request.param, tmp_path_factory.mktemp("search")):
        write_run(
            opened,
            1,
            params={"lr": 0.1, "optimizer": "adam", "layers": [64, 64], "batch_size": 32},
            metrics={"loss": [0.9, 0.5, 0.15], "acc": [0.1, 0.5, 0.8]},
            tags=["baseline"],
            snapshot={"git": {"commit": "abc123", "branch": "main", "dirty": False}},
        )
        write_run(
            opened,
            2,
            status="failed",
            params={"lr": 0.01, "optimizer": "sgd", "batch_size": 64},
            metrics={"loss": [0.8, math.nan], "acc": [0.2, 0.3]},
        )
        write_run(
            opened,
            3,
            experiment="cifar",
            params={"lr": 0.001, "optimizer": "adam", "flag": True},
            metrics={"loss": [0.5, 0.05], "val/loss": [0.3]},
            summary={"best": 0.95},
            snapshot={"git": {"commit": "def456", "branch": None, "dirty": True}},
        )
        write_run(opened, 4, params={"lr": 0.05, "optimizer": "adam"}, metrics={"loss": [0.12]})
        write_run(opened, 5, experiment="cifar", tags=["baseline", "x"])
        yield opened


def numbers_of(found: tuple[list[int], int]) -> list[int]:
    return found[0]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("metrics.loss < 0.2 and params.lr >= 1e-3", [4, 3, 1]),
        ("status == 'failed' or 'baseline' in tags", [5, 2, 1]),
        ("loss < 0.2 and optimizer == 'adam'", [4, 3, 1]),
        ("experiment == 'cifar'", [5, 3]),
        ("git.commit == 'abc123'", [1]),
        ("git.dirty == True", [3]),
        ("git.branch == None", [3]),
        ("'val/loss' in metrics", [3]),
        ("summary.best > 0.9", [3]),
        ("params.layers != 1", [1]),
        ("not lr > 0.02", [5, 3, 2]),
        ("", [5, 4, 3, 2, 1]),
    ],
)
def test_filters_select_the_right_runs_newest_first(
    store: Store, where: str, expected: list[int]
) -> None:
    assert store.search_runs(where or None) == (expected, len(expected))
    if not where:
        assert store.search_runs("   ") == (expected, len(expected))


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("metrics.loss", [3, 4, 1, 5, 2]),  # 2 (last loss NaN) and 5 have none: last
        ("-metrics.loss", [1, 4, 3, 5, 2]),
        ("metrics.loss.min", [3, 4, 1, 2, 5]),
        ("params.lr", [3, 2, 4, 1, 5]),
        ("-lr", [1, 4, 2, 3, 5]),
        (["params.optimizer", "-params.lr"], [1, 4, 3, 2, 5]),
        ("optimizer, lr", [3, 4, 1, 2, 5]),
        ("-batch_size", [2, 1, 5, 4, 3]),  # missing last; ties newest first
        ("status", [5, 4, 3, 1, 2]),
        ("-git.commit", [3, 1, 5, 4, 2]),
    ],
)
def test_sorting_by_any_key_puts_missing_last_and_breaks_ties_newest_first(
    store: Store, sort: str | list[str], expected: list[int]
) -> None:
    assert store.search_runs(None, sort=sort) == (expected, 5)


def test_paging_counts_every_match(store: Store) -> None:
    assert store.search_runs("params.lr > 0", sort="lr", limit=2) == ([3, 2], 4)
    assert store.search_runs("params.lr > 0", sort="lr", limit=2, offset=2) == ([4, 1], 4)
    assert store.search_runs("params.lr > 0", sort="lr", limit=2, offset=10) == ([], 4)
    assert store.search_runs("params.lr > 0", limit=0) == ([], 4)
    assert store.search_runs("params.lr > 5", limit=3) == ([], 0)
    with pytest.raises(InvalidInputError, match="offset"):
        store.search_runs(None, offset=-1)


def test_experiment_parent_and_deleted_runs(store: Store) -> None:
    assert store.search_runs("lr > 0", experiment="cifar") == ([3], 1)
    assert store.search_runs(None, experiment="nope") == ([], 0)
    store.set_deleted([4], True)
    try:
        assert numbers_of(store.search_runs("optimizer == 'adam'")) == [3, 1]
        assert numbers_of(store.search_runs("optimizer == 'adam'", include_deleted=True)) == [
            4,
            3,
            1,
        ]
    finally:
        store.set_deleted([4], False)
    assert store.search_runs(None, parent_uuid=str(uuid.UUID(int=1))) == ([], 0)


def test_bad_queries_raise_with_a_caret(store: Store) -> None:
    with pytest.raises(QueryError) as info:
        store.search_runs("metrics.los < 0.2")
    assert "did you mean metrics.loss?" in str(info.value)
    assert str(info.value).splitlines()[-1].strip() == "^" * len("metrics.los")
    with pytest.raises(QueryError, match="unknown name 'lrr'"):
        store.search_runs(None, sort="-lrr")
    with pytest.raises(QueryError):
        store.search_runs("lr >")


def test_a_stale_catalog_never_gives_wrong_answers(store: Store, tmp_path: Path) -> None:
    """Keys added after the catalog was cached: an explicit key is found after a reload, and
    a bare name that became ambiguous is reported, not resolved with the old keys."""
    cache = CatalogCache(ttl=3600)
    from labkeep.store.sql._search import RunSearch, search_runs

    def search(where: str) -> tuple[list[int], int]:
        with store._reading() as conn:  # type: ignore[attr-defined]
            return search_runs(conn, cache, RunSearch(where))

    assert search("acc > 0.5") == ([1], 1)  # caches the catalog
    number = write_run(store, 90, params={"momentum": 0.9, "acc": 0.99})
    try:
        assert search("params.momentum > 0.5") == ([number], 1)
        with pytest.raises(QueryError, match="both a param and a metric"):
            search("acc > 0.5")
    finally:
        store.set_deleted([number], True)
        store.purge([number])


def test_run_table_matches_the_records(store: Store) -> None:
    numbers = [3, 1, 5, 2, 4]
    table = store.get_run_table(numbers)
    expected = columns_of(store.get_records(numbers))
    assert list(table) == list(expected)
    for name, values in expected.items():
        got = list(table[name])
        for a, b in zip(got, values, strict=True):
            same = a == b or (a != a and (b is None or b != b))  # NaN for missing numbers
            assert same, (name, got, values)
    assert list(table["number"]) == numbers
    assert table["params.layers"][1] == [64, 64]
    assert table["params.optimizer"][2] is None
    assert table["tags"][2] == ["baseline", "x"]
    with pytest.raises(NotFoundError):
        store.get_run_table([1, 999])


def test_run_table_of_a_large_selection_scans(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labkeep.store.sql import _packed, _table

    numbers = [5, 4, 3, 2, 1]
    small = store.get_run_table(numbers)
    monkeypatch.setattr(_table, "SCAN_ABOVE", 1)
    scanned = store.get_run_table(numbers)
    monkeypatch.setattr(_table, "SCAN_ABOVE", 1_000)
    monkeypatch.setattr(_packed, "IN_CHUNK", 2)  # a selection read in several parts
    assert repr(store.get_run_table(numbers)) == repr(scanned)
    monkeypatch.setattr(_table, "SCAN_ABOVE", 1)
    partial = store.get_run_table([2, 4])
    assert list(scanned) == list(small)
    for name in small:
        assert repr(list(scanned[name])) == repr(list(small[name])), name
    assert list(partial["number"]) == [2, 4]
    assert list(partial["params.lr"]) == [0.01, 0.05]


def test_search_on_a_store_without_runs(tmp_path: Path) -> None:
    empty = open_store(locate_store(str(tmp_path / "none")))
    assert empty.search_runs("lr > 1") == ([], 0)
    with pytest.raises(QueryError):
        empty.search_runs("lr >")
    assert not (tmp_path / "none").exists()


@pytest.fixture(scope="module", params=BACKENDS)
def ties(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """Forty runs whose values repeat (ties), some without the keys, some NaN, some deleted:
    what a walk in index order can get wrong at the window's edge."""
    for opened in open_test_store(request.param, tmp_path_factory.mktemp("ties")):
        for i in range(1, 41):
            params: dict[str, Any] = {"p": i % 4} if i % 5 else {"p": "s" + str(i % 3)}
            if i % 7 == 0:
                params = {}
            loss = [float(i % 6) / 10 if i % 9 else math.nan] if i % 8 else []
            write_run(
                opened,
                i,
                status="failed" if i % 3 == 0 else "completed",
                params=params,
                metrics={"loss": loss} if loss else {},
                summary={"s": i % 5} if i % 2 else {},
            )
        opened.set_deleted([6, 17], True)
        yield opened


@pytest.mark.parametrize(
    "where",
    [None, "status == 'completed'", "params.p >= 1 and metrics.loss < 0.4", "not p == 2", "p > 9"],
)
@pytest.mark.parametrize(
    "sort", [None, "metrics.loss", "-metrics.loss", "params.p", "-p, -loss", "summary.s, loss"]
)
def test_a_bounded_walk_gives_the_same_pages_as_filtering(
    ties: Store, monkeypatch: pytest.MonkeyPatch, where: str | None, sort: str | None
) -> None:
    """Pages read by walking an index in sort order, with windows cut anywhere (at ties,
    before the end, past it), are slices of the one filtered and sorted list."""
    from labkeep.store.sql import _search

    everything, total = ties.search_runs(where, sort)
    assert ties.count_runs(where) == total == len(everything)
    for window in (0, 1, 3, 10, _search.WALK_ROWS):
        monkeypatch.setattr(_search, "WALK_ROWS", window)
        for limit, offset in ((1, 0), (5, 0), (5, 4), (7, 30), (50, 0)):
            page = ties.search_numbers(where, sort, limit=limit, offset=offset)
            assert page == everything[offset : offset + limit], (window, limit, offset)
            assert ties.search_runs(where, sort, limit=limit, offset=offset) == (page, total)


def test_run_lists_count_only_when_asked(ties: Store) -> None:
    from labkeep._views import RunList

    runs = RunList(ties, where="status == 'completed'", sort="metrics.loss", limit=5)
    assert len(runs) == 5
    assert runs.total == ties.count_runs("status == 'completed'") > 5
    short = RunList(ties, where="status == 'completed'", limit=100, offset=3)
    assert short.total == 3 + len(short)


ODD_FLOATS = [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.1, 1 / 3, 1e-300]
ODD_FLOATS += [math.inf, -math.inf, 123456789.123456789, 2.0**62, -(2.0**70), 0.0]
ODD_TEXTS = ["a,b", 'q"uote', "日本", "x\x1fy", "", "[1]"]


def write_odd_runs(store: Store) -> list[int]:
    """Runs holding extreme and subnormal floats, infinities, NaN, huge ints, bools, None, and
    text with separators, quotes and non-ASCII characters; their numbers, newest first."""
    for i, value in enumerate(ODD_FLOATS):
        write_run(
            store,
            i + 1,
            params={
                "f": value,
                "i": 2**63 + i if i % 3 == 0 else i,
                "s": ODD_TEXTS[i % len(ODD_TEXTS)],
                "b": i % 2 == 0,
                "n": None,
                "mixed": [value, "x"] if i % 4 == 0 else value,
            },
            metrics={"m": [1.0, value], "k,ey": [value]},
            summary={"best": value},
            tags=[ODD_TEXTS[i % len(ODD_TEXTS)] or "t"],
        )
    return list(range(len(ODD_FLOATS), 0, -1))


def assert_table_is_exact(store: Store, numbers: list[int]) -> None:
    """``get_run_table`` gives back exactly what the records hold, value for value."""
    table = store.get_run_table(numbers)
    expected = columns_of(store.get_records(numbers))
    assert list(table) == list(expected)
    for name, values in expected.items():
        column = table[name]
        column = column.tolist() if hasattr(column, "tolist") else list(column)
        for got, want in zip(column, values, strict=True):
            if (isinstance(want, float) and math.isnan(want)) or want is None:
                assert got is None or got != got, (name, got, want)
            elif isinstance(want, int) and isinstance(got, float):  # a column of floats
                assert got == want, (name, got, want)
            else:
                assert type(got) is type(want) and repr(got) == repr(want), (name, got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_table_scans_carry_every_value_exactly(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole-table reads give back exactly what was logged."""
    from labkeep.store.sql import _packed, _table

    for store in open_test_store(backend, tmp_path):
        numbers = write_odd_runs(store)
        assert_table_is_exact(store, numbers)  # a selection: rows by primary key
        monkeypatch.setattr(_packed, "IN_CHUNK", 1)
        assert_table_is_exact(store, numbers)  # PostgreSQL: a selection folded in one read
        monkeypatch.setattr(_table, "SCAN_ABOVE", 1)
        assert_table_is_exact(store, numbers)  # every run: whole tables scanned


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrading_packs_the_rows_of_existing_runs(backend: str, tmp_path: Path) -> None:
    """A store from before ``run_rows`` (schema 0002) gets every run's packed row on upgrade."""
    from labkeep.store.sql import _migrate
    from labkeep.store.sql._schema import SCHEMA_REVISION

    for store in open_test_store(backend, tmp_path):
        assert isinstance(store, SqlStore)
        numbers = write_odd_runs(store)
        before = repr(store.get_run_table(numbers))
        with store.writer().transaction() as cur:  # what a 0002 store looks like
            cur.execute("DROP TABLE run_rows")
            cur.execute("DROP TABLE key_sets")
            cur.execute("DROP TABLE blob_refs")  # added after 0002 too (0004)
            cur.execute("DROP INDEX ix_runs_group")  # and the run columns of 0005
            cur.execute("ALTER TABLE runs DROP COLUMN run_group")
            cur.execute("ALTER TABLE runs DROP COLUMN job_type")
            for table in (  # media (0006), the registry and artifacts (0007), settings (0008)
                "media",
                "store_settings",
                "artifact_links",
                "artifact_aliases",
                "artifact_files",
                "artifact_versions",
                "named_artifacts",
                "model_aliases",
                "model_versions",
                "registered_models",
            ):
                cur.execute(f"DROP TABLE {table}")
            # and the search indexes of 0010
            for index in (
                "ix_params_key_text",
                "ix_summaries_key_text",
                "ix_runs_start",
                "ix_runs_live",
            ):
                cur.execute(f"DROP INDEX {index}")
            cur.execute("UPDATE alembic_version SET version_num = '0002'")
        assert _migrate.upgrade(store.location) == ("0002", SCHEMA_REVISION)
        assert repr(store.get_run_table(numbers)) == before
        assert_table_is_exact(store, numbers)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_purged_run_leaves_nothing_in_the_run_table(backend: str, tmp_path: Path) -> None:
    """Purging removes a run's packed row too: a later run, even one given the same number
    (SQLite reuses the highest), shows none of the purged run's values."""
    for store in open_test_store(backend, tmp_path):
        write_run(store, 1, params={"lr": 0.1}, metrics={"loss": [0.5]})
        purged = write_run(store, 2, params={"gone": 1}, metrics={"gone": [1.0]}, summary={"g": 1})
        store.set_deleted([purged], True)
        assert store.purge([purged]) == 1
        later = write_run(store, 3)
        table = store.get_run_table([later])
        assert not [name for name in table if "gone" in name or name == "summary.g"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_writers_to_one_run_keep_its_packed_row_whole(
    backend: str, tmp_path: Path
) -> None:
    """Writers logging different keys to one run at once (a script beside its runner, or a
    server's workers) each rewrite the run's packed row: none may overwrite another's keys
    with what it saw before the other committed."""
    import threading

    rounds = 40

    def writer(store: SqlStore, name: str) -> None:
        own = open_store(store.location)
        try:
            for k in range(rounds):
                batch = WriteBatch(run_uuid=str(uuid.UUID(int=1)), writer=name, position=k + 1)
                batch.params[f"{name}.p"] = k
                batch.metrics[f"{name}.m"] = MetricColumns(
                    array("q", [k]), array("d", [float(k)]), array("d", [T0 + k])
                )
                own.apply(batch)
        finally:
            own.close()

    for store in open_test_store(backend, tmp_path):
        assert isinstance(store, SqlStore)
        number = write_run(store, 1, status="running")
        threads = [threading.Thread(target=writer, args=(store, f"w{i}")) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        table = store.get_run_table([number])
        for i in range(3):
            assert list(table[f"params.w{i}.p"]) == [rounds - 1]
            assert list(table[f"metrics.w{i}.m.count"]) == [rounds]
        assert_table_is_exact(store, [number])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_writer_that_waits_for_another_packs_what_the_other_wrote(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writer A has rewritten the run's packed row and not yet committed; writer B logs
    another key to the same run meanwhile. B must wait for A before it reads the run's
    tables, or its packed row (written after A's) would hold A's key as it was before A."""
    import threading
    import time

    from labkeep.store.sql import _apply

    paused, release = threading.Event(), threading.Event()
    packed = _apply.refresh

    def refresh_then_pause(cur: Any, sql: Any, run: int, sections: Any, **given: Any) -> None:
        packed(cur, sql, run, sections, **given)
        if threading.current_thread().name == "A":
            paused.set()
            release.wait(30)

    monkeypatch.setattr(_apply, "refresh", refresh_then_pause)

    def log(store: SqlStore, key: str) -> None:
        own = open_store(store.location)
        try:
            batch = WriteBatch(run_uuid=str(uuid.UUID(int=1)), writer=key, position=1)
            batch.metrics[key] = MetricColumns(
                array("q", [1]), array("d", [1.0]), array("d", [T0 + 100])
            )
            own.apply(batch)
        finally:
            own.close()

    for store in open_test_store(backend, tmp_path):
        assert isinstance(store, SqlStore)
        number = write_run(store, 1, metrics={"x": [0.0]})
        a = threading.Thread(target=log, args=(store, "x"), name="A")
        a.start()
        assert paused.wait(30)
        b = threading.Thread(target=log, args=(store, "y"), name="B")
        b.start()
        time.sleep(0.5)  # time for B to reach A's locks (if it ran ahead, it would be done)
        release.set()
        a.join()
        b.join()
        table = store.get_run_table([number])
        assert (list(table["metrics.x.count"]), list(table["metrics.y.count"])) == ([2], [1])


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    runs=st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(["a", "b", "c,d", "é"]), _VALUES, max_size=4),
            st.dictionaries(
                st.sampled_from(["loss", "acc"]),
                st.lists(st.floats(allow_nan=True, allow_infinity=False), min_size=1, max_size=3),
                max_size=2,
            ),
        ),
        min_size=1,
        max_size=6,
    ),
    scan=st.booleans(),
)
# An int a float cannot hold beside a float: the column stays exact.
@example(runs=[({"a": 2**53 + 1}, {}), ({"a": 1.5}, {})], scan=False)
def test_run_tables_of_random_runs_are_exact(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    runs: list[tuple[dict[str, Any], dict[str, list[float]]]],
    scan: bool,
) -> None:
    """Whatever mix of types a key holds across runs (and runs without it), the packed rows
    give back the records' values: as numbers where they are all numbers of one kind, else
    exactly."""
    from labkeep.store.sql import _table

    monkeypatch.setattr(_table, "SCAN_ABOVE", 1 if scan else 1_000)
    store = open_store(locate_store(str(tmp_path_factory.mktemp("random") / "store")))
    try:
        for i, (params, metrics) in enumerate(runs, start=1):
            write_run(store, i, params=params, metrics=metrics, summary=params)
        assert_table_is_exact(store, list(range(len(runs), 0, -1)))
    finally:
        store.close()


def test_counting_within_a_budget(ties: Store) -> None:
    """A count that would take more work than allowed is None on SQLite, never wrong."""
    total = ties.count_runs("status == 'completed' and p >= 1")
    assert ties.count_runs_within(10**9, "status == 'completed' and p >= 1") == total
    tight = ties.count_runs_within(1, "status == 'completed' and p >= 1")
    sqlite = ties.location.kind == "sqlite"  # type: ignore[attr-defined]
    assert tight is None if sqlite else tight == total
    assert ties.count_runs("p >= 1") == ties.count_runs_within(10**9, "p >= 1")


@pytest.mark.parametrize("backend", BACKENDS)
def test_batches_that_touch_some_keys_keep_the_packed_row_exact(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch rewrites only the keys it logged in the run's packed row (starting from the
    row already stored): keys it did not touch keep their summaries, new keys slot into
    order, NaN and all-NaN keys and keys longer than a chunk come out as the tables say."""
    from labkeep.store.sql import _apply

    monkeypatch.setattr(_apply, "CHUNK_POINTS", 4)  # a key of 10 points spans 3 chunks
    nan = float("nan")
    for store in open_test_store(backend, tmp_path):
        run_uuid = str(uuid.UUID(int=7))
        start = RunStart(uuid=run_uuid, experiment="e", name="wide", start_time=T0)
        batches = [
            {f"k{j:03d}": [float(j), float(j) + 0.5] for j in range(0, 60, 2)},
            {
                "k004": [-1.0, nan],
                "k010": [nan, nan],
                "none": [nan, nan],
                "k001": [3.0],
                "zz": [1.0] * 10,
            },
            {"k000": [100.0], "a": [nan], "k059": [2.0]},
            {"k004": [7.0]},
        ]
        step = 0
        for position, logged in enumerate(batches, start=1):
            batch = WriteBatch(
                run_uuid=run_uuid,
                writer="w",
                position=position,
                start=start if position == 1 else None,
            )
            for key, values in logged.items():
                batch.metrics[key] = MetricColumns(
                    array("q", range(step, step + len(values))),
                    array("d", values),
                    array("d", (T0 + step + s for s in range(len(values)))),
                )
            step += 10
            number = store.apply(batch)
        assert_table_is_exact(store, [number])
        record = store.get_records([number])[0]
        assert record.metrics["k004"].last == 7.0 and record.metrics["k004"].min == -1.0
        assert record.metrics["k010"].min == 10.0 and record.metrics["k010"].count == 4
        assert record.metrics["none"].min is None and record.metrics["none"].max is None
        assert record.metrics["zz"].count == 10 and record.metrics["zz"].last_step == 19
        steps, _, _ = store.get_history_bytes(number, "zz")
        assert array("q", steps).tolist() == list(range(10, 20))
        table = store.get_run_table([number])
        assert table["metrics.k002"].tolist() == [2.5]  # untouched since the first batch
