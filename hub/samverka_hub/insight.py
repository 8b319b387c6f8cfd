"""The hub's reads for the council's insight: coverage statistics and federation search.

Shared by the ``GetStats`` and ``Search`` RPCs (:mod:`samverka_hub.insight_service`)
and the operator's ``samverka hub stats`` / ``hub search`` commands
(:mod:`samverka_hub.cli_council`), so the port and the CLI answer alike.

- :func:`read_tallies` counts the current view in one ``GROUP BY`` (one row per
  kommun and combination of kind, status, area and visibility: bounded by the
  federation's shape, not by how many versions or records it holds; 2,000 rows and
  about 50 ms for 290 kommuner with 8 records each);
  :func:`samverka_hub.stats.compute_coverage` turns the counts into coverage. Who is
  a member comes from the signed directory.
- :func:`federation_search` is the store's full-text search (words matched
  literally, each as a prefix; Swedish on both engines) with the hub's rules on top:
  drafts never, MEMBERS records only for members, a bounded number of hits and of
  filter values. Every function here is blocking: call it in a worker thread from
  the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from samverka.protocol.directory import ACTIVE, VerifiedDirectory
from samverka.protocol.kommuner import is_kommunkod, is_origin
from samverka.protocol.validation import PROFILE_ID
from samverka.store.store import SearchHit, Store
from samverka.store.tables import records
from samverka.transport.server.status import InvalidRequest
from samverka.v1 import records_pb2

from samverka_hub.stats import ADOPTION, Coverage, RecordTally, compute_coverage

#: Hits a search returns when the caller names no limit, and at most.
DEFAULT_SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 100
#: Bounds on a search's filters (each value is one term of an IN list).
MAX_FILTER_VALUES = 64
MAX_FILTER_ORIGINS = 512


def read_tallies(store: Store) -> list[RecordTally]:
    """The current view counted by origin, kind, status, area, visibility and tombstone.

    For adoptions the adopted solution's origin is counted too: the current view's
    title of an adoption is ``ORIGIN/ID`` of the solution (see samverka.store.indexing),
    and an origin is always four characters.
    """
    adopted_from = sa.case(
        (records.c.kind == ADOPTION, sa.func.substr(records.c.title, 1, 4)), else_=sa.literal("")
    ).label("adopted_from")
    columns = (
        records.c.origin,
        records.c.kind,
        records.c.status,
        records.c.service_area,
        records.c.visibility,
        records.c.tombstone,
        adopted_from,
    )
    stmt = sa.select(*columns, sa.func.count().label("n")).group_by(*columns)
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        RecordTally(
            origin=r.origin,
            kind=r.kind,
            status=r.status,
            service_area=r.service_area,
            visibility=r.visibility,
            tombstone=bool(r.tombstone),
            adopted_from=r.adopted_from or "",
            count=int(r.n),
        )
        for r in rows
    ]


def active_members(directory: VerifiedDirectory | None) -> frozenset[str]:
    """Kommuner the directory lists as active members (the hub itself is no kommun)."""
    if directory is None:
        return frozenset()
    return frozenset(
        m.kommunkod
        for m in directory.directory.members
        if m.status == ACTIVE and is_kommunkod(m.kommunkod)
    )


def read_profiles(store: Store, *, member_view: bool) -> dict[str, tuple[int, int]]:
    """(population band, kommungrupp) of each kommun whose live profile this view may
    count (PUBLIC ones only unless ``member_view``); one row per kommun."""
    held = store.list_records(
        kinds=[records_pb2.RECORD_KIND_KOMMUN_PROFILE], member=member_view, include_drafts=False
    )
    return {
        s.origin: (
            int(s.record.kommun_profile.population_band),
            int(s.record.kommun_profile.kommun_group),
        )
        for s in held
        if s.record_id == PROFILE_ID and is_kommunkod(s.origin)
    }


def hub_coverage(
    store: Store, directory: VerifiedDirectory | None, *, member_view: bool
) -> Coverage:
    """Coverage of the whole federation as this hub holds it."""
    return compute_coverage(
        read_tallies(store),
        active_members(directory),
        member_view=member_view,
        profiles=read_profiles(store, member_view=member_view),
    )


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A federation-wide search, as a caller asked for it."""

    text: str
    kinds: Sequence[int] = ()
    origins: Sequence[str] = ()
    service_areas: Sequence[int] = ()
    #: 0: DEFAULT_SEARCH_LIMIT; more than MAX_SEARCH_LIMIT is cut to it.
    limit: int = 0

    @property
    def effective_limit(self) -> int:
        if self.limit <= 0:
            return DEFAULT_SEARCH_LIMIT
        return min(self.limit, MAX_SEARCH_LIMIT)

    def check(self) -> None:
        """Refuse filters that name nothing real, or too many values (InvalidRequest)."""
        if len(self.origins) > MAX_FILTER_ORIGINS:
            raise InvalidRequest(f"at most {MAX_FILTER_ORIGINS} origins in a search filter")
        if len(self.kinds) > MAX_FILTER_VALUES or len(self.service_areas) > MAX_FILTER_VALUES:
            raise InvalidRequest(f"at most {MAX_FILTER_VALUES} kinds or service areas")
        for origin in self.origins:
            if not is_origin(origin):
                raise InvalidRequest(
                    f"{origin[:16]!r} is not a kommunkod",
                    hint="filter by 4-digit SCB codes, e.g. 2029",
                )
        for kind in self.kinds:
            if kind not in records_pb2.RecordKind.values() or kind == 0:
                raise InvalidRequest(f"{kind} is not a record kind")
        for area in self.service_areas:
            if area not in records_pb2.ServiceArea.values() or area == 0:
                raise InvalidRequest(f"{area} is not a service area")


@dataclass(frozen=True, slots=True)
class FederationHit:
    """A search hit with the record's current version."""

    hit: SearchHit
    version: int = field(default=0)


def federation_search(store: Store, query: SearchQuery, *, member: bool) -> list[FederationHit]:
    """Live records matching every word of ``query.text``, best first.

    ``member`` decides whether MEMBERS records may be found; drafts never are. Any
    text is safe: it is split into words and never read as query syntax.
    """
    query.check()
    hits = store.search(
        query.text,
        limit=query.effective_limit,
        kinds=list(query.kinds),
        origins=list(query.origins),
        service_areas=list(query.service_areas),
        member=member,
        include_drafts=False,
    )
    versions = _versions(store, hits)
    return [FederationHit(h, versions.get((h.origin, h.record_id), 0)) for h in hits]


def _versions(store: Store, hits: Sequence[SearchHit]) -> dict[tuple[str, str], int]:
    """Current versions of the hit records, in one query (a superset, filtered here)."""
    if not hits:
        return {}
    wanted = {(h.origin, h.record_id) for h in hits}
    stmt = sa.select(records.c.origin, records.c.record_id, records.c.version).where(
        records.c.origin.in_(sorted({o for o, _ in wanted})),
        records.c.record_id.in_(sorted({r for _, r in wanted})),
    )
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return {
        (r.origin, r.record_id): int(r.version) for r in rows if (r.origin, r.record_id) in wanted
    }
