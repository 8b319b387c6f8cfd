"""The ATRS and AI Act fields (issue 13, point 1) in the catalog: the record page shows
them in groups, only the filled ones, escaped; the JSON API carries them."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from webkit import FALUN, KUNGSBACKA, TIBRO

SECTION = re.compile(r'<section class="register" aria-labelledby="sec-([a-z-]+)">')


def test_the_record_page_groups_the_filled_fields(client: TestClient) -> None:
    page = client.get(f"/post/{KUNGSBACKA}/uc-taligenkanning")
    assert page.status_code == 200
    text = page.text
    # Only the groups with something in them, in their order.
    assert SECTION.findall(text) == ["ansvar", "beslut", "risker", "ai-forordningen"]
    for heading in ("Ansvar och leverantör", "Beslutsprocess", "Risker och åtgärder"):
        assert f">{heading}</h2>" in text
    assert ">AI-förordningen</h2>" in text
    for shown in (
        "Förvaltningschef vård och omsorg",
        "Diktera AB",
        "556000-0001",
        "Den enskilde kan begära rättelse av journalen.",
        "Feltolkade ord i journalen",
        "Personalen läser igenom texten innan den sparas.",
        "Tillhandahållare",
        "Att göra tal till text i hemtjänstens journalanteckningar.",
    ):
        assert html.escape(shown, quote=False) in text, shown
    # An explicit "no" FRIA answer is shown; nothing about data or models is.
    assert "Konsekvensbedömning för grundläggande rättigheter (FRIA) gjord</dt>" in text
    assert ">Data</h2>" not in text and ">Teknik och modeller</h2>" not in text
    assert 'href="https://diktera.example.se/omsorg"' in text


def test_a_record_without_the_fields_shows_no_group(client: TestClient) -> None:
    text = client.get(f"/post/{TIBRO}/uc-copilot-pilot").text
    assert SECTION.findall(text) == []


def test_hostile_markup_in_the_new_fields_is_escaped(client: TestClient) -> None:
    text = client.get(f"/post/{FALUN}/uc-hostile").text
    assert "&lt;script&gt;risk&lt;/script&gt;" in text
    assert "&lt;b&gt;åtgärd&lt;/b&gt;" in text
    assert "<script" not in text.lower()


def test_the_json_api_carries_the_fields(client: TestClient) -> None:
    detail = client.get(f"/api/records/{KUNGSBACKA}/uc-taligenkanning").json()
    uc = detail["record"]["use_case"]
    assert uc["accountability"]["senior_responsible_owner"] == "Förvaltningschef vård och omsorg"
    assert uc["accountability"]["suppliers"] == [
        {"name": "Diktera AB", "company_number": "556000-0001"}
    ]
    assert uc["risks"][0]["category"] == "noggrannhet"
    assert uc["ai_act_role"] == "AI_ACT_ROLE_DEPLOYER"
    assert uc["fria"] == {"done": False}
    assert uc["provider"]["url"] == "https://diktera.example.se/omsorg"
    assert "high_risk_area" not in uc  # unset fields are left out, as before
