"""HubService's insight methods: federation-wide Search and coverage GetStats.

A mixin of :class:`samverka_hub.service.HubServicer`. Both methods are served on both
ports, and the port decides what a caller learns:

=========  ==================================  ==================================
method     public port (server TLS, anyone)    member port (mutual TLS, members)
=========  ==================================  ==================================
Search     PUBLIC records                      PUBLIC and MEMBERS records
GetStats   counts of PUBLIC records            counts of PUBLIC and MEMBERS records
=========  ==================================  ==================================

Drafts are never found or counted (they never leave their node). Coverage is not
sensitive — who shares how many use cases in which area is what the council wants
known — but a MEMBERS record is shared with members only, and even its existence in a
count is something members chose to tell members; so the public learns counts of
public records, members the full picture. On the member port the caller policy
refuses revoked and unlisted kommuner first, as for every member call.

Work runs in worker threads. GetStats keeps its newest answer per port and computes
again only when the log or the directory moved, so asking often costs one indexed
lookup.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from samverka.protocol.vocab import SERVICE_AREA, USE_CASE_STATUS
from samverka.transport.server.policy import Caller
from samverka.v1 import hub_service_pb2

from samverka_hub.insight import (
    FederationHit,
    SearchQuery,
    federation_search,
    hub_coverage,
)
from samverka_hub.stats import Coverage

if TYPE_CHECKING:
    import grpc

    from samverka_hub.runtime import HubRuntime

    Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True, slots=True)
class _CachedStats:
    log_position: int
    directory_version: int
    member_view: bool
    response: hub_service_pb2.GetStatsResponse


class InsightMethods:
    """Search and GetStats over a :class:`HubRuntime`."""

    runtime: HubRuntime
    public: bool
    _stats_cache: _CachedStats | None = None

    async def _member_view(self, context: Context) -> bool:
        """Whether the caller may see MEMBERS records (refuses revoked members)."""
        if self.public:
            return False
        audience = await self.runtime.member_policy.audience(Caller.from_context(context))
        return audience.member

    async def Search(
        self, request: hub_service_pb2.SearchRequest, context: Context
    ) -> hub_service_pb2.SearchResponse:
        member = await self._member_view(context)
        query = SearchQuery(
            text=request.query,
            kinds=list(request.kinds),
            origins=list(request.origins),
            service_areas=list(request.service_areas),
            limit=request.limit,
        )
        hits = await asyncio.to_thread(federation_search, self.runtime.store, query, member=member)
        return hub_service_pb2.SearchResponse(hits=[search_hit_proto(h) for h in hits])

    async def GetStats(
        self, request: hub_service_pb2.GetStatsRequest, context: Context
    ) -> hub_service_pb2.GetStatsResponse:
        member_view = await self._member_view(context)
        directory = self.runtime.directory.current
        store = self.runtime.store
        position = await asyncio.to_thread(store.log_position)
        cached = self._stats_cache
        if (
            cached is not None
            and cached.log_position == position
            and cached.directory_version == directory.version
            and cached.member_view == member_view
        ):
            return cached.response
        coverage = await asyncio.to_thread(hub_coverage, store, directory, member_view=member_view)
        response = stats_proto(coverage)
        # Keyed by the position read before counting: an append in between only
        # makes the next call count again.
        self._stats_cache = _CachedStats(position, directory.version, member_view, response)
        return response


def search_hit_proto(found: FederationHit) -> hub_service_pb2.SearchHit:
    h = found.hit
    return hub_service_pb2.SearchHit(
        origin=h.origin,
        record_id=h.record_id,
        kind=h.kind,  # type: ignore[arg-type]
        title=h.title,
        summary=h.summary,
        version=found.version,
        visibility=h.visibility,  # type: ignore[arg-type]
        rank=h.rank,
    )


def _status_key(status: int) -> str:
    return USE_CASE_STATUS.key(status) or "unspecified"


def _area_key(area: int) -> str:
    return SERVICE_AREA.key(area) or "unspecified"


def stats_proto(coverage: Coverage) -> hub_service_pb2.GetStatsResponse:
    """The wire form of coverage. Count keys are the vocabularies' stable English keys
    (``pilot``, ``elderly-care``); the labels people read come from samverka.protocol.vocab."""
    reply = hub_service_pb2.GetStatsResponse(
        kommuner_total=coverage.kommuner_total,
        members=coverage.members,
        kommuner_with_use_cases=coverage.kommuner_with_use_cases,
    )
    for status, n in coverage.use_cases_by_status.items():
        reply.use_cases_by_status.add(key=_status_key(status), value=n)
    for area in coverage.areas:
        reply.use_cases_by_service_area.add(key=_area_key(area.service_area), value=area.use_cases)
    for c in coverage.counties:
        reply.counties.add(
            county_code=c.code,
            name=c.name,
            kommuner=c.kommuner,
            members=c.members,
            kommuner_with_use_cases=c.kommuner_with_use_cases,
        )
    for k in coverage.kommuner:
        row = reply.kommuner.add(
            kommunkod=k.code,
            name=k.name,
            county_code=k.county_code,
            member=k.member,
            service_areas=list(k.service_areas),
            solutions=k.solutions,
            adoptions=k.adoptions,
        )
        for status, n in k.use_cases_by_status.items():
            row.use_cases_by_status.add(key=_status_key(status), value=n)
    return reply
