"""The JSON API, its OpenAPI description, the CSV export and the signed-entry download."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from samverka.protocol.entries import parse_envelope, parse_signed
from samverka.protocol.signing import entry_hash
from webkit import FALUN, KUNGSBACKA, LEKSAND, TIBRO, Federation


def test_openapi_describes_every_api_route_and_loads_nothing_remote(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = set(spec["paths"])
    for path in (
        "/api/records",
        "/api/records.csv",
        "/api/records/{origin}/{record_id}",
        "/api/records/{origin}/{record_id}/signed-entry",
        "/api/kommuner/{code}",
        "/api/coverage",
        "/api/proven",
        "/api/techniques",
    ):
        assert path in paths, path
    assert not any(p.startswith(("/sok", "/post", "/kommun/")) for p in paths)  # pages
    assert client.get("/docs").status_code == 404  # Swagger UI would load a CDN
    assert client.get("/redoc").status_code == 404


def test_records_search_with_filters(client: TestClient) -> None:
    body = client.get("/api/records", params={"q": "copilot"}).json()
    ids = [(i["origin"], i["record_id"]) for i in body["items"]]
    assert (TIBRO, "uc-copilot-pilot") in ids
    first = body["items"][0]
    assert set(first) >= {"origin", "record_id", "kind", "title", "service_area", "url"}
    pilot = client.get(
        "/api/records", params=[("q", "AI"), ("status", "pilot"), ("kind", "use-case")]
    ).json()
    assert [i["record_id"] for i in pilot["items"]] == ["uc-copilot-pilot"]
    item = pilot["items"][0]
    assert item["status"] == {"key": "pilot", "label": "Pilot"}
    assert item["service_area"]["label"] == "Ledning och administration"
    assert item["origin_name"] == "Tibro"
    assert client.get("/api/records?area=okänd").status_code == 400
    assert client.get("/api/records?per_page=1000").status_code == 422


def test_record_detail_and_its_signature(client: TestClient, federation: Federation) -> None:
    body = client.get(f"/api/records/{LEKSAND}/sol-ai-policy").json()
    assert body["record"]["solution"]["licence"] == "CC-BY-4.0"
    assert body["record"]["header"]["origin"] == LEKSAND
    signature = body["signature"]
    assert signature["verified"] is True and signature["status"] == "verified"
    assert signature["key_id"] == federation.members[LEKSAND].key.key_id
    adopters = {a["kommunkod"] for a in body["adopters"]}
    assert adopters == {"1384", "1472", "2026", "1495"}
    assert client.get(f"/api/records/{LEKSAND}/uc-retired").status_code == 410


def test_signed_entry_download_verifies_with_the_directory_key(
    client: TestClient, federation: Federation
) -> None:
    response = client.get(f"/api/records/{KUNGSBACKA}/uc-delad-assistent/signed-entry")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert "attachment" in response.headers["content-disposition"]
    signed = parse_envelope(response.content)
    directory = federation.hub.council.current_directory()
    assert directory is not None
    key = directory.keyring().get(signed.key_id)
    assert key is not None and key.origin == KUNGSBACKA
    assert key.public_key.verify(signed.entry, signed.signature)
    parsed = parse_signed(response.content)
    assert parsed.record.header.id == "uc-delad-assistent"
    detail = client.get(f"/api/records/{KUNGSBACKA}/uc-delad-assistent").json()
    assert detail["signature"]["entry_hash"] == entry_hash(signed.entry).hex()


def test_csv_opens_in_swedish_excel(client: TestClient) -> None:
    response = client.get("/api/records.csv", params={"q": "AI"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="samverka-sokresultat.csv"' in response.headers["content-disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0][:3] == ["Typ", "Titel", "Sammanfattning"]
    titles = {r[1] for r in rows[1:]}
    assert "Pilot med Microsoft 365 Copilot i administrationen" in titles
    assert "Delad AI-assistent för kommunens medarbetare" in titles
    links = [r[-1] for r in rows[1:]]
    assert all(link.startswith("/post/") for link in links)  # no [web] public_url: paths
    assert len(rows) - 1 == client.get("/api/records?q=AI").json()["total"]


def test_csv_cells_never_become_formulas(client: TestClient) -> None:
    text = client.get("/api/records.csv", params={"kommun": FALUN}).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    formula = next(r for r in rows if "SUMMA" in r[1])
    assert formula[1] == "'=SUMMA(A1:A9) i kalkylbladet"
    assert formula[2] == "'+46 räknat med formler"
    hostile = next(r for r in rows if "Chattbot" in r[1])
    assert hostile[1].startswith("<script>")  # text in a cell is data; nothing to escape


def test_kommun_coverage_and_proven(client: TestClient) -> None:
    kommun = client.get(f"/api/kommuner/{KUNGSBACKA}").json()
    assert kommun["name"] == "Kungsbacka" and kommun["county"] == "13"
    assert kommun["member"] is True
    assert kommun["adopted"][0]["solution"]["record_id"] == "sol-ai-policy"
    assert client.get("/api/kommuner/9999").status_code == 404
    coverage = client.get("/api/coverage").json()
    assert coverage["kommuner_total"] == 290 and len(coverage["counties"]) == 21
    proven = client.get("/api/proven").json()
    assert proven[0]["in_production"] == 3
    assert sorted(proven[0]["adopters"]) == ["1384", "1472", "1495"]
    assert client.get("/api/health").json() == {"status": "ok"}
