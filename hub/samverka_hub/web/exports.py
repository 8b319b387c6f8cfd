"""The catalog's open data: every PUBLIC record in the public sector's formats.

==============================================  =============================================
``/export``                                     the page listing them ("Öppna data")
``/export/dcat.rdf``                            DCAT-AP-SE catalogue, RDF/XML (Sveriges
                                                dataportal harvests this one)
``/export/dcat.ttl``, ``/export/dcat.jsonld``   the same as Turtle and JSON-LD
``/export/atrs.json``                           ATRS records of every use case
``/export/atrs/{kod}/{id}.json``                one use case's ATRS record
``/export/eurocities.csv``, ``.json``           Eurocities algorithm register
``/export/publiccode/{kod}/{id}.yml``           a code solution's publiccode.yml
``/export/eu-databas.json``                     drafts of the EU database entries (HIGH risk)
``/export/eu-databas/{kod}/{id}.json``, ``.md`` one draft, as JSON and for people
==============================================  =============================================

The formats are :mod:`samverka.exports`'; the records come from
:meth:`~samverka_hub.web.catalog.Catalog.public_records` (PUBLIC, not retracted, not
erased: the catalog's one PUBLIC condition), the newest ``[web] max_export_rows`` of
them, as the CSV of search results. The collections leave out a record a kommun left
incomplete for a format (the page lists them, with the field), so one record does not
take a whole register down; a single record's URL answers 422 naming the field.

Every collection is built once per log position, and at most once per five minutes
(:class:`BuiltCache`); every answer carries an ``ETag``
and ``Last-Modified`` and answers ``If-None-Match`` / ``If-Modified-Since`` with 304,
as the feeds do. Links are built from ``[web] public_url``, never from the request's
Host header.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from samverka.exports import (
    ExportError,
    Publisher,
    atrs,
    dcat,
    each,
    eudatabase,
    eurocities,
    publiccode,
)
from samverka.protocol.kommuner import HUB_ORIGIN, is_origin
from samverka.v1 import records_pb2

from samverka_hub.web.context import WebContext, context
from samverka_hub.web.feeds import _not_modified

R = records_pb2
router = APIRouter(include_in_schema=False)

EXPORT_CACHE = "public, max-age=300"
RDFXML = "application/rdf+xml; charset=utf-8"
TURTLE = "text/turtle; charset=utf-8"
JSONLD = "application/ld+json; charset=utf-8"
JSON = "application/json; charset=utf-8"
YAML = "application/yaml; charset=utf-8"
CSV = "text/csv; charset=utf-8; header=present"
MARKDOWN = "text/markdown; charset=utf-8"
USE_CASE = (R.RECORD_KIND_USE_CASE,)
#: What the collections read: the datasets' kinds and the adoptions (publiccode usedBy).
ALL_KINDS = (*dcat.KINDS, R.RECORD_KIND_ADOPTION)


@dataclass(frozen=True, slots=True)
class Built:
    """An export's bytes, the records it left out and its newest change."""

    body: bytes
    skipped: tuple[ExportError, ...]
    newest_ms: int


@dataclass(frozen=True, slots=True)
class ExportLink:
    """A per-record export as a record page links it."""

    label: str
    href: str
    media_type: str


def publisher(ctx: WebContext, records: Sequence[R.Record] = ()) -> Publisher:
    """AI-rådet as publisher, links under ``[web] public_url``; the catalogue's
    modification time is its newest record's."""
    return Publisher(HUB_ORIGIN, base_url=ctx.settings.public_url, generated_ms=_newest(records))


def _records(ctx: WebContext) -> list[R.Record]:
    return ctx.catalog.public_records(ALL_KINDS, limit=ctx.settings.max_export_rows)


def _newest(records: Sequence[R.Record]) -> int:
    return max((r.header.updated_at_ms for r in records), default=0)


class BuiltCache:
    """Exports built from one list of records (the catalog hands out the same list
    object until the log moves), kept on the app's state.

    A catalogue of thousands of records takes seconds to build (rdflib: ~5 s for
    2,000 records in Turtle on a loaded 2-core machine), so after the log moves an
    export is rebuilt at most once per :data:`REBUILD_SECONDS` (the previous one is
    served meanwhile, as caches may for ``max-age``), and one build at a time: a burst
    of requests after a publish costs one build, not one per request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        #: name -> (the record list it was built from, when, what)
        self.held: dict[str, tuple[object, float, Built]] = {}


#: The least time between two builds of one export once the log moved (seconds).
REBUILD_SECONDS = 300.0


def _cache(request: Request) -> BuiltCache:
    cache = getattr(request.app.state, "exports", None)
    if not isinstance(cache, BuiltCache):
        cache = request.app.state.exports = BuiltCache()
    return cache


def _build(
    request: Request, name: str, make: Callable[[list[R.Record], list[ExportError]], bytes]
) -> Built:
    """``make(records, skipped)`` over the current PUBLIC records (see BuiltCache)."""
    cache = _cache(request)
    records = _records(context(request))

    def fresh() -> Built | None:
        held = cache.held.get(name)
        if held is not None and (held[0] is records or cache.clock() - held[1] < REBUILD_SECONDS):
            return held[2]
        return None

    kept = fresh()
    if kept is not None:
        return kept
    with cache.lock:
        kept = fresh()  # built by another request while this one waited
        if kept is not None:
            return kept
        now = cache.clock()
        skipped: list[ExportError] = []
        built = Built(make(records, skipped), tuple(skipped), _newest(records))
        cache.held[name] = (records, now, built)
        return built


def _answer(request: Request, body: bytes, media_type: str, newest_ms: int) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": EXPORT_CACHE}
    if newest_ms > 0:
        headers["Last-Modified"] = email.utils.formatdate(newest_ms // 1000, usegmt=True)
    if _not_modified(request, etag, newest_ms // 1000 if newest_ms > 0 else -1):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _collection(
    request: Request,
    name: str,
    media_type: str,
    make: Callable[[list[R.Record], Publisher, list[ExportError]], bytes],
) -> Response:
    ctx = context(request)
    built = _build(
        request, name, lambda records, skipped: make(records, publisher(ctx, records), skipped)
    )
    return _answer(request, built.body, media_type, built.newest_ms)


def _one(request: Request, origin: str, record_id: str) -> R.Record:
    if not is_origin(origin) or len(record_id) > 128:
        raise HTTPException(404, "Det finns ingen sådan post.")
    record = context(request).catalog.public_record(origin, record_id)
    if record is None:
        raise HTTPException(404, "Det finns ingen öppen post med den adressen.")
    return record


def _render_one(
    request: Request, record: R.Record, media_type: str, make: Callable[[], bytes]
) -> Response:
    try:
        body = make()
    except ExportError as e:
        raise HTTPException(422, f"{e} – {e.hint}") from None
    return _answer(request, body, media_type, record.header.updated_at_ms)


# -- the collections ----------------------------------------------------------------------


@router.get("/export/dcat.rdf")
def dcat_rdfxml(request: Request) -> Response:
    return _collection(request, "dcat.rdf", RDFXML, dcat.rdfxml)


@router.get("/export/dcat.ttl")
def dcat_turtle(request: Request) -> Response:
    return _collection(request, "dcat.ttl", TURTLE, dcat.turtle)


@router.get("/export/dcat.jsonld")
def dcat_jsonld(request: Request) -> Response:
    return _collection(request, "dcat.jsonld", JSONLD, dcat.jsonld)


@router.get("/export/atrs.json")
def atrs_all(request: Request) -> Response:
    return _collection(request, "atrs.json", JSON, atrs.render)


@router.get("/export/eurocities.csv")
def eurocities_csv(request: Request) -> Response:
    return _collection(request, "eurocities.csv", CSV, eurocities.render_csv)


@router.get("/export/eurocities.json")
def eurocities_json(request: Request) -> Response:
    return _collection(request, "eurocities.json", JSON, eurocities.render_json)


@router.get("/export/eu-databas.json")
def eu_database_all(request: Request) -> Response:
    return _collection(request, "eu-databas.json", JSON, eudatabase.render_all)


# -- one record ----------------------------------------------------------------------------


@router.get("/export/atrs/{origin}/{record_id}.json")
def atrs_one(request: Request, origin: str, record_id: str) -> Response:
    record = _one(request, origin, record_id)
    if record.WhichOneof("body") != "use_case":
        raise HTTPException(404, "ATRS finns bara för användningsfall.")
    pub = publisher(context(request))
    return _render_one(request, record, JSON, lambda: atrs.render_one(record, pub))


@router.get("/export/publiccode/{origin}/{record_id}.yml")
def publiccode_one(request: Request, origin: str, record_id: str) -> Response:
    record = _one(request, origin, record_id)
    if not publiccode.is_software(record):
        raise HTTPException(404, "publiccode.yml finns bara för lösningar av typen kod.")
    ctx = context(request)
    pub = publisher(ctx)
    records = _records(ctx)
    return _render_one(request, record, YAML, lambda: publiccode.render(record, pub, records))


def _eu_record(request: Request, origin: str, record_id: str) -> R.Record:
    record = _one(request, origin, record_id)
    if record.WhichOneof("body") != "use_case" or record.use_case.risk_class != R.RISK_CLASS_HIGH:
        raise HTTPException(404, "Utkast till EU-databasen finns bara för AI med hög risk.")
    return record


@router.get("/export/eu-databas/{origin}/{record_id}.json")
def eu_database_one(request: Request, origin: str, record_id: str) -> Response:
    record = _eu_record(request, origin, record_id)
    pub = publisher(context(request))
    return _render_one(request, record, JSON, lambda: eudatabase.render(record, pub))


@router.get("/export/eu-databas/{origin}/{record_id}.md")
def eu_database_markdown(request: Request, origin: str, record_id: str) -> Response:
    record = _eu_record(request, origin, record_id)
    pub = publisher(context(request))
    return _render_one(
        request, record, MARKDOWN, lambda: eudatabase.markdown(record, pub).encode("utf-8")
    )


# -- links ---------------------------------------------------------------------------------


def record_exports(record: R.Record) -> list[ExportLink]:
    """The per-record exports a record page links (a template global)."""
    origin, record_id = record.header.origin, record.header.id
    links: list[ExportLink] = []
    if record.WhichOneof("body") == "use_case":
        links.append(
            ExportLink("ATRS (JSON)", f"/export/atrs/{origin}/{record_id}.json", "application/json")
        )
        if record.use_case.risk_class == R.RISK_CLASS_HIGH:
            base = f"/export/eu-databas/{origin}/{record_id}"
            links += [
                ExportLink("Utkast till EU-databasen (JSON)", base + ".json", "application/json"),
                ExportLink("Utkast till EU-databasen (läsbart)", base + ".md", "text/markdown"),
            ]
    elif publiccode.is_software(record):
        links.append(
            ExportLink(
                "publiccode.yml",
                f"/export/publiccode/{origin}/{record_id}.yml",
                "application/yaml",
            )
        )
    return links


@router.get("/export", response_class=HTMLResponse)
def export_page(request: Request) -> Response:
    ctx = context(request)
    records = _records(ctx)
    software = publiccode.software(records)
    high = eudatabase.high_risk(records)
    pub = publisher(ctx, records)

    def checked(name: str, check: Callable[[list[R.Record], list[ExportError]], object]) -> Built:
        # The records each collection leaves out, without serializing it (a catalogue of
        # thousands of records takes seconds to write; checking them, a fraction).
        return _build(request, "skipped:" + name, lambda r, s: (check(r, s), b"")[1])

    skipped = {
        "DCAT-AP-SE": checked("dcat", dcat.check).skipped,
        "ATRS": checked("atrs", lambda r, s: atrs.collection(r, pub, s)).skipped,
        "Eurocities": checked("eurocities", lambda r, s: eurocities.rows(r, pub, s)).skipped,
        "EU-databasen": checked(
            "eu", lambda r, s: each(eudatabase.high_risk(r), lambda x: eudatabase.draft(x, pub), s)
        ).skipped,
    }
    return ctx.render(
        request,
        "export.html",
        title="Öppna data",
        software=software,
        high_risk=high,
        skipped=skipped,
        limit=ctx.settings.max_export_rows,
    )
