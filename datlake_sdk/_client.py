"""``DatalakeClient``: the Datlake detached-mode API (``/api/v1``) over HTTP."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from datlake_sdk import _duckdb
from datlake_sdk._config import ClientConfig, resolve_config
from datlake_sdk._errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    UnreachableError,
    error_for_status,
)
from datlake_sdk._models import Job, Snapshot, TableInfo

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection, DuckDBPyRelation

API = "/api/v1"
TOKEN_PATH = "/v1/oauth/tokens"
NEXT_PAGE_HEADER = "X-Next-Page-Token"
RETRY_STATUSES = frozenset({502, 503, 504})
# A token is renewed this long before it expires (at most a fifth of its lifetime).
TOKEN_REFRESH_MARGIN = 60.0

try:
    __version__ = version("datlake-catalog")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


def error_from_response(response: httpx.Response) -> APIError:
    """The typed exception for an error response, carrying the server's message.

    Understands the catalog's error model ``{"error": {"message", "type", "code"}}``, OAuth2's
    ``{"error", "error_description"}`` and FastAPI's ``{"detail"}``.
    """
    message: str | None = None
    error_type: str | None = None
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            error_type = error.get("type")
        elif isinstance(error, str):
            error_type = error
            message = body.get("error_description") or error
        elif "detail" in body:
            detail = body["detail"]
            message = detail if isinstance(detail, str) else str(detail)
    if not message:
        text = response.text.strip()
        message = text[:500] if text else f"{response.status_code} {response.reason_phrase}"
    return error_for_status(response.status_code, str(message), error_type)


def _path(*segments: str) -> str:
    return "/".join(quote(segment, safe="") for segment in segments)


class DatalakeClient:
    """A client of one Datlake Catalog.

    Arguments left out are read from the environment (``DATLAKE_URL``, ``DATLAKE_API_KEY``, or
    ``DATLAKE_CLIENT_ID`` and ``DATLAKE_CLIENT_SECRET`` for an OAuth2 token) and from the profile
    file (``~/.config/datlake/config.toml``, profile ``DATLAKE_PROFILE`` or ``default``); a
    ``ConfigurationError`` names whatever is missing. Connection errors and 502/503/504 answers are
    retried with backoff (``retries`` times); 4xx answers never are.

    ``transport`` replaces httpx's network transport (e.g. ``httpx.WSGITransport``); ``env`` is read
    instead of ``os.environ``, for embedding the client in a program with its own settings.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        profile: str | None = None,
        timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config: ClientConfig = resolve_config(
            url=url,
            api_key=api_key,
            client_id=client_id,
            client_secret=client_secret,
            profile=profile,
            timeout=timeout,
            env=env,
        )
        self.retries = max(0, retries)
        self.backoff = backoff
        try:
            self._http = httpx.Client(
                base_url=self.config.url,
                timeout=self.config.timeout,
                transport=transport,
                headers={"User-Agent": f"datlake-sdk/{__version__}", "Accept": "application/json"},
            )
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"invalid catalog URL {self.config.url!r}: {exc}") from exc
        self._token: str | None = None
        self._token_renew_at = 0.0
        self._token_lock = threading.Lock()
        self._duckdb: DuckDBPyConnection | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections and the DuckDB connection, if one was opened."""
        self._http.close()
        if self._duckdb is not None:
            self._duckdb.close()
            self._duckdb = None

    def __enter__(self) -> DatalakeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        auth = "api key" if self.config.api_key else "client credentials" if self.config.client_id else "anonymous"
        return f"DatalakeClient(url={self.config.url!r}, auth={auth})"

    # --- tables and snapshots --------------------------------------------------------------

    def list_tables(self) -> list[TableInfo]:
        """Every table the caller may see, with its latest snapshot id (None: no snapshot yet)."""
        return [TableInfo.from_json(item) for item in self._get_all(f"{API}/tables")]

    def latest_snapshot(self, name: str) -> Snapshot:
        """The table's current snapshot, with the URI that reads exactly its rows."""
        return Snapshot.from_json(self._get_json(f"{API}/tables/{_path(name)}/snapshots/latest"), name)

    def get_table_uri(self, name: str) -> str:
        """What DuckDB reads with ``SELECT * FROM '<uri>'`` to get the table's current rows."""
        snapshot = self.latest_snapshot(name)
        if not snapshot.uri:
            raise NotFoundError(f"table {name} has no snapshot yet", status_code=404)
        return snapshot.uri

    def snapshots(self, name: str) -> list[Snapshot]:
        """The table's snapshot history, newest first."""
        return [Snapshot.from_json(item, name) for item in self._get_all(f"{API}/tables/{_path(name)}/snapshots")]

    def get_snapshot(self, name: str, snapshot_id: str | int) -> Snapshot:
        """One snapshot of the table by id."""
        body = self._get_json(f"{API}/tables/{_path(name)}/snapshots/{_path(str(snapshot_id))}")
        return Snapshot.from_json(body, name)

    # --- jobs ------------------------------------------------------------------------------

    def register_snapshot(
        self,
        table_name: str,
        uri: str,
        *,
        format: str = "parquet",
        schema: Mapping[str, Any] | None = None,
        mode: str = "overwrite",
        wait: bool = False,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        on_progress: Callable[[Job], None] | None = None,
    ) -> Job:
        """Ask the catalog to wrap Parquet already in the object store into a new snapshot.

        ``uri`` is one Parquet object, a prefix ending in ``/`` or a glob. ``mode="overwrite"``
        makes those files the table's whole new snapshot; ``"append"`` adds them. ``schema`` (Iceberg
        schema JSON) is checked instead of inferred. Returns the queued job, or with ``wait=True``
        the completed one (``JobFailedError`` if it failed, ``JobTimeoutError`` after ``timeout``
        seconds). Submissions carry an ``Idempotency-Key``, so a retried request never makes two jobs.
        """
        body: dict[str, Any] = {"table_name": table_name, "uri": uri, "format": format, "mode": mode}
        if schema is not None:
            body["schema"] = dict(schema)
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        response = self._request("POST", f"{API}/jobs/register-snapshot", json=body, headers=headers)
        # The 202 holds the id and status; fill in what was asked for until the job is fetched.
        job = Job.from_json({"table_name": table_name, "uri": uri, "mode": mode, "format": format, **response.json()})
        if wait:
            return self.wait_for_job(job, timeout=timeout, on_progress=on_progress)
        return job

    def get_job(self, job_id: str) -> Job:
        """The job's current state."""
        return Job.from_json(self._get_json(f"{API}/jobs/{_path(job_id)}"))

    def list_jobs(self) -> list[Job]:
        """The caller's jobs, newest first."""
        return [Job.from_json(item) for item in self._get_all(f"{API}/jobs")]

    def wait_for_job(
        self,
        job: str | Job,
        *,
        timeout: float | None = None,
        poll_interval: float = 0.1,
        max_poll_interval: float = 2.0,
        on_progress: Callable[[Job], None] | None = None,
    ) -> Job:
        """Poll the job, with growing intervals, until it is ``completed`` (returned) or ``failed``
        (``JobFailedError`` with the server's message). ``on_progress`` sees every change of status."""
        current = job if isinstance(job, Job) else self.get_job(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll_interval
        last_status: str | None = None
        while True:
            if current.status != last_status:
                last_status = current.status
                if on_progress is not None:
                    on_progress(current)
            if current.status == "completed":
                return current
            if current.status == "failed":
                raise JobFailedError(current)
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeoutError(current, timeout or 0.0)
            pause = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
            time.sleep(pause)
            interval = min(max_poll_interval, interval * 1.5)
            current = self.get_job(current.job_id)

    # --- DuckDB ----------------------------------------------------------------------------

    def duckdb(self, database: str = ":memory:") -> DuckDBPyConnection:
        """A new DuckDB connection that reads what the catalog resolves: httpfs, iceberg and avro
        loaded (offline, from the ``duckdb-extension-*`` packages when installed) and the client's
        S3 settings as a secret. The caller owns (and closes) the connection."""
        return _duckdb.connect(self.config.s3, database)

    def query(self, sql: str, params: object = None) -> DuckDBPyRelation:
        """Run ``sql`` on the client's own DuckDB connection (opened on first use, closed with the
        client) and return DuckDB's relation: ``.fetchall()``, ``.df()``, ``.arrow()``..."""
        if self._duckdb is None:
            self._duckdb = self.duckdb()
        return self._duckdb.sql(sql, params=params)

    def read_table(self, name: str) -> DuckDBPyRelation:
        """The table's latest snapshot as a DuckDB relation on the client's connection, read
        directly from the object store (``iceberg_scan`` when the URI is Iceberg metadata)."""
        snapshot = self.latest_snapshot(name)
        if not snapshot.uri:
            raise NotFoundError(f"table {name} has no snapshot yet", status_code=404)
        literal = "'" + snapshot.uri.replace("'", "''") + "'"
        if snapshot.format == "iceberg":
            return self.query(f"SELECT * FROM iceberg_scan({literal})")
        return self.query(f"SELECT * FROM {literal}")

    def setup_duckdb(self) -> list[str]:
        """Prepare plain DuckDB sessions (``duckdb.query``, the ``duckdb`` CLI) on this machine:
        install the extensions into DuckDB's extension directory and store the client's S3 settings
        as the persistent DuckDB secret ``datlake_s3``. Returns what was done."""
        return _duckdb.setup_defaults(self.config.s3)

    # --- HTTP ------------------------------------------------------------------------------

    def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self._request("GET", path, params=params).json()

    def _get_all(self, path: str) -> list[dict[str, Any]]:
        """Every item of a list endpoint, following ``X-Next-Page-Token`` from page to page."""
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {}
        while True:
            response = self._request("GET", path, params=params)
            items += response.json()
            token = response.headers.get(NEXT_PAGE_HEADER)
            if not token:
                return items
            params = {"page_token": token}

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
        data: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send with retries on connection errors and 502/503/504; raise the typed error for any
        other error status. A rejected OAuth2 token is renewed once."""
        attempt = 0
        renewed = False
        while True:
            request_headers = dict(headers or {})
            if authenticate:
                request_headers.update(self._auth_headers())
            try:
                response = self._http.request(
                    method, path, json=json, params=params, headers=request_headers, data=data
                )
            except httpx.UnsupportedProtocol as exc:
                raise ConfigurationError(f"invalid catalog URL {self.config.url!r}: {exc}") from exc
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise UnreachableError(
                        f"cannot reach the catalog at {self.config.url} ({type(exc).__name__}: {exc or 'no detail'})"
                        f" after {attempt + 1} attempt(s)"
                    ) from exc
                self._pause(attempt, None)
                attempt += 1
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                self._pause(attempt, response)
                attempt += 1
                continue
            if response.status_code == 401 and authenticate and self.config.client_id and not renewed:
                renewed = True
                with self._token_lock:
                    self._token = None
                continue
            if response.is_error:
                raise self._error(response, authenticate)
            return response

    def _error(self, response: httpx.Response, authenticated: bool) -> APIError:
        error = error_from_response(response)
        if isinstance(error, AuthenticationError) and authenticated and not self.config.has_credentials:
            error.message += (
                " (no credentials configured: set DATLAKE_API_KEY, or DATLAKE_CLIENT_ID and"
                " DATLAKE_CLIENT_SECRET, or use a profile)"
            )
            error.args = (error.message,)
        return error

    def _pause(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(8.0, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                delay = min(30.0, float(retry_after))
        time.sleep(delay)

    def _auth_headers(self) -> dict[str, str]:
        if self.config.api_key:
            return {"Authorization": f"Bearer {self.config.api_key}"}
        if self.config.client_id:
            return {"Authorization": f"Bearer {self._access_token()}"}
        return {}

    def _access_token(self) -> str:
        """An OAuth2 client-credentials token, fetched on first use and renewed before it expires."""
        with self._token_lock:
            if self._token is None or time.monotonic() >= self._token_renew_at:
                self._token, self._token_renew_at = self._fetch_token()
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.client_id or "",
            "client_secret": self.config.client_secret or "",
        }
        if self.config.scope:
            form["scope"] = self.config.scope
        started = time.monotonic()
        body = self._request("POST", TOKEN_PATH, data=form, authenticate=False).json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthenticationError(f"the token endpoint answered without an access_token: {body!r}", status_code=200)
        expires_in = body.get("expires_in")
        if expires_in is None:
            return str(token), float("inf")
        lifetime = float(expires_in)
        return str(token), started + lifetime - min(TOKEN_REFRESH_MARGIN, lifetime / 5)
