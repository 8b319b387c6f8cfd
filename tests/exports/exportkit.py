"""Records for the export tests (``import exportkit``).

- :func:`demo`: the demo federation's records as a hub holds them (webkit's seed:
  origins, versions and times stamped, Leksand's retired use case retracted, AI-rådet's
  recommendations), without going through a hub (tests/web does that).
- :func:`demo_content`: the records the demo (``make demo``) publishes.
- :func:`full_use_case`, :func:`full_code_solution`: records with every field of their
  body filled (built on tests/factories.py); :func:`unset_fields` says which are not, so
  a field added to the schema fails the tests until the exports and these records know it.
"""

from __future__ import annotations

import factories
import webkit
from google.protobuf.message import Message
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.v1 import records_pb2 as R

LEKSAND = webkit.LEKSAND


def _stamp(record: R.Record, origin: str, n: int) -> R.Record:
    record.header.origin = origin
    record.header.version = 1
    record.header.created_at_ms = factories.T0_MS + n * 60_000
    record.header.updated_at_ms = factories.T0_MS + n * 60_000 + 1_000
    return record


def demo() -> list[R.Record]:
    out: list[R.Record] = []
    for origin, records in webkit.demo_records().items():
        for record in records:
            out.append(_stamp(record, origin, len(out)))
            if record.header.id == "uc-retired":
                record.header.tombstone = True
    for rec in (
        webkit.recommendation(
            "rec-generativ-ai",
            title="AI-rådets rekommendation om generativ AI",
            summary="Börja med en policy, utbilda medarbetarna och mät nyttan.",
            body="1. Anta en AI-policy.\n2. Utbilda.\n3. Mät.",
            service_area=R.SERVICE_AREA_ADMINISTRATION,
        ),
        webkit.recommendation(
            "rec-members", visibility=R.VISIBILITY_MEMBERS, title="Hemligt", summary="."
        ),
    ):
        out.append(_stamp(rec, HUB_ORIGIN, len(out)))
    return out


def demo_content() -> list[R.Record]:
    """The records `make demo` publishes (samverka_hub.demo.content), origins and times
    stamped as their publishers would."""
    from samverka_hub.demo import content

    out: list[R.Record] = []
    for origin, records in (
        (webkit.LEKSAND, content.leksand()),
        (webkit.KUNGSBACKA, content.kungsbacka()),
        (webkit.TIBRO, content.tibro()),
        (webkit.GAGNEF, content.gagnef()),
        (HUB_ORIGIN, [content.recommendation()]),
    ):
        for record in records:
            record.header.origin = record.header.origin or origin
            record.header.version = record.header.version or 1
            record.header.created_at_ms = record.header.created_at_ms or factories.T0_MS
            record.header.updated_at_ms = record.header.updated_at_ms or factories.T0_MS
            out.append(record)
    return out


def unset_fields(message: Message, prefix: str = "") -> list[str]:
    """Fields of ``message`` (recursively) left at their default."""
    missing = []
    for field in message.DESCRIPTOR.fields:
        name = prefix + field.name
        value = getattr(message, field.name)
        if field.is_repeated:
            if not len(value):
                missing.append(name)
            elif field.message_type is not None:
                missing += unset_fields(value[0], name + "[0].")
        elif field.message_type is not None:
            if not message.HasField(field.name):
                missing.append(name)
            else:
                missing += unset_fields(value, name + ".")
        elif not value:
            missing.append(name)
    return missing


def full_use_case(**overrides: object) -> R.Record:
    """factories.make_full_use_case (HIGH risk, every ATRS and AI Act field) with the
    older optional fields filled too: every field of the body is set."""
    fields: dict[str, object] = {
        "tags": ["bistånd", "beslutsstöd"],
        "techniques": ["Klassificering", "Maskininlärning"],
        "products": ["Prioriteringsmodell 2.1"],
        "data_sources": ["Ansökningar i verksamhetssystemet"],
        "cost": R.Cost(one_off_sek=400_000, yearly_sek=80_000, note="Delas med Tibro"),
        "benefits": [
            R.Benefit(
                metric="handläggningstid",
                value=4.5,
                unit="dagar kortare",
                method="Jämförelse av 2024 och 2025, samma månader",
            )
        ],
        "partner_kommuner": [webkit.TIBRO],
        "national_projects": ["Nationellt AI-stöd för socialtjänsten"],
        "links": [R.Link(url="https://www.leksand.se/ai-bistand", title="Om projektet")],
        "reuses": [R.RecordRef(origin=LEKSAND, id="sol-ai-policy")],
        "started_at_ms": factories.T0_MS - 86_400_000 * 90,
        "ended_at_ms": factories.T0_MS + 86_400_000 * 365,
    }
    fields.update(overrides)
    return factories.make_full_use_case(**fields)


def full_code_solution(**overrides: object) -> R.Record:
    """factories.make_full_solution (software, every publiccode.yml field) with the
    older optional fields filled too."""
    fields: dict[str, object] = {
        "tags": ["diarieföring"],
        "summary": "Öppen källkod för prioritering av ansökningar om ekonomiskt bistånd, "
        "med handläggarens beslut i centrum.",
        "use_cases": [R.RecordRef(origin=LEKSAND, id="uc-full")],
        "cost": R.Cost(one_off_sek=1, yearly_sek=12_000, note="Drift i egen miljö"),
    }
    fields.update(overrides)
    return factories.make_full_solution(**fields)
