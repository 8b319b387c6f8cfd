"""Server settings and TLS material, read once from the node's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from samverka.config import NodeConfig, ServerSection, read_file
from samverka.errors import ConfigError
from samverka.protocol.entries import MAX_SIGNED_ENTRY_BYTES

#: A streamed message must hold at least one entry of the largest size, plus framing.
MIN_MESSAGE_BYTES = MAX_SIGNED_ENTRY_BYTES + 16 * 1024
#: A listener whose largest request is at most this keeps small HTTP/2 windows.
SMALL_REQUEST_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Limits and timers of a server. Defaults suit a node; the hub may raise them."""

    #: Largest gRPC message received or sent (requests and streamed batches).
    max_message_bytes: int = 4 * 1024 * 1024
    #: Upper bound on entries per streamed message; a request may ask for fewer.
    batch_size: int = 500
    #: Seconds SIGTERM waits for open calls to finish before cancelling them.
    grace_seconds: float = 5.0
    #: Concurrent streams on one HTTP/2 connection.
    max_concurrent_streams: int = 100
    #: A live subscription with nothing new sends an empty message this often, so
    #: both ends notice a dead peer within a few seconds.
    heartbeat_seconds: float = 5.0
    #: Unary calls (node info, heads) get at most this long on the server.
    unary_timeout_seconds: float = 10.0
    #: Server-side HTTP/2 keepalive: ping an idle client this often ...
    keepalive_time_ms: int = 30_000
    #: ... and drop the connection if the ping is not answered within this.
    keepalive_timeout_ms: int = 10_000
    #: Clients may ping at most this often without data (clients ping every 30 s).
    min_client_ping_interval_ms: int = 10_000
    #: A request of a method with no limits of its own: at most this many bytes ...
    max_request_bytes: int = 64 * 1024
    #: ... and this many items in any repeated field (see samverka.protocol.wire).
    max_request_items: int = 1_000
    #: Per caller (kommunkod, or address when anonymous): calls open at once ...
    caller_max_concurrent: int = 64
    #: ... calls started per second, sustained ...
    caller_rate_per_second: float = 100.0
    #: ... and in a burst.
    caller_burst: int = 200
    #: A connection must finish its TLS and HTTP/2 handshake within this.
    handshake_timeout_ms: int = 10_000
    #: A connection with no call open for this long is closed (GOAWAY). Live
    #: subscriptions are open calls, so they are not idle.
    max_connection_idle_ms: int = 300_000

    def __post_init__(self) -> None:
        if self.max_message_bytes < MIN_MESSAGE_BYTES:
            raise ConfigError(
                f"[server] max_message_bytes = {self.max_message_bytes} is too small",
                hint=f"use at least {MIN_MESSAGE_BYTES} (one entry of the largest size)",
            )
        if self.batch_size < 1:
            raise ConfigError("[server] batch_size must be at least 1")
        if self.grace_seconds < 0:
            raise ConfigError("[server] grace_seconds must not be negative")
        if self.max_concurrent_streams < 1:
            raise ConfigError("[server] max_concurrent_streams must be at least 1")

    @classmethod
    def from_section(cls, section: ServerSection) -> ServerSettings:
        """Settings from ``[server]``; the rest keep their defaults (``dataclasses.replace``
        changes them, e.g. a shorter heartbeat in tests)."""
        return cls(
            max_message_bytes=section.max_message_bytes,
            batch_size=section.batch_size,
            grace_seconds=section.grace_seconds,
            max_concurrent_streams=section.max_concurrent_streams,
        )

    def grpc_options(self, max_receive_bytes: int | None = None) -> list[tuple[str, int]]:
        """Channel arguments for grpc.aio.server(); ``max_receive_bytes``: the largest
        request a listener's methods take (at most ``max_message_bytes``)."""
        receive = self.max_message_bytes
        if max_receive_bytes is not None:
            receive = min(receive, max_receive_bytes)
        small = receive <= SMALL_REQUEST_BYTES
        return [
            ("grpc.max_receive_message_length", receive),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_concurrent_streams", self.max_concurrent_streams),
            ("grpc.keepalive_time_ms", self.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", self.min_client_ping_interval_ms),
            # Live subscriptions may be quiet for long: never cap pings without data.
            ("grpc.http2.max_pings_without_data", 0),
            # Two servers must never share a port by accident (grpc's default on Linux).
            ("grpc.so_reuseport", 0),
            # Only uncompressed requests: a compressed one is refused (UNIMPLEMENTED,
            # "Compression algorithm 'gzip' is disabled") before it is inflated, so 4 KB
            # on the wire cannot become 4 MiB to decode. Bit 0 = identity only.
            ("grpc.compression_enabled_algorithms_bitset", 1),
            # A connection that never finishes its handshake is dropped ...
            ("grpc.server_handshake_timeout_ms", self.handshake_timeout_ms),
            # ... and one with no call open is closed after a while.
            ("grpc.max_connection_idle_ms", self.max_connection_idle_ms),
            # A port that takes only small requests keeps HTTP/2's initial 64 KiB
            # receive window (no BDP growth): an oversized request is refused from its
            # header with little of it buffered. Measured with 50 connections sending
            # 4 MiB to the hub's public port: peak RSS +17 MiB instead of +329 MiB.
            ("grpc.http2.bdp_probe", 0 if small else 1),
        ]


@dataclass(frozen=True, slots=True)
class ServerTls:
    """A server's certificate and key, and the CA its clients must be certified by.

    ``client_ca`` None means server TLS only: gRPC then does not even ask for a client
    certificate, and every caller is anonymous (the hub's public port).
    """

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    @classmethod
    def from_files(cls, cert: Path, key: Path, client_ca: Path | None) -> ServerTls:
        def read(path: Path, what: str) -> bytes:
            return read_file(
                path,
                what,
                hint="check [tls] in samverka.toml; `samverka node init` writes these files",
            )

        return cls(
            cert_chain=read(cert, "TLS certificate"),
            private_key=read(key, "TLS key"),
            client_ca=read(client_ca, "CA certificate") if client_ca is not None else None,
        )

    @classmethod
    def mutual_from_config(cls, config: NodeConfig) -> ServerTls:
        """The node's member port: its certificate, and client certificates from its CA."""
        tls = config.tls
        return cls.from_files(config.path(tls.cert), config.path(tls.key), config.path(tls.ca))

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )
