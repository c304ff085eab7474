"""The rules of detached mode that need no services: names, globs, allowed locations, schema checks."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog import errors
from catalog.config import Settings
from catalog.persistence.store import Warehouse
from catalog.service.detached import display_name, parse_table_name
from catalog.service.jobs import check_register_uri
from catalog.storage.objects import glob_regex, glob_root
from worker.register_snapshot import Footer, JobFailed, file_mismatch, infer_schema, schema_difference

WAREHOUSE = Warehouse(1, "lake", "s3://bucket/lake", {})


def footer(table: pa.Table, location: str = "s3://bucket/lake/x.parquet") -> Footer:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return Footer(location, len(buffer.getvalue()), pq.read_metadata(pa.BufferReader(buffer.getvalue())))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sales_q1", (("default",), "sales_q1")),
        ("finance.sales_q1", (("finance",), "sales_q1")),
        ("finance.eu.sales", (("finance", "eu"), "sales")),
        ("default.t", (("default",), "t")),
    ],
)
def test_table_names(name: str, expected: tuple[tuple[str, ...], str]) -> None:
    assert parse_table_name(name, "default") == expected
    assert display_name(*expected, "default") == name.removeprefix("default.")


@pytest.mark.parametrize("name", ["", ".t", "t.", "a..b", "a/b"])
def test_invalid_table_names_are_422(name: str) -> None:
    with pytest.raises(errors.Unprocessable):
        parse_table_name(name, "default")


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("s3://b/p/*.parquet", ["s3://b/p/a.parquet"], ["s3://b/p/sub/a.parquet", "s3://b/p/a.csv"]),
        ("s3://b/p/**/*.parquet", ["s3://b/p/a.parquet", "s3://b/p/x/y/a.parquet"], ["s3://b/q/a.parquet"]),
        ("s3://b/p/**", ["s3://b/p/a", "s3://b/p/x/y"], ["s3://b/pp/a"]),
        ("s3://b/p/[ab].parquet", ["s3://b/p/a.parquet"], ["s3://b/p/c.parquet"]),
        ("s3://b/p/[!ab].parquet", ["s3://b/p/c.parquet"], ["s3://b/p/a.parquet"]),
        ("s3://b/d=2026-0*/*.parquet", ["s3://b/d=2026-01/x.parquet"], ["s3://b/d=2025-01/x.parquet"]),
    ],
)
def test_globs_follow_duckdb(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_regex(pattern)
    assert all(regex.match(m) for m in matches)
    assert not any(regex.match(m) for m in misses)


def test_glob_root_is_the_directory_before_the_first_wildcard() -> None:
    assert glob_root("s3://b/p/q*/x/*.parquet") == "s3://b/p/"
    assert glob_root("s3://b/p/**") == "s3://b/p/"


def test_allowed_locations() -> None:
    settings = Settings(register_allowed_locations="s3://landing/exports/, s3://drop/acme")
    assert check_register_uri("s3a://bucket/lake/in/a.parquet", settings, WAREHOUSE) == "s3://bucket/lake/in/a.parquet"
    assert check_register_uri("s3://landing/exports/2026/", settings, WAREHOUSE) == "s3://landing/exports/2026/"
    assert check_register_uri("s3://drop/acme/*.parquet", settings, WAREHOUSE) == "s3://drop/acme/*.parquet"
    for outside in (
        "s3://bucket/lakehouse/a.parquet",
        "s3://bucket/lake*/a.parquet",
        "s3://bucket/*",
        "s3://landing/exports-old/a.parquet",
        "s3://drop/acme2/a.parquet",
        "file:///etc/passwd",
    ):
        with pytest.raises(errors.Forbidden):
            check_register_uri(outside, settings, WAREHOUSE)
    for malformed in ("bucket/lake/a.parquet", "s3://bucket/lake/../x", "s3://bucket/lake//x", "s3://bucket/lake/a?b"):
        with pytest.raises(errors.Unprocessable):
            check_register_uri(malformed, settings, WAREHOUSE)


def test_file_checks_name_the_column() -> None:
    schema = infer_schema(footer(pa.table({"id": pa.array([1], pa.int64()), "name": ["x"]})))
    assert file_mismatch(schema, pa.schema([("id", pa.int64()), ("name", pa.string())]), 2) is None
    assert file_mismatch(schema, pa.schema([("id", pa.int32())]), 2) is None  # promotion; optional name missing
    assert file_mismatch(schema, pa.schema([("id", pa.string())]), 2) == (
        "column 'id' is string in the file but long in the table"
    )
    assert file_mismatch(schema, pa.schema([("id", pa.int64()), ("other", pa.int64())]), 2) == (
        "column 'other' is not in the table's schema"
    )
    required = infer_schema(
        footer(pa.table({"id": pa.array([1], pa.int64())}).cast(pa.schema([pa.field("id", pa.int64(), False)])))
    )
    assert file_mismatch(required, pa.schema([("other", pa.int64())]), 2) is not None
    assert "required column 'id' is missing" in (file_mismatch(required, pa.schema([]), 2) or "")
    assert "nullable in the file" in (file_mismatch(required, pa.schema([("id", pa.int64())]), 2) or "")


def test_nanosecond_timestamps_are_refused_with_a_hint() -> None:
    ns = pa.table({"ts": pa.array([1], pa.timestamp("ns"))})
    with pytest.raises(JobFailed, match="column 'ts': nanosecond timestamps .* coerce_timestamps='us'"):
        infer_schema(footer(ns, "s3://bucket/lake/ns.parquet"))
    us = infer_schema(footer(pa.table({"ts": pa.array([1], pa.timestamp("us"))})))
    assert "column 'ts': nanosecond" in (file_mismatch(us, ns.schema, 2) or "")


def test_given_schema_must_describe_the_table() -> None:
    table = infer_schema(footer(pa.table({"id": pa.array([1], pa.int64()), "name": ["x"]})))
    assert schema_difference(table, table) is None
    narrower = infer_schema(footer(pa.table({"id": pa.array([1], pa.int64())})))
    assert schema_difference(narrower, table) == "column 'name' of the table is missing"
    assert schema_difference(table, narrower) == "column 'name' is not in the table"
