"""Aggregation and redistribution end to end, with real processes over mutual TLS.

One hub (``hub init`` + ``hub serve``, SQLite, scheduled harvest off so the counts are
exact; ``hub harvest`` runs it on demand) serves the module, with three enrolled
nodes: Leksand (registers its member port, so it can be harvested), Tibro (behind a
firewall: it only pushes) and Gagnef (reads). Commands run as subprocesses; the
checks read the stores and call the ports in-process over real TLS.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import factories
import grpc
import pytest
import sqlalchemy as sa
from aggkit import (
    DRAFT,
    MEMBERS,
    PUBLIC,
    Member,
    author,
    bulk,
    database_bytes,
    enroll,
    head_of,
    open_store,
)
from hubkit import Procs, RunningHub, run_async, start_hub, wait_for
from samverka.errors import EntryRefused, Reason
from samverka.node import Node
from samverka.protocol.signing import SigningKey
from samverka.replication.ingest import ingest
from samverka.replication.push import push_feed
from samverka.store import fulltext
from samverka.store.db import write_transaction
from samverka.transport.client import ClientTls, open_channel
from samverka.transport.hubclient import HubClient
from samverka.transport.server.status import from_rpc_error
from samverka.v1 import (
    feed_pb2,
    feed_service_pb2,
    hub_service_pb2,
    hub_service_pb2_grpc,
)

LEKSAND, TIBRO, GAGNEF, FALUN = "2029", "1472", "2026", "2080"


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procs]:
    tmp = tmp_path_factory.mktemp("aggregation")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}
    env["SAMVERKA_DIRECTORY_POLL_SECONDS"] = "0.1"
    env["SAMVERKA_HARVEST_ENABLED"] = "false"  # harvests run on demand here
    env["SAMVERKA_METRICS_LISTEN"] = ""  # no fixed metrics port shared between tests
    # No node here witnesses the hub's log: take its checkpoints uncosigned (what sync takes
    # from the hub is still proven in its log; witnessing has tests of its own).
    env["SAMVERKA_WITNESS_QUORUM"] = "0"
    p = Procs(tmp, env)
    try:
        yield p
    finally:
        p.stop_all()


@pytest.fixture(scope="module")
def hub(procs: Procs) -> Iterator[RunningHub]:
    running = start_hub(procs, procs.tmp / "hub")
    yield running
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0, procs.log("hub")


@pytest.fixture(scope="module")
def leksand(procs: Procs, hub: RunningHub) -> Member:
    return enroll(procs, hub, LEKSAND, reachable=True)


@pytest.fixture(scope="module")
def tibro(procs: Procs, hub: RunningHub) -> Member:
    return enroll(procs, hub, TIBRO)


@pytest.fixture(scope="module")
def gagnef(procs: Procs, hub: RunningHub) -> Member:
    return enroll(procs, hub, GAGNEF)


# -- push, redistribution, search ----------------------------------------------------------


def test_pushed_entries_reach_a_third_node_verified_and_searchable(
    procs: Procs, hub: RunningHub, leksand: Member, tibro: Member, gagnef: Member
) -> None:
    author(leksand, "lek-public", PUBLIC, title="Chattbot för bygglov i Leksand")
    author(leksand, "lek-members", MEMBERS, title="Intern bygglovspilot MEMBERSMARK")
    author(leksand, "lek-draft", DRAFT, title="Bygglov utkast DRAFTMARK")
    author(tibro, "tib-public", PUBLIC, title="Bygglov med språkmodell i Tibro")

    pushed = procs.json("node", "push", "--dir", str(leksand.dir))
    assert (pushed["accepted"], pushed["hub_sequence"], pushed["local_sequence"]) == (3, 3, 3)
    assert procs.json("node", "push", "--dir", str(tibro.dir))["accepted"] == 1

    synced = procs.json("sync", "--dir", str(gagnef.dir))
    assert synced["accepted"] >= 4, synced
    assert {LEKSAND, TIBRO} <= set(synced["origins"])
    assert synced["pushed"]["accepted"] == 0  # Gagnef has written nothing yet

    hits = procs.json("search", "bygglov", "--dir", str(gagnef.dir))
    found = {(h["origin"], h["id"]) for h in hits}
    assert {(LEKSAND, "lek-public"), (LEKSAND, "lek-members"), (TIBRO, "tib-public")} <= found
    assert (LEKSAND, "lek-draft") not in found

    # The same history of Leksand's feed everywhere (the draft as a stand-in).
    with open_store(leksand.dir) as a, open_store(hub.dir) as h, open_store(gagnef.dir) as g:
        assert a.feed_digest(LEKSAND) == h.feed_digest(LEKSAND) == g.feed_digest(LEKSAND)
        assert g.get_record(LEKSAND, "lek-draft") is None
    # Drafts never leave their node: not at the hub, not at the reader.
    assert b"DRAFTMARK" not in database_bytes(hub.dir)
    assert b"DRAFTMARK" not in database_bytes(gagnef.dir)
    assert b"DRAFTMARK" in database_bytes(leksand.dir)  # the check can see it


def test_pushing_again_changes_nothing(
    procs: Procs, hub: RunningHub, leksand: Member, tibro: Member
) -> None:
    author(tibro, "tib-twice", PUBLIC)
    assert procs.json("node", "push", "--dir", str(tibro.dir))["accepted"] == 1
    again = procs.json("node", "push", "--dir", str(tibro.dir))
    assert (again["accepted"], again["duplicates"], again["batches"]) == (0, 0, 0)

    with open_store(hub.dir) as store:
        before = store.log_position()
    with Node.open(tibro.dir) as node:
        items = node.store.feed_items(TIBRO, 0, 100, include_drafts=False)

    async def publish_all_again() -> hub_service_pb2.PublishResponse:
        async with HubClient(hub.member, tibro.tls()) as link:
            published = await link.publish(items)
            return hub_service_pb2.PublishResponse(
                accepted=published.accepted, duplicates=published.duplicates
            )

    reply = run_async(publish_all_again())
    assert (reply.accepted, reply.duplicates) == (0, len(items))
    with open_store(hub.dir) as store:
        assert store.log_position() == before


# -- harvest -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def leksand_serving(procs: Procs, leksand: Member) -> Iterator[subprocess.Popen[bytes]]:
    """Leksand's node serving its member port, with its own push and follow turned off:
    everything the hub gets from it here is harvested."""
    quiet = Procs(
        procs.tmp, {**procs.env, "SAMVERKA_HUB_PUSH": "false", "SAMVERKA_HUB_FOLLOW": "0"}
    )
    proc = quiet.start("node", "serve", "--dir", str(leksand.dir), name="leksand-serve")
    host, port = leksand.address.rsplit(":", 1)

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(quiet.log("leksand-serve"))
        with socket.socket() as s:
            return s.connect_ex((host, int(port))) == 0

    wait_for(listening, 30, "leksand's node to listen")
    yield proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, quiet.log("leksand-serve")


def test_harvest_from_a_node_that_never_pushes(
    procs: Procs,
    hub: RunningHub,
    leksand: Member,
    leksand_serving: subprocess.Popen[bytes],
) -> None:
    base = head_of(hub.dir, LEKSAND)
    author(leksand, "lek-harvest-1", PUBLIC, title="Skördad HARVESTPUBLIC")
    author(leksand, "lek-harvest-draft", DRAFT, title="Skördat utkast HARVESTDRAFT")
    author(leksand, "lek-harvest-2", MEMBERS)

    rows = procs.json("hub", "harvest", "--dir", str(hub.dir))
    assert [(r["kommunkod"], r["ok"], r["accepted"]) for r in rows] == [(LEKSAND, True, 3)]
    assert head_of(hub.dir, LEKSAND) == base + 3
    assert b"HARVESTDRAFT" not in database_bytes(hub.dir)  # a stand-in came, not the draft
    with open_store(hub.dir) as h, open_store(leksand.dir) as a:
        assert h.feed_digest(LEKSAND) == a.feed_digest(LEKSAND)

    # Harvest again, then push: nothing new anywhere (one copy of each entry).
    again = procs.json("hub", "harvest", "--member", LEKSAND, "--dir", str(hub.dir))
    assert (again[0]["accepted"], again[0]["duplicates"]) == (0, 0)
    pushed = procs.json("node", "push", "--dir", str(leksand.dir))
    assert (pushed["accepted"], pushed["hub_sequence"]) == (0, base + 3)

    # A harvest that meets a gap asks the member for the missing entries: here the
    # hub's cursor in Leksand's log has run past two entries it never stored.
    for i in range(3):
        author(leksand, f"lek-gap-{i}", PUBLIC)
    with open_store(leksand.dir) as store:
        newest = store.feed_items(LEKSAND, base + 3, 10)
    with open_store(hub.dir) as store:
        store.set_cursor(f"harvest:{LEKSAND}", newest[1].position)
    filled = procs.json("hub", "harvest", "--member", LEKSAND, "--dir", str(hub.dir))
    assert filled[0]["ok"] and filled[0]["gaps_filled"] == 1 and filled[0]["accepted"] == 3
    assert head_of(hub.dir, LEKSAND) == base + 6

    # A member without an address cannot be harvested: the CLI says why.
    refused = procs.run("hub", "harvest", "--member", TIBRO, "--dir", str(hub.dir), check=False)
    assert refused.returncode == 3 and "pushes instead" in refused.stderr


def test_a_push_and_a_harvest_at_once_store_each_entry_once(
    procs: Procs,
    hub: RunningHub,
    leksand: Member,
    leksand_serving: subprocess.Popen[bytes],
) -> None:
    base = head_of(hub.dir, LEKSAND)
    bulk(leksand, 400)
    local = head_of(leksand.dir, LEKSAND)
    env = procs.env
    commands = [
        ["node", "push", "--dir", str(leksand.dir), "--batch-size", "50", "--json"],
        ["hub", "harvest", "--dir", str(hub.dir), "--json"],
    ]
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "samverka", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for args in commands
    ]
    outputs = [proc.communicate(timeout=120) for proc in running]
    for proc, (_, err) in zip(running, outputs, strict=True):
        assert proc.returncode == 0, err
    pushed, harvested = (json.loads(out) for out, _ in outputs)
    assert pushed["accepted"] + harvested[0]["accepted"] == local - base == 400
    with open_store(hub.dir) as store:
        assert store.head(LEKSAND).sequence == local  # type: ignore[union-attr]
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT COUNT(*), COUNT(DISTINCT sequence) FROM log WHERE origin = :o"),
                {"o": LEKSAND},
            ).one()
    assert tuple(rows) == (local, local)


# -- gaps ---------------------------------------------------------------------------------------


def forget_newest(hub_dir: Path, origin: str, keep: int) -> None:
    """What restoring an older backup of the hub does to one feed: entries after #keep
    (the newest in the hub's log) are gone."""
    with open_store(hub_dir) as store, write_transaction(store.engine) as conn:
        params = {"o": origin, "k": keep}
        rids = [
            r
            for (r,) in conn.execute(
                sa.text(
                    "SELECT rid FROM records WHERE position IN "
                    "(SELECT position FROM log WHERE origin = :o AND sequence > :k)"
                ),
                params,
            )
        ]
        fulltext.delete_documents(conn, rids)
        for rid in rids:
            conn.execute(sa.text("DELETE FROM records WHERE rid = :r"), {"r": rid})
        conn.execute(sa.text("DELETE FROM log WHERE origin = :o AND sequence > :k"), params)
        conn.execute(
            sa.text(
                "UPDATE feed_heads SET sequence = :k, "
                "entry_hash = (SELECT entry_hash FROM log WHERE origin = :o AND sequence = :k), "
                "position = (SELECT position FROM log WHERE origin = :o AND sequence = :k), "
                "timestamp_ms = (SELECT timestamp_ms FROM log WHERE origin = :o AND sequence = :k) "
                "WHERE origin = :o"
            ),
            params,
        )


def test_a_push_that_meets_a_gap_starts_again_from_the_hubs_head(
    hub: RunningHub, tibro: Member
) -> None:
    start = head_of(hub.dir, TIBRO)
    bulk(tibro, 30)
    batches: list[int] = []

    def restore_after_second_batch(report: object) -> None:
        batches.append(getattr(report, "hub_sequence", 0))
        if len(batches) == 3:  # the start, then two batches of 10 at the hub
            forget_newest(hub.dir, TIBRO, start + 5)

    async def push() -> object:
        with Node.open(tibro.dir) as node:
            async with HubClient(hub.member, tibro.tls()) as link:
                return await push_feed(
                    node.store, TIBRO, link, batch_size=10, progress=restore_after_second_batch
                )

    report = run_async(push())
    assert report.gap_restarts == 1  # type: ignore[attr-defined]
    assert report.hub_sequence == start + 30  # type: ignore[attr-defined]
    with open_store(hub.dir) as h, open_store(tibro.dir) as t:
        assert h.feed_digest(TIBRO) == t.feed_digest(TIBRO)


def test_a_sync_that_meets_a_gap_asks_for_the_missing_entries(
    procs: Procs, hub: RunningHub, gagnef: Member, tibro: Member
) -> None:
    procs.json("node", "push", "--dir", str(tibro.dir))
    reader = enroll(procs, hub, FALUN)
    with open_store(hub.dir) as store:
        page = store.read_log(0, 10_000, entry_filter=feed_service_pb2.EntryFilter(origins=[TIBRO]))
    # Pretend an earlier sync read past Tibro's first three entries but lost them.
    third = page.entries[2].position
    with Node.open(reader.dir) as node:
        node.store.set_cursor("hub", third)
    synced = procs.json("sync", "--dir", str(reader.dir))
    assert synced["gaps_filled"] >= 1
    assert head_of(reader.dir, TIBRO) == head_of(hub.dir, TIBRO)
    with open_store(hub.dir) as h, open_store(reader.dir) as r:
        assert h.feed_digest(TIBRO) == r.feed_digest(TIBRO)


# -- a hub that alters an entry ------------------------------------------------------------


def test_an_entry_altered_at_the_hub_is_caught_by_the_syncing_node(
    procs: Procs, hub: RunningHub, tibro: Member, gagnef: Member
) -> None:
    procs.json("sync", "--dir", str(gagnef.dir))
    gagnef_tibro = head_of(gagnef.dir, TIBRO)
    first = author(tibro, "tib-altered", PUBLIC, title="Ett ärligt fall")
    author(tibro, "tib-after", PUBLIC)
    procs.json("node", "push", "--dir", str(tibro.dir))
    assert first == gagnef_tibro + 1

    with open_store(hub.dir) as store:
        with store.engine.connect() as conn:
            position, original = conn.execute(
                sa.text(
                    "SELECT position, signed_entry FROM log WHERE origin = :o AND sequence = :s"
                ),
                {"o": TIBRO, "s": first},
            ).one()
        signed = feed_pb2.SignedEntry.FromString(bytes(original))
        # One byte of the relayed entry changed: "ärligt" becomes "ärligT".
        signed.entry = bytes(signed.entry).replace("ärligt".encode(), "ärligT".encode())
        tampered = signed.SerializeToString()
        with write_transaction(store.engine) as conn:
            conn.execute(
                sa.text("UPDATE log SET signed_entry = :b WHERE position = :p"),
                {"b": tampered, "p": position},
            )
    try:
        result = procs.run("sync", "--dir", str(gagnef.dir), "--no-push", check=False)
        assert result.returncode == 1, result
        assert f"{TIBRO}#{first}" in result.stderr and "bad_signature" in result.stderr
        # nothing from the altered entry on: not it, not Tibro's entry after it
        assert head_of(gagnef.dir, TIBRO) == gagnef_tibro
        with Node.open(gagnef.dir) as node:
            assert node.store.get_cursor("hub") == position - 1
            assert node.store.get_record(TIBRO, "tib-altered") is None
    finally:
        with open_store(hub.dir) as store, write_transaction(store.engine) as conn:
            conn.execute(
                sa.text("UPDATE log SET signed_entry = :b WHERE position = :p"),
                {"b": bytes(original), "p": position},
            )
    assert procs.json("sync", "--dir", str(gagnef.dir))["accepted"] >= 2


# -- refusals ------------------------------------------------------------------------------------


def test_refusals_are_answered_precisely_and_counted_by_reason(
    procs: Procs, hub: RunningHub, tibro: Member
) -> None:
    with Node.open(tibro.dir) as node:
        head = node.store.head(TIBRO)
        assert head is not None
        writer = factories.FeedWriter(TIBRO, node.signing_key)
        writer.sequence, writer.head_hash = head.sequence, head.entry_hash
        writer.next_timestamp_ms = (head.timestamp_ms or 0) + 1
    good = writer.publish(record_id="tib-kept")
    with Node.open(tibro.dir) as node:  # Tibro's own next entry: its store holds it too
        assert ingest(node.store, node.keyring(), [good], source="test").accepted == 1
    bad = writer.publish(record_id="tib-bad")
    bad.signature = bytes([bad.signature[0] ^ 1]) + bad.signature[1:]
    stranger = factories.FeedWriter(TIBRO, SigningKey.generate())
    stranger.sequence = writer.sequence
    unknown = stranger.build(factories.make_record("use_case", record_id="x", origin=TIBRO))

    async def publish(*entries: feed_pb2.SignedEntry) -> tuple[grpc.StatusCode, EntryRefused]:
        channel = open_channel(hub.member, tibro.tls())
        stub = hub_service_pb2_grpc.HubServiceStub(channel)
        request = hub_service_pb2.PublishRequest(
            entries=[feed_pb2.LogEntry(signed=e) for e in entries]
        )
        try:
            await stub.Publish(request, timeout=10)
        except grpc.aio.AioRpcError as err:
            refusal = from_rpc_error(err)
            assert isinstance(refusal, EntryRefused)
            return err.code(), refusal
        finally:
            await channel.close()
        raise AssertionError("the hub took a bad entry")

    code, refusal = run_async(publish(good, bad))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert (refusal.reason, refusal.origin, refusal.sequence) == (
        Reason.BAD_SIGNATURE,
        TIBRO,
        head.sequence + 2,
    )
    assert head_of(hub.dir, TIBRO) == head.sequence + 1  # the entry before it is kept

    code, refusal = run_async(publish(unknown))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert (refusal.reason, refusal.origin) == (Reason.UNKNOWN_KEY, TIBRO)
    far = writer.build(factories.make_record("use_case", record_id="y", origin=TIBRO), sequence=99)
    code, refusal = run_async(publish(far))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert (refusal.reason, refusal.sequence) == (Reason.SEQUENCE_GAP, 99)
    run_async(publish(bad))

    counted = {
        (r["origin"], r["reason"]): r for r in procs.json("hub", "refusals", "--dir", str(hub.dir))
    }
    assert counted[(TIBRO, "bad_signature")]["count"] == 2
    assert counted[(TIBRO, "bad_signature")]["last_source"] == "push"
    assert counted[(TIBRO, "bad_signature")]["last_peer"] == TIBRO
    assert counted[(TIBRO, "unknown_key")]["count"] == 1
    assert counted[(TIBRO, "sequence_gap")]["last_sequence"] == 99
    text = procs.run("hub", "refusals", "--dir", str(hub.dir)).stdout
    assert "bad_signature" in text and "×2" in text


# -- visibility ----------------------------------------------------------------------------------


def raw_read(address: str, tls: ClientTls) -> bytes:
    """Every byte FeedService.ReadEntries sends from position 0, as received."""

    async def read() -> bytes:
        channel = open_channel(address, tls)
        method = channel.unary_stream(
            "/samverka.v1.FeedService/ReadEntries",
            request_serializer=feed_service_pb2.ReadEntriesRequest.SerializeToString,
            response_deserializer=lambda raw: raw,
        )
        try:
            chunks = [bytes(m) async for m in method(feed_service_pb2.ReadEntriesRequest())]
        finally:
            await channel.close()
        return b"".join(chunks)

    return run_async(read())


def test_the_public_port_never_sends_a_members_record(
    hub: RunningHub, leksand: Member, gagnef: Member, procs: Procs
) -> None:
    author(leksand, "lek-vis-public", PUBLIC, title="Öppet fall PUBLICMARK")
    author(leksand, "lek-vis-members", MEMBERS, title="Medlemsfall MEMBERSMARK2")
    procs.json("node", "push", "--dir", str(leksand.dir))

    anonymous = raw_read(hub.public, ClientTls(ca=hub.ca.read_bytes()))
    assert b"PUBLICMARK" in anonymous  # the check can see records
    assert b"MEMBERSMARK" not in anonymous
    assert b"DRAFTMARK" not in anonymous

    member = raw_read(hub.member, gagnef.tls())
    assert b"MEMBERSMARK2" in member and b"DRAFTMARK" not in member

    # Publishing needs a member certificate: the public port refuses it.
    async def publish_anonymously() -> grpc.StatusCode:
        channel = open_channel(hub.public, ClientTls(ca=hub.ca.read_bytes()))
        try:
            await hub_service_pb2_grpc.HubServiceStub(channel).Publish(
                hub_service_pb2.PublishRequest(), timeout=10
            )
        except grpc.aio.AioRpcError as err:
            return err.code()
        finally:
            await channel.close()
        raise AssertionError("the public port took a Publish call")

    assert run_async(publish_anonymously()) is grpc.StatusCode.UNAUTHENTICATED


# -- progress and throughput ---------------------------------------------------------------------


def on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run ``samverka ARGS`` on a pseudo-terminal (as a person would); exit code and screen."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "samverka", *args],
        stdin=terminal, stdout=terminal, stderr=terminal, env={**env, "TERM": "dumb"},
        close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)
    return code, screen.decode("utf-8", "replace")


def test_throughput_with_a_progress_bar_on_a_terminal(
    procs: Procs, hub: RunningHub, tibro: Member, gagnef: Member
) -> None:
    procs.json("sync", "--dir", str(gagnef.dir))  # catch up first: only the bulk is new
    bulk(tibro, 2000)
    pushed = procs.json("node", "push", "--dir", str(tibro.dir))
    assert pushed["accepted"] == 2000 and pushed["batches"] == 4
    code, screen = on_a_terminal(["sync", "--dir", str(gagnef.dir)], procs.env)
    assert code == 0, screen
    assert "synkar från hubben" in screen and "ursprung" in screen and "/s" in screen
    summary = re.search(r"hämtade (\d+) (?:ny post|nya poster) .* \((\d+) poster/s\)", screen)
    assert summary is not None and int(summary[1]) == 2000, screen
    print(
        f"\npush: {pushed['entries_per_second']:.0f} entries/s "
        f"({pushed['accepted']} in {pushed['seconds']:.2f} s); "
        f"sync: {summary[2]} entries/s"
    )
    quiet = procs.run("sync", "--dir", str(gagnef.dir), "--quiet")
    assert (quiet.stdout, quiet.stderr) == ("", "")


def test_sync_follow_keeps_pulling_until_sigterm(
    procs: Procs, hub: RunningHub, tibro: Member, gagnef: Member
) -> None:
    follower = procs.start("sync", "--dir", str(gagnef.dir), "--follow", name="follow")
    try:
        wait_for(lambda: "following the hub" in procs.log("follow"), 60, "the follower to catch up")
        author(tibro, "tib-followed", PUBLIC, title="Följd live")
        procs.json("node", "push", "--dir", str(tibro.dir))
        with Node.open(gagnef.dir) as node:
            wait_for(
                lambda: node.store.get_record(TIBRO, "tib-followed") is not None,
                30,
                "the followed entry at Gagnef",
            )
    finally:
        follower.send_signal(signal.SIGTERM)
        code = follower.wait(timeout=30)
    out = (procs.tmp / "follow.out").read_text()
    assert code == 0, procs.log("follow")
    assert "från hubben (loggposition" in out and "följde hubben: " in out


def test_a_node_restored_from_an_older_backup_takes_its_feed_back_with_sync(
    procs: Procs, hub: RunningHub, gagnef: Member
) -> None:
    """The hub holds more of Gagnef's feed than Gagnef's (restored) database: pushing
    would fork the feed, so push refuses and says how to recover; sync recovers."""
    with Node.open(gagnef.dir) as node:
        head = node.store.head(GAGNEF)
        writer = factories.FeedWriter(GAGNEF, node.signing_key)
        if head is not None:
            writer.sequence, writer.head_hash = head.sequence, head.entry_hash
            writer.next_timestamp_ms = (head.timestamp_ms or 0) + 1
    lost = [writer.publish(record_id=f"gag-lost-{i}") for i in range(2)]

    async def publish_lost() -> int:
        async with HubClient(hub.member, gagnef.tls()) as link:
            return (await link.publish([feed_pb2.LogEntry(signed=e) for e in lost])).accepted

    assert run_async(publish_lost()) == 2  # published, then the node's database was restored
    refused = procs.run("node", "push", "--dir", str(gagnef.dir), check=False)
    assert refused.returncode == 1, refused
    assert "fork" in refused.stderr and "samverka sync" in refused.stderr

    synced = procs.json("sync", "--dir", str(gagnef.dir))
    assert synced["push_error"] is None and synced["pushed"]["accepted"] == 0
    assert head_of(gagnef.dir, GAGNEF) == head_of(hub.dir, GAGNEF) == writer.sequence
    with Node.open(gagnef.dir) as node:
        assert node.store.get_record(GAGNEF, "gag-lost-1") is not None
