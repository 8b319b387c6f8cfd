"""publiccode.yml (0.4) for the solutions that are software (solution type *code*).

One YAML document per solution, for the root of its repository or for a software
catalogue (Developers Italia's crawler, the EU's and Sweden's lists of public code).
What each key comes from:

- ``name``: the title; ``url``: the solution's URL (its repository; required);
  ``landingURL``: its page in the web catalog (with a base URL);
- ``platforms``: the solution's platforms (else tags such as ``web``, ``linux``; none
  is an error); ``softwareType``: a tag such as ``standalone/web``, else
  ``standalone/other``; ``developmentStatus``: the solution's development status, else
  a tag (``stable``, ...), else the use cases in the export that reuse it (in
  production: *stable*, pilot: *beta*, idea: *development*, ended: *obsolete*), else
  an error; ``softwareVersion``: its version, with the date of the record's current
  version as ``releaseDate`` (required with a version; a record has no release date);
- ``categories``: from the service area (:data:`CATEGORIES`);
- ``description.<language>``: ``shortDescription`` the summary (at most 150
  characters), ``longDescription`` the summary, intended purpose, models and how to
  adopt it (at least 150
  characters, as the standard asks; shorter is an error), ``documentation`` the first
  link;
- ``legal.license``: the SPDX licence (required); ``legal.mainCopyrightOwner`` and
  ``legal.repoOwner``: the kommun;
- ``maintenance.type``: the solution's maintenance type, else *internal*. The
  standard's ``contacts`` must be named persons, which Samverka never records (records
  name roles): add them in the repository's own copy;
- ``localisation``: the record's language, ``localisationReady: false``;
- ``usedBy``: the kommuner whose PUBLIC adoptions in the export name it.

The intended purpose and the AI models go into ``longDescription``; the AI system's
provider has no key in publiccode.yml and is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import yaml

from samverka.exports import (
    ExportError,
    Publisher,
    exportable,
    iso_date,
    organisation_name,
    require,
)
from samverka.protocol.vocab import DEVELOPMENT_STATUS, MAINTENANCE_TYPE
from samverka.v1 import records_pb2

R = records_pb2
FORMAT = "publiccode.yml"
VERSION = "0.4"
SHORT_MAX = 150
LONG_MIN = 150
LONG_MAX = 10_000

#: Tags read as platforms (publiccode.yml's predefined values).
PLATFORMS = ("web", "windows", "mac", "linux", "ios", "android")
SOFTWARE_TYPES = (
    "standalone/mobile",
    "standalone/iot",
    "standalone/desktop",
    "standalone/web",
    "standalone/backend",
    "standalone/other",
    "addon",
    "library",
    "configurationFiles",
)
DEVELOPMENT_STATUSES = ("concept", "development", "beta", "stable", "obsolete")
#: Use case status -> developmentStatus (the most advanced use of it wins).
_STATUS_OF_USE = {
    R.USE_CASE_STATUS_PRODUCTION: "stable",
    R.USE_CASE_STATUS_PILOT: "beta",
    R.USE_CASE_STATUS_IDEA: "development",
    R.USE_CASE_STATUS_ENDED: "obsolete",
}
_STATUS_ORDER = ("stable", "beta", "development", "obsolete")

#: Service area -> publiccode.yml categories.
CATEGORIES: dict[int, tuple[str, ...]] = {
    R.SERVICE_AREA_ADMINISTRATION: ("document-management", "workflow-management"),
    R.SERVICE_AREA_ELDERLY_CARE: ("resource-management",),
    R.SERVICE_AREA_SOCIAL_SERVICES: ("workflow-management",),
    R.SERVICE_AREA_DISABILITY_SUPPORT: ("resource-management",),
    R.SERVICE_AREA_PRESCHOOL: ("educational-content",),
    R.SERVICE_AREA_SCHOOL: ("educational-content", "learning-management-system"),
    R.SERVICE_AREA_ADULT_EDUCATION: ("educational-content", "learning-management-system"),
    R.SERVICE_AREA_CULTURE_LEISURE: ("event-management",),
    R.SERVICE_AREA_URBAN_PLANNING: ("geographic-information-systems",),
    R.SERVICE_AREA_ENVIRONMENT_HEALTH: ("data-collection",),
    R.SERVICE_AREA_TECHNICAL_SERVICES: ("facility-management",),
    R.SERVICE_AREA_CITIZEN_SERVICE: ("customer-service-and-support",),
    R.SERVICE_AREA_HR: ("hr",),
    R.SERVICE_AREA_FINANCE: ("accounting", "financial-reporting"),
    R.SERVICE_AREA_IT: ("it-management",),
    R.SERVICE_AREA_COMMUNICATION: ("communications",),
    R.SERVICE_AREA_BUSINESS_DEVELOPMENT: ("business-intelligence",),
    R.SERVICE_AREA_PUBLIC_SAFETY: ("compliance-management",),
}


def is_software(record: R.Record) -> bool:
    return (
        record.WhichOneof("body") == "solution"
        and record.solution.solution_type == R.SOLUTION_TYPE_CODE
    )


def software(records: Iterable[R.Record]) -> list[R.Record]:
    """The exportable solutions that are software."""
    return [r for r in exportable(records, (R.RECORD_KIND_SOLUTION,)) if is_software(r)]


def _tags(record: R.Record) -> list[str]:
    return [t.strip().lower() for t in record.header.tags if t.strip()]


def _status(record: R.Record, context: Sequence[R.Record]) -> str:
    if record.solution.development_status:
        return DEVELOPMENT_STATUS.key(record.solution.development_status)
    tagged = [t for t in _tags(record) if t in DEVELOPMENT_STATUSES]
    if tagged:
        return tagged[0]
    key = (record.header.origin, record.header.id)
    seen: set[str] = set()
    for other in exportable(context, (R.RECORD_KIND_USE_CASE,)):
        uc = other.use_case
        refs = {(r.origin or other.header.origin, r.id) for r in uc.reuses}
        if key in refs or _names(record, other):
            status = _STATUS_OF_USE.get(uc.status)
            if status:
                seen.add(status)
    for status in _STATUS_ORDER:
        if status in seen:
            return status
    raise ExportError(
        FORMAT,
        record.header.origin,
        record.header.id,
        "developmentStatus",
        "ge posten en tagg som stable, beta eller development, eller koppla den till "
        "ett användningsfall",
    )


def _names(solution: R.Record, use_case: R.Record) -> bool:
    """Whether the solution lists the use case among its own."""
    return any(
        (r.origin or solution.header.origin, r.id) == (use_case.header.origin, use_case.header.id)
        for r in solution.solution.use_cases
    )


def document(
    record: R.Record, publisher: Publisher, context: Sequence[R.Record] = ()
) -> dict[str, object]:
    """The publiccode.yml of one software solution, as a mapping; ``context`` is the rest
    of the export (use cases that reuse it, adoptions of it)."""
    header, sol = record.header, record.solution
    if not is_software(record):
        raise ExportError(
            FORMAT, header.origin, header.id, "solution_type", "bara lösningar av typen kod"
        )
    name = require(FORMAT, record, "title", sol.title)
    url = require(FORMAT, record, "url", sol.url, "adressen till källkodens förråd")
    licence = require(FORMAT, record, "licence", sol.licence, "en SPDX-licens, t.ex. EUPL-1.2")
    summary = require(FORMAT, record, "summary", sol.summary)
    tags = _tags(record)
    platforms = [p.strip() for p in sol.platforms if p.strip()] or [
        t for t in tags if t in PLATFORMS
    ]
    if not platforms:
        raise ExportError(
            FORMAT,
            header.origin,
            header.id,
            "platforms",
            "ange plattformar (web, windows, mac, linux, ios, android)",
        )
    software_type = next((t for t in tags if t in SOFTWARE_TYPES), "standalone/other")
    short = summary if len(summary) <= SHORT_MAX else summary[: SHORT_MAX - 1].rstrip() + "…"
    long_parts = [summary]
    if sol.intended_purpose.strip():
        long_parts.append(f"Avsett ändamål: {sol.intended_purpose.strip()}")
    if sol.models:
        names = ", ".join(m.name + (f" {m.version}" if m.version else "") for m in sol.models)
        long_parts.append(f"AI-modeller: {names}.")
    if sol.how_to_adopt.strip():
        long_parts.append(f"Så inför ni den: {sol.how_to_adopt.strip()}")
    long = "\n\n".join(long_parts)[:LONG_MAX]
    if len(long) < LONG_MIN:
        raise ExportError(
            FORMAT,
            header.origin,
            header.id,
            "summary, intended_purpose och how_to_adopt",
            f"longDescription måste ha minst {LONG_MIN} tecken, posten ger {len(long)}",
        )
    lang = (header.language or "sv").split("-")[0].lower() or "sv"
    description: dict[str, object] = {"shortDescription": short, "longDescription": long}
    links = [link.url for link in sol.links if link.url]
    if links:
        description["documentation"] = links[0]
    features = [t for t in tags if t not in PLATFORMS + SOFTWARE_TYPES + DEVELOPMENT_STATUSES]
    if features:
        description["features"] = features
    owner = organisation_name(header.origin)
    out: dict[str, object] = {
        "publiccodeYmlVersion": VERSION,
        "name": name,
        "url": url,
    }
    page = publisher.record_url(header.origin, header.id)
    if page:
        out["landingURL"] = page
    out["platforms"] = platforms
    categories = list(CATEGORIES.get(sol.service_area, ()))
    if categories:
        out["categories"] = categories
    users = _adopters(record, context)
    if users:
        out["usedBy"] = users
    if sol.software_version:
        out["softwareVersion"] = sol.software_version
        # Required with a version; a record has no release date of its own, so the
        # date the kommun published this version of the record stands in for it.
        released = iso_date(header.updated_at_ms)
        if released:
            out["releaseDate"] = released
    out["developmentStatus"] = _status(record, context)
    out["softwareType"] = software_type
    out["description"] = {lang: description}
    out["legal"] = {"license": licence, "mainCopyrightOwner": owner, "repoOwner": owner}
    maintenance = MAINTENANCE_TYPE.key(sol.maintenance_type) if sol.maintenance_type else "internal"
    out["maintenance"] = {"type": maintenance}
    out["localisation"] = {"localisationReady": False, "availableLanguages": [lang]}
    return out


def _adopters(record: R.Record, context: Sequence[R.Record]) -> list[str]:
    key = (record.header.origin, record.header.id)
    names = [
        organisation_name(a.header.origin)
        for a in exportable(context, (R.RECORD_KIND_ADOPTION,))
        if (a.adoption.solution.origin or a.header.origin, a.adoption.solution.id) == key
        and a.header.origin != record.header.origin
    ]
    return sorted(set(names))


def render(record: R.Record, publisher: Publisher, context: Sequence[R.Record] = ()) -> bytes:
    """One solution's publiccode.yml (UTF-8 YAML)."""
    text = yaml.safe_dump(
        document(record, publisher, context),
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=100,
    )
    return text.encode("utf-8")


def file_name(record: R.Record) -> str:
    """``<origin>-<id>.publiccode.yml`` (ids are checked to be file-safe by validation)."""
    return f"{record.header.origin}-{record.header.id}.publiccode.yml"
