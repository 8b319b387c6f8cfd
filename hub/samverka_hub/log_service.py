"""HubService's transparency-log methods: GetCheckpoint, GetConsistencyProof,
GetInclusionProofs, AddCosignature (issue 11).

A mixin of :class:`samverka_hub.service.HubServicer`; the work is
:class:`samverka_hub.cosigned.CosignedLog`'s, run in worker threads. The log is public
(the same checkpoint, tiles and leaves are served over HTTP under ``/log/``), so:

===================  ==========================  ====================================
method               public port (server TLS)     member port (mutual TLS)
===================  ==========================  ====================================
GetCheckpoint        the cosigned checkpoint      the same; ``for_witness``: the one
                     (``for_witness`` refused:    in progress for the caller's witness
                     PERMISSION_DENIED)
GetConsistencyProof  anyone                       members, not revoked ones
GetInclusionProofs   anyone                       members, not revoked ones
AddCosignature       PERMISSION_DENIED            the caller's own cosignature only
ObjectToKey          (served by samverka_hub.membership_service: the caller's own)
===================  ==========================  ====================================

Refusals: INVALID_ARGUMENT with a reason (a malformed query, a forged cosignature, …),
NOT_FOUND ``not_in_tree`` for a leaf the tree of that size does not hold (nothing is
proven then: ask again against a newer checkpoint), FAILED_PRECONDITION
``beyond_checkpoint`` for a tree size larger than the newest signed checkpoint's.
GetInclusionProofs takes at most 1,000 leaves, counted on the wire before the request
is decoded (:func:`samverka_hub.process.log_limits`); ``combined`` answers them with
one proof of them all (:meth:`CosignedLog.inclusion`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import grpc
from samverka.transport.server.status import AccessDenied, NotFound
from samverka.v1 import hub_service_pb2

from samverka_hub.cosigned import CosignedLog

if TYPE_CHECKING:
    from samverka_hub.runtime import HubRuntime

    Context = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger("samverka_hub.tlog")


class LogMethods:
    """The log's gRPC face over a :class:`HubRuntime` (whose ``tlog`` serve sets)."""

    runtime: HubRuntime
    public: bool

    if TYPE_CHECKING:  # provided by MembershipMethods

        async def caller_kommun(self, context: Context) -> str: ...
        async def check_caller(self, context: Context) -> None: ...

    def _tlog(self) -> CosignedLog:
        if self.runtime.tlog is None:  # pragma: no cover - serve always sets it
            raise NotFound("this server serves no transparency log", reason="no_log")
        return self.runtime.tlog

    async def _witness(self, context: Context, what: str) -> str:
        """The calling member's kommunkod; refused on the public port."""
        if self.public:
            raise AccessDenied(
                f"{what} is for members' witnesses: call the hub's member port",
                hint="the node's [hub] address, with its certificate",
            )
        return await self.caller_kommun(context)

    async def GetCheckpoint(
        self, request: hub_service_pb2.GetCheckpointRequest, context: Context
    ) -> hub_service_pb2.GetCheckpointResponse:
        tlog = self._tlog()
        if request.for_witness:
            code = await self._witness(context, "GetCheckpoint(for_witness)")
            note = await asyncio.to_thread(tlog.witness_note, code)
        else:
            await self.check_caller(context)
            note = await asyncio.to_thread(tlog.checkpoint_note)
        if note is None:
            raise NotFound("the log has signed no checkpoint yet", reason="no_checkpoint")
        return hub_service_pb2.GetCheckpointResponse(checkpoint=note)

    async def GetConsistencyProof(
        self, request: hub_service_pb2.GetConsistencyProofRequest, context: Context
    ) -> hub_service_pb2.GetConsistencyProofResponse:
        await self.check_caller(context)
        hashes = await asyncio.to_thread(
            self._tlog().consistency, request.old_size, request.new_size
        )
        return hub_service_pb2.GetConsistencyProofResponse(hashes=hashes)

    async def GetInclusionProofs(
        self, request: hub_service_pb2.GetInclusionProofsRequest, context: Context
    ) -> hub_service_pb2.GetInclusionProofsResponse:
        await self.check_caller(context)
        proofs, combined = await asyncio.to_thread(
            self._tlog().inclusion,
            request.tree_size,
            list(request.leaves),
            combined=request.combined,
        )
        return hub_service_pb2.GetInclusionProofsResponse(proofs=proofs, combined=combined)

    async def AddCosignature(
        self, request: hub_service_pb2.AddCosignatureRequest, context: Context
    ) -> hub_service_pb2.AddCosignatureResponse:
        code = await self._witness(context, "AddCosignature")
        stored = await asyncio.to_thread(
            self._tlog().add_cosignature, code, bytes(request.checkpoint)
        )
        log.debug(
            "cosignature by %s of checkpoint %d (%s); %d held",
            code,
            stored.size,
            "kept" if stored.updated else "an as new one was held",
            stored.cosignatures,
            extra={"event": "cosignature", "peer": code, "size": stored.size},
        )
        return hub_service_pb2.AddCosignatureResponse(cosignatures=stored.cosignatures)
