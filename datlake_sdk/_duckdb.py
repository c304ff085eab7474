"""DuckDB set up to read what the catalog resolves: extensions loaded offline, S3 as a secret.

DuckDB normally downloads its extensions on first use. The ``duckdb-extension-<name>`` PyPI
packages ship them as files; when they are installed, the extensions are installed from those
files (into DuckDB's extension directory, so later plain DuckDB sessions autoload them too) and
loaded, and DuckDB never needs the network. The S3 settings of the client's configuration become
a DuckDB secret: temporary for a connection of the client, persistent (in DuckDB's secret
directory) for ``DatalakeClient.setup_duckdb``, so that plain ``duckdb`` sessions, Python or CLI,
read the same objects.
"""

from __future__ import annotations

import glob
import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from datlake_sdk._config import S3Settings
from datlake_sdk._errors import ConfigurationError

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

EXTENSIONS = ("httpfs", "avro", "iceberg")
SECRET_NAME = "datlake_s3"


def import_duckdb() -> ModuleType:
    """The ``duckdb`` module, or a ConfigurationError saying how to install it."""
    try:
        import duckdb
    except ImportError as exc:  # the SDK works without DuckDB; only these helpers need it
        raise ConfigurationError(
            "DuckDB is not installed: pip install 'datlake-catalog[sdk-duckdb]' "
            "(or duckdb plus duckdb-extension-httpfs, -iceberg and -avro of the same version)"
        ) from exc
    return duckdb


def extension_file(name: str) -> str | None:
    """The ``<name>.duckdb_extension`` file of the ``duckdb-extension-<name>`` package matching the
    installed DuckDB version, or None when that package (or that version of it) is absent."""
    ddb = import_duckdb()
    try:
        package = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        return None
    base = os.path.join(os.path.dirname(package.__file__ or ""), "extensions")
    exact = os.path.join(base, f"v{ddb.__version__}", f"{name}.duckdb_extension")
    if os.path.exists(exact):
        return exact
    # Some builds name the directory by the full version string; accept only the same version.
    found = glob.glob(os.path.join(base, f"v{ddb.__version__}*", f"{name}.duckdb_extension"))
    return sorted(found)[-1] if found else None


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_extensions(con: DuckDBPyConnection, names: tuple[str, ...] = EXTENSIONS) -> list[str]:
    """Install (from the PyPI packages, when present) and load the extensions; return those loaded.

    An extension with no package is still loaded when DuckDB already has it installed; otherwise
    it is left for DuckDB's own autoloading.
    """
    ddb = import_duckdb()
    loaded = []
    for name in names:
        path = extension_file(name)
        if path is not None:
            con.execute(f"INSTALL {_quote(path)}")
        try:
            con.execute(f"LOAD {name}")
        except ddb.Error:
            if path is not None:
                raise
            continue
        loaded.append(name)
    return loaded


def s3_secret_sql(s3: S3Settings, *, name: str = SECRET_NAME, persistent: bool = False) -> str:
    """``CREATE SECRET`` for the object store described by ``s3``."""
    options = ["TYPE s3"]
    if s3.access_key_id:
        options.append(f"KEY_ID {_quote(s3.access_key_id)}")
    if s3.secret_access_key:
        options.append(f"SECRET {_quote(s3.secret_access_key)}")
    if s3.session_token:
        options.append(f"SESSION_TOKEN {_quote(s3.session_token)}")
    options.append(f"REGION {_quote(s3.region)}")
    if s3.endpoint:
        parts = urlsplit(s3.endpoint if "://" in s3.endpoint else f"https://{s3.endpoint}")
        options.append(f"ENDPOINT {_quote(parts.netloc + parts.path.rstrip('/'))}")
        options.append(f"USE_SSL {'true' if parts.scheme == 'https' else 'false'}")
        options.append(f"URL_STYLE {_quote('path' if s3.path_style else 'vhost')}")
    kind = "PERSISTENT SECRET" if persistent else "SECRET"
    return f"CREATE OR REPLACE {kind} {name} ({', '.join(options)})"


def connect(s3: S3Settings, database: str = ":memory:") -> DuckDBPyConnection:
    """A new DuckDB connection with the extensions loaded and the S3 settings as a temporary secret."""
    ddb = import_duckdb()
    con: DuckDBPyConnection = ddb.connect(database)
    load_extensions(con)
    if s3.configured:
        con.execute(s3_secret_sql(s3))
    return con


def setup_defaults(s3: S3Settings) -> list[str]:
    """Prepare plain DuckDB sessions: extensions installed in DuckDB's extension directory and the
    S3 settings stored as the persistent secret ``datlake_s3``. Returns what was done, for display."""
    ddb = import_duckdb()
    done = []
    con = ddb.connect(":memory:")
    try:
        for name in EXTENSIONS:
            path = extension_file(name)
            if path is not None:
                con.execute(f"INSTALL {_quote(path)}")
                done.append(f"installed DuckDB extension {name} from {path}")
        if s3.configured:
            con.execute("LOAD httpfs")
            con.execute(s3_secret_sql(s3, persistent=True))
            done.append(f"stored persistent DuckDB secret {SECRET_NAME} for S3 ({s3.endpoint or 'AWS'})")
    finally:
        con.close()
    return done
