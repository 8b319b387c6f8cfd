"""The ATRS and AI Act fields of a record, grouped for people to read (pure, no I/O).

The UK Algorithmic Transparency Recording Standard (ATRS) tier-2 sections and the EU
AI Act's deployer fields (docs/SCHEMA.md) are many and mostly empty; people read them
in a few groups, each shown only when something in it is filled:

- *Ansvar och leverantör* (ATRS 2.1, the tier-1 contact and the AI system's provider),
- *Bakgrund och syfte* (ATRS 2.2; Eurocities' proportionality and lawful basis),
- *Beslutsprocess* (ATRS 2.3),
- *Teknik och modeller* (ATRS 2.4.1-2.4.2; for solutions also the software),
- *Data* (ATRS 2.4.3),
- *Risker och åtgärder* (ATRS 2.5 and the DPIA's summary),
- *AI-förordningen* (role, Annex III area, intended purpose, FRIA, EU database,
  Art. 50 transparency).

:func:`sections` is what ``samverka usecase show`` prints and what the hub's record
page shows (same labels, same order); :data:`SECTION_FIELDS` names the flat form
fields (:mod:`samverka.records.recordform`) the sections cover, so a flat listing can
leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from samverka.protocol.vocab import (
    AI_ACT_ROLE,
    ALGORITHM_TYPE,
    ALGORITHM_USE,
    DEVELOPMENT_STATUS,
    HIGH_RISK_AREA,
    MAINTENANCE_TYPE,
    TRANSPARENCY_OBLIGATION,
    bool_label,
)
from samverka.records.recordform import format_date_ms
from samverka.v1 import records_pb2


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled value: text (possibly several lines), a link, a list of short
    texts, or a list of items (risks, models, datasets …)."""

    label: str
    text: str = ""
    url: str = ""
    values: tuple[str, ...] = ()
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True)
class Item:
    """One risk, model, dataset, assessment or supplier: its name and its parts."""

    title: str
    rows: tuple[Row, ...] = ()


@dataclass(frozen=True, slots=True)
class Section:
    """A titled group of rows; ``key`` is a stable id (for HTML anchors)."""

    key: str
    title: str
    rows: tuple[Row, ...]


#: The flat form fields the sections show (a flat listing leaves them out).
SECTION_FIELDS = frozenset(
    {
        "website", "contact_email", "organisation", "team", "senior_responsible_owner",
        "supplier", "data_access_terms", "scope", "expected_benefits", "previous_process",
        "alternatives_considered", "process_integration", "provided_information",
        "frequency_and_scale", "required_training", "appeals", "system_architecture",
        "maintenance", "model", "dataset", "assessment", "identified_risk", "ai_act_role",
        "high_risk_area", "intended_purpose", "fria", "fria_date", "fria_summary",
        "fria_link", "dpia_summary", "eu_database_id", "transparency", "transparency_notice",
        "provider", "trade_name", "provider_contact", "provider_url",
        "provider_eu_database_url", "software_version", "development_status",
        "maintenance_type", "platform", "proportionality", "lawful_basis", "algorithm_type",
        "algorithm_use", "revision_due",
    }
)  # fmt: skip


def _rows(*candidates: Row | None) -> tuple[Row, ...]:
    """The rows that hold something."""
    return tuple(
        r for r in candidates if r is not None and (r.text or r.url or r.values or r.items)
    )


def _text(label: str, text: str) -> Row:
    return Row(label, text=text)


def _link(label: str, url: str) -> Row:
    return Row(label, text=url, url=url)


def _date(label: str, ms: int) -> Row:
    return Row(label, text=format_date_ms(ms) if ms else "")


def _supplier(s: records_pb2.Supplier) -> Item:
    return Item(
        s.name,
        _rows(
            _text("Organisationsnummer", s.company_number),
            _text("Roll", s.role),
            _text("Upphandling", s.procurement_procedure),
        ),
    )


def _model(m: records_pb2.AiModel) -> Item:
    title = f"{m.name} {m.version}".strip()
    return Item(
        title,
        _rows(
            _text("Leverantör", m.provider),
            _text("Modelltyp", m.model_type),
            _text("Uppgift", m.task),
            _text("Indata", m.input),
            _text("Utdata", m.output),
            _text("Arkitektur", m.architecture),
            _text("Prestanda", m.performance),
            Row("Datamängder", values=tuple(m.datasets)),
        ),
    )


def _dataset(d: records_pb2.Dataset) -> Item:
    return Item(
        d.name,
        _rows(
            _text("Beskrivning", d.description),
            _text("Källa", d.source),
            _link("Länk", d.url),
            _text("Insamling", d.collection),
            _text("Omfattning", d.quantity),
            _text("Känsliga uppgifter", d.sensitive_attributes),
            _text("Fullständighet och representativitet", d.completeness_and_representativeness),
            _text("Tvätt och bearbetning", d.cleaning),
            _text("Delning", d.sharing),
            _text("Åtkomst och lagring", d.access_and_storage),
        ),
    )


def _assessment(a: records_pb2.Assessment) -> Item:
    return Item(
        a.name,
        _rows(
            _date("Genomförd", a.completed_at_ms),
            _text("Sammanfattning", a.summary),
            _link("Länk", a.url),
        ),
    )


def _risk(r: records_pb2.Risk) -> Item:
    return Item(
        r.name,
        _rows(
            _text("Kategori", r.category),
            _text("Beskrivning", r.description),
            _text("Åtgärd", r.mitigation),
        ),
    )


def _provider_rows(p: records_pb2.AiSystemProvider) -> tuple[Row | None, ...]:
    return (
        _text("AI-systemets leverantör", p.name),
        _text("Handelsnamn", p.trade_name),
        _text("Leverantörens kontakt", p.contact),
        _link("Leverantörens webbplats", p.url),
        _link("Leverantörens post i EU-databasen", p.eu_database_url),
    )


def _fria_rows(f: records_pb2.FundamentalRightsAssessment, lang: str) -> tuple[Row | None, ...]:
    done = bool_label(f.done, lang) if f.HasField("done") else ""
    return (
        _text("Konsekvensbedömning för grundläggande rättigheter (FRIA) gjord", done),
        _date("FRIA genomförd", f.completed_at_ms),
        _text("FRIA, sammanfattning av resultatet", f.summary),
        _link("FRIA, länk", f.url),
    )


def _section(key: str, title: str, rows: tuple[Row, ...]) -> Section | None:
    return Section(key, title, rows) if rows else None


def use_case_sections(uc: records_pb2.UseCase, lang: str = "sv") -> list[Section]:
    """The filled groups of a use case's ATRS and AI Act fields."""
    acc, rat, dec, tech = uc.accountability, uc.rationale, uc.decision_process, uc.technical
    found = (
        _section(
            "ansvar",
            "Ansvar och leverantör",
            _rows(
                _text("Ansvarig organisation", acc.organisation),
                _text("Ansvarig enhet", acc.team),
                _text("Ytterst ansvarig (roll)", acc.senior_responsible_owner),
                Row("Externa leverantörer", items=tuple(_supplier(s) for s in acc.suppliers)),
                _text("Leverantörernas åtkomst till data", acc.data_access_terms),
                *_provider_rows(uc.provider),
                _text("E-post för frågor", uc.contact_email),
                _link("Mer information", uc.website),
                _date("Nästa översyn", uc.revision_due_at_ms),
            ),
        ),
        _section(
            "syfte",
            "Bakgrund och syfte",
            _rows(
                _text("Omfattning och avgränsning", rat.scope),
                _text("Förväntad nytta", rat.expected_benefits),
                _text("Tidigare arbetssätt", rat.previous_process),
                _text("Övervägda alternativ", rat.alternatives_considered),
                _text("Proportionalitet", uc.proportionality),
                _text("Rättslig grund", uc.lawful_basis),
            ),
        ),
        _section(
            "beslut",
            "Beslutsprocess",
            _rows(
                _text("Roll i beslutsprocessen", dec.process_integration),
                _text("Underlag till den som beslutar", dec.provided_information),
                _text("Användningens omfattning", dec.frequency_and_scale),
                _text("Utbildning som krävs", dec.required_training),
                _text("Överklagande och omprövning", dec.appeals_and_review),
            ),
        ),
        _section(
            "teknik",
            "Teknik och modeller",
            _rows(
                _text("Systemarkitektur", tech.system_architecture),
                _text("Underhåll och uppföljning", tech.maintenance),
                _text("Typ av algoritm", ALGORITHM_TYPE.label(uc.algorithm_type, lang)),
                _text("Typ av användning", ALGORITHM_USE.label(uc.algorithm_use, lang)),
                Row("Modeller", items=tuple(_model(m) for m in uc.models)),
            ),
        ),
        _section(
            "data", "Data", _rows(Row("Datamängder", items=tuple(_dataset(d) for d in uc.datasets)))
        ),
        _section(
            "risker",
            "Risker och åtgärder",
            _rows(
                _text("Konsekvensbedömning (DPIA), sammanfattning", uc.dpia_summary),
                Row("Genomförda bedömningar", items=tuple(_assessment(a) for a in uc.assessments)),
                Row("Identifierade risker", items=tuple(_risk(r) for r in uc.risks)),
            ),
        ),
        _section(
            "ai-forordningen",
            "AI-förordningen",
            _rows(
                _text("Kommunens roll", AI_ACT_ROLE.label(uc.ai_act_role, lang)),
                _text("Högriskområde (bilaga III)", HIGH_RISK_AREA.label(uc.high_risk_area, lang)),
                _text("Avsett ändamål", uc.intended_purpose),
                *_fria_rows(uc.fria, lang),
                _text("Registreringsnummer i EU-databasen", uc.eu_database_id),
                Row(
                    "Transparenskrav (artikel 50)",
                    values=tuple(
                        TRANSPARENCY_OBLIGATION.label(o, lang) for o in uc.transparency_obligations
                    ),
                ),
                _text("Så informeras berörda", uc.transparency_notice),
            ),
        ),
    )
    return _in(lang, [s for s in found if s is not None])


def solution_sections(so: records_pb2.Solution, lang: str = "sv") -> list[Section]:
    """The filled groups of a solution's software, provider, model and AI Act fields."""
    found = (
        _section(
            "programvara",
            "Programvara",
            _rows(
                _text("Version", so.software_version),
                _text("Utvecklingsstatus", DEVELOPMENT_STATUS.label(so.development_status, lang)),
                _text("Förvaltning", MAINTENANCE_TYPE.label(so.maintenance_type, lang)),
                Row("Plattformar", values=tuple(so.platforms)),
            ),
        ),
        _section("ansvar", "Ansvar och leverantör", _rows(*_provider_rows(so.provider))),
        _section(
            "teknik",
            "Teknik och modeller",
            _rows(Row("Modeller", items=tuple(_model(m) for m in so.models))),
        ),
        _section(
            "ai-forordningen",
            "AI-förordningen",
            _rows(_text("Avsett ändamål", so.intended_purpose)),
        ),
    )
    return _in(lang, [s for s in found if s is not None])


def sections(record: records_pb2.Record, lang: str = "sv") -> list[Section]:
    """The filled groups of ``record`` (none for other kinds than use cases and solutions),
    labelled in ``lang`` (``sv``, or ``en`` for the CLI in English)."""
    body = record.WhichOneof("body")
    if body == "use_case":
        return use_case_sections(record.use_case, lang)
    if body == "solution":
        return solution_sections(record.solution, lang)
    return []


#: The labels in English (the CLI's other language): the ATRS and AI Act terms.
ENGLISH: dict[str, str] = {
    "Ansvar och leverantör": "Owner and responsibility",
    "Bakgrund och syfte": "Description and rationale",
    "Beslutsprocess": "Decision-making process",
    "Teknik och modeller": "Tool specification",
    "Data": "Data",
    "Risker och åtgärder": "Risks, mitigations and impact assessments",
    "AI-förordningen": "EU AI Act",
    "Programvara": "Software",
    "Ansvarig organisation": "Organisation",
    "Ansvarig enhet": "Team",
    "Ytterst ansvarig (roll)": "Senior responsible owner (role)",
    "Externa leverantörer": "External suppliers",
    "Organisationsnummer": "Company registration number",
    "Roll": "Role",
    "Upphandling": "Procurement procedure",
    "Leverantörernas åtkomst till data": "Terms of access to data",
    "AI-systemets leverantör": "Provider of the AI system",
    "Handelsnamn": "Trade name",
    "Leverantörens kontakt": "Provider contact",
    "Leverantörens webbplats": "Provider website",
    "Leverantörens post i EU-databasen": "Provider's EU database entry",
    "E-post för frågor": "Contact email",
    "Mer information": "Website",
    "Omfattning och avgränsning": "Scope",
    "Förväntad nytta": "Benefits",
    "Tidigare arbetssätt": "Previous process",
    "Övervägda alternativ": "Alternatives considered",
    "Proportionalitet": "Proportionality",
    "Rättslig grund": "Lawful basis",
    "Nästa översyn": "Revision date",
    "Typ av algoritm": "Type of algorithm",
    "Typ av användning": "Type of use",
    "Roll i beslutsprocessen": "Process integration",
    "Underlag till den som beslutar": "Provided information",
    "Användningens omfattning": "Frequency and scale of usage",
    "Utbildning som krävs": "Required training",
    "Överklagande och omprövning": "Appeals and review",
    "Systemarkitektur": "System architecture",
    "Underhåll och uppföljning": "Maintenance",
    "Modeller": "Models",
    "Leverantör": "Provider",
    "Modelltyp": "Model type",
    "Uppgift": "Task",
    "Indata": "Input",
    "Utdata": "Output",
    "Arkitektur": "Architecture",
    "Prestanda": "Performance",
    "Datamängder": "Datasets",
    "Beskrivning": "Description",
    "Källa": "Source",
    "Länk": "Link",
    "Insamling": "Collection",
    "Omfattning": "Quantity",
    "Känsliga uppgifter": "Sensitive attributes",
    "Fullständighet och representativitet": "Completeness and representativeness",
    "Tvätt och bearbetning": "Cleaning",
    "Delning": "Sharing",
    "Åtkomst och lagring": "Access and storage",
    "Konsekvensbedömning (DPIA), sammanfattning": "Summary of the DPIA",
    "Genomförda bedömningar": "Impact assessments",
    "Genomförd": "Completed",
    "Sammanfattning": "Summary",
    "Identifierade risker": "Risks",
    "Kategori": "Category",
    "Åtgärd": "Mitigation",
    "Kommunens roll": "Role",
    "Högriskområde (bilaga III)": "High-risk area (Annex III)",
    "Avsett ändamål": "Intended purpose",
    "Konsekvensbedömning för grundläggande rättigheter (FRIA) gjord": (
        "Fundamental rights impact assessment (FRIA) done"
    ),
    "FRIA genomförd": "FRIA completed",
    "FRIA, sammanfattning av resultatet": "Summary of the FRIA's findings",
    "FRIA, länk": "FRIA link",
    "Registreringsnummer i EU-databasen": "EU database registration number",
    "Transparenskrav (artikel 50)": "Transparency obligations (Art. 50)",
    "Så informeras berörda": "How people are informed",
    "Version": "Version",
    "Utvecklingsstatus": "Development status",
    "Förvaltning": "Maintenance",
    "Plattformar": "Platforms",
}


def _in(lang: str, found: list[Section]) -> list[Section]:
    """The sections with their titles and labels in ``lang`` (they are written in Swedish)."""
    if lang != "en":
        return found

    def row(r: Row) -> Row:
        items = tuple(replace(i, rows=tuple(row(p) for p in i.rows)) for i in r.items)
        return replace(r, label=ENGLISH.get(r.label, r.label), items=items)

    return [
        replace(s, title=ENGLISH.get(s.title, s.title), rows=tuple(row(r) for r in s.rows))
        for s in found
    ]


def section_text(found: list[Section], indent: str = "  ") -> list[str]:
    """The sections as lines for a terminal: a heading per section, ``label: value``
    under it, an item's name as a bullet with its parts indented under it."""
    lines: list[str] = []
    for section in found:
        lines.append(f"{indent}{section.title}")
        for row in section.rows:
            if row.items:
                lines.append(f"{indent}  {row.label}:")
                for item in row.items:
                    lines.append(f"{indent}    - {item.title}")
                    for part in item.rows:
                        lines.extend(_labelled(f"{indent}        ", part))
            else:
                lines.extend(_labelled(f"{indent}  ", row))
    return lines


def _labelled(indent: str, row: Row) -> list[str]:
    text = "; ".join(row.values) if row.values else row.text
    first, *rest = text.splitlines() or [""]
    return [f"{indent}{row.label}: {first}", *(f"{indent}  {line}" for line in rest)]
