"""Transport plumbing: mutual TLS refusals, health, reflection, message-size limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from samverka.node import Node
from samverka.transport.client import ClientTls, FeedClient, open_channel
from samverka.transport.server.status import PeerError
from samverka.v1 import feed_service_pb2
from serverkit import LEKSAND, Pki, Processes, ServerProcess, run


@pytest.mark.parametrize("who", ["no certificate", "certificate from another CA"])
def test_clients_outside_our_ca_are_refused(
    who: str, node: Node, pki: Pki, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(node.dir)
    tls = pki.anonymous() if who == "no certificate" else pki.foreign()

    async def attempt() -> None:
        async with FeedClient.connect(server.address, tls, unary_timeout=5) as client:
            await client.get_node_info()

    with pytest.raises(PeerError) as caught:
        run(attempt())
    # The TLS handshake fails, so gRPC reports the server as unreachable: nothing served.
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert "FeedService/" not in server.log_text()

    async def member() -> str:  # the same server still serves a member
        async with pki.client(server.address) as client:
            return (await client.get_node_info()).kommunkod

    assert run(member()) == LEKSAND


def test_health_and_reflection_for_a_generic_client(
    node: Node, pki: Pki, processes: Processes, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(node.dir)

    async def check() -> list[int]:
        channel = open_channel(server.address, pki.member())
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            return [
                (await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)).status
                for name in ("", "samverka.v1.FeedService")
            ]
        finally:
            await channel.close()

    assert run(check()) == [health_pb2.HealthCheckResponse.SERVING] * 2

    script = Path(__file__).parent / "scripts" / "generic_client.py"
    proc = processes.python(
        str(script), "--address", server.address, "--tls", str(pki.ca.parent), name="generic"
    )
    assert proc.wait(timeout=60) == 0, processes.errors("generic")
    answer = json.loads(processes.output("generic"))
    assert answer["services"] == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "samverka.v1.FeedService",
    ]
    assert answer["node_info"]["kommunkod"] == LEKSAND
    assert answer["node_info"]["keyId"] == node.signing_key.key_id
    assert answer["health"] == {"status": "SERVING"}


def test_message_size_limits(
    node: Node, pki: Pki, start_server: Callable[..., ServerProcess]
) -> None:
    limit = 300_000
    # Entries of ~20 kB each: one batch of 500 would be far over the limit.
    long_text = "Lärdomar om ärenden och åtgärder. " * 590
    from serverkit import publish

    for i in range(20):
        publish(node, "lesson", f"long-{i}", what_worked=long_text[:20_000])
    server = start_server(node.dir, max_message_bytes=str(limit))

    async def scenario() -> tuple[list[int], list[int]]:
        async with pki.client(server.address) as client:
            # A request larger than the server accepts is refused, nothing else happens.
            with pytest.raises(PeerError) as caught:
                await client.get_heads(["x" * (limit + 1)])
            assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            # Responses are split below the limit and still carry every entry.
            sizes, positions = [], []
            async for page in client.read_entries(0, batch_size=500):
                message = feed_service_pb2.ReadEntriesResponse(entries=page.entries)
                sizes.append(message.ByteSize())
                positions += [e.position for e in page.entries]
            return sizes, positions

    sizes, positions = run(scenario())
    assert positions == list(range(1, 27))
    assert len(sizes) >= 2 and max(sizes) <= limit  # one batch, split by size

    async def small_client() -> None:
        tls: ClientTls = pki.member()
        channel = open_channel(server.address, tls, max_receive_bytes=10_000)
        async with FeedClient(channel, address=server.address) as client:
            async for _ in client.read_entries(6):
                pass

    with pytest.raises(PeerError) as caught:
        run(small_client())
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
