"""Load generator for the Nostr relay peer figure. Runs in the throwaway venv that
holds nostr-relay (aionostr for events, coincurve for BIP-340 Schnorr, websockets).

    python nostr_client.py ingest URL --events N --authors 290
    python nostr_client.py fanout URL --subscribers S --publishes M --processes P

Ingest: N kind-1 events (Swedish text as long as a Samverka entry's record), signed
by 290 authors before the clock starts, sent over 290 WebSocket connections at once
(one per author; each keeps up to 32 events in flight and counts the relay's OKs: the
protocol has no batch, so pipelining is its best case); events/s = N / time to the
last OK.

Fan-out: S connections, spread over P listener processes (``listen``, as our live
subscribers are spread over worker processes), REQ new kind-1 events; one author
publishes M events from the parent; each subscriber verifies the Schnorr signature
of what it receives (as our subscribers verify Ed25519) and notes the time. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

import websockets
from aionostr.event import Event
from coincurve import PrivateKey

#: Events one connection keeps in flight during ingest.
WINDOW = 32

WORDS = [
    "äldreomsorg",
    "hemtjänst",
    "schemaläggning",
    "skola",
    "förskola",
    "bygglov",
    "ekonomi",
    "fakturor",
    "chattbot",
    "språkmodell",
    "översättning",
    "tolkning",
    "socialtjänst",
    "handläggning",
    "beslutsstöd",
    "upphandling",
]


def make_events(n: int, authors: int, seed: int = 1) -> list[list[dict[str, object]]]:
    rng = random.Random(seed)
    keys = [PrivateKey() for _ in range(authors)]
    per_author: list[list[dict[str, object]]] = [[] for _ in range(authors)]
    now = int(time.time())
    for i in range(n):
        a = i % authors
        key = keys[a]
        content = " ".join(rng.choices(WORDS, k=150))[:1100]
        event = Event(
            pubkey=key.public_key_xonly.format().hex(),
            content=content,
            created_at=now,
            kind=1,
            tags=[["t", rng.choice(WORDS)], ["t", rng.choice(WORDS)]],
        )
        event.sign(key.secret.hex())
        per_author[a].append(event.to_json_object())
    return per_author


async def ingest(url: str, events: int, authors: int) -> dict[str, object]:
    feeds = make_events(events, authors)
    conns = [
        await websockets.connect(url, max_size=None, ping_interval=None) for _ in range(authors)
    ]

    async def send_all(ws: websockets.ClientConnection, feed: list[dict[str, object]]) -> int:
        ok = replies = sent = 0
        while replies < len(feed):
            # Keep up to WINDOW events in flight: the protocol's best case without
            # burying the relay's replies under a backlog.
            while sent < len(feed) and sent - replies < WINDOW:
                await ws.send(json.dumps(["EVENT", feed[sent]]))
                sent += 1
            reply = json.loads(await ws.recv())
            if reply[0] == "OK":
                replies += 1
                ok += bool(reply[2])
        return ok

    started = time.monotonic()
    accepted = sum(
        await asyncio.gather(*(send_all(ws, f) for ws, f in zip(conns, feeds, strict=False)))
    )
    elapsed = time.monotonic() - started
    for ws in conns:
        await ws.close()
    return {"events": events, "accepted": accepted, "seconds": elapsed}


async def listen(url: str, pubkey: str, subscribers: int, publishes: int) -> None:
    """``subscribers`` connections REQ ``pubkey``'s kind-1 events; each verifies what it
    receives. Prints READY once all are subscribed, then one JSON line: per event id,
    the CLOCK_MONOTONIC arrival time at each subscriber."""
    arrived: list[dict[str, float]] = [{} for _ in range(subscribers)]
    conns = [
        await websockets.connect(url, max_size=None, ping_interval=None) for _ in range(subscribers)
    ]
    for i, ws in enumerate(conns):
        await ws.send(json.dumps(["REQ", f"s{i}", {"kinds": [1], "authors": [pubkey]}]))
        while json.loads(await ws.recv())[0] != "EOSE":
            pass

    async def one(i: int, ws: websockets.ClientConnection) -> None:
        async for message in ws:
            data = json.loads(message)
            if data[0] == "EVENT":
                event = Event(**data[2])
                assert event.verify()
                arrived[i][event.id] = time.monotonic()
                if len(arrived[i]) >= publishes:
                    return

    listeners = [asyncio.create_task(one(i, ws)) for i, ws in enumerate(conns)]
    print("READY", flush=True)
    await asyncio.wait(listeners, timeout=60 + publishes * 5)
    for ws in conns:
        await ws.close()
    times: dict[str, list[float]] = {}
    for a in arrived:
        for event_id, t in a.items():
            times.setdefault(event_id, []).append(t)
    print(json.dumps(times), flush=True)


async def fanout(
    url: str, subscribers: int, publishes: int, gap: float, processes: int
) -> dict[str, object]:
    """The subscribers spread over ``processes`` listener processes (as our live
    subscribers over worker processes); one author publishes from this one."""
    author = PrivateKey()
    pubkey = author.public_key_xonly.format().hex()
    shares = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
    listeners = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "listen",
            url,
            "--pubkey",
            pubkey,
            "--subscribers",
            str(n),
            "--publishes",
            str(publishes),
            stdout=asyncio.subprocess.PIPE,
        )
        for n in shares
        if n
    ]
    for proc in listeners:
        assert proc.stdout is not None
        if (await proc.stdout.readline()).strip() != b"READY":
            raise RuntimeError("a listener failed to subscribe")
    sent: dict[str, float] = {}
    async with websockets.connect(url, max_size=None, ping_interval=None) as pub:
        for n in range(publishes):
            event = Event(
                pubkey=pubkey,
                content=f"propagation {n} " + "å" * 900,
                kind=1,
                created_at=int(time.time()),
            )
            event.sign(author.secret.hex())
            sent[event.id] = time.monotonic()
            await pub.send(json.dumps(["EVENT", event.to_json_object()]))
            await pub.recv()
            await asyncio.sleep(gap)
    latencies: list[float] = []
    for proc in listeners:
        out, _ = await proc.communicate()
        times: dict[str, list[float]] = json.loads(out.decode().strip().splitlines()[-1])
        latencies += [(t - sent[eid]) * 1e3 for eid, ts in times.items() if eid in sent for t in ts]
    return {
        "latencies_ms": latencies,
        "expected": subscribers * publishes,
        "processes": len(listeners),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["ingest", "fanout", "listen"])
    p.add_argument("url")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--authors", type=int, default=290)
    p.add_argument("--subscribers", type=int, default=290)
    p.add_argument("--publishes", type=int, default=20)
    p.add_argument("--gap", type=float, default=0.5)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--pubkey", default="")
    a = p.parse_args()
    if a.mode == "listen":
        asyncio.run(listen(a.url, a.pubkey, a.subscribers, a.publishes))
        return
    if a.mode == "ingest":
        result = asyncio.run(ingest(a.url, a.events, a.authors))
    else:
        result = asyncio.run(fanout(a.url, a.subscribers, a.publishes, a.gap, a.processes))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
