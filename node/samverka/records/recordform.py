"""A record as a flat form: the field names people type (pure, no I/O).

The CLI options (``--area``, ``--cost-yearly``, ``--benefit``) and the columns of an
inventory file (``area`` or ``verksamhetsområde``) are the same flat fields, defined
once here. :func:`apply_form` turns their text into a protobuf record (converting
friendly enum names, amounts, dates, benefits, links and references) and reports
what it cannot convert as :class:`~samverka.errors.FieldIssue` under the flat name;
:func:`flat_issues` renames schema problems from :mod:`samverka.protocol.validation` the same
way, so a person always reads the name they typed (``area: is required``, never
``use_case.service_area``).

Text forms of the compound fields:

- benefit: ``"metric=value unit"``, e.g. ``"sparade timmar per år=1 200 timmar"``;
- link: ``"URL"`` or ``"URL title words"``;
- a record reference: ``"ORIGIN/ID"`` (e.g. ``1472/uc-chatbot``) or ``"ID"`` for one's own;
- dates: ``YYYY-MM-DD`` (UTC midnight) or an ISO 8601 date-time;
- amounts in kronor: ``12000``, ``12 000``, ``12 000 kr``;
- the ATRS items (supplier, model, dataset, assessment, identified_risk): their parts
  in a fixed order separated by ``|`` (:data:`COMPOUNDS`), e.g. an identified risk
  ``"Felaktigt underlag | noggrannhet | Modellen kan ... | Handläggaren kontrollerar ..."``;
  in YAML/JSON also a mapping of the parts by name (``namn``, ``beskrivning``,
  ``åtgärd`` or the English ``name``, ``description``, ``mitigation``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from samverka.errors import FieldIssue
from samverka.i18n import N_
from samverka.protocol.validation import RECORD_ID, REQUIRED
from samverka.protocol.vocab import (
    AI_ACT_ROLE,
    ALGORITHM_TYPE,
    ALGORITHM_USE,
    DEVELOPMENT_STATUS,
    HIGH_RISK_AREA,
    LESSON_CATEGORY,
    MAINTENANCE_TYPE,
    RISK_CLASS,
    SERVICE_AREA,
    SOLUTION_TYPE,
    TRANSPARENCY_OBLIGATION,
    USE_CASE_STATUS,
    VISIBILITY,
    UnknownTerm,
    Vocabulary,
    fold_diacritics,
    normalize,
    parse_bool,
)
from samverka.v1 import records_pb2

#: The bodies a person authors, with their record kinds (recommendations come from the hub).
BODY_KINDS: dict[str, int] = {
    "use_case": records_pb2.RECORD_KIND_USE_CASE,
    "lesson": records_pb2.RECORD_KIND_LESSON,
    "solution": records_pb2.RECORD_KIND_SOLUTION,
    "adoption": records_pb2.RECORD_KIND_ADOPTION,
    "recommendation": records_pb2.RECORD_KIND_RECOMMENDATION,
}
KIND_BODIES: dict[int, str] = {kind: body for body, kind in BODY_KINDS.items()}

#: Prefix of ids derived from titles, per body (``uc-copilot-pilot``).
ID_PREFIX = {
    "use_case": "uc",
    "lesson": "lesson",
    "solution": "sol",
    "adoption": "adopt",
    "recommendation": "rec",
}

HEADER = "header"


@dataclass(frozen=True, slots=True)
class FormField:
    """One flat field: its name, how its text converts, and where it goes per body.

    ``where`` maps a body name (or ``"header"`` for every body) to the protobuf path
    inside that body, e.g. ``{"use_case": "cost.yearly_sek"}``.
    """

    name: str
    type: str  # text | enum | bool | sek | date | benefit | link | ref | kommun | item
    where: Mapping[str, str]
    #: The option's help: a Swedish msgid, translated where shown (click's help formatter,
    #: `samverka import --columns`).
    help: str
    vocab: Vocabulary | None = None
    #: Other column names accepted in inventory files (Swedish first).
    aliases: tuple[str, ...] = ()
    #: Shown as the option's metavar.
    metavar: str = ""

    def path(self, body: str) -> str | None:
        if HEADER in self.where:
            return f"header.{self.where[HEADER]}"
        inner = self.where.get(body)
        return f"{body}.{inner}" if inner else None

    def applies_to(self, body: str) -> bool:
        return HEADER in self.where or body in self.where

    def multiple(self, body: str) -> bool:
        path = self.path(body)
        if path is None:
            return False
        return bool(_descriptor_field(path).is_repeated)


UC, LS, SO, AD = "use_case", "lesson", "solution", "adoption"
#: Recommendations are authored at the hub (`samverka hub recommend`), origin 0000 only.
RC = "recommendation"


def _f(
    name: str,
    type_: str,
    where: Mapping[str, str],
    help_: str,
    *aliases: str,
    vocab: Vocabulary | None = None,
    metavar: str = "",
) -> FormField:
    return FormField(name, type_, where, help_, vocab, aliases, metavar)


# fmt: off
FIELDS: tuple[FormField, ...] = (
    _f("id", "text", {HEADER: "id"},
       N_("Postens id, unikt i kommunens flöde [standard: härlett ur titeln]."),
       "postid", "post-id", metavar="ID"),
    _f("title", "text", {UC: "title", LS: "title", SO: "title", RC: "title"},
       N_("Titel."),
       "titel", "rubrik", "namn", "benämning"),
    _f("summary", "text", {UC: "summary", SO: "summary", RC: "summary"},
       N_("Sammanfattning i ett stycke."),
       "sammanfattning", "kort beskrivning", "kortbeskrivning"),
    _f("description", "text", {UC: "description"},
       N_("Längre beskrivning."),
       "beskrivning"),
    _f("area", "enum", {UC: "service_area", LS: "service_area", SO: "service_area",
                        RC: "service_area"},
       N_("Verksamhetsområde, t.ex. äldreomsorg / elderly-care."),
       "verksamhetsområde", "service area", "område", "verksamhet", vocab=SERVICE_AREA,
       metavar="AREA"),
    _f("status", "enum", {UC: "status", AD: "status"},
       N_("idea, pilot, production eller ended (idé, pilot, i drift, avslutad)."),
       "fas", "läge", vocab=USE_CASE_STATUS, metavar="STATUS"),
    _f("risk", "enum", {UC: "risk_class"},
       N_("Riskklass enligt EU:s AI-förordning: minimal, limited, high, unacceptable."),
       "risk class", "riskklass", "risknivå", vocab=RISK_CLASS, metavar="CLASS"),
    _f("technique", "text", {UC: "techniques"},
       N_("AI-teknik, t.ex. 'generativ AI' (upprepas)."),
       "techniques", "teknik", "tekniker", "ai-teknik"),
    _f("product", "text", {UC: "products"},
       N_("Produkt som används, t.ex. 'Microsoft 365 Copilot' (upprepas)."),
       "products", "produkt", "produkter"),
    _f("vendor", "text", {UC: "vendors"},
       N_("Leverantör (upprepas)."),
       "vendors", "leverantör", "leverantörer"),
    _f("personal_data", "bool", {UC: "processes_personal_data"},
       N_("Om personuppgifter behandlas."),
       "personuppgifter", "behandlar personuppgifter", "processes personal data"),
    _f("dpia", "bool", {UC: "impact_assessment_done"},
       N_("Om en konsekvensbedömning avseende dataskydd gjorts."),
       "konsekvensbedömning", "konsekvensbedömning gjord", "impact assessment done"),
    _f("dpia_link", "link", {UC: "impact_assessment"},
       N_("Länk till konsekvensbedömningen."),
       "länk till konsekvensbedömning", "impact assessment", metavar="URL"),
    _f("human_oversight", "text", {UC: "human_oversight"},
       N_("Vem som beslutar, och hur människor har tillsyn över systemet."),
       "mänsklig kontroll", "mänsklig tillsyn", "beslutsprocess"),
    _f("data_source", "text", {UC: "data_sources"},
       N_("Datakälla som används (upprepas)."),
       "data sources", "datakälla", "datakällor"),
    _f("cost_one_off", "sek", {UC: "cost.one_off_sek", SO: "cost.one_off_sek"},
       N_("Engångskostnad i kronor."),
       "engångskostnad", "kostnad engång", "one off cost", metavar="SEK"),
    _f("cost_yearly", "sek", {UC: "cost.yearly_sek", SO: "cost.yearly_sek"},
       N_("Årlig kostnad i kronor."),
       "årlig kostnad", "årskostnad", "kostnad per år", "yearly cost", metavar="SEK"),
    _f("cost_note", "text", {UC: "cost.note", SO: "cost.note"},
       N_("Vad kostnaderna omfattar."),
       "kostnadskommentar", "kommentar kostnad"),
    _f("benefit", "benefit", {UC: "benefits"},
       N_("Mätt nytta 'mått=värde enhet', t.ex. 'sparade timmar per år=1200 timmar' (upprepas)."),
       "benefits", "nytta", "effekt", "mätt nytta", metavar="METRIC=VALUE UNIT"),
    _f("partner", "kommun", {UC: "partner_kommuner"},
       N_("Partnerkommunens kommunkod, t.ex. 2026 (upprepas)."),
       "partners", "partner kommuner", "partnerkommun", "partnerkommuner", "samarbetskommuner",
       metavar="KOD"),
    _f("national_project", "text", {UC: "national_projects"},
       N_("Nationellt eller regionalt projekt (upprepas)."),
       "national projects", "nationellt projekt", "nationella projekt"),
    _f("contact_role", "text", {UC: "contact_role", SO: "contact_role"},
       N_("En kontaktroll, aldrig en persons namn, t.ex. 'digitaliseringsstrateg'."),
       "kontaktroll", "kontakt", "roll"),
    _f("link", "link", {UC: "links", SO: "links", RC: "links"},
       N_("En länk 'URL [titel]' (upprepas)."),
       "links", "länk", "länkar", metavar="URL"),
    _f("reuses", "ref", {UC: "reuses"},
       N_("En lösning som användningsfallet återanvänder, URSPRUNG/ID (upprepas)."),
       "återanvänder", metavar="ORIGIN/ID"),
    _f("started", "date", {UC: "started_at_ms"},
       N_("Startdatum, ÅÅÅÅ-MM-DD."),
       "startdatum", "start", "started at", "påbörjad", metavar="DATE"),
    _f("ended", "date", {UC: "ended_at_ms"},
       N_("Slutdatum, ÅÅÅÅ-MM-DD."),
       "slutdatum", "ended at", "avslutad datum", metavar="DATE"),
    _f("use_case", "ref", {LS: "use_case", SO: "use_cases"},
       N_("Användningsfallet, URSPRUNG/ID eller ett eget ID."),
       "use cases", "användningsfall", metavar="ORIGIN/ID"),
    _f("category", "enum", {LS: "category"},
       N_("procurement, law-and-gdpr, data, competence-and-change, technology eller ethics."),
       "kategori", vocab=LESSON_CATEGORY, metavar="CATEGORY"),
    _f("what_worked", "text", {LS: "what_worked"},
       N_("Vad som fungerade."),
       "vad fungerade", "det här fungerade", "fungerade"),
    _f("what_did_not", "text", {LS: "what_did_not"},
       N_("Vad som inte fungerade."),
       "vad fungerade inte", "fungerade inte", "what did not work"),
    _f("advice", "text", {LS: "advice"},
       N_("Råd till andra kommuner."),
       "råd"),
    _f("type", "enum", {SO: "solution_type"},
       N_("policy, guideline, procurement-template, impact-assessment-template, code, "
          "prompt-library eller training-material."),
       "solution type", "lösningstyp", "typ", vocab=SOLUTION_TYPE, metavar="TYPE"),
    _f("licence", "text", {SO: "licence"},
       N_("SPDX-licens-id, t.ex. EUPL-1.2 eller CC-BY-4.0."),
       "license", "licens"),
    _f("url", "text", {SO: "url"},
       N_("Var den finns att hämta (http eller https)."),
       "webbadress", metavar="URL"),
    _f("content_hash", "text", {SO: "content_hash"},
       N_("sha256:<hex> för artefakten på --url."),
       "hash", "kontrollsumma", metavar="sha256:HEX"),
    _f("how_to_adopt", "text", {SO: "how_to_adopt"},
       N_("Hur en annan kommun inför den."),
       "så inför du", "hur man inför", "införande"),
    _f("solution", "ref", {AD: "solution"},
       N_("Den införda lösningen, URSPRUNG/ID."),
       "lösning", metavar="ORIGIN/ID"),
    _f("note", "text", {AD: "note"},
       N_("En anteckning."),
       "anteckning", "kommentar"),
    _f("adopted", "date", {AD: "adopted_at_ms"},
       N_("Införandedatum, ÅÅÅÅ-MM-DD."),
       "infört", "införd", "adopted at", "införandedatum", metavar="DATE"),
    _f("body", "text", {RC: "body"},
       N_("Rekommendationen i sin helhet (radbrytningar behålls)."),
       "brödtext"),
    _f("reference", "ref", {RC: "references"},
       N_("En post som rekommendationen bygger på, URSPRUNG/ID (upprepas)."),
       "references", "referens", "referenser", metavar="ORIGIN/ID"),
    # ATRS (UK Algorithmic Transparency Recording Standard v3.0) tier 1 and 2 and the
    # EU AI Act's deployer fields (docs/SCHEMA.md): Swedish column names first, then
    # the ATRS/AI Act English names.
    _f("website", "text", {UC: "website"},
       N_("En sida med mer om användningsfallet (https; ATRS 1.3)."),
       "webbplats", "webbsida", "mer information", "website url", metavar="URL"),
    _f("contact_email", "text", {UC: "contact_email"},
       N_("En funktionsbrevlåda för frågor, aldrig en persons egen (ATRS 1.4)."),
       "e-post", "kontakt e-post", "e-postadress", "contact email", metavar="EMAIL"),
    _f("organisation", "text", {UC: "accountability.organisation"},
       N_("Den ansvariga organisationen (ATRS 2.1.1)."),
       "ansvarig organisation", "organisation/department", "organization"),
    _f("team", "text", {UC: "accountability.team"},
       N_("Den ansvariga enheten (ATRS 2.1.2)."),
       "ansvarig enhet", "enhet", "avdelning"),
    _f("senior_responsible_owner", "text", {UC: "accountability.senior_responsible_owner"},
       N_("Den ytterst ansvariges roll, aldrig ett namn (ATRS 2.1.3)."),
       "ytterst ansvarig", "ansvarig chef", "systemägare", "senior responsible owner"),
    _f("supplier", "item", {UC: "accountability.suppliers"},
       N_("En extern leverantör 'namn | organisationsnummer | roll | upphandling' (upprepas; "
          "ATRS 2.1.4)."),
       "extern leverantör", "externa leverantörer", "external supplier", "external suppliers",
       "suppliers", metavar="NAME|ORGNR|ROLE|PROCUREMENT"),
    _f("data_access_terms", "text", {UC: "accountability.data_access_terms"},
       N_("Villkoren för leverantörernas åtkomst till data (ATRS 2.1.4.5)."),
       "villkor för dataåtkomst", "leverantörens åtkomst till data", "terms of access to data",
       "terms of access to government data"),
    _f("scope", "text", {UC: "rationale.scope"},
       N_("Vad verktyget är och inte är till för (ATRS 2.2.2)."),
       "omfattning", "avgränsning"),
    _f("expected_benefits", "text", {UC: "rationale.expected_benefits"},
       N_("Den nytta som eftersträvas (ATRS 2.2.3)."),
       "förväntad nytta", "eftersträvad nytta", "expected benefit"),
    _f("previous_process", "text", {UC: "rationale.previous_process"},
       N_("Hur uppgiften gjordes tidigare (ATRS 2.2.4)."),
       "tidigare arbetssätt", "tidigare process", "previous process"),
    _f("alternatives_considered", "text", {UC: "rationale.alternatives_considered"},
       N_("Alternativ som övervägts (ATRS 2.2.5)."),
       "övervägda alternativ", "alternativ som övervägts", "alternatives considered"),
    _f("process_integration", "text", {UC: "decision_process.process_integration"},
       N_("Hur verktyget passar in i beslutsprocessen (ATRS 2.3.1)."),
       "roll i beslutsprocessen", "integrering i beslutsprocessen", "process integration"),
    _f("provided_information", "text", {UC: "decision_process.provided_information"},
       N_("Vad verktyget ger dem som beslutar (ATRS 2.3.2)."),
       "information till beslutsfattare", "underlag från verktyget", "provided information"),
    _f("frequency_and_scale", "text", {UC: "decision_process.frequency_and_scale"},
       N_("Hur ofta och i vilken omfattning det används (ATRS 2.3.3)."),
       "användningens omfattning", "användningsfrekvens", "frequency and scale of usage"),
    _f("required_training", "text", {UC: "decision_process.required_training"},
       N_("Utbildning som krävs av användarna (ATRS 2.3.5)."),
       "utbildning som krävs", "nödvändig utbildning", "required training"),
    _f("appeals", "text", {UC: "decision_process.appeals_and_review"},
       N_("Hur en person överklagar eller begär omprövning (ATRS 2.3.6)."),
       "överklagande och omprövning", "överklagande", "omprövning", "appeals and review"),
    _f("system_architecture", "text", {UC: "technical.system_architecture"},
       N_("Systemets arkitektur (ATRS 2.4.1)."),
       "systemarkitektur", "system architecture"),
    _f("maintenance", "text", {UC: "technical.maintenance"},
       N_("Hur verktyget underhålls och följs upp (ATRS 2.4.1)."),
       "underhåll", "förvaltning och uppföljning"),
    _f("model", "item", {UC: "models", SO: "models"},
       N_("En modell 'namn | version | leverantör | typ | uppgift | indata | utdata | "
          "arkitektur | prestanda | datamängder' (upprepas; ATRS 2.4.2)."),
       "modell", "modeller", "ai-modell", "models", metavar="NAME|VERSION|PROVIDER|..."),
    _f("dataset", "item", {UC: "datasets"},
       N_("En datamängd 'namn | beskrivning | url | källa | insamling | mängd | känsliga "
          "attribut | fullständighet | rensning | delning | åtkomst och lagring' (upprepas; "
          "ATRS 2.4.3)."),
       "datamängd", "datamängder", "datasets", metavar="NAME|DESCRIPTION|..."),
    _f("assessment", "item", {UC: "assessments"},
       N_("En konsekvensbedömning 'namn | datum | sammanfattning | url' (upprepas; ATRS 2.5.1)."),
       "bedömning", "bedömningar", "genomförda bedömningar", "assessments", "impact assessments",
       metavar="NAME|DATE|SUMMARY|URL"),
    _f("identified_risk", "item", {UC: "risks"},
       N_("En risk 'namn | kategori | beskrivning | åtgärd' (upprepas; ATRS 2.5.2)."),
       "identifierad risk", "risker", "risker och åtgärder", "risks",
       metavar="NAME|CATEGORY|DESCRIPTION|MITIGATION"),
    _f("ai_act_role", "enum", {UC: "ai_act_role"},
       N_("Kommunens roll enligt AI-förordningen: provider, deployer, importer eller "
          "distributor (leverantör, tillhandahållare, importör, distributör)."),
       "roll enligt ai-förordningen", "ai-roll", "ai act role", vocab=AI_ACT_ROLE, metavar="ROLE"),
    _f("high_risk_area", "enum", {UC: "high_risk_area"},
       N_("Område i AI-förordningens bilaga III för en högriskanvändning: biometrics, "
          "critical-infrastructure, education, employment, essential-services, law-enforcement,"
          " migration, justice-democracy."),
       "högriskområde", "område i bilaga iii", "bilaga iii", "annex iii area", "annex iii",
       vocab=HIGH_RISK_AREA, metavar="AREA"),
    _f("intended_purpose", "text", {UC: "intended_purpose", SO: "intended_purpose"},
       N_("Det avsedda ändamålet (AI-förordningen art. 3.12)."),
       "avsett ändamål", "ändamål", "intended purpose"),
    _f("fria", "bool", {UC: "fria.done"},
       N_("Om en konsekvensbedömning avseende grundläggande rättigheter (AI-förordningen art. "
          "27) gjorts."),
       "fria gjord", "grundrättighetsbedömning",
       "konsekvensbedömning av grundläggande rättigheter", "fundamental rights impact assessment"),
    _f("fria_date", "date", {UC: "fria.completed_at_ms"},
       N_("När FRIA blev klar, ÅÅÅÅ-MM-DD."),
       "fria datum", "datum för fria", "fria date", metavar="DATE"),
    _f("fria_summary", "text", {UC: "fria.summary"},
       N_("En sammanfattning av vad FRIA kom fram till."),
       "sammanfattning av fria", "fria sammanfattning", "summary of fria"),
    _f("fria_link", "text", {UC: "fria.url"},
       N_("Var FRIA är publicerad (https)."),
       "länk till fria", "fria länk", "fria url", metavar="URL"),
    _f("dpia_summary", "text", {UC: "dpia_summary"},
       N_("En sammanfattning av konsekvensbedömningen avseende dataskydd."),
       "sammanfattning av konsekvensbedömning", "dpia sammanfattning", "summary of dpia"),
    _f("eu_database_id", "text", {UC: "eu_database_id"},
       N_("Registreringsnummer i EU-databasen (AI-förordningen art. 49, 71)."),
       "eu-databasens id", "registreringsnummer i eu-databasen", "eu database id",
       "eu database registration", metavar="ID"),
    _f("transparency", "enum", {UC: "transparency_obligations"},
       N_("Ett fall enligt art. 50: interacts-with-people, synthetic-content, "
          "emotion-recognition, deep-fake, public-interest-text (upprepas)."),
       "transparenskrav", "artikel 50", "transparency obligations", vocab=TRANSPARENCY_OBLIGATION,
       metavar="CASE"),
    _f("transparency_notice", "text", {UC: "transparency_notice"},
       N_("Hur människor får veta att de möter AI eller AI-skapat innehåll."),
       "information till berörda", "hur berörda informeras", "transparency notice"),
    _f("proportionality", "text", {UC: "proportionality"},
       N_("Varför användningen står i proportion till syftet (Eurocities proportionality)."),
       "proportionalitet", "proportionalitetsbedömning", "proportionality"),
    _f("lawful_basis", "text", {UC: "lawful_basis"},
       N_("Rättslig grund för behandlingen (Eurocities lawful basis)."),
       "rättslig grund", "laglig grund", "lawful basis", "legal basis"),
    _f("algorithm_type", "enum", {UC: "algorithm_type"},
       N_("Typ av algoritm: self-learning, rule-based eller hybrid (självlärande, "
          "regelbaserad, båda)."),
       "typ av algoritm", "algoritmtyp", "algorithm type", vocab=ALGORITHM_TYPE, metavar="TYPE"),
    _f("algorithm_use", "enum", {UC: "algorithm_use"},
       N_("Vad utdata används till: descriptive, diagnostic, predictive eller prescriptive "
          "(Eurocities type)."),
       "typ av användning", "användningstyp", "type of use", "algorithm use",
       vocab=ALGORITHM_USE, metavar="USE"),
    _f("revision_due", "date", {UC: "revision_due_at_ms"},
       N_("När registerposten ska ses över nästa gång, ÅÅÅÅ-MM-DD (Eurocities revision date)."),
       "revideringsdatum", "nästa översyn", "revision date", "review date", metavar="DATE"),
    _f("provider", "text", {UC: "provider.name", SO: "provider.name"},
       N_("AI-systemets leverantör (AI-förordningen bilaga VIII)."),
       "ai-leverantör", "systemleverantör", "leverantör av ai-systemet", "name of the provider",
       "provider name"),
    _f("trade_name", "text", {UC: "provider.trade_name", SO: "provider.trade_name"},
       N_("AI-systemets handelsnamn och referens."),
       "handelsnamn", "systemets namn", "trade name"),
    _f("provider_contact", "text", {UC: "provider.contact", SO: "provider.contact"},
       N_("Leverantörens funktionskontakt (e-post eller webbformulär)."),
       "leverantörens kontakt", "provider contact"),
    _f("provider_url", "text", {UC: "provider.url", SO: "provider.url"},
       N_("Leverantörens sida om systemet (https)."),
       "leverantörens webbplats", "provider url", metavar="URL"),
    _f("provider_eu_database_url", "text", {UC: "provider.eu_database_url",
                                            SO: "provider.eu_database_url"},
       N_("Leverantörens post i EU-databasen (https)."),
       "länk till eu-databasen", "eu database url", metavar="URL"),
    _f("software_version", "text", {SO: "software_version"},
       N_("Programvarans version."),
       "programversion", "software version", metavar="VERSION"),
    _f("development_status", "enum", {SO: "development_status"},
       N_("concept, development, beta, stable eller obsolete."),
       "utvecklingsstatus", "development status", vocab=DEVELOPMENT_STATUS, metavar="STATUS"),
    _f("maintenance_type", "enum", {SO: "maintenance_type"},
       N_("Vem som underhåller den: internal, contract, community eller none."),
       "förvaltningsform", "maintenance type", vocab=MAINTENANCE_TYPE, metavar="TYPE"),
    _f("platform", "text", {SO: "platforms"},
       N_("En plattform den körs på, t.ex. web (upprepas)."),
       "plattform", "plattformar", "platforms"),
    _f("visibility", "enum", {HEADER: "visibility"},
       N_("public, members eller draft (offentlig, medlemmar, utkast)."),
       "synlighet", vocab=VISIBILITY, metavar="VIS"),
    _f("tag", "text", {HEADER: "tags"},
       N_("En etikett (upprepas)."),
       "tags", "tagg", "taggar", "etikett", "etiketter", "nyckelord"),
    _f("language", "text", {HEADER: "language"},
       N_("Textens språk enligt BCP 47 [standard: sv]."),
       "språk", metavar="LANG"),
)
# fmt: on

FIELDS_BY_NAME: dict[str, FormField] = {f.name: f for f in FIELDS}

#: Visibility of a new record when none is given: shared with members, not the public.
DEFAULT_VISIBILITY = records_pb2.VISIBILITY_MEMBERS


def fields_for(body: str) -> list[FormField]:
    """The flat fields a body has, in form order."""
    return [f for f in FIELDS if f.applies_to(body)]


def required_fields(body: str) -> list[str]:
    """Flat names of the fields a live record of ``body`` must fill."""
    names: list[str] = []
    for proto_name in REQUIRED[body]:
        for f in fields_for(body):
            path = f.path(body)
            if path == f"{body}.{proto_name}":
                names.append(f.name)
    return names


def column_key(text: str) -> str:
    """A column or key name as looked up: 'Kort beskrivning' -> 'kort_beskrivning'."""
    return normalize(text).replace("-", "_")


def _column_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for f in FIELDS:
        for word in (f.name, *f.aliases):
            for form in {column_key(word), fold_diacritics(column_key(word))}:
                other = table.setdefault(form, f.name)
                if other != f.name:
                    raise ValueError(f"column name {form!r} names {other} and {f.name}")
    return table


#: Every accepted column name (normalized) -> flat field name.
COLUMNS: dict[str, str] = _column_table()


def field_for_column(name: str) -> str | None:
    """The flat field a column / key name means, or None."""
    key = column_key(name)
    return COLUMNS.get(key) or COLUMNS.get(fold_diacritics(key))


# -- converting text ----------------------------------------------------------------

_AMOUNT = re.compile(r"^([0-9][0-9 \u00a0\u202f]*)(?:[.,]0+)?\s*(?:kr|sek|:-)?\.?$", re.I)
_BENEFIT_VALUE = re.compile(r"^\s*([+-]?\d(?:[\d \u00a0\u202f]*\d)?(?:[.,]\d+)?)\s*(.*)$", re.S)


class _Bad(ValueError):
    """A value that does not convert; the message is shown under the field's name."""


#: Larger than any kommun's whole budget; also keeps amounts inside protobuf's int64.
MAX_AMOUNT_SEK = 10**12


def shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short (with its length) when long."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def parse_amount(text: str) -> int:
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise _Bad(f"{shown(text)} is not an amount in whole kronor")
    digits = re.sub(r"\D", "", match[1]).lstrip("0")
    # Counted before int(): Python refuses to convert more than 4,300 digits (ValueError).
    if len(digits) > len(str(MAX_AMOUNT_SEK)) or int(digits or "0") > MAX_AMOUNT_SEK:
        raise _Bad(f"{shown(text)} is more than {MAX_AMOUNT_SEK:,} kronor".replace(",", " "))
    return int(digits or "0")


def parse_date_ms(text: str) -> int:
    text = text.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise _Bad(f"{text!r} is not a date (YYYY-MM-DD)") from exc
    return int(moment.timestamp() * 1000)


def format_date_ms(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    if moment.time() == dt.time(0, 0):
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds")


def parse_benefit(text: str) -> records_pb2.Benefit:
    metric, sep, rest = text.partition("=")
    match = _BENEFIT_VALUE.match(rest) if sep else None
    if not metric.strip() or match is None:
        raise _Bad(f"{text!r} is not 'metric=value unit', e.g. 'sparade timmar=1200 timmar'")
    number = re.sub(r"[ \u00a0\u202f]", "", match[1]).replace(",", ".")
    return records_pb2.Benefit(metric=metric.strip(), value=float(number), unit=match[2].strip())


def format_benefit(b: records_pb2.Benefit) -> str:
    value = f"{b.value:g}" if b.value != int(b.value) else str(int(b.value))
    return f"{b.metric}={value} {b.unit}".rstrip()


def parse_link(text: str) -> records_pb2.Link:
    url, _, title = text.strip().partition(" ")
    return records_pb2.Link(url=url, title=title.strip())


def format_link(link: records_pb2.Link) -> str:
    return f"{link.url} {link.title}".rstrip()


def parse_ref(text: str, own_origin: str) -> records_pb2.RecordRef:
    origin, sep, record_id = text.strip().rpartition("/")
    if not sep:
        origin = own_origin
    if not record_id:
        raise _Bad(f"{text!r} is not ORIGIN/ID, e.g. 1472/uc-chatbot")
    return records_pb2.RecordRef(origin=origin.strip(), id=record_id.strip())


def format_ref(ref: records_pb2.RecordRef) -> str:
    return f"{ref.origin}/{ref.id}"


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a compound item: its protobuf field, kind (text, date or list) and
    the other names it has as a YAML/JSON key."""

    name: str
    kind: str = "text"
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Compound:
    """An item written as its parts separated by ``|`` (or as a mapping of them)."""

    message: type[Message]
    parts: tuple[Part, ...]

    def part_for(self, key: str) -> Part | None:
        wanted = column_key(key)
        for part in self.parts:
            names = (part.name, *part.aliases)
            if any(wanted in (column_key(n), fold_diacritics(column_key(n))) for n in names):
                return part
        return None


def _p(name: str, *aliases: str, kind: str = "text") -> Part:
    return Part(name, kind, aliases)


#: The compound items (form type "item"): each form field's message and parts in order.
COMPOUNDS: dict[str, Compound] = {
    "supplier": Compound(records_pb2.Supplier, (
        _p("name", "namn", "leverantör"),
        _p("company_number", "organisationsnummer", "orgnr", "company registration number"),
        _p("role", "roll", "uppdrag"),
        _p("procurement_procedure", "upphandling", "upphandlingsform", "procurement"),
    )),
    "model": Compound(records_pb2.AiModel, (
        _p("name", "namn", "modell"),
        _p("version"),
        _p("provider", "leverantör", "tillverkare"),
        _p("model_type", "modelltyp", "typ", "type"),
        _p("task", "uppgift"),
        _p("input", "indata"),
        _p("output", "utdata"),
        _p("architecture", "arkitektur"),
        _p("performance", "prestanda"),
        _p("datasets", "datamängder", kind="list"),
    )),
    "dataset": Compound(records_pb2.Dataset, (
        _p("name", "namn", "datamängd"),
        _p("description", "beskrivning"),
        _p("url", "länk", "webbadress"),
        _p("source", "källa", "ursprung"),
        _p("collection", "insamling"),
        _p("quantity", "mängd", "omfattning"),
        _p("sensitive_attributes", "känsliga attribut", "känsliga uppgifter"),
        _p("completeness_and_representativeness", "fullständighet och representativitet",
           "fullständighet", "representativitet"),
        _p("cleaning", "tvätt", "rensning", "datatvätt"),
        _p("sharing", "delning", "data sharing"),
        _p("access_and_storage", "åtkomst och lagring", "lagring", "data access and storage"),
    )),
    "assessment": Compound(records_pb2.Assessment, (
        _p("name", "namn", "bedömning"),
        _p("completed_at_ms", "datum", "date", "genomförd", kind="date"),
        _p("summary", "sammanfattning"),
        _p("url", "länk", "webbadress", "link"),
    )),
    "identified_risk": Compound(records_pb2.Risk, (
        _p("name", "namn", "risk"),
        _p("category", "kategori"),
        _p("description", "beskrivning"),
        _p("mitigation", "åtgärd", "åtgärder", "hantering"),
    )),
}  # fmt: skip
#: The separator of a compound item's parts in its text form.
PART_SEPARATOR = "|"


def parse_item(name: str, text: str) -> Message:
    """A compound item from its text form: the parts in order, separated by ``|``."""
    compound = COMPOUNDS[name]
    values = [v.strip() for v in text.split(PART_SEPARATOR)]
    if len(values) > len(compound.parts):
        raise _Bad(
            f"{shown(text)} has {len(values)} parts; at most {len(compound.parts)}: "
            + " | ".join(p.name for p in compound.parts)
        )
    return _build_item(compound, dict(zip((p.name for p in compound.parts), values, strict=False)))


def _build_item(compound: Compound, values: Mapping[str, Any]) -> Message:
    item = compound.message()
    for part in compound.parts:
        value = values.get(part.name)
        if value is None or value == "" or value == []:
            continue
        if part.kind == "date":
            setattr(item, part.name, parse_date_ms(as_text(value)))
        elif part.kind == "list":
            items = value if isinstance(value, list | tuple) else as_text(value).split(",")
            getattr(item, part.name).extend(t for v in items if (t := as_text(v).strip()))
        else:
            setattr(item, part.name, as_text(value).strip())
    return item


def format_item(name: str, item: Message) -> str:
    """The text form of a compound item (trailing empty parts left out)."""
    texts: list[str] = []
    for part in COMPOUNDS[name].parts:
        value = getattr(item, part.name)
        if part.kind == "date":
            texts.append(format_date_ms(value) if value else "")
        elif part.kind == "list":
            texts.append(", ".join(value))
        else:
            texts.append(str(value))
    while texts and not texts[-1]:
        texts.pop()
    return f" {PART_SEPARATOR} ".join(texts)


def as_text(value: Any) -> str:
    """A cell or YAML value as text: numbers without '.0', dates ISO, booleans ja/nej."""
    if isinstance(value, bool):
        return "ja" if value else "nej"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _convert(f: FormField, value: Any, own_origin: str) -> Any:
    """One item's protobuf value; raises _Bad."""
    if isinstance(value, Mapping):
        return _convert_mapping(f, value, own_origin)
    if f.type == "bool":
        if isinstance(value, bool):
            return value
        try:
            return parse_bool(as_text(value))
        except ValueError as exc:
            raise _Bad(str(exc)) from exc
    text = as_text(value).strip()
    if f.type == "text":
        return text
    if f.type == "kommun":
        return text.zfill(4) if text.isdigit() and len(text) == 3 else text
    if f.type == "enum":
        assert f.vocab is not None
        try:
            return f.vocab.parse(text)
        except UnknownTerm as exc:
            raise _Bad(f"{exc}; use one of: {', '.join(f.vocab.choices())}") from exc
    if f.type == "sek":
        return parse_amount(text)
    if f.type == "date":
        return parse_date_ms(text)
    if f.type == "benefit":
        return parse_benefit(text)
    if f.type == "link":
        return parse_link(text)
    if f.type == "ref":
        return parse_ref(text, own_origin)
    if f.type == "item":
        return parse_item(f.name, text)
    raise AssertionError(f"unknown form type {f.type}")


def _convert_mapping(f: FormField, value: Mapping[str, Any], own_origin: str) -> Message:
    """YAML/JSON may give a benefit, link or reference as a mapping of its parts."""
    parts = {str(k): as_text(v).strip() for k, v in value.items() if v is not None}
    try:
        if f.type == "benefit":
            return records_pb2.Benefit(
                metric=parts.get("metric", ""),
                value=float(parts.get("value", "0").replace(",", ".").replace(" ", "")),
                unit=parts.get("unit", ""),
                method=parts.get("method", ""),
            )
        if f.type == "link":
            return records_pb2.Link(url=parts.get("url", ""), title=parts.get("title", ""))
        if f.type == "ref":
            return records_pb2.RecordRef(
                origin=parts.get("origin", own_origin), id=parts.get("id", "")
            )
        if f.type == "item":
            return _item_from_mapping(f.name, value)
    except ValueError as exc:
        raise _Bad(f"{value!r}: {exc}") from exc
    raise _Bad(f"a {f.type} is written as text here, not as a mapping")


def _item_from_mapping(name: str, value: Mapping[str, Any]) -> Message:
    compound = COMPOUNDS[name]
    values: dict[str, Any] = {}
    for key, part_value in value.items():
        part = compound.part_for(str(key))
        if part is None:
            names = ", ".join(p.name for p in compound.parts)
            raise _Bad(f"{shown(str(key))} is not a part of a {name}; use {names}")
        if part_value is not None:
            values[part.name] = part_value
    return _build_item(compound, values)


# -- applying a form to a record -----------------------------------------------------


def new_record(body: str, origin: str) -> records_pb2.Record:
    """An empty record of ``body`` for ``origin`` (version, times: set by the publisher)."""
    rec = records_pb2.Record()
    rec.header.kind = BODY_KINDS[body]  # type: ignore[assignment]
    rec.header.origin = origin
    rec.header.visibility = DEFAULT_VISIBILITY
    getattr(rec, body).SetInParent()
    return rec


def body_of(record: records_pb2.Record) -> str:
    body = record.WhichOneof("body")
    return body or KIND_BODIES.get(record.header.kind, "")


def apply_form(
    record: records_pb2.Record, values: Mapping[str, Any], *, own_origin: str
) -> list[FieldIssue]:
    """Set the given flat fields on ``record`` in place; return what did not convert.

    A value of None means "not given" (the field is left as it is); "" or an empty
    list clears the field. Repeated fields take a list (or one value); their whole
    content is replaced.
    """
    body = body_of(record)
    issues: list[FieldIssue] = []
    for name, value in values.items():
        if value is None:
            continue
        f = FIELDS_BY_NAME.get(name)
        if f is None:
            issues.append(FieldIssue(name, "is not a field"))
            continue
        path = f.path(body)
        if path is None:
            issues.append(FieldIssue(name, f"does not apply to a {body.replace('_', ' ')}"))
            continue
        parent, leaf = _resolve(record, path)
        descriptor = parent.DESCRIPTOR.fields_by_name[leaf]
        items = list(value) if isinstance(value, list | tuple) else [value]
        items = [v for v in items if not (isinstance(v, str) and not v.strip())]
        if not descriptor.is_repeated and len(items) > 1:
            issues.append(FieldIssue(name, f"takes one value, got {len(items)}"))
            continue
        converted: list[Any] = []
        for i, item in enumerate(items):
            try:
                converted.append(_convert(f, item, own_origin))
            except _Bad as exc:
                where = f"{name}[{i}]" if descriptor.is_repeated and len(items) > 1 else name
                issues.append(FieldIssue(where, str(exc)))
        if len(converted) != len(items):
            continue
        _set(parent, leaf, descriptor.is_repeated, converted)
    return issues


def _resolve(record: Message, path: str) -> tuple[Message, str]:
    """The message holding the last part of a dotted path, and that part's name."""
    *parents, leaf = path.split(".")
    msg = record
    for part in parents:
        msg = getattr(msg, part)
    return msg, leaf


def _set(parent: Message, leaf: str, repeated: bool, values: list[Any]) -> None:
    if repeated:
        target = getattr(parent, leaf)
        if not values and not target:
            return
        del target[:]
        for v in values:
            if isinstance(v, Message):
                target.add().CopyFrom(v)
            else:
                target.append(v)
        return
    if not values:
        # Clear only what is set: touching an unset sub-message would make it present.
        descriptor = parent.DESCRIPTOR.fields_by_name[leaf]
        has_presence = descriptor.message_type is not None or descriptor.has_presence
        present = parent.HasField(leaf) if has_presence else bool(getattr(parent, leaf))
        if present:
            parent.ClearField(leaf)
    elif isinstance(values[0], Message):
        getattr(parent, leaf).CopyFrom(values[0])
    else:
        setattr(parent, leaf, values[0])


def read_form(record: records_pb2.Record) -> dict[str, Any]:
    """The record as flat fields (text, lists of text, booleans), for display and diffs."""
    body = body_of(record)
    out: dict[str, Any] = {}
    for f in fields_for(body):
        path = f.path(body)
        assert path is not None
        parent, leaf = _resolve(record, path)
        descriptor = parent.DESCRIPTOR.fields_by_name[leaf]
        raw = getattr(parent, leaf)
        items = list(raw) if descriptor.is_repeated else [raw]
        if not descriptor.is_repeated and descriptor.message_type is not None:
            items = [raw] if parent.HasField(leaf) else []
        texts = [_format(f, v) for v in items]
        if descriptor.is_repeated:
            out[f.name] = texts
        elif f.type == "bool":
            # An optional answer (fria: ja/nej) reads "" while unanswered, not "nej".
            answered = not descriptor.has_presence or parent.HasField(leaf)
            out[f.name] = bool(raw) if answered else ""
        else:
            out[f.name] = texts[0] if texts else ""
    return out


def _format(f: FormField, value: Any) -> str:
    if f.type == "enum":
        assert f.vocab is not None
        return f.vocab.key(value) if value else ""
    if f.type == "sek":
        return str(value) if value else ""
    if f.type == "date":
        return format_date_ms(value) if value else ""
    if f.type == "benefit":
        return format_benefit(value)
    if f.type == "link":
        return format_link(value)
    if f.type == "ref":
        return format_ref(value)
    if f.type == "item":
        return format_item(f.name, value)
    return str(value)


# -- naming problems the way people typed them ----------------------------------------


def flat_issues(issues: Sequence[FieldIssue], body: str) -> list[FieldIssue]:
    """Rename validation paths (``use_case.service_area``) to flat names (``area``)."""
    table = sorted(
        ((p, f.name) for f in fields_for(body) if (p := f.path(body)) is not None),
        key=lambda item: -len(item[0]),
    )
    renamed: list[FieldIssue] = []
    for issue in issues:
        name = issue.field
        for path, flat in table:
            if name == path or name.startswith((path + ".", path + "[")):
                name = flat + name[len(path) :]
                break
        renamed.append(FieldIssue(name, issue.message))
    return renamed


def derive_id(title: str, body: str, taken: Any = frozenset()) -> str:
    """A record id from a title: ``uc-`` + a lower-case slug, unique among ``taken``.

    ``taken`` is anything supporting ``in`` (a set of ids, or an object asking the store).
    """
    folded = fold_diacritics(unicodedata.normalize("NFKC", title)).casefold()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:60].strip("-") or "record"
    base = f"{ID_PREFIX[body]}-{slug}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    assert RECORD_ID.match(candidate)
    return candidate


def _descriptor_field(path: str) -> Any:
    """The protobuf field descriptor for a dotted path from Record."""
    descriptor: Any = records_pb2.Record.DESCRIPTOR
    *parents, leaf = path.split(".")
    for part in parents:
        descriptor = descriptor.fields_by_name[part].message_type
    return descriptor.fields_by_name[leaf]


def same_content(a: records_pb2.Record, b: records_pb2.Record) -> bool:
    """Whether two records say the same, ignoring version and timestamps."""
    left, right = records_pb2.Record(), records_pb2.Record()
    left.CopyFrom(a)
    right.CopyFrom(b)
    for rec in (left, right):
        rec.header.version = 0
        rec.header.created_at_ms = 0
        rec.header.updated_at_ms = 0
        if not rec.header.language:
            rec.header.language = "sv"
    return left == right
