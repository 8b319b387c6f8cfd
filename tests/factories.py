"""Valid records and signed entries for tests, shared by every test folder.

``import factories`` works from any test (``pythonpath = ["tests"]`` in pyproject).

- ``make_use_case()``, ``make_lesson()``, ``make_solution()``,
  ``make_recommendation()``, ``make_adoption()``: one valid record each; keyword
  arguments override header values (``record_id``, ``origin``, ``version``,
  ``visibility``, ``tombstone``, ``tags``, ...) and body fields (``title=...``).
- ``make_record(kind, ...)``: the same by kind (a RecordKind value or a body name).
- ``make_tombstone(record)``: the next version of ``record``, retracted.
- ``FeedWriter(origin, key)``: an origin writing a valid chain of signed entries;
  ``build()`` makes an entry without advancing (for forks, gaps, bad timestamps).

Timestamps are fixed and in the past (``T0_MS``), so entries verify with the
wall clock as well as with an explicit ``now_ms=FIXED_NOW_MS``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from samverka.protocol.entries import build_entry, sign_entry
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.signing import GENESIS_HASH, SigningKey, entry_hash
from samverka.protocol.verify import KeyRing, MemoryFeedState, TrustedKey
from samverka.v1 import feed_pb2, records_pb2

#: 2025-06-15T15:06:40Z: the first entry's timestamp.
T0_MS = 1_750_000_000_000
#: 2026-01-01T00:00:00Z: a receiver's "now" well after every factory entry.
FIXED_NOW_MS = 1_767_225_600_000

LEKSAND = "2029"
TIBRO = "1472"
GAGNEF = "2026"

BODY_OF_KIND: dict[int, str] = {
    records_pb2.RECORD_KIND_USE_CASE: "use_case",
    records_pb2.RECORD_KIND_LESSON: "lesson",
    records_pb2.RECORD_KIND_SOLUTION: "solution",
    records_pb2.RECORD_KIND_RECOMMENDATION: "recommendation",
    records_pb2.RECORD_KIND_ADOPTION: "adoption",
}
KIND_OF_BODY: dict[str, int] = {body: kind for kind, body in BODY_OF_KIND.items()}

_HEADER_KEYS = frozenset(
    {
        "record_id",
        "origin",
        "version",
        "visibility",
        "tombstone",
        "language",
        "tags",
        "created_at_ms",
        "updated_at_ms",
    }
)


def make_header(
    kind: int,
    *,
    record_id: str,
    origin: str = LEKSAND,
    version: int = 1,
    visibility: int = records_pb2.VISIBILITY_PUBLIC,
    tombstone: bool = False,
    language: str = "sv",
    tags: Iterable[str] = (),
    created_at_ms: int = T0_MS,
    updated_at_ms: int = T0_MS,
) -> records_pb2.RecordHeader:
    return records_pb2.RecordHeader(
        id=record_id,
        kind=kind,  # type: ignore[arg-type]
        origin=origin,
        version=version,
        created_at_ms=created_at_ms,
        updated_at_ms=updated_at_ms,
        visibility=visibility,  # type: ignore[arg-type]
        tombstone=tombstone,
        language=language,
        tags=list(tags),
    )


def _record(kind: int, defaults: dict[str, Any], kwargs: dict[str, Any]) -> records_pb2.Record:
    header_args = {k: v for k, v in kwargs.items() if k in _HEADER_KEYS}
    header_args.setdefault("record_id", defaults.pop("record_id"))
    body_args = {**defaults, **{k: v for k, v in kwargs.items() if k not in _HEADER_KEYS}}
    body = BODY_OF_KIND[kind]
    record = records_pb2.Record(header=make_header(kind, **header_args))
    getattr(record, body).CopyFrom(type(getattr(record, body))(**body_args))
    return record


def make_use_case(**kwargs: Any) -> records_pb2.Record:
    """A valid UseCase of Leksand ("uc-1"), with Swedish text."""
    defaults: dict[str, Any] = {
        "record_id": "uc-1",
        "title": "AI-stöd för äldreomsorgens planering",
        "summary": "Schemaläggning av hemtjänstens besök med en AI-modell.",
        "service_area": records_pb2.SERVICE_AREA_ELDERLY_CARE,
        "status": records_pb2.USE_CASE_STATUS_PILOT,
        "risk_class": records_pb2.RISK_CLASS_LIMITED,
    }
    return _record(records_pb2.RECORD_KIND_USE_CASE, defaults, kwargs)


def make_lesson(**kwargs: Any) -> records_pb2.Record:
    defaults: dict[str, Any] = {
        "record_id": "lesson-1",
        "title": "Upphandla med exit-klausul",
        "category": records_pb2.LESSON_CATEGORY_PROCUREMENT,
        "use_case": records_pb2.RecordRef(origin=LEKSAND, id="uc-1"),
        "advice": "Skriv in dataportabilitet i avtalet från början.",
    }
    return _record(records_pb2.RECORD_KIND_LESSON, defaults, kwargs)


def make_solution(**kwargs: Any) -> records_pb2.Record:
    defaults: dict[str, Any] = {
        "record_id": "sol-1",
        "title": "Mall för konsekvensbedömning",
        "summary": "En DPIA-mall för generativ AI i kommunal verksamhet.",
        "solution_type": records_pb2.SOLUTION_TYPE_IMPACT_ASSESSMENT_TEMPLATE,
        "licence": "CC-BY-4.0",
        "url": "https://example.se/mall.docx",
        "content_hash": "sha256:" + "ab" * 32,
    }
    return _record(records_pb2.RECORD_KIND_SOLUTION, defaults, kwargs)


def make_recommendation(**kwargs: Any) -> records_pb2.Record:
    """A valid Recommendation; these come from the council's hub ("0000")."""
    kwargs.setdefault("origin", HUB_ORIGIN)
    defaults: dict[str, Any] = {
        "record_id": "rec-1",
        "title": "Rekommendation om generativ AI",
        "summary": "Rådets hållning om generativ AI i handläggning.",
        "body": "Börja i liten skala.\nMät nyttan.",
    }
    return _record(records_pb2.RECORD_KIND_RECOMMENDATION, defaults, kwargs)


def make_adoption(**kwargs: Any) -> records_pb2.Record:
    """A valid Adoption of Tibro's "sol-1" by Leksand."""
    defaults: dict[str, Any] = {
        "record_id": "adopt-1",
        "solution": records_pb2.RecordRef(origin=TIBRO, id="sol-1"),
        "status": records_pb2.USE_CASE_STATUS_PRODUCTION,
        "adopted_at_ms": T0_MS,
    }
    return _record(records_pb2.RECORD_KIND_ADOPTION, defaults, kwargs)


_MAKERS = {
    "use_case": make_use_case,
    "lesson": make_lesson,
    "solution": make_solution,
    "recommendation": make_recommendation,
    "adoption": make_adoption,
}
ALL_BODIES = tuple(_MAKERS)


def make_record(kind: int | str, **kwargs: Any) -> records_pb2.Record:
    """A valid record of ``kind`` (RecordKind value or body name like "lesson")."""
    body = kind if isinstance(kind, str) else BODY_OF_KIND[kind]
    return _MAKERS[body](**kwargs)


def make_tombstone(record: records_pb2.Record) -> records_pb2.Record:
    """The next version of ``record``, retracted (its body stays, as the publisher does)."""
    retired = records_pb2.Record()
    retired.CopyFrom(record)
    retired.header.tombstone = True
    retired.header.version = record.header.version + 1
    return retired


def serialize(signed: feed_pb2.SignedEntry) -> bytes:
    return signed.SerializeToString(deterministic=True)


class FeedWriter:
    """One origin writing a valid chain of signed entries.

    ``append`` advances the chain (sequence, previous hash, timestamp); ``build``
    makes a signed entry at the current position without advancing, with any of
    sequence, previous_hash, timestamp_ms or the signing key overridden. Records
    with ``header.version == 0`` get the next version of their id.
    """

    def __init__(
        self,
        origin: str = LEKSAND,
        key: SigningKey | None = None,
        *,
        start_ms: int = T0_MS,
        step_ms: int = 1_000,
    ) -> None:
        self.origin = origin
        self.key = key or SigningKey.generate()
        self.step_ms = step_ms
        self.sequence = 0
        self.head_hash = GENESIS_HASH
        self.next_timestamp_ms = start_ms
        self.versions: dict[str, int] = {}
        self.entries: list[feed_pb2.SignedEntry] = []

    # -- trust -------------------------------------------------------------------
    def trusted_key(
        self, *, valid_from_ms: int = 0, revoked_at_ms: int | None = None
    ) -> TrustedKey:
        return TrustedKey(self.origin, self.key.public, valid_from_ms, revoked_at_ms)

    def keyring(self) -> KeyRing:
        return KeyRing([self.trusted_key()])

    # -- writing -----------------------------------------------------------------
    def _versioned(self, record: records_pb2.Record) -> records_pb2.Record:
        if record.header.version:
            return record
        rec = records_pb2.Record()
        rec.CopyFrom(record)
        rec.header.version = self.versions.get(rec.header.id, 0) + 1
        return rec

    def build(
        self,
        record: records_pb2.Record,
        *,
        sequence: int | None = None,
        previous_hash: bytes | None = None,
        timestamp_ms: int | None = None,
        key: SigningKey | None = None,
        origin: str | None = None,
    ) -> feed_pb2.SignedEntry:
        """A signed entry for the next position, without advancing the chain."""
        entry_bytes = build_entry(
            origin=self.origin if origin is None else origin,
            sequence=self.sequence + 1 if sequence is None else sequence,
            previous_hash=self.head_hash if previous_hash is None else previous_hash,
            timestamp_ms=self.next_timestamp_ms if timestamp_ms is None else timestamp_ms,
            record=self._versioned(record),
        )
        return sign_entry(key or self.key, entry_bytes)

    def append(
        self, record: records_pb2.Record, *, timestamp_ms: int | None = None
    ) -> feed_pb2.SignedEntry:
        """Sign ``record`` as the next entry of the feed and advance."""
        record = self._versioned(record)
        signed = self.build(record, timestamp_ms=timestamp_ms)
        self.sequence += 1
        self.head_hash = entry_hash(signed.entry)
        used_ms = self.next_timestamp_ms if timestamp_ms is None else timestamp_ms
        self.next_timestamp_ms = used_ms + self.step_ms
        self.versions[record.header.id] = record.header.version
        self.entries.append(signed)
        return signed

    def publish(self, kind: int | str = "use_case", **kwargs: Any) -> feed_pb2.SignedEntry:
        """Append a new version of a factory record of this origin (next version of its id)."""
        kwargs.setdefault("origin", self.origin)
        kwargs.setdefault("version", 0)
        return self.append(make_record(kind, **kwargs))

    def fork(self) -> FeedWriter:
        """An independent copy at the same position, same key: a second history."""
        twin = copy.copy(self)
        twin.versions = dict(self.versions)
        twin.entries = list(self.entries)
        return twin


def receiver(*writers: FeedWriter) -> tuple[KeyRing, MemoryFeedState]:
    """A fresh in-memory receiver trusting each writer's key for its origin."""
    return KeyRing(w.trusted_key() for w in writers), MemoryFeedState()


# -- the ATRS and AI Act fields (issue 13) -------------------------------------------------

R = records_pb2
#: A provider of an AI system, as in the Annex VIII fields.
_PROVIDER = R.AiSystemProvider(
    name="Exempelbolaget AB",
    trade_name="Handläggarstöd 2.1",
    contact="support@exempelbolaget.se",
    url="https://exempelbolaget.se/handlaggarstod",
    eu_database_url="https://ec.europa.eu/ai-database/entry/HS-2024-001",
)
_MODEL = R.AiModel(
    name="Prioriteringsmodell",
    version="2.1",
    provider="Exempelbolaget AB",
    model_type="gradient boosting",
    task="Föreslår i vilken ordning ansökningar handläggs",
    input="Ansökans uppgifter utan namn och personnummer",
    output="En prioritet 1-3 med de tre viktigaste skälen",
    architecture="Beslutsträd (XGBoost)",
    performance="Träffsäkerhet 0,87 mot handläggarnas bedömning 2023",
    datasets=["Avslutade ärenden 2019-2023"],
)


def make_full_use_case(**kwargs: Any) -> records_pb2.Record:
    """A valid high-risk UseCase of Leksand ("uc-full") with every ATRS tier-1/tier-2
    and AI Act field filled (for the exports' and the schema's tests)."""
    defaults: dict[str, Any] = {
        "record_id": "uc-full",
        "title": "Prioritering av ansökningar om ekonomiskt bistånd",
        "summary": "En modell föreslår i vilken ordning ansökningar handläggs; "
        "handläggaren beslutar.",
        "description": "Modellen läser ansökans uppgifter och föreslår en prioritet.",
        "service_area": R.SERVICE_AREA_SOCIAL_SERVICES,
        "status": R.USE_CASE_STATUS_PILOT,
        "risk_class": R.RISK_CLASS_HIGH,
        "processes_personal_data": True,
        "impact_assessment_done": True,
        "impact_assessment": R.Link(url="https://leksand.se/dpia-bistand", title="DPIA"),
        "human_oversight": "Handläggaren beslutar alltid; förslaget kan ändras.",
        "vendors": ["Exempelbolaget AB"],
        "contact_role": "enhetschef ekonomiskt bistånd",
        "website": "https://leksand.se/ai/bistand",
        "contact_email": "ai@leksand.se",
        "accountability": R.Accountability(
            organisation="Leksands kommun, socialnämnden",
            team="Enheten för ekonomiskt bistånd",
            senior_responsible_owner="Socialchef",
            suppliers=[
                R.Supplier(
                    name="Exempelbolaget AB",
                    company_number="556677-8899",
                    role="utvecklar och driftar tjänsten",
                    procurement_procedure="förnyad konkurrensutsättning",
                )
            ],
            data_access_terms="Leverantören är personuppgiftsbiträde enligt avtal.",
        ),
        "rationale": R.Rationale(
            scope="Endast prioritering; beslut fattas av handläggare.",
            expected_benefits="Kortare väntetid för brådskande ärenden.",
            previous_process="Ärenden handlades i den ordning de kom in.",
            alternatives_considered="Fler handläggare; regelbaserad sortering.",
        ),
        "decision_process": R.DecisionProcess(
            process_integration="Förslaget visas i verksamhetssystemet vid ärendelistan.",
            provided_information="Prioritet och de tre viktigaste skälen.",
            frequency_and_scale="Cirka 300 ansökningar i månaden.",
            required_training="Halvdagsutbildning om modellens begränsningar.",
            appeals_and_review="Beslutet kan överklagas till förvaltningsrätten.",
        ),
        "technical": R.TechnicalSpecification(
            system_architecture="Modellen körs i leverantörens moln inom EU.",
            maintenance="Modellen utvärderas varje kvartal.",
        ),
        "models": [_MODEL],
        "datasets": [
            R.Dataset(
                name="Avslutade ärenden 2019-2023",
                description="Pseudonymiserade ärenden med handläggarens prioritering.",
                url="https://leksand.se/data/arenden",
                source="Kommunens verksamhetssystem",
                collection="Uttag ur verksamhetssystemet 2024",
                quantity="14 000 ärenden",
                sensitive_attributes="Inga namn eller personnummer",
                completeness_and_representativeness="Alla ärenden under perioden.",
                cleaning="Dubbletter borttagna.",
                sharing="Delas inte.",
                access_and_storage="Lagras i EU, gallras efter fem år.",
            )
        ],
        "assessments": [
            R.Assessment(
                name="Jämställdhetsanalys",
                completed_at_ms=T0_MS,
                summary="Inga skillnader mellan kön i prioriteringen.",
                url="https://leksand.se/ai/bistand/jamstalldhet",
            )
        ],
        "risks": [
            R.Risk(
                name="Felaktig prioritet",
                category="noggrannhet",
                description="Ett brådskande ärende kan få låg prioritet.",
                mitigation="Handläggaren ser alltid hela listan; uppföljning varje kvartal.",
            )
        ],
        "ai_act_role": R.AI_ACT_ROLE_DEPLOYER,
        "high_risk_area": R.HIGH_RISK_AREA_ESSENTIAL_SERVICES,
        "intended_purpose": "Att föreslå handläggningsordning för ansökningar om bistånd.",
        "fria": R.FundamentalRightsAssessment(
            done=True,
            completed_at_ms=T0_MS,
            summary="Risk för diskriminering hanteras med mänsklig prövning.",
            url="https://leksand.se/ai/bistand/fria",
        ),
        "dpia_summary": "Behandlingen är nödvändig; risker hanteras med åtkomstkontroll.",
        "eu_database_id": "EU-AI-2025-000123",
        "transparency_obligations": [R.TRANSPARENCY_OBLIGATION_INTERACTS_WITH_PEOPLE],
        "transparency_notice": "Den sökande informeras i beslutsbrevet.",
        "provider": _PROVIDER,
        "proportionality": "Stödet minskar väntetiden; inga uppgifter utöver ansökan används.",
        "lawful_basis": "Allmänt intresse (GDPR art. 6.1 e), socialtjänstlagen 4 kap. 1 §.",
        "algorithm_type": R.ALGORITHM_TYPE_HYBRID,
        "algorithm_use": R.ALGORITHM_USE_PRESCRIPTIVE,
        "revision_due_at_ms": 1_782_777_600_000,  # 2026-06-30, the next review
    }
    return _record(R.RECORD_KIND_USE_CASE, defaults, kwargs)


def make_full_solution(**kwargs: Any) -> records_pb2.Record:
    """A valid software Solution of Leksand ("sol-full") with every optional field filled."""
    defaults: dict[str, Any] = {
        "record_id": "sol-full",
        "title": "Handläggarstöd för ekonomiskt bistånd",
        "summary": "Öppen källkod för prioritering av ansökningar.",
        "solution_type": R.SOLUTION_TYPE_CODE,
        "service_area": R.SERVICE_AREA_SOCIAL_SERVICES,
        "licence": "EUPL-1.2",
        "url": "https://github.com/leksand/handlaggarstod",
        "content_hash": "sha256:" + "ab" * 32,
        "how_to_adopt": "Installera enligt README.",
        "contact_role": "IT-strateg",
        "links": [R.Link(url="https://leksand.se/ai", title="Mer om AI i Leksand")],
        "provider": _PROVIDER,
        "models": [_MODEL],
        "intended_purpose": "Att föreslå handläggningsordning för ansökningar om bistånd.",
        "software_version": "2.1.0",
        "development_status": R.DEVELOPMENT_STATUS_STABLE,
        "maintenance_type": R.MAINTENANCE_TYPE_INTERNAL,
        "platforms": ["web", "linux"],
    }
    return _record(R.RECORD_KIND_SOLUTION, defaults, kwargs)
