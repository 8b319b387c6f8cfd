"""Metrics, JSON logs and doctor against real processes: a hub (``hub serve``) and an
enrolled node (``node serve``) on loopback, scraped over HTTP after real traffic.

One hub serves the module, with JSON logs and a metrics port picked by the kernel
(both set the way an operator would: ``SAMVERKA_LOG_FORMAT``/``SAMVERKA_METRICS_LISTEN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import factories
import grpc
import opskit
import pytest
from hubkit import Procs, RunningHub, run_async, start_hub, wait_for
from opskit import clean_env
from samverka.node import Node, init_node
from samverka.ops.metrics import ServerCollector, note_peer_heads
from samverka.protocol.verify import FeedHead
from samverka.transport.client import ClientTls, FeedClient
from samverka.v1 import feed_pb2, hub_service_pb2, hub_service_pb2_grpc

TIBRO, LEKSAND = "1472", "2029"
PUBLISH = "/samverka.v1.HubService/Publish"


@pytest.fixture(scope="module")
def mprocs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procs]:
    env = clean_env()
    env["SAMVERKA_DIRECTORY_POLL_SECONDS"] = "0.1"
    env["SAMVERKA_LOG_FORMAT"] = "json"
    env["SAMVERKA_METRICS_LISTEN"] = "127.0.0.1:0"
    p = Procs(tmp_path_factory.mktemp("ops"), env)
    try:
        yield p
    finally:
        p.stop_all()


@pytest.fixture(scope="module")
def hub(mprocs: Procs) -> Iterator[RunningHub]:
    running = start_hub(mprocs, mprocs.tmp / "hub")
    yield running
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0, mprocs.log("hub")


@pytest.fixture(scope="module")
def tibro(mprocs: Procs, hub: RunningHub) -> Path:
    """Tibro's node, enrolled at the hub, with three public use cases published."""
    node_dir = opskit.enrolled_node(mprocs, hub, TIBRO, commands=False)
    with Node.open(node_dir) as node:
        for i in range(3):
            record = factories.make_record("use_case", record_id=f"uc-{i}", origin=TIBRO)
            node.publisher().publish(record)
    return node_dir


def _entries(node_dir: Path) -> list[feed_pb2.LogEntry]:
    with Node.open(node_dir) as node:
        return node.store.feed_items(node.origin)


async def _publish(hub: RunningHub, node_dir: Path, entries: list[feed_pb2.LogEntry]) -> None:
    tls = opskit.member_tls(node_dir)
    async with grpc.aio.secure_channel(hub.member, tls.credentials()) as channel:
        stub = hub_service_pb2_grpc.HubServiceStub(channel)
        await stub.Publish(hub_service_pb2.PublishRequest(entries=entries), timeout=10)


def test_hub_metrics_count_pushed_entries_refusals_and_rpcs(
    mprocs: Procs, hub: RunningHub, tibro: Path
) -> None:
    url = f"http://{opskit.hub_metrics_address(mprocs)}/metrics"
    before = opskit.scrape(url)
    entries = _entries(tibro)
    assert len(entries) == 3

    run_async(_publish(hub, tibro, entries[:2]))
    # A flipped bit in the third entry's signature: refused, and nothing of it stored.
    bad = feed_pb2.LogEntry()
    bad.CopyFrom(entries[2])
    signature = bytearray(bad.signed.signature)
    signature[0] ^= 1
    bad.signed.signature = bytes(signature)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        run_async(_publish(hub, tibro, [bad]))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    run_async(_publish(hub, tibro, entries[:2]))  # the same again: duplicates

    after = opskit.scrape(url)
    push = {"source": "push"}

    def moved(name: str, labels: dict[str, str]) -> float:
        return opskit.value(after, name, labels) - opskit.value(before, name, labels)

    assert moved("samverka_entries_ingested_total", push) == 2
    assert moved("samverka_entries_duplicate_total", push) == 2
    assert moved("samverka_entries_refused_total", {"reason": "bad_signature", **push}) == 1
    ok = {"method": PUBLISH, "code": "OK"}
    invalid = {"method": PUBLISH, "code": "INVALID_ARGUMENT"}
    assert moved("samverka_rpc_duration_seconds_count", ok) == 2
    assert moved("samverka_rpc_duration_seconds_count", invalid) == 1
    # A histogram: cumulative buckets ending in +Inf equal to the count.
    assert opskit.value(after, "samverka_rpc_duration_seconds_bucket", {**ok, "le": "+Inf"}) == (
        opskit.value(after, "samverka_rpc_duration_seconds_count", ok)
    )
    # Read at scrape time from the hub's store: Tibro's feed as the hub holds it.
    assert opskit.value(after, "samverka_feed_head_sequence", {"origin": TIBRO}) == 2
    assert opskit.value(after, "samverka_log_position") >= 2
    assert opskit.value(after, "samverka_store_up") == 1
    assert opskit.value(after, "samverka_store_size_bytes") > 0
    age = opskit.value(after, "samverka_feed_newest_entry_age_seconds", {"origin": TIBRO})
    assert 0 <= age < 600


def test_hub_json_logs_name_the_calling_kommun(mprocs: Procs, hub: RunningHub, tibro: Path) -> None:
    run_async(_publish(hub, tibro, _entries(tibro)[:1]))  # at least one call from Tibro

    def parsed() -> list[dict[str, object]] | None:
        lines = [line for line in mprocs.log("hub").splitlines() if line.strip()]
        events = [json.loads(line) for line in lines]  # every line is one JSON event
        return events if any(e.get("method") == PUBLISH for e in events) else None

    events = wait_for(parsed, 10, "the hub to log the Publish call")
    for event in events:
        assert {"time", "level", "event", "message"} <= set(event), event
        assert str(event["time"]).endswith("Z")
    calls = [e for e in events if e["event"] == "rpc" and e.get("method") == PUBLISH]
    assert any(e.get("peer") == TIBRO and e.get("code") == "OK" for e in calls), calls
    assert all(isinstance(e["duration_ms"], float | int) for e in calls)
    refusals = [e for e in events if e["event"] == "entry_refused"]
    if refusals:  # the refusal test ran first in this module
        # A bad signature is refused before the entry is decoded: no origin is trusted yet.
        assert refusals[0]["reason"] == "bad_signature" and refusals[0]["source"] == "push"


def test_live_subscribers_gauge_follows_open_streams(
    mprocs: Procs, hub: RunningHub, tibro: Path
) -> None:
    url = f"http://{opskit.hub_metrics_address(mprocs)}/metrics"

    async def scenario() -> None:
        async with FeedClient.connect(hub.member, opskit.member_tls(tibro)) as client:
            pages = client.subscribe(0)
            task = asyncio.ensure_future(anext(pages))
            try:
                await asyncio.to_thread(
                    wait_for,
                    lambda: opskit.value(opskit.scrape(url), "samverka_live_subscribers") == 1,
                    10,
                    "the gauge to show one subscriber",
                )
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                await pages.aclose()

    run_async(scenario())
    wait_for(
        lambda: opskit.value(opskit.scrape(url), "samverka_live_subscribers") == 0,
        10,
        "the gauge to fall back to zero",
    )


def test_node_metrics_see_entries_written_by_another_process(
    mprocs: Procs, hub: RunningHub, tibro: Path
) -> None:
    proc = mprocs.start("node", "serve", "--dir", str(tibro), name="tibro-serve")
    url = opskit.printed_metrics_url(mprocs, "tibro-serve")
    assert opskit.value(opskit.scrape(url), "samverka_published_entries") == 3
    with Node.open(tibro) as node:  # the CLI's way: another process writes the file
        node.publisher().publish(
            factories.make_record("lesson", record_id="lesson-1", origin=TIBRO)
        )
    samples = opskit.scrape(url)
    assert opskit.value(samples, "samverka_published_entries") == 4
    assert opskit.value(samples, "samverka_feed_head_sequence", {"origin": TIBRO}) == 4

    # The hub reads Tibro's feed over mutual TLS (its own certificate, CN 0000).
    hub_tls = ClientTls.from_files(
        hub.dir / "tls" / "ca.pem", hub.dir / "tls" / "node.pem", hub.dir / "tls" / "node.key"
    )
    address = (mprocs.tmp / "tibro-serve.out").read_text().split(" on ")[1].split(" ")[0]

    async def read_all() -> int:
        async with FeedClient.connect(address, hub_tls) as client:
            return sum([len(page.entries) async for page in client.read_entries(0)])

    assert run_async(read_all()) == 4
    read = {"method": "/samverka.v1.FeedService/ReadEntries", "code": "OK"}
    samples = opskit.scrape(url)
    assert opskit.value(samples, "samverka_rpc_duration_seconds_count", read) == 1
    sent = {"method": "/samverka.v1.FeedService/ReadEntries"}
    assert opskit.value(samples, "samverka_rpc_stream_messages_sent_total", sent) >= 1
    # Enrolled, the node follows the hub: the lag metric names the hub as its peer.
    lag = wait_for(
        lambda: [
            (dict(labels), v)
            for (name, labels), v in opskit.scrape(url).items()
            if name == "samverka_sync_lag_entries"
        ],
        30,
        "the follow agent to report the hub's heads",
    )
    assert any(labels["origin"] == TIBRO and v == 0 for labels, v in lag), lag
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_sync_lag_is_the_peer_head_minus_ours(tmp_path: Path) -> None:
    with Node.open(_init(tmp_path)) as node:
        for i in range(2):
            node.publisher().publish(
                factories.make_record("use_case", record_id=f"uc-{i}", origin=LEKSAND)
            )
        note_peer_heads(
            "test-peer",
            [FeedHead(LEKSAND, 5, b"\0" * 32), FeedHead(TIBRO, 3, b"\0" * 32)],
        )
        collected = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in ServerCollector(node.store, LEKSAND).collect()
            for s in family.samples
        }
    lag = "samverka_sync_lag_entries"
    assert collected[(lag, (("origin", LEKSAND), ("peer", "test-peer")))] == 3
    assert collected[(lag, (("origin", TIBRO), ("peer", "test-peer")))] == 3
    assert collected[("samverka_published_entries", ())] == 2


def _init(tmp_path: Path) -> Path:
    init_node(tmp_path / "leksand", LEKSAND).close()
    return tmp_path / "leksand"


def test_doctor_reaches_the_hub_and_compares_clocks(
    mprocs: Procs, hub: RunningHub, tibro: Path
) -> None:
    report = json.loads(mprocs.run("doctor", "--dir", str(tibro), "--json").stdout)
    by_check = {f["check"]: f for f in report["findings"]}
    assert report["ok"] is True, report
    assert by_check["hub"]["status"] == "ok" and "SERVING" in by_check["hub"]["message"]
    assert by_check["clock"]["status"] == "ok", by_check["clock"]
    assert by_check["directory"]["status"] == "ok"
    # The hub folder checks too (its own sections, tracks and CA key).
    hub_report = json.loads(mprocs.run("doctor", "--dir", str(hub.dir), "--json").stdout)
    assert hub_report["ok"] is True, hub_report
    # The container health probe: the hub's own member port, as the hub configured it.
    probe = Procs(mprocs.tmp, {**mprocs.env, "SAMVERKA_SERVER_LISTEN": hub.member})
    text = probe.run("doctor", "--dir", str(hub.dir), "--only", "server").stdout
    assert text.startswith("ok") and "SERVING" in text, text


def test_doctor_fails_when_the_hub_cannot_be_reached(
    mprocs: Procs, hub: RunningHub, tibro: Path
) -> None:
    env = {**mprocs.env, "SAMVERKA_HUB_ADDRESS": f"127.0.0.1:{opskit.free_port()}"}
    unreachable = Procs(mprocs.tmp, env)
    result = unreachable.run("doctor", "--dir", str(tibro), check=False)
    assert result.returncode == 1, result
    lines = result.stdout.splitlines()
    hub_line = next(line for line in lines if line.split()[:2] == ["FAIL", "hub"])
    assert "kan inte nå hubben" in hub_line
    assert any("→" in line and "brandväggen" in line for line in lines)


def test_doctor_catches_a_restored_node_behind_its_own_feed_at_the_hub(
    mprocs: Procs, hub: RunningHub, tibro: Path
) -> None:
    archive = mprocs.tmp / "tibro.tar.gz"
    mprocs.run("node", "backup", "--dir", str(tibro), "--out", str(archive))
    with Node.open(tibro) as node:  # published after the backup, and pushed
        node.publisher().publish(
            factories.make_record("lesson", record_id="after-backup", origin=TIBRO)
        )
    run_async(_publish(hub, tibro, _entries(tibro)))

    restored = mprocs.tmp / "tibro-restored"
    mprocs.run("node", "restore", str(archive), "--dir", str(restored))
    result = mprocs.run("doctor", "--dir", str(restored), "--json", check=False)
    assert result.returncode == 1, result
    failed = [f for f in json.loads(result.stdout)["findings"] if f["status"] == "fail"]
    assert [f["check"] for f in failed] == ["hub"], failed
    assert "older backup" in failed[0]["message"] and "samverka sync" in failed[0]["hint"]

    mprocs.run("sync", "--dir", str(restored), "--quiet")  # the entries come back, verified
    assert json.loads(mprocs.run("doctor", "--dir", str(restored), "--json").stdout)["ok"]


def test_doctor_catches_two_histories_of_its_own_feed_at_the_hub(
    mprocs: Procs, hub: RunningHub, tibro: Path
) -> None:
    """A restored copy that published at a sequence the hub already holds from the
    original: same length, another entry (the comparison `samverka crosscheck` makes)."""
    archive = mprocs.tmp / "tibro-fork.tar.gz"
    mprocs.run("node", "backup", "--dir", str(tibro), "--out", str(archive))
    with Node.open(tibro) as node:
        node.publisher().publish(factories.make_record("lesson", record_id="one", origin=TIBRO))
    run_async(_publish(hub, tibro, _entries(tibro)))
    copy = mprocs.tmp / "tibro-copy"
    mprocs.run("node", "restore", str(archive), "--dir", str(copy))
    with Node.open(copy) as node:
        node.publisher().publish(factories.make_record("lesson", record_id="two", origin=TIBRO))
        sequence = node.store.head(TIBRO).sequence  # type: ignore[union-attr]

    result = mprocs.run("doctor", "--dir", str(copy), "--json", check=False)
    assert result.returncode == 1, result
    failed = [f for f in json.loads(result.stdout)["findings"] if f["status"] == "fail"]
    assert [f["check"] for f in failed] == ["hub"], failed
    assert f"another entry at sequence {sequence}" in failed[0]["message"], failed
    assert "two histories" in failed[0]["message"] and "do not publish" in failed[0]["hint"]
    # The original holds what the hub holds.
    assert json.loads(mprocs.run("doctor", "--dir", str(tibro), "--json").stdout)["ok"]
