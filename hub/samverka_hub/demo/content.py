"""What the demo's kommuner publish: real AI work of four Swedish kommuner, as records.

Written from public sources (news pages of the kommuner, a kommunfullmäktige protocol,
AI Sweden's pages on AI-rådet and the shared digital assistant), kept faithful to them:
no figure, date or partner appears here that the sources do not give, and fields the
sources are silent on (costs, measured benefits) are left empty rather than guessed.
Two judgements are ours and said so in the text: the EU AI Act risk classes, and
reading Leksand's "minimal eller obefintlig risk" as the Act's *minimal risk* class.
Tibro's pilot also fills some ATRS and AI Act fields (its role, the provider, the
purpose, the responsible organisation, what it is for and not): what the sources say,
or what the use of an off-the-shelf product is; its two risks are ours, said so.

One record is NOT from a source: Gagnef's "Exempelfall" (:data:`GAGNEF_EXAMPLE`), an
invented high-risk use case (AI Act Annex III, essential public services) with every
ATRS and AI Act field filled, so that the exports (ATRS, the EU database draft for
high-risk systems) have something to show. Its title and text say it is an example.

Pure data: functions return new protobuf records (header id, kind, visibility and
body; origin, version and times are set by the publisher that signs them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from samverka.v1 import records_pb2 as r

PUBLIC = r.VISIBILITY_PUBLIC
MEMBERS = r.VISIBILITY_MEMBERS
DRAFT = r.VISIBILITY_DRAFT

LEKSAND, KUNGSBACKA, TIBRO, GAGNEF = "2029", "1384", "1472", "2026"
#: The council's hub: the origin of its recommendations (samverka.protocol.kommuner.HUB_ORIGIN).
HUB = "0000"

# Official pages the records link to (http(s) only; checked when the demo was written).
LEKSAND_NEWS = (
    "https://leksand.se/nyheter/aiskastarkakommunensverksamheter.5.780ec6c118d876d4bc46e9d2.html"
)
KUNGSBACKA_NEWS = (
    "https://kungsbacka.se/nyheter/nyhetsarkiv/"
    "2023-12-13-kungsbacka-kommun-partner-i-nationellt-banbrytande-ai-projekt"
)
AI_SWEDEN_ASSISTANT = "https://www.ai.se/sv/projekt/en-gemensam-digital-assistent-offentlig-sektor"
AI_SWEDEN_COUNCIL = "https://www.ai.se/sv/nyheter/ai-rad-utvecklar-rekommendationer-snabbare-ai-utveckling-i-svenska-kommuner"
GAGNEF_NEWS = "https://www.gagnef.se/gagnefs-kommun-starker-samarbetet-kring-digitalisering-med-grannkommuner/"
TIBRO_HOME = "https://tibro.se/"
MICROSOFT_COPILOT = "https://www.microsoft.com/sv-se/microsoft-365/copilot"
EU_AI_ACT = "https://eur-lex.europa.eu/eli/reg/2024/1689/oj"
#: The invented example's pages (.example: a reserved domain, nothing is there).
EXAMPLE_BASE = "https://gagnef.example/ai/exempel-prioritering/"

#: The kommuner of north-western Dalarna that Gagnef works with on digitalisation
#: (Leksand, Rättvik, Mora, Orsa, Älvdalen, Vansbro, Malung-Sälen; gagnef.se).
NORTHWEST_DALARNA = ("2029", "2031", "2062", "2034", "2039", "2021", "2023")


def _ms(year: int, month: int, day: int) -> int:
    return int(dt.datetime(year, month, day, tzinfo=dt.UTC).timestamp() * 1000)


def _record(record_id: str, kind: int, visibility: int, *tags: str) -> r.Record:
    record = r.Record()
    record.header.id = record_id
    record.header.kind = kind  # type: ignore[assignment]
    record.header.visibility = visibility  # type: ignore[assignment]
    record.header.language = "sv"
    record.header.tags.extend(tags)
    return record


def _ref(origin: str, record_id: str) -> r.RecordRef:
    return r.RecordRef(origin=origin, id=record_id)


def _link(url: str, title: str) -> r.Link:
    return r.Link(url=url, title=title)


# -- Leksand (2029): an AI policy adopted by kommunfullmäktige --------------------------

LEKSAND_POLICY = "sol-ai-policy"
LEKSAND_USE_CASE = "uc-ai-policy-minimal-risk"


def leksand() -> list[r.Record]:
    policy = _record(LEKSAND_POLICY, r.RECORD_KIND_SOLUTION, PUBLIC, "ai-policy", "riskbedömning")
    policy.solution.CopyFrom(
        r.Solution(
            title="Policy för tillämpning av artificiell intelligens",
            summary=(
                "Leksands AI-policy, antagen av kommunfullmäktige den 5 februari 2024. Den ger "
                "medarbetarna vägledning i hur eventuella risker alltid ska vägas mot "
                "utvecklingsmöjligheterna, och slår fast att kommunen i nuläget bara använder "
                "AI som ligger på minimal eller obefintlig risk."
            ),
            solution_type=r.SOLUTION_TYPE_POLICY,
            service_area=r.SERVICE_AREA_ADMINISTRATION,
            url=LEKSAND_NEWS,
            how_to_adopt=(
                "Utgå från Leksands policy och anpassa den till er egen organisation. Kärnan "
                "är en enkel regel: i nuläget används bara AI med minimal eller obefintlig "
                "risk (vår läsning: riskklassen minimal risk i EU:s AI-förordning), och "
                "varje ny tillämpning vägs mot sina risker. Låt kommunfullmäktige anta "
                "policyn, så får arbetet politisk förankring. Be Leksands kommun om "
                "beslutet och policytexten."
            ),
            use_cases=[_ref(LEKSAND, LEKSAND_USE_CASE)],
            contact_role="administrativ chef",
            links=[_link(EU_AI_ACT, "EU:s AI-förordning (EU) 2024/1689")],
        )
    )

    use_case = _record(
        LEKSAND_USE_CASE, r.RECORD_KIND_USE_CASE, PUBLIC, "ai-policy", "riskbedömning"
    )
    use_case.use_case.CopyFrom(
        r.UseCase(
            title="AI-policy: endast minimal risk",
            summary=(
                "Sedan kommunfullmäktige antog AI-policyn i februari 2024 använder Leksand i "
                "nuläget bara AI som ligger på minimal eller obefintlig risk. AI ska avlasta "
                "rutinbetonade och tidskrävande handläggningsmoment och stödja "
                "kvalitetssäkringen, så att medarbetarna kan göra det som bara de kan göra."
            ),
            description=(
                "Leksand står inför en demografisk struktur som gör kompetensförsörjningen "
                "svår, samtidigt som samhällsutmaningarna ska mötas med ekonomisk, social "
                "och miljömässig hållbarhet. AI-policyn är kommunens svar på regeringens mål "
                "att Sverige ska vara ledande i att använda digitaliseringens möjligheter.\n\n"
                'Risken hanteras med en tydlig gräns: "Som med allting annat kan det bli '
                'fel om något används omdömeslöst", säger kommunens administrativa chef. '
                "Därför får kommunen i nuläget bara använda AI med minimal eller obefintlig "
                "risk, och policyn vägleder i hur risker vägs mot utvecklingsmöjligheter."
            ),
            service_area=r.SERVICE_AREA_ADMINISTRATION,
            status=r.USE_CASE_STATUS_PRODUCTION,
            risk_class=r.RISK_CLASS_MINIMAL,
            human_oversight=(
                "Policyn kräver att eventuella risker alltid vägs mot utvecklingsmöjligheterna "
                "innan AI tas i bruk; bara tillämpningar med minimal eller obefintlig risk "
                "är tillåtna i nuläget."
            ),
            contact_role="administrativ chef",
            links=[_link(LEKSAND_NEWS, "AI ska stärka kommunens verksamheter (leksand.se)")],
            reuses=[_ref(LEKSAND, LEKSAND_POLICY)],
            started_at_ms=_ms(2024, 2, 5),
        )
    )

    lesson = _record("lesson-borja-med-minimal-risk", r.RECORD_KIND_LESSON, PUBLIC, "ai-policy")
    lesson.lesson.CopyFrom(
        r.Lesson(
            title="Börja med minimal risk – och väg alltid risk mot nytta",
            use_case=_ref(LEKSAND, LEKSAND_USE_CASE),
            category=r.LESSON_CATEGORY_ETHICS,
            what_worked=(
                "En policy antagen av kommunfullmäktige ger medarbetarna vägledning: de vet "
                "vilken AI som får användas och hur de ska tänka när risker vägs mot "
                "utvecklingsmöjligheter. Beslutet förankrar också arbetet politiskt; "
                "kommunstyrelsens ordförande kallade det ett viktigt steg mot en kommun i "
                "framkant."
            ),
            advice=(
                "Sätt en tydlig gräns för vilken risknivå som är tillåten i nuläget, i stället "
                "för att pröva varje verktyg från noll. Minimal risk är en trygg början som kan "
                "omprövas när erfarenheterna växer. Knyt policyn till kommunens verkliga "
                "utmaningar, som kompetensförsörjningen."
            ),
            service_area=r.SERVICE_AREA_ADMINISTRATION,
        )
    )
    return [policy, use_case, lesson]


# -- Kungsbacka (1384): partner in the national shared digital assistant ----------------

KUNGSBACKA_ASSISTANT = "uc-gemensam-digital-assistent"


def kungsbacka() -> list[r.Record]:
    assistant = _record(
        KUNGSBACKA_ASSISTANT, r.RECORD_KIND_USE_CASE, PUBLIC, "generativ-ai", "textuppgifter"
    )
    assistant.use_case.CopyFrom(
        r.UseCase(
            title="Gemensam digital assistent för offentlig sektor",
            summary=(
                "Kungsbacka är partner i det nationella projekt, koordinerat av AI Sweden, som "
                "tar fram en generativ AI-assistent för offentlig sektor. Syftet är att frigöra "
                "tid för medarbetare som arbetar med administrativa, textbaserade uppgifter, så "
                "att de kan ägna sig åt kärnuppdraget och räcka till fler."
            ),
            description=(
                "Projektet offentliggjordes i december 2023 vid en nationell pressträff med AI "
                "Sweden och civilministern, där Kungsbackas digitaliseringschef berättade vad "
                "det kan innebära för Sveriges kommuner. Assistenten ska utvecklas för och av "
                "medarbetare i offentlig sektor.\n\n"
                "Bakgrunden är glappet mellan tillgänglig arbetskraft och omsorgsbehov: hela "
                'det offentliga Sverige behöver klara "125 % välfärd med 75 % av resurserna", '
                "och det handlar om brist på människor i arbetsför ålder, inte om pengar. "
                "Kungsbacka vill både lösa sina egna utmaningar och visa vägen för de delar av "
                "offentlig sektor som inte har samma möjligheter.\n\n"
                "Riskklassen är vår bedömning: generativ AI för text, med transparenskrav."
            ),
            service_area=r.SERVICE_AREA_ADMINISTRATION,
            status=r.USE_CASE_STATUS_PILOT,
            techniques=["generativ AI", "förtränad språkmodell"],
            risk_class=r.RISK_CLASS_LIMITED,
            # Göteborgs stad speaks for the project on AI Sweden's project page.
            partner_kommuner=["1480"],
            national_projects=["En gemensam digital assistent för offentlig sektor (AI Sweden)"],
            contact_role="digitaliseringschef",
            links=[
                _link(KUNGSBACKA_NEWS, "Kungsbacka kommun partner i nationellt AI-projekt"),
                _link(AI_SWEDEN_ASSISTANT, "En gemensam digital assistent för offentlig sektor"),
            ],
        )
    )

    # Shared with members only: the kommun's own reflection on what partnership costs.
    lesson = _record("lesson-nationellt-samarbete", r.RECORD_KIND_LESSON, MEMBERS, "samverkan")
    lesson.lesson.CopyFrom(
        r.Lesson(
            title="Nationellt AI-samarbete kräver tid – men visar vägen för fler",
            use_case=_ref(KUNGSBACKA, KUNGSBACKA_ASSISTANT),
            category=r.LESSON_CATEGORY_COMPETENCE_AND_CHANGE,
            what_worked=(
                "Som partner kan kommunen bidra med sin egen verksamhetskunskap och forma en "
                "lösning som hela kommunsverige kan dra nytta av, också kommuner som inte har "
                "samma förutsättningar."
            ),
            advice=(
                "Räkna med att ett nationellt åtagande kräver tid, och avsätt den. Vänta inte: "
                "glappet mellan tillgänglig arbetskraft och omsorgsbehov är redan ett faktum."
            ),
            service_area=r.SERVICE_AREA_ADMINISTRATION,
        )
    )
    return [assistant, lesson]


# -- Tibro (1472): a Microsoft 365 Copilot pilot, AI guidance, no separate strategy -----

TIBRO_PILOT = "uc-copilot-pilot"


def tibro() -> list[r.Record]:
    pilot = _record(TIBRO_PILOT, r.RECORD_KIND_USE_CASE, PUBLIC, "copilot", "generativ-ai")
    pilot.use_case.CopyFrom(
        r.UseCase(
            title="Pilot med Microsoft 365 Copilot",
            summary=(
                "Ett antal medarbetare i Tibro kommun deltar i ett pilotprojekt som utvärderar "
                "vilka möjligheter Microsoft 365 Copilot ger i det administrativa arbetet. "
                "Piloten är en del av förvaltningens digitaliseringsarbete enligt "
                "kommunstyrelsens verksamhetsplan för 2024."
            ),
            description=(
                "Tibro ser positivt på AI för effektiviseringar och automatiseringar, men vill "
                "hantera möjligheterna på rätt sätt och i rätt ordning, etiskt och tryggt. En "
                "digitaliseringskoordinator stödjer verksamheterna, en AI-vägledning för "
                "medarbetarna tas fram, och kommunen ska delta i två nationella projekt om "
                "administrativa AI-lösningar. AI byggs också allt oftare in i "
                "verksamhetssystemen.\n\n"
                "Målet är att medarbetarna ska känna trygghet i att använda ny teknik som ett "
                "stöd: AI ska ge möjlighet att omfördela resurser och höja kvaliteten, inte "
                "ersätta tjänster (kommunfullmäktige, KF § 100, 2024-09-30).\n\n"
                "Riskklassen är vår bedömning: stöd i medarbetarnas eget textarbete."
            ),
            service_area=r.SERVICE_AREA_ADMINISTRATION,
            status=r.USE_CASE_STATUS_PILOT,
            techniques=["generativ AI"],
            products=["Microsoft 365 Copilot"],
            vendors=["Microsoft"],
            risk_class=r.RISK_CLASS_MINIMAL,
            contact_role="digitaliseringskoordinator",
            links=[_link(TIBRO_HOME, "Tibro kommun")],
            # ATRS and AI Act fields: what the sources say, or what using a product is.
            accountability=r.Accountability(
                organisation="Tibro kommun, kommunstyrelseförvaltningen",
            ),
            rationale=r.Rationale(
                scope=(
                    "Ett antal medarbetare provar Copilot i sitt administrativa arbete. "
                    "Verktyget fattar inga beslut i ärenden."
                ),
                expected_benefits=(
                    "Möjlighet att omfördela resurser och höja kvaliteten, inte att ersätta "
                    "tjänster (KF § 100, 2024-09-30)."
                ),
                alternatives_considered=(
                    "En separat AI-strategi, som kommunfullmäktige avslog: AI styrs inom den "
                    "löpande verksamhetsutvecklingen (KF § 100, 2024-09-30)."
                ),
            ),
            decision_process=r.DecisionProcess(
                process_integration=(
                    "Stöd i medarbetarnas eget textarbete; medarbetaren ansvarar för det som "
                    "skrivs och beslutas."
                ),
                required_training=(
                    "En AI-vägledning för medarbetarna tas fram (sol-ai-vagledning); en "
                    "digitaliseringskoordinator stödjer verksamheterna."
                ),
            ),
            risks=[
                r.Risk(
                    name="Felaktiga eller påhittade uppgifter i texter",
                    category="noggrannhet",
                    description="Vår bedömning: språkmodeller kan formulera fel med säkerhet.",
                    mitigation="Medarbetaren granskar och ansvarar för texten.",
                ),
                r.Risk(
                    name="Åtkomst till dokument med för vida behörigheter",
                    category="informationssäkerhet",
                    description="Vår bedömning: Copilot når allt som användaren når.",
                    mitigation="Vår bedömning: se över behörigheterna innan fler får verktyget.",
                ),
            ],
            ai_act_role=r.AI_ACT_ROLE_DEPLOYER,
            intended_purpose="Stöd i administrativt textarbete inom kommunens förvaltning.",
            provider=r.AiSystemProvider(
                name="Microsoft",
                trade_name="Microsoft 365 Copilot",
                url=MICROSOFT_COPILOT,
            ),
        )
    )

    guidance = _record("sol-ai-vagledning", r.RECORD_KIND_SOLUTION, PUBLIC, "vägledning")
    guidance.solution.CopyFrom(
        r.Solution(
            title="AI-vägledning för medarbetare",
            summary=(
                "En vägledning som ska stödja medarbetarna i att förstå och använda AI-verktyg "
                "på ett ansvarsfullt sätt, så att AI används etiskt och tryggt. Den tas fram av "
                "kommunstyrelseförvaltningen inom verksamhetsplanen för 2024, där digitalisering "
                "är ett prioriterat utvecklingsområde."
            ),
            solution_type=r.SOLUTION_TYPE_GUIDELINE,
            service_area=r.SERVICE_AREA_ADMINISTRATION,
            url=TIBRO_HOME,
            how_to_adopt=(
                "Vägledningen är under framtagande. Kontakta Tibros digitaliseringskoordinator "
                "för att ta del av arbetet. Tillsammans med kommunfullmäktiges beslut (KF § 100, "
                "2024-09-30) visar den hur AI kan styras inom den löpande "
                "verksamhetsutvecklingen, utan en separat AI-strategi."
            ),
            use_cases=[_ref(TIBRO, TIBRO_PILOT)],
            contact_role="digitaliseringskoordinator",
        )
    )

    lesson = _record(
        "lesson-ai-i-verksamhetsutvecklingen", r.RECORD_KIND_LESSON, PUBLIC, "styrning"
    )
    lesson.lesson.CopyFrom(
        r.Lesson(
            title="AI i den löpande verksamhetsutvecklingen – ingen separat AI-strategi",
            use_case=_ref(TIBRO, TIBRO_PILOT),
            category=r.LESSON_CATEGORY_COMPETENCE_AND_CHANGE,
            what_worked=(
                "En motion ville att kommunen skulle utreda AI och ta fram en AI-strategi. "
                "Arbetet pågick redan enligt kommunstyrelsens verksamhetsplan för 2024: en "
                "nyinrättad digitaliseringskoordinator, en AI-vägledning och en Copilot-pilot. "
                "Kommunfullmäktige avslog därför förslaget om en specifik AI-strategi och "
                "ansåg motionen i övrigt besvarad (KF § 100, 2024-09-30); förvaltningen såg "
                "inte vinsterna med ett separat dokument."
            ),
            advice=(
                "Låt AI vara en del av den ordinarie verksamhetsutvecklingen, och kom ihåg att "
                "samma effekter ibland nås med nya arbetssätt eller andra IT-lösningar. "
                "Kommunicera tidigt att AI ska ge möjlighet att omfördela resurser och höja "
                "kvaliteten, inte ersätta tjänster, så att medarbetarna känner trygghet."
            ),
            service_area=r.SERVICE_AREA_ADMINISTRATION,
        )
    )

    # A draft: the pilot's evaluation is still going on. Drafts never leave the node.
    draft = _record("lesson-copilot-utvardering", r.RECORD_KIND_LESSON, DRAFT, "copilot")
    draft.lesson.CopyFrom(
        r.Lesson(
            title="Utvärdering av Copilot-piloten (utkast)",
            use_case=_ref(TIBRO, TIBRO_PILOT),
            category=r.LESSON_CATEGORY_TECHNOLOGY,
            what_worked="Utvärderingen pågår; lärdomen delas när piloten är utvärderad.",
            service_area=r.SERVICE_AREA_ADMINISTRATION,
        )
    )
    return [pilot, guidance, lesson, draft]


# -- Gagnef (2026): a small kommun with needs but few resources -------------------------

GAGNEF_NEEDS = "uc-gemensamma-ai-losningar"


def gagnef() -> list[r.Record]:
    needs = _record(GAGNEF_NEEDS, r.RECORD_KIND_USE_CASE, PUBLIC, "liten-kommun", "samverkan")
    needs.use_case.CopyFrom(
        r.UseCase(
            title="Gemensamma AI-lösningar för en mindre kommun",
            summary=(
                "Gagnef har stora behov inom digitalisering, också AI, men det är en stor "
                "utmaning för en mindre kommun att driva utvecklingen på egen hand. Vi vill ta "
                "fram och återanvända gemensamma lösningar som många kommuner kan dra nytta av, "
                "och börjar med det som andra redan har prövat."
            ),
            description=(
                "Förutsättningarna att använda AI skiljer sig mellan landets kommuner. "
                "Kompetensbrist, strukturella utmaningar i förvaltningsmodellerna, rådande lagar "
                "och utbildning bromsar utvecklingen, och vissa kommuner har flera lyckade "
                "användningsfall medan andra inte har kommit lika långt.\n\n"
                "Gagnef är en av tolv kommuner i AI-rådet, som arbetar i samverkan mellan AI "
                "Sweden och SKR inom projektet Kraftsamling för AI i kommuner och civilsamhälle "
                "(finansierat av Vinnova). Rådet ska bland annat föra tillbaka kunskap och "
                "erfarenheter till övriga kommuner. Gagnef samverkar också om digitalisering "
                "med grannkommunerna i nordvästra Dalarna."
            ),
            service_area=r.SERVICE_AREA_IT,
            status=r.USE_CASE_STATUS_IDEA,
            partner_kommuner=list(NORTHWEST_DALARNA),
            national_projects=[
                "Kraftsamling för AI i kommuner och civilsamhälle (AI Sweden, SKR, Vinnova)"
            ],
            contact_role="utvecklingsledare digitalisering",
            links=[
                _link(GAGNEF_NEWS, "Gagnefs kommun stärker samarbetet kring digitalisering"),
                _link(AI_SWEDEN_COUNCIL, "AI-råd utvecklar rekommendationer (AI Sweden)"),
            ],
        )
    )
    return [needs, gagnef_example()]


#: The demo's one invented record (see the module's docstring).
GAGNEF_EXAMPLE = "uc-exempel-prioritering-bistand"


def gagnef_example() -> r.Record:
    """An invented high-risk use case with every ATRS and AI Act field, marked as such."""
    example = _record(GAGNEF_EXAMPLE, r.RECORD_KIND_USE_CASE, PUBLIC, "exempel", "högrisk")
    example.use_case.CopyFrom(
        r.UseCase(
            title="Exempelfall: prioritering av ansökningar om ekonomiskt bistånd",
            summary=(
                "Ett påhittat exempel i Samverkas demo, inte en verklig tillämpning i Gagnef: "
                "så beskrivs ett AI-system med hög risk enligt AI-förordningen (bilaga III, "
                "offentliga förmåner) med alla fält i ATRS och AI-förordningen ifyllda."
            ),
            description=(
                "En modell läser nya ansökningar om ekonomiskt bistånd och föreslår i vilken "
                "ordning de ska handläggas, så att brådskande ärenden (till exempel hot om "
                "vräkning) tas först. Handläggaren ser förslaget och skälen, och fattar alltid "
                "beslutet om bistånd själv.\n\n"
                "Allt i posten är påhittat för demon: leverantör, datum, siffror och länkar."
            ),
            service_area=r.SERVICE_AREA_SOCIAL_SERVICES,
            status=r.USE_CASE_STATUS_PILOT,
            techniques=["klassificering", "maskininlärning"],
            products=["Prioriteringsstöd (exempel)"],
            vendors=["Exempelleverantören AB"],
            risk_class=r.RISK_CLASS_HIGH,
            processes_personal_data=True,
            impact_assessment_done=True,
            impact_assessment=_link(EXAMPLE_BASE + "dpia", "Konsekvensbedömning (exempel)"),
            human_oversight=(
                "Handläggaren beslutar alltid; förslaget kan ändras utan motivering, och en "
                "enhetschef följer upp avvikelser varje månad."
            ),
            data_sources=["Ansökningar om ekonomiskt bistånd (verksamhetssystemet)"],
            contact_role="enhetschef ekonomiskt bistånd",
            links=[
                _link(EU_AI_ACT, "AI-förordningen (EU) 2024/1689"),
                _link(EXAMPLE_BASE, "Exempelfallets sida (påhittad)"),
            ],
            started_at_ms=_ms(2025, 9, 1),
            website=EXAMPLE_BASE,
            contact_email="ai-exempel@gagnef.example",
            accountability=r.Accountability(
                organisation="Gagnefs kommun, socialnämnden (exempel)",
                team="Enheten för ekonomiskt bistånd",
                senior_responsible_owner="Socialchef",
                suppliers=[
                    r.Supplier(
                        name="Exempelleverantören AB",
                        company_number="556000-0000",
                        role="utvecklar modellen och driftar tjänsten",
                        procurement_procedure="förnyad konkurrensutsättning (exempel)",
                    )
                ],
                data_access_terms=(
                    "Leverantören är personuppgiftsbiträde, behandlar uppgifterna inom EU och "
                    "får inte använda dem för annat än tjänsten."
                ),
            ),
            rationale=r.Rationale(
                scope=(
                    "Endast turordningen för handläggning av nya ansökningar. Modellen bedömer "
                    "inte rätten till bistånd och används inte vid omprövning."
                ),
                expected_benefits="Kortare väntetid för de mest brådskande ärendena.",
                previous_process="Ansökningarna handlades i den ordning de kom in.",
                alternatives_considered=(
                    "Fler handläggare (saknas budget); en regelbaserad sortering (fångade för få "
                    "brådskande ärenden i ett test)."
                ),
            ),
            decision_process=r.DecisionProcess(
                process_integration="Förslaget visas i ärendelistan i verksamhetssystemet.",
                provided_information="En prioritet 1-3 och de tre uppgifter som vägde tyngst.",
                frequency_and_scale="Varje ny ansökan, cirka 60 i månaden (exempel).",
                required_training=(
                    "Handläggarna går en halvdagsutbildning om modellens begränsningar innan "
                    "de får se förslagen."
                ),
                appeals_and_review=(
                    "Beslutet om bistånd kan överklagas till förvaltningsrätten som vanligt; "
                    "den sökande kan begära att få veta om förslaget användes i ärendet."
                ),
            ),
            technical=r.TechnicalSpecification(
                system_architecture=(
                    "Modellen körs hos leverantören i ett datacenter i Sverige och anropas av "
                    "verksamhetssystemet; inga uppgifter sparas hos leverantören."
                ),
                maintenance="Modellen utvärderas mot handläggarnas bedömningar varje kvartal.",
            ),
            models=[
                r.AiModel(
                    name="Prioriteringsmodell",
                    version="1.0",
                    provider="Exempelleverantören AB",
                    model_type="gradient boosting (beslutsträd)",
                    task="Föreslår en handläggningsprioritet för en ny ansökan",
                    input="Ansökans uppgifter utan namn och personnummer",
                    output="Prioritet 1-3 med de tre viktigaste skälen",
                    architecture="XGBoost, 200 träd",
                    performance="Samma prioritet som handläggaren i 85 % av testfallen (exempel)",
                    datasets=["Avslutade ärenden 2020-2024 (exempel)"],
                )
            ],
            datasets=[
                r.Dataset(
                    name="Avslutade ärenden 2020-2024 (exempel)",
                    description="Pseudonymiserade ärenden med handläggarens prioritering.",
                    source="Kommunens verksamhetssystem för ekonomiskt bistånd",
                    collection="Ett uttag 2025 för att träna och testa modellen",
                    quantity="Cirka 3 000 ärenden",
                    sensitive_attributes="Inga namn, personnummer, kön eller födelseland",
                    completeness_and_representativeness=(
                        "Alla ärenden under perioden; få ärenden från sommarmånaderna."
                    ),
                    cleaning="Dubbletter och ofullständiga ärenden togs bort.",
                    sharing="Delas inte utanför kommunen och leverantören.",
                    access_and_storage="Lagras i Sverige; gallras efter fem år.",
                )
            ],
            assessments=[
                r.Assessment(
                    name="Likabehandlingsanalys (exempel)",
                    completed_at_ms=_ms(2025, 6, 15),
                    summary="Inga skillnader i prioritet mellan kön eller åldersgrupper i testet.",
                    url=EXAMPLE_BASE + "likabehandling",
                )
            ],
            risks=[
                r.Risk(
                    name="Ett brådskande ärende får låg prioritet",
                    category="noggrannhet",
                    description="Modellen kan missa tecken på akut nöd som står i fritext.",
                    mitigation="Handläggaren ser hela listan; akuta ärenden markeras manuellt.",
                ),
                r.Risk(
                    name="Indirekt diskriminering",
                    category="likabehandling",
                    description="Uppgifter som hänger ihop med kön eller ursprung kan påverka.",
                    mitigation="Uppföljning per grupp varje kvartal; avstängning vid skillnad.",
                ),
            ],
            ai_act_role=r.AI_ACT_ROLE_DEPLOYER,
            high_risk_area=r.HIGH_RISK_AREA_ESSENTIAL_SERVICES,
            intended_purpose=(
                "Att föreslå i vilken ordning ansökningar om ekonomiskt bistånd handläggs; "
                "inte att bedöma rätten till bistånd."
            ),
            fria=r.FundamentalRightsAssessment(
                done=True,
                completed_at_ms=_ms(2025, 8, 20),
                summary=(
                    "Rätten till likabehandling och till god förvaltning berörs; riskerna "
                    "hanteras med mänskligt beslut i varje ärende och uppföljning per grupp."
                ),
                url=EXAMPLE_BASE + "fria",
            ),
            dpia_summary=(
                "Behandlingen är nödvändig för handläggningen; uppgifterna pseudonymiseras "
                "och leverantören är personuppgiftsbiträde."
            ),
            eu_database_id="EXEMPEL-0001",
            transparency_notice=(
                "Den sökande informeras i bekräftelsen på ansökan om att ett AI-stöd föreslår "
                "turordningen, och i beslutet om det användes."
            ),
            provider=r.AiSystemProvider(
                name="Exempelleverantören AB",
                trade_name="Prioriteringsstöd 1.0 (exempel)",
                contact="support@exempelleverantoren.example",
                url="https://exempelleverantoren.example/prioriteringsstod",
                eu_database_url="https://exempelleverantoren.example/eu-databas/EXEMPEL-0001",
            ),
        )
    )
    return example


ADOPTION_STATUS = "pilot"
ADOPTION_NOTE = (
    "Underlag för Gagnefs egen AI-policy; regeln om endast minimal risk tas in som den är."
)


# -- The council (AI-rådet, hub 0000): a recommendation --------------------------------

RECOMMENDATION = "rek-dela-och-ateranvand"


def recommendation() -> r.Record:
    record = _record(RECOMMENDATION, r.RECORD_KIND_RECOMMENDATION, PUBLIC, "samverkan")
    record.header.origin = HUB
    record.recommendation.CopyFrom(
        r.Recommendation(
            title="Dela och återanvänd: så undviker kommunerna digitala A- och B-lag",
            summary=(
                "AI-rådet rekommenderar kommunerna att dela sina AI-erfarenheter och "
                "återanvända det som redan är prövat, i stället för att var och en börjar från "
                "noll. Mindre kommuner har ofta stora behov men små resurser."
            ),
            body=(
                "Förutsättningarna att använda AI skiljer sig mycket mellan kommunerna. Digg "
                "beräknade 2019 den potentiella nyttan av AI i offentlig sektor till 140 "
                "miljarder kronor om året, och en stor del av den finns i kommunerna. Samtidigt "
                "visade EVRY:s kommunrapport att sex av tio kommuner inte hade något pågående "
                "AI-projekt: vi riskerar digitala A- och B-lag.\n\n"
                "AI-rådet rekommenderar:\n"
                "1. Börja med en tydlig policy och låg risk, som Leksand (2029/sol-ai-policy).\n"
                "2. Gå med i nationella samarbeten i stället för att bygga ensam, som Kungsbacka "
                "i den gemensamma digitala assistenten (1384/uc-gemensam-digital-assistent).\n"
                "3. Gör AI till en del av den ordinarie verksamhetsutvecklingen, med vägledning "
                "och trygghet för medarbetarna, som Tibro "
                "(1472/lesson-ai-i-verksamhetsutvecklingen).\n"
                "4. Dela behov lika väl som resultat: Gagnefs behov "
                "(2026/uc-gemensamma-ai-losningar) är en startpunkt för gemensamma lösningar.\n"
                "5. Registrera varje återanvändning i Samverka, så att alla ser vad som fungerar."
            ),
            references=[
                _ref(LEKSAND, LEKSAND_POLICY),
                _ref(KUNGSBACKA, KUNGSBACKA_ASSISTANT),
                _ref(TIBRO, "lesson-ai-i-verksamhetsutvecklingen"),
                _ref(GAGNEF, GAGNEF_NEEDS),
            ],
            links=[_link(AI_SWEDEN_COUNCIL, "AI-råd utvecklar rekommendationer (AI Sweden)")],
        )
    )
    return record


@dataclass(frozen=True, slots=True)
class Search:
    """A search Gagnef runs, and the record it must find."""

    text: str
    origin: str
    record_id: str


#: What Gagnef looks for once it has synced: Leksand's policy, Kungsbacka's assistant.
SEARCHES = (
    Search("AI-policy", LEKSAND, LEKSAND_POLICY),
    Search("digital assistent", KUNGSBACKA, KUNGSBACKA_ASSISTANT),
)

# -- Each kommun's profile (kommunprofil): size, SKR kommungrupp, interests, AI rules --
#
# Population bands from SCB's figures (2023: Leksand about 16 000, Tibro about 11 000,
# Gagnef about 10 000, Kungsbacka about 85 000) and the kommungrupper as we read SKR's
# kommungruppsindelning 2017; worth checking against SKR's table before relying on them.
# Only Leksand's AI rule has a source (its policy: minimal risk); the others set none.

PROFILES: dict[str, tuple[int, int, tuple[int, ...], tuple[str, ...], r.AiRules | None]] = {
    LEKSAND: (
        r.POPULATION_BAND_FROM_10K_TO_25K,
        r.KOMMUN_GROUP_C9,
        (r.SERVICE_AREA_ADMINISTRATION,),
        ("administrativ chef",),
        r.AiRules(max_risk_class=r.RISK_CLASS_MINIMAL),
    ),
    KUNGSBACKA: (
        r.POPULATION_BAND_FROM_50K_TO_100K,
        r.KOMMUN_GROUP_A2,
        (r.SERVICE_AREA_ADMINISTRATION,),
        ("digitaliseringschef",),
        None,
    ),
    TIBRO: (
        r.POPULATION_BAND_FROM_10K_TO_25K,
        r.KOMMUN_GROUP_B4,
        (r.SERVICE_AREA_ADMINISTRATION,),
        ("digitaliseringskoordinator",),
        None,
    ),
    GAGNEF: (
        r.POPULATION_BAND_FROM_10K_TO_25K,
        r.KOMMUN_GROUP_B4,
        (r.SERVICE_AREA_ADMINISTRATION, r.SERVICE_AREA_IT),
        ("utvecklingsledare digitalisering",),
        None,
    ),
}


def profile(code: str) -> r.Record:
    """The kommun's profile record (the fixed id "kommunprofil", public)."""
    band, group, interests, contacts, rules = PROFILES[code]
    record = _record("kommunprofil", r.RECORD_KIND_KOMMUN_PROFILE, PUBLIC)
    record.kommun_profile.CopyFrom(
        r.KommunProfile(
            population_band=band,  # type: ignore[arg-type]
            kommun_group=group,  # type: ignore[arg-type]
            interests=interests,  # type: ignore[arg-type]
            contact_roles=contacts,
        )
    )
    if rules is not None:
        record.kommun_profile.ai_rules.CopyFrom(rules)
    return record


#: Each kommun's records, by kommunkod (the hub's recommendation is apart).
BY_KOMMUN = {LEKSAND: leksand, KUNGSBACKA: kungsbacka, TIBRO: tibro, GAGNEF: gagnef}
