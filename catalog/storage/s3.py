"""S3 specifics beyond FileIO: temporary credentials, presigned URLs, request signing, and the
metadata-file write of every commit.

The only module that imports boto3/botocore. Everything here acts with the catalog's own S3
credentials (``DATLAKE_S3_*``) and is only called after the caller's authorization was checked:

* :meth:`S3Access.put_object` writes one small object (a new metadata file) as a single signed
  PutObject over a pooled keep-alive connection. FileIO (Arrow's AWS SDK) uploads the same file
  with ``Expect: 100-continue`` and an aws-chunked body with a trailing checksum: a second round
  trip and more work on both ends, about a millisecond per commit against a nearby store. Here
  the body carries a ``Content-MD5`` instead, which the store verifies.

* :meth:`S3Access.assume_role` asks STS (AWS, MinIO, SeaweedFS) for credentials limited by a
  session policy to some key prefixes of one bucket, read-only or read-write;
* :meth:`S3Access.presign` returns an expiring presigned GET URL for one object;
* :meth:`S3Access.sign` signs one request (SigV4, unsigned payload) for the remote-signing
  clients of the Iceberg REST spec (the Java ``S3V4RestSignerClient``, PyIceberg's signer).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

import boto3
import urllib3
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from catalog import errors

if TYPE_CHECKING:
    from catalog.config import Settings

S3_SCHEMES = ("s3", "s3a", "s3n")
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

READ_OBJECT_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
WRITE_OBJECT_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")


@dataclass(frozen=True)
class S3Path:
    """A bucket and a key (or key prefix) inside it."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, location: str) -> S3Path:
        scheme, sep, rest = location.partition("://")
        if not sep or scheme not in S3_SCHEMES:
            raise errors.BadRequest(f"Not an S3 location: {location}")
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise errors.BadRequest(f"S3 location without a bucket: {location}")
        return cls(bucket, key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def is_s3(location: str) -> bool:
    return location.split("://", 1)[0] in S3_SCHEMES and "://" in location


def as_dir(key: str) -> str:
    """A key prefix that matches what is *inside* it only (``t/`` does not match ``t2/...``)."""
    key = key.strip("/")
    return f"{key}/" if key else ""


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    expiration: datetime | None


def session_policy(bucket: str, prefixes: list[str], write: bool, excluded: list[str] | None = None) -> dict[str, Any]:
    """An IAM policy allowing reads (and with ``write`` writes) under ``prefixes`` of ``bucket`` only.

    Prefixes are directory-like (``wh/ns/t/``). Listing is allowed with a ``prefix`` parameter
    inside them; nothing else of the bucket is reachable. ``excluded`` directories inside them
    (other tables nested below the table) are denied explicitly, listing them included.
    """
    dirs = [as_dir(p) for p in prefixes]
    objects = [f"arn:aws:s3:::{bucket}/{d}*" for d in dirs]
    actions = list(READ_OBJECT_ACTIONS) + (list(WRITE_OBJECT_ACTIONS) if write else [])
    list_prefixes = [pattern for d in dirs for pattern in (f"{d}*", d.rstrip("/"))]
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": actions, "Resource": objects},
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
            "Condition": {"StringLike": {"s3:prefix": list_prefixes}},
        },
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [f"arn:aws:s3:::{bucket}"]},
    ]
    if write:
        statements.append(
            {"Effect": "Allow", "Action": ["s3:ListBucketMultipartUploads"], "Resource": [f"arn:aws:s3:::{bucket}"]}
        )
    if excluded:
        others = [as_dir(e) for e in excluded]
        statements.append(
            {"Effect": "Deny", "Action": ["s3:*"], "Resource": [f"arn:aws:s3:::{bucket}/{d}*" for d in others]}
        )
        statements.append(
            {
                "Effect": "Deny",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{d}*" for d in others]}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


class _UnnormalizedSigV4(SigV4Auth):
    """SigV4 over the path exactly as the client will send it (S3 does not normalize paths)."""

    def _normalize_url_path(self, path: str) -> str:
        return path


@dataclass(frozen=True)
class ParsedRequest:
    """Where an S3 request goes: the bucket, the object key (None for bucket-level) and its query."""

    bucket: str
    key: str | None
    query: dict[str, list[str]]


class S3Access:
    """The catalog's S3 client for STS, presigning and signing (built lazily, thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._presigner: Any = None
        self._sts: Any = None
        self._credentials: Any = None
        self._http: urllib3.PoolManager | None = None

    # --- clients --------------------------------------------------------------------------------

    def _session(self) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=self.settings.s3_access_key_id,
            aws_secret_access_key=self.settings.s3_secret_access_key,
            region_name=self.settings.s3_region,
        )

    def _presign_client(self) -> Any:
        """An S3 client for the endpoint as clients reach it: a presigned URL is signed for its host.
        (Presigning is local computation; this client never connects.)"""
        with self._lock:
            if self._presigner is None:
                style: Literal["path", "virtual"] = "path" if self.settings.s3_path_style_access else "virtual"
                self._presigner = self._session().client(
                    "s3",
                    endpoint_url=self.settings.client_s3_endpoint,
                    config=Config(signature_version="s3v4", s3={"addressing_style": style}),
                )
            return self._presigner

    def _sts_client(self) -> Any:
        with self._lock:
            if self._sts is None:
                endpoint = self.settings.vending_sts_endpoint or self.settings.s3_endpoint
                self._sts = self._session().client(
                    "sts", endpoint_url=endpoint, config=Config(retries={"max_attempts": 2}, connect_timeout=5)
                )
            return self._sts

    def _signing_credentials(self) -> Any:
        """The catalog's own credentials: the configured keys, else botocore's default chain
        (environment, web identity, instance role), refreshed by botocore when they expire."""
        with self._lock:
            if self._credentials is None:
                self._credentials = self._session().get_credentials()
                if self._credentials is None:
                    raise errors.StorageUnavailable("No S3 credentials: set DATLAKE_S3_ACCESS_KEY_ID/SECRET_ACCESS_KEY")
            return self._credentials.get_frozen_credentials()

    def _pool(self) -> urllib3.PoolManager:
        with self._lock:
            if self._http is None:
                self._http = urllib3.PoolManager(
                    maxsize=32,
                    timeout=urllib3.Timeout(connect=5, read=30),
                    # A PUT of a whole object is idempotent: resend it on a dropped connection or a 5xx.
                    retries=urllib3.Retry(
                        total=3,
                        backoff_factor=0.05,
                        status_forcelist=(500, 502, 503, 504),
                        allowed_methods=frozenset({"PUT"}),
                        raise_on_status=False,
                    ),
                )
            return self._http

    def object_url(self, path: S3Path) -> str:
        """The HTTP(S) URL of an object at the catalog's own endpoint (``DATLAKE_S3_ENDPOINT``, else AWS)."""
        key = quote(path.key, safe="/~")
        endpoint = (self.settings.s3_endpoint or f"https://s3.{self.settings.s3_region}.amazonaws.com").rstrip("/")
        if self.settings.s3_path_style_access:
            return f"{endpoint}/{path.bucket}/{key}"
        scheme, _, host = endpoint.partition("://")
        return f"{scheme}://{path.bucket}.{host}/{key}"

    # --- writing an object ------------------------------------------------------------------------

    def put_object(self, location: str, payload: bytes, content_type: str = "application/json") -> None:
        """Write the object at ``location`` (replacing any); StorageUnavailable when the store fails."""
        url = self.object_url(S3Path.parse(location))
        digest = base64.b64encode(hashlib.md5(payload, usedforsecurity=False).digest()).decode()
        request = AWSRequest(
            method="PUT", url=url, data=payload, headers={"Content-Type": content_type, "Content-MD5": digest}
        )
        S3SigV4Auth(self._signing_credentials(), "s3", self.settings.s3_region).add_auth(request)
        try:
            response = self._pool().request("PUT", url, body=payload, headers=dict(request.headers.items()))
        except urllib3.exceptions.HTTPError as exc:
            raise errors.StorageUnavailable(f"Object store unavailable writing {location}: {exc}") from exc
        if response.status != 200:
            code = _error_code(response.data)
            raise errors.StorageUnavailable(
                f"Object store unavailable writing {location}: HTTP {response.status}{f' {code}' if code else ''}"
            )

    # --- STS ------------------------------------------------------------------------------------

    def assume_role(
        self, role_arn: str, session_name: str, policy: dict[str, Any], duration_seconds: int
    ) -> TemporaryCredentials:
        """Temporary credentials of ``role_arn`` narrowed by the session ``policy``."""
        try:
            response = self._sts_client().assume_role(
                RoleArn=role_arn,
                RoleSessionName=session_name[:64],
                Policy=json.dumps(policy, separators=(",", ":")),
                DurationSeconds=duration_seconds,
            )
        except (ClientError, BotoCoreError) as exc:
            raise errors.StorageUnavailable(f"STS AssumeRole failed: {exc}") from exc
        found = response["Credentials"]
        return TemporaryCredentials(
            found["AccessKeyId"], found["SecretAccessKey"], found.get("SessionToken"), found.get("Expiration")
        )

    # --- presigned URLs -------------------------------------------------------------------------

    def presign(self, location: str, expires: int) -> str:
        """A presigned GET URL for the object at ``location``, valid for ``expires`` seconds."""
        path = S3Path.parse(location)
        try:
            url: str = self._presign_client().generate_presigned_url(
                "get_object", Params={"Bucket": path.bucket, "Key": path.key}, ExpiresIn=expires
            )
        except (ClientError, BotoCoreError) as exc:
            raise errors.StorageUnavailable(f"Cannot presign {location}: {exc}") from exc
        return url

    # --- remote signing -------------------------------------------------------------------------

    def endpoint_hosts(self) -> set[str]:
        """``host[:port]`` of the configured endpoints, the catalog's and the clients' (empty: AWS)."""
        endpoints = (self.settings.s3_endpoint, self.settings.client_s3_endpoint)
        return {urlsplit(endpoint).netloc.lower() for endpoint in endpoints if endpoint}

    def parse_request_uri(self, uri: str) -> ParsedRequest:
        """Bucket, key and query of a request to this catalog's S3 endpoint; BadRequest for other hosts."""
        parts = urlsplit(uri)
        host = parts.netloc.lower()
        raw_path = parts.path or "/"
        path = unquote(raw_path)
        configured = self.endpoint_hosts()
        virtual_host = next((c for c in configured if host.endswith("." + c)), None)
        if host in configured:
            bucket, _, key = path.lstrip("/").partition("/")
        elif virtual_host is not None:
            bucket, key = host[: -len(virtual_host) - 1], path.lstrip("/")
        elif not configured and host.endswith(".amazonaws.com") and host.startswith("s3."):
            bucket, _, key = path.lstrip("/").partition("/")
        elif not configured and host.endswith(".amazonaws.com") and ".s3." in host:
            bucket, key = host.split(".s3.", 1)[0], path.lstrip("/")
        else:
            raise errors.Forbidden(f"Refusing to sign a request to {parts.netloc}: not this catalog's object store")
        query = parse_qs(parts.query, keep_blank_values=True)
        return ParsedRequest(bucket, key or None, query)

    def sign(self, method: str, uri: str, headers: dict[str, list[str]], region: str) -> dict[str, list[str]]:
        """SigV4 headers (``Authorization``, ``x-amz-date``, ...) for one request, unsigned payload.

        Only ``host``, ``content-md5`` and ``x-amz-*`` headers are signed, so clients may add
        or change the others (user agent, retry counters, ranges) without breaking the signature.
        """
        if not self.settings.s3_access_key_id or not self.settings.s3_secret_access_key:
            raise errors.NotImplementedByCatalog("Remote signing needs the catalog's own S3 credentials")
        to_sign: dict[str, str] = {}
        for name, values in headers.items():
            lname = name.lower()
            if (lname.startswith("x-amz-") and lname not in ("x-amz-date", "x-amz-security-token")) or (
                lname == "content-md5"
            ):
                to_sign[lname] = ",".join(values)
        to_sign.setdefault("x-amz-content-sha256", UNSIGNED_PAYLOAD)
        to_sign["host"] = urlsplit(uri).netloc
        request = AWSRequest(method=method.upper(), url=uri, headers=to_sign)
        _UnnormalizedSigV4(self._signing_credentials(), "s3", region or self.settings.s3_region).add_auth(request)
        return {name: [value] for name, value in request.headers.items() if name.lower() != "host"}


def _error_code(body: bytes) -> str | None:
    """The ``<Code>`` of an S3 error response (AccessDenied, NoSuchBucket, ...), if there is one."""
    start = body.find(b"<Code>")
    end = body.find(b"</Code>", start)
    return body[start + 6 : end].decode(errors="replace") if start >= 0 and end > start else None


_shared: dict[int, S3Access] = {}
_shared_lock = threading.Lock()


def access_for(settings: Settings) -> S3Access:
    """The :class:`S3Access` of a settings object (one per settings instance, reused)."""
    with _shared_lock:
        found = _shared.get(id(settings))
        if found is None or found.settings is not settings:
            found = S3Access(settings)
            _shared[id(settings)] = found
        return found


def presign(location: str, expires: int, settings: Settings) -> str:
    """A presigned HTTP(S) GET URL for ``location`` that stops working after ``expires`` seconds.

    For detached-mode readers without S3 keys. Call it only after checking that the caller may
    read the table the object belongs to.
    """
    return access_for(settings).presign(location, expires)
