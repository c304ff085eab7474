"""Access delegation over HTTP, checked against the real S3 server: STS-vended credentials limited to one
table and to the caller's privileges, the credentials endpoint, remote signing, presigned URLs, and the
static per-warehouse fallback."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalog.app import create_app
from catalog.storage.s3 import presign
from tests.conftest import Backend, authorized_client
from tests.delegation import Caller, denied, make_caller, s3_client_from, sts_backend
from tests.integration.helpers import SCHEMA

pytestmark = [pytest.mark.s3]

VENDED = {"X-Iceberg-Access-Delegation": "vended-credentials"}
SIGNING = {"X-Iceberg-Access-Delegation": "remote-signing"}


@dataclass
class World:
    """One catalog with tables ``db.t1``, ``db.t10`` (a sibling prefix) and ``db.t2``, and callers:
    ``reader`` (SELECT on t1), ``writer`` (SELECT, INSERT on t1), ``outsider`` (SELECT on t2 only)."""

    backend: Backend
    app: FastAPI
    admin: TestClient
    locations: dict[str, str]
    reader: Caller
    writer: Caller
    outsider: Caller

    def client(self, caller: Caller) -> TestClient:
        client = TestClient(self.app, headers=caller.headers)
        client.prefix = self.admin.prefix  # type: ignore[attr-defined]
        return client

    def url(self, table: str, suffix: str = "") -> str:
        return f"{self.admin.prefix}/namespaces/db/tables/{table}{suffix}"  # type: ignore[attr-defined]


def build_world(backend: Backend) -> Iterator[World]:
    assert backend.s3 is not None
    app = create_app(backend.settings)
    with authorized_client(app) as admin:
        assert admin.post(f"{admin.prefix}/namespaces", json={"namespace": ["db"]}).status_code == 200  # type: ignore[attr-defined]
        locations = {}
        # namespace db.t1 puts table db.t1.x inside table db.t1's location (.../db/t1/x)
        assert admin.post(f"{admin.prefix}/namespaces", json={"namespace": ["db", "t1"]}).status_code == 200  # type: ignore[attr-defined]
        for namespace, table in (("db", "t1"), ("db", "t10"), ("db", "t2"), ("db%1Ft1", "x")):
            response = admin.post(
                f"{admin.prefix}/namespaces/{namespace}/tables",  # type: ignore[attr-defined]
                json={"name": table, "schema": SCHEMA},
            )
            assert response.status_code == 200, response.text
            locations[table] = response.json()["metadata"]["location"]
        assert locations["x"].startswith(locations["t1"] + "/")
        s3 = backend.s3.client()
        for table, location in locations.items():
            s3.put_object(Bucket=backend.s3.bucket, Key=data_key(location, "existing.txt"), Body=table.encode())
        yield World(
            backend,
            app,
            admin,
            locations,
            reader=make_caller(app, "reader", {"db.t1": ["SELECT"]}),
            writer=make_caller(app, "writer", {"db.t1": ["SELECT", "INSERT"]}),
            outsider=make_caller(app, "outsider", {"db.t2": ["SELECT"]}),
        )


@pytest.fixture
def world(backend_factory: Callable[..., Backend]) -> Iterator[World]:
    yield from build_world(sts_backend(backend_factory))


def data_key(location: str, name: str) -> str:
    """The S3 key of file ``name`` in the data directory of the table at ``location``."""
    return urlsplit(location).path.lstrip("/") + f"/data/{name}"


def key_of(world: World, table: str, name: str) -> str:
    return data_key(world.locations[table], name)


def vended_config(world: World, caller: Caller, table: str = "t1") -> dict[str, str]:
    with world.client(caller) as client:
        response = client.get(world.url(table), headers=VENDED)
    assert response.status_code == 200, response.text
    body = response.json()
    config: dict[str, str] = body["config"]
    assert body["storage-credentials"][0]["prefix"] == world.locations[table]
    assert body["storage-credentials"][0]["config"]["s3.access-key-id"] == config["s3.access-key-id"]
    return config


# --- vended credentials -------------------------------------------------------------------------------


def test_reader_gets_read_only_credentials_for_its_table_only(world: World) -> None:
    config = vended_config(world, world.reader)
    assert config["s3.session-token"] and config["s3.access-key-id"] != world.backend.s3.access_key  # type: ignore[union-attr]
    assert int(config["s3.session-token-expires-at-ms"]) > time.time() * 1000 + 600_000
    assert config["client.refresh-credentials-endpoint"] == "v1/lake/namespaces/db/tables/t1/credentials"
    bucket = world.backend.s3.bucket  # type: ignore[union-attr]
    s3 = s3_client_from(world.backend.s3, config)  # type: ignore[arg-type]

    assert s3.get_object(Bucket=bucket, Key=key_of(world, "t1", "existing.txt"))["Body"].read() == b"t1"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=urlsplit(world.locations["t1"]).path.lstrip("/") + "/")
    assert any(o["Key"].endswith("existing.txt") for o in listed.get("Contents", []))
    # read-only: no writes, no deletes
    assert denied(lambda: s3.put_object(Bucket=bucket, Key=key_of(world, "t1", "new.txt"), Body=b"x"))
    assert denied(lambda: s3.delete_object(Bucket=bucket, Key=key_of(world, "t1", "existing.txt")))
    # nothing of the other tables, not even the sibling prefix t10 or a listing of the namespace
    assert denied(lambda: s3.get_object(Bucket=bucket, Key=key_of(world, "t2", "existing.txt")))
    assert denied(lambda: s3.get_object(Bucket=bucket, Key=key_of(world, "t10", "existing.txt")))
    namespace_dir = urlsplit(world.locations["t1"]).path.lstrip("/").rsplit("/", 1)[0] + "/"
    assert denied(lambda: s3.list_objects_v2(Bucket=bucket, Prefix=namespace_dir))
    assert denied(lambda: s3.list_objects_v2(Bucket=bucket, Prefix=urlsplit(world.locations["t2"]).path.lstrip("/")))


def test_tables_nested_in_the_location_are_excluded(world: World) -> None:
    """Table db.t1.x lives under db.t1's location: db.t1's credentials and signatures do not reach it."""
    bucket = world.backend.s3.bucket  # type: ignore[union-attr]
    for caller in (world.reader, world.writer):
        s3 = s3_client_from(world.backend.s3, vended_config(world, caller))  # type: ignore[arg-type]
        assert s3.get_object(Bucket=bucket, Key=key_of(world, "t1", "existing.txt"))["Body"].read() == b"t1"
        assert denied(lambda s3=s3: s3.get_object(Bucket=bucket, Key=key_of(world, "x", "existing.txt")))
        assert denied(lambda s3=s3: s3.put_object(Bucket=bucket, Key=key_of(world, "x", "new.txt"), Body=b"x"))
    assert sign(world, world.writer, "GET", object_uri(world, "x", "existing.txt")).status_code == 403
    t1_dir = urlsplit(world.locations["t1"]).path.lstrip("/") + "/"
    listing = f"{world.backend.s3.endpoint}/{bucket}?list-type=2&prefix={quote(t1_dir, safe='')}"  # type: ignore[union-attr]
    assert sign(world, world.writer, "GET", listing).status_code == 403, "the listing would name x's files"


def test_too_many_nested_tables_mean_no_credentials_not_an_error(world: World) -> None:
    for i in range(20):
        created = world.admin.post(
            f"{world.admin.prefix}/namespaces/db%1Ft1/tables",  # type: ignore[attr-defined]
            json={"name": f"nested_table_with_a_long_name_{i:02d}", "schema": SCHEMA},
        )
        assert created.status_code == 200, created.text
    with world.client(world.reader) as client:
        response = client.get(world.url("t1"), headers=VENDED)
    assert response.status_code == 200, "the table still loads"
    assert "storage-credentials" not in response.json() and response.json()["config"] == {}


def test_a_table_placed_on_another_tables_files_gets_nothing(world: World) -> None:
    """Creating (or moving) a table onto another table's location or into its files yields no access to them."""
    for name, location in (("squat_data", world.locations["t2"] + "/data"), ("squat_same", world.locations["t2"])):
        created = world.admin.post(
            f"{world.admin.prefix}/namespaces/db/tables",  # type: ignore[attr-defined]
            json={"name": name, "schema": SCHEMA, "location": location},
            headers=VENDED,
        )
        assert created.status_code == 200, created.text
        assert "storage-credentials" not in created.json() and created.json()["config"] == {}
        assert world.admin.get(world.url(name, "/credentials")).json() == {"storage-credentials": []}
        assert sign(world, world.writer, "GET", object_uri(world, "t2", "existing.txt"), table=name).status_code == 403
    # and the table whose location is shared is not delegated either any more (fails closed)
    assert world.admin.get(world.url("t2", "/credentials")).json() == {"storage-credentials": []}


def test_writer_credentials_write_inside_the_table_only(world: World) -> None:
    config = vended_config(world, world.writer)
    bucket = world.backend.s3.bucket  # type: ignore[union-attr]
    s3 = s3_client_from(world.backend.s3, config)  # type: ignore[arg-type]
    s3.put_object(Bucket=bucket, Key=key_of(world, "t1", "written.txt"), Body=b"w")
    assert (
        world.backend.s3.client()
        .get_object(Bucket=bucket, Key=key_of(world, "t1", "written.txt"))[  # type: ignore[union-attr]
            "Body"
        ]
        .read()
        == b"w"
    )
    s3.delete_object(Bucket=bucket, Key=key_of(world, "t1", "written.txt"))
    assert denied(lambda: s3.put_object(Bucket=bucket, Key=key_of(world, "t2", "evil.txt"), Body=b"x"))
    assert denied(lambda: s3.put_object(Bucket=bucket, Key=key_of(world, "t10", "evil.txt"), Body=b"x"))
    assert denied(lambda: s3.delete_object(Bucket=bucket, Key=key_of(world, "t2", "existing.txt")))


def test_credentials_endpoint_follows_privileges(world: World) -> None:
    with world.client(world.reader) as client:
        response = client.get(world.url("t1", "/credentials"))
    assert response.status_code == 200, response.text
    [credential] = response.json()["storage-credentials"]
    assert credential["prefix"] == world.locations["t1"]
    bucket = world.backend.s3.bucket  # type: ignore[union-attr]
    s3 = s3_client_from(world.backend.s3, credential["config"])  # type: ignore[arg-type]
    assert s3.get_object(Bucket=bucket, Key=key_of(world, "t1", "existing.txt"))["Body"].read() == b"t1"
    assert denied(lambda: s3.put_object(Bucket=bucket, Key=key_of(world, "t1", "x.txt"), Body=b"x"))

    with world.client(world.writer) as client:
        writer = client.get(world.url("t1", "/credentials")).json()["storage-credentials"][0]["config"]
    assert writer["s3.access-key-id"] != credential["config"]["s3.access-key-id"]


def test_caller_without_select_gets_no_credentials(world: World) -> None:
    with world.client(world.outsider) as client:
        for response in (
            client.get(world.url("t1"), headers=VENDED),
            client.get(world.url("t1", "/credentials")),
            client.post(
                world.url("t1", "/sign"),
                json={"region": "us-east-1", "method": "GET", "uri": "http://x/y", "headers": {}},
            ),
        ):
            assert response.status_code == 403, response.text
            assert "access-key" not in response.text and "Authorization" not in response.text
        # its own table works: the denial is about t1
        assert client.get(world.url("t2", "/credentials")).status_code == 200


def test_no_header_means_nothing_vended(world: World) -> None:
    response = world.admin.get(world.url("t1"))
    assert response.status_code == 200
    body = response.json()
    assert "storage-credentials" not in body
    assert "s3.access-key-id" not in body["config"]
    assert body["config"]["s3.endpoint"] == world.backend.s3.endpoint  # type: ignore[union-attr]


def test_create_table_vends_credentials_to_its_creator(world: World) -> None:
    response = world.admin.post(
        f"{world.admin.prefix}/namespaces/db/tables",  # type: ignore[attr-defined]
        json={"name": "fresh", "schema": SCHEMA},
        headers=VENDED,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    location = body["metadata"]["location"]
    assert body["storage-credentials"][0]["prefix"] == location
    s3 = s3_client_from(world.backend.s3, body["config"])  # type: ignore[arg-type]
    key = urlsplit(location).path.lstrip("/") + "/data/first.txt"
    s3.put_object(Bucket=world.backend.s3.bucket, Key=key, Body=b"1")  # type: ignore[union-attr]


def test_unknown_delegation_modes_are_ignored(world: World) -> None:
    unknown = world.admin.get(world.url("t1"), headers={"X-Iceberg-Access-Delegation": "carrier-pigeon"})
    assert unknown.status_code == 200
    assert "s3.access-key-id" not in unknown.json()["config"] and "storage-credentials" not in unknown.json()
    mixed = world.admin.get(
        world.url("t1"), headers={"X-Iceberg-Access-Delegation": "carrier-pigeon, vended-credentials"}
    )
    assert mixed.status_code == 200 and mixed.json()["storage-credentials"][0]["prefix"] == world.locations["t1"]


# --- remote signing -----------------------------------------------------------------------------------


def sign(world: World, caller: Caller, method: str, uri: str, table: str = "t1", **extra: Any) -> httpx.Response:
    with world.client(caller) as client:
        response = client.post(
            world.url(table, "/sign"),
            json={"region": "us-east-1", "method": method, "uri": uri, "headers": extra.pop("headers", {}), **extra},
        )
    return response  # type: ignore[return-value]


def object_uri(world: World, table: str, name: str) -> str:
    return f"{world.backend.s3.endpoint}/{world.backend.s3.bucket}/{quote(key_of(world, table, name))}"  # type: ignore[union-attr]


def send(method: str, signed: httpx.Response, content: bytes | None = None) -> httpx.Response:
    assert signed.status_code == 200, signed.text
    body = signed.json()
    headers = {name: ", ".join(values) for name, values in body["headers"].items()}
    return httpx.request(method, body["uri"], headers=headers, content=content, timeout=10)


def test_loadtable_offers_remote_signing(world: World) -> None:
    with world.client(world.reader) as client:
        config = client.get(world.url("t1"), headers=SIGNING).json()["config"]
    assert config["s3.remote-signing-enabled"] == "true"
    assert config["s3.signer.endpoint"] == "v1/lake/namespaces/db/tables/t1/sign"
    assert "s3.access-key-id" not in config


def test_signed_requests_reach_the_store_only_inside_the_table(world: World) -> None:
    signed = sign(world, world.reader, "GET", object_uri(world, "t1", "existing.txt"))
    assert signed.status_code == 200, signed.text
    assert signed.headers["cache-control"] == "no-cache"
    assert {"Authorization", "X-Amz-Date"} <= set(signed.json()["headers"])
    assert send("GET", signed).content == b"t1"

    # outside the table (another table, the sibling prefix, a path escape, another host): refused
    for uri in (
        object_uri(world, "t2", "existing.txt"),
        object_uri(world, "t10", "existing.txt"),
        object_uri(world, "t1", "../../t2/data/existing.txt"),
        "http://169.254.169.254/latest/meta-data/",
    ):
        assert sign(world, world.reader, "GET", uri).status_code == 403, uri
    # a reader cannot have writes signed
    assert sign(world, world.reader, "PUT", object_uri(world, "t1", "new.txt")).status_code == 403
    assert sign(world, world.reader, "DELETE", object_uri(world, "t1", "existing.txt")).status_code == 403


def test_signed_writes_and_listings_for_a_writer(world: World) -> None:
    signed = sign(world, world.writer, "PUT", object_uri(world, "t1", "signed.txt"))
    assert signed.status_code == 200, signed.text
    assert send("PUT", signed, b"payload").status_code == 200
    s3 = world.backend.s3
    assert s3 is not None
    assert s3.client().get_object(Bucket=s3.bucket, Key=key_of(world, "t1", "signed.txt"))["Body"].read() == b"payload"

    data_dir = urlsplit(world.locations["t1"]).path.lstrip("/") + "/data/"
    listing = f"{s3.endpoint}/{s3.bucket}?list-type=2&prefix={quote(data_dir, safe='')}"
    listed = send("GET", sign(world, world.writer, "GET", listing))
    assert listed.status_code == 200 and b"signed.txt" in listed.content
    whole_bucket = f"{s3.endpoint}/{s3.bucket}?list-type=2"
    assert sign(world, world.writer, "GET", whole_bucket).status_code == 403

    other = key_of(world, "t2", "existing.txt")
    objects = "".join(f"<Object><Key>{key}</Key></Object>" for key in (key_of(world, "t1", "signed.txt"), other))
    delete_body = f"<Delete>{objects}</Delete>"
    assert sign(world, world.writer, "POST", f"{s3.endpoint}/{s3.bucket}?delete", body=delete_body).status_code == 403
    assert sign(world, world.writer, "PUT", object_uri(world, "t2", "x.txt")).status_code == 403
    # no server-side copies from elsewhere, no ACL changes
    source = f"/{s3.bucket}/{key_of(world, 't2', 'existing.txt')}"
    copy = sign(
        world, world.writer, "PUT", object_uri(world, "t1", "copy.txt"), headers={"x-amz-copy-source": [source]}
    )
    assert copy.status_code == 403
    assert sign(world, world.writer, "PUT", object_uri(world, "t1", "existing.txt") + "?acl").status_code == 403


# --- presigned URLs -----------------------------------------------------------------------------------


def test_presigned_urls_expire(world: World) -> None:
    location = world.locations["t1"] + "/data/existing.txt"
    # 3 s, not 1 or 2: the signing time is rounded down to the second, so a shorter URL may
    # already be stale when a busy machine fetches it.
    url = presign(location, 3, world.backend.settings)
    assert url.startswith(world.backend.s3.endpoint)  # type: ignore[union-attr]
    assert httpx.get(url, timeout=10).content == b"t1"
    time.sleep(4.5)
    expired = httpx.get(url, timeout=10)
    assert expired.status_code == 403, expired.text


# --- the static fallback ------------------------------------------------------------------------------


def test_static_mode_vends_the_configured_pair_matching_the_privileges(backend_factory: Callable[..., Backend]) -> None:
    pairs = {
        "read-access-key-id": f"ro-{uuid.uuid4().hex[:6]}",
        "read-secret-access-key": "ro-secret",
        "write-access-key-id": f"rw-{uuid.uuid4().hex[:6]}",
        "write-secret-access-key": "rw-secret",
    }
    backend = backend_factory("sqlite-s3", vending_static_credentials={"lake": pairs})
    world = next(build_world(backend))
    reader = vended_config(world, world.reader)
    writer = vended_config(world, world.writer)
    assert (reader["s3.access-key-id"], reader["s3.secret-access-key"]) == (pairs["read-access-key-id"], "ro-secret")
    assert writer["s3.access-key-id"] == pairs["write-access-key-id"]
    assert "s3.session-token" not in reader and "client.refresh-credentials-endpoint" not in reader

    # without a read pair a reader gets nothing, never the write pair
    only_write = {k: v for k, v in pairs.items() if k.startswith("write")}
    backend = backend_factory("sqlite-s3", vending_static_credentials={"lake": only_write})
    world = next(build_world(backend))
    with world.client(world.reader) as client:
        body = client.get(world.url("t1"), headers=VENDED).json()
    assert "storage-credentials" not in body and body["config"] == {}
    with world.client(world.reader) as client:
        assert client.get(world.url("t1", "/credentials")).json() == {"storage-credentials": []}


# --- a client-facing S3 endpoint ----------------------------------------------------------------------


def test_clients_get_the_client_facing_endpoint(backend_factory: Callable[..., Backend]) -> None:
    """The catalog reaches the store at one address, clients at another (docker compose: minio:9000 inside,
    127.0.0.1:9000 outside): table config, vended credentials, presigned URLs and signing use the clients' one."""
    probe = backend_factory("sqlite-s3")
    assert probe.s3 is not None
    outside = probe.s3.endpoint.replace("127.0.0.1", "localhost")
    assert outside != probe.s3.endpoint
    world = next(build_world(sts_backend(backend_factory, s3_client_endpoint=outside)))
    assert world.backend.settings.s3_endpoint != outside

    assert world.admin.get(world.url("t1")).json()["config"]["s3.endpoint"] == outside
    assert vended_config(world, world.reader)["s3.endpoint"] == outside

    url = presign(world.locations["t1"] + "/data/existing.txt", 60, world.backend.settings)
    assert url.startswith(outside + "/")
    assert httpx.get(url, timeout=10).content == b"t1"  # signed for the host it is fetched from

    on_outside = object_uri(world, "t1", "existing.txt").replace(world.backend.s3.endpoint, outside)  # type: ignore[union-attr]
    assert send("GET", sign(world, world.reader, "GET", on_outside)).content == b"t1"
    assert send("GET", sign(world, world.reader, "GET", object_uri(world, "t1", "existing.txt"))).content == b"t1"
