"""Each export, validated by its standard's schema or shapes (tests/fixtures/standards/):
for the demo's records and for records with every field filled; a record missing a
field a format requires fails with an error naming the record and the field."""

from __future__ import annotations

import csv
import io
import json

import exportkit
import factories
import pytest
import rdflib
import standards
import webkit
import yaml
from samverka.exports import ExportError, Publisher, atrs, dcat, eudatabase, eurocities, publiccode
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.v1 import records_pb2 as R

HUB = Publisher(
    HUB_ORIGIN,
    base_url="https://katalog.example.se",
    contact_email="ai-radet@example.se",
    generated_ms=factories.FIXED_NOW_MS,
)
NODE = Publisher(webkit.KUNGSBACKA)  # no catalog address: URNs, no contact point


@pytest.fixture(scope="module")
def demo() -> list[R.Record]:
    return exportkit.demo()


def full() -> list[R.Record]:
    return [exportkit.full_use_case(), exportkit.full_code_solution()]


def test_the_full_records_fill_every_field() -> None:
    # A field added to the schema fails here until these records (and the exports) know it.
    assert exportkit.unset_fields(exportkit.full_use_case().use_case) == []
    assert exportkit.unset_fields(exportkit.full_code_solution().solution) == []


def test_the_demos_own_records_export_in_every_format() -> None:
    """What `make demo` publishes (samverka_hub.demo.content), through every format."""
    records = exportkit.demo_content()
    for data, fmt in ((dcat.rdfxml(records, HUB), "xml"), (dcat.turtle(records, HUB), "turtle")):
        assert standards.shacl(data, fmt)[0]
        assert standards.dcat_ap_se_missing(data, fmt) == []
    collection = json.loads(atrs.render(records, HUB))
    assert standards.errors("atrs", "atrs-collection.schema.json", collection) == []
    assert len(collection["records"]) >= 4
    skipped: list[ExportError] = []
    rows = json.loads(eurocities.render_json(records, HUB, skipped))
    assert standards.errors("eurocities", "eurocities-collection.schema.json", rows) == []
    assert rows and {s.field for s in skipped} <= {"risk_class", "status", "service_area"}
    for draft in json.loads(eudatabase.render_all(records, HUB)):
        schema = "eu-database-deployer-draft.schema.json"
        assert standards.errors("eu-database", schema, draft) == []
    for sol in publiccode.software(records):
        assert standards.publiccode_errors(publiccode.render(sol, HUB, records)) == []


# -- DCAT-AP-SE ----------------------------------------------------------------------------


@pytest.mark.parametrize("publisher", [HUB, NODE], ids=["hub", "node"])
def test_dcat_rdfxml_turtle_and_jsonld_conform_to_dcat_ap_and_dcat_ap_se(
    demo: list[R.Record], publisher: Publisher
) -> None:
    records = demo + full()
    for data, fmt in (
        (dcat.rdfxml(records, publisher), "xml"),
        (dcat.turtle(records, publisher), "turtle"),
        (dcat.jsonld(records, publisher), "json-ld"),
    ):
        conforms, report = standards.shacl(data, fmt)
        assert conforms, report
        assert standards.dcat_ap_se_missing(data, fmt) == []


def test_dcat_carries_public_live_records_only(demo: list[R.Record]) -> None:
    g = dcat.graph(demo + full(), HUB)
    ids = {str(o) for o in g.objects(None, dcat.DCTERMS.identifier)}
    assert {
        "2029/sol-ai-policy",
        "2029/uc-ai-policy",
        "1384/uc-delad-assistent",
        "1472/lesson-behorigheter",
        "0000/rec-generativ-ai",
        "2029/uc-full",
        "2029/sol-full",
        webkit.FALUN + "/uc-hostile",
    } <= ids
    assert "2029/uc-retired" not in ids  # retracted
    assert not any("members" in i for i in ids)  # MEMBERS records
    assert not any(i.endswith("adopt-ai-policy") for i in ids)  # adoptions are no datasets
    text = dcat.turtle(demo, HUB).decode()
    assert webkit.SECRET not in text
    assert "<https://katalog.example.se/post/1384/uc-delad-assistent>" in text  # landing page


def test_dcat_maps_themes_publisher_and_contact() -> None:
    g = dcat.graph([exportkit.full_use_case()], HUB)
    ds = next(g.subjects(dcat.RDF.type, dcat.DCAT.Dataset))
    themes = {str(t).rsplit("/", 1)[-1] for t in g.objects(ds, dcat.DCAT.theme)}
    assert themes == {"SOCI"}
    publisher = g.value(ds, dcat.DCTERMS.publisher)
    assert str(g.value(publisher, dcat.FOAF.name)) == "Leksands kommun"
    assert str(g.value(publisher, dcat.DCTERMS.identifier)) == webkit.LEKSAND
    contact = g.value(ds, dcat.DCAT.contactPoint)
    assert "enhetschef ekonomiskt bistånd" in str(g.value(contact, dcat.VCARD.fn))
    assert str(g.value(contact, dcat.VCARD.hasEmail)) == "mailto:ai@leksand.se"
    assert str(g.value(ds, dcat.FOAF.page)) == "https://leksand.se/ai/bistand"
    assert isinstance(contact, dcat.URIRef)  # the dataportal harvests no blank nodes
    assert not any(isinstance(n, rdflib.BNode) for t in g for n in t)
    keywords = {str(k) for k in g.objects(ds, dcat.DCAT.keyword)}
    assert {"Klassificering", "bistånd", "individ- och familjeomsorg"} <= keywords


def test_dcat_distributions_of_a_solution() -> None:
    g = dcat.graph([exportkit.full_code_solution()], HUB)
    ds = next(g.subjects(dcat.RDF.type, dcat.DCAT.Dataset))
    urls = {str(g.value(d, dcat.DCAT.accessURL)): d for d in g.objects(ds, dcat.DCAT.distribution)}
    assert set(urls) == {
        "https://katalog.example.se/api/records/2029/sol-full",  # the record as JSON
        "https://github.com/leksand/handlaggarstod",  # the artifact
    }
    artifact = urls["https://github.com/leksand/handlaggarstod"]
    assert str(g.value(artifact, dcat.DCTERMS.license)) == "http://spdx.org/licenses/EUPL-1.2"
    checksum = g.value(artifact, dcat.SPDX.checksum)
    assert str(g.value(checksum, dcat.SPDX.checksumValue)) == "ab" * 32


def test_dcat_survives_text_and_links_that_rdf_syntaxes_refuse() -> None:
    # Valid UTF-8 that XML 1.0 refuses, and a link with characters an IRI may not hold.
    uc = exportkit.full_use_case(
        title="Prioritering \ufffe\uffff<b>&amp;", website='https://leksand.se/a b?x="<y>"'
    )
    for data, fmt in (
        (dcat.rdfxml([uc], HUB), "xml"),
        (dcat.turtle([uc], HUB), "turtle"),
        (dcat.jsonld([uc], HUB), "json-ld"),
    ):
        g = rdflib.Graph().parse(data=data, format=fmt)
        titles = {str(t) for t in g.objects(None, dcat.DCTERMS.title)}
        assert "Prioritering <b>&amp;" in titles
        assert standards.shacl(data, fmt)[0]


def test_dcat_refuses_a_record_without_text_naming_it() -> None:
    bare = factories.make_solution(record_id="sol-tom", summary="", how_to_adopt="")
    with pytest.raises(ExportError) as e:
        dcat.turtle([bare], HUB)
    assert "2029/sol-tom" in str(e.value) and "summary" in str(e.value)
    skipped: list[ExportError] = []
    data = dcat.turtle([bare, exportkit.full_use_case()], HUB, skipped)
    assert [s.record_id for s in skipped] == ["sol-tom"]
    assert standards.shacl(data, "turtle")[0]


# -- publiccode.yml ------------------------------------------------------------------------


def test_publiccode_of_a_full_code_solution_validates() -> None:
    sol = exportkit.full_code_solution()
    uses = webkit.adoption("adopt-kod", webkit.ref(webkit.LEKSAND, "sol-full"))
    uses.header.origin = webkit.GAGNEF
    data = publiccode.render(sol, HUB, [sol, uses])
    assert standards.publiccode_errors(data) == []
    doc = yaml.safe_load(data)
    assert doc["publiccodeYmlVersion"] == "0.4"
    assert doc["url"] == "https://github.com/leksand/handlaggarstod"
    assert doc["platforms"] == ["web", "linux"]
    assert doc["softwareType"] == "standalone/other"
    assert doc["developmentStatus"] == "stable"
    assert doc["softwareVersion"] == "2.1.0" and doc["releaseDate"] == "2025-06-15"
    assert doc["maintenance"] == {"type": "internal"}
    assert doc["legal"]["license"] == "EUPL-1.2"
    assert doc["usedBy"] == ["Gagnefs kommun"]
    assert len(doc["description"]["sv"]["longDescription"]) >= 150
    assert doc["landingURL"] == "https://katalog.example.se/post/2029/sol-full"


def test_publiccode_takes_only_software(demo: list[R.Record]) -> None:
    assert publiccode.software(demo) == []  # the demo shares a policy, not code
    assert [r.header.id for r in publiccode.software(demo + full())] == ["sol-full"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": ""}, "url"),
        ({"licence": ""}, "licence"),
        ({"platforms": []}, "platforms"),
        ({"summary": "Kort.", "how_to_adopt": "", "models": []}, "how_to_adopt"),
        ({"development_status": 0, "use_cases": []}, "developmentStatus"),
    ],
)
def test_publiccode_names_the_missing_field(change: dict[str, object], field: str) -> None:
    sol = exportkit.full_code_solution(**change)
    with pytest.raises(ExportError) as e:
        publiccode.render(sol, HUB)
    assert "2029/sol-full" in str(e.value) and field in str(e.value)


# -- ATRS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("publisher", [HUB, NODE], ids=["hub", "node"])
def test_atrs_validates_for_the_demo_and_a_full_record(
    demo: list[R.Record], publisher: Publisher
) -> None:
    data = json.loads(atrs.render(demo + full(), publisher))
    assert standards.errors("atrs", "atrs-collection.schema.json", data) == []
    ids = [r["samverka"]["id"] for r in data["records"]]
    assert "uc-delad-assistent" in ids and "uc-full" in ids
    assert "uc-retired" not in ids and "uc-members-only" not in ids


def test_atrs_maps_the_full_use_case() -> None:
    rec = atrs.record(exportkit.full_use_case(), HUB)
    assert standards.errors("atrs", "atrs-record-v3.schema.json", rec) == []
    assert rec["tier_1"]["phase"] == "Beta/Pilot"
    assert rec["tier_1"]["organisation"] == "Leksands kommun"
    assert rec["tier_1"]["contact_email"] == "ai@leksand.se"
    tier_2 = rec["tier_2"]
    supplier = tier_2["owner_and_responsibility"]["external_suppliers"][0]
    assert supplier["companies_house_number"] == "556677-8899"
    assert tier_2["tool_specification"]["models"][0]["model_version"] == "2.1"
    assert tier_2["data_specification"]["datasets"][0]["data_quantities"] == "14 000 ärenden"
    assert tier_2["decision_making_process"]["appeals_and_review"].startswith("Beslutet")
    assert rec["samverka"]["ai_act"]["high_risk_area"] == "essential-services"
    assert tier_2["decision_making_process"]["human_decisions_and_review"].startswith(
        "Handläggaren"
    )
    assessments = tier_2["risks_mitigations_and_impact_assessments"]["impact_assessments"]
    assert assessments[0]["link"] == "https://leksand.se/dpia-bistand"
    assert [a["assessment_name"] for a in assessments][2] == "Jämställdhetsanalys"
    assert tier_2["risks_mitigations_and_impact_assessments"]["risks"][0]["mitigation"]


def test_atrs_names_a_missing_status() -> None:
    uc = exportkit.full_use_case(status=R.USE_CASE_STATUS_UNSPECIFIED)
    with pytest.raises(ExportError, match=r"2029/uc-full: ATRS kräver fältet status"):
        atrs.render([uc], HUB)


# -- Eurocities ----------------------------------------------------------------------------


def test_eurocities_json_validates_and_leaves_out_incomplete_records(
    demo: list[R.Record],
) -> None:
    skipped: list[ExportError] = []
    rows = json.loads(eurocities.render_json(demo + full(), HUB, skipped))
    assert standards.errors("eurocities", "eurocities-collection.schema.json", rows) == []
    assert {r["name"] for r in rows} >= {
        "Delad AI-assistent för kommunens medarbetare",
        "Prioritering av ansökningar om ekonomiskt bistånd",
    }
    # Falun's two use cases have no AI Act risk class: the standard requires one.
    assert sorted((s.record_id, s.field) for s in skipped) == [
        ("uc-formel", "risk_class"),
        ("uc-hostile", "risk_class"),
    ]
    with pytest.raises(ExportError, match="uc-hostile: Eurocities kräver fältet risk_class"):
        eurocities.render_json(demo, HUB)


def test_eurocities_csv_has_every_field_and_no_formulas() -> None:
    uc = exportkit.full_use_case(title='=HYPERLINK("https://x")')
    data = eurocities.render_csv([uc], HUB).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(data)))
    assert list(rows[0]) == list(eurocities.FIELDS)
    assert rows[0]["name"].startswith("'=")
    assert rows[0]["risk_category"] == "high risk"
    assert rows[0]["standard_version"] == "0.3.1"
    row = {k: v for k, v in rows[0].items() if v}
    row["name"] = row["name"][1:]
    assert standards.errors("eurocities", "eurocities-registration-v0.3.1.schema.json", row) == []


def test_eurocities_full_use_case_fills_every_field_the_standard_requires() -> None:
    (row,) = eurocities.rows([exportkit.full_use_case()], HUB)
    path = standards.STANDARDS / "eurocities" / "eurocities-registration-v0.3.1.schema.json"
    schema = json.loads(path.read_text("utf-8"))
    assert [f for f in schema["x-required-by-standard"] if f not in row] == []
    assert (row["algorithm_type"], row["type"]) == ("hybrid", "prescriptive")
    assert row["lawful_basis"].startswith("Allmänt intresse")
    assert row["revision_date"] == "2026-06-30"


# -- EU database (AI Act Annex VIII C) -----------------------------------------------------


def test_eu_database_drafts_for_high_risk_use_cases_validate(demo: list[R.Record]) -> None:
    drafts = json.loads(eudatabase.render_all(demo + full(), HUB))
    names = [d["ai_system"]["benämning"] for d in drafts]
    assert names == [
        "Taligenkänning för dokumentation i hemtjänsten",
        "Prioritering av ansökningar om ekonomiskt bistånd",
    ]  # HIGH risk only; the MEMBERS one of Leksand is not exported
    for d in drafts:
        schema = "eu-database-deployer-draft.schema.json"
        assert standards.errors("eu-database", schema, d) == []
        assert d["utkast"] is True and d["status"].startswith("UTKAST")


def test_eu_database_draft_of_the_full_record() -> None:
    d = eudatabase.draft(exportkit.full_use_case(), HUB)
    assert d["1_tillhandahållare_av_uppgifter_användare"]["namn"] == "Leksands kommun"
    assert d["3_url_till_leverantörens_registrering"].endswith("HS-2024-001")
    assert d["4_sammanfattning_grundläggande_rättigheter"].startswith("Risk för diskriminering")
    assert d["5_sammanfattning_dpia"]["tillämplig"] is True
    assert d["5_sammanfattning_dpia"]["sammanfattning"].startswith("Behandlingen")
    assert d["eu_databas_id"] == "EU-AI-2025-000123"
    assert d["att_fylla_i"] == [
        "1_tillhandahållare_av_uppgifter_användare.adress",
        "2_person_som_lämnar_uppgifterna.namn",
        "2_person_som_lämnar_uppgifterna.adress",
        "2_person_som_lämnar_uppgifterna.kontaktuppgifter",
    ]
    md = eudatabase.markdown(exportkit.full_use_case(), HUB)
    assert md.startswith("# UTKAST – ska granskas före registrering")
    assert "**(att fylla i)**" in md


def test_eu_database_refuses_a_use_case_that_is_not_high_risk_or_not_deployed() -> None:
    uc = exportkit.full_use_case(risk_class=R.RISK_CLASS_LIMITED, high_risk_area=0)
    with pytest.raises(ExportError, match=r"2029/uc-full.*risk_class"):
        eudatabase.draft(uc, HUB)
    uc = exportkit.full_use_case(ai_act_role=R.AI_ACT_ROLE_PROVIDER)
    with pytest.raises(ExportError, match=r"2029/uc-full.*ai_act_role"):
        eudatabase.draft(uc, HUB)
