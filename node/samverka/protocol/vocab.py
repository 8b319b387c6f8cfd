"""Friendly names for the record enums, in Swedish and English (pure, no I/O).

One place for every word a person types or reads for an enum value, so the CLI, the
inventory importer, the web catalog and the statistics agree. Each value has

- a **key**: a stable English slug (``elderly-care``) used in files and URLs;
- a Swedish **label** (``Äldreomsorg``) shown to people, and an English one;
- **aliases**: other words people use (``äldreomsorg``, ``hemtjänst``).

:meth:`Vocabulary.parse` accepts any of them, case-insensitive, with spaces,
underscores and punctuation treated alike, with or without å/ä/ö (``aldreomsorg``),
and also the protobuf name (``SERVICE_AREA_ELDERLY_CARE`` or ``ELDERLY_CARE``)::

    >>> SERVICE_AREA.parse("Äldreomsorg") == SERVICE_AREA.parse("elderly care")
    True
    >>> SERVICE_AREA.label(SERVICE_AREA.parse("lss"))
    'Funktionsstöd (LSS)'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from samverka.errors import SamverkaError
from samverka.v1 import records_pb2


class UnknownTerm(SamverkaError):
    """A word that is not in a vocabulary (the message lists what is accepted)."""

    def __init__(self, vocabulary: Vocabulary, text: str) -> None:
        super().__init__(
            f"{text!r} is not a {vocabulary.title}",
            hint=f"use one of: {', '.join(vocabulary.choices())}",
        )
        self.vocabulary = vocabulary
        self.text = text


@dataclass(frozen=True, slots=True)
class Term:
    """One enum value with its names."""

    value: int
    key: str
    sv: str
    en: str
    aliases: tuple[str, ...] = ()


def normalize(text: str) -> str:
    """Lower case; every run of characters other than letters and digits becomes '-'."""
    folded = unicodedata.normalize("NFC", text).casefold()
    return re.sub(r"[\W_]+", "-", folded).strip("-")


def fold_diacritics(text: str) -> str:
    """'äldreomsorg' -> 'aldreomsorg': for people typing without å, ä, ö."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class Vocabulary:
    """The names of one protobuf enum's values (the UNSPECIFIED zero is never named)."""

    #: Field-ish name, e.g. "service_area".
    name: str
    #: What one value is called in messages, e.g. "verksamhetsområde (service area)".
    title: str
    #: The protobuf enum value prefix, e.g. "SERVICE_AREA_".
    prefix: str
    terms: tuple[Term, ...]
    _lookup: dict[str, Term] = field(default_factory=dict, init=False, repr=False)
    _by_value: dict[int, Term] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for term in self.terms:
            self._by_value[term.value] = term
            proto_suffix = term.key.replace("-", "_").upper()
            words = {term.key, term.sv, term.en, *term.aliases, self.prefix + proto_suffix}
            for word in words:
                for form in {normalize(word), fold_diacritics(normalize(word))}:
                    other = self._lookup.setdefault(form, term)
                    if other is not term:
                        raise ValueError(f"{self.name}: {form!r} names {other.key} and {term.key}")

    def parse(self, text: str) -> int:
        """The enum number for any accepted name; raises UnknownTerm."""
        form = normalize(text)
        term = self._lookup.get(form) or self._lookup.get(fold_diacritics(form))
        if term is None:
            raise UnknownTerm(self, text)
        return term.value

    def term(self, value: int) -> Term | None:
        return self._by_value.get(value)

    def key(self, value: int) -> str:
        """The stable English slug, or '' for UNSPECIFIED / unknown numbers."""
        term = self._by_value.get(value)
        return term.key if term else ""

    def label(self, value: int, lang: str = "sv") -> str:
        """The label people read (Swedish by default); '' for UNSPECIFIED."""
        term = self._by_value.get(value)
        if term is None:
            return "" if value == 0 else str(value)
        return term.en if lang == "en" else term.sv

    def choices(self) -> list[str]:
        """The keys, for help texts and error hints."""
        return [t.key for t in self.terms]

    def __iter__(self) -> Iterator[Term]:
        return iter(self.terms)


def _t(value: int, key: str, sv: str, en: str, *aliases: str) -> Term:
    return Term(value, key, sv, en, aliases)


R = records_pb2

# The tables are kept one value per line or two (fmt: off) so they read as tables.
# fmt: off
SERVICE_AREA = Vocabulary("service_area", "verksamhetsområde (service area)", "SERVICE_AREA_", (
    _t(R.SERVICE_AREA_ADMINISTRATION, "administration", "Ledning och administration",
       "Administration", "ledning", "kommunledning", "förvaltning"),
    _t(R.SERVICE_AREA_ELDERLY_CARE, "elderly-care", "Äldreomsorg", "Elderly care",
       "hemtjänst", "äldreboende", "vård och omsorg", "omsorg"),
    _t(R.SERVICE_AREA_SOCIAL_SERVICES, "social-services", "Individ- och familjeomsorg",
       "Social services", "ifo", "socialtjänst", "socialtjänsten", "ekonomiskt bistånd"),
    _t(R.SERVICE_AREA_DISABILITY_SUPPORT, "disability-support", "Funktionsstöd (LSS)",
       "Disability support", "funktionsstöd", "lss", "funktionshinder"),
    _t(R.SERVICE_AREA_PRESCHOOL, "preschool", "Förskola", "Preschool", "förskolor"),
    _t(R.SERVICE_AREA_SCHOOL, "school", "Grundskola och gymnasium", "School",
       "skola", "grundskola", "gymnasium", "gymnasieskola", "utbildning"),
    _t(R.SERVICE_AREA_ADULT_EDUCATION, "adult-education", "Vuxenutbildning",
       "Adult education", "komvux", "sfi"),
    _t(R.SERVICE_AREA_CULTURE_LEISURE, "culture-leisure", "Kultur och fritid",
       "Culture and leisure", "kultur", "fritid", "bibliotek"),
    _t(R.SERVICE_AREA_URBAN_PLANNING, "urban-planning", "Samhällsbyggnad, plan och bygg",
       "Urban planning", "samhällsbyggnad", "plan och bygg", "bygglov", "stadsbyggnad"),
    _t(R.SERVICE_AREA_ENVIRONMENT_HEALTH, "environment-health", "Miljö och hälsoskydd",
       "Environment and health", "miljö", "hälsoskydd", "miljöförvaltning"),
    _t(R.SERVICE_AREA_TECHNICAL_SERVICES, "technical-services", "Teknik, VA, avfall, gata",
       "Technical services", "teknik", "teknisk förvaltning", "va", "avfall", "gata"),
    _t(R.SERVICE_AREA_CITIZEN_SERVICE, "citizen-service", "Medborgarservice och kontaktcenter",
       "Citizen service", "medborgarservice", "kontaktcenter", "kundtjänst", "servicecenter"),
    _t(R.SERVICE_AREA_HR, "hr", "HR och personal", "HR", "personal", "human resources"),
    _t(R.SERVICE_AREA_FINANCE, "finance", "Ekonomi", "Finance", "ekonomiavdelning"),
    _t(R.SERVICE_AREA_IT, "it", "IT och digitalisering", "IT and digitalisation",
       "digitalisering", "it-avdelning", "digitalization"),
    _t(R.SERVICE_AREA_COMMUNICATION, "communication", "Kommunikation", "Communication"),
    _t(R.SERVICE_AREA_BUSINESS_DEVELOPMENT, "business-development",
       "Näringsliv och arbetsmarknad", "Business development", "näringsliv", "arbetsmarknad"),
    _t(R.SERVICE_AREA_PUBLIC_SAFETY, "public-safety", "Räddningstjänst och säkerhet",
       "Public safety", "räddningstjänst", "säkerhet", "krisberedskap"),
))

USE_CASE_STATUS = Vocabulary("status", "status", "USE_CASE_STATUS_", (
    _t(R.USE_CASE_STATUS_IDEA, "idea", "Idé", "Idea", "förstudie", "planerad"),
    _t(R.USE_CASE_STATUS_PILOT, "pilot", "Pilot", "Pilot", "test", "försök", "piloting"),
    _t(R.USE_CASE_STATUS_PRODUCTION, "production", "I drift", "In production",
       "drift", "produktion", "live", "i bruk"),
    _t(R.USE_CASE_STATUS_ENDED, "ended", "Avslutad", "Ended", "avvecklad", "avbruten"),
))

RISK_CLASS = Vocabulary("risk_class", "riskklass enligt AI-förordningen (EU AI Act risk class)",
                        "RISK_CLASS_", (
    _t(R.RISK_CLASS_MINIMAL, "minimal", "Minimal risk", "Minimal risk", "minimal"),
    _t(R.RISK_CLASS_LIMITED, "limited", "Begränsad risk", "Limited risk", "begränsad"),
    _t(R.RISK_CLASS_HIGH, "high", "Hög risk", "High risk", "hög", "högrisk"),
    _t(R.RISK_CLASS_UNACCEPTABLE, "unacceptable", "Oacceptabel risk", "Unacceptable risk",
       "oacceptabel", "förbjuden", "prohibited"),
))

LESSON_CATEGORY = Vocabulary("category", "kategori (lesson category)", "LESSON_CATEGORY_", (
    _t(R.LESSON_CATEGORY_PROCUREMENT, "procurement", "Upphandling", "Procurement", "inköp"),
    _t(R.LESSON_CATEGORY_LAW_AND_GDPR, "law-and-gdpr", "Juridik och dataskydd", "Law and GDPR",
       "juridik", "dataskydd", "gdpr", "law", "lag"),
    _t(R.LESSON_CATEGORY_DATA, "data", "Data", "Data", "datakvalitet"),
    _t(R.LESSON_CATEGORY_COMPETENCE_AND_CHANGE, "competence-and-change",
       "Kompetens och förändring", "Competence and change", "kompetens",
       "förändringsledning", "förändring", "change"),
    _t(R.LESSON_CATEGORY_TECHNOLOGY, "technology", "Teknik", "Technology", "teknologi"),
    _t(R.LESSON_CATEGORY_ETHICS, "ethics", "Etik", "Ethics"),
))

SOLUTION_TYPE = Vocabulary("type", "lösningstyp (solution type)", "SOLUTION_TYPE_", (
    _t(R.SOLUTION_TYPE_POLICY, "policy", "Policy", "Policy", "ai-policy"),
    _t(R.SOLUTION_TYPE_GUIDELINE, "guideline", "Riktlinje", "Guideline",
       "riktlinjer", "vägledning", "guide"),
    _t(R.SOLUTION_TYPE_PROCUREMENT_TEMPLATE, "procurement-template", "Upphandlingsmall",
       "Procurement template", "upphandlingsunderlag", "förfrågningsunderlag"),
    _t(R.SOLUTION_TYPE_IMPACT_ASSESSMENT_TEMPLATE, "impact-assessment-template",
       "Mall för konsekvensbedömning", "Impact assessment template",
       "konsekvensbedömning", "dpia", "dpia-mall", "fria"),
    _t(R.SOLUTION_TYPE_CODE, "code", "Kod", "Code", "källkod", "programkod", "software"),
    _t(R.SOLUTION_TYPE_PROMPT_LIBRARY, "prompt-library", "Promptbibliotek", "Prompt library",
       "promptar", "prompts"),
    _t(R.SOLUTION_TYPE_TRAINING_MATERIAL, "training-material", "Utbildningsmaterial",
       "Training material", "utbildning", "kursmaterial", "training"),
))

VISIBILITY = Vocabulary("visibility", "synlighet (visibility)", "VISIBILITY_", (
    _t(R.VISIBILITY_PUBLIC, "public", "Offentlig", "Public", "publik", "öppen"),
    _t(R.VISIBILITY_MEMBERS, "members", "Medlemmar", "Members only", "medlem", "member",
       "intern"),
    _t(R.VISIBILITY_DRAFT, "draft", "Utkast", "Draft"),
))

RECORD_KIND = Vocabulary("kind", "posttyp (record kind)", "RECORD_KIND_", (
    _t(R.RECORD_KIND_USE_CASE, "use-case", "Användningsfall", "Use case", "usecase",
       "användningsområde", "tillämpning"),
    _t(R.RECORD_KIND_LESSON, "lesson", "Lärdom", "Lesson", "lärdomar", "erfarenhet"),
    _t(R.RECORD_KIND_SOLUTION, "solution", "Lösning", "Solution", "lösningar"),
    _t(R.RECORD_KIND_RECOMMENDATION, "recommendation", "Rekommendation", "Recommendation"),
    _t(R.RECORD_KIND_ADOPTION, "adoption", "Införande", "Adoption", "återanvändning"),
    _t(R.RECORD_KIND_KOMMUN_PROFILE, "kommun-profile", "Kommunprofil", "Kommun profile",
       "profil", "profile", "kommunprofil"),
    _t(R.RECORD_KIND_ERASURE, "erasure", "Radering", "Erasure", "radering"),
))

POPULATION_BAND = Vocabulary("population_band", "storleksklass (population band)",
                             "POPULATION_BAND_", (
    _t(R.POPULATION_BAND_UNDER_10K, "under-10k", "Under 10 000 invånare",
       "Under 10,000 inhabitants", "<10000", "under 10000"),
    _t(R.POPULATION_BAND_FROM_10K_TO_25K, "from-10k-to-25k", "10 000–24 999 invånare",
       "10,000–24,999 inhabitants", "10k-25k", "10000-24999"),
    _t(R.POPULATION_BAND_FROM_25K_TO_50K, "from-25k-to-50k", "25 000–49 999 invånare",
       "25,000–49,999 inhabitants", "25k-50k", "25000-49999"),
    _t(R.POPULATION_BAND_FROM_50K_TO_100K, "from-50k-to-100k", "50 000–99 999 invånare",
       "50,000–99,999 inhabitants", "50k-100k", "50000-99999"),
    _t(R.POPULATION_BAND_FROM_100K_TO_200K, "from-100k-to-200k", "100 000–199 999 invånare",
       "100,000–199,999 inhabitants", "100k-200k", "100000-199999"),
    _t(R.POPULATION_BAND_OVER_200K, "over-200k", "200 000 invånare eller fler",
       "200,000 inhabitants or more", "200k", "över 200000", ">200000"),
))

#: SKR:s kommungruppsindelning 2017 (the key is the group's code, A1-C9).
KOMMUN_GROUP = Vocabulary("kommun_group", "kommungrupp enligt SKR (SKR kommun group)",
                          "KOMMUN_GROUP_", (
    _t(R.KOMMUN_GROUP_A1, "a1", "A1 Storstäder", "A1 Large cities", "storstad",
       "storstäder"),
    _t(R.KOMMUN_GROUP_A2, "a2", "A2 Pendlingskommun nära storstad",
       "A2 Commuter municipality near a large city", "pendlingskommun nära storstad"),
    _t(R.KOMMUN_GROUP_B3, "b3", "B3 Större stad", "B3 Large town", "större stad"),
    _t(R.KOMMUN_GROUP_B4, "b4", "B4 Pendlingskommun nära större stad",
       "B4 Commuter municipality near a large town", "pendlingskommun nära större stad"),
    _t(R.KOMMUN_GROUP_B5, "b5", "B5 Lågpendlingskommun nära större stad",
       "B5 Low-commuting municipality near a large town",
       "lågpendlingskommun nära större stad"),
    _t(R.KOMMUN_GROUP_C6, "c6", "C6 Mindre stad/tätort", "C6 Small town",
       "mindre stad", "tätort", "mindre stad/tätort"),
    _t(R.KOMMUN_GROUP_C7, "c7", "C7 Pendlingskommun nära mindre stad/tätort",
       "C7 Commuter municipality near a small town", "pendlingskommun nära mindre stad"),
    _t(R.KOMMUN_GROUP_C8, "c8", "C8 Landsbygdskommun", "C8 Rural municipality",
       "landsbygdskommun"),
    _t(R.KOMMUN_GROUP_C9, "c9", "C9 Landsbygdskommun med besöksnäring",
       "C9 Rural municipality with tourism", "landsbygdskommun med besöksnäring"),
))

AI_RULE = Vocabulary("ai_rule", "AI-regel (AI rule)", "AI_RULE_", (
    _t(R.AI_RULE_RISK_CLASS, "risk-class", "Högsta riskklass", "Highest risk class",
       "riskklass", "risk"),
    _t(R.AI_RULE_PERSONAL_DATA, "personal-data", "Inga personuppgifter", "No personal data",
       "personuppgifter", "pii"),
    _t(R.AI_RULE_DPIA, "dpia", "Konsekvensbedömning krävs", "DPIA required",
       "konsekvensbedömning"),
))

AI_ACT_ROLE = Vocabulary("ai_act_role", "roll enligt AI-förordningen (AI Act role)",
                         "AI_ACT_ROLE_", (
    _t(R.AI_ACT_ROLE_PROVIDER, "provider", "Leverantör", "Provider", "leverantor"),
    _t(R.AI_ACT_ROLE_DEPLOYER, "deployer", "Tillhandahållare", "Deployer",
       "användare", "idriftsättare", "brukare"),
    _t(R.AI_ACT_ROLE_IMPORTER, "importer", "Importör", "Importer"),
    _t(R.AI_ACT_ROLE_DISTRIBUTOR, "distributor", "Distributör", "Distributor"),
))

#: Eurocities algorithmic transparency standard 0.3.1: the type of algorithm.
ALGORITHM_TYPE = Vocabulary("algorithm_type", "typ av algoritm (algorithm type)",
                            "ALGORITHM_TYPE_", (
    _t(R.ALGORITHM_TYPE_SELF_LEARNING, "self-learning", "Självlärande", "Self-learning",
       "maskininlärning", "machine learning", "ml"),
    _t(R.ALGORITHM_TYPE_RULE_BASED, "rule-based", "Regelbaserad", "Rule-based", "regler"),
    _t(R.ALGORITHM_TYPE_HYBRID, "hybrid", "Båda (hybrid)", "Hybrid", "båda", "both"),
))

#: Eurocities 0.3.1: the type of use of the algorithm's output.
ALGORITHM_USE = Vocabulary("algorithm_use", "typ av användning (type of use)",
                           "ALGORITHM_USE_", (
    _t(R.ALGORITHM_USE_DESCRIPTIVE, "descriptive", "Beskrivande", "Descriptive"),
    _t(R.ALGORITHM_USE_DIAGNOSTIC, "diagnostic", "Diagnostiserande", "Diagnostic",
       "diagnostisk"),
    _t(R.ALGORITHM_USE_PREDICTIVE, "predictive", "Förutsägande", "Predictive",
       "prediktiv", "prognos"),
    _t(R.ALGORITHM_USE_PRESCRIPTIVE, "prescriptive", "Föreskrivande", "Prescriptive",
       "preskriptiv", "rekommenderande"),
))

#: AI Act Annex III: the areas where an AI system is high-risk (Art. 6(2)).
HIGH_RISK_AREA = Vocabulary("high_risk_area", "område i bilaga III (AI Act Annex III area)",
                            "HIGH_RISK_AREA_", (
    _t(R.HIGH_RISK_AREA_BIOMETRICS, "biometrics", "Biometri", "Biometrics", "biometrik",
       "bilaga iii 1", "annex iii 1"),
    _t(R.HIGH_RISK_AREA_CRITICAL_INFRASTRUCTURE, "critical-infrastructure",
       "Kritisk infrastruktur", "Critical infrastructure", "bilaga iii 2", "annex iii 2"),
    _t(R.HIGH_RISK_AREA_EDUCATION, "education", "Utbildning och yrkesutbildning",
       "Education and vocational training", "utbildning", "bilaga iii 3", "annex iii 3"),
    _t(R.HIGH_RISK_AREA_EMPLOYMENT, "employment", "Anställning och arbetsledning",
       "Employment and workers management", "anställning", "arbetsliv", "bilaga iii 4",
       "annex iii 4"),
    _t(R.HIGH_RISK_AREA_ESSENTIAL_SERVICES, "essential-services",
       "Väsentliga privata och offentliga tjänster och förmåner",
       "Essential private and public services and benefits", "väsentliga tjänster",
       "offentligt stöd", "offentliga förmåner", "bistånd", "bilaga iii 5", "annex iii 5"),
    _t(R.HIGH_RISK_AREA_LAW_ENFORCEMENT, "law-enforcement", "Brottsbekämpning",
       "Law enforcement", "polis", "bilaga iii 6", "annex iii 6"),
    _t(R.HIGH_RISK_AREA_MIGRATION, "migration", "Migration, asyl och gränskontroll",
       "Migration, asylum and border control", "asyl", "gränskontroll", "bilaga iii 7",
       "annex iii 7"),
    _t(R.HIGH_RISK_AREA_JUSTICE_DEMOCRACY, "justice-democracy",
       "Rättskipning och demokratiska processer",
       "Administration of justice and democratic processes", "rättskipning", "demokrati",
       "val", "bilaga iii 8", "annex iii 8"),
))

#: AI Act Art. 50: the transparency cases.
TRANSPARENCY_OBLIGATION = Vocabulary(
    "transparency_obligation", "transparenskrav enligt artikel 50 (Art. 50 obligation)",
    "TRANSPARENCY_OBLIGATION_", (
    _t(R.TRANSPARENCY_OBLIGATION_INTERACTS_WITH_PEOPLE, "interacts-with-people",
       "Interagerar med människor", "Interacts with people", "chattbot", "chatbot",
       "interaktion", "art 50 1"),
    _t(R.TRANSPARENCY_OBLIGATION_SYNTHETIC_CONTENT, "synthetic-content",
       "Genererar syntetiskt innehåll", "Generates synthetic content", "syntetiskt innehåll",
       "genererat innehåll", "art 50 2"),
    _t(R.TRANSPARENCY_OBLIGATION_EMOTION_RECOGNITION, "emotion-recognition",
       "Känsloigenkänning eller biometrisk kategorisering",
       "Emotion recognition or biometric categorisation", "känsloigenkänning",
       "biometrisk kategorisering", "art 50 3"),
    _t(R.TRANSPARENCY_OBLIGATION_DEEP_FAKE, "deep-fake", "Deepfake", "Deep fake",
       "deepfakes", "djupförfalskning", "art 50 4"),
    _t(R.TRANSPARENCY_OBLIGATION_PUBLIC_INTEREST_TEXT, "public-interest-text",
       "AI-genererad text som informerar allmänheten",
       "Generated text informing the public", "text till allmänheten"),
))

#: publiccode.yml's developmentStatus.
DEVELOPMENT_STATUS = Vocabulary("development_status", "utvecklingsstatus (development status)",
                                "DEVELOPMENT_STATUS_", (
    _t(R.DEVELOPMENT_STATUS_CONCEPT, "concept", "Koncept", "Concept", "idé"),
    _t(R.DEVELOPMENT_STATUS_DEVELOPMENT, "development", "Under utveckling", "In development",
       "utveckling"),
    _t(R.DEVELOPMENT_STATUS_BETA, "beta", "Beta", "Beta", "test"),
    _t(R.DEVELOPMENT_STATUS_STABLE, "stable", "Stabil", "Stable", "i drift", "produktion"),
    _t(R.DEVELOPMENT_STATUS_OBSOLETE, "obsolete", "Utgången", "Obsolete", "avvecklad"),
))

#: publiccode.yml's maintenance.type.
MAINTENANCE_TYPE = Vocabulary("maintenance_type", "förvaltning (maintenance type)",
                              "MAINTENANCE_TYPE_", (
    _t(R.MAINTENANCE_TYPE_INTERNAL, "internal", "Egen förvaltning", "Internal", "intern",
       "egen"),
    _t(R.MAINTENANCE_TYPE_CONTRACT, "contract", "Avtalad förvaltning", "Under contract",
       "avtal", "leverantör"),
    _t(R.MAINTENANCE_TYPE_COMMUNITY, "community", "Gemenskap", "Community", "gemensam",
       "öppen källkod"),
    _t(R.MAINTENANCE_TYPE_NONE, "none", "Ingen förvaltning", "None", "ingen", "oförvaltad"),
))
# fmt: on

#: Every vocabulary by its name.
VOCABULARIES: dict[str, Vocabulary] = {
    v.name: v
    for v in (
        SERVICE_AREA,
        USE_CASE_STATUS,
        RISK_CLASS,
        LESSON_CATEGORY,
        SOLUTION_TYPE,
        VISIBILITY,
        RECORD_KIND,
        POPULATION_BAND,
        KOMMUN_GROUP,
        AI_RULE,
        AI_ACT_ROLE,
        HIGH_RISK_AREA,
        ALGORITHM_TYPE,
        ALGORITHM_USE,
        TRANSPARENCY_OBLIGATION,
        DEVELOPMENT_STATUS,
        MAINTENANCE_TYPE,
    )
}

_YES = frozenset({"ja", "j", "yes", "y", "true", "sant", "1", "x"})
_NO = frozenset({"nej", "n", "no", "false", "falskt", "0", "-"})


def parse_bool(text: str) -> bool:
    """'ja'/'nej', 'yes'/'no', 'true'/'false', '1'/'0', 'x' (a ticked cell); else ValueError."""
    form = normalize(text) if text.strip() != "-" else "-"
    if form in _YES:
        return True
    if form in _NO:
        return False
    raise ValueError(f"{text!r} is not yes or no (ja/nej)")


def bool_label(value: bool, lang: str = "sv") -> str:
    if lang == "en":
        return "yes" if value else "no"
    return "ja" if value else "nej"
