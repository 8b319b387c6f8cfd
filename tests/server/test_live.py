"""Live subscriptions: entries from other processes, heartbeats, fan-out, SIGTERM drain."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc
from samverka.membership.serving import build_node_server
from samverka.node import Node
from samverka.transport.client import Page
from samverka.transport.server import ServerSettings
from serverkit import FEED, Pki, Processes, ServerProcess, next_entries, publish, run

WRITER = str(Path(__file__).parent / "scripts" / "writer.py")


def test_subscriber_sees_another_process_write_within_a_second(
    node: Node, pki: Pki, processes: Processes, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(node.dir)

    async def scenario() -> tuple[list[int], float]:
        async with pki.client(server.address) as client:
            pages = client.subscribe(0)
            got: list[int] = []
            while len(got) < len(FEED):  # history first
                got += [e.position for e in (await anext(pages)).entries]
            writer = processes.python(
                WRITER, "--dir", str(node.dir), "--id", "uc-live", name="writer"
            )
            page = await next_entries(
                pages, writer=writer, writer_errors=lambda: processes.errors("writer")
            )
            received = time.time()
            assert await asyncio.to_thread(writer.wait, 30) == 0, processes.errors("writer")
            got += [e.position for e in page.entries]
            # The operator's own CLI, authoring while the node serves, reaches it too.
            cli = processes.python(
                "-m", "samverka", "usecase", "add", "--dir", str(node.dir),
                "--title", "Taligenkänning i hemtjänsten", "--summary", "Dokumentation med tal.",
                "--area", "äldreomsorg", "--status", "pilot", "--visibility", "public",
                name="cli",
            )  # fmt: skip
            assert await asyncio.to_thread(cli.wait, 30) == 0, processes.errors("cli")
            async with asyncio.timeout(1.0):  # from the CLI's exit
                page = await next_entries(pages)
            got += [e.position for e in page.entries]
            await pages.aclose()
            return got, received

    got, received = run(scenario())
    written = float(processes.output("writer").split()[2])
    assert got == list(range(1, len(FEED) + 3))
    latency = received - written
    assert latency < 1.0, f"delivered after {latency:.3f} s"


def test_sigterm_ends_open_subscriptions_cleanly_and_exits_0(
    node: Node, pki: Pki, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(node.dir, grace_seconds="3")

    async def scenario() -> tuple[int, float, list[int]]:
        async with pki.client(server.address) as client:
            health = health_pb2_grpc.HealthStub(client.channel).Watch(
                health_pb2.HealthCheckRequest(service="samverka.v1.FeedService")
            )
            statuses = [(await health.read()).status]
            received = 0
            async for page in client.subscribe(0):
                received += len(page.entries)
                if received == len(FEED):
                    server.proc.send_signal(signal.SIGTERM)
                    signalled = time.monotonic()
            # The loop ended without an exception: the server closed the stream with OK.
            ended_after = time.monotonic() - signalled
            statuses.append((await health.read()).status)  # told while draining
            health.cancel()
            return received, ended_after, statuses

    received, ended_after, statuses = run(scenario())
    assert received == len(FEED)
    assert ended_after < 3.0
    serving = health_pb2.HealthCheckResponse
    assert statuses == [serving.SERVING, serving.NOT_SERVING]
    assert server.proc.wait(timeout=5) == 0
    log = server.log_text()
    assert "stopping: draining" in log
    assert "FeedService/Subscribe caller=1472" in log and " OK " in log


def test_heartbeats_fan_out_and_shared_reads(node: Node, pki: Pki) -> None:
    """50 subscribers on one in-process server: one append reaches all of them, read
    from the store a handful of times rather than 50; quiet streams get heartbeats."""
    settings = ServerSettings(heartbeat_seconds=0.3)
    subscribers = 50

    async def scenario() -> None:
        server = build_node_server(
            node.config,
            node.store,
            node.signing_key.public,
            listen="127.0.0.1:0",
            settings=settings,
        )
        await server.start()
        try:
            address = server.listeners[0].bound_address
            async with pki.client(address) as client:
                streams = [client.subscribe(len(FEED)) for _ in range(subscribers)]
                # Quiet: every stream gets a heartbeat carrying the cursor.
                first: list[Page] = await asyncio.gather(*(anext(s) for s in streams))
                assert all(p.heartbeat and p.next_position == len(FEED) for p in first)

                reader = _feed_servicer(server).reader
                queries_before = reader.queries
                await asyncio.to_thread(publish, node, "use_case", "uc-fanout")
                _feed_servicer(server).watcher.notify()  # in-process append: no polling wait
                started = time.monotonic()

                async def next_entries(stream: object) -> Page:
                    page = await anext(stream)  # type: ignore[call-overload]
                    while page.heartbeat:
                        page = await anext(stream)  # type: ignore[call-overload]
                    return page

                pages = await asyncio.gather(*(next_entries(s) for s in streams))
                elapsed = time.monotonic() - started
                assert all([e.position for e in p.entries] == [len(FEED) + 1] for p in pages)
                queries = reader.queries - queries_before
                assert queries <= 6, f"{queries} store reads for {subscribers} subscribers"
                assert elapsed < 1.0
                print(f"fan-out to {subscribers}: {elapsed * 1000:.0f} ms, {queries} store reads")
                for stream in streams:
                    await stream.aclose()
        finally:
            await server.stop(grace=1)

    run(scenario())


def _feed_servicer(server: object) -> Any:
    # The servicer is reachable through its binding's drain hook (a bound method).
    drain = server.listeners[0].services[0].drain  # type: ignore[attr-defined]
    return drain.__self__


def test_in_process_notify_from_a_worker_thread(node: Node) -> None:
    """Code appending in the server's process (ingest of pushes, a publisher) wakes
    subscribers with watcher.notify(), from whatever thread it runs in."""
    from samverka.store.logwatch import LogWatcher

    watcher = LogWatcher(node.store)  # no polling: only notify() can wake it

    def append_and_notify() -> None:
        publish(node, "use_case", "uc-thread")
        watcher.notify()  # position unknown: the watcher asks the store

    async def scenario() -> None:
        await watcher.start()
        assert watcher.position == len(FEED)
        assert not await watcher.wait_beyond(len(FEED), 0.05)  # nothing new: times out
        waiting = asyncio.create_task(watcher.wait_beyond(len(FEED), 5))
        await asyncio.sleep(0)
        started = time.monotonic()
        await asyncio.to_thread(append_and_notify)
        assert await waiting
        assert time.monotonic() - started < 1.0
        assert watcher.position == len(FEED) + 1
        await asyncio.to_thread(watcher.notify, len(FEED) + 5)  # a known position
        assert await watcher.wait_beyond(len(FEED) + 1, 1)
        assert watcher.position == len(FEED) + 5
        await watcher.close()

    run(scenario())
