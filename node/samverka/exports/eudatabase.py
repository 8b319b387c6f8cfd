"""A pre-filled draft of a deployer's entry in the EU database (AI Act Annex VIII, C).

Deployers that are public authorities register their use of a HIGH-risk AI system
(Regulation (EU) 2024/1689, Art. 49(3) and 71) with what Annex VIII section C lists:

1. the deployer's name, address and contact details,
2. the name, address and contact details of the person submitting for the deployer,
3. the URL of the system's entry in the EU database by its provider,
4. a summary of the findings of the fundamental rights impact assessment (Art. 27),
5. a summary of the data protection impact assessment (GDPR Art. 35), where applicable.

Samverka fills in what the record says and leaves the rest ``null``, listed in
``att_fylla_i``; the document says plainly that it is a draft (``utkast: true``,
``status: "UTKAST – ska granskas före registrering"``). Nothing is sent anywhere: the
kommun reviews it and registers by hand. :func:`markdown` gives the same for people.
The JSON Schema the tests validate against is ours, written from the Annex VIII text
(tests/fixtures/standards/eu-database/).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from samverka.exports import (
    ExportError,
    Publisher,
    each,
    exportable,
    iso_date,
    organisation_name,
)
from samverka.protocol.vocab import HIGH_RISK_AREA, SERVICE_AREA, USE_CASE_STATUS
from samverka.v1 import records_pb2

R = records_pb2
FORMAT = "EU-databasen (bilaga VIII C)"
STATUS = "UTKAST – ska granskas före registrering"
LEGAL_BASIS = "Förordning (EU) 2024/1689, artikel 49.3 och bilaga VIII avsnitt C"


def high_risk(records: Iterable[R.Record]) -> list[R.Record]:
    """The exportable use cases of HIGH risk (the only ones a deployer registers)."""
    return [
        r
        for r in exportable(records, (R.RECORD_KIND_USE_CASE,))
        if r.use_case.risk_class == R.RISK_CLASS_HIGH
    ]


def draft(rec: R.Record, publisher: Publisher) -> dict[str, object]:
    """The draft entry for one HIGH-risk use case; ExportError for any other."""
    header, uc = rec.header, rec.use_case
    if rec.WhichOneof("body") != "use_case" or uc.risk_class != R.RISK_CLASS_HIGH:
        raise ExportError(
            FORMAT, header.origin, header.id, "risk_class", "bara användningsfall med hög risk"
        )
    if not uc.title.strip():
        raise ExportError(FORMAT, header.origin, header.id, "title")
    if uc.ai_act_role not in (R.AI_ACT_ROLE_UNSPECIFIED, R.AI_ACT_ROLE_DEPLOYER):
        raise ExportError(
            FORMAT,
            header.origin,
            header.id,
            "ai_act_role",
            "bilaga VIII C gäller användare (tillhandahållare); en leverantör registrerar "
            "enligt avsnitt A",
        )
    deployer = organisation_name(header.origin)
    dpia_applicable = uc.processes_personal_data
    dpia_summary: str | None = uc.dpia_summary.strip() or None
    if dpia_summary is None and (uc.impact_assessment_done or uc.impact_assessment.url):
        dpia_summary = uc.impact_assessment.title or (
            "En konsekvensbedömning avseende dataskydd är gjord"
            + (f": {uc.impact_assessment.url}" if uc.impact_assessment.url else ".")
        )
    fria = uc.fria if uc.HasField("fria") else R.FundamentalRightsAssessment()
    fria_summary = fria.summary.strip() or None
    if fria_summary and fria.url:
        fria_summary += f" ({fria.url})"
    provider = uc.provider
    entry: dict[str, object] = {
        "utkast": True,
        "status": STATUS,
        "rättslig_grund": LEGAL_BASIS,
        "1_tillhandahållare_av_uppgifter_användare": {
            "namn": deployer,
            "kommunkod": header.origin,
            "adress": None,
            "kontaktuppgifter": uc.contact_email or uc.contact_role or None,
        },
        "2_person_som_lämnar_uppgifterna": {
            "namn": None,
            "adress": None,
            "kontaktuppgifter": None,
        },
        "3_url_till_leverantörens_registrering": provider.eu_database_url or None,
        "4_sammanfattning_grundläggande_rättigheter": fria_summary,
        "5_sammanfattning_dpia": {
            "tillämplig": dpia_applicable,
            "sammanfattning": dpia_summary,
        },
        "eu_databas_id": uc.eu_database_id or None,
        "ai_system": {
            "benämning": uc.title.strip(),
            "handelsnamn": provider.trade_name or None,
            "leverantör": provider.name or (", ".join(uc.vendors) or None),
            "leverantörens_kontakt": provider.contact or None,
            "avsett_ändamål": uc.intended_purpose or None,
            "område_i_bilaga_III": HIGH_RISK_AREA.label(uc.high_risk_area)
            if uc.high_risk_area
            else None,
            "beskrivning": (uc.summary.strip() + "\n\n" + uc.description.strip()).strip() or None,
            "produkter": list(uc.products),
            "verksamhetsområde": SERVICE_AREA.label(uc.service_area) if uc.service_area else None,
            "status": USE_CASE_STATUS.label(uc.status) if uc.status else None,
            "mänsklig_tillsyn": uc.human_oversight or None,
            "information_till_berörda": uc.transparency_notice or None,
        },
        "källa": {
            "post": f"{header.origin}/{header.id}",
            "version": header.version,
            "senast_ändrad": iso_date(header.updated_at_ms) or None,
            "adress": uc.website or publisher.record_url(header.origin, header.id) or None,
        },
    }
    entry["att_fylla_i"] = missing(entry)
    return entry


def missing(entry: dict[str, object]) -> list[str]:
    """The Annex VIII C fields still empty (dotted paths), for the kommun to fill in."""
    out: list[str] = []
    for key, value in entry.items():
        if not key[:1].isdigit():
            continue
        if value is None:
            out.append(key)
        elif isinstance(value, dict):
            out += [f"{key}.{k}" for k, v in value.items() if v is None]
    return out


def render(rec: R.Record, publisher: Publisher) -> bytes:
    return (json.dumps(draft(rec, publisher), ensure_ascii=False, indent=2) + "\n").encode()


def render_all(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> bytes:
    drafts = each(high_risk(records), lambda r: draft(r, publisher), skipped)
    return (json.dumps(drafts, ensure_ascii=False, indent=2) + "\n").encode()


def _line(value: object) -> str:
    if value is None:
        return "**(att fylla i)**"
    if isinstance(value, bool):
        return "ja" if value else "nej"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "–"
    return str(value).replace("\n", " ")


def markdown(rec: R.Record, publisher: Publisher) -> str:
    """The draft for people: every Annex VIII C point, what is missing in bold."""
    entry = draft(rec, publisher)
    system = entry["ai_system"]
    assert isinstance(system, dict)
    lines = [
        f"# {STATUS}",
        "",
        f"**{system['benämning']}** – utkast till registrering i EU:s databas för AI-system "
        f"med hög risk ({LEGAL_BASIS}).",
        "",
        "Samverka har fyllt i det som står i posten. Granska allt och fyll i det som "
        "saknas innan kommunen registrerar systemet; inget skickas automatiskt.",
        "",
    ]
    titles = {
        "1_tillhandahållare_av_uppgifter_användare": "1. Användaren (kommunen)",
        "2_person_som_lämnar_uppgifterna": "2. Den som lämnar uppgifterna för kommunen",
        "3_url_till_leverantörens_registrering": "3. Leverantörens registrering i EU-databasen",
        "4_sammanfattning_grundläggande_rättigheter": (
            "4. Konsekvensbedömning avseende grundläggande rättigheter (artikel 27)"
        ),
        "5_sammanfattning_dpia": "5. Konsekvensbedömning avseende dataskydd (DPIA)",
        "eu_databas_id": "Registreringsnummer i EU-databasen (när systemet är registrerat)",
        "ai_system": "Om AI-systemet",
        "källa": "Källa i Samverka",
    }
    for key, title in titles.items():
        lines += [f"## {title}", ""]
        value = entry[key]
        if isinstance(value, dict):
            lines += [f"- {k.replace('_', ' ')}: {_line(v)}" for k, v in value.items()]
        else:
            lines.append(f"- {_line(value)}")
        lines.append("")
    todo = entry["att_fylla_i"]
    assert isinstance(todo, list)
    lines += ["## Att fylla i", ""] + [f"- {t}" for t in todo or ["(inget)"]]
    return "\n".join(lines) + "\n"


def file_name(rec: R.Record, suffix: str = "json") -> str:
    return f"{rec.header.origin}-{rec.header.id}.eu-databas.{suffix}"
