"""HubService's aggregation methods: Publish, Search, GetStats.

A mixin of :class:`samverka_hub.service.HubServicer`. Not built yet: each answers
UNIMPLEMENTED. To build one, replace its body here; what a method needs is on
``self.runtime`` (:class:`samverka_hub.service.HubRuntime`: the hub folder, the node
store, the log watcher to notify after appending, the current member directory and
its key ring) and ``self.public`` (True on the public port). Use
``await self.caller_kommun(context)`` for calls only members may make (it refuses the
public port and revoked members) and ``await self.check_caller(context)`` for calls
anyone on the port may make.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from samverka.v1 import hub_service_pb2

if TYPE_CHECKING:
    from samverka_hub.service import HubRuntime

    Context = grpc.aio.ServicerContext[Any, Any]


class AggregationMethods:
    """Publish, Search and GetStats over a :class:`HubRuntime`."""

    runtime: HubRuntime
    public: bool

    async def Publish(
        self, request: hub_service_pb2.PublishRequest, context: Context
    ) -> hub_service_pb2.PublishResponse:
        await _not_yet(context, "Publish")

    async def Search(
        self, request: hub_service_pb2.SearchRequest, context: Context
    ) -> hub_service_pb2.SearchResponse:
        await _not_yet(context, "Search")

    async def GetStats(
        self, request: hub_service_pb2.GetStatsRequest, context: Context
    ) -> hub_service_pb2.GetStatsResponse:
        await _not_yet(context, "GetStats")


async def _not_yet(context: Context, method: str) -> NoReturn:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"HubService.{method} is not built yet")
    raise AssertionError("abort returned")  # pragma: no cover - abort always raises
