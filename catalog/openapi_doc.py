"""Render the app's OpenAPI document (``openapi/datlake-catalog.json``), deterministically.

``datlake openapi`` writes it; a test fails when the checked-in file is stale. The app is built
on a throwaway embedded configuration (SQLite and a ``file://`` warehouse in a temporary
directory, jobs in-process), so rendering needs no service and no ``DATLAKE_*`` variable
changes the result.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

DOCUMENT_PATH = Path(__file__).resolve().parent.parent / "openapi" / "datlake-catalog.json"


def build_document() -> dict[str, Any]:
    """The OpenAPI document of ``catalog.app.create_app`` (Iceberg ``/v1`` and Datlake ``/api/v1``)."""
    from catalog.app import create_app
    from catalog.config import Settings

    with tempfile.TemporaryDirectory(prefix="datlake-openapi-") as tmp:
        home = Path(tmp)
        # model_construct: defaults only, whatever DATLAKE_* variables the environment holds.
        settings = Settings.model_construct(
            home=home,
            database_url=f"sqlite:///{home / 'catalog.db'}",
            warehouse=(home / "warehouse").as_uri(),
            redis_url=None,
            api_docs_enabled=True,
        )
        with contextlib.redirect_stderr(io.StringIO()):  # the embedded first start prints admin credentials
            app = create_app(settings)
        try:
            return app.openapi()
        finally:
            app.state.detached.close()
            app.state.services.store.engine.dispose()


def render() -> str:
    """The document as written to disk: indented, keys sorted, one trailing newline."""
    return json.dumps(build_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
