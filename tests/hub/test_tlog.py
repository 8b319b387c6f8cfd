"""The hub's transparency log (samverka_hub.tlog): leaves, the sequencer, checkpoints.

Over a real hub folder and database (SQLite and PostgreSQL); the web port and real
processes are covered in tests/web/test_tlog_http.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import factories
import pytest
import sqlalchemy as sa
from hubkit import make_hub
from samverka.protocol import merkle
from samverka.protocol.checkpoint import open_checkpoint
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.note import Ed25519Signer, parse_note
from samverka.store.logwatch import LogWatcher
from samverka.store.store import Store
from samverka.v1 import records_pb2
from samverka_hub import tlog
from samverka_hub.folder import Hub

MEMBERS = records_pb2.VISIBILITY_MEMBERS
SECRET = "Hemlig titel som bara medlemmar får se"


def publish(hub: Hub, record_id: str, *, visibility: int = records_pb2.VISIBILITY_PUBLIC) -> None:
    fields = {"title": SECRET} if visibility == MEMBERS else {}
    record = factories.make_record(
        "lesson", record_id=record_id, origin=HUB_ORIGIN, visibility=visibility, **fields
    )
    hub.node().publisher().publish(record)


def signer_of(hub: Hub) -> Ed25519Signer:
    signer = tlog.load_log_key(hub.dir)
    assert signer is not None
    return signer


def all_leaves(reader: tlog.LogReader, size: int) -> list[bytes]:
    return reader.read_leaves(0, size) if size else []


def test_leaf_format_round_trips_and_stays_small() -> None:
    h = bytes(range(32))
    leaf = tlog.entry_leaf("1280", 7, h)
    assert len(leaf) == 2 + 8 + 1 + 4 + 32
    assert tlog.parse_leaf(leaf) == tlog.Leaf(tlog.KIND_ENTRY, 7, "1280", h)
    d = tlog.directory_leaf(3, h)
    assert tlog.parse_leaf(d) == tlog.Leaf(tlog.KIND_DIRECTORY, 3, "", h)
    for bad in (b"", b"\x02\x01" + leaf[2:], leaf[:-1], d + b"x"):
        with pytest.raises(ValueError):
            tlog.parse_leaf(bad)


def test_hub_init_makes_the_log_key(tmp_path: Path) -> None:
    with make_hub(tmp_path / "hub") as h:
        key = h.hub.dir / tlog.LOG_KEY_FILE
        assert key.stat().st_mode & 0o777 == 0o600
        signer = signer_of(h.hub)
        assert signer.name.endswith("/samverka-log")
        vkey = (h.hub.dir / tlog.LOG_VKEY_FILE).read_text().strip()
        assert vkey == signer.verifier().vkey
        # A folder made before the log gets one on first serve, said so in the log.
        key.unlink()
        (h.hub.dir / tlog.LOG_VKEY_FILE).unlink()
        created = tlog.ensure_log_key(h.hub.dir, "hub.example")
        assert created.name == "hub.example/samverka-log"
        assert tlog.ensure_log_key(h.hub.dir, "other").skey == created.skey


def test_sequencer_logs_entries_and_directories_in_order(tmp_path: Path, store_url: str) -> None:
    with make_hub(tmp_path / "hub", store_url=store_url) as h:
        hub = h.hub
        signer = signer_of(hub)
        engine = hub.store.engine
        reader = tlog.LogReader(engine, signer.verifier().vkey)
        publish(hub, "r-0")
        publish(hub, "secret", visibility=MEMBERS)
        for i in range(1, 12):
            publish(hub, f"r-{i}")
        # Small rounds: the tree grown leaf by leaf must equal the tree of all leaves.
        sizes = []
        while tlog.sequence_once(engine, signer, batch=5):
            latest = reader.latest()
            assert latest is not None
            sizes.append(latest[0])
        assert sizes == [5, 10, 14]  # directory v1, then the 13 log positions
        size, note = reader.latest()  # type: ignore[misc]
        cp = open_checkpoint(note, signer.verifier()).checkpoint
        assert (cp.origin, cp.size) == (signer.name, 14)
        leaves = all_leaves(reader, size)
        assert cp.root_hash == merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in leaves])
        parsed = [tlog.parse_leaf(x) for x in leaves]
        assert parsed[0].kind == tlog.KIND_DIRECTORY and parsed[0].number == 1
        assert [(p.origin, p.number) for p in parsed[1:]] == [(HUB_ORIGIN, s) for s in range(1, 14)]
        assert all(SECRET.encode() not in x for x in leaves)
        for p in parsed[1:]:
            assert p.digest == hub.store.entry_hash(HUB_ORIGIN, p.number)
        # Proofs from the stored hashes verify against the signed root.
        for i in range(size):
            proof = merkle.inclusion_proof(size, i, reader.read_hashes)
            merkle.verify_inclusion(merkle.leaf_hash(leaves[i]), i, size, proof, cp.root_hash)
        # A new directory version and more entries: the new tree extends the old one.
        h.clock.now += 1000
        assert hub.council.reissue_directory().version == 2
        publish(hub, "r-late")
        assert tlog.sequence_once(engine, signer) == 2
        assert tlog.sequence_once(engine, signer) == 0
        assert tlog.parse_leaf(reader.read_leaves(14, 1)[0]).kind == tlog.KIND_DIRECTORY
        new_size, new_note = reader.latest()  # type: ignore[misc]
        new = open_checkpoint(new_note, signer.verifier()).checkpoint
        proof = merkle.consistency_proof(size, new_size, reader.read_hashes)
        merkle.verify_consistency(size, new_size, cp.root_hash, new.root_hash, proof)


def test_replicas_on_one_database_append_one_log(tmp_path: Path, pg_url: str) -> None:
    """Two sequencers (two engines, as two replicas) racing: one log, no leaf twice."""
    with make_hub(tmp_path / "hub", store_url=pg_url) as h:
        hub = h.hub
        signer = signer_of(hub)
        for i in range(40):
            publish(hub, f"r-{i}")
        other = Store.open(pg_url)
        try:
            errors: list[BaseException] = []

            def run(engine: sa.Engine) -> None:
                try:
                    while tlog.sequence_once(engine, signer, batch=3):
                        pass
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            threads = [
                threading.Thread(target=run, args=(e,)) for e in (hub.store.engine, other.engine)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors
            reader = tlog.LogReader(hub.store.engine, signer.verifier().vkey)
            size, note = reader.latest()  # type: ignore[misc]
            assert size == 41
            leaves = all_leaves(reader, size)
            assert len(set(leaves)) == size
            cp = open_checkpoint(note, signer.verifier()).checkpoint
            hashes = [merkle.leaf_hash(x) for x in leaves]
            assert cp.root_hash == merkle.root_from_leaf_hashes(hashes)
        finally:
            other.close()


def test_a_copy_of_the_database_signs_no_checkpoint(tmp_path: Path) -> None:
    """A restored copy not yet promoted would fork the log: its sequencer refuses."""
    with make_hub(tmp_path / "hub") as h:
        sequencer = tlog.Sequencer(
            h.hub.store.engine,
            signer_of(h.hub),
            LogWatcher(h.hub.store),
            may_sign=lambda: (False, "sqlite:1:2"),
        )
        with pytest.raises(tlog.NotTheSigningSeat, match="sqlite:1:2") as raised:
            asyncio.run(sequencer._run())
        assert "hub promote" in raised.value.hint
        assert tlog.LogReader(h.hub.store.engine, "").latest() is None


def test_after_a_log_key_rotation_only_the_new_keys_checkpoints_are_served(
    tmp_path: Path,
) -> None:
    """A checkpoint the rotated-away log key signed is served neither as the cosigned one
    nor as the one in progress: members that followed the rotation hold the new key only
    (their witnesses refused such a checkpoint and backed off, ~16 s in one e2e run)."""
    from hubkit import Applicant
    from samverka.protocol.witness import cosign, open_signed, witness_signer
    from samverka_hub.cosigned import SNAPSHOT_SECONDS, CosignedLog

    with make_hub(tmp_path / "hub") as h:
        hub = h.hub
        applicants = {code: Applicant.make(code) for code in ("2029", "1472", "2026")}
        for code, applicant in applicants.items():
            hub.council.submit_enrollment(applicant.request())
            hub.council.approve(code)
        engine = hub.store.engine
        old = signer_of(hub)
        in_force = [old.verifier().vkey]
        log = CosignedLog(
            engine, lambda: in_force[0], hub.council.current_directory, witness_target=2
        )

        def sign_round(signer: Ed25519Signer, record_id: str) -> int:
            publish(hub, record_id)
            assert tlog.sequence_once(engine, signer)
            time.sleep(SNAPSHOT_SECONDS)  # the next choice reads the table again
            return tlog.LogReader(engine, signer.verifier().vkey).latest()[0]  # type: ignore[index]

        def cosign_as(code: str, note: bytes, signer: Ed25519Signer) -> None:
            candidate = open_signed(note, signer.verifier())
            log.add_cosignature(code, cosign(candidate, witness_signer(code, applicants[code].key)))

        def size_of(note: bytes | None, signer: Ed25519Signer) -> int:
            assert note is not None
            return open_signed(note, signer.verifier()).size

        # Under the old key: one checkpoint fully cosigned (target 2), a newer one started.
        cosigned = sign_round(old, "r-1")
        for code in ("2029", "1472"):
            cosign_as(code, log.witness_note(code) or b"", old)
        started = sign_round(old, "r-2")
        cosign_as("2029", log.witness_note("2029") or b"", old)
        time.sleep(SNAPSHOT_SECONDS)
        assert size_of(log.checkpoint_note(), old) == cosigned
        assert size_of(log.witness_note("2026"), old) == started

        # `hub rotate-keys --log`: the sequencer signs with the new key from now on.
        new = Ed25519Signer.generate(old.name)
        in_force[0] = new.verifier().vkey
        newest = sign_round(new, "r-3")
        assert newest > started > cosigned
        # Both answers are now the new key's newest checkpoint (opening them under the
        # new key alone is what a member that followed the rotation does).
        assert size_of(log.checkpoint_note(), new) == newest
        assert size_of(log.witness_note("2026"), new) == newest
        cosign_as("1472", log.witness_note("1472") or b"", new)
        time.sleep(SNAPSHOT_SECONDS)
        assert size_of(log.witness_note("2026"), new) == newest  # in progress now
        cosign_as("2026", log.witness_note("2026") or b"", new)
        time.sleep(SNAPSHOT_SECONDS)
        assert size_of(log.checkpoint_note(), new) == newest
        lines = parse_note(log.checkpoint_note() or b"").unverified
        assert sorted(s.name for s in lines if s.name != new.name) == [
            "samverka-witness/1472",
            "samverka-witness/2026",
        ]
