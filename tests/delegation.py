"""Helpers for the access-delegation tests: principals holding chosen privileges, S3 clients from
vended credentials, and a catalog backend whose STS vends table-scoped keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from tests.conftest import Backend, admin_credentials
from tests.services import S3Server, unavailable


@dataclass(frozen=True)
class Caller:
    """A principal made for a test: its OAuth2 client credential and its API key."""

    name: str
    credential: str  # client_id:client_secret (PyIceberg, Spark, DuckDB)
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_caller(app: FastAPI, name: str, grants: dict[str, list[str]]) -> Caller:
    """A principal with ``grants`` ({"ns.table" or "ns": [privileges]}) through a role of its own."""
    access = app.state.services.access
    created = access.create_principal(name, "user")
    access.create_role(f"{name}-role")
    access.add_member(f"{name}-role", name)
    for target, privileges in grants.items():
        kind = "table" if "." in target else "namespace"
        securable = access.securable(kind, target, None)
        for privilege in privileges:
            access.grant(f"{name}-role", access.grant_of(privilege, securable), securable)
    key = access.create_api_key(name)
    return Caller(name, f"{created.client_id}:{created.client_secret}", key.api_key)


def sts_backend(backend_factory: Any, name: str = "sqlite-s3", **overrides: object) -> Backend:
    """A backend on the test S3 server with STS vending turned on (skips/fails without STS)."""
    backend: Backend = backend_factory(name, **overrides)
    assert backend.s3 is not None
    if not backend.s3.sts_role_arn:
        unavailable("S3 server with STS", "no role to assume (DATLAKE_TEST_S3_STS_ROLE_ARN unset)")
    backend.settings.vending_sts_role_arn = backend.s3.sts_role_arn
    return backend


def s3_client_from(s3: S3Server, config: dict[str, str]) -> Any:
    """A boto3 S3 client that uses only what a catalog handed out in a table's ``config``."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=config.get("s3.endpoint", s3.endpoint),
        aws_access_key_id=config["s3.access-key-id"],
        aws_secret_access_key=config["s3.secret-access-key"],
        aws_session_token=config.get("s3.session-token"),
        region_name=s3.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def denied(call: Any) -> bool:
    """True when an S3 call is refused (403/AccessDenied); any other failure is re-raised."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
            return True
        raise
    return False


def admin_catalog(app: FastAPI, url: str, backend: Backend) -> Any:
    """A PyIceberg catalog of the administrator, with the backend's own S3 keys, and a namespace ``d``."""
    from pyiceberg.catalog import load_catalog

    admin = load_catalog(
        "admin",
        type="rest",
        uri=url,
        warehouse=backend.settings.warehouse_name,
        credential=admin_credentials(app).credential,
        **backend.storage_properties(),
    )
    admin.create_namespace("d")
    return admin
