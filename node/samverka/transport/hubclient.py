"""The node's client of the hub: every call a node makes to it, over one channel.

Push (heads and Publish), enrollment, the member directory, key rotation, certificate
renewal and ``search --hub`` all go through :class:`HubClient`:

- the channel is :func:`samverka.transport.client.open_channel`'s (TLS, keepalive, message
  limits, and the service config that retries UNAVAILABLE for FeedService reads);
  HubService calls are not retried by the channel, since Enroll, RotateKey and
  RenewCertificate are not idempotent reads. A caller that repeats them (enroll and
  rotate-key poll the hub; the push agent backs off) decides that itself;
- the hub's public port (``HubClient.public``: the server is authenticated, the node
  is not) takes Enroll; its member port (``HubClient.member``: mutual TLS with the
  node's certificate) takes everything;
- deadlines: ``timeout`` for unary calls (10 s), ``publish_timeout`` for Publish (60 s);
- errors come out as Samverka errors through :func:`hub_error`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc

from samverka.closing import AsyncClosing
from samverka.config import NodeConfig
from samverka.errors import ConfigError, EnrollmentRefused, EntryRefused, SamverkaError
from samverka.protocol.verify import FeedHead
from samverka.transport.client import DEFAULT_UNARY_TIMEOUT, ClientTls, FeedClient, open_channel
from samverka.transport.server.status import PeerError, from_rpc_error
from samverka.v1 import directory_pb2, feed_pb2, hub_service_pb2, hub_service_pb2_grpc

#: Publish deadline: a batch of 500 entries is verified in well under a second.
DEFAULT_PUBLISH_TIMEOUT = 60.0

Request = TypeVar("Request")
Reply = TypeVar("Reply")


@dataclass(frozen=True, slots=True)
class Published:
    """The hub's answer to one Publish call."""

    accepted: int
    duplicates: int
    heads: list[FeedHead]


class HubClient(AsyncClosing):
    """The calls a node makes to the hub, over one channel. Use as ``async with``."""

    def __init__(
        self,
        address: str,
        tls: ClientTls,
        *,
        timeout: float = DEFAULT_UNARY_TIMEOUT,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.publish_timeout = publish_timeout
        self.channel = open_channel(address, tls)
        self.feed = FeedClient(self.channel, address=address, unary_timeout=timeout)
        self._stub = hub_service_pb2_grpc.HubServiceStub(self.channel)

    @classmethod
    def public(cls, address: str, ca_pem: bytes) -> HubClient:
        """The hub's public port: the server is authenticated, the node is not."""
        return cls(address, ClientTls(ca=ca_pem))

    @classmethod
    def member(cls, config: NodeConfig) -> HubClient:
        """The hub at ``[hub] address`` (its member port), with this node's certificate."""
        if not config.hub.address:
            raise ConfigError(
                "no hub address in samverka.toml ([hub] address)",
                hint="enroll first: `samverka node enroll --hub HOST:PORT --ca FILE`",
            )
        return cls(config.hub.address, ClientTls.from_config(config))

    async def close(self) -> None:
        await self.channel.close()

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Reply],
        request: Request,
        *,
        timeout: float | None = None,
    ) -> Reply:
        try:
            return await method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as err:
            raise hub_error(err, self.address) from err

    # -- pushing (FeedService heads, HubService.Publish) --------------------------------

    async def head(self, origin: str) -> FeedHead | None:
        """The hub's head of ``origin``'s feed (None: the hub holds none of it)."""
        heads = await self.feed.get_heads([origin])
        return next((h for h in heads.heads if h.origin == origin), None)

    async def publish(self, items: Sequence[feed_pb2.LogEntry]) -> Published:
        """Publish one batch. A refusal raises EntryRefused; other failures PeerError."""
        reply = await self._call(
            self._stub.Publish,
            hub_service_pb2.PublishRequest(entries=list(items)),
            timeout=self.publish_timeout,
        )
        return Published(
            reply.accepted,
            reply.duplicates,
            [FeedHead(h.origin, h.sequence, bytes(h.entry_hash)) for h in reply.heads],
        )

    # -- membership ----------------------------------------------------------------------

    async def enroll(
        self, signed: directory_pb2.SignedEnrollmentRequest
    ) -> hub_service_pb2.EnrollResponse:
        return await self._call(self._stub.Enroll, hub_service_pb2.EnrollRequest(request=signed))

    async def get_directory(self, known_version: int = 0) -> hub_service_pb2.GetDirectoryResponse:
        return await self._call(
            self._stub.GetDirectory,
            hub_service_pb2.GetDirectoryRequest(known_version=known_version),
        )

    async def rotate_key(
        self, signed: directory_pb2.SignedKeyRotation
    ) -> hub_service_pb2.RotateKeyResponse:
        return await self._call(
            self._stub.RotateKey, hub_service_pb2.RotateKeyRequest(rotation=signed)
        )

    async def renew_certificate(self, csr_der: bytes) -> bytes:
        reply = await self._call(
            self._stub.RenewCertificate, hub_service_pb2.RenewCertificateRequest(csr_der=csr_der)
        )
        return bytes(reply.certificate_pem)

    async def object_to_key(self, objection: directory_pb2.SignedKeyObjection) -> str:
        """Hand in this node's signed objection to a key listed for its kommun; the
        hub's answer (it lists the objection in its next directory version)."""
        reply = await self._call(
            self._stub.ObjectToKey, hub_service_pb2.ObjectToKeyRequest(objection=objection)
        )
        return reply.message

    # -- the transparency log ------------------------------------------------------------

    async def get_checkpoint(self, *, for_witness: bool = False) -> bytes:
        """The hub's checkpoint note: the newest its witnesses cosigned, or (a witness
        asking) the one to cosign next."""
        reply = await self._call(
            self._stub.GetCheckpoint, hub_service_pb2.GetCheckpointRequest(for_witness=for_witness)
        )
        return bytes(reply.checkpoint)

    async def get_consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 9162 consistency proof from the tree of ``old_size`` to ``new_size``."""
        reply = await self._call(
            self._stub.GetConsistencyProof,
            hub_service_pb2.GetConsistencyProofRequest(old_size=old_size, new_size=new_size),
        )
        return [bytes(h) for h in reply.hashes]

    async def add_cosignature(self, note: bytes) -> int:
        """Hand in the checkpoint note with this node's cosignature line added; the
        number of cosignatures the hub now holds for it."""
        reply = await self._call(
            self._stub.AddCosignature, hub_service_pb2.AddCosignatureRequest(checkpoint=note)
        )
        return reply.cosignatures

    async def get_inclusion_proofs(
        self, tree_size: int, leaves: Sequence[hub_service_pb2.LeafQuery]
    ) -> list[hub_service_pb2.InclusionProof]:
        """Proofs of ``leaves`` in the hub's log tree of ``tree_size``, in order. A leaf
        that tree does not hold: :class:`LeafNotInTree` (NOT_FOUND), whatever reason the
        hub gives, so a caller can wait for a newer checkpoint."""
        return list((await self.get_inclusion_answer(tree_size, leaves, False)).proofs)

    async def get_inclusion_answer(
        self, tree_size: int, leaves: Sequence[hub_service_pb2.LeafQuery], combined: bool
    ) -> hub_service_pb2.GetInclusionProofsResponse:
        """GetInclusionProofs' whole answer; ``combined``: one proof of all the leaves
        (:func:`samverka.protocol.inclusion.verify_answer` checks either form). Refusals
        as :meth:`get_inclusion_proofs`."""
        request = hub_service_pb2.GetInclusionProofsRequest(
            tree_size=tree_size, leaves=leaves, combined=combined
        )
        try:
            reply = await self._stub.GetInclusionProofs(request, timeout=self.timeout)
        except grpc.RpcError as err:
            if hasattr(err, "code") and err.code() is grpc.StatusCode.NOT_FOUND:
                raise LeafNotInTree(
                    f"{self.address}: {err.details() or 'a leaf is not in the tree'}",
                    code=grpc.StatusCode.NOT_FOUND,
                ) from err
            raise hub_error(err, self.address) from err
        return reply

    # -- the federation's search ---------------------------------------------------------

    async def search(
        self, request: hub_service_pb2.SearchRequest
    ) -> hub_service_pb2.SearchResponse:
        return await self._call(self._stub.Search, request)


class LeafNotInTree(PeerError):
    """GetInclusionProofs: a leaf asked for is not in the tree of the size asked for."""


def hub_error(err: grpc.RpcError, address: str) -> SamverkaError:
    """A hub's error status as the matching Samverka error."""
    exc = from_rpc_error(err)
    if isinstance(exc, EntryRefused) and not exc.origin:
        # The status codec reads any Reason as an entry refusal; from the hub's
        # membership calls it is a refusal of our request, or of us (revoked).
        code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            return EnrollmentRefused(exc.reason, exc.detail)
        return PeerError(
            f"{code.name}: {exc.detail}", code=code, reason=exc.reason.value, hint=exc.hint
        )
    if isinstance(exc, PeerError) and exc.code is grpc.StatusCode.UNAVAILABLE:
        exc.args = (f"cannot reach the hub at {address}: {exc}",)
    return exc
