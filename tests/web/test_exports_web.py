"""The catalog's open-data exports over HTTP (/export/...): media types, caching, links,
and every answer validated by its standard's shapes or schema (tests/fixtures/standards)
for the demo federation's records and for records with every field filled."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka_hub.folder import Hub, init_hub
from samverka_hub.web.app import create_app
from samverka_hub.web.catalog import Catalog
from samverka_hub.web.exports import REBUILD_SECONDS, BuiltCache
from webkit import FALUN, KUNGSBACKA, LEKSAND, SECRET

sys.path.insert(0, str(Path(__file__).parents[1] / "exports"))
import exportkit
import standards

COLLECTIONS = {
    "/export/dcat.rdf": "application/rdf+xml; charset=utf-8",
    "/export/dcat.ttl": "text/turtle; charset=utf-8",
    "/export/dcat.jsonld": "application/ld+json; charset=utf-8",
    "/export/atrs.json": "application/json; charset=utf-8",
    "/export/eurocities.csv": "text/csv; charset=utf-8; header=present",
    "/export/eurocities.json": "application/json; charset=utf-8",
    "/export/eu-databas.json": "application/json; charset=utf-8",
}


@pytest.mark.parametrize("path", sorted(COLLECTIONS))
def test_collections_answer_with_their_media_type(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == COLLECTIONS[path]
    assert r.headers["etag"] and r.headers["cache-control"] == "public, max-age=300"
    assert SECRET not in r.text  # MEMBERS records and drafts never
    assert "uc-retired" not in r.text  # retracted
    again = client.get(path, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_dcat_of_the_demo_conforms(client: TestClient) -> None:
    for path, fmt in (
        ("/export/dcat.rdf", "xml"),
        ("/export/dcat.ttl", "turtle"),
        ("/export/dcat.jsonld", "json-ld"),
    ):
        data = client.get(path).content
        conforms, report = standards.shacl(data, fmt)
        assert conforms, report
        assert standards.dcat_ap_se_missing(data, fmt) == []
    text = client.get("/export/dcat.ttl").text
    for record in ("sol-ai-policy", "uc-delad-assistent", "lesson-behorigheter", "uc-hostile"):
        assert record in text
    assert "rec-generativ-ai" in text


def test_registers_of_the_demo_validate(client: TestClient) -> None:
    collection = client.get("/export/atrs.json").json()
    assert standards.errors("atrs", "atrs-collection.schema.json", collection) == []
    assert collection["publisher"] == "AI-rådet"
    assert {r["samverka"]["id"] for r in collection["records"]} >= {
        "uc-ai-policy",
        "uc-delad-assistent",
        "uc-taligenkanning",
        "uc-copilot-pilot",
    }
    rows = client.get("/export/eurocities.json").json()
    assert standards.errors("eurocities", "eurocities-collection.schema.json", rows) == []
    assert "Taligenkänning för dokumentation i hemtjänsten" in {r["name"] for r in rows}
    drafts = client.get("/export/eu-databas.json").json()
    assert [d["källa"]["post"] for d in drafts] == [f"{KUNGSBACKA}/uc-taligenkanning"]
    for d in drafts:
        assert standards.errors("eu-database", "eu-database-deployer-draft.schema.json", d) == []


def test_one_record_urls(client: TestClient) -> None:
    atrs = client.get(f"/export/atrs/{KUNGSBACKA}/uc-delad-assistent.json")
    assert atrs.status_code == 200 and atrs.headers["content-type"].startswith("application/json")
    assert standards.errors("atrs", "atrs-record-v3.schema.json", atrs.json()) == []
    base = f"/export/eu-databas/{KUNGSBACKA}/uc-taligenkanning"
    draft = client.get(base + ".json").json()
    assert draft["utkast"] is True
    md = client.get(base + ".md")
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert md.text.startswith("# UTKAST – ska granskas före registrering")
    # Not in that format, MEMBERS, unknown: 404.
    assert client.get(f"/export/eu-databas/{LEKSAND}/uc-ai-policy.json").status_code == 404
    assert client.get(f"/export/publiccode/{LEKSAND}/sol-ai-policy.yml").status_code == 404
    assert client.get(f"/export/atrs/{LEKSAND}/uc-members-only.json").status_code == 404
    assert client.get(f"/export/atrs/{LEKSAND}/uc-retired.json").status_code == 404
    assert client.get("/export/atrs/9999/x.json").status_code == 404


def test_the_page_and_record_pages_link_the_exports(client: TestClient) -> None:
    page = client.get("/export")
    assert page.status_code == 200
    for path in COLLECTIONS:
        assert f'href="{path}"' in page.text
    assert f"/export/eu-databas/{KUNGSBACKA}/uc-taligenkanning.md" in page.text
    # Falun's use cases have no AI Act risk class: left out of the Eurocities register.
    assert f"{FALUN}/uc-hostile" in page.text and "risk_class" in page.text
    record = client.get(f"/post/{KUNGSBACKA}/uc-taligenkanning").text
    assert f'href="/export/eu-databas/{KUNGSBACKA}/uc-taligenkanning.md"' in record
    assert f'href="/export/atrs/{KUNGSBACKA}/uc-taligenkanning.json"' in record
    home = client.get("/").text
    assert '<link rel="alternate" type="application/rdf+xml"' in home
    assert 'href="/export">Öppna data</a>' in home


@pytest.fixture(scope="module")
def full_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub whose council published records with every field filled (a HIGH-risk use
    case and a code solution)."""
    hub = init_hub(tmp_path_factory.mktemp("exports") / "hub")
    try:
        council = hub.node().publisher()
        for record in (exportkit.full_use_case(), exportkit.full_code_solution()):
            record.header.origin = HUB_ORIGIN
            council.publish(record)
        yield hub
    finally:
        hub.close()


@pytest.fixture(scope="module")
def full_client(full_hub: Hub) -> TestClient:
    """The catalog over ``full_hub``, with a public address for the links."""
    settings = replace(full_hub.config.web, public_url="https://katalog.example.se")
    catalog = Catalog(full_hub.store, full_hub.council.current_directory)
    return TestClient(create_app(catalog, settings))


def test_every_field_filled_over_http(full_client: TestClient) -> None:
    yml = full_client.get(f"/export/publiccode/{HUB_ORIGIN}/sol-full.yml")
    assert yml.status_code == 200
    assert yml.headers["content-type"] == "application/yaml; charset=utf-8"
    assert standards.publiccode_errors(yml.content) == []
    assert yaml.safe_load(yml.content)["landingURL"] == (
        f"https://katalog.example.se/post/{HUB_ORIGIN}/sol-full"
    )
    ttl = full_client.get("/export/dcat.ttl").content
    assert standards.shacl(ttl, "turtle")[0]
    assert standards.dcat_ap_se_missing(ttl, "turtle") == []
    assert b"<https://katalog.example.se/post/0000/uc-full>" in ttl
    atrs = full_client.get(f"/export/atrs/{HUB_ORIGIN}/uc-full.json").json()
    assert standards.errors("atrs", "atrs-record-v3.schema.json", atrs) == []
    rows = full_client.get("/export/eurocities.json").json()
    assert standards.errors("eurocities", "eurocities-collection.schema.json", rows) == []
    draft = full_client.get(f"/export/eu-databas/{HUB_ORIGIN}/uc-full.json").json()
    assert standards.errors("eu-database", "eu-database-deployer-draft.schema.json", draft) == []
    assert json.dumps(draft, ensure_ascii=False).count("HS-2024-001") == 1
    page = full_client.get(f"/post/{HUB_ORIGIN}/sol-full").text
    assert f'href="/export/publiccode/{HUB_ORIGIN}/sol-full.yml"' in page


def test_a_new_record_reaches_the_exports_within_the_rebuild_interval(full_hub: Hub) -> None:
    now = [1000.0]
    app = create_app(Catalog(full_hub.store, full_hub.council.current_directory))
    app.state.exports = BuiltCache(clock=lambda: now[0])
    client = TestClient(app)

    def ids() -> list[str]:
        return [r["samverka"]["id"] for r in client.get("/export/atrs.json").json()["records"]]

    assert ids() == ["uc-full"]
    new = exportkit.full_use_case(record_id="uc-ny", title="Ny")
    new.header.origin = HUB_ORIGIN
    full_hub.node().publisher().publish(new)
    assert ids() == ["uc-full"]  # built a moment ago: served as it is
    assert client.get(f"/export/atrs/{HUB_ORIGIN}/uc-ny.json").status_code == 200  # one record
    now[0] += REBUILD_SECONDS + 1
    assert ids() == ["uc-ny", "uc-full"]


def test_the_exports_on_postgresql(pg_client: TestClient) -> None:
    """The same answers from a hub on PostgreSQL (the session's seeded federation)."""
    rdf = pg_client.get("/export/dcat.rdf")
    assert rdf.status_code == 200 and standards.shacl(rdf.content, "xml")[0]
    assert b"uc-delad-assistent" in rdf.content and SECRET.encode() not in rdf.content
    collection = pg_client.get("/export/atrs.json").json()
    assert standards.errors("atrs", "atrs-collection.schema.json", collection) == []
    draft = pg_client.get(f"/export/eu-databas/{KUNGSBACKA}/uc-taligenkanning.json")
    assert draft.status_code == 200 and draft.json()["utkast"] is True
