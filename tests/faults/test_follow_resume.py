"""After a long outage of the hub, its followers take the next entry within 5 s of its return.

Four followers (the real follow code, ``samverka.replication.sync.follow_peer``, with
its default back-off, as ``node serve``'s follow agent uses it; each its own store,
certificate and channel, like four nodes) follow a real ``hub serve``. The hub is
stopped for a long outage and started again on the same ports. An entry published as
soon as it listens must reach every follower within :data:`RESUME_LIMIT` s: a follower
waits out the remainder of its current back-off (and its channel its reconnect
back-off) before it asks again, so both must stay short however long the hub was away.

"Long" means long enough for both back-offs to have grown to their caps, after which a
longer outage changes nothing. The follower's (``sync.FOLLOW_MAX_BACKOFF``, 3 s) is
reached at the 4th failure in a row (0.5, 1, 2, then 3 s, each jittered to 50-100 %;
each failure itself takes ~1-2 s of gRPC's own retries of UNAVAILABLE), so the hub stays
away until every follower has failed that often (counted through ``on_error``, ~10 s),
and at least :data:`OUTAGE` s, over twice what the channel's reconnect back-off
(``transport.client``: 0.2 s × 1.6ⁿ, ±20 %, capped at 2 s) needs to reach its cap. (The
outage was a fixed 35 s when the follower's cap was 30 s.)
"""

from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path

from arena import build_hub, run, serve_hub
from factories import FeedWriter
from samverka.errors import SamverkaError
from samverka.protocol.directory import keyring_from_directory
from samverka.protocol.entries import parse_signed
from samverka.replication.sync import FOLLOW_MAX_BACKOFF, follow_peer
from samverka.store.store import Store
from samverka.transport.client import FeedClient
from samverka.transport.hubclient import HubClient
from samverka.v1 import feed_pb2
from samverka_hub.folder import open_hub
from soakresults import record

PUSHER = "2029"
FOLLOWERS = ("1472", "2080", "1384", "2026")
#: Seconds the hub is away at least: over twice the time the channel's reconnect back-off
#: needs to reach its cap (the follower's own is waited for, see the module's docstring).
OUTAGE = 8.0
RESUME_LIMIT = 5.0


def failures_to_reach_the_cap() -> int:
    """Failures in a row after which follow_peer's default back-off waits its cap."""
    initial = inspect.signature(follow_peer).parameters["min_backoff"].default
    failures = 1
    while initial * 2 ** (failures - 1) < FOLLOW_MAX_BACKOFF:
        failures += 1
    return failures


def test_followers_resume_within_5_s_of_the_hubs_return_after_a_long_outage(
    tmp_path: Path,
) -> None:
    members = build_hub(tmp_path / "hub", (PUSHER, *FOLLOWERS))
    with open_hub(tmp_path / "hub") as opened:
        directory = opened.council.current_directory()
    assert directory is not None
    keys = keyring_from_directory(directory.directory)
    hub = serve_hub(tmp_path / "hub", tmp_path / "logs")
    writer = FeedWriter(PUSHER, members[PUSHER].key)
    entries = [writer.publish("use_case", record_id=f"outage-{i}") for i in (1, 2)]
    stores = {code: Store.open(f"sqlite:///{tmp_path / code}.db") for code in FOLLOWERS}
    arrived: dict[str, dict[int, float]] = {code: {} for code in FOLLOWERS}
    failed: dict[str, list[float]] = {code: [] for code in FOLLOWERS}

    async def scenario() -> tuple[float, float, dict[str, float]]:
        stop = asyncio.Event()

        async def follow(code: str) -> None:
            store = stores[code]

            def stored(positions: list[int]) -> None:
                now = time.monotonic()
                for position in positions:
                    for e in store.read_log(position - 1, 1).entries:
                        if e.HasField("signed") and parse_signed(e.signed).origin == PUSHER:
                            arrived[code].setdefault(parse_signed(e.signed).sequence, now)

            async with FeedClient.connect(hub.member, members[code].tls()) as client:
                await follow_peer(
                    store,
                    keys,
                    client,
                    peer="hub",
                    stop=stop,
                    on_entries=stored,
                    on_error=lambda _err: failed[code].append(time.monotonic()),
                )

        async def publish(sequence: int) -> float:
            async with HubClient(hub.member, members[PUSHER].tls()) as link:
                while True:
                    try:
                        reply = await link.publish(
                            [feed_pb2.LogEntry(signed=entries[sequence - 1])]
                        )
                        break
                    except SamverkaError:
                        await asyncio.sleep(0.05)
            assert reply.accepted == 1, reply
            return time.monotonic()

        async def everyone_has(sequence: int, within: float) -> None:
            deadline = time.monotonic() + within
            while any(sequence not in got for got in arrived.values()):
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.02)

        followers = [asyncio.create_task(follow(code)) for code in FOLLOWERS]
        try:
            await publish(1)
            await everyone_has(1, 10)
            assert all(1 in got for got in arrived.values()), arrived
            away = time.monotonic()
            await asyncio.to_thread(hub.stop)
            await asyncio.sleep(OUTAGE)
            capped = failures_to_reach_the_cap()
            deadline = time.monotonic() + 60
            while any(sum(t >= away for t in times) < capped for times in failed.values()):
                assert time.monotonic() < deadline, failed
                await asyncio.sleep(0.05)
            await asyncio.to_thread(hub.start)
            back = time.monotonic()  # the hub listens again (its address file is written)
            await publish(2)
            await everyone_has(2, 60)
        finally:
            stop.set()
            await asyncio.gather(*followers)
        return away, back, {code: got.get(2, float("inf")) - back for code, got in arrived.items()}

    try:
        away, back, resumed = run(scenario(), timeout=180)
    finally:
        hub.stop()
        for store in stores.values():
            store.close()
    while_away = {code: sum(away <= t < back for t in times) for code, times in failed.items()}
    slowest = max(resumed.values())
    print(
        f"\nhub away {back - away:.0f} s: {len(FOLLOWERS)} followers took the next entry "
        f"{slowest:.2f} s after its return ("
        + ", ".join(f"{v:.2f}" for v in resumed.values())
        + f"); failures while it was away: {while_away}"
    )
    record(
        "fault",
        f"hub away until the back-offs are capped, {len(FOLLOWERS)} followers",
        survived=slowest <= RESUME_LIMIT,
        resume_seconds=round(slowest, 2),
        away_seconds=round(back - away, 1),
    )
    assert slowest <= RESUME_LIMIT, resumed
    # ... and the outage was a long one: every follower's back-off had reached its cap.
    assert min(while_away.values()) >= failures_to_reach_the_cap(), while_away
