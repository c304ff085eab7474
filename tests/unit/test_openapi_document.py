"""The checked-in OpenAPI document (openapi/datlake-catalog.json) is the app's, and a good one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog.cli import main
from catalog.openapi_doc import DOCUMENT_PATH, render
from catalog.rest.api_docs import OPENAPI_TAGS

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
PUBLIC = {"/healthz", "/readyz", "/metrics", "/v1/oauth/tokens"}


@pytest.fixture(scope="module")
def rendered() -> str:
    return render()


@pytest.fixture(scope="module")
def document(rendered: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in sorted(document["paths"].items())
        for method, operation in sorted(item.items())
        if method in HTTP_METHODS
    ]


def test_checked_in_document_is_current(rendered: str) -> None:
    if not DOCUMENT_PATH.is_file():
        pytest.fail(f"{DOCUMENT_PATH} is missing: run `datlake openapi` and commit the result", pytrace=False)
    if DOCUMENT_PATH.read_text(encoding="utf-8") == rendered:
        return
    try:
        old = {(m, p) for m, p, _ in operations(json.loads(DOCUMENT_PATH.read_text(encoding="utf-8")))}
    except ValueError:
        old = set()
    new = {(m, p) for m, p, _ in operations(json.loads(rendered))}
    changes = [f"+ {m.upper()} {p}" for m, p in sorted(new - old)] + [
        f"- {m.upper()} {p}" for m, p in sorted(old - new)
    ]
    pytest.fail(
        "openapi/datlake-catalog.json is stale: run `datlake openapi` and commit the result"
        + (" (operations " + ", ".join(changes) + ")" if changes else " (operations unchanged, details differ)"),
        pytrace=False,
    )


def test_rendering_is_deterministic(rendered: str) -> None:
    assert render() == rendered
    assert rendered.endswith("}\n") and not rendered.endswith("\n\n")


def test_cli_writes_the_document(tmp_path: Path, rendered: str, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "nested" / "api.json"
    assert main(["openapi", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == rendered
    assert main(["openapi", "--output", "-"]) == 0
    assert capsys.readouterr().out == rendered


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(document)  # raises with the first problem


def test_both_apis_are_documented(document: dict[str, Any]) -> None:
    paths = set(document["paths"])
    assert "/v1/config" in paths and "/v1/{prefix}/namespaces/{namespace}/tables/{table}" in paths
    assert "/api/v1/tables" in paths and "/api/v1/jobs/register-snapshot" in paths and "/api/v1/admin/roles" in paths
    assert not {"/docs", "/redoc", "/openapi.json"} & paths, "the documentation pages are not API operations"


def test_every_operation_is_tagged_summarised_and_named(document: dict[str, Any]) -> None:
    declared = [tag["name"] for tag in OPENAPI_TAGS]
    assert [tag["name"] for tag in document["tags"]] == declared
    ids = []
    for method, path, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert len(operation.get("tags", [])) == 1 and operation["tags"][0] in declared, where
        assert operation.get("summary"), where
        ids.append(operation["operationId"])
        assert "_" not in operation["operationId"], f"{where}: operationId {operation['operationId']} is not camelCase"
    assert len(ids) == len(set(ids)), "duplicate operationIds"
    used = {operation["tags"][0] for _, _, operation in operations(document)}
    assert used == set(declared), f"declared tags without operations: {set(declared) - used}"


def test_errors_and_security_are_documented(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["IcebergErrorResponse"]["required"] == ["error"]
    assert set(schemas["ErrorModel"]["required"]) == {"message", "type", "code"}
    assert "HTTPValidationError" not in schemas, "the app never answers with FastAPI's validation error body"
    assert set(document["components"]["securitySchemes"]) == {"BearerAuth", "ApiKeyAuth", "OAuth2"}
    error_ref = {"$ref": "#/components/schemas/IcebergErrorResponse"}
    for method, path, operation in operations(document):
        where = f"{method.upper()} {path}"
        if path in PUBLIC:
            assert "security" not in operation, where
            continue
        assert operation["security"] == [{"BearerAuth": []}, {"ApiKeyAuth": []}, {"OAuth2": []}], where
        for status in ("401", "403", "default"):
            assert operation["responses"][status]["content"]["application/json"]["schema"] == error_ref, where
        if path.startswith("/v1/"):
            assert "400" in operation["responses"], where
    token = document["paths"]["/v1/oauth/tokens"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    assert token["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OAuthError"
    }
