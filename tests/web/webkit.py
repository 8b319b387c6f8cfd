"""A small federation at a real hub, seeded through the real path (``import webkit``).

Each kommun enrolls at the hub (a signed request, approved by the council, so the
signed member directory lists its key), writes its records into its own node store
with the node's :class:`~samverka.records.publisher.Publisher`, and the hub ingests the feed
as a push would: ``feed_items`` (drafts redacted) → :func:`samverka.replication.ingest.ingest`
verified against the directory's keys. The council's recommendation is published
in the hub's own feed by the hub's publisher.

The content is realistic Swedish demo content (Leksand's AI policy, Kungsbacka's
shared assistant, Tibro's Copilot pilot, …), one MEMBERS record of each kind whose
text carries :data:`SECRET` (it must never show in the catalog), a retracted
record, and a record whose text is hostile markup (:data:`HOSTILE_TITLE`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from samverka.membership.enrollment import build_enrollment_request
from samverka.protocol.signing import SigningKey
from samverka.records.publisher import Publisher
from samverka.replication.ingest import ingest
from samverka.store.store import Store
from samverka.transport.pki import create_csr
from samverka.v1 import records_pb2 as R
from samverka_hub.folder import Hub, init_hub

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

LEKSAND, KUNGSBACKA, TIBRO, GAGNEF, FALUN, SKARA = "2029", "1384", "1472", "2026", "2080", "1495"
#: Every MEMBERS record of the seed carries this word; no public answer may contain it.
SECRET = "Hemligstämpel"
HOSTILE_TITLE = '<script>alert("xss")</script> Chattbot <img src=x onerror=alert(1)>'
HOSTILE_SUMMARY = '"><svg onload=alert(2)> Äldreomsorg & <b>fet</b> text'


def ref(origin: str, record_id: str) -> R.RecordRef:
    return R.RecordRef(origin=origin, id=record_id)


def header(
    record_id: str, kind: int, *, visibility: int = R.VISIBILITY_PUBLIC, tags: tuple[str, ...] = ()
) -> R.RecordHeader:
    return R.RecordHeader(
        id=record_id, kind=kind, visibility=visibility, language="sv", tags=list(tags)
    )  # type: ignore[arg-type]


def use_case(
    record_id: str,
    *,
    visibility: int = R.VISIBILITY_PUBLIC,
    tags: tuple[str, ...] = (),
    **body: object,
) -> R.Record:
    return R.Record(
        header=header(record_id, R.RECORD_KIND_USE_CASE, visibility=visibility, tags=tags),
        use_case=R.UseCase(**body),
    )  # type: ignore[arg-type]


def lesson(record_id: str, *, visibility: int = R.VISIBILITY_PUBLIC, **body: object) -> R.Record:
    return R.Record(
        header=header(record_id, R.RECORD_KIND_LESSON, visibility=visibility),
        lesson=R.Lesson(**body),
    )  # type: ignore[arg-type]


def solution(record_id: str, *, visibility: int = R.VISIBILITY_PUBLIC, **body: object) -> R.Record:
    return R.Record(
        header=header(record_id, R.RECORD_KIND_SOLUTION, visibility=visibility),
        solution=R.Solution(**body),
    )  # type: ignore[arg-type]


def adoption(
    record_id: str,
    of: R.RecordRef,
    *,
    status: int = R.USE_CASE_STATUS_PRODUCTION,
    visibility: int = R.VISIBILITY_PUBLIC,
    note: str = "",
) -> R.Record:
    return R.Record(
        header=header(record_id, R.RECORD_KIND_ADOPTION, visibility=visibility),
        adoption=R.Adoption(solution=of, status=status, note=note, adopted_at_ms=1_750_000_000_000),  # type: ignore[arg-type]
    )


def recommendation(
    record_id: str, *, visibility: int = R.VISIBILITY_PUBLIC, **body: object
) -> R.Record:
    return R.Record(
        header=header(record_id, R.RECORD_KIND_RECOMMENDATION, visibility=visibility),
        recommendation=R.Recommendation(**body),
    )  # type: ignore[arg-type]


PUB, MEM = R.VISIBILITY_PUBLIC, R.VISIBILITY_MEMBERS


def kommun_profile(
    band: int,
    group: int,
    *,
    visibility: int = R.VISIBILITY_PUBLIC,
    rules: R.AiRules | None = None,
    interests: tuple[int, ...] = (),
) -> R.Record:
    """A kommun's profile record (kind 6, the fixed id kommunprofil)."""
    record = R.Record(
        header=header("kommunprofil", R.RECORD_KIND_KOMMUN_PROFILE, visibility=visibility)
    )
    record.kommun_profile.CopyFrom(
        R.KommunProfile(
            population_band=band,  # type: ignore[arg-type]
            kommun_group=group,  # type: ignore[arg-type]
            interests=list(interests),  # type: ignore[arg-type]
            ai_rules=rules or R.AiRules(),
        )
    )
    return record


def suits_profiles(fed: Federation) -> None:
    """Profiles for "Passar er": Skara (C9, 10-25k, only minimal risk, no personal data)
    is like Leksand (C9) and Kungsbacka (same band, for the test); Tibro's is members only."""
    band, c9 = R.POPULATION_BAND_FROM_10K_TO_25K, R.KOMMUN_GROUP_C9
    strict = R.AiRules(max_risk_class=R.RISK_CLASS_MINIMAL, no_personal_data=True)
    fed.publish(SKARA, kommun_profile(band, c9, rules=strict))
    fed.publish(LEKSAND, kommun_profile(band, c9, rules=strict))
    fed.publish(KUNGSBACKA, kommun_profile(band, R.KOMMUN_GROUP_A2))
    fed.publish(TIBRO, kommun_profile(band, c9, visibility=MEM))


def demo_records() -> dict[str, list[R.Record]]:
    """Each kommun's records in the order it writes them."""
    return {
        LEKSAND: [
            solution(
                "sol-ai-policy",
                title="AI-policy för Leksands kommun",
                summary="Kommunens policy för generativ AI: vad medarbetare får och inte får göra, "
                "och hur personuppgifter skyddas.",
                solution_type=R.SOLUTION_TYPE_POLICY,
                service_area=R.SERVICE_AREA_ADMINISTRATION,
                licence="CC-BY-4.0",
                url="https://www.leksand.se/ai-policy.pdf",
                content_hash="sha256:" + "ab" * 32,
                how_to_adopt="Byt kommunnamn, låt kommunjuristen läsa, anta i kommunstyrelsen.",
                contact_role="digitaliseringsstrateg",
            ),
            use_case(
                "uc-ai-policy",
                title="Införande av AI-policy och utbildning",
                summary="Alla medarbetare har gått en kort utbildning innan generativ AI tillåts.",
                service_area=R.SERVICE_AREA_ADMINISTRATION,
                status=R.USE_CASE_STATUS_PRODUCTION,
                techniques=["Generativ AI"],
                risk_class=R.RISK_CLASS_MINIMAL,
                contact_role="digitaliseringsstrateg",
            ),
            use_case(
                "uc-members-only",
                visibility=MEM,
                title=f"{SECRET}: utvärdering av chattbot i socialtjänsten",
                summary=f"{SECRET} intern utvärdering, delas bara med medlemmar.",
                service_area=R.SERVICE_AREA_SOCIAL_SERVICES,
                status=R.USE_CASE_STATUS_PRODUCTION,
                techniques=[f"{SECRET}teknik"],
                risk_class=R.RISK_CLASS_HIGH,
            ),
            use_case(
                "uc-retired",
                title="Tillbakadragen test av bildtolkning",
                summary="Ersatt av en annan lösning.",
                service_area=R.SERVICE_AREA_URBAN_PLANNING,
                status=R.USE_CASE_STATUS_ENDED,
            ),
        ],
        KUNGSBACKA: [
            use_case(
                "uc-delad-assistent",
                title="Delad AI-assistent för kommunens medarbetare",
                summary="En gemensam AI-assistent i kommunens egen miljö, "
                "som flera kommuner delar.",
                description="Assistenten svarar på frågor om styrdokument och hjälper till "
                "med texter.\nDen körs i en svensk molntjänst.",
                service_area=R.SERVICE_AREA_IT,
                status=R.USE_CASE_STATUS_PRODUCTION,
                techniques=["Generativ AI", "Språkmodell"],
                products=["Egen assistent"],
                risk_class=R.RISK_CLASS_LIMITED,
                processes_personal_data=True,
                impact_assessment_done=True,
                partner_kommuner=[TIBRO, GAGNEF],
                cost=R.Cost(one_off_sek=120_000, yearly_sek=45_000, note="Delas mellan kommunerna"),
                benefits=[R.Benefit(metric="sparade timmar per år", value=1200, unit="timmar")],
                contact_role="IT-chef",
                links=[R.Link(url="https://www.kungsbacka.se/ai", title="Om assistenten")],
                reuses=[ref(LEKSAND, "sol-ai-policy")],
            ),
            use_case(
                "uc-taligenkanning",
                title="Taligenkänning för dokumentation i hemtjänsten",
                summary="Personalen dikterar journalanteckningar i stället för att skriva.",
                service_area=R.SERVICE_AREA_ELDERLY_CARE,
                status=R.USE_CASE_STATUS_PILOT,
                techniques=["Taligenkänning"],
                risk_class=R.RISK_CLASS_HIGH,
                processes_personal_data=True,
                # ATRS and AI Act fields (issue 13): some groups filled, others not.
                accountability=R.Accountability(
                    organisation="Kungsbacka kommun, vård- och omsorgsnämnden",
                    senior_responsible_owner="Förvaltningschef vård och omsorg",
                    suppliers=[R.Supplier(name="Diktera AB", company_number="556000-0001")],
                ),
                decision_process=R.DecisionProcess(
                    appeals_and_review="Den enskilde kan begära rättelse av journalen."
                ),
                risks=[
                    R.Risk(
                        name="Feltolkade ord i journalen",
                        category="noggrannhet",
                        mitigation="Personalen läser igenom texten innan den sparas.",
                    )
                ],
                ai_act_role=R.AI_ACT_ROLE_DEPLOYER,
                intended_purpose="Att göra tal till text i hemtjänstens journalanteckningar.",
                fria=R.FundamentalRightsAssessment(done=False),
                provider=R.AiSystemProvider(
                    name="Diktera AB", url="https://diktera.example.se/omsorg"
                ),
            ),
            adoption("adopt-ai-policy", ref(LEKSAND, "sol-ai-policy")),
            lesson(
                "lesson-members",
                visibility=MEM,
                title=f"{SECRET}: lärdom bara för medlemmar",
                use_case=ref(KUNGSBACKA, "uc-delad-assistent"),
                advice=f"{SECRET} råd.",
                category=R.LESSON_CATEGORY_ETHICS,
            ),
        ],
        TIBRO: [
            use_case(
                "uc-copilot-pilot",
                title="Pilot med Microsoft 365 Copilot i administrationen",
                summary="Tjugo handläggare testar Copilot i ett halvår och mäter tidsvinsten.",
                service_area=R.SERVICE_AREA_ADMINISTRATION,
                status=R.USE_CASE_STATUS_PILOT,
                techniques=["generativ AI"],
                products=["Microsoft 365 Copilot"],
                vendors=["Microsoft"],
                risk_class=R.RISK_CLASS_LIMITED,
            ),
            lesson(
                "lesson-behorigheter",
                title="Copilot kräver ordning i behörigheterna",
                use_case=ref(TIBRO, "uc-copilot-pilot"),
                category=R.LESSON_CATEGORY_TECHNOLOGY,
                what_worked="Sammanfattningar av långa ärenden.",
                what_did_not="Copilot hittade dokument som borde ha varit låsta.",
                advice="Städa behörigheterna i SharePoint innan piloten börjar.",
            ),
            adoption("adopt-ai-policy", ref(LEKSAND, "sol-ai-policy")),
            solution(
                "sol-members",
                visibility=MEM,
                title=f"{SECRET}: upphandlingsmall",
                summary=f"{SECRET} mall.",
                licence="EUPL-1.2",
                solution_type=R.SOLUTION_TYPE_PROCUREMENT_TEMPLATE,
            ),
        ],
        GAGNEF: [
            adoption(
                "adopt-ai-policy", ref(LEKSAND, "sol-ai-policy"), status=R.USE_CASE_STATUS_PILOT
            ),
            adoption("adopt-members", ref(TIBRO, "sol-members"), visibility=MEM),
        ],
        FALUN: [
            use_case(
                "uc-hostile",
                title=HOSTILE_TITLE,
                summary=HOSTILE_SUMMARY,
                description="</p><script>document.title='pwned'</script>",
                service_area=R.SERVICE_AREA_CITIZEN_SERVICE,
                status=R.USE_CASE_STATUS_IDEA,
                techniques=["<i>chatt</i>"],
                links=[R.Link(url="https://example.se/a?b=<script>", title="<script>x</script>")],
                tags=("<script>tagg</script>",),
                risks=[R.Risk(name="<script>risk</script>", mitigation="<b>åtgärd</b>")],
                website="https://example.se/x?<script>",
            ),
            use_case(
                "uc-formel",
                title="=SUMMA(A1:A9) i kalkylbladet",
                summary="+46 räknat med formler",
                service_area=R.SERVICE_AREA_FINANCE,
                status=R.USE_CASE_STATUS_IDEA,
            ),
        ],
        SKARA: [adoption("adopt-ai-policy", ref(LEKSAND, "sol-ai-policy"))],
    }


@dataclass
class Member:
    code: str
    key: SigningKey
    store: Store
    publisher: Publisher


@dataclass
class Federation:
    hub: Hub
    members: dict[str, Member] = field(default_factory=dict)

    def push(self, member: Member) -> None:
        """What a node's push does: its feed (drafts redacted) into the hub's ingest."""
        keys = self.hub.council.current_directory()
        assert keys is not None
        items = member.store.feed_items(member.code, 0, 10_000, member=True, include_drafts=False)
        report = ingest(self.hub.store, keys.keyring(), items, source="push")
        assert report.ok, report.first_refusal

    def publish(self, code: str, record: R.Record) -> None:
        """``code`` writes ``record`` in its node and pushes its feed to the hub."""
        member = self.members[code]
        member.publisher.publish(record)
        self.push(member)


def enroll(hub: Hub, code: str, folder: Path) -> Member:
    key = SigningKey.generate()
    csr = create_csr(code, hosts=("localhost",))
    request = build_enrollment_request(
        key, kommunkod=code, csr_der=csr.csr_der, created_at_ms=time.time_ns() // 1_000_000
    )
    hub.council.submit_enrollment(request)
    hub.council.approve(code)
    store = Store.open(f"sqlite:///{folder / f'node-{code}.db'}")
    return Member(code, key, store, Publisher(store, key, code))


@contextmanager
def seeded_hub(folder: Path, *, store_url: str = "") -> Iterator[Federation]:
    """A hub in ``folder`` holding the demo federation (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    hub = init_hub(folder / "hub", store_url=store_url)
    federation = Federation(hub)
    try:
        for code, records in demo_records().items():
            member = enroll(hub, code, folder)
            federation.members[code] = member
            for record in records:
                member.publisher.publish(record)
            if code == LEKSAND:
                member.publisher.retire("uc-retired")
            # A draft never leaves the node: pushed as a redacted stand-in.
            draft = use_case(
                "uc-draft",
                visibility=R.VISIBILITY_DRAFT,
                title=f"{SECRET} utkast",
                summary="utkast",
                service_area=R.SERVICE_AREA_IT,
                status=R.USE_CASE_STATUS_IDEA,
            )
            member.publisher.publish(draft)
            federation.push(member)
        council = hub.node().publisher()
        council.publish(
            recommendation(
                "rec-generativ-ai",
                title="AI-rådets rekommendation om generativ AI",
                summary="Börja med en policy, utbilda medarbetarna och mät nyttan.",
                body="1. Anta en AI-policy.\n2. Utbilda.\n3. Mät.",
                service_area=R.SERVICE_AREA_ADMINISTRATION,
                references=[ref(LEKSAND, "sol-ai-policy")],
            )
        )
        council.publish(
            recommendation(
                "rec-members",
                visibility=MEM,
                title=f"{SECRET}: rådets interna hållning",
                summary=f"{SECRET}.",
            )
        )
        # Drafts never reach a hub; this one is written in place, to test the guard.
        council.publish(
            recommendation(
                "rec-draft",
                visibility=R.VISIBILITY_DRAFT,
                title=f"{SECRET}: utkast från rådet",
                summary=f"{SECRET}.",
            )
        )
        yield federation
    finally:
        for member in federation.members.values():
            member.store.close()
        hub.close()


def client_for(federation: Federation) -> TestClient:
    """The catalog app over a federation's hub store, as an in-process ASGI client (here,
    not in conftest.py: a test module importing ``conftest`` may get another folder's)."""
    from fastapi.testclient import TestClient
    from samverka_hub.web.app import create_app
    from samverka_hub.web.catalog import Catalog

    hub = federation.hub
    catalog = Catalog(hub.store, hub.council.current_directory)
    return TestClient(create_app(catalog, hub.config.web))
