"""Swagger UI (/docs), ReDoc (/redoc) and /openapi.json: public, served from local assets, switchable off."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import Backend

PAGES = {"/docs": "swagger-ui-bundle.js", "/redoc": "redoc.standalone.js"}


@pytest.fixture
def anonymous(backend_factory: Callable[..., Backend]) -> Iterator[TestClient]:
    """A client without credentials."""
    with TestClient(create_app(backend_factory("sqlite-file").settings)) as client:
        yield client


def referenced_urls(html: str) -> list[str]:
    """Every URL the page loads: src/href attributes, ReDoc's spec-url and Swagger UI's url."""
    return re.findall(r"""(?:src|href|spec-url)="([^"]+)"|\burl: '([^']+)'""", html)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_pages_load_only_local_assets(anonymous: TestClient, page: str) -> None:
    response = anonymous.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "://" not in html, f"{page} refers to another host (a CDN?)"
    assert "fonts.googleapis" not in html
    urls = [a or b for a, b in referenced_urls(html)]
    assert f"/docs/static/{PAGES[page]}" in urls and "/openapi.json" in urls, urls
    for url in urls:
        assert url.startswith("/"), url
        asset = anonymous.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    if page == "/docs":
        assert "/docs/static/swagger-ui.css" in urls
        assert '"validatorUrl": null' in html, "no badge from the public validator service"


def test_oauth2_redirect_page_is_self_contained(anonymous: TestClient) -> None:
    response = anonymous.get("/docs/oauth2-redirect")
    assert response.status_code == 200 and "://" not in response.text
    assert "/docs/oauth2-redirect" in anonymous.get("/docs").text
    assert anonymous.head("/docs").status_code == anonymous.head("/redoc").status_code == 200


def test_asset_types(anonymous: TestClient) -> None:
    for name, kind in [("swagger-ui.css", "text/css"), ("swagger-ui-bundle.js", "javascript"), ("favicon.png", "png")]:
        response = anonymous.get(f"/docs/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"], name
    assert anonymous.get("/docs/static/nothing.js").status_code == 404


def test_openapi_json_is_public_the_api_is_not(anonymous: TestClient) -> None:
    response = anonymous.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == anonymous.app.openapi()  # type: ignore[attr-defined]
    assert "/v1/{prefix}/namespaces" in response.json()["paths"]
    assert anonymous.get("/v1/config").status_code == 401


def test_docs_can_be_switched_off(backend_factory: Callable[..., Backend]) -> None:
    with TestClient(create_app(backend_factory("sqlite-file", api_docs_enabled=False).settings)) as client:
        for url in ["/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/docs/static/swagger-ui-bundle.js"]:
            assert client.get(url).status_code == 404, url
        assert client.get("/healthz").status_code == 200
