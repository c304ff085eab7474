"""MkDocs hook: the API reference page, rendered at build time from the checked-in OpenAPI document.

``mkdocs.yml`` loads this module under ``hooks:`` and names the document in ``extra.openapi_file``
(``openapi/datlake-catalog.json``, written by ``datlake openapi``). The page
``reference/api.md`` holds the hand-written introduction and a marker line; the marker is
replaced by one section per tag, one entry per path and method (summary, parameters, request
body, responses with their schema names), the component schemas, and the table that maps each
``/v1`` route to its operation in the upstream Iceberg REST spec. Nothing is fetched: the page is
plain Markdown, so the site works offline and needs no Swagger UI from a CDN.

A missing or unreadable document fails the build with a message that says how to produce it,
rather than publishing a reference page without operations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.livereload import LiveReloadServer
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

REFERENCE_PAGE = "reference/api.md"
MARKER = "<!-- openapi-reference -->"
DEFAULT_OPENAPI_FILE = "openapi/datlake-catalog.json"
METHODS = ("get", "head", "post", "put", "patch", "delete")

# (method, path) of every /v1 route -> (operationId in the Iceberg REST spec, the spec's request schema).
# The catalog parses Iceberg request bodies itself, so its own OpenAPI document does not describe
# them; the spec's schema names tell a reader where the body is defined.
UPSTREAM: dict[tuple[str, str], tuple[str, str | None]] = {
    ("GET", "/v1/config"): ("getConfig", None),
    ("POST", "/v1/oauth/tokens"): ("getToken", "OAuthTokenRequest"),
    ("GET", "/v1/{prefix}/namespaces"): ("listNamespaces", None),
    ("POST", "/v1/{prefix}/namespaces"): ("createNamespace", "CreateNamespaceRequest"),
    ("GET", "/v1/{prefix}/namespaces/{namespace}"): ("loadNamespaceMetadata", None),
    ("HEAD", "/v1/{prefix}/namespaces/{namespace}"): ("namespaceExists", None),
    ("DELETE", "/v1/{prefix}/namespaces/{namespace}"): ("dropNamespace", None),
    ("POST", "/v1/{prefix}/namespaces/{namespace}/properties"): (
        "updateProperties",
        "UpdateNamespacePropertiesRequest",
    ),
    ("GET", "/v1/{prefix}/namespaces/{namespace}/tables"): ("listTables", None),
    ("POST", "/v1/{prefix}/namespaces/{namespace}/tables"): ("createTable", "CreateTableRequest"),
    ("POST", "/v1/{prefix}/namespaces/{namespace}/register"): ("registerTable", "RegisterTableRequest"),
    ("GET", "/v1/{prefix}/namespaces/{namespace}/tables/{table}"): ("loadTable", None),
    ("HEAD", "/v1/{prefix}/namespaces/{namespace}/tables/{table}"): ("tableExists", None),
    ("POST", "/v1/{prefix}/namespaces/{namespace}/tables/{table}"): ("updateTable", "CommitTableRequest"),
    ("DELETE", "/v1/{prefix}/namespaces/{namespace}/tables/{table}"): ("dropTable", None),
    ("POST", "/v1/{prefix}/namespaces/{namespace}/tables/{table}/unregister"): ("unregisterTable", None),
    ("POST", "/v1/{prefix}/tables/rename"): ("renameTable", "RenameTableRequest"),
    ("POST", "/v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics"): (
        "reportMetrics",
        "ReportMetricsRequest",
    ),
    ("POST", "/v1/{prefix}/transactions/commit"): ("commitTransaction", "CommitTransactionRequest"),
    ("GET", "/v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials"): ("loadCredentials", None),
    ("GET", "/v1/{prefix}/namespaces/{namespace}/views"): ("listViews", None),
    ("POST", "/v1/{prefix}/namespaces/{namespace}/views"): ("createView", "CreateViewRequest"),
    ("POST", "/v1/{prefix}/namespaces/{namespace}/register-view"): ("registerView", "RegisterViewRequest"),
    ("GET", "/v1/{prefix}/namespaces/{namespace}/views/{view}"): ("loadView", None),
    ("HEAD", "/v1/{prefix}/namespaces/{namespace}/views/{view}"): ("viewExists", None),
    ("POST", "/v1/{prefix}/namespaces/{namespace}/views/{view}"): ("replaceView", "CommitViewRequest"),
    ("DELETE", "/v1/{prefix}/namespaces/{namespace}/views/{view}"): ("dropView", None),
    ("POST", "/v1/{prefix}/views/rename"): ("renameView", "RenameTableRequest"),
}
# Routes under /v1 that are not operations of the catalog spec itself.
REMOTE_SIGNING = ("POST", "/v1/{prefix}/namespaces/{namespace}/tables/{table}/sign")


def openapi_path(config: MkDocsConfig) -> Path:
    """The OpenAPI document named by ``extra.openapi_file``, relative to ``mkdocs.yml``."""
    name = str(config.extra.get("openapi_file") or DEFAULT_OPENAPI_FILE)
    return (Path(config.config_file_path).parent / name).resolve()


def load_openapi(path: Path) -> dict[str, Any]:
    """Read the document, or fail the build saying how to produce it."""
    if not path.is_file():
        raise PluginError(
            f"API reference: the OpenAPI document {path} does not exist. Generate it with "
            "`datlake openapi` (it writes openapi/datlake-catalog.json), or point extra.openapi_file "
            "in mkdocs.yml at another copy."
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PluginError(f"API reference: cannot read the OpenAPI document {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise PluginError(f"API reference: {path} is not an OpenAPI document (no 'paths' object)")
    return document


# --- rendering -------------------------------------------------------------------------------


def _cell(text: object) -> str:
    """Text safe inside one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _schema_anchor(name: str) -> str:
    return f"schema-{name}"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _resolve(document: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) of a parameter, body or response."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = document
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, Mapping) else {}
    return target if isinstance(target, Mapping) else {}


def describe_type(schema: Mapping[str, Any] | None) -> str:
    """A short, linked type expression: ``string``, ``array of [TableItem](#schema-TableItem)``..."""
    if not schema:
        return "any JSON"
    if "$ref" in schema:
        name = _ref_name(str(schema["$ref"]))
        return f"[`{name}`](#{_schema_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [describe_type(option) for option in schema[key]]
            nullable = "null" in options
            kept = [option for option in options if option != "null"]
            text = " or ".join(dict.fromkeys(kept)) or "null"
            return f"{text} (nullable)" if nullable else text
    if "allOf" in schema:
        return " and ".join(describe_type(part) for part in schema["allOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        return f"array of {describe_type(schema.get('items'))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and extra:
            return f"object of {describe_type(extra)}"
        return "object"
    if kind is None:
        return "any JSON"
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


def _content_types(content: Mapping[str, Any] | None) -> list[str]:
    lines = []
    for media_type, media in (content or {}).items():
        schema = media.get("schema") if isinstance(media, Mapping) else None
        lines.append(f"`{media_type}`: {describe_type(schema)}")
    return lines


def _operation_anchor(method: str, path: str, operation: Mapping[str, Any]) -> str:
    raw = str(operation.get("operationId") or f"{method}-{path}")
    return "op-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in raw)


def _upstream_note(method: str, path: str) -> str | None:
    key = (method.upper(), path)
    if key in UPSTREAM:
        operation, body = UPSTREAM[key]
        note = f"Iceberg REST spec: `{operation}`"
        return f"{note}, request body `{body}`." if body else f"{note}."
    if key == REMOTE_SIGNING:
        return (
            "Iceberg remote signing: the spec's `RemoteSignRequest`, at the per-table address `loadTable` "
            "returns in `s3.signer.endpoint`."
        )
    if path.startswith("/v1/"):
        return "Datlake addition under `/v1`: not an operation of the Iceberg REST spec."
    return None


def render_operation(document: Mapping[str, Any], method: str, path: str, operation: Mapping[str, Any]) -> str:
    """One operation: heading, summary, description, parameters, request body and responses."""
    out = [f"### `{method.upper()} {path}` {{ #{_operation_anchor(method, path, operation)} }}", ""]
    if operation.get("deprecated"):
        out += ["**Deprecated.**", ""]
    if operation.get("summary"):
        out += [str(operation["summary"]).strip().rstrip(".") + ".", ""]
    if operation.get("description"):
        out += [str(operation["description"]).strip(), ""]
    upstream = _upstream_note(method, path)
    if upstream:
        out += [upstream, ""]

    parameters = [_resolve(document, p) for p in operation.get("parameters", [])]
    if parameters:
        out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for parameter in parameters:
            description = parameter.get("description") or parameter.get("schema", {}).get("description", "")
            out.append(
                f"| `{_cell(parameter.get('name', ''))}` | {parameter.get('in', '')} "
                f"| {_cell(describe_type(parameter.get('schema')))} "
                f"| {'yes' if parameter.get('required') else 'no'} | {_cell(description)} |"
            )
        out.append("")

    if "requestBody" in operation:
        body = _resolve(document, operation["requestBody"])
        required = "required" if body.get("required") else "optional"
        kinds = _content_types(body.get("content"))
        out += [f"**Request body** ({required}): " + "; ".join(kinds or ["any"]), ""]

    responses = operation.get("responses", {})
    if responses:
        out += ["| response | description | body |", "|---|---|---|"]
        for status, response in responses.items():
            response = _resolve(document, response)
            body_text = "; ".join(_content_types(response.get("content"))) or "none"
            headers = ", ".join(f"`{name}`" for name in response.get("headers", {}))
            if headers:
                body_text += f"; headers {headers}"
            out.append(f"| `{status}` | {_cell(response.get('description', ''))} | {_cell(body_text)} |")
        out.append("")
    return "\n".join(out)


def _operations(document: Mapping[str, Any]) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, Mapping):
                shared = [p for p in item.get("parameters", []) if p not in operation.get("parameters", [])]
                if shared:
                    operation = {**operation, "parameters": [*shared, *operation.get("parameters", [])]}
                yield method, path, operation


def render_schema(name: str, schema: Mapping[str, Any]) -> str:
    """One component schema: its description and a table of its properties."""
    out = [f"### `{name}` {{ #{_schema_anchor(name)} }}", ""]
    if schema.get("description"):
        out += [str(schema["description"]).strip(), ""]
    properties: Mapping[str, Any] = schema.get("properties", {})
    if not properties:
        out += [f"Type: {describe_type({k: v for k, v in schema.items() if k != 'title'})}.", ""]
        return "\n".join(out)
    required = set(schema.get("required", []))
    out += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, spec in properties.items():
        description = spec.get("description", "")
        if "default" in spec:
            description = f"{description} Default: `{json.dumps(spec['default'])}`.".strip()
        out.append(
            f"| `{_cell(field)}` | {_cell(describe_type(spec))} | {'yes' if field in required else 'no'} "
            f"| {_cell(description)} |"
        )
    out.append("")
    return "\n".join(out)


def render_upstream_table(document: Mapping[str, Any]) -> str:
    """Every served ``/v1`` route next to the spec operation it implements."""
    out = ["| route | Iceberg REST spec operation | spec request body |", "|---|---|---|"]
    for method, path, _operation in _operations(document):
        if not path.startswith("/v1/"):
            continue
        key = (method.upper(), path)
        if key in UPSTREAM:
            operation, body = UPSTREAM[key]
            out.append(f"| `{method.upper()} {path}` | `{operation}` | {f'`{body}`' if body else ''} |")
        elif key == REMOTE_SIGNING:
            out.append(f"| `{method.upper()} {path}` | remote signing (S3 signer) | `RemoteSignRequest` |")
        else:
            out.append(f"| `{method.upper()} {path}` | (Datlake addition) | |")
    out.append("")
    return "\n".join(out)


def render_reference(document: Mapping[str, Any]) -> str:
    """The Markdown that replaces the marker: tags in document order, then the schemas."""
    info = document.get("info", {})
    out = [
        f"Generated from the OpenAPI {document.get('openapi', '')} document of "
        f"{info.get('title', 'the catalog')} {info.get('version', '')}.".replace("  ", " "),
        "",
    ]
    declared = {tag["name"]: tag for tag in document.get("tags", []) if isinstance(tag, Mapping) and "name" in tag}
    groups: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {name: [] for name in declared}
    for method, path, operation in _operations(document):
        tag = (operation.get("tags") or ["Other"])[0]
        groups.setdefault(tag, []).append((method, path, operation))

    out += ["## Operations by tag", ""]
    for tag, operations in groups.items():
        if operations:
            out.append(f"- [{tag}](#tag-{_slug(tag)}): {len(operations)}")
    out.append("")
    out += ["## How `/v1` maps to the Iceberg REST spec", "", render_upstream_table(document)]
    for tag, operations in groups.items():
        if not operations:
            continue
        out += [f"## {tag} {{ #tag-{_slug(tag)} }}", ""]
        if declared.get(tag, {}).get("description"):
            out += [str(declared[tag]["description"]).strip(), ""]
        out += [render_operation(document, method, path, operation) for method, path, operation in operations]

    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        out += ["## Schemas", ""]
        out += [render_schema(name, schema) for name, schema in sorted(schemas.items())]
    return "\n".join(out)


def _slug(text: str) -> str:
    return "-".join("".join(ch.lower() if ch.isalnum() else " " for ch in text).split())


# --- MkDocs events ---------------------------------------------------------------------------


def on_page_markdown(markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:
    """Replace the marker of the reference page with the rendered document."""
    if page.file.src_uri != REFERENCE_PAGE:
        return None
    if MARKER not in markdown:
        raise PluginError(f"API reference: {REFERENCE_PAGE} lost its marker line {MARKER}")
    return markdown.replace(MARKER, render_reference(load_openapi(openapi_path(config))))


def on_serve(server: LiveReloadServer, /, *, config: MkDocsConfig, builder: Any) -> LiveReloadServer | None:
    """``mkdocs serve`` rebuilds when the OpenAPI document changes."""
    path = openapi_path(config)
    if path.exists():
        server.watch(str(path))
    return server
