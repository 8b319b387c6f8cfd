"""How the catalog says things in Swedish: labels, numbers, dates, links (pure).

Every enum label comes from :mod:`samverka.protocol.vocab` (one place for every word people
read); this module adds what only pages need: plural headings, dates, amounts in
kronor, record URLs, and the check that a link is http(s) before it becomes an
``href`` (validation already refuses other schemes; the catalog does not rely on
that alone).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlsplit

from samverka.protocol.aipolicy import describe_rules
from samverka.protocol.kommuner import HUB_ORIGIN, counties, kommuner
from samverka.protocol.vocab import (
    KOMMUN_GROUP,
    LESSON_CATEGORY,
    POPULATION_BAND,
    RECORD_KIND,
    RISK_CLASS,
    SERVICE_AREA,
    SOLUTION_TYPE,
    USE_CASE_STATUS,
    bool_label,
)
from samverka.v1 import records_pb2

R = records_pb2
STOCKHOLM = dt.timezone(dt.timedelta(hours=1))  # dates only: a day's edge is good enough

#: Headings for lists of each kind.
KIND_PLURAL: dict[int, str] = {
    R.RECORD_KIND_USE_CASE: "Användningsfall",
    R.RECORD_KIND_LESSON: "Lärdomar",
    R.RECORD_KIND_SOLUTION: "Lösningar",
    R.RECORD_KIND_RECOMMENDATION: "Rekommendationer",
    R.RECORD_KIND_ADOPTION: "Införanden",
    R.RECORD_KIND_KOMMUN_PROFILE: "Kommunprofiler",
}


def profile_rows(profile: records_pb2.KommunProfile) -> list[tuple[str, str]]:
    """A kommun profile as (label, value) rows in Swedish, for the kommun page."""
    rows = [
        ("Storlek", POPULATION_BAND.label(profile.population_band)),
        ("Kommungrupp (SKR)", KOMMUN_GROUP.label(profile.kommun_group)),
    ]
    if profile.interests:
        rows.append(("Söker lösningar inom", ", ".join(area_label(a) for a in profile.interests)))
    if profile.contact_roles:
        rows.append(("Kontaktroller", ", ".join(profile.contact_roles)))
    rows += [
        ("AI-regler", line[:1].upper() + line[1:]) for line in describe_rules(profile.ai_rules)
    ]
    if profile.note:
        rows.append(("Anteckning", profile.note))
    return rows


def kind_label(value: int) -> str:
    return RECORD_KIND.label(value)


def area_label(value: int) -> str:
    return SERVICE_AREA.label(value)


def band_label(value: int) -> str:
    return POPULATION_BAND.label(value)


def group_label(value: int) -> str:
    return KOMMUN_GROUP.label(value)


def area_key(value: int) -> str:
    return SERVICE_AREA.key(value)


def status_label(value: int) -> str:
    return USE_CASE_STATUS.label(value)


def risk_label(value: int) -> str:
    return RISK_CLASS.label(value)


def category_label(value: int) -> str:
    return LESSON_CATEGORY.label(value)


def solution_type_label(value: int) -> str:
    return SOLUTION_TYPE.label(value)


def yes_no(value: bool) -> str:
    return bool_label(value)


def kommun_name(code: str) -> str:
    """The name people read for an origin ("AI-rådet" for the council's hub)."""
    if code == HUB_ORIGIN:
        return "AI-rådet"
    k = kommuner().get(code)
    return k.short_name if k else code


def county_of(code: str) -> str:
    """The län code of a kommun ("" for the council and unknown codes)."""
    k = kommuner().get(code)
    return k.county_code if k else ""


def county_name(code: str) -> str:
    c = counties().get(code)
    return c.name if c else code


def date(ms: int) -> str:
    """Unix ms → "2025-06-15" (Swedish date style), "" for 0."""
    if ms <= 0:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, STOCKHOLM).strftime("%Y-%m-%d")


def sek(amount: int) -> str:
    """12000 → "12 000 kr" (a non-breaking space between thousands)."""
    return f"{amount:,}".replace(",", "\u00a0") + "\u00a0kr"


def number(value: float) -> str:
    """1200.0 → "1 200"; 2.5 → "2,5" (Swedish decimal comma)."""
    if value == int(value):
        return f"{int(value):,}".replace(",", "\u00a0")
    return f"{value:,.2f}".rstrip("0").replace(",", "\u00a0").replace(".", ",")


def percent(share: float) -> str:
    return f"{round(share * 100)}\u00a0%"


def record_path(origin: str, record_id: str) -> str:
    return f"/post/{quote(origin, safe='')}/{quote(record_id, safe='')}"


def signed_entry_path(origin: str, record_id: str) -> str:
    return f"/api/records/{quote(origin, safe='')}/{quote(record_id, safe='')}/signed-entry"


def safe_href(url: str) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host, else None (shown as text)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()
