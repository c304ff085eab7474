"""Access delegation: how an engine reaches a table's files without the warehouse's own keys.

Two mechanisms of the Iceberg REST spec, chosen by the client's ``X-Iceberg-Access-Delegation``:

* ``vended-credentials``: S3 credentials in the LoadTableResult's ``config`` and
  ``storage-credentials`` (and from ``GET .../credentials``). With
  ``DATLAKE_VENDING_STS_ROLE_ARN`` they are STS AssumeRole credentials whose session policy
  allows only the table's own prefixes, read-only unless the caller may write; otherwise the
  static per-warehouse pairs of ``DATLAKE_VENDING_STATIC_CREDENTIALS`` (the weaker mode: not
  limited to the table). Nothing is vended when neither is configured.
* ``remote-signing``: the client sends each S3 request to ``.../tables/{table}/sign``; the
  catalog signs it only when it targets the table's own prefixes and the caller's privileges
  cover its method (GET/HEAD read, anything else write).

Who gets what is decided by privileges on the table: SELECT gives read access; SELECT with any
of INSERT, UPDATE, DELETE gives read-write access (S3 cannot tell an append from a delete, so write access
includes deleting objects under the table's prefixes). Plain Python: the HTTP layer authenticates.
"""

from __future__ import annotations

import json
import logging
import re
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from pyiceberg.manifest import ManifestContent
from pyiceberg.table.metadata import TableMetadata

from catalog import errors
from catalog.auth.principal import Principal
from catalog.authz.authorizer import Authorizer
from catalog.authz.model import Privilege, Securable
from catalog.config import Settings
from catalog.lru import LruCache
from catalog.persistence.store import CatalogStore, Warehouse
from catalog.service.locations import is_inside, normalize
from catalog.storage.fileio import Storage
from catalog.storage.s3 import ParsedRequest, S3Access, S3Path, TemporaryCredentials, as_dir, is_s3, session_policy

log = logging.getLogger(__name__)

VENDED_CREDENTIALS = "vended-credentials"
REMOTE_SIGNING = "remote-signing"
WRITE_PRIVILEGES = (Privilege.INSERT, Privilege.UPDATE, Privilege.DELETE)
READ_METHODS = frozenset({"GET", "HEAD"})
STATIC_KEYS = frozenset(
    {"read-access-key-id", "read-secret-access-key", "write-access-key-id", "write-secret-access-key"}
)
MAX_SESSION_POLICY_CHARS = 2048  # AWS's limit for AssumeRole session policies (SeaweedFS applies it too)
SCOPE_CACHE_SECONDS = 10.0  # how long the tables nested in a location are remembered
CACHE_ENTRIES = 4096  # scopes and STS credentials kept per process
# Object requests may carry these query parameters (and response-*): plain reads and writes, multipart uploads.
OBJECT_QUERY_KEYS = frozenset({"uploads", "uploadId", "partNumber", "versionId", "x-id"})
LISTING_QUERY_KEYS = frozenset(
    {
        "list-type",
        "prefix",
        "delimiter",
        "max-keys",
        "continuation-token",
        "start-after",
        "fetch-owner",
        "encoding-type",
        "marker",
        "uploads",
        "key-marker",
        "upload-id-marker",
        "max-uploads",
        "x-id",
    }
)
# Headers that would reach beyond the signed object (server-side copies) or open it to others (ACLs).
REFUSED_HEADERS = ("x-amz-copy-source", "x-amz-acl", "x-amz-grant-", "x-amz-website-redirect-location")


class AccessLevel(StrEnum):
    READ = "read"
    WRITE = "write"


def access_level(authorizer: Authorizer, principal: Principal, table: Securable) -> AccessLevel | None:
    """What the caller may do with a table's files: nothing without SELECT; write with SELECT and any
    of INSERT, UPDATE, DELETE; read otherwise."""
    if not authorizer.is_allowed(principal, Privilege.SELECT, table):
        return None
    if any(authorizer.is_allowed(principal, privilege, table) for privilege in WRITE_PRIVILEGES):
        return AccessLevel.WRITE
    return AccessLevel.READ


@dataclass(frozen=True)
class Delegation:
    """The mechanisms a client accepts (``X-Iceberg-Access-Delegation``)."""

    vended_credentials: bool = False
    remote_signing: bool = False

    @classmethod
    def parse(cls, header: str | None) -> Delegation:
        """Unknown mechanisms are ignored: the spec lets a server supply any or none of those asked for."""
        if not header:
            return cls()
        modes = {part.strip().lower() for part in header.split(",") if part.strip()}
        return cls(VENDED_CREDENTIALS in modes, REMOTE_SIGNING in modes)

    @property
    def requested(self) -> bool:
        return self.vended_credentials or self.remote_signing


@dataclass(frozen=True)
class TableScope:
    """A table's location and the directories of other tables nested inside it."""

    location: str
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignedRequest:
    """What a remote-signing client asks to have signed."""

    method: str
    uri: str
    headers: Mapping[str, list[str]]
    body: str | None = None


@dataclass(frozen=True)
class TableAccess:
    """What a LoadTableResult carries for delegated access: ``config`` and ``storage-credentials``."""

    config: dict[str, str]
    storage_credentials: list[dict[str, Any]]


@dataclass(frozen=True)
class TableRoutes:
    """Paths (relative to the catalog's base URI) of one table's credential and signing endpoints."""

    credentials: str
    sign: str

    @classmethod
    def of(cls, prefix: str, namespace: Sequence[str], table: str) -> TableRoutes:
        namespace_path = "%1F".join(quote(level, safe="") for level in namespace)
        base = f"v1/{quote(prefix, safe='')}/namespaces/{namespace_path}/tables/{quote(table, safe='')}"
        return cls(f"{base}/credentials", f"{base}/sign")


@dataclass(frozen=True)
class PresignedFiles:
    urls: list[str]
    expires_at: datetime


def _millis(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp() * 1000))


class CredentialService:
    """Vends table-scoped credentials and signs S3 requests for one catalog."""

    def __init__(self, settings: Settings, store: CatalogStore, storage: Storage, s3: S3Access) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.s3 = s3
        for warehouse, pairs in settings.vending_static_credentials.items():
            unknown = set(pairs) - STATIC_KEYS
            if unknown:
                raise ValueError(f"DATLAKE_VENDING_STATIC_CREDENTIALS[{warehouse}]: unknown keys {sorted(unknown)}")
        # Both hold values with an expiry, checked on read (credentials: their own; scopes: ours).
        self._credentials: LruCache[tuple[str, str, tuple[str, ...], AccessLevel], TemporaryCredentials]
        self._credentials = LruCache(CACHE_ENTRIES)
        self._scopes: LruCache[tuple[int, str, str | None], tuple[float, TableScope | None]]
        self._scopes = LruCache(CACHE_ENTRIES)

    # --- what a table covers ----------------------------------------------------------------------

    def scope(self, warehouse: Warehouse, metadata: TableMetadata, metadata_location: str | None) -> TableScope | None:
        """The table's location minus the other tables nested in it; None when it cannot be delegated.

        Not delegable: a location shared with another table or view, or lying inside another
        table's data or metadata directory (a table created or moved there would otherwise get
        credentials for the other table's files). Tables and views nested below it (namespace
        ``ns.t.x`` under table ``ns.t``) are excluded. ``metadata_location``: the table's own current
        pointer (None while staged). Data or metadata paths set outside the location
        (``write.data.path``) are not covered.
        """
        location = normalize(metadata.location)
        if not is_inside(location, warehouse.location):
            return None
        key = (warehouse.id, location, metadata_location)
        now = time.monotonic()
        cached = self._scopes.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._compute_scope(warehouse, location, metadata_location)
        self._scopes.put(key, (now + SCOPE_CACHE_SECONDS, found))
        return found

    def _compute_scope(self, warehouse: Warehouse, location: str, metadata_location: str | None) -> TableScope | None:
        parts = location.split("/")
        root_depth = len(normalize(warehouse.location).split("/"))
        ancestors = ["/".join(parts[:depth]) for depth in range(root_depth, len(parts))]
        probes = [location] + [f"{a}/metadata" for a in ancestors]
        excluded: set[str] = set()
        for other in self.store.metadata_locations_under(warehouse.id, probes):
            if other == metadata_location:
                continue
            root = other[: other.rindex("/metadata/")] if "/metadata/" in other else other.rsplit("/", 1)[0]
            if root == location:
                log.warning("not delegating access to %s: another table or view shares its location", location)
                return None
            if is_inside(root, location):
                excluded.add(root)
                continue
            if is_inside(location, root) and self._inside_files_of(root, other, location):
                log.warning("not delegating access to %s: it lies inside the files of the table at %s", location, root)
                return None
        return TableScope(location, tuple(sorted(excluded)))

    def _inside_files_of(self, root: str, metadata_location: str, location: str) -> bool:
        """Whether ``location`` is inside the data or metadata directory of the table at ``root``."""
        data_dir = f"{root}/data"
        try:
            properties = self.storage.read_table_metadata(metadata_location).metadata.properties
            data_dir = normalize(properties.get("write.data.path") or data_dir)
        except Exception:  # noqa: BLE001 - a view, or unreadable: assume the default layout
            pass
        return any(is_inside(location, d) for d in (data_dir, f"{root}/metadata"))

    def mode(self, warehouse: Warehouse) -> str | None:
        """``sts``, ``static`` or None: how credentials are vended for ``warehouse``."""
        if not is_s3(warehouse.location):
            return None
        if self.settings.vending_sts_role_arn:
            return "sts"
        if warehouse.name in self.settings.vending_static_credentials:
            return "static"
        return None

    def signing_available(self, warehouse: Warehouse) -> bool:
        return is_s3(warehouse.location) and bool(self.settings.s3_access_key_id and self.settings.s3_secret_access_key)

    # --- vending ----------------------------------------------------------------------------------

    def storage_credentials(
        self, warehouse: Warehouse, metadata: TableMetadata, metadata_location: str | None, level: AccessLevel
    ) -> list[dict[str, Any]]:
        """The spec's ``storage-credentials`` for a caller at ``level`` (empty when nothing can be vended)."""
        mode = self.mode(warehouse)
        if mode is None:
            return []
        scope = self.scope(warehouse, metadata, metadata_location)
        if scope is None:
            return []
        credentials: TemporaryCredentials | None
        if mode == "sts":
            credentials = self._sts_credentials(metadata, scope, level)
        else:
            credentials = self._static_credentials(warehouse, level)
        if credentials is None:
            return []
        config = {
            "s3.access-key-id": credentials.access_key_id,
            "s3.secret-access-key": credentials.secret_access_key,
        }
        if credentials.session_token:
            config["s3.session-token"] = credentials.session_token
        if expires := _millis(credentials.expiration):
            config["s3.session-token-expires-at-ms"] = expires
        return [{"prefix": scope.location, "config": config}]

    def _static_credentials(self, warehouse: Warehouse, level: AccessLevel) -> TemporaryCredentials | None:
        pairs = self.settings.vending_static_credentials.get(warehouse.name, {})
        key_id, secret = pairs.get(f"{level.value}-access-key-id"), pairs.get(f"{level.value}-secret-access-key")
        if not key_id or not secret:
            log.info("no static %s credentials configured for warehouse %s: nothing vended", level, warehouse.name)
            return None
        return TemporaryCredentials(key_id, secret, None, None)

    def _sts_credentials(
        self, metadata: TableMetadata, scope: TableScope, level: AccessLevel
    ) -> TemporaryCredentials | None:
        """STS credentials for exactly this scope and level, reused while at least half their life is left.

        The scope alone decides what the credentials allow, so callers with the same access to the
        same table share them; one AssumeRole per table and level per half lifetime.
        """
        role_arn = self.settings.vending_sts_role_arn
        assert role_arn is not None
        path = S3Path.parse(scope.location)
        excluded = tuple(S3Path.parse(e).key for e in scope.excluded)
        cache_key = (path.bucket, path.key, excluded, level)
        ttl = self.settings.vending_credentials_ttl_seconds
        found = self._credentials.get(cache_key)
        if found is not None and found.expiration is not None:
            left = found.expiration.timestamp() - time.time()
            if left > ttl / 2:
                return found
        session = re.sub(r"[^\w+=,.@-]", "-", f"datlake-{level.value}-{metadata.table_uuid.hex[:16]}")
        policy = session_policy(path.bucket, [path.key], write=level is AccessLevel.WRITE, excluded=list(excluded))
        if len(json.dumps(policy, separators=(",", ":"))) > MAX_SESSION_POLICY_CHARS:
            log.warning(
                "not vending for %s: %d nested tables make the session policy too large", path.uri, len(excluded)
            )
            return None
        credentials = self.s3.assume_role(role_arn, session, policy, ttl)
        self._credentials.put(cache_key, credentials)
        return credentials

    def table_access(
        self,
        warehouse: Warehouse,
        metadata: TableMetadata,
        metadata_location: str | None,
        level: AccessLevel | None,
        delegation: Delegation,
        routes: TableRoutes,
    ) -> TableAccess | None:
        """Config for a LoadTableResult when the client asked for delegation; None when it did not.

        When the client asked but nothing can be delegated, the storage config is left out
        entirely: an engine told to use "vended" settings without keys (DuckDB) would otherwise
        shadow the S3 credentials it already has.
        """
        if not delegation.requested:
            return None
        base = self.storage.client_config(warehouse.location)
        if level is not None and delegation.vended_credentials and self.mode(warehouse) is not None:
            vended = self.storage_credentials(warehouse, metadata, metadata_location, level)
            if vended:
                config = base | vended[0]["config"]
                if self.mode(warehouse) == "sts":
                    config["client.refresh-credentials-endpoint"] = routes.credentials
                    config["client.refresh-credentials-enabled"] = "true"
                return TableAccess(config, vended)
        can_sign = self.signing_available(warehouse) and self.scope(warehouse, metadata, metadata_location) is not None
        if level is not None and delegation.remote_signing and can_sign:
            config = base | {
                "s3.remote-signing-enabled": "true",
                "s3.signer.endpoint": routes.sign,
                "s3.signer": "S3V4RestSigner",  # PyIceberg (its fsspec FileIO)
                "py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO",
            }
            return TableAccess(config, [])
        return TableAccess({}, [])

    # --- remote signing ---------------------------------------------------------------------------

    def check_sign_request(
        self,
        warehouse: Warehouse,
        metadata: TableMetadata,
        metadata_location: str | None,
        level: AccessLevel | None,
        request: SignedRequest,
    ) -> None:
        """Refuse (403) any request outside the table's scope or beyond the caller's level."""
        method = request.method.upper()
        needed = AccessLevel.READ if method in READ_METHODS else AccessLevel.WRITE
        if level is None or (needed is AccessLevel.WRITE and level is not AccessLevel.WRITE):
            raise errors.Forbidden(f"Not allowed to sign {method} requests for this table")
        for name in request.headers:
            if name.lower().startswith(REFUSED_HEADERS):
                raise errors.Forbidden(f"Refusing to sign a request with header {name}")
        scope = self.scope(warehouse, metadata, metadata_location)
        if scope is None:
            raise errors.Forbidden("Access to this table's location cannot be delegated: it overlaps another table")
        parsed = self.s3.parse_request_uri(request.uri)
        path = S3Path.parse(scope.location)
        if parsed.bucket != path.bucket:
            raise errors.Forbidden(f"Bucket {parsed.bucket} holds none of this table's files")
        inside = _Inside(as_dir(path.key), tuple(as_dir(S3Path.parse(e).key) for e in scope.excluded))
        if parsed.key is not None:
            unexpected = set(parsed.query) - OBJECT_QUERY_KEYS
            if any(not key.startswith("response-") for key in unexpected):
                raise errors.Forbidden(f"Refusing to sign object requests with {', '.join(sorted(unexpected))}")
            inside.require(parsed.key)
            return
        _check_bucket_request(parsed, method, inside, request.body)

    def sign(self, method: str, uri: str, headers: Mapping[str, list[str]], region: str) -> dict[str, list[str]]:
        return self.s3.sign(method, uri, dict(headers), region)

    # --- presigned URLs (detached mode) -----------------------------------------------------------

    def presign_snapshot(self, metadata_location: str, snapshot_id: int, expires_in: int | None) -> PresignedFiles:
        """Expiring GET URLs for every live data file of a snapshot, for readers without S3 keys.

        Only snapshots without delete files qualify: their rows are exactly their data files'
        rows, which is what a plain Parquet reader (DuckDB ``read_parquet``) makes of the URLs.
        Call only after checking that the caller may SELECT from the table.
        """
        limit = self.settings.presigned_url_max_seconds
        expires = min(expires_in or limit, limit)
        if not is_s3(metadata_location):
            raise errors.BadRequest("Presigned URLs need a table on S3")
        metadata = self.storage.read_table_metadata(metadata_location).metadata
        snapshot = metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            raise errors.NotFound(f"No snapshot {snapshot_id}")
        io = self.storage.io_for(metadata_location)
        files: list[str] = []
        for manifest in snapshot.manifests(io):
            entries = manifest.fetch_manifest_entry(io, discard_deleted=True)
            if manifest.content != ManifestContent.DATA:
                if entries:
                    raise errors.Unprocessable(
                        f"Snapshot {snapshot_id} has delete files: read it with an Iceberg engine, not presigned URLs"
                    )
                continue
            files.extend(entry.data_file.file_path for entry in entries)
        started = datetime.now(UTC)
        urls = [self.s3.presign(path, expires) for path in sorted(files)]
        return PresignedFiles(urls, started + timedelta(seconds=expires))


@dataclass(frozen=True)
class _Inside:
    """Keys a signed request may touch: under ``root`` and not under any of ``excluded`` (directory prefixes)."""

    root: str
    excluded: tuple[str, ...]

    def require(self, key: str) -> None:
        if ".." in key.split("/") or not key.startswith(self.root) or key.startswith(self.excluded or ("\0",)):
            raise errors.Forbidden(f"Refusing to sign a request for {key!r}: outside the table's files")

    def require_listing(self, prefix: str) -> None:
        self.require(prefix)
        if any(e.startswith(prefix) for e in self.excluded):
            raise errors.Forbidden(f"Refusing to sign a listing of {prefix!r}: it holds other tables' files")


def _check_bucket_request(parsed: ParsedRequest, method: str, inside: _Inside, body: str | None) -> None:
    """Bucket-level requests: listings inside the table, DeleteObjects of the table's keys, HEAD/location."""
    query = set(parsed.query)
    if method == "POST" and query <= {"delete", "x-id"} and "delete" in query:
        if not body:
            raise errors.Forbidden("Refusing to sign DeleteObjects without its body")
        for key in _delete_keys(body):
            inside.require(key)
        return
    if method == "GET" and query and query <= LISTING_QUERY_KEYS:
        prefix = (parsed.query.get("prefix") or [""])[0]
        if not prefix:
            raise errors.Forbidden("Refusing to sign a listing of the whole bucket")
        inside.require_listing(prefix)
        return
    if (method == "HEAD" and not query) or (method == "GET" and query == {"location"}):
        return
    raise errors.Forbidden(f"Refusing to sign bucket-level {method} requests")


def _delete_keys(body: str) -> list[str]:
    if "<!" in body:  # no DTDs or entities: a DeleteObjects body never needs them
        raise errors.BadRequest("Invalid DeleteObjects body: declarations are not allowed")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise errors.BadRequest(f"Invalid DeleteObjects body: {exc}") from exc
    keys = [element.text or "" for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "Key"]
    if not keys:
        raise errors.Forbidden("DeleteObjects without keys")
    return keys
