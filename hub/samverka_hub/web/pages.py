"""The catalog's pages, rendered on the server (Swedish, no script).

==================================  =====================================================
``/``                               start: search box, the country at a glance, newest
``/sok``                            search and browse with filters; CSV of the same
``/post/{kommunkod}/{id}``          one record: fields, signature, lessons, adopters
``/kommun/{kommunkod}``             what a kommun shares and has adopted
``/tackning``                       the coverage picture of all 290 kommuner by län
``/beprovat``                       "Beprövat på andra håll": solutions in production in
                                    several kommuner, most adopted first
``/passar-er``                      "Passar er": choose a kommun (with a PUBLIC profile);
                                    what similar kommuner run, within its AI rules
``/om``                             what the catalog shows and how signatures work
==================================  =====================================================

``?for={kommunkod}`` on ``/sok`` and ``/post/…`` marks what breaks that kommun's
published AI rules (risk class, personal data, DPIA), with the reasons; a query
parameter rather than a cookie, so the pages stay cacheable and the choice shareable.

Routes are plain ``def`` functions: FastAPI runs them in its thread pool, so the
database reads never block the event loop the hub's gRPC servers share.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from samverka.protocol.aipolicy import describe_rules
from samverka.protocol.kommuner import counties, is_origin, kommuner
from samverka.protocol.validation import PROFILE_ID
from samverka.protocol.vocab import RECORD_KIND, RISK_CLASS, SERVICE_AREA, USE_CASE_STATUS
from samverka.records.profile import held_profile, profile_line
from samverka.v1 import records_pb2

from samverka_hub.web import feeds, present
from samverka_hub.web.catalog import (
    BROWSABLE_KINDS,
    Filters,
    PublicHoldings,
    RecordView,
    Retracted,
)
from samverka_hub.web.chart import layout
from samverka_hub.web.context import context
from samverka_hub.web.query import FilterQuery, parse_filters, query_string

router = APIRouter(include_in_schema=False)

#: ``?for=2029``: the kommun whose AI rules the page marks records against.
ForKommun = Annotated[str, Query(alias="for", max_length=8)]


def _for_kommun(value: str) -> str:
    """The ``for`` parameter as a kommunkod, or "" (unknown codes mark nothing)."""
    return value if value and is_origin(value) else ""


def _choices() -> dict[str, Any]:
    """The filter form's options."""
    county_list = sorted(counties().values(), key=lambda c: c.name)
    by_county: dict[str, list[object]] = {c.code: [] for c in county_list}
    for k in sorted(kommuner().values(), key=lambda k: k.short_name):
        by_county[k.county_code].append(k)
    return {
        "kind_terms": [t for t in RECORD_KIND if t.value in BROWSABLE_KINDS],
        "area_terms": sorted(SERVICE_AREA, key=lambda t: t.sv),
        "status_terms": list(USE_CASE_STATUS),
        "risk_terms": list(RISK_CLASS),
        "county_list": county_list,
        "kommuner_by_county": by_county,
    }


def chosen_filters(f: Filters) -> list[str]:
    """The filters in force, in Swedish: the collapsed filter panel says them, so a
    phone shows the results first and still tells what narrowed them."""
    return [
        *(present.kind_label(k) for k in f.kinds),
        *(present.area_label(a) for a in f.areas),
        *(present.status_label(s) for s in f.statuses),
        *(present.risk_label(r) for r in f.risks),
        *([f"teknik: {f.technique}"] if f.technique else []),
        *([present.county_name(f.county)] if f.county else []),
        *([present.kommun_name(f.kommun)] if f.kommun else []),
    ]


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    ctx = context(request)
    coverage = ctx.catalog.coverage()
    newest = ctx.catalog.search(Filters(), per_page=6)
    return ctx.render(request, "home.html", coverage=coverage, newest=newest)


@router.get("/sok", response_class=HTMLResponse)
def search(
    request: Request,
    filters: FilterQuery,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    for_kommun: ForKommun = "",
) -> Response:
    ctx = context(request)
    result = ctx.catalog.search(filters, page=page, per_page=ctx.settings.page_size)
    chosen_kommun = _for_kommun(for_kommun)
    marks = (
        ctx.catalog.rule_marks(chosen_kommun, [(s.origin, s.record_id) for s in result.items])
        if chosen_kommun
        else {}
    )
    keep = f"&for={chosen_kommun}" if chosen_kommun else ""
    return ctx.render(
        request,
        "search.html",
        filters=filters,
        chosen=chosen_filters(filters),
        clear_url="/sok" + query_string(Filters(text=filters.text)),
        result=result,
        techniques=ctx.catalog.techniques(),
        csv_url="/api/records.csv" + query_string(filters),
        feeds=feeds.page_feeds(filters),
        # A feed follows filters, not words (it lists the newest, not the best match).
        feed_url=None if filters.text else feeds.filtered(filters).meta.path,
        page_url=lambda n: "/sok" + query_string(filters, page=n) + keep,
        marks=marks,
        for_kommun=chosen_kommun,
        **_choices(),
    )


@router.get("/post/{origin}/{record_id}", response_class=HTMLResponse)
def record(request: Request, origin: str, record_id: str, for_kommun: ForKommun = "") -> Response:
    ctx = context(request)
    found = ctx.catalog.record(origin, record_id)
    if found is None:
        raise HTTPException(404, "Det finns ingen öppen post med den adressen.")
    if isinstance(found, Retracted):
        return ctx.render(request, "retracted.html", status_code=410, retracted=found)
    assert isinstance(found, RecordView)
    chosen_kommun = _for_kommun(for_kommun)
    marks = ctx.catalog.rule_marks(chosen_kommun, [(origin, record_id)]) if chosen_kommun else {}
    return ctx.render(
        request,
        "record.html",
        for_kommun=chosen_kommun,
        breaks=marks.get((origin, record_id), []),
        view=found,
        r=found.record,
        s=found.summary,
        feeds=[feeds.link(feeds.by_kommun(origin)), *feeds.page_feeds()],
    )


@router.get("/kommun/{code}", response_class=HTMLResponse)
def kommun(
    request: Request,
    code: str,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    for_kommun: ForKommun = "",
) -> Response:
    ctx = context(request)
    if not is_origin(code):
        raise HTTPException(404, "Det finns ingen kommun med den kommunkoden.")
    view = ctx.catalog.kommun(code, page=page, per_page=ctx.settings.page_size)
    chosen_kommun = _for_kommun(for_kommun)
    marks = (
        ctx.catalog.rule_marks(chosen_kommun, [(s.origin, s.record_id) for s in view.shared.items])
        if chosen_kommun
        else {}
    )
    keep = f"&for={chosen_kommun}" if chosen_kommun else ""
    coverage = ctx.catalog.coverage()
    row = next((k for k in coverage.kommuner if k.code == code), None)
    held = ctx.catalog.store.get_record(code, PROFILE_ID)
    profile = (
        present.profile_rows(held.record.kommun_profile)
        if held is not None
        and not held.tombstone
        and held.visibility == records_pb2.VISIBILITY_PUBLIC  # the catalog is public
        and held.record.HasField("kommun_profile")
        else None
    )
    return ctx.render(
        request,
        "kommun.html",
        view=view,
        row=row,
        profile=profile,
        marks=marks,
        for_kommun=chosen_kommun,
        page_url=lambda n: f"/kommun/{code}?page={n}{keep}",
        feed_url=feeds.by_kommun(code).meta.path,
        feeds=[feeds.link(feeds.by_kommun(code)), *feeds.page_feeds()],
    )


@router.get("/tackning", response_class=HTMLResponse)
def coverage(request: Request, area: str = "") -> Response:
    ctx = context(request)
    area_value = parse_filters(area=[area]).areas[0] if area.strip() else 0
    cov = ctx.catalog.coverage()
    return ctx.render_from(
        cov,
        ("coverage", area_value),
        request,
        "coverage.html",
        coverage=cov,
        chart=layout(cov, area=area_value),
        area_terms=sorted(SERVICE_AREA, key=lambda t: t.sv),
        area=area_value,
        feeds=[
            *([feeds.link(feeds.by_area(area_value))] if area_value else []),
            *feeds.page_feeds(),
        ],
    )


@router.get("/beprovat", response_class=HTMLResponse)
def proven(
    request: Request,
    area: str = "",
    min_kommuner: Annotated[int, Query(alias="min", ge=1, le=290)] = 2,
    for_kommun: ForKommun = "",
) -> Response:
    ctx = context(request)
    areas = parse_filters(area=[area]).areas if area.strip() else ()
    found = ctx.catalog.proven(min_kommuner=min_kommuner, areas=areas)
    chosen_kommun = _for_kommun(for_kommun)
    marks = (
        ctx.catalog.rule_marks(
            chosen_kommun, [(p.solution.origin, p.solution.record_id) for p in found]
        )
        if chosen_kommun
        else {}
    )
    return ctx.render(
        request,
        "proven.html",
        proven=found,
        marks=marks,
        for_kommun=chosen_kommun,
        profiled=ctx.catalog.profiled_kommuner(),
        area_terms=sorted(SERVICE_AREA, key=lambda t: t.sv),
        area=areas[0] if areas else 0,
        min_kommuner=min_kommuner,
    )


@router.get("/passar-er", response_class=HTMLResponse)
def suits(request: Request, kommun: Annotated[str, Query(max_length=8)] = "") -> Response:
    """ "Passar er": a plain GET form (no script) to choose a kommun with a PUBLIC
    profile, then what similar kommuner run, ranked as ``samverka passar`` ranks."""
    ctx = context(request)
    choices = ctx.catalog.profiled_kommuner()
    code = kommun.strip()
    chosen = code if code in choices else ""
    profile = None
    if chosen:
        held = held_profile(PublicHoldings(ctx.catalog.store), chosen)
        if held is not None:
            profile = {
                "line": profile_line(held),
                "rules": [r[:1].upper() + r[1:] for r in describe_rules(held.ai_rules)]
                if held.HasField("ai_rules")
                else [],
            }
    return ctx.render(
        request,
        "passar.html",
        choices=choices,
        asked=code,
        chosen=chosen,
        profile=profile,
        found=ctx.catalog.suits(chosen) if chosen else [],
        status_code=200 if chosen or not code else 404,
    )


@router.get("/om", response_class=HTMLResponse)
def about(request: Request) -> Response:
    ctx = context(request)
    return ctx.render(request, "about.html")
