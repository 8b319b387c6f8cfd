"""The catalog's Atom feeds: new and changed PUBLIC records, for feed readers.

==========================================  ================================================
``/flode.atom``                             everything (and any of the search filters but
                                            words: ``?area=it&county=20``)
``/flode/omrade/{område}.atom``             one service area (``elderly-care``; Swedish
                                            words work too: ``äldreomsorg``)
``/flode/kommun/{kommunkod}.atom``          one kommun's records (``0000``: AI-rådet)
``/flode/typ/{typ}.atom``                   one kind (``use-case``, ``lesson``,
                                            ``solution``, ``recommendation``)
``/flode/rekommendationer.atom``            AI-rådet's recommendations
==========================================  ================================================

Each feed holds the newest ``[web] feed_size`` records (by when their current version
was stored), PUBLIC and not retracted, read through
:meth:`~samverka_hub.web.catalog.Catalog.newest` (the catalog's one PUBLIC condition),
each with its signature checked again (:mod:`.atom` writes the document). Responses
carry an ``ETag`` and ``Last-Modified`` and answer ``If-None-Match`` /
``If-Modified-Since`` with 304, so a reader polling every few minutes costs a hash
compare. The pages link their feed (``<link rel="alternate"
type="application/atom+xml">``, :func:`page_feeds`).
"""

from __future__ import annotations

import email.utils
import hashlib
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from samverka.protocol.kommuner import HUB_ORIGIN, is_origin
from samverka.protocol.vocab import RECORD_KIND, SERVICE_AREA, UnknownTerm
from samverka.v1 import records_pb2

from samverka_hub.web import atom, present
from samverka_hub.web.catalog import BROWSABLE_KINDS, Filters
from samverka_hub.web.context import context
from samverka_hub.web.query import FilterQuery, query_string

router = APIRouter(include_in_schema=False)

RECOMMENDATION = records_pb2.RECORD_KIND_RECOMMENDATION
#: Feed readers poll: let caches in between keep a feed for a few minutes.
FEED_CACHE = "public, max-age=300"
TITLE = "Samverka"


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed: what it selects and how it presents itself."""

    meta: atom.FeedMeta
    filters: Filters


@dataclass(frozen=True, slots=True)
class FeedLink:
    """A feed as a page links it (``<link rel="alternate">`` and a visible link)."""

    title: str
    href: str


def everything() -> Feed:
    return Feed(
        atom.FeedMeta(
            path="/flode.atom",
            name="flode",
            title=f"{TITLE}: nya och ändrade poster",
            subtitle="Kommunernas öppna AI-användningsfall, lärdomar, lösningar och "
            "AI-rådets rekommendationer, signerade av den som skrev dem.",
            page="/sok",
        ),
        Filters(),
    )


def describe(f: Filters) -> list[str]:
    """The filters of a feed in Swedish, for its title."""
    return [
        *(present.KIND_PLURAL[k].lower() for k in f.kinds),
        *(present.area_label(a).lower() for a in f.areas),
        *(present.status_label(s).lower() for s in f.statuses),
        *(f"riskklass {present.risk_label(r).lower()}" for r in f.risks),
        *([f"teknik: {f.technique}"] if f.technique else []),
        *([present.county_name(f.county)] if f.county else []),
        *([present.kommun_name(f.kommun)] if f.kommun else []),
    ]


def filtered(f: Filters) -> Feed:
    """The feed of the search filters ``f`` (no words), at ``/flode.atom?…``."""
    if f.empty:
        return everything()
    chosen = ", ".join(describe(f))
    query = query_string(f)
    return Feed(
        atom.FeedMeta(
            path="/flode.atom" + query,
            name="flode" + query,
            title=f"{TITLE}: {chosen}",
            subtitle=f"Nya och ändrade öppna poster i Samverka: {chosen}.",
            page="/sok" + query,
        ),
        f,
    )


def by_area(area: int) -> Feed:
    key, label = SERVICE_AREA.key(area), present.area_label(area)
    return Feed(
        atom.FeedMeta(
            path=f"/flode/omrade/{key}.atom",
            name=f"flode/omrade/{key}",
            title=f"{TITLE}: {label}",
            subtitle=f"Nya och ändrade öppna poster inom {label.lower()} från Sveriges kommuner.",
            page=f"/sok?area={key}",
        ),
        Filters(areas=(area,)),
    )


def by_kommun(code: str) -> Feed:
    name = present.kommun_name(code)
    return Feed(
        atom.FeedMeta(
            path=f"/flode/kommun/{code}.atom",
            name=f"flode/kommun/{code}",
            title=f"{TITLE}: {name}",
            subtitle=f"Nya och ändrade öppna poster som {name} delar.",
            page=f"/kommun/{code}",
        ),
        Filters(kommun=code),
    )


def by_kind(kind: int) -> Feed:
    key, plural = RECORD_KIND.key(kind), present.KIND_PLURAL[kind]
    return Feed(
        atom.FeedMeta(
            path=f"/flode/typ/{key}.atom",
            name=f"flode/typ/{key}",
            title=f"{TITLE}: {plural.lower()}",
            subtitle=f"Nya och ändrade öppna poster av typen {present.kind_label(kind).lower()}.",
            page=f"/sok?kind={key}",
        ),
        Filters(kinds=(kind,)),
    )


def recommendations() -> Feed:
    return Feed(
        atom.FeedMeta(
            path="/flode/rekommendationer.atom",
            name="flode/rekommendationer",
            title=f"{TITLE}: AI-rådets rekommendationer",
            subtitle="Nya och ändrade rekommendationer från AI-rådet.",
            page=f"/sok?kind={RECORD_KIND.key(RECOMMENDATION)}&kommun={HUB_ORIGIN}",
        ),
        Filters(kinds=(RECOMMENDATION,), kommun=HUB_ORIGIN),
    )


def link(feed: Feed) -> FeedLink:
    return FeedLink(feed.meta.title, feed.meta.path)


def page_feeds(f: Filters | None = None) -> list[FeedLink]:
    """The feeds a page offers: the one matching its filters (none with words), then
    everything and the council's recommendations."""
    links: list[FeedLink] = []
    if f is not None and not f.empty and not f.text:
        links.append(link(filtered(f)))
    links += [link(everything()), link(recommendations())]
    return links


# -- routes ----------------------------------------------------------------------------


def _serve(request: Request, feed: Feed) -> Response:
    ctx = context(request)
    items = ctx.catalog.newest(feed.filters, limit=ctx.settings.feed_size)
    # Rendered once per list of items (the catalog hands out the same list until the
    # log or the directory moves): readers polling cost a lookup and a hash.
    key = ("atom", feed.meta.path)
    held = ctx.rendered.get(key)
    if held is not None and held[0] is items:
        body = held[1].encode("utf-8")
    else:
        # Links from the configured address, never the request's Host header.
        body = atom.render(feed.meta, items, base_url=ctx.settings.public_url)
        if len(ctx.rendered) >= 64:
            ctx.rendered.clear()
        ctx.rendered[key] = (items, body.decode("utf-8"))
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    newest = max((i.summary.timestamp_ms for i in items), default=atom.EMPTY_UPDATED_MS)
    headers = {
        "ETag": etag,
        "Last-Modified": email.utils.formatdate(newest // 1000, usegmt=True),
        "Cache-Control": FEED_CACHE,
    }
    if _not_modified(request, etag, newest // 1000):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=f"{atom.MEDIA_TYPE}; charset=utf-8", headers=headers)


def _not_modified(request: Request, etag: str, last_modified_s: int) -> bool:
    """RFC 9110 §13.1: If-None-Match wins; If-Modified-Since only without it."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return etag in tags or "*" in tags
    since = request.headers.get("if-modified-since")
    if since:
        try:
            parsed = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
        return parsed is not None and last_modified_s <= int(parsed.timestamp())
    return False


@router.get("/flode.atom")
def feed_all(request: Request, filters: FilterQuery) -> Response:
    return _serve(request, filtered(filters))


@router.get("/flode/rekommendationer.atom")
def feed_recommendations(request: Request) -> Response:
    return _serve(request, recommendations())


@router.get("/flode/omrade/{area}.atom")
def feed_area(request: Request, area: str) -> Response:
    try:
        value = SERVICE_AREA.parse(area[:80])
    except UnknownTerm:
        raise HTTPException(404, "Det finns inget verksamhetsområde med det namnet.") from None
    return _serve(request, by_area(value))


@router.get("/flode/kommun/{code}.atom")
def feed_kommun(request: Request, code: str) -> Response:
    if not is_origin(code):
        raise HTTPException(404, "Det finns ingen kommun med den kommunkoden.")
    return _serve(request, by_kommun(code))


@router.get("/flode/typ/{kind}.atom")
def feed_kind(request: Request, kind: str) -> Response:
    try:
        value = RECORD_KIND.parse(kind[:80])
    except UnknownTerm:
        value = 0
    if value not in BROWSABLE_KINDS:
        raise HTTPException(404, "Det finns ingen posttyp med det namnet.")
    return _serve(request, by_kind(value))
