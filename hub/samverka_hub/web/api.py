"""The catalog's JSON API (``/api``), described at ``/api/openapi.json``.

The same data as the pages, PUBLIC records only, from the same
:class:`~samverka_hub.web.catalog.Catalog`. Enum values are the vocabularies'
stable keys (``elderly-care``, ``production``) with the Swedish label beside them;
a record's full content is its protobuf JSON form (``samverka.v1.Record``, field
names as in the .proto files). The signed entry of a record's current version can
be downloaded as it was signed, to verify it independently.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, Field
from samverka.protocol.kommuner import is_origin
from samverka.protocol.vocab import (
    KOMMUN_GROUP,
    POPULATION_BAND,
    RECORD_KIND,
    RISK_CLASS,
    SERVICE_AREA,
    USE_CASE_STATUS,
)

from samverka_hub.stats import Coverage
from samverka_hub.web import present
from samverka_hub.web.catalog import RecordView, Retracted, Summary
from samverka_hub.web.context import context
from samverka_hub.web.export import to_csv
from samverka_hub.web.query import FilterQuery, parse_filters

router = APIRouter(prefix="/api", tags=["katalog"])


class Term(BaseModel):
    """An enum value: its stable key and its Swedish label ("" / "" when unset)."""

    key: str
    label: str


class RecordSummary(BaseModel):
    origin: str = Field(description="Kommunkod of the origin ('0000': AI-rådet).")
    origin_name: str
    record_id: str
    kind: Term
    title: str
    summary: str
    service_area: Term
    status: Term
    risk_class: Term
    version: int
    timestamp_ms: int = Field(description="When the current version was signed (Unix ms).")
    url: str = Field(description="The record's page in the catalog.")


class RecordList(BaseModel):
    total: int = Field(description="Matches in all (full-text: among the newest 500 ranked).")
    page: int
    per_page: int
    capped: bool = Field(description="A full-text search found as many matches as it ranks.")
    items: list[RecordSummary]


class Signature(BaseModel):
    status: str = Field(description="verified, unknown_key or invalid (checked on request).")
    verified: bool
    key_id: str
    origin: str
    sequence: int
    entry_hash: str = Field(description="SHA-256 of the signed entry bytes, hex.")
    directory_version: int
    key_revoked_at_ms: int | None
    signed_entry_url: str


class Adopter(BaseModel):
    kommunkod: str
    name: str
    status: Term


class RecordDetail(BaseModel):
    summary: RecordSummary
    record: dict[str, Any] = Field(description="The record as protobuf JSON (samverka.v1.Record).")
    signature: Signature
    lessons: list[RecordSummary]
    adopters: list[Adopter]
    reused_by: list[RecordSummary]
    references: list[RecordSummary]


class KommunShares(BaseModel):
    kommunkod: str
    name: str
    county: str
    member: bool
    counts: dict[str, int] = Field(description="PUBLIC live records by kind key.")
    shared: RecordList
    adopted: list[dict[str, Any]]
    reused_by_others: list[dict[str, Any]]


class ProvenSolution(BaseModel):
    solution: RecordSummary
    in_production: int = Field(description="Other kommuner with the solution in production.")
    adoptions: int = Field(description="Other kommuner with any PUBLIC adoption of it.")
    adopters: list[str]


class KommunCoverageOut(BaseModel):
    kommunkod: str
    name: str
    county: str
    member: bool
    use_cases: int
    use_cases_by_status: dict[str, int]
    service_areas: list[str]
    lessons: int
    solutions: int
    adoptions: int
    solutions_adopted_by_others: int
    #: From the kommun's profile; key "" when none is held.
    population_band: Term
    kommun_group: Term


class GroupCoverageOut(BaseModel):
    """One population band or SKR kommungrupp (from the kommuner's profiles)."""

    group: Term
    kommuner: int
    members: int
    kommuner_with_use_cases: int
    use_cases: int
    solutions: int
    adoptions: int


class CountyCoverageOut(BaseModel):
    county: str
    name: str
    kommuner: int
    members: int
    kommuner_with_use_cases: int
    use_cases: int
    solutions: int


class AreaCoverageOut(BaseModel):
    service_area: Term
    use_cases: int
    kommuner: int


class CoverageOut(BaseModel):
    """Coverage of all 290 kommuner, counted from PUBLIC records only."""

    kommuner_total: int
    members: int
    kommuner_with_use_cases: int
    use_cases: int
    lessons: int
    solutions: int
    adoptions: int
    recommendations: int
    use_cases_by_status: dict[str, int]
    areas: list[AreaCoverageOut]
    counties: list[CountyCoverageOut]
    kommuner: list[KommunCoverageOut]
    kommuner_with_profile: int
    population_bands: list[GroupCoverageOut]
    kommun_groups: list[GroupCoverageOut]


def _term(vocabulary: Any, value: int) -> Term:
    return Term(key=vocabulary.key(value), label=vocabulary.label(value))


def summary_out(s: Summary) -> RecordSummary:
    return RecordSummary(
        origin=s.origin,
        origin_name=present.kommun_name(s.origin),
        record_id=s.record_id,
        kind=_term(RECORD_KIND, s.kind),
        title=s.title,
        summary=s.summary,
        service_area=_term(SERVICE_AREA, s.service_area),
        status=_term(USE_CASE_STATUS, s.status),
        risk_class=_term(RISK_CLASS, s.risk_class),
        version=s.version,
        timestamp_ms=s.timestamp_ms,
        url=present.record_path(s.origin, s.record_id),
    )


@router.get("/records", response_model=RecordList, summary="Search and browse records")
def records(
    request: Request,
    filters: FilterQuery,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RecordList:
    """PUBLIC live records: best match first with ``q``, else newest first."""
    result = context(request).catalog.search(filters, page=page, per_page=per_page)
    return RecordList(
        total=result.total,
        page=result.page,
        per_page=result.per_page,
        capped=result.capped,
        items=[summary_out(s) for s in result.items],
    )


@router.get(
    "/records.csv",
    summary="Search results as CSV (UTF-8 with BOM, ';' separated, for Swedish Excel)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def records_csv(request: Request, filters: FilterQuery) -> Response:
    ctx = context(request)
    rows = ctx.catalog.export(filters, limit=ctx.settings.max_export_rows)
    # Links from the configured address, never the request's Host header.
    text = to_csv(rows, base_url=ctx.settings.public_url)
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="samverka-sokresultat.csv"'},
    )


def _found(request: Request, origin: str, record_id: str) -> RecordView:
    found = context(request).catalog.record(origin, record_id)
    if found is None:
        raise HTTPException(404, "no PUBLIC record with this origin and id")
    if isinstance(found, Retracted):
        raise HTTPException(410, "the record has been retracted by its origin")
    return found


@router.get("/records/{origin}/{record_id}", response_model=RecordDetail, summary="One record")
def record(request: Request, origin: str, record_id: str) -> RecordDetail:
    view = _found(request, origin, record_id)
    sig = view.signature
    return RecordDetail(
        summary=summary_out(view.summary),
        record=MessageToDict(view.record, preserving_proto_field_name=True),
        signature=Signature(
            status=str(sig.status),
            verified=sig.verified,
            key_id=sig.key_id,
            origin=sig.origin,
            sequence=sig.sequence,
            entry_hash=sig.entry_hash,
            directory_version=sig.directory_version,
            key_revoked_at_ms=sig.key_revoked_at_ms,
            signed_entry_url=present.signed_entry_path(origin, record_id),
        ),
        lessons=[summary_out(s) for s in view.lessons],
        adopters=[
            Adopter(
                kommunkod=code,
                name=present.kommun_name(code),
                status=_term(USE_CASE_STATUS, status),
            )
            for code, status in view.adopters
        ],
        reused_by=[summary_out(s) for s in view.reused_by],
        references=[summary_out(s) for s in view.references],
    )


@router.get(
    "/records/{origin}/{record_id}/signed-entry",
    summary="The signed entry of the record's current version, as it was signed",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def signed_entry(request: Request, origin: str, record_id: str) -> Response:
    """A serialized ``samverka.v1.SignedEntry``: the entry bytes exactly as signed, the
    Ed25519 signature over ``"samverka/v1/entry" 0x00 || entry bytes`` and the key id.
    Verify it with the origin's key from the hub's signed member directory."""
    data = context(request).catalog.signed_entry(origin, record_id)
    if data is None:
        raise HTTPException(404, "no PUBLIC record with this origin and id")
    name = f"{origin}-{record_id}.samverka-entry"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/kommuner/{code}", response_model=KommunShares, summary="What a kommun shares")
def kommun(
    request: Request,
    code: str,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> KommunShares:
    if not is_origin(code):
        raise HTTPException(404, "no kommun with this kommunkod")
    view = context(request).catalog.kommun(code, page=page, per_page=per_page)
    county = present.county_of(code)
    return KommunShares(
        kommunkod=code,
        name=present.kommun_name(code),
        county=county,
        member=view.member,
        counts={RECORD_KIND.key(k): n for k, n in sorted(view.counts.items())},
        shared=RecordList(
            total=view.shared.total,
            page=view.shared.page,
            per_page=view.shared.per_page,
            capped=False,
            items=[summary_out(s) for s in view.shared.items],
        ),
        adopted=[
            {
                "solution_origin": a.solution_origin,
                "solution_id": a.solution_id,
                "status": _term(USE_CASE_STATUS, a.status).model_dump(),
                "solution": summary_out(a.solution).model_dump() if a.solution else None,
            }
            for a in view.adopted
        ],
        reused_by_others=[
            {"solution": summary_out(s).model_dump(), "kommuner": n} for s, n in view.reused
        ],
    )


@router.get("/coverage", response_model=CoverageOut, summary="Coverage of all 290 kommuner")
def coverage(request: Request) -> CoverageOut:
    """Which kommuner share use cases, in which areas, by län (PUBLIC records only)."""
    return coverage_out(context(request).catalog.coverage())


def coverage_out(c: Coverage) -> CoverageOut:
    def statuses(counts: Any) -> dict[str, int]:
        return {USE_CASE_STATUS.key(s) or "unspecified": n for s, n in counts.items()}

    return CoverageOut(
        kommuner_total=c.kommuner_total,
        members=c.members,
        kommuner_with_use_cases=c.kommuner_with_use_cases,
        use_cases=c.use_cases,
        lessons=c.lessons,
        solutions=c.solutions,
        adoptions=c.adoptions,
        recommendations=c.recommendations,
        use_cases_by_status=statuses(c.use_cases_by_status),
        areas=[
            AreaCoverageOut(
                service_area=_term(SERVICE_AREA, a.service_area),
                use_cases=a.use_cases,
                kommuner=a.kommuner,
            )
            for a in c.areas
        ],
        counties=[
            CountyCoverageOut(
                county=x.code,
                name=x.name,
                kommuner=x.kommuner,
                members=x.members,
                kommuner_with_use_cases=x.kommuner_with_use_cases,
                use_cases=x.use_cases,
                solutions=x.solutions,
            )
            for x in c.counties
        ],
        kommuner=[
            KommunCoverageOut(
                kommunkod=k.code,
                name=k.name,
                county=k.county_code,
                member=k.member,
                use_cases=k.use_cases,
                use_cases_by_status=statuses(k.use_cases_by_status),
                service_areas=[SERVICE_AREA.key(a) or "unspecified" for a in k.service_areas],
                lessons=k.lessons,
                solutions=k.solutions,
                adoptions=k.adoptions,
                solutions_adopted_by_others=k.solutions_adopted_by_others,
                population_band=_term(POPULATION_BAND, k.population_band),
                kommun_group=_term(KOMMUN_GROUP, k.kommun_group),
            )
            for k in c.kommuner
        ],
        kommuner_with_profile=c.kommuner_with_profile,
        population_bands=[_group_out(POPULATION_BAND, g) for g in c.bands],
        kommun_groups=[_group_out(KOMMUN_GROUP, g) for g in c.groups],
    )


def _group_out(vocabulary: Any, g: Any) -> GroupCoverageOut:
    return GroupCoverageOut(
        group=_term(vocabulary, g.value),
        kommuner=g.kommuner,
        members=g.members,
        kommuner_with_use_cases=g.kommuner_with_use_cases,
        use_cases=g.use_cases,
        solutions=g.solutions,
        adoptions=g.adoptions,
    )


@router.get("/proven", response_model=list[ProvenSolution], summary="Proven elsewhere")
def proven(
    request: Request,
    area: str = "",
    min_kommuner: Annotated[int, Query(ge=1, le=290)] = 2,
) -> list[ProvenSolution]:
    """PUBLIC solutions in production in at least ``min_kommuner`` other kommuner,
    most adopted first: a starting list for a small kommun."""
    areas = parse_filters(area=[area]).areas if area.strip() else ()
    found = context(request).catalog.proven(min_kommuner=min_kommuner, areas=areas)
    return [
        ProvenSolution(
            solution=summary_out(p.solution),
            in_production=p.in_production,
            adoptions=p.adoptions,
            adopters=list(p.adopters),
        )
        for p in found
    ]


@router.get("/techniques", summary="Techniques named by PUBLIC use cases")
def techniques(request: Request) -> list[dict[str, Any]]:
    return [
        {"technique": name, "use_cases": n} for name, n in context(request).catalog.techniques()
    ]


@router.get("/health", summary="Liveness: the catalog answers and reads its store")
def health(request: Request) -> dict[str, str]:
    context(request).catalog.store.log_position()  # raises when the database is gone
    return {"status": "ok"}
