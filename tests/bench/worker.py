"""The client side of the network figures, run as its own process by ``run.py``.

    python tests/bench/worker.py push   --hub ADDR --tpl DIR --entries FILE --count N
    python tests/bench/worker.py sync   --hub ADDR --node DIR
    python tests/bench/worker.py follow --hub ADDR --nodes DIR... --expect N
    python tests/bench/worker.py bare-server --entries FILE --count N --tpl DIR
    python tests/bench/worker.py bare-client --addr ADDR --tpl DIR --count N
    python tests/bench/worker.py bare-fanout-server --tpl DIR --entries FILE --streams S --sends N
    python tests/bench/worker.py bare-fanout-client --tpl DIR --addr ADDR --streams S

Each prints one JSON object on stdout (the last line) with its timings. Clocks:
``time.monotonic_ns()`` is CLOCK_MONOTONIC, one clock for every process on the machine,
so the harness compares its own timestamps with a worker's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import grpc
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fed
from samverka.transport.client import ClientTls, FeedClient
from samverka.transport.server.app import settle_heap
from samverka.v1 import feed_pb2, feed_service_pb2


def member_tls(node_dir: Path) -> ClientTls:
    tls = node_dir / "tls"
    return ClientTls.from_files(tls / "ca.pem", tls / "node.pem", tls / "node.key")


def emit(result: dict[str, object]) -> None:
    print(json.dumps(result), flush=True)


# -- hub ingest: 290 kommuner push their feeds --------------------------------------------


async def push(args: argparse.Namespace) -> None:
    from samverka.transport.hubclient import HubClient

    tpl = fed.Template(Path(args.tpl))
    entries = fed.read_entries(Path(args.entries), args.count)
    by_origin: dict[str, list[feed_pb2.LogEntry]] = defaultdict(list)
    for raw in entries:
        signed = feed_pb2.SignedEntry.FromString(raw)
        origin = feed_pb2.Entry.FromString(signed.entry).origin
        by_origin[origin].append(feed_pb2.LogEntry(signed=signed))
    links = {o: HubClient(args.hub, member_tls(tpl.node(o))) for o in by_origin}
    try:
        # Connect (TLS handshakes) before the clock starts: kommuner keep their channel.
        await asyncio.gather(*(link.head(o) for o, link in links.items()))
        gate = asyncio.Semaphore(args.concurrency)

        async def push_one(origin: str) -> int:
            accepted = 0
            feed = by_origin[origin]
            for start in range(0, len(feed), args.batch):
                async with gate:
                    reply = await links[origin].publish(feed[start : start + args.batch])
                accepted += reply.accepted
            return accepted

        started = time.monotonic()
        accepted = sum(await asyncio.gather(*(push_one(o) for o in by_origin)))
        elapsed = time.monotonic() - started
    finally:
        await asyncio.gather(*(link.close() for link in links.values()))
    emit({"accepted": accepted, "seconds": elapsed, "origins": len(by_origin)})


# -- sync: a node pulls from the hub --------------------------------------------------------


async def sync(args: argparse.Namespace) -> None:
    from samverka.membership.mirror import sync_from_hub
    from samverka.node import Node

    node = Node.open(Path(args.node))
    try:
        started, cpu = time.monotonic(), time.process_time()
        result = await sync_from_hub(node)
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    finally:
        node.close()
    emit(
        {
            "accepted": result.report.accepted,
            "seconds": elapsed,
            "cpu_s": cpu,
            "pages": result.report.pages,
        }
    )


# -- propagation: live subscribers ---------------------------------------------------------


async def follow(args: argparse.Namespace) -> None:
    """Follow the hub from many nodes at once; note when each stores each position."""
    from samverka.node import Node
    from samverka.replication.sync import follow_peer

    stop = asyncio.Event()
    stored: dict[str, dict[int, int]] = defaultdict(dict)  # node -> position -> ns
    received: dict[str, dict[int, int]] = defaultdict(dict)
    nodes = [Node.open(Path(d)) for d in args.nodes]
    ready = asyncio.Event()
    attached = 0

    class TimedClient(FeedClient):
        """Notes when a page arrives off the wire, before verification: a reader task
        takes pages from the stream as they come (the follower asks for the next page
        only after storing the last one, which would hide the arrival time)."""

        async def subscribe(self, after, entry_filter=None, batch_size=0):  # type: ignore[no-untyped-def, override]
            nonlocal attached
            queue: asyncio.Queue[object] = asyncio.Queue()
            stream = super().subscribe(after, entry_filter, batch_size)

            async def read() -> None:
                try:
                    async for page in stream:
                        now = time.monotonic_ns()
                        for item in page.entries:
                            received[self.address].setdefault(item.position, now)
                        await queue.put(page)
                except BaseException as exc:  # handed to the consumer below
                    await queue.put(exc)
                    return
                await queue.put(None)

            reader = asyncio.create_task(read())
            first = True
            try:
                while True:
                    page = await queue.get()
                    if page is None:
                        return
                    if isinstance(page, BaseException):
                        raise page
                    if first:
                        first = False
                        attached += 1
                        if attached == len(nodes):
                            ready.set()
                    yield page
            finally:
                reader.cancel()
                await asyncio.wait([reader])
                await stream.aclose()

    async def run_one(node: Node) -> None:
        keys = node.keyring()
        tls = member_tls(node.dir)
        client = TimedClient(
            grpc.aio.secure_channel(args.hub, tls.credentials()), address=node.origin
        )

        def on_entries(positions: list[int], code: str = node.origin) -> None:
            now = time.monotonic_ns()
            for p in positions:
                stored[code].setdefault(p, now)

        try:
            await follow_peer(
                node.store, keys, client, peer="hub", stop=stop, on_entries=on_entries
            )
        finally:
            await client.close()

    tasks = [asyncio.create_task(run_one(n)) for n in nodes]
    # Every subscription has its first message (a heartbeat or entries) once attached.
    async with asyncio.timeout(120):
        await ready.wait()
    settle_heap()  # as a serving node does once started
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    # Run until every node stored `expect` positions or the deadline passes.
    deadline = loop.time() + args.seconds
    while loop.time() < deadline:
        if all(len(stored[n.origin]) >= args.expect for n in nodes):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    for n in nodes:
        n.close()
    emit({"stored": stored, "received": received})


async def watch(args: argparse.Namespace) -> None:
    """Light subscribers: each receives the live stream and verifies every entry's
    signature (as a Nostr client checks each event), storing nothing."""
    from samverka.node import Node
    from samverka.protocol.verify import check_signature

    nodes = [Node.open(Path(d)) for d in args.nodes]
    keys = nodes[0].keyring()
    verified: dict[str, dict[int, int]] = defaultdict(dict)
    ready = asyncio.Event()
    attached = 0

    async def run_one(node: Node) -> None:
        nonlocal attached
        tls = member_tls(node.dir)
        async with FeedClient(
            grpc.aio.secure_channel(args.hub, tls.credentials()), address=node.origin
        ) as client:
            first = True
            async for page in client.subscribe(0):
                if first:
                    first = False
                    attached += 1
                    if attached == len(nodes):
                        ready.set()
                for item in page.entries:
                    check_signature(item.signed, keys)
                    verified[node.origin].setdefault(item.position, time.monotonic_ns())
                if len(verified[node.origin]) >= args.expect:
                    return

    tasks = [asyncio.create_task(run_one(n)) for n in nodes]
    async with asyncio.timeout(120):
        await ready.wait()
    settle_heap()  # as a serving node does once started
    print("READY", flush=True)
    await asyncio.wait(tasks, timeout=args.seconds)
    for t in tasks:
        t.cancel()
    for n in nodes:
        n.close()
    emit({"stored": verified, "received": verified})


# -- the bare transport limit ----------------------------------------------------------------


def _bare_messages(entries: list[bytes], batch: int, budget: int) -> list[bytes]:
    """ReadEntriesResponse messages carrying the entries as the hub would send them."""
    messages = []
    position = 0
    for start in range(0, len(entries), batch):
        chunk, size = [], 0
        for raw in entries[start : start + batch]:
            position += 1
            item = feed_pb2.LogEntry(position=position)
            item.signed.MergeFromString(raw)
            if chunk and size + len(raw) + 16 > budget:
                messages.append(
                    feed_service_pb2.ReadEntriesResponse(
                        entries=chunk, next=feed_pb2.Cursor(position=position - 1)
                    ).SerializeToString()
                )
                chunk, size = [], 0
            chunk.append(item)
            size += len(raw) + 16
        messages.append(
            feed_service_pb2.ReadEntriesResponse(
                entries=chunk, next=feed_pb2.Cursor(position=position)
            ).SerializeToString()
        )
    return messages


async def bare_server(args: argparse.Namespace) -> None:
    """A grpc.aio server streaming pre-serialized pages over mTLS: nothing else."""
    from samverka.transport.server.settings import ServerSettings

    tpl = fed.Template(Path(args.tpl))
    entries = fed.read_entries(Path(args.entries), args.count)
    messages = _bare_messages(entries, args.batch, ServerSettings().max_message_bytes - 1024)

    async def stream(request: bytes, context: grpc.aio.ServicerContext) -> object:  # type: ignore[type-arg]
        for message in messages:
            yield message

    handler = grpc.method_handlers_generic_handler(
        "bench.Bare",
        {
            "Read": grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=None, response_serializer=None
            )
        },
    )
    server = grpc.aio.server(options=[("grpc.max_send_message_length", 16 * 1024 * 1024)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", _bare_credentials(tpl))
    await server.start()
    print(f"PORT {port} {len(messages)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(0)


async def bare_client(args: argparse.Namespace) -> None:
    """Read the bare stream, decoding each message as sync does (ReadEntriesResponse)."""
    tpl = fed.Template(Path(args.tpl))
    tls = member_tls(tpl.node(fed.ORIGINS[0]))
    channel = grpc.aio.secure_channel(
        args.addr, tls.credentials(), options=[("grpc.max_receive_message_length", 16 << 20)]
    )
    read = channel.unary_stream(
        "/bench.Bare/Read",
        request_serializer=None,
        response_deserializer=feed_service_pb2.ReadEntriesResponse.FromString,
    )
    await channel.channel_ready()
    started = time.monotonic()
    count = 0
    async for message in read(b""):
        count += len(message.entries)
    elapsed = time.monotonic() - started
    await channel.close()
    emit({"entries": count, "seconds": elapsed})


def _bare_credentials(tpl: fed.Template) -> grpc.ServerCredentials:
    hub_tls = tpl.hub / "tls"
    return grpc.ssl_server_credentials(
        [((hub_tls / "node.key").read_bytes(), (hub_tls / "node.pem").read_bytes())],
        root_certificates=(hub_tls / "ca.pem").read_bytes(),
        require_client_auth=True,
    )


async def bare_fanout_server(args: argparse.Namespace) -> None:
    """The bare limit of the hub's live fan-out: a grpc.aio server over mTLS that sends
    the same pre-serialized one-entry SubscribeResponse to each of ``--streams``
    streams, ``--sends`` times ``--gap`` seconds apart (as the hub sends each new
    entry to its subscribers); prints its own CPU per message and stream."""
    entry = fed.read_entries(Path(args.entries), 1)[0]
    item = feed_pb2.LogEntry(position=1)
    item.signed.MergeFromString(entry)
    message = feed_service_pb2.SubscribeResponse(
        entries=[item], next=feed_pb2.Cursor(position=1)
    ).SerializeToString()
    queues: list[asyncio.Queue[bytes | None]] = []
    attached = asyncio.Event()
    ended = 0
    all_ended = asyncio.Event()

    async def stream(request: bytes, context: grpc.aio.ServicerContext) -> object:  # type: ignore[type-arg]
        nonlocal ended
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        queues.append(queue)
        if len(queues) == args.streams:
            attached.set()
        try:
            while (message := await queue.get()) is not None:
                yield message
        finally:
            ended += 1
            if ended == args.streams:
                all_ended.set()

    handler = grpc.method_handlers_generic_handler(
        "bench.Bare",
        {
            "Live": grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=None, response_serializer=None
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", _bare_credentials(fed.Template(Path(args.tpl))))
    await server.start()
    print(f"PORT {port}", flush=True)
    async with asyncio.timeout(120):
        await attached.wait()
    for queue in queues:  # warm-up: the first message of each stream is not counted
        queue.put_nowait(message)
    await asyncio.sleep(max(args.gap, 0.5))
    started, wall = time.process_time(), time.monotonic()
    for _ in range(args.sends):
        for queue in queues:
            queue.put_nowait(message)
        await asyncio.sleep(args.gap)
    for queue in queues:
        queue.put_nowait(None)
    async with asyncio.timeout(60):
        await all_ended.wait()
    cpu = time.process_time() - started
    emit(
        {
            "cpu_per_send_us": cpu / (args.sends * args.streams) * 1e6,
            "cpu_s": cpu,
            "seconds": time.monotonic() - wall,
            "message_bytes": len(message),
        }
    )
    await server.stop(0)


async def bare_fanout_client(args: argparse.Namespace) -> None:
    """``--streams`` subscribers of the bare fan-out, one mTLS connection each (with each
    kommun's own certificate, as the hub's subscribers have), decoding each message."""
    tpl = fed.Template(Path(args.tpl))
    channels = [
        grpc.aio.secure_channel(args.addr, member_tls(tpl.node(origin)).credentials())
        for origin in fed.ORIGINS[: args.streams]
    ]
    received = 0

    async def read(channel: grpc.aio.Channel) -> None:
        nonlocal received
        live = channel.unary_stream(
            "/bench.Bare/Live",
            request_serializer=None,
            response_deserializer=feed_service_pb2.SubscribeResponse.FromString,
        )
        async for message in live(b""):
            received += len(message.entries)

    await asyncio.gather(*(read(c) for c in channels))
    for channel in channels:
        await channel.close()
    emit({"received": received})


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("push")
    p.add_argument("--hub", required=True)
    p.add_argument("--tpl", required=True)
    p.add_argument("--entries", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=8)
    p = sub.add_parser("sync")
    p.add_argument("--hub", required=True)
    p.add_argument("--node", required=True)
    p = sub.add_parser("follow")
    p.add_argument("--hub", required=True)
    p.add_argument("--nodes", nargs="+", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--seconds", type=float, default=120)
    p = sub.add_parser("watch")
    p.add_argument("--hub", required=True)
    p.add_argument("--nodes", nargs="+", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--seconds", type=float, default=120)
    p = sub.add_parser("bare-server")
    p.add_argument("--tpl", required=True)
    p.add_argument("--entries", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--batch", type=int, default=500)
    p = sub.add_parser("bare-fanout-server")
    p.add_argument("--tpl", required=True)
    p.add_argument("--entries", required=True)
    p.add_argument("--streams", type=int, required=True)
    p.add_argument("--sends", type=int, required=True)
    p.add_argument("--gap", type=float, default=0.2)
    p = sub.add_parser("bare-fanout-client")
    p.add_argument("--tpl", required=True)
    p.add_argument("--addr", required=True)
    p.add_argument("--streams", type=int, required=True)
    p = sub.add_parser("bare-client")
    p.add_argument("--tpl", required=True)
    p.add_argument("--addr", required=True)
    args = parser.parse_args()
    mode = {
        "push": push,
        "sync": sync,
        "follow": follow,
        "watch": watch,
        "bare-server": bare_server,
        "bare-client": bare_client,
        "bare-fanout-server": bare_fanout_server,
        "bare-fanout-client": bare_fanout_client,
    }[args.mode]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(mode(args))


if __name__ == "__main__":
    main()
