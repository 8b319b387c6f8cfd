"""ATRS: the UK Algorithmic Transparency Recording Standard (v3), tier 1 and tier 2.

One record per PUBLIC use case, in the standard's sections: tier 1 (the short summary
the public reads) and tier 2's six sections (owner and responsibility, description and
rationale, decision-making process, tool specification, data specification, risks,
mitigations and impact assessments). Keys are the standard's field names in
snake_case; a field Samverka has nothing for is left out rather than filled with a
placeholder, so a kommun sees what it still has to write. ``samverka`` carries where the
record comes from (origin, id, version, EU AI Act risk class).

The UK publishes ATRS as a template and guidance, not as a JSON Schema: the schema the
tests validate against (tests/fixtures/standards/atrs/) is written from the published
v3 template, field by field. The mapping is in docs/exports/ATRS.md.
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
    require,
)
from samverka.protocol.vocab import (
    AI_ACT_ROLE,
    HIGH_RISK_AREA,
    RISK_CLASS,
    SERVICE_AREA,
    TRANSPARENCY_OBLIGATION,
)
from samverka.v1 import records_pb2

R = records_pb2
FORMAT = "ATRS"
VERSION = "3.0"

#: Use case status -> ATRS phase.
PHASES = {
    R.USE_CASE_STATUS_IDEA: "Pre-deployment",
    R.USE_CASE_STATUS_PILOT: "Beta/Pilot",
    R.USE_CASE_STATUS_PRODUCTION: "Production",
    R.USE_CASE_STATUS_ENDED: "Retired",
}


def use_cases(records: Iterable[R.Record]) -> list[R.Record]:
    return exportable(records, (R.RECORD_KIND_USE_CASE,))


def _clean(section: dict[str, object]) -> dict[str, object]:
    """The section without empty values (a field Samverka has nothing for is left out)."""
    return {k: v for k, v in section.items() if v not in ("", None, [], {})}


def _benefit(uc: R.UseCase) -> str:
    parts = []
    for b in uc.benefits:
        amount = f"{b.value:g} {b.unit}".strip()
        text = f"{b.metric}: {amount}" if b.metric else amount
        if b.method:
            text += f" ({b.method})"
        parts.append(text)
    return "; ".join(parts)


def _model(m: R.AiModel) -> dict[str, object]:
    return _clean(
        {
            "model_name": m.name,
            "model_version": m.version,
            "model_provider": m.provider,
            "model_type": m.model_type,
            "model_task": m.task,
            "model_input": m.input,
            "model_output": m.output,
            "model_architecture": m.architecture,
            "model_performance": m.performance,
            "datasets": list(m.datasets),
        }
    )


def _dataset(d: R.Dataset) -> dict[str, object]:
    return _clean(
        {
            "source_data_name": d.name,
            "data_description": d.description,
            "source_data_url": d.url,
            "data_source": d.source,
            "data_collection": d.collection,
            "data_quantities": d.quantity,
            "sensitive_attributes": d.sensitive_attributes,
            "data_completeness_and_representativeness": d.completeness_and_representativeness,
            "data_cleaning": d.cleaning,
            "data_sharing_agreements": d.sharing,
            "data_access_and_storage": d.access_and_storage,
        }
    )


def _assessments(uc: R.UseCase) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if uc.impact_assessment_done or uc.impact_assessment.url or uc.dpia_summary:
        out.append(
            _clean(
                {
                    "assessment_name": "Konsekvensbedömning avseende dataskydd (DPIA)",
                    "link": uc.impact_assessment.url,
                    "summary": uc.dpia_summary or uc.impact_assessment.title,
                }
            )
        )
    if uc.HasField("fria") and (uc.fria.done or uc.fria.summary):
        out.append(
            _clean(
                {
                    "assessment_name": "Konsekvensbedömning avseende grundläggande "
                    "rättigheter (AI-förordningen artikel 27)",
                    "completed_date": iso_date(uc.fria.completed_at_ms),
                    "link": uc.fria.url,
                    "summary": uc.fria.summary,
                }
            )
        )
    for a in uc.assessments:
        out.append(
            _clean(
                {
                    "assessment_name": a.name,
                    "completed_date": iso_date(a.completed_at_ms),
                    "link": a.url,
                    "summary": a.summary,
                }
            )
        )
    return out


def record(rec: R.Record, publisher: Publisher) -> dict[str, object]:
    """The ATRS record of one use case."""
    header, uc = rec.header, rec.use_case
    name = require(FORMAT, rec, "title", uc.title)
    summary = require(FORMAT, rec, "summary", uc.summary)
    phase = PHASES.get(uc.status)
    if phase is None:
        require(FORMAT, rec, "status", "", "idé, pilot, i drift eller avslutad")
    organisation = organisation_name(header.origin)
    area = SERVICE_AREA.label(uc.service_area) if uc.service_area else ""
    acc, why, how, tech = uc.accountability, uc.rationale, uc.decision_process, uc.technical
    tier_1 = _clean(
        {
            "name": name,
            "description": summary,
            "website": uc.website or publisher.record_url(header.origin, header.id),
            "contact_email": uc.contact_email or publisher.contact_email,
            "organisation": organisation,
            "phase": phase,
        }
    )
    suppliers = [
        _clean(
            {
                "name": s.name,
                "companies_house_number": s.company_number,
                "third_party_role": s.role,
                "procurement_procedure_type": s.procurement_procedure,
            }
        )
        for s in acc.suppliers
    ]
    if not suppliers:
        suppliers = [{"name": v} for v in uc.vendors]
    owner = _clean(
        {
            "organisation_or_department": acc.organisation
            or (f"{organisation}, {area.lower()}" if area else organisation),
            "team": acc.team,
            "senior_responsible_owner": acc.senior_responsible_owner or uc.contact_role,
            "external_supplier_involvement": bool(suppliers),
            "external_suppliers": suppliers,
            "data_access_terms": acc.data_access_terms,
        }
    )
    benefit = "; ".join(b for b in (why.expected_benefits, _benefit(uc)) if b)
    rationale = _clean(
        {
            "detailed_description": uc.description.strip() or summary,
            "scope": why.scope or area,
            "benefit": benefit,
            "previous_process": why.previous_process,
            "alternatives_considered": why.alternatives_considered,
        }
    )
    decision = _clean(
        {
            "process_integration": how.process_integration,
            "provided_information": how.provided_information,
            "frequency_and_scale_of_usage": how.frequency_and_scale,
            "human_decisions_and_review": uc.human_oversight,
            "required_training": how.required_training,
            "appeals_and_review": how.appeals_and_review,
        }
    )
    models = [_model(m) for m in uc.models] or [{"model_name": p} for p in uc.products]
    tool = _clean(
        {
            "system_architecture": tech.system_architecture or ", ".join(uc.techniques),
            "phase": phase,
            "maintenance": tech.maintenance,
            "models": models,
        }
    )
    data = _clean(
        {
            "personal_data": uc.processes_personal_data,
            "source_data_name": ", ".join(uc.data_sources),
            "datasets": [_dataset(d) for d in uc.datasets],
        }
    )
    risks = _clean(
        {
            "impact_assessments": _assessments(uc),
            "risks": [
                _clean(
                    {
                        "risk_name": r.name,
                        "risk_category": r.category,
                        "risk_description": r.description,
                        "mitigation": r.mitigation,
                    }
                )
                for r in uc.risks
            ],
        }
    )
    tier_2 = _clean(
        {
            "owner_and_responsibility": owner,
            "description_and_rationale": rationale,
            "decision_making_process": decision,
            "tool_specification": tool,
            "data_specification": data,
            "risks_mitigations_and_impact_assessments": risks,
        }
    )
    ai_act = _clean(
        {
            "role": AI_ACT_ROLE.key(uc.ai_act_role) if uc.ai_act_role else "",
            "risk_class": RISK_CLASS.key(uc.risk_class) if uc.risk_class else "",
            "high_risk_area": HIGH_RISK_AREA.key(uc.high_risk_area) if uc.high_risk_area else "",
            "intended_purpose": uc.intended_purpose,
            "eu_database_id": uc.eu_database_id,
            "transparency_obligations": [
                TRANSPARENCY_OBLIGATION.key(t) for t in uc.transparency_obligations
            ],
            "transparency_notice": uc.transparency_notice,
        }
    )
    return {
        "atrs_version": VERSION,
        "tier_1": tier_1,
        "tier_2": tier_2,
        "samverka": _clean(
            {
                "origin": header.origin,
                "id": header.id,
                "version": header.version,
                "language": header.language or "sv",
                "updated": iso_date(header.updated_at_ms),
                "ai_act": ai_act,
            }
        ),
    }


def collection(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> dict[str, object]:
    """Every exportable use case as ATRS records, under the publisher's name."""
    return {
        "publisher": organisation_name(publisher.origin),
        "records": each(use_cases(records), lambda r: record(r, publisher), skipped),
    }


def render(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> bytes:
    return _json(collection(records, publisher, skipped))


def render_one(rec: R.Record, publisher: Publisher) -> bytes:
    return _json(record(rec, publisher))


def _json(data: object) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
