"""Per-caller limits and connection timeouts of a NodeServer, over real (mutual) TLS.

- A caller past its concurrent calls or its rate is refused RESOURCE_EXHAUSTED with
  reason ``overloaded``; another caller is served meanwhile.
- A connection that never finishes its TLS handshake is closed; so is one left idle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
import time
from typing import Any

import grpc
import pytest
from samverka.node import Node
from samverka.store.logwatch import PollingLogWatcher
from samverka.transport.client import open_channel
from samverka.transport.server import (
    FeedServicer,
    NodeIdentity,
    NodeServer,
    ServerSettings,
    ServerTls,
)
from samverka.transport.server.status import PeerError, from_rpc_error
from serverkit import LEKSAND, Pki, run


def _server(node: Node, **settings: float) -> NodeServer:
    config = dataclasses.replace(ServerSettings(heartbeat_seconds=0.2), **settings)
    watcher = PollingLogWatcher(node.store)
    identity = NodeIdentity(LEKSAND, "Leksand", node.signing_key.public)
    tls_dir = node.dir / "tls"
    tls = ServerTls.from_files(tls_dir / "node.pem", tls_dir / "node.key", tls_dir / "ca.pem")
    server = NodeServer(config)
    server.add_resource(watcher)
    feed = FeedServicer(node.store, identity, watcher, config)
    server.add_listener("member", "127.0.0.1:0", tls, [feed.binding()])
    return server


def test_a_caller_past_its_concurrent_calls_is_refused(node: Node, pki: Pki) -> None:
    async def scenario() -> None:
        server = _server(node, caller_max_concurrent=2)
        await server.start()
        address = server.listeners[0].bound_address
        try:
            async with pki.client(address) as client:
                streams = [client.subscribe(0) for _ in range(2)]
                for stream in streams:  # both open and holding their slots
                    await anext(aiter(stream))
                with pytest.raises(PeerError) as caught:
                    await client.get_heads()
                assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert caught.value.reason == "overloaded"
                for stream in streams:
                    await stream.aclose()  # type: ignore[attr-defined]
                await asyncio.sleep(0.2)
                await client.get_heads()  # slots free again
        finally:
            await server.stop(grace=0)

    run(scenario())


def test_a_caller_past_its_rate_is_refused(node: Node, pki: Pki) -> None:
    async def scenario() -> list[str]:
        server = _server(node, caller_rate_per_second=1.0, caller_burst=5)
        await server.start()
        outcomes: list[str] = []
        try:
            async with pki.client(server.listeners[0].bound_address) as client:
                for _ in range(7):
                    try:
                        await client.get_heads()
                        outcomes.append("OK")
                    except PeerError as exc:
                        outcomes.append(exc.reason)
        finally:
            await server.stop(grace=0)
        return outcomes

    assert run(scenario()) == ["OK"] * 5 + ["overloaded"] * 2


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _closed_within(sock: socket.socket | ssl.SSLSocket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` (reads and drops what it sends)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    except TimeoutError:
        return float("inf")
    return time.monotonic() - started


def test_half_open_and_idle_connections_are_closed(node: Node, pki: Pki) -> None:
    async def scenario() -> tuple[float, float]:
        server = _server(node, handshake_timeout_ms=1000, max_connection_idle_ms=1000)
        await server.start()
        port = server.listeners[0].port
        try:
            # Half-open: TCP connected, TLS never started.
            silent = socket.create_connection(("127.0.0.1", port))
            handshake = await asyncio.to_thread(_closed_within, silent, 10)
            silent.close()
            # Idle: TLS with a member certificate and HTTP/2 set up, then no call.
            context = ssl.create_default_context(cafile=str(pki.ca))
            context.load_cert_chain(pki.member_cert, pki.member_key)
            context.check_hostname = False
            context.set_alpn_protocols(["h2"])
            raw = socket.create_connection(("127.0.0.1", port))
            tls = context.wrap_socket(raw, server_hostname="localhost")
            tls.sendall(
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
            )
            idle = await asyncio.to_thread(_closed_within, tls, 15)
            tls.close()
            return handshake, idle
        finally:
            await server.stop(grace=0)

    handshake, idle = run(scenario())
    assert handshake < 5, f"a connection without a handshake stayed open {handshake:.1f} s"
    assert idle < 8, f"an idle connection stayed open {idle:.1f} s"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_a_nodes_port_refuses_hostile_requests_before_decoding(node: Node, pki: Pki) -> None:
    """The wire limits on a node's own port (the hub's two ports: attacks/test_wire_attacks):
    4 MiB of 2 million empty items, 30,000 empty origins, the same gzip-compressed, a
    cursor of 2^63, an unknown field in a request wrapper; each refused precisely, none
    decoded, and the node answers a member's ordinary call after them."""
    feed = "/samverka.v1.FeedService/"
    cursor_2_63 = b"\x08" + _varint(2**63)
    cases = [
        ("ReadEntries", b"\x0a\x00" * (2 * 1024 * 1024 - 16), None,
         (grpc.StatusCode.RESOURCE_EXHAUSTED, "")),
        ("GetFeedHeads", b"\x0a\x00" * 30_000, None,
         (grpc.StatusCode.INVALID_ARGUMENT, "too_many_items")),
        ("GetFeedHeads", b"\x0a\x00" * 30_000, grpc.Compression.Gzip,
         (grpc.StatusCode.UNIMPLEMENTED, "")),
        ("ReadEntries", b"\x0a" + _varint(len(cursor_2_63)) + cursor_2_63, None,
         (grpc.StatusCode.INVALID_ARGUMENT, "out_of_range")),
        ("GetFeedHeads", b"\x98\x06\x01", None, (grpc.StatusCode.INVALID_ARGUMENT, "malformed")),
    ]  # fmt: skip

    async def call(
        address: str, method: str, raw: bytes, compression: object
    ) -> tuple[object, str]:
        async with open_channel(address, pki.member()) as channel:
            stream = method == "ReadEntries"
            make = channel.unary_stream if stream else channel.unary_unary
            rpc = make(feed + method, request_serializer=lambda b: b, response_deserializer=bytes)
            try:
                reply = rpc(raw, timeout=10, compression=compression)
                if stream:
                    async for _ in reply:
                        pass
                else:
                    await reply
            except grpc.aio.AioRpcError as err:
                return err.code(), str(getattr(from_rpc_error(err), "reason", ""))
            return grpc.StatusCode.OK, ""

    async def scenario() -> list[tuple[Any, str]]:
        server = _server(node)
        await server.start()
        address = server.listeners[0].bound_address
        try:
            outcomes = [await call(address, m, raw, comp) for m, raw, comp, _ in cases]
            async with pki.client(address) as client:
                await client.get_heads()  # still served
        finally:
            await server.stop(grace=0)
        return outcomes

    outcomes = run(scenario())
    assert outcomes == [expected for *_, expected in cases]
