"""The Eurocities Algorithmic Transparency Standard (0.3.1): algorithm-register rows.

The standard (Eurocities Digital Forum Lab, after Amsterdam's and Helsinki's registers)
is a flat list of fields, so one PUBLIC use case is one row: a JSON object (``json``)
or a CSV line (``csv``, every field of the standard as a column in its order, UTF-8,
comma-separated, as a register imports it; cells a spreadsheet would run as a formula
are prefixed with an apostrophe). Fields Samverka has nothing for stay empty (left out
of the JSON), so the kommun sees what it still has to write before publishing.

The standard requires a department, a domain, a status and a risk category: a use case
without a service area, a status or an AI Act risk class cannot be exported and
raises ExportError naming the field. ``uuid`` is derived from the record's origin and
id (UUID 5), so the same record keeps its register id across exports.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable

from samverka.exports import (
    ExportError,
    Publisher,
    each,
    exportable,
    iso_date,
    organisation_name,
    require,
)
from samverka.exports.spreadsheet import cell
from samverka.protocol.vocab import SERVICE_AREA
from samverka.v1 import records_pb2

R = records_pb2
FORMAT = "Eurocities"
VERSION = "0.3.1"
SHORT_MAX = 150
DPIA_DONE = "En konsekvensbedömning avseende dataskydd är gjord."
#: Namespace of the records' register ids (uuid5 of "origin/id").
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://samverka.se/post/")

#: Every field of the standard, in its order (the CSV's columns).
FIELDS: tuple[str, ...] = (
    "name",
    "description_short",
    "organization",
    "department",
    "contact_email",
    "contact_phone",
    "contact_name",
    "area",
    "domain",
    "website",
    "status",
    "remark",
    "decision_making_process",
    "goal",
    "impact",
    "risks",
    "risk_category",
    "proportionality",
    "lawful_basis",
    "documentation",
    "training_data",
    "source_data",
    "data_bias",
    "connected_data_sources",
    "DPIA_description",
    "DPIA_url",
    "algorithm_type",
    "description",
    "methods_and_models",
    "performance",
    "alternatives_considered",
    "product_information",
    "codebase_url",
    "product_page",
    "AIA_description",
    "AIA_url",
    "monitoring",
    "type",
    "human_intervention",
    "objection_procedure",
    "rollback",
    "standard_version",
    "uuid",
    "lang",
    "publication_date",
    "last_change_date",
    "revision_date",
    "revision_note",
    "keywords",
)

STATUSES = {
    R.USE_CASE_STATUS_IDEA: "planned",
    R.USE_CASE_STATUS_PILOT: "pilot",
    R.USE_CASE_STATUS_PRODUCTION: "operational",
    R.USE_CASE_STATUS_ENDED: "retired",
}
RISK_CATEGORIES = {
    R.RISK_CLASS_MINIMAL: "minimal risk",
    R.RISK_CLASS_LIMITED: "limited risk",
    R.RISK_CLASS_HIGH: "high risk",
    R.RISK_CLASS_UNACCEPTABLE: "unacceptable",
}
ALGORITHM_TYPES = {
    R.ALGORITHM_TYPE_SELF_LEARNING: "self-learning",
    R.ALGORITHM_TYPE_RULE_BASED: "rule-based",
    R.ALGORITHM_TYPE_HYBRID: "hybrid",
}
#: The standard's ``type`` (type of use of the algorithm).
ALGORITHM_USES = {
    R.ALGORITHM_USE_DESCRIPTIVE: "descriptive",
    R.ALGORITHM_USE_DIAGNOSTIC: "diagnostic",
    R.ALGORITHM_USE_PREDICTIVE: "predictive",
    R.ALGORITHM_USE_PRESCRIPTIVE: "prescriptive",
}
#: Service area -> the standard's domain.
DOMAINS: dict[int, str] = {
    R.SERVICE_AREA_ADMINISTRATION: "government",
    R.SERVICE_AREA_ELDERLY_CARE: "health and health care",
    R.SERVICE_AREA_SOCIAL_SERVICES: "family, youth and households",
    R.SERVICE_AREA_DISABILITY_SUPPORT: "health and health care",
    R.SERVICE_AREA_PRESCHOOL: "education and science",
    R.SERVICE_AREA_SCHOOL: "education and science",
    R.SERVICE_AREA_ADULT_EDUCATION: "education and science",
    R.SERVICE_AREA_CULTURE_LEISURE: "culture, sports and leisure",
    R.SERVICE_AREA_URBAN_PLANNING: "environment, spacial planning and water",
    R.SERVICE_AREA_ENVIRONMENT_HEALTH: "environment, spacial planning and water",
    R.SERVICE_AREA_TECHNICAL_SERVICES: "traffic and transportation",
    R.SERVICE_AREA_CITIZEN_SERVICE: "government",
    R.SERVICE_AREA_HR: "work and career",
    R.SERVICE_AREA_FINANCE: "finance",
    R.SERVICE_AREA_IT: "generic",
    R.SERVICE_AREA_COMMUNICATION: "government",
    R.SERVICE_AREA_BUSINESS_DEVELOPMENT: "economy and entrepreneurship",
    R.SERVICE_AREA_PUBLIC_SAFETY: "public safety",
}


def use_cases(records: Iterable[R.Record]) -> list[R.Record]:
    return exportable(records, (R.RECORD_KIND_USE_CASE,))


def row(rec: R.Record, publisher: Publisher) -> dict[str, str]:
    """One use case as the standard's fields (only those with a value)."""
    header, uc = rec.header, rec.use_case
    name = require(FORMAT, rec, "title", uc.title)
    summary = require(FORMAT, rec, "summary", uc.summary)
    if not uc.service_area:
        require(FORMAT, rec, "service_area", "", "standarden kräver department och domain")
    status = STATUSES.get(uc.status) or require(FORMAT, rec, "status", "")
    risk = RISK_CATEGORIES.get(uc.risk_class) or require(
        FORMAT, rec, "risk_class", "", "standarden kräver risk_category"
    )
    short = summary if len(summary) <= SHORT_MAX else summary[: SHORT_MAX - 1].rstrip() + "…"
    models = [m.name + (f" {m.version}" if m.version else "") for m in uc.models]
    methods = ", ".join([*uc.techniques, *models, *uc.products])
    impacts = [a for a in uc.assessments if a.name]
    acc, why, how = uc.accountability, uc.rationale, uc.decision_process
    out = {
        "name": name,
        "description_short": short,
        "organization": organisation_name(header.origin),
        "department": acc.team or SERVICE_AREA.label(uc.service_area),
        "contact_email": uc.contact_email or publisher.contact_email,
        "contact_name": uc.contact_role,
        "area": organisation_name(header.origin),
        "domain": DOMAINS.get(uc.service_area, "generic"),
        "website": uc.website or publisher.record_url(header.origin, header.id),
        "status": status,
        "decision_making_process": how.process_integration,
        "goal": uc.intended_purpose or why.expected_benefits,
        "impact": how.provided_information,
        "risks": "; ".join(
            f"{r.name}: {r.mitigation}" if r.mitigation else r.name for r in uc.risks
        ),
        "risk_category": risk,
        "proportionality": uc.proportionality,
        "lawful_basis": uc.lawful_basis,
        "documentation": next((link.url for link in uc.links if link.url), ""),
        "training_data": "; ".join(d.name for d in uc.datasets),
        "source_data": ", ".join(uc.data_sources),
        "data_bias": "; ".join(
            d.completeness_and_representativeness
            for d in uc.datasets
            if d.completeness_and_representativeness
        ),
        "connected_data_sources": "; ".join(d.source for d in uc.datasets if d.source),
        "DPIA_description": uc.dpia_summary
        or uc.impact_assessment.title
        or (DPIA_DONE if uc.impact_assessment_done else ""),
        "DPIA_url": uc.impact_assessment.url,
        "algorithm_type": ALGORITHM_TYPES.get(uc.algorithm_type, ""),
        "description": uc.description.strip() or summary,
        "methods_and_models": methods,
        "performance": "; ".join(m.performance for m in uc.models if m.performance),
        "alternatives_considered": why.alternatives_considered,
        "product_page": uc.provider.url,
        "AIA_description": impacts[0].summary or impacts[0].name if impacts else "",
        "AIA_url": impacts[0].url if impacts else "",
        "monitoring": uc.technical.maintenance,
        "type": ALGORITHM_USES.get(uc.algorithm_use, ""),
        "human_intervention": uc.human_oversight,
        "objection_procedure": how.appeals_and_review,
        "standard_version": VERSION,
        "uuid": str(uuid.uuid5(NAMESPACE, f"{header.origin}/{header.id}")),
        "lang": (header.language or "sv").split("-")[0].lower() or "sv",
        "publication_date": iso_date(header.created_at_ms),
        "last_change_date": iso_date(header.updated_at_ms),
        "revision_date": iso_date(uc.revision_due_at_ms),
        "keywords": ", ".join(header.tags),
    }
    return {k: v for k, v in out.items() if v}


def rows(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> list[dict[str, str]]:
    return each(use_cases(records), lambda r: row(r, publisher), skipped)


def render_json(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> bytes:
    found = rows(records, publisher, skipped)
    return (json.dumps(found, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def render_csv(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> bytes:
    found = rows(records, publisher, skipped)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for r in found:
        writer.writerow([cell(r.get(f, "")) for f in FIELDS])
    return out.getvalue().encode("utf-8")
