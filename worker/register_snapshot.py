"""The register-snapshot job: wrap Parquet objects already in the object store into one new snapshot.

Steps (each attempt of a job):

1. check again that the URI lies inside the locations allowed for registration;
2. list the objects (one object, a prefix ending in ``/``, or a glob);
3. read only the tail of each object, in parallel: check the ``PAR1`` footer magic and parse the
   footer (schema, row groups, column statistics); data pages are never read;
4. infer the table schema from the first file (or take the one given) and check every file
   against the table's schema, naming the file and the column that does not fit;
5. build the DataFiles with PyIceberg's footer-statistics helpers, and one snapshot with
   PyIceberg's own snapshot producers (fast append, or overwrite) bound to a small catalog
   adapter whose ``commit_table`` is the catalog's :class:`~catalog.service.commit.CommitService`,
   so the snapshot lands through the one commit path (a new table is created in the same commit);
   a lost race (409) is retried from a fresh read;
6. record the outcome on the job row.

The job id is written into the snapshot summary (``datlake.job-id``): a worker that died after
its commit but before recording it is recognised on the next attempt, and nothing is added twice.

A worker asked to stop (SIGTERM) lets the attempt go on until ``DATLAKE_SHUTDOWN_TIMEOUT_SECONDS``
have passed; an attempt still running then gives up at its next checkpoint (between footer reads,
before committing) and hands the job back to the queue, so another worker runs it at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.noop import NoopCatalog
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import (
    UnsupportedPyArrowTypeException,
    _pyarrow_to_schema_without_ids,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
    pyarrow_to_schema,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat, ManifestContent
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.schema import Schema, assign_fresh_schema_ids, index_by_name, promote
from pyiceberg.table import CommitTableResponse, CreateTableTransaction, StagedTable, Table, TableProperties
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.table.update import TableRequirement, TableUpdate
from pyiceberg.table.update.snapshot import _SnapshotProducer
from pyiceberg.typedef import Identifier

from catalog import errors
from catalog.config import Settings
from catalog.observability import JOB_DURATION, JOBS
from catalog.persistence.jobs import JobRow
from catalog.persistence.store import TABLE, VIEW, CatalogStore, Warehouse
from catalog.service.commit import CommitService, TableChange
from catalog.service.detached import (
    SUMMARY_JOB_ID,
    SUMMARY_REGISTER_FILES,
    SUMMARY_REGISTER_SOURCE,
    SUMMARY_REGISTER_URI,
    display_name,
)
from catalog.service.jobs import JobService, check_register_uri, parse_schema
from catalog.service.locations import default_table_location
from catalog.storage.fileio import Storage
from catalog.storage.objects import ObjectInfo, ObjectStore, glob_regex, glob_root, has_glob

log = logging.getLogger(__name__)

MAGIC = b"PAR1"
ENCRYPTED_MAGIC = b"PARE"
TAIL_BYTES = 64 * 1024  # one ranged read covers the footer of almost every file
COMMIT_ATTEMPTS = 8
MAX_FAILURES_LISTED = 3


class JobFailed(Exception):
    """The job cannot succeed as submitted; ``message`` tells the caller why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobLost(Exception):
    """This attempt no longer owns the job (it was presumed dead and requeued)."""


class JobInterrupted(Exception):
    """The worker is stopping and the attempt did not finish in time: the job goes back to the queue."""


class StopRequest:
    """Whether this process was asked to stop, and until when running attempts may still go on."""

    def __init__(self) -> None:
        self._deadline: float | None = None
        self._lock = threading.Lock()

    def request(self, grace_seconds: float) -> None:
        """Ask running attempts to finish within ``grace_seconds`` (the first request sets the deadline)."""
        with self._lock:
            if self._deadline is None:
                self._deadline = time.monotonic() + grace_seconds

    @property
    def expired(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.monotonic() >= deadline

    def check(self) -> None:
        """A checkpoint: raise :class:`JobInterrupted` once the deadline has passed."""
        if self.expired:
            raise JobInterrupted()


class _Conflict(Exception):
    """The commit lost a race; rebuild from the table's new state."""


@dataclass(frozen=True)
class Listing:
    files: list[ObjectInfo]
    pattern: str | None  # a DuckDB glob that matches exactly these files, when there is one


@dataclass(frozen=True)
class Footer:
    location: str
    size: int
    metadata: pq.FileMetaData


# --- 2. listing ---------------------------------------------------------------------------------


def _hidden(relative: str) -> bool:
    """Hive/Spark convention: names starting with '_' or '.' are not data (_SUCCESS, .crc, _temporary/)."""
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def list_objects(objects: ObjectStore, uri: str) -> Listing:
    if has_glob(uri):
        regex = glob_regex(uri)
        files = [o for o in objects.list(glob_root(uri)) if regex.match(o.location)]
        if not files:
            raise JobFailed(f"No object matches {uri}")
        # The glob follows DuckDB's semantics, so it reads exactly these files (while no object is added).
        return Listing(files, uri if uri.endswith(".parquet") else None)
    if uri.endswith("/"):
        everything = objects.list(uri)
        files = [o for o in everything if not _hidden(o.location[len(uri) :])]
        skipped = [o for o in everything if _hidden(o.location[len(uri) :])]
        if not files:
            hint = f" (only hidden objects such as {skipped[0].location})" if skipped else ""
            raise JobFailed(f"No objects under {uri}{hint}")
        exact = all(f.location.endswith(".parquet") for f in files) and not any(
            s.location.endswith(".parquet") for s in skipped
        )
        return Listing(files, uri + "**/*.parquet" if exact else None)
    info = objects.info(uri)
    if info is None:
        raise JobFailed(f"Object not found: {uri}")
    return Listing([info], None)


# --- 3. footers ---------------------------------------------------------------------------------


def read_footer(objects: ObjectStore, info: ObjectInfo) -> Footer:
    """Check the footer magic and parse the footer from the object's tail (one ranged read, usually)."""
    location = info.location
    try:
        tail, size = objects.read_tail(location, TAIL_BYTES)
        if size < 12 or tail[-4:] != MAGIC:
            if tail[-4:] == ENCRYPTED_MAGIC:
                raise JobFailed(f"{location} is an encrypted Parquet file, which cannot be registered")
            raise JobFailed(f"{location} is not a Parquet file (no 'PAR1' magic at the end of the object)")
        footer_length = int.from_bytes(tail[-8:-4], "little")
        if footer_length + 12 > size:
            raise JobFailed(f"{location} is not a valid Parquet file (footer length {footer_length} > object size)")
        if footer_length + 8 > len(tail):
            tail, size = objects.read_tail(location, footer_length + 8)
    except FileNotFoundError as exc:
        raise JobFailed(f"Object not found: {location}") from exc
    try:
        metadata = pq.read_metadata(pa.BufferReader(tail))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise JobFailed(f"{location} has an unreadable Parquet footer: {exc}") from exc
    return Footer(location, size, metadata)


def read_footers(
    objects: ObjectStore, files: Sequence[ObjectInfo], threads: int, checkpoint: Callable[[], None] = lambda: None
) -> list[Footer]:
    """All footers, read in parallel; every unusable object is reported (the first few by name).

    ``checkpoint`` runs before each read; what it raises stops the reading.
    """

    def attempt(info: ObjectInfo) -> Footer | JobFailed:
        checkpoint()
        try:
            return read_footer(objects, info)
        except JobFailed as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(files)))) as pool:
        results = list(pool.map(attempt, files))
    failures = [r for r in results if isinstance(r, JobFailed)]
    if failures:
        listed = "; ".join(f.message for f in failures[:MAX_FAILURES_LISTED])
        more = f" (and {len(failures) - MAX_FAILURES_LISTED} more)" if len(failures) > MAX_FAILURES_LISTED else ""
        prefix = "" if len(files) == 1 else f"{len(failures)} of {len(files)} objects cannot be registered: "
        raise JobFailed(prefix + listed + more)
    return [r for r in results if isinstance(r, Footer)]


# --- 4. schemas ---------------------------------------------------------------------------------


def _columns(schema: Schema) -> dict[str, tuple[str, bool]]:
    """Column path → (type, required); nested types by kind only (their children are listed too)."""
    columns = {}
    for name, field_id in index_by_name(schema).items():
        field = schema.find_field(field_id)
        kind = str(field.field_type) if field.field_type.is_primitive else type(field.field_type).__name__
        columns[name] = (kind, field.required)
    return columns


def schema_difference(given: Schema, table: Schema) -> str | None:
    """Why a schema given with a job does not describe the existing table, or None."""
    mine, theirs = _columns(given), _columns(table)
    for name in mine:
        if name not in theirs:
            return f"column {name!r} is not in the table"
    for name in theirs:
        if name not in mine:
            return f"column {name!r} of the table is missing"
    for name, (kind, required) in mine.items():
        if (kind, required) != theirs[name]:
            want = f"{'required' if theirs[name][1] else 'optional'} {theirs[name][0]}"
            return f"column {name!r} is {'required' if required else 'optional'} {kind}, the table has {want}"
    return None


_CONVERSION_ERRORS = (TypeError, ValueError, UnsupportedPyArrowTypeException)


def _unconvertible_column(arrow_schema: pa.Schema, format_version: int) -> tuple[str, str] | None:
    """The first column Iceberg cannot represent, and why."""
    for field in arrow_schema:
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            return field.name, (
                "nanosecond timestamps do not fit an Iceberg v2 timestamp; write microseconds "
                "(pyarrow/pandas: coerce_timestamps='us')"
            )
        try:
            _pyarrow_to_schema_without_ids(pa.schema([field]), format_version=format_version)  # type: ignore[arg-type]
        except _CONVERSION_ERRORS as exc:
            return field.name, str(exc).split("\n")[0]
    return None


def infer_schema(footer: Footer, format_version: int = 2) -> Schema:
    """The Iceberg schema of a file, with fresh field ids."""
    arrow_schema = footer.metadata.schema.to_arrow_schema()
    try:
        without_ids = _pyarrow_to_schema_without_ids(arrow_schema, format_version=format_version)  # type: ignore[arg-type]
    except _CONVERSION_ERRORS as exc:
        column = _unconvertible_column(arrow_schema, format_version)
        detail = f"column {column[0]!r}: {column[1]}" if column else str(exc)
        raise JobFailed(f"{footer.location}: cannot derive an Iceberg schema, {detail}") from exc
    return assign_fresh_schema_ids(without_ids)


def file_mismatch(table_schema: Schema, arrow_schema: pa.Schema, format_version: int) -> str | None:
    """Why a Parquet file does not fit the table's schema (naming the column), or None."""
    try:
        file_schema = pyarrow_to_schema(
            arrow_schema,
            name_mapping=table_schema.name_mapping,
            format_version=format_version,  # type: ignore[arg-type]
        )
    except _CONVERSION_ERRORS as exc:
        try:
            names = set(index_by_name(_pyarrow_to_schema_without_ids(arrow_schema)))
        except _CONVERSION_ERRORS:
            column = _unconvertible_column(arrow_schema, format_version)
            return f"column {column[0]!r}: {column[1]}" if column else str(exc)
        extra = sorted(names - set(index_by_name(table_schema)))
        if extra:
            return f"column {extra[0]!r} is not in the table's schema"
        return str(exc)
    for name, field_id in index_by_name(table_schema).items():
        table_field = table_schema.find_field(field_id)
        try:
            file_field = file_schema.find_field(field_id)
        except ValueError:
            if table_field.required:
                return f"required column {name!r} is missing"
            continue
        if table_field.required and file_field.optional:
            return f"column {name!r} is nullable in the file but required in the table"
        wanted, found = table_field.field_type, file_field.field_type
        if wanted.is_primitive:
            if wanted == found:
                continue
            try:
                promote(found, wanted)
            except Exception:  # noqa: BLE001 - pyiceberg raises ResolveError (or TypeError) for any mismatch
                return f"column {name!r} is {found} in the file but {wanted} in the table"
        elif type(wanted) is not type(found):
            return f"column {name!r} is {found} in the file but {wanted} in the table"
    return None


# --- 5. the commit ------------------------------------------------------------------------------


class _CommitAdapter(NoopCatalog):
    """Lets PyIceberg's transactions commit through the catalog's own commit service."""

    def __init__(self, commits: CommitService, warehouse: Warehouse) -> None:
        super().__init__("datlake-register-snapshot")
        self.commits = commits
        self.warehouse = warehouse

    def commit_table(
        self, table: Table, requirements: tuple[TableRequirement, ...], updates: tuple[TableUpdate, ...]
    ) -> CommitTableResponse:
        identifier = table.name()
        change = TableChange(tuple(identifier[:-1]), identifier[-1], requirements, updates)
        committed = self.commits.commit_table(self.warehouse, change)
        return CommitTableResponse.model_validate(
            {"metadata": committed.entry.metadata, "metadata-location": committed.metadata_location}
        )

    @staticmethod
    def _delete_old_metadata(io: FileIO, base: TableMetadata, metadata: TableMetadata) -> None:
        """The catalog keeps every metadata file (as for /v1 commits)."""


def _discard_written_files(producer: _SnapshotProducer[Any]) -> None:
    """Delete the manifests and manifest list a commit that did not land has written."""
    try:
        producer._clean_all_uncommitted()
    except Exception:  # noqa: BLE001 - orphaned files are only garbage
        log.warning("could not delete the manifests of a failed commit", exc_info=True)


def current_data_files(metadata: TableMetadata, io: FileIO) -> dict[str, DataFile]:
    """Live data files of the table's current snapshot, by path."""
    snapshot = metadata.current_snapshot()
    if snapshot is None:
        return {}
    files: dict[str, DataFile] = {}
    for manifest in snapshot.manifests(io):
        if manifest.content != ManifestContent.DATA:
            continue
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
            files[entry.data_file.file_path] = entry.data_file
    return files


def job_snapshot(metadata: TableMetadata, job_id: str) -> int | None:
    """The snapshot a job committed, found by the job id in its summary."""
    for snapshot in metadata.snapshots:
        if snapshot.summary is not None and snapshot.summary.additional_properties.get(SUMMARY_JOB_ID) == job_id:
            return snapshot.snapshot_id
    return None


class _Heartbeat:
    """Records every few seconds that this attempt is alive; notices when it lost the job."""

    def __init__(self, jobs: JobService, job: JobRow, interval: float) -> None:
        self.jobs = jobs
        self.job = job
        self.interval = interval
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job.id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=max(self.interval, 5.0))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.jobs.heartbeat(self.job):
                    self.lost = True
                    return
            except Exception:  # noqa: BLE001 - a database hiccup; the next beat may get through
                log.warning("heartbeat of job %s failed", self.job.id, exc_info=True)

    def owned(self) -> bool:
        """Beat now and say whether this attempt still owns the job (checked right before committing)."""
        if self.lost:
            return False
        try:
            return self.jobs.heartbeat(self.job)
        except Exception:  # noqa: BLE001 - cannot prove ownership: do not commit
            return False


class RegisterSnapshot:
    """Runs register-snapshot jobs against one catalog database and object store."""

    def __init__(
        self, settings: Settings, store: CatalogStore, storage: Storage, commits: CommitService, jobs: JobService
    ) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.commits = commits
        self.jobs = jobs
        self.objects = ObjectStore(storage)
        self.stop = StopRequest()

    def request_stop(self, grace_seconds: float) -> None:
        """This process is stopping: a running attempt may go on for ``grace_seconds``, then hands its job back."""
        self.stop.request(grace_seconds)

    # --- lifecycle ----------------------------------------------------------------------------

    def run(self, job_id: str) -> None:
        """Claim the job, register its files, record the outcome. Never raises for a job's own failure."""
        job = self.jobs.claim(job_id)
        if job is None:
            log.info("job %s is not queued (already taken or finished); nothing to do", job_id)
            return
        log.info("job %s: attempt %d, %s %s into %s", job.id, job.attempts, job.mode, job.uri, job.table_name)
        started = time.monotonic()
        outcome = "error"  # an exception escaped: the outcome could not be recorded (RQ retries the call)
        try:
            outcome = self._attempt(job)
        except (KeyboardInterrupt, SystemExit):
            outcome = "interrupted"
            raise
        finally:
            elapsed = time.monotonic() - started
            JOBS.labels(outcome).inc()
            JOB_DURATION.labels(outcome).observe(elapsed)

    def _attempt(self, job: JobRow) -> str:
        """Run one claimed attempt and record its outcome on the job row; return that outcome."""
        with _Heartbeat(self.jobs, job, self.settings.job_heartbeat_seconds) as heartbeat:
            try:
                snapshot_id = self.register(job, heartbeat.owned)
            except JobLost:
                log.warning("job %s: attempt %d lost the job to another attempt", job.id, job.attempts)
                return "lost"
            except JobInterrupted:
                log.warning("job %s: the worker is stopping; attempt %d hands the job back", job.id, job.attempts)
                self.jobs.release(job, f"attempt {job.attempts} stopped with its worker; the job runs again")
                return "interrupted"
            except JobFailed as exc:
                log.info("job %s failed: %s", job.id, exc.message)
                self.jobs.fail(job, exc.message)
                return "failed"
            except (errors.StorageUnavailable, errors.DatabaseUnavailable) as exc:
                log.warning("job %s: transient failure: %s", job.id, exc.message)
                self.jobs.retry_later(job, exc.message)
                return "retried" if job.counted_attempts < self.settings.job_max_attempts else "failed"
            except errors.CatalogError as exc:
                self.jobs.fail(job, exc.message)
                return "failed"
            except Exception as exc:
                if type(exc).__name__ == "JobTimeoutException":
                    self.jobs.fail(job, f"The job took longer than {self.settings.job_timeout_seconds} s")
                    return "failed"
                log.exception("job %s: unexpected error", job.id)
                self.jobs.fail(job, f"Internal error: {type(exc).__name__}: {exc}")
                return "failed"
            except (KeyboardInterrupt, SystemExit):
                # A forced stop (a second SIGTERM) interrupts the attempt anywhere; the commit is atomic and
                # a job already committed is recognised by its id, so handing it back now is safe.
                self.jobs.release(job, f"attempt {job.attempts} stopped with its worker; the job runs again")
                raise
            self.jobs.complete(job, snapshot_id)
        log.info("job %s completed: snapshot %s", job.id, snapshot_id)
        return "completed"

    def committed_snapshot(self, job: JobRow) -> str | None:
        """The snapshot this job already committed, if any (used when its worker died)."""
        entity = self.store.get_entity(job.warehouse_id, job.namespace, job.table, TABLE)
        if entity is None:
            return None
        try:
            metadata = self.storage.read_table_metadata(entity.metadata_location).metadata
        except Exception:  # noqa: BLE001 - unknown: treat as not committed, the next attempt checks again
            return None
        found = job_snapshot(metadata, job.id)
        return str(found) if found is not None else None

    # --- the steps ----------------------------------------------------------------------------

    def _warehouse(self, warehouse_id: int) -> Warehouse:
        for warehouse in self.store.list_warehouses():
            if warehouse.id == warehouse_id:
                return warehouse
        raise JobFailed(f"The job's warehouse (id {warehouse_id}) no longer exists")

    def register(self, job: JobRow, owned: Callable[[], bool]) -> int:
        """Steps 1-5; returns the id of the snapshot that holds the registered files."""
        warehouse = self._warehouse(job.warehouse_id)
        try:
            uri = check_register_uri(job.uri, self.settings, warehouse)
        except errors.CatalogError as exc:
            raise JobFailed(exc.message) from exc
        clock = time.monotonic()
        listing = list_objects(self.objects, uri)
        listed = time.monotonic()
        footers = read_footers(self.objects, listing.files, self.settings.register_threads, self.stop.check)
        read = time.monotonic()
        given = parse_schema(job.schema) if job.schema is not None else None
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            self.stop.check()
            try:
                snapshot_id = self._commit(job, warehouse, footers, listing.pattern, given, owned)
                log.info(
                    "job %s: %d objects listed in %.2f s, footers read in %.2f s, committed in %.2f s",
                    job.id,
                    len(listing.files),
                    listed - clock,
                    read - listed,
                    time.monotonic() - read,
                )
                return snapshot_id
            except _Conflict:
                if attempt == COMMIT_ATTEMPTS:
                    raise JobFailed(
                        f"Gave up after {COMMIT_ATTEMPTS} commits lost races with concurrent changes to the table"
                    ) from None
                log.info("job %s: commit conflict, retrying on the table's new state (%d)", job.id, attempt)
                time.sleep(min(0.05 * 2**attempt, 2.0) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _commit(
        self,
        job: JobRow,
        warehouse: Warehouse,
        footers: list[Footer],
        pattern: str | None,
        given: Schema | None,
        owned: Callable[[], bool],
    ) -> int:
        name = display_name(job.namespace, job.table, self.settings.default_namespace)
        identifier: Identifier = (*job.namespace, job.table)
        adapter = _CommitAdapter(self.commits, warehouse)
        entity = self.store.get_entity(warehouse.id, job.namespace, job.table, TABLE)
        if entity is not None:
            base = self.storage.read_table_metadata(entity.metadata_location).metadata
            done = job_snapshot(base, job.id)
            if done is not None:
                return done
            if given is not None and (problem := schema_difference(given, base.schema())):
                raise JobFailed(f"The given schema does not match table {name}: {problem}")
            io = self.storage.io_for(base.location)
            files = self._data_files(footers, base, name)
            current = current_data_files(base, io)
            table = Table(identifier, base, entity.metadata_location, io, adapter)
            transaction = table.transaction()
            if base.name_mapping() is None:  # files without field ids are read by column name
                mapping = base.schema().name_mapping.model_dump_json()
                transaction.set_properties({TableProperties.DEFAULT_NAME_MAPPING: mapping})
        else:
            if self.store.entity_kind(warehouse.id, job.namespace, job.table) == VIEW:
                raise JobFailed(f"{name} is a view, not a table")
            namespace = self._namespace_for_create(warehouse, job.namespace)
            schema = assign_fresh_schema_ids(given) if given is not None else infer_schema(footers[0])
            location = default_table_location(warehouse, job.namespace, namespace, job.table)
            base = new_table_metadata(
                schema,
                UNPARTITIONED_PARTITION_SPEC,
                UNSORTED_SORT_ORDER,
                location,
                properties={TableProperties.DEFAULT_NAME_MAPPING: schema.name_mapping.model_dump_json()},
            )
            io = self.storage.io_for(location)
            files = self._data_files(footers, base, name)
            current = {}
            staged = StagedTable(identifier, base, f"{location}/metadata/staged.metadata.json", io, adapter)
            transaction = CreateTableTransaction(staged)

        registered = {f.file_path: f for f in files}
        if job.mode == "overwrite":
            # The registered files become the whole snapshot: every current file is removed and every
            # registered one added (a file in both is replaced by itself, live once).
            to_add, to_delete = list(registered.values()), list(current.values())
        else:
            to_add, to_delete = [f for path, f in registered.items() if path not in current], []
        if not to_add:
            assert base.current_snapshot_id is not None
            log.info("job %s: every file is already in %s; nothing to append", job.id, name)
            return base.current_snapshot_id
        summary = {SUMMARY_JOB_ID: job.id, SUMMARY_REGISTER_SOURCE: job.uri}
        if pattern is not None and len(registered) > 1 and (job.mode == "overwrite" or not current):
            summary[SUMMARY_REGISTER_URI] = pattern
            summary[SUMMARY_REGISTER_FILES] = str(len(registered))
        update = transaction.update_snapshot(snapshot_properties=summary)
        producer: _SnapshotProducer[Any] = update.overwrite() if to_delete else update.fast_append()
        with producer:
            for data_file in to_delete:
                producer.delete_data_file(data_file)
            for data_file in to_add:
                producer.append_data_file(data_file)
        if self.stop.expired:
            _discard_written_files(producer)
            raise JobInterrupted()
        if not owned():
            _discard_written_files(producer)
            raise JobLost(job.id)
        try:
            transaction.commit_transaction()
        except (errors.CommitFailed, errors.AlreadyExists) as exc:
            _discard_written_files(producer)
            raise _Conflict(str(exc)) from exc
        return producer.snapshot_id

    def _namespace_for_create(self, warehouse: Warehouse, namespace: tuple[str, ...]) -> dict[str, str]:
        """The properties of the new table's namespace; the default namespace is created on first use."""
        try:
            return self.store.get_namespace(warehouse.id, namespace).properties
        except errors.NoSuchNamespace:
            if namespace != (self.settings.default_namespace,):
                raise JobFailed(f"Namespace does not exist: {'.'.join(namespace)}") from None
        try:
            self.store.create_namespace(warehouse.id, namespace, {})
        except errors.AlreadyExists:
            pass
        return self.store.get_namespace(warehouse.id, namespace).properties

    def _data_files(self, footers: list[Footer], metadata: TableMetadata, name: str) -> list[DataFile]:
        """Check every file against the table's schema and describe it from its footer alone."""
        schema = metadata.schema()
        spec = metadata.spec()
        plan = compute_statistics_plan(schema, metadata.properties)
        mapping = parquet_path_to_id_mapping(schema)
        verdicts: dict[str, str | None] = {}
        files = []
        for footer in footers:
            arrow_schema = footer.metadata.schema.to_arrow_schema()
            key = arrow_schema.to_string(show_schema_metadata=False)
            if key not in verdicts:
                verdicts[key] = file_mismatch(schema, arrow_schema, metadata.format_version)
            if (problem := verdicts[key]) is not None:
                raise JobFailed(f"{footer.location} does not fit the schema of table {name}: {problem}")
            try:
                statistics = data_file_statistics_from_parquet_metadata(
                    parquet_metadata=footer.metadata, stats_columns=plan, parquet_column_mapping=mapping
                )
                partition = statistics.partition(spec, schema)
            except (KeyError, ValueError) as exc:
                raise JobFailed(f"{footer.location}: cannot derive Iceberg statistics from its footer: {exc}") from exc
            files.append(
                DataFile.from_args(
                    content=DataFileContent.DATA,
                    file_path=footer.location,
                    file_format=FileFormat.PARQUET,
                    partition=partition,
                    file_size_in_bytes=footer.size,
                    sort_order_id=None,
                    spec_id=metadata.default_spec_id,
                    equality_ids=None,
                    key_metadata=None,
                    **statistics.to_serialized_dict(),
                )
            )
        return files
