"""Hostile record content is shown as text, never run; every response forbids inline script.

Falun's use case has HTML and script in its title, summary, description, technique,
link title and URL, and tag (validation accepts ``<script>`` as text; it refuses
non-http(s) links, which the catalog checks again before writing an ``href``).
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from samverka.store.store import Store
from samverka_hub.web.app import CSP, create_app
from samverka_hub.web.catalog import Catalog
from samverka_hub.web.present import safe_href
from webkit import FALUN, HOSTILE_SUMMARY, HOSTILE_TITLE

HOSTILE_PAGES = [
    f"/post/{FALUN}/uc-hostile",
    "/sok?q=chattbot",
    "/sok",
    f"/kommun/{FALUN}",
    "/",
    "/sok?technique=<i>chatt</i>",
]


def test_hostile_markup_is_escaped_on_every_page(client: TestClient) -> None:
    for url in HOSTILE_PAGES:
        html = client.get(url).text
        assert "Chattbot" in html, url
        # The catalog's own pages carry no script at all, so any <script is injected.
        assert "<script" not in html.lower(), url
        for raw in ("<img src=x", "<svg onload", "<b>fet</b>", "<i>chatt</i>", "</p><script"):
            assert raw not in html, (url, raw)
    page = client.get(f"/post/{FALUN}/uc-hostile").text
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt; Chattbot" in page
    assert "&lt;b&gt;fet&lt;/b&gt;" in page
    assert "<title>&lt;script&gt;" in page


def test_no_href_other_than_http_https_or_the_catalogs_own(client: TestClient) -> None:
    for url in HOSTILE_PAGES:
        html = client.get(url).text
        for href in re.findall(r'href="([^"]*)"', html):
            assert href.startswith(("/", "#", "http://", "https://")), (url, href)
            assert "<" not in href and '"' not in href


def test_safe_href_refuses_every_other_scheme() -> None:
    for bad in (
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "//evil.example/x",
        "/relative",
        "https://",
        "file:///etc/passwd",
    ):
        assert safe_href(bad) is None, bad
    assert safe_href("https://www.leksand.se/a?b=1") == "https://www.leksand.se/a?b=1"


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for url in [
        "/",
        "/sok?q=ai",
        f"/post/{FALUN}/uc-hostile",
        "/finns-inte",
        "/sok?area=okand",
        "/api/records",
        "/api/records/9999/x",
        "/api/records.csv",
        "/static/style.css",
        "/api/openapi.json",
    ]:
        response = client.get(url)
        headers = response.headers
        assert headers["content-security-policy"] == CSP, url
        assert headers["x-content-type-options"] == "nosniff", url
        assert headers["x-frame-options"] == "DENY", url
        assert headers["referrer-policy"] == "same-origin", url
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP
    assert "frame-ancestors 'none'" in CSP


def test_the_catalog_is_read_only(client: TestClient) -> None:
    for method in ("post", "put", "delete", "patch"):
        response = client.request(method.upper(), "/api/records")
        assert response.status_code == 405, method
    assert client.post("/sok").status_code == 405


def test_api_returns_hostile_text_as_data(client: TestClient) -> None:
    record = client.get(f"/api/records/{FALUN}/uc-hostile").json()
    assert record["summary"]["title"] == HOSTILE_TITLE
    assert record["record"]["use_case"]["summary"] == HOSTILE_SUMMARY
    response = client.get(f"/api/records/{FALUN}/uc-hostile")
    assert response.headers["content-type"] == "application/json"


def test_a_failing_database_is_a_503_page_with_the_headers(tmp_path: Path) -> None:
    """The store's file disappears under the catalog: a clear 503, never a traceback."""
    store = Store.open(f"sqlite:///{tmp_path / 'gone.db'}")
    catalog = Catalog(store, lambda: None)
    client = TestClient(create_app(catalog), raise_server_exceptions=False)
    assert client.get("/sok").status_code == 200
    store.close()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE records_fts")
        conn.exec_driver_sql("DROP TABLE records")
    for url, kind in (("/sok", "text/html"), ("/api/records", "application/json")):
        response = client.get(url)
        assert response.status_code == 503, url
        assert response.headers["retry-after"] == "30"
        assert response.headers["content-type"].startswith(kind), url
        assert response.headers["content-security-policy"] == CSP, url
        assert "Traceback" not in response.text
