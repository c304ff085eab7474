"""The metadata-file write of a commit on S3 (catalog.storage.s3.S3Access.put_object): one signed
PutObject, against the real S3 server; what it writes is what FileIO and boto3 read back."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from catalog import errors
from catalog.config import Settings
from catalog.storage.fileio import Storage
from catalog.storage.s3 import S3Access, S3Path
from tests.services import S3Server, free_port


def _settings(tmp_path: Path, s3: S3Server, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": tmp_path,
        "warehouse": f"s3://{s3.bucket}/put",
        **s3.settings_fields(),
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.s3
@pytest.mark.parametrize("name", ["00001-plain.metadata.json", "a dir/with space+plus/é€ key.metadata.json"])
def test_written_bytes_read_back_through_fileio_and_boto3(tmp_path: Path, s3: S3Server, name: str) -> None:
    settings = _settings(tmp_path, s3)
    location = f"s3://{s3.bucket}/put/{uuid.uuid4().hex}/{name}"
    payload = b'{"format-version":2,"x":"' + uuid.uuid4().hex.encode() * 50 + b'"}'
    S3Access(settings).put_object(location, payload)
    assert Storage(settings).read_bytes(location) == payload
    got = s3.client().get_object(Bucket=s3.bucket, Key=S3Path.parse(location).key)
    assert got["Body"].read() == payload
    assert got["ContentType"] == "application/json"


@pytest.mark.s3
def test_a_refused_write_names_the_store_error_and_not_the_secret(tmp_path: Path, s3: S3Server) -> None:
    settings = _settings(tmp_path, s3, s3_secret_access_key="not-the-secret")
    location = f"s3://{s3.bucket}/put/{uuid.uuid4().hex}.metadata.json"
    with pytest.raises(errors.StorageUnavailable) as refused:
        S3Access(settings).put_object(location, b"{}")
    message = str(refused.value)
    assert "HTTP 403" in message and "SignatureDoesNotMatch" in message
    assert "not-the-secret" not in message
    keys = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=S3Path.parse(location).key).get("KeyCount", 0)
    assert keys == 0


def test_an_unreachable_store_fails_promptly(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        warehouse="s3://bucket/put",
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    started = time.monotonic()
    with pytest.raises(errors.StorageUnavailable, match="unavailable writing s3://bucket/put/x.json"):
        S3Access(settings).put_object("s3://bucket/put/x.json", b"{}")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("endpoint", "path_style", "url"),
    [
        ("http://127.0.0.1:9000", True, "http://127.0.0.1:9000/bkt/a/b%20c.json"),
        ("http://127.0.0.1:9000/", True, "http://127.0.0.1:9000/bkt/a/b%20c.json"),
        ("https://minio.internal", False, "https://bkt.minio.internal/a/b%20c.json"),
        (None, False, "https://bkt.s3.eu-west-1.amazonaws.com/a/b%20c.json"),
        (None, True, "https://s3.eu-west-1.amazonaws.com/bkt/a/b%20c.json"),
    ],
)
def test_object_urls(tmp_path: Path, endpoint: str | None, path_style: bool, url: str) -> None:
    settings = Settings(home=tmp_path, s3_endpoint=endpoint, s3_path_style_access=path_style, s3_region="eu-west-1")
    assert S3Access(settings).object_url(S3Path("bkt", "a/b c.json")) == url
