"""PyIceberg with remote signing: no S3 keys on the client, every S3 request signed by the catalog.

PyIceberg signs remotely only through its fsspec FileIO (s3fs): it asks for
``X-Iceberg-Access-Delegation: remote-signing``, the catalog answers with ``s3.signer`` and
``s3.signer.endpoint``, and s3fs has each S3 request signed at ``.../tables/{table}/sign`` before
sending it. Nothing is vended here (no STS, no static pairs) and the clients hold no S3 keys, so
every byte they read or write went through a signature of the catalog; its ``/metrics`` count them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyarrow as pa
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import SignError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType
from pyiceberg.utils.concurrent import ExecutorFactory

from catalog.app import create_app
from tests.conftest import Backend, LiveServer
from tests.delegation import admin_catalog, make_caller

pytestmark = [pytest.mark.engines, pytest.mark.s3, pytest.mark.postgres]

SCHEMA = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "s", StringType(), required=False))
SIGN_ROUTE = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/sign"
# All a PyIceberg client needs for remote signing besides uri, warehouse and credential (or token):
# docs/engines/pyiceberg.md shows the same.
REMOTE_SIGNING = {
    "py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO",
    "header.X-Iceberg-Access-Delegation": "remote-signing",
}


def batch(ids: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "s": [f"v{i}" for i in ids]})


def rows(table: Table) -> list[dict[str, Any]]:
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda row: row["id"])


@dataclass
class Signing:
    backend: Backend
    server: LiveServer
    admin: Catalog  # with the warehouse's own S3 keys, to check what the others did

    def catalog(self, name: str, **auth: str) -> Catalog:
        """PyIceberg on the fsspec FileIO, asking for remote signing, with no S3 settings at all."""
        properties = {
            "type": "rest",
            "uri": self.server.url,
            "warehouse": self.backend.settings.warehouse_name,
            **auth,
            **REMOTE_SIGNING,
        }
        return load_catalog(name, **properties)

    def signatures(self) -> dict[str, float]:
        """The sign requests the catalog has answered so far, by HTTP status (from its /metrics)."""
        text = httpx.get(f"{self.server.url}/metrics", timeout=10).text
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "datlake_http_requests_total" and sample.labels.get("route") == SIGN_ROUTE:
                    status = sample.labels["status"]
                    counts[status] = counts.get(status, 0) + sample.value
        return counts

    def signed_since(self, before: dict[str, float], status: str, at_least: float = 0) -> float:
        """Sign requests answered with ``status`` since ``before``, waiting a little for ``at_least`` of them:
        the counter is bumped once the response is out, so the client may be a step ahead of it."""
        deadline = time.monotonic() + 5
        while True:
            count = self.signatures().get(status, 0) - before.get(status, 0)
            if count >= at_least or time.monotonic() > deadline:
                return count
            time.sleep(0.05)

    def objects(self, table: Table) -> list[str]:
        """The keys under the table's location, listed with the warehouse's own keys."""
        s3 = self.backend.s3
        assert s3 is not None
        prefix = urlsplit(table.metadata.location).path.lstrip("/") + "/"
        listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=prefix)
        return sorted(entry["Key"] for entry in listed.get("Contents", []))


@pytest.fixture
def signing(backend_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Signing]:
    # PyIceberg 0.12 re-registers a FileIO's signer on a process-wide s3fs filesystem whenever a thread first
    # uses that FileIO, and a request another thread sends meanwhile goes out unsigned (S3 answers 403).
    # One worker thread keeps those first uses from overlapping (docs/engines/pyiceberg.md).
    monkeypatch.setenv("PYICEBERG_MAX_WORKERS", "1")
    monkeypatch.setattr(ExecutorFactory, "_instance", None)
    backend: Backend = backend_factory("postgres-s3")
    # nothing vended: remote signing is the only way to the files
    assert backend.settings.vending_sts_role_arn is None and not backend.settings.vending_static_credentials
    app = create_app(backend.settings)
    server = LiveServer(app).start()
    try:
        yield Signing(backend, server, admin_catalog(app, server.url, backend))
    finally:
        server.stop()


def assert_signs_without_keys(table: Table) -> None:
    """The table's FileIO is the fsspec one, signs remotely and holds no S3 credentials of any kind."""
    properties = table.io.properties
    assert type(table.io).__name__ == "FsspecFileIO"
    assert properties["s3.remote-signing-enabled"] == "true" and properties["s3.signer"] == "S3V4RestSigner"
    secrets = ("access-key", "secret", "session-token", "profile")
    assert not [key for key in properties if key.startswith(("s3.", "client.")) and any(s in key for s in secrets)]


def test_pyiceberg_writes_and_reads_through_remote_signing(signing: Signing) -> None:
    app = signing.server.app
    writer = make_caller(app, "writer", {"d": ["SELECT", "INSERT", "CREATE"]})
    catalog = signing.catalog("writer", credential=writer.credential)
    before = signing.signatures()

    # (a) the writer creates a table, appends twice and reads the rows back
    created = catalog.create_table("d.t", SCHEMA)
    assert_signs_without_keys(created)
    created.append(batch([1, 2, 3]))
    created.append(batch([4]))
    table = catalog.load_table("d.t")
    assert_signs_without_keys(table)
    assert table.io.properties["s3.signer.endpoint"] == "v1/lake/namespaces/d/tables/t/sign"
    expected = [{"id": i, "s": f"v{i}"} for i in (1, 2, 3, 4)]
    assert rows(table) == expected
    assert rows(signing.admin.load_table("d.t")) == expected, "the files really are in S3"
    assert len(signing.admin.load_table("d.t").snapshots()) == 2

    # what s3fs does besides GET/PUT: HEAD of a missing object, then a listing of the "directory" by that name
    data = f"{table.metadata.location}/data"
    assert not table.io.new_input(f"{data}/missing.parquet").exists()
    assert len(table.io.get_fs("s3").ls(data)) == 2  # type: ignore[attr-defined]

    # (c) all of that was signed by the catalog: two data files, two manifests, two manifest lists, and reads
    assert signing.signed_since(before, "200", at_least=12) >= 12
    assert signing.signed_since(before, "403") == 0

    # (b) a reader (SELECT on the table only, with an API key as token) reads the same rows and cannot append.
    # PyIceberg shares one signer per process, the one of the FileIO set up last (docs/engines/pyiceberg.md):
    # from here on that is the reader's, so the writer's table objects above are not used again.
    reader = make_caller(app, "reader", {"d.t": ["SELECT"]})
    readable = signing.catalog("reader", token=reader.api_key).load_table("d.t")
    assert_signs_without_keys(readable)
    before_read = signing.signatures()
    assert rows(readable) == expected
    assert signing.signed_since(before_read, "200", at_least=3) >= 3  # manifest list, manifests, data files

    files = signing.objects(table)
    before_append = signing.signatures()
    with pytest.raises(SignError, match="403.*'method': 'PUT'"):
        readable.append(batch([99]))
    assert signing.signed_since(before_append, "403", at_least=1) >= 1
    assert signing.objects(table) == files, "nothing of the reader's upload reached S3"
    after = signing.admin.load_table("d.t")
    assert len(after.snapshots()) == 2
    assert rows(after) == expected


def test_pyiceberg_multipart_upload_through_remote_signing(signing: Signing) -> None:
    """s3fs uploads big files in parts: create, each part, complete, all signed by the catalog."""
    writer = make_caller(signing.server.app, "writer", {"d": ["SELECT", "INSERT", "CREATE"]})
    table = signing.catalog("writer", credential=writer.credential).create_table("d.big", SCHEMA)
    fs = table.io.get_fs("s3")  # type: ignore[attr-defined]
    location = f"{table.metadata.location}/data/big.bin"
    part = 5 * 2**20  # S3's smallest part
    chunks = [bytes([n]) * size for n, size in enumerate((part, part, 2**20))]
    payload = b"".join(chunks)
    before = signing.signatures()
    with fs.open(location, "wb", block_size=part) as out:
        for chunk in chunks:  # each full block goes out as one part
            out.write(chunk)
    assert signing.signed_since(before, "200", at_least=5) >= 5  # create, three parts, complete
    assert fs.cat_file(location) == payload
    s3 = signing.backend.s3
    assert s3 is not None
    head = s3.client().head_object(Bucket=s3.bucket, Key=urlsplit(location).path.lstrip("/"))
    assert head["ContentLength"] == len(payload)
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]  # the ETag of a three-part upload

    # FileIO.delete is s3fs's bulk delete (DeleteObjects): PyIceberg's signer leaves out the request body, so
    # the catalog cannot see which keys it names and refuses; a plain DELETE of one object is signed.
    with pytest.raises(SignError, match="403.*'method': 'POST'.*delete"):
        table.io.delete(location)
    assert fs.exists(location)
    fs.rm_file(location)
    assert not s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=urlsplit(location).path.lstrip("/")).get("Contents")
