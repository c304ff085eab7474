"""Concurrent PyIceberg writers against the live catalog: no lost update, no 5xx.

Eight writers (one process each, so that the clients' CPU-bound commit work does not share a
GIL with the catalog under test) append 25 times each, retrying (refresh, then append again)
when the catalog answers 409 ``CommitFailedException``. Any other error, including the
``CommitStateUnknownException`` PyIceberg raises for a 5xx, fails the test. Afterwards every
acknowledged snapshot must be on the table's main lineage and the row count must be exact.
Once on one shared table (real conflicts), once on eight tables (no conflict may happen).
"""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField

if TYPE_CHECKING:  # writer processes import this module: keep them clear of the catalog app
    from tests.conftest import LiveServer

pytestmark = [
    pytest.mark.engines,
    pytest.mark.timeout(600),
    pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True),
]

WRITERS = 8
APPENDS = 25
ROWS_PER_APPEND = 4
MAX_RETRIES = 200
MAX_BACKOFF_SECONDS = 20.0  # well below the server's keep-alive timeout

# PyIceberg retries conflicting appends itself (with sleeps of 100 ms and up); switch that off so
# every 409 reaches the writer's own refresh-and-retry loop, which counts it.
TABLE_PROPERTIES = {"commit.retry.num-retries": "0"}

SCHEMA = Schema(
    NestedField(1, "writer", LongType(), required=False),
    NestedField(2, "seq", LongType(), required=False),
    NestedField(3, "row", LongType(), required=False),
)


def batch(writer: int, seq: int) -> pa.Table:
    return pa.table(
        {
            "writer": pa.array([writer] * ROWS_PER_APPEND, pa.int64()),
            "seq": pa.array([seq] * ROWS_PER_APPEND, pa.int64()),
            "row": pa.array(range(ROWS_PER_APPEND), pa.int64()),
        }
    )


@dataclass
class WriterOutcome:
    acknowledged: dict[int, tuple[int, int]] = field(default_factory=dict)  # snapshot id -> (writer, seq)
    retries: int = 0
    cpu_seconds: float = 0.0
    error: str | None = None


def append_with_retry(table: Table, writer: int, seq: int, outcome: WriterOutcome) -> None:
    for attempt in range(MAX_RETRIES):
        began = time.monotonic()
        try:
            table.append(batch(writer, seq), snapshot_properties={"writer": str(writer), "seq": str(seq)})
        except CommitFailedException:
            outcome.retries += 1
            # Randomised exponential backoff in units of one attempt's duration (the window in
            # which a competing commit makes ours fail), so eight writers mostly take turns.
            slot = time.monotonic() - began
            time.sleep(random.uniform(0, min(slot * 2 ** min(attempt, 4), MAX_BACKOFF_SECONDS)))
            table.refresh()
            continue
        snapshot = table.current_snapshot()  # from the metadata the catalog returned for this commit
        assert snapshot is not None and snapshot.summary is not None
        assert (snapshot.summary["writer"], snapshot.summary["seq"]) == (str(writer), str(seq))
        outcome.acknowledged[snapshot.snapshot_id] = (writer, seq)
        return
    raise AssertionError(f"writer {writer} gave up on append {seq} after {MAX_RETRIES} conflicts")


def writer_process(
    properties: dict[str, str], number: int, table_name: str, start: Barrier, results: Queue[WriterOutcome]
) -> None:
    """One client: its own process (own GIL, own HTTP session), ``APPENDS`` appends to one table."""
    outcome = WriterOutcome()
    try:
        table = load_catalog(f"writer-{number}", **properties).load_table(table_name)
        start.wait(timeout=120)
        for seq in range(APPENDS):
            append_with_retry(table, number, seq, outcome)
    except BaseException:  # noqa: BLE001 - reported by the test process
        outcome.error = traceback.format_exc()
    outcome.cpu_seconds = time.process_time()
    results.put(outcome)


def run_writers(properties: dict[str, str], table_names: list[str]) -> tuple[list[WriterOutcome], float]:
    """Run one writer process per table name (names may repeat) and collect their outcomes.

    Processes rather than threads: the catalog under test runs in this process, and PyIceberg's
    client-side commit work is CPU-bound, so threads would mostly measure the GIL.
    """
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(table_names) + 1)
    results: Queue[WriterOutcome] = context.Queue()
    processes = [
        context.Process(target=writer_process, args=(properties, number, name, start, results), daemon=True)
        for number, name in enumerate(table_names)
    ]
    for process in processes:
        process.start()
    try:
        start.wait(timeout=120)  # every writer has loaded its table
        began = time.monotonic()
        outcomes = [results.get(timeout=480) for _ in processes]
        elapsed = time.monotonic() - began
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    failures = [o.error for o in outcomes if o.error]
    assert not failures, f"{len(failures)} writer(s) failed; first:\n{failures[0]}"
    return outcomes, elapsed


def main_lineage(table: Table) -> list[int]:
    """Snapshot ids from the current snapshot of main back to the first one."""
    lineage = []
    snapshot = table.current_snapshot()
    while snapshot is not None:
        lineage.append(snapshot.snapshot_id)
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    return lineage


def check_table(table: Table, acknowledged: dict[int, tuple[int, int]]) -> None:
    lineage = main_lineage(table)
    assert set(acknowledged) <= set(lineage), "an acknowledged append is missing from the table's history"
    assert len(lineage) == len(acknowledged)
    data = table.scan().to_arrow()
    assert data.num_rows == len(acknowledged) * ROWS_PER_APPEND
    written = {(w, s) for w, s in zip(data.column("writer").to_pylist(), data.column("seq").to_pylist(), strict=True)}
    assert written == set(acknowledged.values())
    summary = table.current_snapshot().summary  # type: ignore[union-attr]
    assert summary is not None and summary["total-records"] == str(len(acknowledged) * ROWS_PER_APPEND)


@pytest.fixture
def catalog(catalog_properties: dict[str, str], live_server: LiveServer) -> Catalog:
    # Serve with the keep-alive timeout of `datlake serve`: with uvicorn's 5 s default a writer
    # that reuses a connection just as the server closes it gets "connection reset".
    live_server.server.config.timeout_keep_alive = 75
    catalog = load_catalog("test", **catalog_properties)
    catalog.create_namespace("load")
    return catalog


def test_many_writers_one_table(
    catalog: Catalog, catalog_properties: dict[str, str], record_property: Callable[[str, object], None]
) -> None:
    catalog.create_table("load.shared", SCHEMA, properties=TABLE_PROPERTIES)
    outcomes, elapsed = run_writers(catalog_properties, ["load.shared"] * WRITERS)
    acknowledged: dict[int, tuple[int, int]] = {}
    for outcome in outcomes:
        assert len(outcome.acknowledged) == APPENDS
        acknowledged.update(outcome.acknowledged)
    assert len(acknowledged) == WRITERS * APPENDS  # every acknowledged snapshot id is distinct
    check_table(catalog.load_table("load.shared"), acknowledged)
    retries = sum(o.retries for o in outcomes)
    assert retries > 0, "eight concurrent writers never conflicted: the test did not exercise the race"
    record_property("seconds", round(elapsed, 1))
    record_property("conflict_retries", retries)
    cpu = sum(o.cpu_seconds for o in outcomes)
    print(f"\n{WRITERS}x{APPENDS} appends on one table: {elapsed:.1f}s, {retries} conflicts, writers' CPU {cpu:.0f}s")


def test_many_writers_own_tables(
    catalog: Catalog, catalog_properties: dict[str, str], record_property: Callable[[str, object], None]
) -> None:
    names = [f"load.t{number}" for number in range(WRITERS)]
    for name in names:
        catalog.create_table(name, SCHEMA, properties=TABLE_PROPERTIES)
    outcomes, elapsed = run_writers(catalog_properties, names)
    by_writer = {tuple(o.acknowledged.values())[0][0]: o for o in outcomes if o.acknowledged}
    assert sorted(by_writer) == list(range(WRITERS))
    for number, name in enumerate(names):
        outcome = by_writer[number]
        assert len(outcome.acknowledged) == APPENDS
        # Nobody else writes this table: a conflict here would be a catalog bug.
        assert outcome.retries == 0
        check_table(catalog.load_table(name), outcome.acknowledged)
    record_property("seconds", round(elapsed, 1))
    cpu = sum(o.cpu_seconds for o in outcomes)
    print(f"\n{WRITERS} writers x {APPENDS} appends on their own tables: {elapsed:.1f}s, writers' CPU {cpu:.0f}s")
