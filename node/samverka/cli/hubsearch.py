"""``samverka search --hub "text"``: search the whole federation at the council's hub.

Asks the hub's ``HubService.Search`` over its member port with this node's certificate
(mutual TLS), so MEMBERS records of every member are found too; drafts never are. The
hub matches words exactly as a local search does (each word a prefix, å/ä/ö distinct)
and answers at most 100 hits. A hit found here is not yet held by this node:
``samverka sync`` brings it home, verified against its origin's key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import uvloop

from samverka.config import NodeConfig
from samverka.store.store import SearchHit
from samverka.transport.hubclient import HubClient
from samverka.v1 import hub_service_pb2


async def _search(config: NodeConfig, request: hub_service_pb2.SearchRequest) -> list[SearchHit]:
    async with HubClient.member(config) as client:
        reply = await client.search(request)
    return [
        SearchHit(
            origin=h.origin,
            record_id=h.record_id,
            kind=h.kind,
            title=h.title,
            summary=h.summary,
            visibility=h.visibility,
            rank=h.rank,
        )
        for h in reply.hits
    ]


def search_hub(
    config: NodeConfig,
    text: str,
    *,
    kinds: Sequence[int] = (),
    origins: Sequence[str] = (),
    service_areas: Sequence[int] = (),
    limit: int = 20,
) -> list[SearchHit]:
    """The hub's hits for ``text``, best first (raises TransportError, ConfigError)."""
    request = hub_service_pb2.SearchRequest(
        query=text,
        kinds=list(kinds),  # type: ignore[arg-type]
        origins=list(origins),
        service_areas=list(service_areas),  # type: ignore[arg-type]
        limit=limit,
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_search(config, request))
