"""Samverka's benchmarks: each figure beside its raw limit, measured in the same run.

    make bench                      # everything at the issue's sizes
    make bench-quick                # a smoke run (a minute or two, small sizes)
    .venv/bin/python tests/bench/run.py --only ingest,sync --repeat 3

Prints one table and writes ``bench-results.json`` (one object per figure: name,
value, unit, limit, ratio, parameters, target, meets) and the chart
``docs/bench-full-sync.svg`` (full-sync time against federation size). The method and
the latest figures are in docs/BENCHMARKS.md. Generated data is cached in
``.bench-cache/`` (see fed.py).

Network figures use real processes (``samverka hub serve``, ``samverka node serve``,
tests/bench/worker.py) and real gRPC over mutual TLS on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests/, for pgserver

import chart
import fed
import pgserver
import procs
import targets
import tlogbench
import uvloop
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from samverka.protocol.signing import ENTRY_DOMAIN
from samverka.v1 import feed_pb2

RESULTS = fed.ROOT / "bench-results.json"
CHART = fed.ROOT / "docs" / "bench-full-sync.svg"
WORK = fed.CACHE / "run"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    limit: float | None = None
    ratio: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    #: The issue's target, in words, and whether this run meets it (None: no target).
    target: str = ""
    meets: bool | None = None
    #: Stable name by which a target of issue 15 finds this figure (targets.py).
    key: str = ""


def cpu_figure(
    name: str,
    us: float,
    limit_us: float,
    limit: str,
    most: float,
    target: str,
    parameters: dict[str, Any],
    more: dict[str, Any],
    *,
    key: str,
) -> Figure:
    """CPU µs against a limit measured in the same run (described by ``limit``): met when
    at most ``most`` times the limit."""
    ratio = us / limit_us
    return Figure(
        name, us, "µs", limit_us, ratio, {**parameters, "limit": limit, **more}, target,
        ratio <= most, key=key,
    )  # fmt: skip


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_async(coro: Any) -> Any:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# -- raw limits ---------------------------------------------------------------------------


class Raw:
    """Raw Ed25519 verification on one core in this process: the limit of every figure
    that verifies. Measured again beside each figure (the machine is shared)."""

    def __init__(self, tpl: fed.Template, entries: Sequence[bytes]) -> None:
        from samverka_hub.folder import open_hub

        with open_hub(tpl.hub) as hub:
            directory = hub.council.current_directory()
            assert directory is not None
            ring = directory.keyring()
        sample = [feed_pb2.SignedEntry.FromString(e) for e in entries[:2000]]
        keys = {s.key_id: ring.get(s.key_id) for s in sample}
        loaded = {
            k: Ed25519PublicKey.from_public_bytes(v.public_key.raw) for k, v in keys.items() if v
        }
        self.work = [(loaded[s.key_id], s.signature, ENTRY_DOMAIN + s.entry) for s in sample]
        self.samples: list[float] = []

    def measure(self) -> float:
        """Verifications a second (median of 3 passes over 2,000 entries)."""
        rates = []
        for _ in range(3):
            started = time.perf_counter()
            for key, sig, msg in self.work:
                key.verify(sig, msg)
            rates.append(len(self.work) / (time.perf_counter() - started))
        rate = statistics.median(rates)
        self.samples.append(rate)
        return rate


# -- 1. hub ingest -----------------------------------------------------------------------------


def fig_ingest(args: argparse.Namespace, tpl: fed.Template, raw: Raw) -> list[Figure]:
    entries_file = _entries_file(tpl, args.ingest)
    rates, limits, rss = [], [], []
    for i in range(args.repeat):
        hub_dir = fed.copy_folder(tpl.hub, WORK / "ingest-hub")
        limits.append(raw.measure())
        with procs.hub_serve(hub_dir) as hub:
            result = procs.worker(
                "push",
                "--hub",
                hub.member,
                "--tpl",
                str(tpl.dir),
                "--entries",
                str(entries_file),
                "--count",
                str(args.ingest),
            )
            rss.append(procs.rss_mb(hub.proc.pid))
        assert result["accepted"] == args.ingest, result
        rates.append(result["accepted"] / result["seconds"])
        limits.append(raw.measure())
        say(f"  ingest run {i + 1}: {rates[-1]:,.0f} entries/s (raw verify {limits[-1]:,.0f}/s)")
    value, limit = statistics.median(rates), statistics.median(limits)
    return [
        Figure(
            "hub ingest (push by 290 kommuner)",
            value,
            "entries/s",
            limit,
            value / limit,
            {
                "entries": args.ingest,
                "origins": 290,
                "batch": 500,
                "runs": rates,
                "hub_rss_mb_after": max(rss),
                "store": "sqlite",
            },
            "≥ 70 % of raw single-core verify/s",
            value / limit >= 0.7,
            key="ingest",
        )
    ]


def _entries_file(tpl: fed.Template, size: int) -> Path:
    fed.dataset(tpl, size, say)
    files = sorted(
        (int(p.stem.split("-")[1]), p)
        for p in fed.CACHE.glob("entries-*.bin")
        if p.stem[8:].isdigit()
    )
    return next(p for n, p in files if n >= size)


# -- 2./3. full and incremental sync, and the chart ------------------------------------------------


def fresh_node(tpl: fed.Template, hub_member: str, name: str) -> Path:
    node_dir = fed.copy_folder(tpl.node(fed.ORIGINS[0]), WORK / name)
    from samverka.membership.member import set_hub_address

    set_hub_address(node_dir / "samverka.toml", hub_member)
    return node_dir


def add_entries(hub_dir: Path, tpl: fed.Template, chain: fed.Chain, count: int) -> None:
    """Append ``count`` new signed entries to a (running) hub's store, as ingest does."""
    from samverka.replication.ingest import ingest
    from samverka_hub.folder import open_hub

    with open_hub(hub_dir) as hub:
        directory = hub.council.current_directory()
        assert directory is not None
        origins = random.Random(count).sample(fed.ORIGINS, count)
        items = [chain.next(o, tpl.signing_key(o), tag="incr") for o in origins]
        report = ingest(hub.store, directory.keyring(), items, source="bench")
        assert report.accepted == count, report


def fig_sync(args: argparse.Namespace, tpl: fed.Template, raw: Raw) -> list[Figure]:
    figures: list[Figure] = []
    series: list[tuple[int, float]] = []
    cpu_us: dict[int, dict[str, float]] = {}
    incremental: dict[int, list[float]] = {}
    sizes = sorted(set(args.chart_sizes) | {args.sync} | set(args.incremental_sizes))
    for size in sizes:
        loaded = fed.loaded_hub(tpl, size, say)
        hub_dir = fed.copy_folder(loaded, WORK / "sync-hub")
        limit_before = raw.measure()
        with procs.hub_serve(hub_dir) as hub:
            node_dir = fresh_node(tpl, hub.member, f"node-{size}")
            hub_cpu = procs.cpu_s(hub.proc.pid)
            result = procs.worker("sync", "--hub", hub.member, "--node", str(node_dir))
            assert result["accepted"] == size, result
            seconds = result["seconds"]
            series.append((size, seconds))
            # CPU per entry, which the machine's other load barely moves (unlike seconds).
            cpu_us[size] = {
                "node_cpu_us_per_entry": result["cpu_s"] / size * 1e6,
                "hub_cpu_us_per_entry": (procs.cpu_s(hub.proc.pid) - hub_cpu) / size * 1e6,
            }
            say(f"  full sync of {size:,}: {seconds:.1f} s, {size / seconds:,.0f} entries/s")
            if size == args.sync:
                limit = statistics.median([limit_before, raw.measure()])
                bare = bare_stream(tpl, size, args)
                rate = size / seconds
                figures.append(
                    Figure(
                        f"full sync of {size:,} entries (fresh node)",
                        rate,
                        "entries/s",
                        limit,
                        rate / limit,
                        {
                            "entries": size,
                            "origins": 290,
                            "seconds": seconds,
                            "bare_grpc_entries_per_s": bare,
                            "ratio_to_bare": rate / bare,
                            "node_store": "sqlite",
                            "hub_store": "sqlite",
                            "load_average": round(os.getloadavg()[0], 2),
                        },
                        "≥ 70 % of raw single-core verify/s (> 100 % on both cores)",
                        rate / limit >= 0.7,
                        key="sync",
                    )
                )
                figures.append(
                    Figure(
                        "bare grpc.aio stream of the same bytes (mTLS)",
                        bare,
                        "entries/s",
                        parameters={"entries": size, "per_message": "≤ 500 entries, ≤ 4 MiB"},
                    )
                )
            if size in args.incremental_sizes:
                chain = fed.Chain.after(tpl, fed.dataset(tpl, size))
                times = []
                for _ in range(args.incremental_rounds):
                    add_entries(hub_dir, tpl, chain, 10)
                    r = procs.worker("sync", "--hub", hub.member, "--node", str(node_dir))
                    assert r["accepted"] == 10, r
                    times.append(r["seconds"])
                incremental[size] = times
                say(
                    f"  incremental sync at {size:,}: "
                    f"median {statistics.median(times) * 1e3:.0f} ms"
                )
            if size == args.sync:
                keep = WORK / "node-synced"
                if keep.exists():
                    shutil.rmtree(keep)
                node_dir.rename(keep)
            else:
                shutil.rmtree(node_dir)
    charted = [(n, t) for n, t in series if n in args.chart_sizes]
    # A smoke run's chart goes to the cache: docs/ keeps the chart of a full run.
    target = WORK / "bench-full-sync-quick.svg" if args.quick else CHART
    chart.write_full_sync_chart(target, charted, raw_verify=statistics.median(raw.samples))
    for size, seconds in series:
        figures.append(
            Figure(
                f"full sync time at {size:,} entries",
                seconds,
                "s",
                parameters={"entries": size, "entries_per_s": size / seconds, **cpu_us[size]},
            )
        )
    # Flat in size: the cost per entry at the largest charted size against the smallest.
    (n_small, t_small_full), (n_large, t_large_full) = min(charted), max(charted)
    per_small, per_large = t_small_full / n_small * 1e6, t_large_full / n_large * 1e6
    figures.append(
        Figure(
            f"full sync cost per entry at {n_large:,} entries (vs at {n_small:,})",
            per_large,
            "µs",
            per_small,
            per_large / per_small,
            {"sizes": [n for n, _ in charted]},
            "≤ 1.1× the cost per entry at the smallest size",
            per_large <= 1.1 * per_small,
            key="sync-flat",
        )
    )
    small, large = min(incremental), max(incremental)
    t_small, t_large = statistics.median(incremental[small]), statistics.median(incremental[large])
    figures.append(
        Figure(
            f"incremental sync of 10 entries, {large:,} vs {small:,} held",
            t_large / t_small,
            "ratio",
            parameters={
                f"ms_at_{small}": t_small * 1e3,
                f"ms_at_{large}": t_large * 1e3,
                "rounds": args.incremental_rounds,
                "runs_ms": {str(k): [round(t * 1e3, 1) for t in v] for k, v in incremental.items()},
            },
            target="≤ 1.5",
            meets=t_large / t_small <= 1.5,
        )
    )
    return figures


def bare_stream(tpl: fed.Template, size: int, args: argparse.Namespace) -> float:
    server = procs.start_worker(
        "bare-server",
        "--tpl",
        str(tpl.dir),
        "--entries",
        str(_entries_file(tpl, size)),
        "--count",
        str(size),
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        if not line or line[0] != "PORT":
            raise RuntimeError(
                f"bare server did not start: {server.stderr.read() if server.stderr else ''}"
            )
        rates = []
        for _ in range(3):
            r = procs.worker("bare-client", "--tpl", str(tpl.dir), "--addr", f"127.0.0.1:{line[1]}")
            assert r["entries"] == size, r
            rates.append(r["entries"] / r["seconds"])
        return statistics.median(rates)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


# -- 4. propagation, and the hub's footprint with 290 subscribers ------------------------------


#: Seconds of nothing published before the propagation figure's publishing starts.
IDLE_WINDOW_S = 3.0


def _propagate(
    args: argparse.Namespace, tpl: fed.Template, count: int, procs_n: int, mode: str = "follow"
) -> tuple[list[float], list[float], dict[str, float], dict[str, float]]:
    """Delivery latencies (stored, received) in ms to ``count`` live subscribers, the
    hub's RSS (idle, subscribed, after), and the CPU µs per delivery (one entry to one
    subscriber) of the hub and of the subscribers' processes while publishing, less
    what they spend idle."""
    import worker
    from samverka.transport.hubclient import HubClient

    hub_dir = fed.copy_folder(tpl.hub, WORK / "prop-hub")
    subscribers = fed.ORIGINS[:count]
    node_dirs = [fed.copy_folder(tpl.node(c), WORK / "prop-nodes" / c) for c in subscribers]
    chain = fed.Chain(tpl, {})
    with procs.hub_serve(hub_dir) as hub:
        rss_idle = procs.rss_mb(hub.proc.pid)
        groups = [node_dirs[i::procs_n] for i in range(procs_n)]
        followers = [
            procs.start_worker(
                mode,
                "--hub",
                hub.member,
                "--expect",
                str(args.publishes + 1),
                "--seconds",
                str(60 + (args.publishes + 1) * (args.publish_gap + 2)),
                "--nodes",
                *map(str, group),
            )
            for group in groups
        ]
        for f in followers:
            assert f.stdout is not None
            line = f.stdout.readline()
            if not line.startswith("READY"):
                raise RuntimeError(f"follower failed: {f.stderr.read() if f.stderr else ''}")
        time.sleep(1.0)
        rss_subscribed = procs.rss_mb(hub.proc.pid)
        pids = {"hub": [hub.proc.pid], "followers": [f.pid for f in followers]}

        def cpu_now() -> dict[str, float]:
            return {k: sum(procs.cpu_s(p) for p in v) for k, v in pids.items()}

        # What the processes spend with nothing published (heartbeats, timers): taken
        # off the publishing window's CPU below.
        idle_from, idle_started = cpu_now(), time.monotonic()
        time.sleep(IDLE_WINDOW_S)
        idle_to, idle_s = cpu_now(), time.monotonic() - idle_started
        window: dict[str, Any] = {}

        async def publish_all() -> dict[int, int]:
            sent: dict[int, int] = {}
            publisher = fed.ORIGINS[-1]
            async with HubClient(hub.member, worker.member_tls(tpl.node(publisher))) as link:
                await link.head(publisher)  # connected before the clock starts
                # Position 1 warms the path up (first call on each stream); not counted.
                for position in range(1, args.publishes + 2):
                    item = feed_pb2.LogEntry(
                        signed=chain.next(publisher, tpl.signing_key(publisher))
                    )
                    sent[position] = time.monotonic_ns()
                    reply = await link.publish([item])
                    assert reply.accepted == 1
                    await asyncio.sleep(args.publish_gap)
                    if position == 1:
                        window["from"], window["started"] = cpu_now(), time.monotonic()
            await asyncio.sleep(min(1.0, args.publish_gap))  # the last deliveries land
            window["to"], window["seconds"] = cpu_now(), time.monotonic() - window["started"]
            return sent

        sent = run_async(publish_all())
        rss_after = procs.rss_mb(hub.proc.pid)
        cpu = {
            k: (window["to"][k] - window["from"][k])
            - (idle_to[k] - idle_from[k]) / idle_s * window["seconds"]
            for k in pids
        }
        stored_ms: list[float] = []
        received_ms: list[float] = []
        for f in followers:
            out, err = f.communicate(timeout=120)
            if f.returncode != 0:
                raise RuntimeError(f"follower failed: {err[-3000:]}")
            data = json.loads(out.strip().splitlines()[-1])
            for kind, bucket in (("stored", stored_ms), ("received", received_ms)):
                for per_node in data[kind].values():
                    for pos, ns in per_node.items():
                        if int(pos) > 1:
                            bucket.append((ns - sent[int(pos)]) / 1e6)
    expected = len(subscribers) * args.publishes
    if len(stored_ms) < expected:
        raise RuntimeError(f"only {len(stored_ms)} of {expected} deliveries arrived")
    deliveries = len(subscribers) * args.publishes
    return (
        stored_ms,
        received_ms,
        {"idle": rss_idle, "subscribed": rss_subscribed, "after": rss_after},
        {k: v / deliveries * 1e6 for k, v in cpu.items()},
    )


def fig_propagation(args: argparse.Namespace, tpl: fed.Template, raw: Raw) -> list[Figure]:
    # One subscriber first: what delivery costs when the subscriber has a machine to
    # itself; then all of them on this machine's two cores.
    alone, _, _, _ = _propagate(args, tpl, 1, 1)
    limit_before = raw.measure()
    stored_ms, received_ms, rss, cpu = _propagate(args, tpl, args.subscribers, args.follow_procs)
    verify_us = 1e6 / statistics.median([limit_before, raw.measure()])
    bare_us = bare_fanout(tpl, args.subscribers, args.publishes)
    # Light subscribers (verify the signature, store nothing), as the Nostr peer's:
    # the hub's fan-out without 290 SQLite writers sharing this machine's two cores.
    light, _, _, light_cpu = _propagate(args, tpl, args.subscribers, args.follow_procs, "watch")
    rss_subscribed, rss_after, rss_idle = rss["subscribed"], rss["after"], rss["idle"]
    subscribers = fed.ORIGINS[: args.subscribers]
    params = {
        "subscribers": len(subscribers),
        "publishes": args.publishes,
        "follower_processes": args.follow_procs,
        "store": "sqlite (hub and each subscriber)",
    }
    return [
        Figure(
            "propagation to one live subscriber alone, verified and stored: p99",
            pct(alone, 99),
            "ms",
            parameters={"p50_ms": statistics.median(alone), "publishes": args.publishes},
        ),
        Figure(
            "propagation to live subscribers, verified and stored: p50",
            statistics.median(stored_ms),
            "ms",
            parameters=params,
        ),
        Figure(
            "propagation, verified and stored: p99",
            pct(stored_ms, 99),
            "ms",
            parameters=params,
            target="< 100 ms",
            meets=pct(stored_ms, 99) < 100,
            key="propagation-stored-p99",
        ),
        Figure("propagation, verified and stored: max", max(stored_ms), "ms", parameters=params),
        Figure(
            "propagation, message received (before verifying): p50",
            statistics.median(received_ms),
            "ms",
            parameters=params,
        ),
        Figure("propagation, message received: p99", pct(received_ms, 99), "ms", parameters=params),
        Figure(
            "propagation to light subscribers (signature verified, not stored): p50",
            statistics.median(light),
            "ms",
            parameters=params,
        ),
        Figure(
            "propagation to light subscribers: p99",
            pct(light, 99),
            "ms",
            parameters=params,
            key="propagation-light-p99",
        ),
        cpu_figure(
            "live subscriber's CPU per entry (received, verified, stored)",
            cpu["followers"],
            verify_us,
            "one raw Ed25519 verification (µs, this run)",
            3,
            "≤ 3 raw verifications",
            params,
            {"light_subscriber_us": light_cpu["followers"]},
            key="live-subscriber-cpu",
        ),
        cpu_figure(
            "hub's CPU per entry per live stream",
            cpu["hub"],
            bare_us,
            "a bare grpc.aio send of the same message over mTLS to one stream "
            "(µs of server CPU, same number of streams, this run)",
            2,
            "≤ 2× the bare send",
            params,
            {"hub_us_light_run": light_cpu["hub"]},
            key="hub-stream-cpu",
        ),
        Figure(
            "hub RSS with 290 live subscribers",
            max(rss_subscribed, rss_after),
            "MB",
            parameters={**params, "rss_idle_mb": rss_idle},
            target="< 300 MB",
            meets=max(rss_subscribed, rss_after) < 300,
        ),
    ]


def bare_fanout(tpl: fed.Template, streams: int, sends: int) -> float:
    """Server CPU µs to send one pre-serialized one-entry message to one of ``streams``
    live mTLS streams (worker.py bare-fanout-server): the hub's fan-out limit."""
    server = procs.start_worker(
        "bare-fanout-server",
        "--tpl",
        str(tpl.dir),
        "--entries",
        str(_entries_file(tpl, 1)),
        "--streams",
        str(streams),
        "--sends",
        str(max(sends, 10)),
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        if not line or line[0] != "PORT":
            raise RuntimeError(f"bare fan-out did not start: {server.stderr.read()}")  # type: ignore[union-attr]
        client = procs.worker(
            "bare-fanout-client",
            "--tpl",
            str(tpl.dir),
            "--addr",
            f"127.0.0.1:{line[1]}",
            "--streams",
            str(streams),
        )
        assert client["received"] == streams * (max(sends, 10) + 1), client
        result = json.loads(server.stdout.readline())
    finally:
        procs.stop(server)
    say(f"  bare fan-out: {result['cpu_per_send_us']:.0f} µs of CPU per message and stream")
    return float(result["cpu_per_send_us"])


# -- 5. search ----------------------------------------------------------------------------


def search_times(store: Any, queries: list[str], *, member: bool) -> list[float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        store.search(q, member=member)
        times.append(time.perf_counter() - started)
    return times


#: How many of the vocabulary's first (most common) real words the common-word queries use.
COMMON_WORDS = 4


def fig_search(args: argparse.Namespace, tpl: fed.Template, raw: Raw) -> list[Figure]:
    from samverka.store.store import Store

    rng = random.Random(5)
    # The vocabulary is Zipfian: its first real words are the most common ones
    # ("äldreomsorg" in all but one record of 100,000, "hemtjänst" in ~22 %,
    # "schemaläggning" ~11 %, "skola" ~9 %), the rest in 0.1-5 % each.
    n, words = args.queries, fed.WORDS
    kinds = {
        "1 word, common": [rng.choice(words[:COMMON_WORDS]) for _ in range(n)],
        "1 word, rarer": [rng.choice(words[COMMON_WORDS:]) for _ in range(n)],
        "2 words": [f"{rng.choice(words)} {rng.choice(words)}" for _ in range(n)],
    }
    keys = {"1 word, common": "1-common", "1 word, rarer": "1-rare", "2 words": "2"}
    size = args.sync
    places: list[tuple[str, str, bool]] = []
    hub_dir = fed.loaded_hub(tpl, size, say)
    node_db = WORK / "node-synced" / "samverka.db"
    if not node_db.exists():
        # No synced node (the sync figure makes it): a copy of the loaded hub's store,
        # searched as a node searches (member audience), is the same store.
        say("  (no synced node from the sync figure: the loaded hub's store, as a member)")
        node_db = WORK / "node-search.db"
        shutil.copyfile(hub_dir / "samverka.db", node_db)
    places.append(("node (SQLite)", f"sqlite:///{node_db}", True))
    places.append(("hub (SQLite)", f"sqlite:///{hub_dir / 'samverka.db'}", False))
    pg_server: pgserver.PgServer | None = None
    pg_db = ""
    figures = []
    try:
        if args.pg != "":  # tests/pgserver.py: --pg URL, else SAMVERKA_TEST_PG, else our own
            pg_server = pgserver.named(args.pg) if args.pg else pgserver.from_environment(say)
            pg_db = f"samverka_bench_{os.getpid()}"
            places.append(("hub (PostgreSQL)", _pg_hub(pg_server, pg_db, tpl, size), False))
        for label, url, member in places:
            store = Store.open(url, migrate=False)
            try:
                search_times(store, fed.WORDS[:20], member=member)  # warm the cache
                place = {"node (SQLite)": "node", "hub (PostgreSQL)": "pg"}.get(label, "")
                for kind, queries in kinds.items():
                    t = [x * 1e3 for x in search_times(store, queries, member=member)]
                    p95 = pct(t, 95)
                    figures.append(
                        Figure(
                            f"search p95 at {label}, {kind}, {size:,} records",
                            p95,
                            "ms",
                            parameters={
                                "p50_ms": statistics.median(t),
                                "max_ms": max(t),
                                "queries": len(t),
                                "words": sorted(set(queries))[:8],
                                "records": size,
                                "store": "postgresql" if "PostgreSQL" in label else "sqlite",
                                "audience": "member" if member else "public",
                            },
                            target="< 10 ms" if place else "",
                            meets=(p95 < 10) if place else None,
                            key=f"search-{place}-{keys[kind]}" if place else "",
                        )
                    )
            finally:
                store.close()
    finally:
        if pg_server is not None:
            try:
                with pg_server.connect() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
            finally:
                pg_server.close()  # a throwaway cluster stops; a named server is left running
    return figures


def _pg_hub(server: pgserver.PgServer, name: str, tpl: fed.Template, size: int) -> str:
    import psycopg

    with server.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.url(name, driver="postgresql")
    say(f"  loading {size:,} entries into PostgreSQL ({name}) …")
    started = time.monotonic()
    from samverka.store.store import Store

    Store.open(url).close()
    fed.load_into(tpl.hub, fed.dataset(tpl, size), store_url=url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    say(f"  loaded in {time.monotonic() - started:.0f} s")
    return url


# -- 6. footprint ---------------------------------------------------------------------------


def fig_footprint(args: argparse.Namespace, tpl: fed.Template, raw: Raw) -> list[Figure]:
    from samverka.store.store import Store

    starts, rss, floor = [], [], []
    for i in range(args.cold_starts):
        node_dir = fed.copy_folder(tpl.node(fed.ORIGINS[1]), WORK / "cold-node")
        # A node whose database is current (the template may predate a migration): what
        # a node restarts with, and no migration in the cold start.
        Store.open(f"sqlite:///{node_dir / 'samverka.db'}").close()
        address_file = node_dir / "address"
        started = time.monotonic()
        proc = procs.serve_quietly(
            ["-m", "samverka", "node", "serve", "--dir", str(node_dir), "--listen", "127.0.0.1:0"],
            address_file,
            "node",
        )
        try:
            starts.append(time.monotonic() - started)
            if i == 0:
                _check_serving(address_file.read_text().strip(), node_dir)
            time.sleep(3)
            rss.append(procs.rss_mb(proc.pid))
        finally:
            procs.stop(proc)
        floor.append(_floor_rss(node_dir))
    idle = statistics.median(rss)
    cold = statistics.median(starts)
    bare = statistics.median(floor)
    return [
        Figure(
            "node idle RSS",
            idle,
            "MB",
            bare,
            idle / bare,
            {"runs": rss, "over_floor_mb": idle - bare},
            "≤ the design card's floor + 10 MB",
            idle - bare <= 10,
            key="node-rss",
        ),
        Figure(
            "floor: bare grpc.aio server on uvloop with grpcio, protobuf, cryptography, "
            "sqlmodel and one table (tests/bench/floor_server.py), idle RSS",
            bare,
            "MB",
            parameters={"runs": floor},
            key="floor-rss",
        ),
        Figure(
            "node cold start to SERVING",
            cold,
            "s",
            parameters={
                "runs": starts,
                "measured": "spawn to the bound address written (after health reports SERVING)",
            },
            target="< 1.5 s",
            meets=cold < 1.5,
        ),
    ]


def _floor_rss(node_dir: Path) -> float:
    """Idle RSS of tests/bench/floor_server.py with the node's TLS files, 3 s after it
    serves (as the node's is taken)."""
    address_file = WORK / "floor-address"
    db = WORK / "floor.db"
    for f in (address_file, db, db.with_name("floor.db-wal"), db.with_name("floor.db-shm")):
        f.unlink(missing_ok=True)
    proc = procs.serve_quietly(
        [str(procs.BENCH / "floor_server.py"), "--tls", str(node_dir / "tls"), "--db", str(db)],
        address_file,
        "floor",
    )
    try:
        time.sleep(3)
        return procs.rss_mb(proc.pid)
    finally:
        procs.stop(proc)


def _check_serving(address: str, node_dir: Path) -> None:
    import grpc
    import worker
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async def check() -> int:
        tls = worker.member_tls(node_dir)
        async with grpc.aio.secure_channel(address, tls.credentials()) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=10
            )
            return int(reply.status)

    status = run_async(check())
    if status != 1:  # SERVING
        raise RuntimeError(f"node at {address} answered health status {status}")


# -- 7. web catalog -------------------------------------------------------------------------


def fig_web(args: argparse.Namespace, tpl: fed.Template, raw: Raw) -> list[Figure]:
    size = args.sync
    loaded = fed.loaded_hub(tpl, size, say)
    hub_dir = fed.copy_folder(loaded, WORK / "web-hub")
    origin = fed.ORIGINS[7]
    pages = [
        "/",
        "/sok?q=äldreomsorg",
        "/sok?q=hemtjänst+schemaläggning",
        "/sok",
        f"/post/{origin}/uc-{origin}-3",
        f"/kommun/{origin}",
        "/tackning",
        "/beprovat",
    ]
    times: dict[str, list[float]] = {}
    with procs.hub_serve(hub_dir, web=True) as hub:
        base = f"http://{hub.web}"
        for page in pages:
            url = base + urllib.parse.quote(page, safe="/?=&+")
            _get(url)  # warm
            t = []
            for _ in range(args.web_requests):
                started = time.perf_counter()
                status = _get(url)
                t.append((time.perf_counter() - started) * 1e3)
                if status != 200:
                    raise RuntimeError(f"{page}: HTTP {status}")
            times[page] = t
    every = [x for t in times.values() for x in t]
    median = statistics.median(every)
    return [
        Figure(
            f"web catalog page load, median over {len(pages)} pages",
            median,
            "ms",
            parameters={
                "p95_ms": pct(every, 95),
                "records": size,
                "per_page_median_ms": {p: round(statistics.median(t), 1) for p, t in times.items()},
            },
            target="< 200 ms",
            meets=median < 200,
        ),
        Figure("web catalog page load p95", pct(every, 95), "ms", parameters={"records": size}),
    ]


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as reply:
        reply.read()
        return int(reply.status)


import urllib.parse  # noqa: E402

# -- where the time goes: CPU per entry, stage by stage ---------------------------------------


def fig_stages(args: argparse.Namespace, tpl: fed.Template, raw: Raw) -> list[Figure]:
    """CPU time (this thread, so other processes on the machine do not count) of each
    step of receiving one entry, beside one raw verification: the profile that says
    how far ingest can get from the verify limit on one core."""
    import samverka.replication.ingest as ingest_module
    from samverka.protocol.entries import decode_entry, parse_envelope
    from samverka.protocol.validation import validate_record
    from samverka.protocol.verify import check_signature
    from samverka.store.indexing import record_facts, search_document
    from samverka_hub.folder import open_hub

    entries = fed.dataset(tpl, args.stage_entries)
    hub_dir = fed.copy_folder(tpl.hub, WORK / "stages-hub")
    with open_hub(hub_dir) as hub:
        directory = hub.council.current_directory()
        assert directory is not None
        keys = directory.keyring()
        signed = [feed_pb2.SignedEntry.FromString(e) for e in entries]
        parsed = [decode_entry(s) for s in signed]

        def cpu(fn: Callable[[], object], n: int = len(entries)) -> float:
            started = time.thread_time()
            fn()
            return (time.thread_time() - started) / n * 1e6

        verify_us = min(
            cpu(lambda: [k.verify(s, m) for k, s, m in raw.work], len(raw.work)) for _ in range(3)
        )
        stages = {
            "envelope parse": cpu(lambda: [parse_envelope(e) for e in entries]),
            "key lookup + signature": cpu(lambda: [check_signature(s, keys) for s in signed]),
            "entry decode": cpu(lambda: [decode_entry(s) for s in signed]),
            "schema validation": cpu(
                lambda: [validate_record(p.record, origin=p.origin) for p in parsed]
            ),
            "view columns + search text": cpu(
                lambda: [(record_facts(p.record), search_document(p.record)) for p in parsed]
            ),
        }
        serial, ingest_module.PARALLEL_MIN = ingest_module.PARALLEL_MIN, 10**9
        try:
            started = time.process_time()
            for batch in fed.batches(entries, 500):
                report = ingest_module.ingest(hub.store, keys, list(batch), source="bench")
                assert report.ok, report.first_refusal
            whole = (time.process_time() - started) / len(entries) * 1e6
        finally:
            ingest_module.PARALLEL_MIN = serial
    stages["chain checks + store append (the rest)"] = whole - sum(stages.values())
    params = {"entries": len(entries), "batch": 500, "store": "sqlite", "threads": 1}
    figures = [
        Figure("CPU per entry: raw Ed25519 verify", verify_us, "µs", parameters=params),
        Figure(
            "CPU per entry: whole ingest, one thread",
            whole,
            "µs",
            verify_us,
            verify_us / whole,
            params,
            "(verify share of ingest: the single-core ceiling)",
        ),
    ]
    figures += [
        Figure(f"CPU per entry: {name}", us, "µs", verify_us, us / verify_us, params)
        for name, us in stages.items()
    ]
    return figures


# -- 8. the peer: a Nostr relay ----------------------------------------------------------------


def fig_peer(args: argparse.Namespace, tpl: fed.Template, raw: Raw) -> list[Figure]:
    import nostr_peer

    return nostr_peer.run(args, say)


# -- main -----------------------------------------------------------------------------------

FIGURES: dict[str, Callable[[argparse.Namespace, fed.Template, Raw], list[Figure]]] = {
    "ingest": fig_ingest,
    "sync": fig_sync,
    "propagation": fig_propagation,
    "search": fig_search,
    "footprint": fig_footprint,
    "web": fig_web,
    "peer": fig_peer,
    "stages": fig_stages,
    "tlog-ingest": tlogbench.fig_tlog_ingest,
    "tlog-proofs": tlogbench.fig_tlog_proofs,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--only", default="", help=f"comma-separated figures of {', '.join(FIGURES)}")
    p.add_argument("--repeat", type=int, default=3, help="runs of the ingest figure (median)")
    p.add_argument("--ingest", type=int, default=30_000, help="entries pushed in the ingest figure")
    p.add_argument("--sync", type=int, default=100_000, help="entries of the full-sync figure")
    p.add_argument(
        "--chart-sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10_000, 30_000, 100_000, 300_000],
    )
    p.add_argument(
        "--incremental-sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[3_000, 300_000],
    )
    p.add_argument("--incremental-rounds", type=int, default=5)
    p.add_argument("--subscribers", type=int, default=290)
    p.add_argument("--follow-procs", type=int, default=8)
    p.add_argument("--publishes", type=int, default=20)
    p.add_argument("--publish-gap", type=float, default=2.0)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--cold-starts", type=int, default=5)
    p.add_argument("--web-requests", type=int, default=20)
    p.add_argument(
        "--pg",
        default=None,
        help="PostgreSQL server URL for the hub search figure; default SAMVERKA_TEST_PG, "
        "else a throwaway cluster (tests/pgserver.py); '' to skip",
    )
    p.add_argument("--peer-events", type=int, default=20_000)
    p.add_argument("--peer-subscribers", type=int, default=290)
    p.add_argument("--stage-entries", type=int, default=2_000)
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print bench-results.json as a Markdown table (for docs/BENCHMARKS.md) and exit",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.repeat = 1
        args.ingest = 3_000
        args.sync = 3_000
        args.chart_sizes = [1_000, 2_000, 3_000]
        args.incremental_sizes = [300, 3_000]
        args.incremental_rounds = 3
        args.subscribers = 58
        args.publishes = 5
        args.publish_gap = 0.3
        args.queries = 50
        args.cold_starts = 2
        args.web_requests = 5
        args.peer_events = 2_000
        args.peer_subscribers = 20
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.markdown:
        results = json.loads(RESULTS.read_text(encoding="utf-8"))
        print_markdown(results["figures"])
        print()
        targets.print_markdown(targets.as_json(targets.rows(results["figures"])))
        return
    chosen = [f for f in args.only.split(",") if f] or list(FIGURES)
    unknown = set(chosen) - set(FIGURES)
    if unknown:
        raise SystemExit(f"unknown figures: {', '.join(sorted(unknown))}")
    WORK.mkdir(parents=True, exist_ok=True)
    tpl = fed.template(say)
    largest = max([args.ingest, args.sync, *args.chart_sizes, *args.incremental_sizes])
    raw = Raw(tpl, fed.dataset(tpl, largest, say))
    started = time.monotonic()
    figures: list[Figure] = []
    for name in chosen:
        say(f"== {name}")
        try:
            figures += FIGURES[name](args, tpl, raw)
        except Exception as exc:  # one broken figure must not lose the others
            say(f"  {name} FAILED: {exc!r}")
            figures.append(
                Figure(f"{name}: failed", float("nan"), "", parameters={"error": repr(exc)})
            )
    limit = raw.measure()
    figures.insert(
        0,
        Figure(
            "raw Ed25519 verify, one core (this run)",
            limit,
            "verifies/s",
            parameters={"samples": raw.samples},
        ),
    )
    table = write_results(figures, args, time.monotonic() - started)
    print_table(figures)
    targets.print_table(table, quick=args.quick)


def write_results(
    figures: list[Figure], args: argparse.Namespace, seconds: float
) -> list[targets.TargetRow]:
    """Write bench-results.json (figures, and the targets worked out from them); return
    the targets."""

    def clean(value: Any) -> Any:
        if isinstance(value, float):
            return None if value != value else round(value, 4)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    fresh = [clean(asdict(f)) for f in figures]
    if args.only and RESULTS.exists():
        # A partial run (--only) updates its own figures and keeps the others.
        names = {f["name"] for f in fresh} | {f"{n}: failed" for n in args.only.split(",")}
        kept = json.loads(RESULTS.read_text(encoding="utf-8")).get("figures", [])
        fresh = [f for f in kept if f["name"] not in names] + fresh
    table = targets.rows(fresh)
    out = {
        "machine": {"cores": os.cpu_count(), "load_average": os.getloadavg()},
        "quick": args.quick,
        "seconds": round(seconds, 1),
        "figures": fresh,
        "targets": [clean(t) for t in targets.as_json(table)],
    }
    RESULTS.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    say(f"wrote {RESULTS}")
    return table


def _num(x: float | None) -> str:
    if x is None or x != x:
        return "—"
    return f"{x:,.2f}" if abs(x) < 10 else f"{x:,.0f}"


def print_markdown(figures: list[dict[str, Any]]) -> None:
    print("| figure | value | unit | limit (same run) | ratio | target | met |")
    print("| --- | ---: | --- | ---: | ---: | --- | --- |")
    for f in figures:
        ratio = "" if f["ratio"] is None else f"{f['ratio'] * 100:.0f} %"
        met = {True: "yes", False: "**no**", None: ""}[f["meets"]]
        unit = "" if f["unit"] == "ratio" else f["unit"]
        print(
            f"| {f['name']} | {_num(f['value'])} | {unit} | {_num(f['limit'])} | {ratio} "
            f"| {f['target']} | {met} |"
        )


def print_table(figures: list[Figure]) -> None:
    def num(x: float | None, unit: str = "") -> str:
        if x is None or x != x:
            return "—"
        if unit == "ratio" or abs(x) < 10:
            return f"{x:,.2f}"
        return f"{x:,.0f}"

    rows = [("figure", "value", "unit", "limit", "ratio", "target", "meets")]
    for f in figures:
        rows.append(
            (
                f.name,
                num(f.value, f.unit),
                f.unit,
                num(f.limit),
                "—" if f.ratio is None else f"{f.ratio * 100:.0f} %",
                f.target or "—",
                {True: "yes", False: "NO", None: ""}[f.meets],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print(
            "  ".join(
                c.ljust(w) if j in (0, 2, 5) else c.rjust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=False))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
