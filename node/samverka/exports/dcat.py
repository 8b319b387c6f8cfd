"""DCAT-AP-SE (DCAT-AP 3.0): the records as a catalogue Sveriges dataportal can harvest.

The publisher's records form one ``dcat:Catalog`` (published by AI-rådet at the hub, by
the kommun at a node); each PUBLIC use case, lesson, solution and recommendation is a
``dcat:Dataset`` — the class DCAT-AP's shapes and the dataportal's harvester both
take (a record is a described resource, not a download, and DCAT-AP 3 has no closer
class the dataportal harvests) — with:

- ``dct:title`` and ``dct:description`` with the record's language tag (``sv``),
- ``dct:publisher``: the origin kommun as a ``foaf:Agent`` (``foaf:name``, the
  kommunkod as ``dct:identifier``, ADMS publisher type *LocalAuthority*, as
  DCAT-AP-SE asks),
- ``dcat:theme``: the EU data themes (GOVE, SOCI, HEAL, EDUC, ...) of its service area
  (:data:`THEMES`), each a ``skos:Concept`` of the EU data-theme scheme,
- ``dcat:keyword``: its tags and techniques; ``dct:identifier``: ``origin/id``;
  ``dct:issued``/``dct:modified``: when it was first written and last changed;
  ``dct:language``; ``dcat:landingPage``: its page in the web catalog (with a base URL);
- ``dcat:distribution``: the record as JSON from the catalog's API (with a base URL),
  and a solution's artifact (its URL, its SPDX licence as ``dct:license``, its SHA-256
  as ``spdx:checksum``);
- ``dcat:contactPoint`` (a ``vcard:Organization`` with the contact role and the record's
  functional mailbox, else the publisher's) only when there is an address: DCAT-AP-SE
  requires ``vcard:hasEmail`` in a contact point; ``foaf:page``: the record's own
  website (ATRS tier 1).

The catalogue carries a licence for its metadata (CC0 by default, DIGG's advice), a
theme taxonomy, its publisher and ``dct:modified``. :func:`graph` builds the RDF graph
(rdflib); :func:`rdfxml` (what Sveriges dataportal harvests), :func:`turtle` and
:func:`jsonld` serialize it. Every resource the dataportal names (catalogue, datasets,
publishers, contacts) has an IRI, never a blank node, as DIGG's harvesting rules ask.
The tests validate it with pyshacl against DCAT-AP 3.0.0's SHACL shapes and with
DCAT-AP-SE's RDForms cardinalities (tests/fixtures/standards/).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from urllib.parse import quote

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD

from samverka.exports import (
    ExportError,
    Publisher,
    each,
    exportable,
    iso_datetime,
    organisation_name,
    record_path,
    require,
)
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.vocab import RECORD_KIND, SERVICE_AREA, SOLUTION_TYPE, USE_CASE_STATUS
from samverka.v1 import records_pb2

R = records_pb2
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
ADMS_TYPE = Namespace("http://purl.org/adms/publishertype/")
EU_THEME = Namespace("http://publications.europa.eu/resource/authority/data-theme/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
FILE_TYPE = Namespace("http://publications.europa.eu/resource/authority/file-type/")
EU_LANGUAGE = Namespace("http://publications.europa.eu/resource/authority/language/")
ADMS_SCHEME = URIRef("http://purl.org/adms/publishertype/1.0")
THEME_SCHEME = URIRef("http://publications.europa.eu/resource/authority/data-theme")
FORMAT = "DCAT-AP-SE"

#: The kinds that become datasets (adoptions and kommun profiles are not published).
KINDS: tuple[int, ...] = (
    R.RECORD_KIND_USE_CASE,
    R.RECORD_KIND_LESSON,
    R.RECORD_KIND_SOLUTION,
    R.RECORD_KIND_RECOMMENDATION,
)

#: The EU data themes' Swedish labels (the EU vocabulary's own).
THEME_LABELS: dict[str, str] = {
    "AGRI": "Jordbruk, fiske, skogsbruk och livsmedel",
    "ECON": "Ekonomi och finans",
    "EDUC": "Utbildning, kultur och sport",
    "ENER": "Energi",
    "ENVI": "Miljö",
    "GOVE": "Regeringen och den offentliga sektorn",
    "HEAL": "Hälsa",
    "INTR": "Internationella frågor",
    "JUST": "Rättvisa, rättssystem och allmän säkerhet",
    "REGI": "Regioner och städer",
    "SOCI": "Befolkning och samhälle",
    "TECH": "Vetenskap och teknik",
    "TRAN": "Transport",
}

#: Service area -> EU data themes. Everything a kommun does is public sector (GOVE)
#: unless a closer theme exists.
THEMES: dict[int, tuple[str, ...]] = {
    R.SERVICE_AREA_UNSPECIFIED: ("GOVE",),
    R.SERVICE_AREA_ADMINISTRATION: ("GOVE",),
    R.SERVICE_AREA_ELDERLY_CARE: ("SOCI", "HEAL"),
    R.SERVICE_AREA_SOCIAL_SERVICES: ("SOCI",),
    R.SERVICE_AREA_DISABILITY_SUPPORT: ("SOCI", "HEAL"),
    R.SERVICE_AREA_PRESCHOOL: ("EDUC",),
    R.SERVICE_AREA_SCHOOL: ("EDUC",),
    R.SERVICE_AREA_ADULT_EDUCATION: ("EDUC",),
    R.SERVICE_AREA_CULTURE_LEISURE: ("EDUC",),
    R.SERVICE_AREA_URBAN_PLANNING: ("REGI",),
    R.SERVICE_AREA_ENVIRONMENT_HEALTH: ("ENVI", "HEAL"),
    R.SERVICE_AREA_TECHNICAL_SERVICES: ("ENVI", "TRAN"),
    R.SERVICE_AREA_CITIZEN_SERVICE: ("GOVE",),
    R.SERVICE_AREA_HR: ("GOVE",),
    R.SERVICE_AREA_FINANCE: ("GOVE", "ECON"),
    R.SERVICE_AREA_IT: ("TECH", "GOVE"),
    R.SERVICE_AREA_COMMUNICATION: ("GOVE",),
    R.SERVICE_AREA_BUSINESS_DEVELOPMENT: ("ECON",),
    R.SERVICE_AREA_PUBLIC_SAFETY: ("JUST",),
}

#: BCP 47 primary language -> the EU language authority's code.
LANGUAGES = {"sv": "SWE", "en": "ENG", "fi": "FIN", "se": "SME", "de": "DEU", "no": "NOR"}


#: Characters XML 1.0 cannot hold (RDF/XML is XML): a record passed validation, which
#: refuses control characters, but U+FFFE and U+FFFF are valid UTF-8 and would make the
#: whole catalogue unreadable to a harvester.
_NOT_IN_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def text(value: str) -> str:
    """Record text as every RDF syntax can carry it (characters XML refuses dropped)."""
    return _NOT_IN_XML.sub("", value)


#: Characters an IRI may not hold (RFC 3987), percent-encoded by :func:`iri`.
_NOT_IN_IRI = frozenset('<>"{}|\\^` ')


def iri(url: str) -> URIRef:
    """A record's URL as an IRI: validation accepts http(s) URLs, which may still hold
    characters Turtle cannot write (``<``, ``>``, space...); those are percent-encoded."""
    return URIRef("".join(quote(c, safe="") if c in _NOT_IN_IRI or ord(c) < 32 else c for c in url))


def _urn_part(text: str) -> str:
    return quote(text, safe="-._~")


class _Names:
    """The IRIs of the catalogue's resources (under the base URL, or URNs)."""

    def __init__(self, publisher: Publisher) -> None:
        self.base = publisher.base_url.rstrip("/")

    def catalog(self, origin: str) -> URIRef:
        if self.base:
            return URIRef(f"{self.base}/export/dcat#katalog-{origin}")
        return URIRef(f"urn:samverka:katalog:{origin}")

    def dataset(self, origin: str, record_id: str) -> URIRef:
        if self.base:
            return URIRef(f"{self.base}{record_path(origin, record_id)}#post")
        return URIRef(f"urn:samverka:post:{_urn_part(origin)}:{_urn_part(record_id)}")

    def contact(self, origin: str, email: str, role: str) -> URIRef:
        """One IRI per contact (the dataportal harvests no blank nodes for contacts)."""
        key = hashlib.sha256(f"{email}\n{role}".encode()).hexdigest()[:16]
        if self.base:
            return URIRef(f"{self.base}/kommun/{origin}#kontakt-{key}")
        return URIRef(f"urn:samverka:kontakt:{origin}:{key}")

    def agent(self, origin: str) -> URIRef:
        if self.base:
            return URIRef(f"{self.base}/kommun/{origin}#organisation")
        return URIRef(f"urn:samverka:organisation:{origin}")


def _texts(record: R.Record) -> tuple[str, str, list[str]]:
    """(title, description, keywords) of a record, ExportError when one is missing."""
    body = record.WhichOneof("body")
    keywords = list(record.header.tags)
    if body == "use_case":
        uc = record.use_case
        title = uc.title
        parts = [uc.summary, uc.description]
        keywords += list(uc.techniques) + list(uc.products)
        field = "summary"
    elif body == "lesson":
        ls = record.lesson
        title = ls.title
        parts = [
            ls.what_worked and f"Det som fungerade: {ls.what_worked}",
            ls.what_did_not and f"Det som inte fungerade: {ls.what_did_not}",
            ls.advice and f"Råd: {ls.advice}",
        ]
        field = "what_worked, what_did_not eller advice"
    elif body == "solution":
        sol = record.solution
        title = sol.title
        parts = [sol.summary, sol.how_to_adopt and f"Så inför ni den: {sol.how_to_adopt}"]
        if sol.solution_type:
            keywords.append(SOLUTION_TYPE.label(sol.solution_type).lower())
        field = "summary"
    elif body == "recommendation":
        rec = record.recommendation
        title = rec.title
        parts = [rec.summary, rec.body]
        field = "summary"
    else:
        raise ExportError(FORMAT, record.header.origin, record.header.id, "body")
    require(FORMAT, record, "title", title)
    description = "\n\n".join(p.strip() for p in parts if p and p.strip())
    require(FORMAT, record, field, description)
    keywords.append(RECORD_KIND.label(record.header.kind).lower())
    return title.strip(), description, list(dict.fromkeys(k.strip() for k in keywords if k.strip()))


def check(records: Iterable[R.Record], skipped: list[ExportError]) -> None:
    """The records :func:`graph` would leave out, into ``skipped``, without building it
    (what the catalog's export page lists)."""
    each(exportable(records, KINDS), _texts, skipped)


def _agent(g: Graph, names: _Names, origin: str) -> URIRef:
    agent = names.agent(origin)
    if (agent, RDF.type, FOAF.Agent) in g:
        return agent
    g.add((agent, RDF.type, FOAF.Agent))
    g.add((agent, FOAF.name, Literal(organisation_name(origin), lang="sv")))
    g.add((agent, DCTERMS.identifier, Literal(origin)))
    kind = ADMS_TYPE.LocalAuthority
    g.add((agent, DCTERMS.type, kind))
    g.add((kind, RDF.type, SKOS.Concept))
    g.add((kind, SKOS.prefLabel, Literal("Lokal myndighet", lang="sv")))
    g.add((kind, SKOS.inScheme, ADMS_SCHEME))
    return agent


def _theme(g: Graph, code: str) -> URIRef:
    theme = EU_THEME[code]
    if (theme, RDF.type, SKOS.Concept) not in g:
        g.add((theme, RDF.type, SKOS.Concept))
        g.add((theme, SKOS.prefLabel, Literal(THEME_LABELS[code], lang="sv")))
        g.add((theme, SKOS.inScheme, THEME_SCHEME))
    return theme


def _language(g: Graph, tag: str) -> URIRef | None:
    code = LANGUAGES.get((tag or "sv").split("-")[0].lower())
    if code is None:
        return None
    lang = EU_LANGUAGE[code]
    g.add((lang, RDF.type, DCTERMS.LinguisticSystem))
    return lang


def _contact(g: Graph, names: _Names, email: str, role: str, origin: str) -> URIRef | None:
    if not email:
        return None
    node = names.contact(origin, email, role)
    g.add((node, RDF.type, VCARD.Kind))
    g.add((node, RDF.type, VCARD.Organization))
    name = organisation_name(origin) + (f", {role}" if role else "")
    g.add((node, VCARD.fn, Literal(text(name))))
    g.add((node, VCARD.hasEmail, iri(f"mailto:{email}")))
    return node


def _dated(g: Graph, subject: URIRef, prop: URIRef, ms: int) -> None:
    text = iso_datetime(ms)
    if text:
        g.add((subject, prop, Literal(text, datatype=XSD.dateTime)))


def graph(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> Graph:
    """The catalogue of ``records`` (the exportable ones: PUBLIC, live, of :data:`KINDS`)
    published by ``publisher``; ExportError when a record lacks its title or text (or,
    with ``skipped``, the record left out: see :func:`samverka.exports.each`)."""
    chosen = exportable(records, KINDS)
    names = _Names(publisher)
    g = Graph()
    g.bind("dcat", DCAT)
    g.bind("dct", DCTERMS)
    g.bind("foaf", FOAF)
    g.bind("skos", SKOS)
    g.bind("vcard", VCARD)
    g.bind("spdx", SPDX)

    catalog = names.catalog(publisher.origin)
    g.add((catalog, RDF.type, DCAT.Catalog))
    who = organisation_name(publisher.origin)
    if publisher.origin == HUB_ORIGIN:
        title = "Samverka: kommunernas AI-användning"
        about = (
            "AI-rådets katalog över de AI-användningsfall, lärdomar, lösningar och "
            "rekommendationer som Sveriges kommuner delar öppet i Samverka, signerade av "
            "den kommun som skrev dem."
        )
    else:
        title = f"Samverka: {who}s AI-användning"
        about = (
            f"De AI-användningsfall, lärdomar och lösningar som {who} delar öppet i "
            "Samverka, signerade av kommunen."
        )
    g.add((catalog, DCTERMS.title, Literal(title, lang="sv")))
    g.add((catalog, DCTERMS.description, Literal(about, lang="sv")))
    g.add((catalog, DCTERMS.publisher, _agent(g, names, publisher.origin)))
    g.add((catalog, DCTERMS.license, URIRef(publisher.licence)))
    g.add((URIRef(publisher.licence), RDF.type, DCTERMS.LicenseDocument))
    g.add((catalog, DCAT.themeTaxonomy, THEME_SCHEME))
    g.add((THEME_SCHEME, RDF.type, SKOS.ConceptScheme))
    g.add((THEME_SCHEME, DCTERMS.title, Literal("Datatema", lang="sv")))
    swedish = _language(g, "sv")
    if swedish is not None:
        g.add((catalog, DCTERMS.language, swedish))
    if publisher.base_url:
        home = URIRef(publisher.base_url.rstrip("/") + "/")
        g.add((catalog, FOAF.homepage, home))
        g.add((home, RDF.type, FOAF.Document))
    _dated(g, catalog, DCTERMS.modified, publisher.generated_ms)

    def add(record: R.Record) -> None:
        texts = _texts(record)  # first: a record that fails adds nothing
        _dataset(g, names, publisher, catalog, record, texts)

    each(chosen, add, skipped)
    return g


def _dataset(
    g: Graph,
    names: _Names,
    publisher: Publisher,
    catalog: URIRef,
    record: R.Record,
    texts: tuple[str, str, list[str]],
) -> None:
    header = record.header
    title, description, keywords = texts
    lang = (header.language or "sv").split("-")[0].lower() or "sv"
    ds = names.dataset(header.origin, header.id)
    g.add((catalog, DCAT.dataset, ds))
    g.add((ds, RDF.type, DCAT.Dataset))
    g.add((ds, DCTERMS.title, Literal(text(title), lang=lang)))
    g.add((ds, DCTERMS.description, Literal(text(description), lang=lang)))
    g.add((ds, DCTERMS.identifier, Literal(f"{header.origin}/{header.id}")))
    g.add((ds, DCTERMS.publisher, _agent(g, names, header.origin)))
    body = record.WhichOneof("body")
    area = getattr(getattr(record, body), "service_area", 0) if body else 0
    for code in THEMES.get(area, ("GOVE",)):
        g.add((ds, DCAT.theme, _theme(g, code)))
    for word in keywords:
        g.add((ds, DCAT.keyword, Literal(text(word), lang=lang)))
    if area:
        g.add((ds, DCAT.keyword, Literal(SERVICE_AREA.label(area).lower(), lang="sv")))
    if body == "use_case" and record.use_case.status:
        label = USE_CASE_STATUS.label(record.use_case.status).lower()
        g.add((ds, DCAT.keyword, Literal(label, lang="sv")))
    _dated(g, ds, DCTERMS.issued, header.created_at_ms)
    _dated(g, ds, DCTERMS.modified, header.updated_at_ms)
    language = _language(g, header.language)
    if language is not None:
        g.add((ds, DCTERMS.language, language))
    page = publisher.record_url(header.origin, header.id)
    if page:
        g.add((ds, DCAT.landingPage, iri(page)))
        g.add((iri(page), RDF.type, FOAF.Document))
        _api_distribution(g, ds, publisher, header.origin, header.id)
    if body == "solution":
        _artifact_distribution(g, ds, record)
    part = getattr(record, body) if body else None
    role = getattr(part, "contact_role", "")
    email = getattr(part, "contact_email", "") or publisher.contact_email
    contact = _contact(g, names, email, role, header.origin)
    website = getattr(part, "website", "")
    if website:
        g.add((ds, FOAF.page, iri(website)))
        g.add((iri(website), RDF.type, FOAF.Document))
    if contact is not None:
        g.add((ds, DCAT.contactPoint, contact))


def _media_type(g: Graph, name: str) -> URIRef:
    media = URIRef(f"https://www.iana.org/assignments/media-types/{name}")
    g.add((media, RDF.type, DCTERMS.MediaType))
    return media


def _access(g: Graph, dist: URIRef, url: URIRef) -> None:
    g.add((dist, DCAT.accessURL, url))
    g.add((url, RDF.type, RDFS.Resource))  # what DCAT-AP's shapes check, with no inference


def _api_distribution(
    g: Graph, ds: URIRef, publisher: Publisher, origin: str, record_id: str
) -> None:
    """The record as JSON from the catalog's API (each field, the signature checked)."""
    dist = URIRef(f"{ds}-json")
    api = publisher.base_url.rstrip("/") + "/api" + record_path(origin, record_id)
    api = api.replace("/api/post/", "/api/records/", 1)
    g.add((ds, DCAT.distribution, dist))
    g.add((dist, RDF.type, DCAT.Distribution))
    g.add((dist, DCTERMS.title, Literal("Posten som JSON (Samverkas API)", lang="sv")))
    _access(g, dist, iri(api))
    g.add((dist, DCAT.mediaType, _media_type(g, "application/json")))
    fmt = FILE_TYPE.JSON
    g.add((dist, DCTERMS.format, fmt))
    g.add((fmt, RDF.type, DCTERMS.MediaTypeOrExtent))


def _artifact_distribution(g: Graph, ds: URIRef, record: R.Record) -> None:
    """A solution's artifact (its URL), with its SPDX licence and SHA-256 checksum."""
    sol = record.solution
    if not sol.url:
        return
    dist = URIRef(f"{ds}-artefakt")
    g.add((ds, DCAT.distribution, dist))
    g.add((dist, RDF.type, DCAT.Distribution))
    g.add((dist, DCTERMS.title, Literal(text(sol.title), lang="sv")))
    _access(g, dist, iri(sol.url))
    if sol.licence and re.fullmatch(r"[A-Za-z0-9.+-]+", sol.licence):
        licence = URIRef(f"http://spdx.org/licenses/{sol.licence}")
        g.add((dist, DCTERMS.license, licence))
        g.add((licence, RDF.type, DCTERMS.LicenseDocument))
    algorithm, _, value = sol.content_hash.partition(":")
    if algorithm == "sha256" and re.fullmatch(r"[0-9a-f]{64}", value):
        checksum = URIRef(f"{dist}-sha256")
        g.add((dist, SPDX.checksum, checksum))
        g.add((checksum, RDF.type, SPDX.Checksum))
        g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        g.add((SPDX.checksumAlgorithm_sha256, RDF.type, SPDX.ChecksumAlgorithm))
        g.add((checksum, SPDX.checksumValue, Literal(value, datatype=XSD.hexBinary)))


def turtle(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> bytes:
    """The catalogue as Turtle (UTF-8)."""
    return graph(records, publisher, skipped).serialize(format="turtle", encoding="utf-8")


def rdfxml(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> bytes:
    """The catalogue as RDF/XML (UTF-8), the syntax Sveriges dataportal harvests."""
    data: bytes = graph(records, publisher, skipped).serialize(format="xml", encoding="utf-8")
    return data


#: JSON-LD context: the vocabularies' prefixes, so the document reads like the Turtle.
CONTEXT = {
    "dcat": str(DCAT),
    "dct": str(DCTERMS),
    "foaf": str(FOAF),
    "skos": str(SKOS),
    "vcard": str(VCARD),
    "xsd": str(XSD),
}


def jsonld(
    records: Iterable[R.Record],
    publisher: Publisher,
    skipped: list[ExportError] | None = None,
) -> bytes:
    """The catalogue as JSON-LD (UTF-8)."""
    data: bytes = graph(records, publisher, skipped).serialize(
        format="json-ld", context=CONTEXT, encoding="utf-8", indent=2
    )
    return data
