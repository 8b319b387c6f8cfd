"""A hub that misbehaves with one origin's entries, against a real node's sync over gRPC.

The honest history comes from the real hub (the session's arena): Orsa, a real node
folder enrolled there, publishes a feed with a MEMBERS record and a draft (which
travels as a redacted stand-in) and pushes it. :class:`simhub.SimHub` then serves
that log with one thing changed, with the hub's own certificate and keys, and a
reader (Älvdalen, also enrolled) pulls it with ``samverka.replication.sync.sync_from_peer`` (what
``samverka sync`` runs) into a fresh store. Expected:

- altered, dropped or reordered entries and a lying stand-in stop the sync at that
  very entry, naming origin, sequence and reason; nothing from it on is stored and
  the cursor stays before it;
- withheld entries (the tail of a feed) are invisible to hash chains: the sync
  succeeds with a valid shorter prefix. ``samverka.replication.crosscheck`` catches it by
  comparing heads with the origin's own node (or the hub's own announcement, when it
  admits what it holds), naming the first missing sequence;
- an expired directory, or one signed by a key the node did not pin, is refused and
  the directory held stays.

The same for an entry altered in a real hub's database:
tests/hub/test_aggregation_e2e.py::test_an_entry_altered_at_the_hub_is_caught_by_the_syncing_node;
a rolled-back directory over the network:
tests/hub/test_membership_e2e.py::test_node_refuses_an_older_directory.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import factories
import pytest
from arena import TIBRO, Arena, enroll_node, hub_env, run
from samverka.errors import DirectoryRefused, EntryRefused, Reason
from samverka.membership.member import (
    DIRECTORY_FILE,
    accept_directory,
    load_directory,
    refresh_directory,
)
from samverka.membership.serving import build_node_server
from samverka.node import Node
from samverka.ops.doctor import run_doctor
from samverka.protocol.directory import build_directory, hub_member, keyring_from_directory
from samverka.protocol.entries import parse_signed
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.signing import SigningKey, entry_hash
from samverka.protocol.verify import FeedHead, MemoryFeedState, Verdict, verify_entry
from samverka.replication.crosscheck import HeadMismatch, MismatchKind, compare_heads, cross_check
from samverka.replication.ingest import ingest
from samverka.replication.logproof import LogProver
from samverka.replication.push import push_feed
from samverka.replication.sync import SyncReport, SyncStopped, sync_from_peer
from samverka.store.store import Store
from samverka.transport.client import ClientTls, FeedClient
from samverka.transport.hubclient import HubClient
from samverka.v1 import directory_pb2, records_pb2
from simhub import LogKeyOnly, RogueLog, SimHub, log_vkey
from soakresults import record

ORSA, ALVDALEN = "2034", "2039"
PUBLIC = records_pb2.VISIBILITY_PUBLIC
MEMBERS = records_pb2.VISIBILITY_MEMBERS
DRAFT = records_pb2.VISIBILITY_DRAFT
#: Orsa's feed: sequence 2 is a MEMBERS record, 3 a draft (a stand-in beyond Orsa).
FEED = [PUBLIC, MEMBERS, DRAFT, PUBLIC, PUBLIC, PUBLIC, PUBLIC, PUBLIC]
DRAFT_SEQUENCE = 3


@dataclass(frozen=True)
class Federation:
    arena: Arena
    orsa: Path
    reader: Path
    honest: RogueLog
    tmp: Path


@pytest.fixture(scope="module")
def federation(hub_arena: Arena, tmp_path_factory: pytest.TempPathFactory) -> Federation:
    tmp = tmp_path_factory.mktemp("misbehaviour")
    # [witness] quorum 0: the arena has no witnessing nodes (the log is still proven).
    orsa = enroll_node(hub_arena.hub, ORSA, tmp / "orsa", quorum=0)
    reader = enroll_node(hub_arena.hub, ALVDALEN, tmp / "alvdalen", quorum=0)
    with Node.open(orsa) as node:
        for i, visibility in enumerate(FEED, start=1):
            record_ = factories.make_record(
                "use_case", record_id=f"orsa-{i}", origin=ORSA, visibility=visibility,
                title=f"Orsas fall nummer {i}",
            )  # fmt: skip
            node.publisher().publish(record_)

        async def push() -> int:
            async with HubClient(hub_arena.hub.member, ClientTls.from_config(node.config)) as link:
                return (await push_feed(node.store, ORSA, link)).hub_sequence

        assert run(push()) == len(FEED)
    tibro = hub_arena.writer(TIBRO)
    assert hub_arena.publish(TIBRO, *[tibro.publish(record_id=f"tib-{i}") for i in range(3)]).ok
    with hub_arena.hub.open_store() as store:
        honest = RogueLog.of(store)
    return Federation(hub_arena, orsa, reader, honest, tmp)


def current_directory(federation: Federation) -> bytes:
    return (federation.reader / DIRECTORY_FILE).read_bytes()


def held_directory(federation: Federation) -> directory_pb2.SignedDirectory:
    """The directory the reader holds: what an honest hub would serve."""
    return directory_pb2.SignedDirectory.FromString(current_directory(federation))


async def pull(
    federation: Federation,
    log: RogueLog,
    name: str,
    *,
    proof_wait: float = 0.0,
    separate_proofs_only: bool = False,
    combined_asked: list[bool] | None = None,
) -> tuple[SyncReport | SyncStopped, Store]:
    """Sync a fresh store of the reader from a hub serving ``log``, proving each page in
    the hub's transparency log (accepted checkpoints: signed by its log key, quorum 0).
    ``separate_proofs_only``: the hub predates combined proofs; ``combined_asked`` is
    filled with whether each GetInclusionProofs call asked for one."""
    store = Store.open(f"sqlite:///{federation.tmp / f'reader-{name}.db'}")
    directory = held_directory(federation)
    with Node.open(federation.reader) as reader:
        keys = reader.keyring()
        tls = ClientTls.from_config(reader.config)
    sim_hub = SimHub(
        federation.arena.hub.dir,
        log,
        directory,
        separate_proofs_only=separate_proofs_only,
        combined_asked=[] if combined_asked is None else combined_asked,
    )
    async with (
        sim_hub as sim,
        FeedClient.connect(sim.address, tls) as client,
        HubClient(sim.address, tls) as link,
    ):
        checkpoints = LogKeyOnly(link, log_vkey(federation.arena.hub.dir))
        prover = LogProver(link.get_inclusion_answer, checkpoints, wait=proof_wait, poll=0.05)
        try:
            report = await sync_from_peer(store, keys, client, peer="hub", prover=prover)
        except SyncStopped as stopped:
            return stopped, store
        assert report.proven == report.received, "every entry stored was proven"
        return report, store


def orsa_head(store: Store) -> int:
    head = store.head(ORSA)
    return head.sequence if head is not None else 0


@pytest.mark.parametrize(
    ("misbehaviour", "sequence", "reason", "named"),
    [
        ("altered", 5, Reason.BAD_SIGNATURE, 5),
        ("lying_stand_in", DRAFT_SEQUENCE, Reason.FORK, DRAFT_SEQUENCE),
        ("dropped", 5, Reason.SEQUENCE_GAP, 6),
        ("reordered", 5, Reason.SEQUENCE_GAP, 6),
    ],
)
def test_the_node_stops_at_the_entry_the_hub_tampered_with(
    federation: Federation, misbehaviour: str, sequence: int, reason: Reason, named: int
) -> None:
    log = getattr(federation.honest, misbehaviour)(ORSA, sequence)
    stopped, store = run(pull(federation, log, misbehaviour))
    detected = isinstance(stopped, SyncStopped)
    record(
        "attack", f"hub {misbehaviour.replace('_', ' ')} one entry",
        refused=detected and stopped.reason is reason, code="sync stopped",
        reason=getattr(stopped, "reason", ""),
    )  # fmt: skip
    assert isinstance(stopped, SyncStopped), (
        f"the node accepted a log with one entry {misbehaviour}"
    )
    assert (stopped.reason, stopped.origin, stopped.sequence) == (reason, ORSA, named)
    assert f"{ORSA}#{named}" in str(stopped)
    # Nothing of Orsa's from the first unproven entry on; the cursor stays before it.
    held = orsa_head(store)
    assert held < min(sequence, named)
    assert store.get_cursor("hub") < stopped.position
    store.close()


def test_a_dropped_entry_stops_samverka_sync_with_a_message(federation: Federation) -> None:
    """The same through the CLI an operator runs, against the simulated hub (with a
    reader folder of its own: the log it accepts a checkpoint of is this hub's)."""
    log = federation.honest.dropped(ORSA, 4)
    directory = held_directory(federation)
    reader_dir = federation.tmp / "reader-dropped"
    shutil.copytree(federation.reader, reader_dir)

    async def scenario() -> tuple[int, str]:
        async with SimHub(federation.arena.hub.dir, log, directory) as sim:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "samverka", "sync", "--dir", str(reader_dir), "--no-push",
                env=hub_env(SAMVERKA_HUB_ADDRESS=sim.address, SAMVERKA_HUB_FOLLOW="false"),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode is not None
            return proc.returncode, (out + err).decode()

    code, output = run(scenario())
    record("attack", "hub drops one entry (samverka sync)", refused=code == 1,
           code=f"exit {code}", reason="sequence_gap")  # fmt: skip
    assert code == 1, output
    assert f"{ORSA}#5" in output and "sequence_gap" in output, output
    with Node.open(reader_dir) as reader:
        assert orsa_head(reader.store) == 3


# -- withholding ---------------------------------------------------------------------------


def test_withheld_entries_pass_the_chain_and_are_caught_by_comparing_heads(
    federation: Federation,
) -> None:
    log = federation.honest.withheld(ORSA, 6)
    report, store = run(pull(federation, log, "withheld"))
    # Hash chains cannot show it: a shorter prefix is a valid feed.
    assert isinstance(report, SyncReport), report
    assert orsa_head(store) == 5

    async def compare() -> tuple[list[HeadMismatch], list[HeadMismatch]]:
        with Node.open(federation.orsa) as orsa, Node.open(federation.reader) as reader:
            tls = ClientTls.from_config(reader.config)
            server = build_node_server(
                orsa.config, orsa.store, orsa.signing_key.public, listen="127.0.0.1:0"
            )
            await server.start()
            try:
                directory = held_directory(federation)
                async with (
                    SimHub(federation.arena.hub.dir, log, directory) as sim,
                    FeedClient.connect(sim.address, tls) as hub,
                ):
                    from_hub = await cross_check(store, hub, source="the hub")
                async with FeedClient.connect(server.listeners[0].bound_address, tls) as node:
                    from_origin = await cross_check(store, node, source="Orsa's node")
            finally:
                await server.stop(grace=0)
        return from_hub, from_origin

    from_hub, from_origin = run(compare())
    # The hub's own answers agree with what it served: undetectable from the hub alone.
    assert from_hub == []
    # The origin's own node knows its head.
    assert from_origin == [HeadMismatch(ORSA, MismatchKind.BEHIND, 5, len(FEED), "Orsa's node")]
    assert str(from_origin[0]).startswith(f"{ORSA}#6: Orsa's node holds the feed up to #8")
    record("attack", "hub withholds a feed's tail (heads compared with the origin's node)",
           refused=True, code="cross-check", reason="behind")  # fmt: skip
    store.close()


def test_a_hub_that_announces_more_than_it_serves_is_caught_from_its_own_heads(
    federation: Federation,
) -> None:
    log = federation.honest.withheld(ORSA, 7, admit=True)
    report, store = run(pull(federation, log, "admitted"))
    assert isinstance(report, SyncReport) and orsa_head(store) == 6
    announced = [FeedHead(h.origin, h.sequence, h.entry_hash) for h in log.heads()]
    found = compare_heads(store, announced, source="the hub")
    assert [(m.origin, m.kind, m.sequence, m.theirs) for m in found] == [
        (ORSA, MismatchKind.BEHIND, 7, len(FEED))
    ]
    record("attack", "hub withholds entries its own heads announce", refused=True,
           code="cross-check", reason="behind")  # fmt: skip
    store.close()


def test_an_entry_hidden_behind_a_stand_in_is_recovered_from_the_origin(
    federation: Federation,
) -> None:
    """The hub serves Orsa's public #5 as if it were a draft. The chain verifies, so the
    reader stores a placeholder; reading Orsa's own node afterwards fills it in: the
    record is listed and found, counted as a filled stand-in (not a duplicate), and the
    reader serves the entry on in full."""
    report, store = run(pull(federation, federation.honest.hidden(ORSA, 5), "hidden"))
    assert isinstance(report, SyncReport) and orsa_head(store) == len(FEED)
    assert store.get_record(ORSA, "orsa-5") is None  # hidden, and nothing said so
    head_before, position_before = store.head(ORSA), store.log_position()

    async def from_origin() -> SyncReport:
        with Node.open(federation.orsa) as orsa, Node.open(federation.reader) as reader:
            server = build_node_server(
                orsa.config, orsa.store, orsa.signing_key.public, listen="127.0.0.1:0"
            )
            await server.start()
            try:
                address = server.listeners[0].bound_address
                async with FeedClient.connect(address, ClientTls.from_config(reader.config)) as c:
                    return await sync_from_peer(store, reader.keyring(), c, peer="orsa")
            finally:
                await server.stop(grace=0)

    recovered = run(from_origin())
    try:
        filled = recovered.stand_ins_filled == 1
        record("attack", "hub hides a PUBLIC entry behind a stand-in (origin's node read)",
               refused=filled, code="filled in", reason="stand_in")  # fmt: skip
        # Counted as a filled stand-in, not as new or duplicate; the chain is unchanged.
        assert (recovered.accepted, recovered.stand_ins_filled) == (0, 1)
        assert recovered.duplicates == len(FEED) - 1
        assert store.head(ORSA) == head_before and store.log_position() == position_before
        held = store.get_record(ORSA, "orsa-5")
        assert held is not None and held.version == 1
        assert [h.record_id for h in store.search("nummer 5", origins=[ORSA])] == ["orsa-5"]
        # Served on in full, even to a reader without a member certificate.
        fifth = store.feed_items(ORSA, after_sequence=4, limit=1, member=False)
        assert fifth[0].WhichOneof("item") == "signed"
        assert parse_signed(fifth[0].signed).record.header.id == "orsa-5"
        # Reading the origin again from the start changes nothing: the entry is held now.
        store.set_cursor("orsa", 0)
        again = run(from_origin())
        assert (again.accepted, again.duplicates, again.stand_ins_filled) == (0, len(FEED), 0)
    finally:
        store.close()


def test_a_key_the_hub_lists_on_its_own_is_refused_and_its_kommun_raises_the_alarm(
    federation: Federation,
) -> None:
    """A directory signed with the hub's key that lists a key of the hub's for Orsa (a
    kommun the nodes know): no longer binds it. A reader holding that directory refuses
    entries signed with it (``key_in_challenge``: it takes effect only after standing its
    challenge period in a cosigned checkpoint, unobjected); Orsa's node, adopting it,
    raises the monitor's alarm with evidence and an objection, and ``samverka doctor``
    FAILs. The same over real processes, with the objection honoured by every member and
    the time to alarm: tests/attacks/test_hub_key_binding.py."""
    hub_key = SigningKey.from_pem((federation.arena.hub.dir / "keys" / "signing.key").read_bytes())
    planted = SigningKey.generate()
    with Node.open(federation.reader) as reader:
        held = load_directory(reader.config)
    assert held is not None
    members = []
    for member in held.directory.members:
        copy = directory_pb2.Member()
        copy.CopyFrom(member)
        if member.kommunkod == ORSA:
            copy.keys.add(public_key=planted.public.raw, key_id=planted.key_id)
        members.append(copy)
    rogue = build_directory(
        hub_key, version=held.version + 1, members=members, issued_at_ms=held.issued_at_ms
    )
    # The directory's word alone would bind it ...
    forged = factories.FeedWriter(ORSA, planted).publish(record_id="planted", origin=ORSA)
    verdict, _ = verify_entry(forged, keyring_from_directory(rogue.directory), MemoryFeedState())
    assert verdict is Verdict.ACCEPTED
    # ... a reader that knew Orsa does not: the key is in challenge.
    reader_copy = federation.tmp / "alvdalen-rogue-directory"
    shutil.copytree(federation.reader, reader_copy)
    with Node.open(reader_copy) as reader:
        accept_directory(reader.config, rogue.signed)
        with pytest.raises(EntryRefused) as refused:
            verify_entry(forged, reader.keyring(), MemoryFeedState())
    assert refused.value.reason is Reason.KEY_IN_CHALLENGE
    assert f"key {planted.key_id} of {ORSA}" in str(refused.value)
    record("attack", "hub lists a key of its own for a kommun (other nodes refuse it)",
           refused=True, code="refused", reason="key_in_challenge")  # fmt: skip
    # Orsa's node holding it (a copy of its folder): the alarm, and doctor fails.
    copy_dir = federation.tmp / "orsa-copy"
    shutil.copytree(federation.orsa, copy_dir)
    with Node.open(copy_dir) as orsa:
        update = accept_directory(orsa.config, rogue.signed)
    [alarm] = update.alarms
    assert (alarm.kind, alarm.key_id) == ("key_not_held", planted.key_id)
    assert (copy_dir / alarm.evidence / "directory.bin").read_bytes() == rogue.signed_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "samverka", "doctor", "--dir", str(copy_dir), "--offline"],
        capture_output=True, text=True, env=hub_env(), timeout=120,
    )  # fmt: skip
    line = next(x for x in result.stdout.splitlines() if " directory " in f" {x} ")
    record("attack", "hub lists a key of its own for a kommun (seen by its doctor)",
           refused=result.returncode == 1 and planted.key_id in line, code="doctor FAIL",
           reason="key not held")  # fmt: skip
    assert result.returncode == 1, result
    assert line.startswith("FAIL") and planted.key_id in line, result.stdout
    assert "larm från övervakningen" in line and "never held" in line
    # The honest folder passes the same check.
    honest = run_doctor(federation.orsa, only=["directory"])
    assert [f.status.value for f in honest.findings] == ["ok"], honest.findings


def test_compare_heads_names_forks_and_ignores_a_source_behind_us(tmp_path: Path) -> None:
    """Pure cases: a different entry at a held sequence; a source that is behind."""
    leksand = factories.FeedWriter(factories.LEKSAND)
    twin = leksand.fork()
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        entries = [leksand.publish(record_id=f"r{i}") for i in range(3)]
        assert ingest(store, leksand.keyring(), entries).accepted == 3
        other = twin.publish(record_id="other")
        forked = FeedHead(factories.LEKSAND, 1, entry_hash(other.entry))
        behind_us = FeedHead(factories.LEKSAND, 2, entry_hash(entries[1].entry))
        assert compare_heads(store, [behind_us], source="peer") == []
        [fork] = compare_heads(store, [forked], source="peer")
        assert (fork.kind, fork.sequence, fork.ours) == (MismatchKind.FORK, 1, 3)
        assert "two histories" in str(fork)
        unknown = FeedHead(factories.TIBRO, 4, bytes(32))
        [missing] = compare_heads(store, [unknown], source="peer")
        assert (missing.kind, missing.sequence, missing.theirs) == (MismatchKind.BEHIND, 1, 4)


# -- directories -------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["expired", "signed by another key"])
def test_a_bad_directory_is_refused_and_the_held_one_stays(
    federation: Federation, which: str
) -> None:
    hub_key = SigningKey.from_pem((federation.arena.hub.dir / "keys" / "signing.key").read_bytes())
    # Each simulated hub keeps a log of its own (the directory it serves is its first
    # leaf): a checkpoint accepted from another case's would rightly be a split view.
    shutil.rmtree(federation.reader / "tlog", ignore_errors=True)
    with Node.open(federation.reader) as reader:
        held = load_directory(reader.config)
        assert held is not None
        config = reader.config
    day = 24 * 3600 * 1000
    signer = hub_key if which == "expired" else SigningKey.generate()
    issued = held.issued_at_ms - 8 * day if which == "expired" else held.issued_at_ms
    # The signer lists itself as the hub (member 0000), as a real directory does.
    members = [m for m in held.directory.members if m.kommunkod != HUB_ORIGIN]
    forged = build_directory(
        signer,
        version=held.version + 1,  # newer than held: only expiry or the key refuse it
        members=[hub_member(signer.public), *members],
        issued_at_ms=issued,
        valid_ms=7 * day,
    )
    before = current_directory(federation)

    async def refresh() -> DirectoryRefused:
        async with SimHub(federation.arena.hub.dir, federation.honest, forged.signed) as sim:
            at_sim = replace(config, hub=replace(config.hub, address=sim.address))
            try:
                await refresh_directory(at_sim)
            except DirectoryRefused as refused:
                return refused
        raise AssertionError("the node accepted the directory")

    refused = run(refresh())
    expected = Reason.EXPIRED if which == "expired" else Reason.UNKNOWN_KEY
    record("attack", f"{which} member directory", refused=refused.reason is expected,
           code="refused", reason=refused.reason.value)  # fmt: skip
    assert refused.reason is expected
    assert current_directory(federation) == before


# -- the transparency log: what the hub serves must be in its log ----------------------------


@pytest.mark.parametrize(
    ("misbehaviour", "reason", "separate_proofs_only"),
    [
        ("unlogged", Reason.NOT_IN_LOG, False),
        ("misproven", Reason.BAD_PROOF, False),
        ("misproven", Reason.BAD_PROOF, True),
    ],
)
def test_an_entry_the_hub_cannot_prove_in_its_log_stops_the_sync(
    federation: Federation, misbehaviour: str, reason: Reason, separate_proofs_only: bool
) -> None:
    """The hub serves Orsa's #6 (and, unlogged, what follows) but its log does not hold
    them (it hides them from the witnesses, or shows this reader another history), or it
    answers with a forged proof: the combined proof of #6's page, or (a hub that predates
    combined proofs) #6's own. The reader stores Orsa's #1-#5, proven, and stops at #6
    naming the reason; the cursor stays right before it."""
    log = getattr(federation.honest, misbehaviour)(ORSA, 6)
    started = time.monotonic()
    name = f"{misbehaviour}-{separate_proofs_only}"
    asked: list[bool] = []
    stopped, store = run(
        pull(
            federation,
            log,
            name,
            proof_wait=0.3,
            separate_proofs_only=separate_proofs_only,
            combined_asked=asked,
        )
    )
    seconds = time.monotonic() - started
    if misbehaviour == "misproven" and not separate_proofs_only:
        # The combined proof failed as a whole; the leaves' own proofs named #6.
        assert True in asked and False in asked, asked
    detected = isinstance(stopped, SyncStopped) and stopped.reason is reason
    what = "not in its log" if reason is Reason.NOT_IN_LOG else "with a forged inclusion proof"
    record("attack", f"hub serves an entry {what}", refused=detected, code="sync stopped",
           reason=getattr(stopped, "reason", ""))  # fmt: skip
    try:
        assert isinstance(stopped, SyncStopped), "the node stored an entry the hub cannot prove"
        assert (stopped.reason, stopped.origin, stopped.sequence) == (reason, ORSA, 6)
        assert f"{ORSA}#6: {reason.value}" in str(stopped)
        assert orsa_head(store) == 5
        assert store.get_cursor("hub") < stopped.position
        # Everything before Orsa's #6 in the log (other modules' entries too), proven.
        assert stopped.report.proven == stopped.report.accepted >= 5
        if reason is Reason.NOT_IN_LOG:
            # It waited for a newer checkpoint (proof_wait), no longer.
            assert 0.3 <= seconds < 5, seconds
            assert "cannot prove it is in its log" in str(stopped)
    finally:
        store.close()


@pytest.mark.parametrize("separate_proofs_only", [False, True])
def test_every_page_is_proven_whether_the_hub_combines_proofs_or_not(
    federation: Federation, separate_proofs_only: bool
) -> None:
    """An honest hub proves each page of a sync with one combined proof (a run of
    leaves: ~2·log2(n) hashes, not log2(n) per leaf); a hub that predates combined
    proofs answers the same request with a proof per leaf. Either way every entry is
    proven and stored, with one GetInclusionProofs call per page."""
    asked: list[bool] = []
    report, store = run(
        pull(
            federation,
            federation.honest,
            f"honest-{separate_proofs_only}",
            separate_proofs_only=separate_proofs_only,
            combined_asked=asked,
        )
    )
    try:
        assert isinstance(report, SyncReport), report
        assert report.proven == report.received == len(federation.honest.entries)
        assert asked == [True] * report.pages, asked
        assert orsa_head(store) == len(FEED)
    finally:
        store.close()


def test_a_page_proven_against_an_old_checkpoint_waits_for_a_newer_one(
    federation: Federation,
) -> None:
    """The reader's accepted checkpoint predates the entries (the hub grew since): the
    first GetInclusionProofs says NOT_FOUND, a newer checkpoint is fetched and accepted,
    and the page is proven against it; one proof call per page after that."""
    log = federation.honest
    directory = held_directory(federation)

    async def scenario() -> tuple[SyncReport, LogKeyOnly, list[str]]:
        store = Store.open(f"sqlite:///{federation.tmp / 'reader-newer.db'}")
        with Node.open(federation.reader) as reader:
            keys, tls = reader.keyring(), ClientTls.from_config(reader.config)
        small = RogueLog(log.entries[:2])
        async with (
            SimHub(federation.arena.hub.dir, small, directory) as sim,
            FeedClient.connect(sim.address, tls) as client,
            HubClient(sim.address, tls) as link,
        ):
            checkpoints = LogKeyOnly(link, log_vkey(federation.arena.hub.dir))
            assert (await checkpoints.newer()) is not None  # accepted: 3 leaves
            sim.log = log  # the hub grows
            prover = LogProver(link.get_inclusion_answer, checkpoints, wait=5, poll=0.05)
            try:
                return (
                    await sync_from_peer(store, keys, client, peer="hub", prover=prover),
                    checkpoints,
                    sim.calls,
                )
            finally:
                store.close()

    report, checkpoints, calls = run(scenario())
    assert report.proven == report.received == len(log.entries)
    assert checkpoints.asked == 2
    assert report.checkpoint_size == len(log.entries) + 1  # the directory's leaf too
    # One refused try against the old tree, then one call per page.
    assert calls.count("GetInclusionProofs") == report.pages + 1


def directory_naming_the_log(federation: Federation) -> directory_pb2.SignedDirectory:
    """The held directory as the next version, naming the hub's log key (signed with the
    hub's key, as the hub does since it keeps a log)."""
    held = directory_pb2.Directory.FromString(held_directory(federation).directory)
    hub_key = SigningKey.from_pem((federation.arena.hub.dir / "keys" / "signing.key").read_bytes())
    return build_directory(
        hub_key,
        version=held.version + 1,
        members=list(held.members),
        issued_at_ms=int(time.time() * 1000),
        log_key=log_vkey(federation.arena.hub.dir),
    ).signed


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [(None, None), ("unlogged", Reason.NOT_IN_LOG), ("misproven", Reason.BAD_PROOF)],
)
def test_samverka_sync_proves_every_entry_and_exits_7_on_one_the_hub_cannot_prove(
    federation: Federation, misbehaviour: str | None, reason: Reason | None
) -> None:
    """``samverka sync`` (the CLI, a subprocess) against a hub whose directory names its
    log key: each page is proven against a checkpoint the node accepted (quorum 0 here:
    witnessing is not the point; tlog/accepted is kept). Unlogged or misproven, Orsa's
    #6 stops it with exit 7 and a Swedish message naming it and the reason; #1-#5 are
    stored."""
    reader = federation.tmp / f"reader-cli-{misbehaviour}"
    shutil.copytree(federation.reader, reader)
    # Each simulated hub keeps a log of its own: a checkpoint the reader accepted from
    # another (an earlier test's) would rightly be a split view here.
    shutil.rmtree(reader / "tlog", ignore_errors=True)
    log = federation.honest
    if misbehaviour is not None:
        log = getattr(log, misbehaviour)(ORSA, 6)
    directory = directory_naming_the_log(federation)

    async def scenario() -> tuple[int, str, str]:
        async with SimHub(federation.arena.hub.dir, log, directory) as sim:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "samverka", "sync", "--dir", str(reader), "--no-push",
                "--json",
                env=hub_env(
                    SAMVERKA_HUB_ADDRESS=sim.address, SAMVERKA_HUB_FOLLOW="false",
                    SAMVERKA_WITNESS_QUORUM="0", SAMVERKA_WITNESS_PROOF_WAIT_SECONDS="0.5",
                ),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode is not None
            return proc.returncode, out.decode(), err.decode()

    code, out, err = run(scenario())
    with Node.open(reader) as node:
        head = orsa_head(node.store)
    assert (reader / "tlog" / "accepted").exists(), err
    if reason is None:
        assert code == 0, out + err
        report = json.loads(out)
        received = report["accepted"] + report["duplicates"] + report["stand_ins_filled"]
        assert report["proven"] == received > 0
        assert report["checkpoint_size"] == len(log.entries) + 1
        assert head == len(FEED)
        return
    what = "not in its log" if reason is Reason.NOT_IN_LOG else "with a forged inclusion proof"
    record("attack", f"hub serves an entry {what} (samverka sync)", refused=code == 7,
           code=f"exit {code}", reason=reason.value)  # fmt: skip
    assert code == 7, out + err
    assert f"posten {ORSA}#6" in err and f"({reason.value})" in err, err
    if reason is Reason.NOT_IN_LOG:
        assert "hubben kan inte bevisa att posten 2034#6 finns i dess transparenslogg" in err
    else:
        assert "hubbens bevis för att posten 2034#6 finns i dess transparenslogg håller inte" in err
    assert "tips:" in err and "AI-rådet" in err
    assert head == 5


def test_a_directory_version_is_kept_only_once_proven_in_the_hubs_log(
    federation: Federation,
) -> None:
    """A reader adopts directory version N+1 (the first naming the log: taken on first
    sight, or proven); then the hub serves N+2 but keeps it out of its log: refused
    not_in_log after the wait, N+1 stays; then it logs N+2 with a forged proof: refused
    bad_proof; then honestly: N+2 is adopted."""
    reader = federation.tmp / "reader-directories"
    shutil.copytree(federation.reader, reader)
    shutil.rmtree(reader / "tlog", ignore_errors=True)
    first = directory_naming_the_log(federation)
    version = directory_pb2.Directory.FromString(first.directory).version
    held = directory_pb2.Directory.FromString(first.directory)
    hub_key = SigningKey.from_pem((federation.arena.hub.dir / "keys" / "signing.key").read_bytes())
    second = build_directory(
        hub_key, version=version + 1, members=list(held.members),
        issued_at_ms=int(time.time() * 1000), log_key=held.log_key,
    ).signed  # fmt: skip
    with Node.open(reader) as node:
        config = node.config
    config = replace(config, witness=replace(config.witness, proof_wait_seconds=0.3))

    async def scenario() -> list[int | Reason]:
        seen: list[int | Reason] = []
        async with SimHub(federation.arena.hub.dir, federation.honest, first) as sim:
            at_sim = replace(config, hub=replace(config.hub, address=sim.address))
            seen.append((await refresh_directory(at_sim)).directory.version)
            sim.directory, sim.logged_directories = second, (first,)
            forged = replace(sim.log, forged_proofs=frozenset({("", version + 1)}))
            for logged, log in [((first,), sim.log), ((first, second), forged),
                                ((first, second), sim.log)]:  # fmt: skip
                sim.logged_directories, sim.log = logged, log
                try:
                    seen.append((await refresh_directory(at_sim)).directory.version)
                except EntryRefused as refused:
                    assert (refused.origin, refused.sequence) == ("", version + 1)
                    seen.append(refused.reason)
                    assert load_directory(at_sim).version == version  # the held one stays
        return seen

    seen = run(scenario())
    assert seen == [version, Reason.NOT_IN_LOG, Reason.BAD_PROOF, version + 1]
    assert (reader / "tlog" / "accepted").exists()
    record("attack", "hub serves a directory version not in its log", refused=True,
           code="refused", reason="not_in_log")  # fmt: skip
    record("attack", "hub serves a directory version with a forged inclusion proof",
           refused=True, code="refused", reason="bad_proof")  # fmt: skip
