"""The documentation site: it builds offline under ``mkdocs build --strict``, every page of the nav
is there, the API reference lists every operation of the checked-in OpenAPI document, and the
operations pages name only settings and commands that exist.

``mkdocs build --strict`` turns every warning into a failure: a page left out of the nav, a
link to a missing page or anchor, a link that leaves ``docs/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from catalog.cli import build_parser
from catalog.config import Settings

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "tools" / "docs" / "openapi_reference.py"
OPENAPI = ROOT / "openapi" / "datlake-catalog.json"

PAGES = [
    "index.html",
    "quickstart/index.html",
    "architecture/index.html",
    "rbac/index.html",
    "credentials/index.html",
    "sdk/index.html",
    "cli/index.html",
    "engines/pyiceberg/index.html",
    "engines/duckdb/index.html",
    "engines/spark/index.html",
    "detached-mode/index.html",
    "detached-mode/tutorial-direct-ingestion/index.html",
    "detached-mode/tutorial-direct-querying/index.html",
    "detached-mode/reference/index.html",
    "reference/api/index.html",
    "operations/deployment/index.html",
    "operations/configuration/index.html",
    "operations/migrations/index.html",
    "operations/scaling/index.html",
    "operations/backups/index.html",
    "operations/observability/index.html",
]


def _mkdocs_build(site_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DATLAKE_OPENAPI_FILE"}
    environment.update({"NO_MKDOCS_2_WARNING": "1", **env})  # Material's console notice about MkDocs 2.0
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site_dir)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openapi_reference", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _document() -> dict[str, Any]:
    assert OPENAPI.is_file(), f"{OPENAPI.relative_to(ROOT)} is missing: run `datlake openapi` and commit it"
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    return document


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    result = _mkdocs_build(site_dir)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    return site_dir


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    missing = [page for page in PAGES if not (site / page).is_file()]
    assert missing == []
    assert (site / "search" / "search_index.json").is_file()


def test_the_site_loads_nothing_from_the_internet(site: Path) -> None:
    """No web fonts, CDN scripts or stylesheets: the site works offline (links to elsewhere are fine)."""
    external = re.compile(
        r"<(?:script|img|iframe|source)\b[^>]*\bsrc=\"(?:https?:)?//|<link\b[^>]*\bhref=\"(?:https?:)?//"
    )
    offenders = {
        str(page.relative_to(site)): external.findall(page.read_text())
        for page in site.rglob("*.html")
        if external.search(page.read_text())
    }
    assert offenders == {}


def test_api_reference_lists_every_operation_of_the_document(site: Path) -> None:
    html = (site / "reference" / "api" / "index.html").read_text()
    operations = [
        f"{method.upper()} {path}"
        for path, item in _document()["paths"].items()
        for method in item
        if method in ("get", "head", "post", "put", "patch", "delete")
    ]
    assert operations, "the OpenAPI document has no operations"
    assert [operation for operation in operations if operation not in html] == []
    assert "loadTable" in html and "RegisterSnapshotRequest" in html


def test_every_v1_route_is_mapped_to_the_iceberg_spec() -> None:
    hook = _hook()
    served = {
        (method.upper(), path): operation.get("operationId")
        for path, item in _document()["paths"].items()
        for method, operation in item.items()
        if path.startswith("/v1/") and method in ("get", "head", "post", "put", "patch", "delete")
    }
    known = set(hook.UPSTREAM) | {hook.REMOTE_SIGNING}
    assert set(served) - known == set(), "new /v1 routes: add them to UPSTREAM in tools/docs/openapi_reference.py"
    assert known - set(served) == set(), "UPSTREAM names routes the catalog no longer serves"
    # The document uses the spec's operationIds for these routes; the page must say the same.
    differing = {
        route: (served[route], spec) for route, (spec, _body) in hook.UPSTREAM.items() if served[route] != spec
    }
    assert differing == {}


def test_a_missing_document_fails_the_build_and_says_how_to_make_it(tmp_path: Path) -> None:
    result = _mkdocs_build(tmp_path / "site", DATLAKE_OPENAPI_FILE=str(tmp_path / "absent.json"))
    assert result.returncode != 0
    assert "absent.json does not exist" in result.stderr and "datlake openapi" in result.stderr


def test_renderer_resolves_references_and_shared_parameters() -> None:
    hook = _hook()
    document = {
        "openapi": "3.1.0",
        "info": {"title": "T", "version": "1"},
        "tags": [{"name": "Things", "description": "All the things."}],
        "paths": {
            "/v1/{prefix}/namespaces/{namespace}/tables/{table}": {
                "parameters": [{"$ref": "#/components/parameters/prefix"}],
                "get": {
                    "tags": ["Things"],
                    "summary": "Load a thing",
                    "operationId": "loadTable",
                    "parameters": [{"name": "snapshots", "in": "query", "schema": {"enum": ["all", "refs"]}}],
                    "responses": {
                        "200": {"$ref": "#/components/responses/Loaded"},
                        "404": {"description": "Not | found"},
                    },
                },
            },
            "/api/v1/things": {
                "post": {
                    "tags": ["Things"],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                    },
                    "responses": {"202": {"description": "Accepted", "headers": {"Location": {}}}},
                }
            },
        },
        "components": {
            "parameters": {"prefix": {"name": "prefix", "in": "path", "required": True, "schema": {"type": "string"}}},
            "responses": {
                "Loaded": {
                    "description": "The thing",
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}
                        }
                    },
                }
            },
            "schemas": {
                "Thing": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": {"type": "integer", "format": "int64"},
                        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                    },
                }
            },
        },
    }
    text = hook.render_reference(document)
    assert "## Things { #tag-things }" in text and "All the things." in text
    assert "| `prefix` | path | string | yes |" in text
    assert "| `snapshots` | query | one of `all`, `refs` | no |" in text
    assert "array of [`Thing`](#schema-Thing)" in text
    assert "Not \\| found" in text
    assert "Iceberg REST spec: `loadTable`." in text
    assert "**Request body** (required): `application/json`: [`Thing`](#schema-Thing)" in text
    assert "none; headers `Location`" in text
    assert (
        "| `id` | integer (int64) | yes |" in text and "| `note` | string (nullable) | no | Default: `null`. |" in text
    )


def _operations_pages() -> dict[str, str]:
    pages = (ROOT / "docs" / "operations").glob("*.md")
    return {page.name: page.read_text() for page in pages if page.name != "configuration.md"}


def test_operations_pages_name_only_real_settings() -> None:
    from datlake_sdk._config import ENV_VARS

    known = {f"DATLAKE_{name.upper()}" for name in Settings.model_fields} | set(ENV_VARS.values())
    unknown = {
        (name, variable)
        for name, text in _operations_pages().items()
        for variable in re.findall(r"\bDATLAKE_[A-Z0-9_]*[A-Z0-9]\b", text)
        if variable not in known
    }
    assert unknown == set()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_operations_pages_name_only_real_commands() -> None:
    commands = _subcommands(build_parser())
    admin = _subcommands(commands["admin"])
    unknown = set()
    for name, text in _operations_pages().items():
        # `(?!datlake)`: the example database and role are called datlake too (createdb -O datlake datlake)
        for command in re.findall(r"(?<![\w/.:@-])datlake (?!datlake\b)([a-z][a-z-]*)", text):
            if command not in commands:
                unknown.add((name, command))
        for sub in re.findall(r"\bdatlake admin ([a-z][a-z-]*)", text):
            if sub not in admin:
                unknown.add((name, f"admin {sub}"))
    assert unknown == set()
