"""sync_from_peer and follow_peer against a real server over mutual TLS."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import factories
import pytest
from samverka.errors import Reason
from samverka.membership.serving import build_node_server
from samverka.node import Node
from samverka.protocol.verify import KeyRing, TrustedKey
from samverka.replication.ingest import ingest
from samverka.replication.sync import SyncStopped, follow_peer, sync_from_peer
from samverka.store.store import Store
from samverka.v1 import feed_service_pb2, records_pb2
from serverkit import FEED, LEKSAND, TIBRO, Pki, Processes, ServerProcess, publish, run

WRITER = str(Path(__file__).parent / "scripts" / "writer.py")


async def _serve(node: Node) -> tuple[object, str]:
    server = build_node_server(
        node.config, node.store, node.signing_key.public, listen="127.0.0.1:0"
    )
    await server.start()
    return server, server.listeners[0].bound_address


def test_refusal_stops_precisely_and_a_later_sync_resumes(
    node: Node, pki: Pki, tmp_path: Path
) -> None:
    # The node also mirrors three entries of Tibro's feed, then writes two of its own.
    tibro = factories.FeedWriter(TIBRO)
    mirrored = [tibro.publish("use_case", record_id=f"uc-{i}") for i in range(3)]
    assert ingest(node.store, tibro.keyring(), mirrored).accepted == 3
    publish(node, "use_case", "uc-after-1")
    publish(node, "use_case", "uc-after-2")
    reader = Store.open(f"sqlite:///{tmp_path / 'reader.db'}")
    keys = KeyRing([TrustedKey(LEKSAND, node.signing_key.public)])

    async def scenario() -> None:
        server, address = await _serve(node)
        try:
            async with pki.client(address) as client:
                with pytest.raises(SyncStopped) as caught:
                    await sync_from_peer(reader, keys, client, peer="leksand", batch_size=4)
                stopped = caught.value
                assert (stopped.reason, stopped.origin, stopped.sequence) == (
                    Reason.UNKNOWN_KEY,
                    TIBRO,
                    1,
                )
                assert (
                    "sync from leksand stopped (position 7 of its log): 1472#1: unknown_key"
                    in str(stopped)
                )
                # Everything before the refused entry is stored; the cursor stops there.
                assert stopped.report.accepted == len(FEED)
                assert reader.get_cursor("leksand") == len(FEED)
                assert reader.log_position() == len(FEED)

                keys.add(tibro.trusted_key())  # e.g. after fetching the directory
                report = await sync_from_peer(reader, keys, client, peer="leksand")
                assert (report.start_position, report.accepted, report.position) == (
                    len(FEED),
                    5,
                    len(FEED) + 5,
                )
        finally:
            await server.stop(grace=0)  # type: ignore[attr-defined]

    run(scenario())
    assert reader.heads() == node.store.heads()
    reader.close()


def test_filtered_sync_fills_sequence_gaps_from_the_peer(
    node: Node, pki: Pki, tmp_path: Path
) -> None:
    reader = Store.open(f"sqlite:///{tmp_path / 'reader.db'}")
    keys = KeyRing([TrustedKey(LEKSAND, node.signing_key.public)])
    lessons = feed_service_pb2.EntryFilter(kinds=[records_pb2.RECORD_KIND_LESSON])

    async def scenario() -> None:
        server, address = await _serve(node)
        try:
            async with pki.client(address) as client:
                # The first lesson is sequence 4: 1-3 are missing, so sync asks for them.
                report = await sync_from_peer(
                    reader, keys, client, peer="leksand", entry_filter=lessons
                )
                assert report.gaps_filled == 1
                assert report.position == len(FEED)
        finally:
            await server.stop(grace=0)  # type: ignore[attr-defined]

    run(scenario())
    head = reader.head(LEKSAND)
    assert head is not None and head.sequence == len(FEED)
    reader.close()


def test_follow_peer_keeps_syncing_across_a_server_restart(
    node: Node,
    pki: Pki,
    processes: Processes,
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    first = start_server(node.dir)
    port = first.address.rsplit(":", 1)[1]
    reader = Store.open(f"sqlite:///{tmp_path / 'reader.db'}")
    keys = KeyRing([TrustedKey(LEKSAND, node.signing_key.public)])

    async def scenario() -> None:
        stop = asyncio.Event()
        async with pki.client(first.address) as client:
            follower = asyncio.create_task(
                follow_peer(reader, keys, client, peer="leksand", stop=stop, min_backoff=0.1)
            )

            async def until(position: int) -> None:
                async with asyncio.timeout(15):
                    while reader.log_position() < position:
                        await asyncio.sleep(0.02)

            await until(len(FEED))
            first.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(first.proc.wait, 10) == 0
            # The same node comes back on the same port; the follower reconnects.
            second = await asyncio.to_thread(start_server, node.dir, "127.0.0.1", port)
            assert second.address == first.address
            writer = processes.python(WRITER, "--dir", str(node.dir), "--id", "uc-x", name="w")
            assert await asyncio.to_thread(writer.wait, 30) == 0, processes.errors("w")
            await until(len(FEED) + 1)
            stop.set()
            report = await asyncio.wait_for(follower, 5)
            assert report.accepted == len(FEED) + 1

    run(scenario())
    assert reader.heads() == node.store.heads()
    reader.close()
