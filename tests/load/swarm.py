"""Many simulated nodes in one process: pushers or subscribers against a real hub.

Run by tests/load/test_load.py (one pushing process, a few subscribing ones)::

    python tests/load/swarm.py push      --spec SPEC.json --first 0 --count 290 --out R.json
    python tests/load/swarm.py subscribe --spec SPEC.json --first 0 --count 145 --out R.json

SPEC.json holds the hub's member address, the CA, and per member its kommunkod,
signing key and TLS certificate and key. Each simulated node is an asyncio task with
its own mutual-TLS channel and identity:

- ``push``: signs its ``entries_per_node`` entries first, then waits for the file
  ``go`` to appear and publishes them in ``publishes_per_node`` calls of Publish
  (the real client, ``samverka.transport.hubclient.HubClient``), with a little jitter; a call
  the hub did not answer in time is retried from the hub's head, as the push agent does;
- ``subscribe``: subscribes from ``start_position`` (``samverka.transport.client.FeedClient``)
  and collects every entry until it holds ``expected`` of them or ``deadline``
  passes. Entries are counted by (origin, sequence, entry hash), so a duplicate or a
  changed entry cannot make up for a missing one.

The result file says, per node, what happened: errors (any failed call or stream),
entries published or received, and timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: factories

import factories
from samverka.errors import SamverkaError
from samverka.protocol.signing import SigningKey, entry_hash
from samverka.transport.client import ClientTls, FeedClient
from samverka.transport.hubclient import HubClient
from samverka.transport.server.status import PeerError
from samverka.v1 import feed_pb2


@dataclass
class NodeResult:
    code: str
    errors: list[str] = field(default_factory=list)
    published: int = 0
    received: int = 0
    #: Calls retried after the hub did not answer in time or was unavailable.
    retries: int = 0
    #: Seconds from "go" until the last call returned / the last entry arrived.
    done_after: float = 0.0


def load_spec(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def tls_of(spec: dict[str, Any], member: dict[str, str]) -> ClientTls:
    return ClientTls(
        ca=spec["ca_pem"].encode(),
        cert=member["cert_pem"].encode(),
        key=member["tls_key_pem"].encode(),
    )


async def wait_for_go(go: Path) -> float:
    while not go.exists():
        await asyncio.sleep(0.005)
    return time.monotonic()


def sign(spec: dict[str, Any], member: dict[str, str]) -> list[feed_pb2.SignedEntry]:
    """The node's entries, signed before the clock starts."""
    writer = factories.FeedWriter(member["code"], SigningKey.from_pem(member["key_pem"].encode()))
    return [
        writer.publish(record_id=f"load-{i}", title=f"Last {member['code']} nummer {i}")
        for i in range(spec["entries_per_node"])
    ]


#: Failures a pushing node retries, as the push agent does: the hub is busy or away.
TRANSIENT = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE})


async def push(
    spec: dict[str, Any], member: dict[str, str], entries: list[feed_pb2.SignedEntry], go: Path
) -> NodeResult:
    """Publish ``entries`` in ``publishes_per_node`` calls. Like the push agent, a call the
    hub did not answer in time (or could not take) is retried with back-off from the
    hub's head of the feed; anything else is an error."""
    result = NodeResult(member["code"])
    code = member["code"]
    size = max(1, len(entries) // spec["publishes_per_node"])
    held = 0  # the hub's head of this feed, as far as this node knows
    backoff = 0.2
    async with HubClient(spec["member"], tls_of(spec, member), publish_timeout=60) as link:
        started = await wait_for_go(go)
        await asyncio.sleep(random.uniform(0, spec["jitter_seconds"]))
        while held < len(entries):
            batch = entries[held : held + size]
            try:
                reply = await link.publish([feed_pb2.LogEntry(signed=e) for e in batch])
                head = next((h for h in reply.heads if h.origin == code), None)
                held = head.sequence if head is not None else held
                backoff = 0.2
            except PeerError as exc:
                if exc.code not in TRANSIENT:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                    break
                result.retries += 1
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 5.0)
                try:  # what did the hub store meanwhile? (a timed-out call may have)
                    head = await link.head(code)
                    held = head.sequence if head is not None else 0
                except PeerError:
                    continue
            except SamverkaError as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")
                break
            await asyncio.sleep(random.uniform(0, spec["jitter_seconds"]))
        result.published = held
        result.done_after = time.monotonic() - started
    return result


async def subscribe(
    spec: dict[str, Any], member: dict[str, str], go: Path, connected: asyncio.Event
) -> NodeResult:
    """Collect every entry after start_position; ``connected`` is set at the first one."""
    result = NodeResult(member["code"])
    expected = spec["expected"]
    seen: set[tuple[str, int, bytes]] = set()
    started = 0.0
    client = FeedClient.connect(spec["member"], tls_of(spec, member))
    try:
        async with asyncio.timeout(spec["deadline_seconds"]):
            waiting = asyncio.ensure_future(wait_for_go(go))
            async for page in client.subscribe(spec["start_position"]):
                for item in page.entries:
                    if item.HasField("signed"):
                        entry = feed_pb2.Entry.FromString(item.signed.entry)
                        seen.add((entry.origin, entry.sequence, entry_hash(item.signed.entry)))
                    else:
                        result.errors.append(f"a stand-in at position {item.position}")
                if seen:
                    connected.set()
                if len(seen) >= expected:
                    break
            started = await waiting
    except TimeoutError:
        result.errors.append(f"deadline: {len(seen)} of {expected} entries")
    except SamverkaError as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        await client.close()
    result.received = len(seen)
    result.done_after = time.monotonic() - started if started else 0.0
    return result


async def main_async(args: argparse.Namespace) -> list[NodeResult]:
    spec = load_spec(args.spec)
    members = spec["members"][args.first : args.first + args.count]
    go = Path(spec["go"])
    ready = Path(args.out).with_suffix(".ready")
    if args.role == "push":
        signed = [sign(spec, m) for m in members]
        tasks = [
            asyncio.ensure_future(push(spec, m, e, go))
            for m, e in zip(members, signed, strict=True)
        ]
        ready.write_text("ready")
    else:
        events = [asyncio.Event() for _ in members]
        tasks = [
            asyncio.ensure_future(subscribe(spec, m, go, e))
            for m, e in zip(members, events, strict=True)
        ]
        # Ready once every stream has delivered the entry before start_position + 1.
        await asyncio.gather(*(e.wait() for e in events))
        ready.write_text("ready")
    results = await asyncio.gather(*tasks, return_exceptions=True)
    out: list[NodeResult] = []
    for member, r in zip(members, results, strict=True):
        if isinstance(r, BaseException):
            out.append(NodeResult(member["code"], errors=[f"crashed: {r!r}"]))
        else:
            out.append(r)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["push", "subscribe"])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(main_async(args))
    args.out.write_text(json.dumps([asdict(r) for r in results]))


if __name__ == "__main__":
    main()
