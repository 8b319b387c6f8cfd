"""The client side: mutual-TLS channels and a typed FeedService client.

Default deadlines (override per client):

- unary calls (node info, heads): 10 s;
- ReadEntries: 300 s for the whole stream; a sync that runs out simply resumes
  from its stored cursor with another call;
- Subscribe: no deadline, but a stream that stays silent for 3 heartbeats
  (``idle_timeout`` = 20 s) is treated as dead and raises, so a follower reconnects.

Every FeedService method is an idempotent read, so the channel's service config
retries UNAVAILABLE (a restarting peer, a dropped connection) before any response
arrived, with exponential back-off. gRPC errors come out as Samverka errors:
:class:`~samverka.errors.EntryRefused` for a refusal with a Reason, otherwise
:class:`~samverka.transport.server.status.PeerError` (a TransportError) with the status code
and the ErrorInfo reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from samverka.closing import AsyncClosing
from samverka.config import NodeConfig, read_file
from samverka.errors import TransportError
from samverka.protocol.signing import PublicKey
from samverka.protocol.verify import FeedHead
from samverka.transport.server.feed import DIRECTORY_VERSION_METADATA
from samverka.transport.server.status import PeerError, from_rpc_error
from samverka.v1 import feed_pb2, feed_service_pb2, feed_service_pb2_grpc

DEFAULT_UNARY_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_IDLE_TIMEOUT = 20.0
#: Receive limit on the client side; above any server's send limit we configure.
DEFAULT_MAX_RECEIVE_BYTES = 16 * 1024 * 1024

_FEED_SERVICE = "samverka.v1.FeedService"

#: Retry UNAVAILABLE for every FeedService method (all idempotent reads). gRPC retries
#: a streaming call only until its first response, so no message is ever seen twice.
SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": _FEED_SERVICE}],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.2s",
                "maxBackoff": "3s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What a client presents and trusts: the CA, and its own certificate and key.

    Without ``cert``/``key`` the client offers no certificate (enough for the hub's
    public port; a node's member port refuses the handshake).
    """

    ca: bytes
    cert: bytes | None = None
    key: bytes | None = None
    #: Check the server certificate for this name instead of the address's host.
    server_name: str | None = None

    @classmethod
    def from_files(
        cls,
        ca: Path,
        cert: Path | None = None,
        key: Path | None = None,
        *,
        server_name: str | None = None,
    ) -> ClientTls:
        return cls(
            ca=read_file(ca),
            cert=read_file(cert) if cert else None,
            key=read_file(key) if key else None,
            server_name=server_name,
        )

    @classmethod
    def from_config(cls, config: NodeConfig, *, server_name: str | None = None) -> ClientTls:
        """The node's own certificate and CA, as configured in ``[tls]``."""
        tls = config.tls
        return cls.from_files(
            config.path(tls.ca),
            config.path(tls.cert),
            config.path(tls.key),
            server_name=server_name,
        )

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def channel_options(
    *, max_receive_bytes: int = DEFAULT_MAX_RECEIVE_BYTES, server_name: str | None = None
) -> list[tuple[str, str | int]]:
    options: list[tuple[str, str | int]] = [
        ("grpc.max_receive_message_length", max_receive_bytes),
        ("grpc.max_send_message_length", max_receive_bytes),
        # Ping every 30 s (servers allow one per 10 s) to notice a dead connection.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
        # Reconnect quickly after a peer restarts (default starts at 1 s, caps at 120 s).
        # The cap bounds how long after a peer's return a channel that failed for a long
        # while stays in back-off and fails calls at once: with 10 s, followers took the
        # hub back 5-8 s late even when they asked every 3 s (sync.FOLLOW_MAX_BACKOFF).
        # A try at a peer that is down is one refused TCP connection.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options


def open_channel(
    address: str,
    tls: ClientTls,
    *,
    max_receive_bytes: int = DEFAULT_MAX_RECEIVE_BYTES,
) -> grpc.aio.Channel:
    """A secure grpc.aio channel to ``host:port`` (``[::1]:port`` for IPv6)."""
    return grpc.aio.secure_channel(
        address,
        tls.credentials(),
        options=channel_options(max_receive_bytes=max_receive_bytes, server_name=tls.server_name),
    )


@dataclass(frozen=True, slots=True)
class NodeInfo:
    kommunkod: str
    name: str
    public_key: PublicKey
    software_version: str
    #: The peer's wall clock when it answered (Unix ms; 0 from an older peer).
    server_time_ms: int = 0


@dataclass(frozen=True, slots=True)
class Heads:
    heads: list[FeedHead]
    #: The newest position in the server's log.
    log_position: int


@dataclass(frozen=True, slots=True)
class Page:
    """One streamed message: entries in log order, and where to resume after it."""

    entries: list[feed_pb2.LogEntry]
    next_position: int

    @property
    def heartbeat(self) -> bool:
        return not self.entries


class FeedClient(AsyncClosing):
    """A typed FeedService client over one channel. Use as ``async with``."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        address: str = "",
        unary_timeout: float = DEFAULT_UNARY_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.channel = channel
        self.address = address
        self.unary_timeout = unary_timeout
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        #: Told the member directory version a Subscribe stream announces (the hub's, at
        #: its start and when it ends the stream for a newer one); see feed.py.
        self.on_directory_version: Callable[[int], None] | None = None
        self._stub = feed_service_pb2_grpc.FeedServiceStub(channel)

    @classmethod
    def connect(cls, address: str, tls: ClientTls, **kwargs: float) -> FeedClient:
        """A client on a new channel (connects lazily, on the first call)."""
        return cls(open_channel(address, tls), address=address, **kwargs)

    async def close(self) -> None:
        await self.channel.close()

    async def get_log_view(self) -> feed_service_pb2.GetLogViewResponse:
        """The peer's view of the hub's transparency log (its accepted checkpoint, the
        key objections it knows); an empty answer from a peer that serves none."""
        try:
            return await self._stub.GetLogView(
                feed_service_pb2.GetLogViewRequest(), timeout=self.unary_timeout
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    async def get_node_info(self) -> NodeInfo:
        try:
            info = await self._stub.GetNodeInfo(
                feed_service_pb2.GetNodeInfoRequest(), timeout=self.unary_timeout
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        try:
            public_key = PublicKey(info.public_key)
        except ValueError as exc:
            raise TransportError(
                f"{self.address or 'the peer'} sent a malformed public key in its node info"
            ) from exc
        return NodeInfo(
            info.kommunkod, info.name, public_key, info.software_version, info.server_time_ms
        )

    async def get_heads(self, origins: list[str] | tuple[str, ...] = ()) -> Heads:
        try:
            reply = await self._stub.GetFeedHeads(
                feed_service_pb2.GetFeedHeadsRequest(origins=origins), timeout=self.unary_timeout
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        return Heads(
            [FeedHead(h.origin, h.sequence, h.entry_hash) for h in reply.heads],
            reply.log_position,
        )

    async def read_entries(
        self,
        after: int,
        entry_filter: feed_service_pb2.EntryFilter | None = None,
        batch_size: int = 0,
    ) -> AsyncGenerator[Page, None]:
        """Pages after ``after`` until the server's log end at call time."""
        request = feed_service_pb2.ReadEntriesRequest(
            after=feed_pb2.Cursor(position=after), filter=entry_filter, batch_size=batch_size
        )
        call = self._stub.ReadEntries(request, timeout=self.read_timeout)
        async for page in self._pages(call, idle_timeout=None):
            yield page

    async def subscribe(
        self,
        after: int,
        entry_filter: feed_service_pb2.EntryFilter | None = None,
        batch_size: int = 0,
    ) -> AsyncGenerator[Page, None]:
        """Pages after ``after``, then live ones; empty pages are heartbeats.

        Ends when the server ends the stream (it is draining, or, the hub, it signed a
        new member directory: see ``on_directory_version``). Raises PeerError
        (DEADLINE_EXCEEDED) when nothing, not even a heartbeat, came for ``idle_timeout``.
        """
        request = feed_service_pb2.SubscribeRequest(
            after=feed_pb2.Cursor(position=after), filter=entry_filter, batch_size=batch_size
        )
        call = self._stub.Subscribe(request)
        first = True
        async for page in self._pages(call, idle_timeout=self.idle_timeout):
            if first:
                first = False
                self._note_directory(await call.initial_metadata())
            yield page
        # Ended by the server: a hub that signed a new directory says its version here.
        self._note_directory(await call.trailing_metadata())

    def _note_directory(self, metadata: grpc.aio.Metadata | None) -> None:
        """Tell ``on_directory_version`` the version in ``metadata``, if one is there."""
        if self.on_directory_version is None or metadata is None:
            return
        value = metadata.get(DIRECTORY_VERSION_METADATA)
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
            self.on_directory_version(int(value))

    async def _pages(
        self, call: grpc.aio.UnaryStreamCall[Any, Any], *, idle_timeout: float | None
    ) -> AsyncGenerator[Page, None]:
        try:
            while True:
                try:
                    async with asyncio.timeout(idle_timeout):
                        message: Any = await call.read()
                except TimeoutError:
                    raise PeerError(
                        f"{self.address or 'peer'} sent nothing for {idle_timeout:.0f} s "
                        "(not even a heartbeat)",
                        code=grpc.StatusCode.DEADLINE_EXCEEDED,
                        hint="the connection is probably dead; reconnecting usually helps",
                    ) from None
                if message is grpc.aio.EOF:
                    return
                yield Page(list(message.entries), message.next.position)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        finally:
            # Leaving early (break, an error, cancellation) must not leave the call open.
            call.cancel()
