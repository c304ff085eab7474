"""Schema migrations: they match the code's schema, and the server refuses an outdated database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from catalog.app import build_services
from catalog.config import Settings
from catalog.persistence.database import SchemaOutdated, current_revision, head_revision, make_engine, migrate
from catalog.persistence.schema import metadata
from tests.services import PostgresServer


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_migrations_produce_the_declared_schema(database: str, request: pytest.FixtureRequest, tmp_path) -> None:
    if database == "postgres":
        url = request.getfixturevalue("postgres").new_database()
    else:
        url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == [], "schema.py and the migrations disagree: add a migration"


def test_server_refuses_unmigrated_postgres(postgres: PostgresServer, tmp_path) -> None:
    url = postgres.new_database()
    settings = Settings(home=tmp_path, database_url=url, warehouse=(tmp_path / "wh").as_uri())
    with pytest.raises(SchemaOutdated, match="datlake migrate"):
        build_services(settings)


def test_datlake_migrate_then_serve_checks_pass(postgres: PostgresServer, tmp_path) -> None:
    url = postgres.new_database()
    env = {**os.environ, "DATLAKE_DATABASE_URL": url, "DATLAKE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "catalog.cli", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert head_revision() in result.stdout
    engine = make_engine(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    # Migrating twice is harmless.
    again = subprocess.run(
        [sys.executable, "-m", "catalog.cli", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr


def test_serve_prints_one_line_instruction_on_outdated_schema(postgres: PostgresServer, tmp_path) -> None:
    url = postgres.new_database()
    env = {**os.environ, "DATLAKE_DATABASE_URL": url, "DATLAKE_HOME": str(tmp_path), "DATLAKE_PORT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "catalog.cli", "serve"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "datlake migrate" in result.stderr
    assert "Traceback" not in result.stderr
