"""Query engines for end-to-end tests, usable offline.

DuckDB cannot download extensions here: ``iceberg``, ``httpfs`` and ``avro`` are installed from
the files that the ``duckdb-extension-*`` PyPI packages ship (their version equals DuckDB's).
When a package is missing the calling test is skipped (or fails under ``CI=true``).
"""

from __future__ import annotations

import glob
import importlib
import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tests.services import S3Server, unavailable

if TYPE_CHECKING:
    import duckdb

DUCKDB_EXTENSIONS = ("httpfs", "avro", "iceberg")


def duckdb_extension_file(name: str) -> str:
    """Path of the ``<name>.duckdb_extension`` shipped by the ``duckdb-extension-<name>`` package."""
    import duckdb

    package = importlib.import_module(f"duckdb_extension_{name}")
    base = os.path.join(os.path.dirname(package.__file__ or ""), "extensions")
    exact = os.path.join(base, f"v{duckdb.__version__}", f"{name}.duckdb_extension")
    if os.path.exists(exact):
        return exact
    found = sorted(glob.glob(os.path.join(base, "*", f"{name}.duckdb_extension")))
    if not found:
        raise FileNotFoundError(f"no {name}.duckdb_extension under {base}")
    return found[-1]


def duckdb_connection(extensions: tuple[str, ...] = DUCKDB_EXTENSIONS) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the given extensions installed from local files and loaded.

    Autoinstall/autoload are switched off so that DuckDB never tries to reach the network.
    """
    try:
        import duckdb

        paths = {name: duckdb_extension_file(name) for name in extensions}
    except (ImportError, FileNotFoundError) as exc:
        unavailable("DuckDB with its extension packages", str(exc))
        raise  # unreachable: unavailable() skips or fails
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    for name, path in paths.items():
        con.execute(f"INSTALL '{path}'")
        con.execute(f"LOAD {name}")
    return con


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def duckdb_s3_secret(con: duckdb.DuckDBPyConnection, s3: S3Server, name: str = "datlake_s3") -> None:
    """A DuckDB S3 secret for the test object store (path-style, plain HTTP)."""
    endpoint = urlsplit(s3.endpoint)
    con.execute(
        f"CREATE OR REPLACE SECRET {name} ("
        f"TYPE s3, KEY_ID {_quote(s3.access_key)}, SECRET {_quote(s3.secret_key)}, "
        f"ENDPOINT {_quote(endpoint.netloc)}, URL_STYLE 'path', "
        f"USE_SSL {'true' if endpoint.scheme == 'https' else 'false'}, REGION {_quote(s3.region)})"
    )


def duckdb_attach_catalog(
    con: duckdb.DuckDBPyConnection,
    catalog_url: str,
    warehouse: str,
    alias: str = "lake",
    *,
    credential: str | None = None,
    vended_credentials: bool = False,
) -> None:
    """ATTACH the catalog's REST endpoint.

    ``credential`` (``client_id:client_secret``, PyIceberg's form) authenticates with OAuth2 client
    credentials at ``/v1/oauth/tokens`` through a DuckDB ``iceberg`` secret; without it, no
    authentication. ``vended_credentials`` lets DuckDB use the S3 credentials the catalog vends
    instead of its own S3 secret.
    """
    if credential:
        client_id, _, client_secret = credential.partition(":")
        con.execute(
            f"CREATE OR REPLACE SECRET {alias}_catalog (TYPE iceberg, CLIENT_ID {_quote(client_id)}, "
            f"CLIENT_SECRET {_quote(client_secret)}, OAUTH2_SERVER_URI {_quote(catalog_url + '/v1/oauth/tokens')})"
        )
        auth = f"SECRET {alias}_catalog"
    else:
        auth = "AUTHORIZATION_TYPE 'none'"
    delegation = "vended_credentials" if vended_credentials else "none"
    con.execute(
        f"ATTACH {_quote(warehouse)} AS {alias} ("
        f"TYPE iceberg, ENDPOINT {_quote(catalog_url)}, {auth}, "
        f"ACCESS_DELEGATION_MODE {_quote(delegation)})"
    )
