"""Fixtures shared by integration tests (the general ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import Backend, authorized_client
from tests.integration.helpers import create_namespace, create_table


@pytest.fixture
def pg_admin(pg_backend: Backend) -> Iterator[TestClient]:
    """An administrator's client on a PostgreSQL catalog (lifespan running) holding table ``db.t``."""
    with authorized_client(create_app(pg_backend.settings)) as client:
        create_namespace(client, "db")
        create_table(client, "db", "t")
        yield client
