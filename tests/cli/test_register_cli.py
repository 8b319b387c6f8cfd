"""The ATRS and AI Act fields (issue 13, point 1) through the CLI: import with Swedish
and ATRS column names (CSV, XLSX, YAML), `usecase add/edit` options, `usecase show`."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import yaml
from clikit import Cli
from samverka.node import Node

#: Swedish column names, and ATRS English ones as aliases, with items one per line.
ROW = {
    "titel": "Prioritering av ansökningar om ekonomiskt bistånd",
    "sammanfattning": "En modell föreslår turordningen; handläggaren beslutar.",
    "verksamhetsområde": "ekonomiskt bistånd",
    "status": "pilot",
    "riskklass": "hög",
    "högriskområde": "väsentliga tjänster",
    "roll enligt AI-förordningen": "tillhandahållare",
    "avsett ändamål": "Att föreslå handläggningsordning.",
    "senior_responsible_owner": "Socialchef",
    "Appeals and review": "Överklaga till förvaltningsrätten.",
    "externa leverantörer": "Exempelbolaget AB | 556677-8899 | utvecklar",
    "risker": "Felaktig prioritet | noggrannhet | Kan missa akuta ärenden; sällan | "
    "Handläggaren beslutar\nBias | likabehandling",
    "FRIA gjord": "ja",
    "FRIA datum": "2025-08-20",
    "transparenskrav": "chattbot, syntetiskt innehåll",
    "e-post": "ai@leksand.se",
}


RECORD_ID = "uc-prioritering-av-ansokningar-om-ekonomiskt-bistand"


def write_csv(path: Path) -> Path:
    def cell(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    lines = [";".join(ROW), ";".join(cell(v) for v in ROW.values())]
    path.write_text("\r\n".join(lines) + "\r\n", "utf-8")
    return path


def write_xlsx(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(ROW))
    sheet.append(list(ROW.values()))
    book.save(path)
    return path


def shown_json(cli: Cli, node: Path, record_id: str) -> dict[str, object]:
    result = cli("usecase", "show", record_id, "--json", node=node)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["record"]["use_case"]
    assert isinstance(record, dict)
    return record


def check_imported(uc: dict[str, object]) -> None:
    assert uc["high_risk_area"] == "HIGH_RISK_AREA_ESSENTIAL_SERVICES"
    assert uc["ai_act_role"] == "AI_ACT_ROLE_DEPLOYER"
    assert uc["accountability"] == {
        "senior_responsible_owner": "Socialchef",
        "suppliers": [
            {"name": "Exempelbolaget AB", "company_number": "556677-8899", "role": "utvecklar"}
        ],
    }
    assert uc["decision_process"] == {"appeals_and_review": "Överklaga till förvaltningsrätten."}
    assert uc["risks"] == [
        {
            "name": "Felaktig prioritet",
            "category": "noggrannhet",
            "description": "Kan missa akuta ärenden; sällan",  # ';' stays inside an item
            "mitigation": "Handläggaren beslutar",
        },
        {"name": "Bias", "category": "likabehandling"},
    ]
    assert uc["fria"] == {"done": True, "completed_at_ms": "1755648000000"}
    assert uc["transparency_obligations"] == [
        "TRANSPARENCY_OBLIGATION_INTERACTS_WITH_PEOPLE",
        "TRANSPARENCY_OBLIGATION_SYNTHETIC_CONTENT",
    ]
    assert uc["contact_email"] == "ai@leksand.se"


def test_csv_and_xlsx_import_with_swedish_and_atrs_columns(
    cli: Cli, leksand: Path, tibro: Path, tmp_path: Path
) -> None:
    for node, path in (
        (leksand, write_csv(tmp_path / "inventering.csv")),
        (tibro, write_xlsx(tmp_path / "inventering.xlsx")),
    ):
        result = cli("import", path, node=node)
        assert result.exit_code == 0, result.output
        check_imported(shown_json(cli, node, RECORD_ID))
        again = cli("import", path, node=node)  # unchanged: nothing new is written
        assert again.exit_code == 0, again.output
        with Node.open(node) as opened:
            assert opened.store.head(opened.origin).sequence == 1  # type: ignore[union-attr]


def test_yaml_items_as_mappings_and_a_bad_value_named(
    cli: Cli, leksand: Path, tmp_path: Path
) -> None:
    item = {
        "titel": "Taligenkänning i hemtjänsten",
        "sammanfattning": "Personalen dikterar anteckningar.",
        "verksamhetsområde": "äldreomsorg",
        "status": "pilot",
        "modeller": [{"namn": "Whisper", "leverantör": "OpenAI", "typ": "taligenkänning"}],
        "datamängder": [{"name": "Inspelningar", "källa": "Egen insamling"}],
        "bedömningar": [{"namn": "DPIA", "datum": "2024-05-01", "länk": "https://x.se/dpia"}],
    }
    path = tmp_path / "inventering.yaml"
    path.write_text(yaml.safe_dump({"användningsfall": [item]}, allow_unicode=True), "utf-8")
    result = cli("import", path, node=leksand)
    assert result.exit_code == 0, result.output
    uc = shown_json(cli, leksand, "uc-taligenkanning-i-hemtjansten")
    assert uc["models"] == [
        {"name": "Whisper", "provider": "OpenAI", "model_type": "taligenkänning"}
    ]
    assert uc["datasets"] == [{"name": "Inspelningar", "source": "Egen insamling"}]
    assert uc["assessments"] == [
        {"name": "DPIA", "completed_at_ms": "1714521600000", "url": "https://x.se/dpia"}
    ]

    item["webbplats"] = "http://leksand.se/ai"  # not https
    path.write_text(yaml.safe_dump([item], allow_unicode=True), "utf-8")
    refused = cli("import", path, node=leksand)
    assert refused.exit_code == 1
    assert "website: " in refused.stderr and "https" in refused.stderr, refused.stderr


def test_usecase_add_edit_and_show_in_groups(cli: Cli, leksand: Path) -> None:
    added = cli(
        "usecase", "add", "--title", "Chattbot för bygglovsfrågor",
        "--summary", "Svarar på vanliga frågor om bygglov dygnet runt.",
        "--area", "bygglov", "--status", "pilot", "--risk", "begränsad",
        "--visibility", "public",
        "--ai-act-role", "deployer", "--intended-purpose", "Svara på allmänna frågor.",
        "--transparency", "interacts-with-people",
        "--transparency-notice", "Chattboten säger att den är en AI.",
        "--provider", "Exempelbolaget AB", "--trade-name", "Bygglovsbot 1.0",
        "--identified-risk", "Fel svar | noggrannhet | | Länk till handläggare i varje svar",
        "--model", "GPT-4o | 2024-08 | OpenAI | stor språkmodell",
        "--organisation", "Leksands kommun, samhällsbyggnad",
        "--no-fria",
        node=leksand,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    record_id = "uc-chattbot-for-bygglovsfragor"
    edited = cli(
        "usecase", "edit", record_id, "--appeals", "Kontakta bygglovsenheten.",
        "--identified-risk", "Fel svar | noggrannhet", "--identified-risk", "Driftstopp",
        node=leksand,
    )  # fmt: skip
    assert edited.exit_code == 0, edited.output
    uc = shown_json(cli, leksand, record_id)
    assert [r["name"] for r in uc["risks"]] == ["Fel svar", "Driftstopp"]  # type: ignore[index]
    assert uc["fria"] == {"done": False}
    assert uc["provider"] == {"name": "Exempelbolaget AB", "trade_name": "Bygglovsbot 1.0"}

    shown = cli("usecase", "show", record_id, node=leksand)
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    for group in ("Ansvar och leverantör", "Beslutsprocess", "Teknik och modeller",
                  "Risker och åtgärder", "AI-förordningen"):  # fmt: skip
        assert f"\n  {group}\n" in out, out
    assert "    Kommunens roll: Tillhandahållare\n" in out
    assert "    Transparenskrav (artikel 50): Interagerar med människor\n" in out
    assert "      - Fel svar\n          Kategori: noggrannhet\n      - Driftstopp\n" in out
    assert "Konsekvensbedömning för grundläggande rättigheter (FRIA) gjord: nej" in out
    assert ">Data<" not in out and "\n  Data\n" not in out  # no dataset: no group

    bad = cli(
        "usecase", "edit", record_id, "--high-risk-area", "employment",
        "--contact-email", "inte en adress", node=leksand,
    )  # fmt: skip
    assert bad.exit_code == 1
    assert "high_risk_area: an Annex III area needs the high risk class" in bad.stderr
    assert "contact_email: " in bad.stderr and "e-mail" in bad.stderr
