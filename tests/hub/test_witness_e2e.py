"""The members as witnesses of the hub's transparency log, end to end (issue 11, point 3).

Real processes over mutual TLS on loopback: ``hub serve`` (SQLite) and four enrolled
nodes running ``node serve`` (push, follow and witness on, JSON logs). What is shown:

- a checkpoint holding a pushed entry is cosigned by >= 2 kommuner within a few seconds
  of the push, and the other nodes accept it (the figures are printed);
- a note from the real hub with a forged cosignature, with its cosignatures stripped,
  or an older one replayed, is refused by a node's acceptance with the precise reason;
- a split view: the hub's log key signs a second checkpoint of the same size with another
  root and the hub shows it to a witness (written into the hub's checkpoint table, the
  other witnesses stopped). The witness keeps both signed notes as evidence (checked by
  tests/tlogcheck.py, which imports nothing of ours), writes ``tlog/halted``, logs
  ``split_view``, stops cosigning, and ``doctor`` FAILs;
- a member the hub and two colluding kommuner fooled from its first sight finds the
  split view with ``samverka crosscheck`` (its peers' GetLogView), with evidence.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import factories
import pytest
import tlogcheck
from hubkit import Procs, run_async, wait_for
from samverka.config import load_config
from samverka.node import Node
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.note import Ed25519Signer, NoteSignature, format_note, parse_note, sign_note
from samverka.protocol.witness import (
    ForgedCosignature,
    StaleCheckpoint,
    TooFewCosignatures,
    open_signed,
    witness_signer,
    witness_verifiers,
)
from samverka.replication.logstate import LogAcceptor, LogState, witnessing_for
from samverka.transport.client import ClientTls
from samverka.transport.hubclient import HubClient
from samverka.transport.server.status import PeerError
from samverka.v1 import hub_service_pb2

sys.path.insert(0, str(Path(__file__).parent.parent / "attacks"))

import arena

LEKSAND, TIBRO, GAGNEF, FALUN, RATTVIK = "2029", "1472", "2026", "2080", "2031"
WITNESSES = (LEKSAND, TIBRO, GAGNEF, FALUN)
PUSHES = 5


@dataclass
class Federation:
    procs: Procs
    hub: arena.HubProcess
    members: dict[str, Path]
    serving: dict[str, subprocess.Popen[bytes]]

    def stop(self, code: str) -> None:
        proc = self.serving.pop(code)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, self.procs.log(f"serve-{code}")[-3000:]


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """``hub serve`` and four nodes enrolled (in-process, as ``node enroll`` does) and
    serving (``node serve`` subprocesses); Rättvik enrolled, not serving."""
    tmp = tmp_path_factory.mktemp("witness")
    arena.build_hub(tmp / "hub", ())
    hub = arena.serve_hub(tmp / "hub", tmp / "logs")
    procs = Procs(tmp, arena.hub_env(SAMVERKA_LOG_FORMAT="json", SAMVERKA_LOG_LEVEL="info"))
    members = {
        code: arena.enroll_node(
            hub, code, tmp / f"node-{code}", address=f"127.0.0.1:{arena.free_port()}"
        )
        for code in (*WITNESSES, RATTVIK)
    }
    serving = {
        code: procs.start("node", "serve", "--dir", str(members[code]), name=f"serve-{code}")
        for code in WITNESSES
    }
    federation = Federation(procs, hub, members, serving)
    try:
        # Every witness has cosigned and accepted a checkpoint (of the directory versions).
        for code in WITNESSES:
            wait_for(
                lambda code=code: (
                    (members[code] / "tlog" / "accepted").exists() or _dead(federation, code)
                ),
                60,
                f"{code} to accept a checkpoint",
            )
        yield federation
    finally:
        procs.stop_all()
        assert hub.stop() == 0, hub.log()[-3000:]


def _dead(fed: Federation, code: str) -> bool:
    proc = fed.serving.get(code)
    if proc is not None and proc.poll() is not None:
        raise AssertionError(f"node serve {code} exited:\n{fed.procs.log(f'serve-{code}')}")
    return False


def author(node_dir: Path, record_id: str) -> int:
    """Publish a record through the node's own publisher (as the CLI does); its sequence."""
    with Node.open(node_dir) as node:
        record = factories.make_record("use_case", record_id=record_id, origin=node.origin)
        return node.publisher().publish(record).sequence


def tls_of(member: Path) -> ClientTls:
    return ClientTls.from_config(load_config(member))


def cosigners(note: bytes, member: Path) -> set[str]:
    """The kommuner whose cosignature on ``note`` verifies (keys from the directory)."""
    rules = witnessing_for(load_config(member))
    signed = open_signed(note, rules.log_verifier, witness_verifiers(rules.witness_keys))
    return set(signed.cosigners())


async def served_with(hub: HubClient, origin: str, sequence: int) -> bytes | None:
    """The hub's cosigned checkpoint if it holds (origin, sequence), else None."""
    note = await hub.get_checkpoint()
    size = Checkpoint.from_text(parse_note(note).text).size
    try:
        await hub.get_inclusion_proofs(
            size, [hub_service_pb2.LeafQuery(origin=origin, sequence=sequence)]
        )
    except PeerError:
        return None
    return note


def test_a_push_is_cosigned_by_two_kommuner_within_seconds(fed: Federation) -> None:
    leksand = fed.members[LEKSAND]
    latencies, accepted_after = [], []
    notes: list[bytes] = []

    async def measure(sequence: int, t0: float) -> float:
        async with HubClient(fed.hub.member, tls_of(fed.members[RATTVIK])) as hub:
            while time.monotonic() - t0 < 30:
                note = await served_with(hub, LEKSAND, sequence)
                if note is not None and len(cosigners(note, leksand) - {LEKSAND}) >= 2:
                    notes.append(note)
                    return time.monotonic() - t0
                await asyncio.sleep(0.05)
        raise AssertionError(f"#{sequence} not in a checkpoint cosigned by 2 within 30 s")

    for i in range(PUSHES):
        t0 = time.monotonic()
        sequence = author(leksand, f"witnessed-{i}")
        latencies.append(run_async(measure(sequence, t0)))
        size = Checkpoint.from_text(parse_note(notes[-1]).text).size

        def all_accepted(size: int = size) -> bool:
            for code in WITNESSES:
                held = LogState(fed.members[code]).accepted()
                if held is None or held.size < size:
                    return False
            return True

        wait_for(all_accepted, 30, f"every witness to accept {size}")
        accepted_after.append(time.monotonic() - t0)
    print(
        f"\ncosigned by >= 2 kommuner after a push: median {statistics.median(latencies):.2f} s, "
        f"max {max(latencies):.2f} s; accepted by all 4 nodes: median "
        f"{statistics.median(accepted_after):.2f} s, max {max(accepted_after):.2f} s "
        f"({PUSHES} pushes)"
    )
    assert max(latencies) < 5.0, latencies
    # The cosignatures are C2SP's: the independent verifier reads them too.
    vkeys = [v.vkey for v in witness_verifiers(witnessing_for(load_config(leksand)).witness_keys)]
    log_vkey = witnessing_for(load_config(leksand)).log_verifier.vkey
    checked = tlogcheck.verify_checkpoint(
        notes[-1], tlogcheck.parse_vkey(log_vkey), [tlogcheck.parse_vkey(k) for k in vkeys]
    )
    assert len(set(checked.cosigners)) >= 2, checked
    doctor = fed.procs.json("doctor", "--dir", str(leksand), "--offline")
    witness = next(f for f in doctor["findings"] if f["check"] == "witness")
    assert witness["status"] == "ok" and "accepted checkpoint" in witness["message"], witness


def test_forged_missing_and_replayed_cosigned_checkpoints_are_refused(
    fed: Federation, tmp_path: Path
) -> None:
    """The real hub's notes, altered as a misbehaving hub would hand them out, through a
    node's own acceptance (a copy of Tibro's folder)."""
    folder = tmp_path / "tibro"
    shutil.copytree(fed.members[TIBRO], folder, ignore=shutil.ignore_patterns("*.db*"))
    config = load_config(folder)
    state = LogState(folder)
    shown: list[bytes] = []

    async def scenario() -> dict[str, str]:
        async with HubClient(fed.hub.member, tls_of(fed.members[RATTVIK])) as hub:
            real = await hub.get_checkpoint()
            acceptor = LogAcceptor(
                state,
                lambda: witnessing_for(config),
                lambda: asyncio.sleep(0, shown[-1]),
                hub.get_consistency_proof,
            )
            parsed = parse_note(real)
            log_line, *cosigs = parsed.unverified
            assert len(cosigs) >= 2
            outcomes = {}
            # A forged cosignature: one bit of a witness's signature flipped.
            bad = cosigs[0]
            flipped = NoteSignature(
                bad.name, bad.key_hash, bad.signature[:-1] + bytes([bad.signature[-1] ^ 1])
            )
            for name, note in (
                ("forged", format_note(parsed.text, [log_line, flipped, *cosigs[1:]])),
                ("missing", format_note(parsed.text, [log_line])),
            ):
                shown.append(note)
                try:
                    await acceptor.newer()
                    outcomes[name] = "accepted"
                except (ForgedCosignature, TooFewCosignatures) as exc:
                    outcomes[name] = exc.reason
            # The real one is accepted; so is a newer one (after a push); then the
            # first, replayed, is stale.
            shown.append(real)
            await acceptor.newer()
            sequence = author(fed.members[LEKSAND], "replay-base")
            while (newer := await served_with(hub, LEKSAND, sequence)) is None or len(
                cosigners(newer, folder)
            ) < 2:
                await asyncio.sleep(0.05)
            shown.append(newer)
            await acceptor.newer()
            outcomes["real"] = "accepted"
            shown.append(real)
            try:
                await acceptor.newer()
                outcomes["replayed"] = "accepted"
            except StaleCheckpoint as exc:
                outcomes["replayed"] = exc.reason
            return outcomes

    assert run_async(scenario()) == {
        "forged": "forged_cosignature",
        "missing": "too_few_cosignatures",
        "real": "accepted",
        "replayed": "stale_checkpoint",
    }
    assert not state.halted


def forged_twin(fed: Federation, size: int) -> bytes:
    """What a lying hub signs: a checkpoint of ``size`` leaves with another root, by the
    log's own key (read from the hub folder, as its operator could)."""
    signer = Ed25519Signer.from_skey((fed.hub.dir / "keys" / "log.key").read_text().strip())
    root = hashlib.sha256(b"another history of the log").digest()
    return sign_note(Checkpoint(signer.name, size, root).to_text(), signer)


def test_a_witness_shown_a_split_view_keeps_evidence_and_stops(fed: Federation) -> None:
    leksand = fed.members[LEKSAND]
    for code in (TIBRO, GAGNEF, FALUN):
        fed.stop(code)
    db_path = fed.hub.dir / "samverka.db"

    def newest() -> tuple[int, bytes]:
        with sqlite3.connect(db_path) as db:
            size, note = db.execute(
                "SELECT size, note FROM hub_tlog_checkpoints ORDER BY size DESC LIMIT 1"
            ).fetchone()
        return int(size), bytes(note)

    size, real = newest()
    wait_for(
        lambda: (held := LogState(leksand).cosigned()) is not None and held.size == size,
        30,
        f"Leksand to cosign checkpoint {size}",
    )
    twin = forged_twin(fed, size)
    # The hub keeps signed notes in memory once read: the lying hub is the same folder
    # served again with the twin in place of the checkpoint Leksand cosigned.
    assert fed.hub.stop() == 0
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE hub_tlog_checkpoints SET note = ? WHERE size = ?", (twin, size))
    fed.hub.start()
    state = LogState(leksand)
    try:
        t0 = time.monotonic()
        wait_for(lambda: state.halted, 30, "Leksand to find the split view")
        print(f"\nsplit view found by the witness {time.monotonic() - t0:.2f} s after it was shown")
    finally:
        assert fed.hub.stop() == 0
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE hub_tlog_checkpoints SET note = ? WHERE size = ?", (real, size))
        fed.hub.start()
    (folder,) = state.evidence_folders()
    first, second = (
        (folder / "checkpoint-1.txt").read_bytes(),
        (folder / "checkpoint-2.txt").read_bytes(),
    )
    assert parse_note(first).text == parse_note(real).text
    # As the hub served it: the twin, with the cosignature lines it holds for that size
    # appended (made for the real root: they verify on neither).
    assert parse_note(second).text == parse_note(twin).text
    assert parse_note(second).unverified[0] == parse_note(twin).unverified[0]
    # A third party with nothing but the log's public key (tests/tlogcheck.py).
    log_key = tlogcheck.parse_vkey((folder / "log.vkey").read_text().strip())
    a = tlogcheck.verify_checkpoint(first, log_key, [])
    b = tlogcheck.verify_checkpoint(second, log_key, [])
    assert a.size == b.size == size and a.root != b.root
    assert "RFC 9162" in (folder / "README.txt").read_text()
    halt = json.loads((leksand / "tlog" / "halted").read_text())
    assert halt["reason"] == "same_size_different_root" and halt["evidence"].startswith("tlog/")
    # The JSON log line, and no cosigning since.
    events = [
        json.loads(line)
        for line in fed.procs.log(f"serve-{LEKSAND}").splitlines()
        if line.startswith("{")
    ]
    assert any(e.get("event") == "split_view" for e in events), events[-5:]
    cosigned = (leksand / "tlog" / "cosigned").read_bytes()
    author(leksand, "after-the-split")
    time.sleep(2.0)
    assert (leksand / "tlog" / "cosigned").read_bytes() == cosigned
    doctor = fed.procs.run("doctor", "--dir", str(leksand), "--offline", "--json", check=False)
    assert doctor.returncode != 0
    witness = next(f for f in json.loads(doctor.stdout)["findings"] if f["check"] == "witness")
    assert witness["status"] == "fail" and "evidence" in witness["message"], witness


def test_crosscheck_finds_a_member_fooled_from_first_sight(fed: Federation) -> None:
    """Rättvik never witnessed; the hub and two colluding kommuner show it a forged
    checkpoint, which its acceptance takes (first sight, quorum met). Its peers hold the
    real log: ``samverka crosscheck`` asks their views and proves the split."""
    rattvik = fed.members[RATTVIK]
    config = load_config(rattvik)
    with sqlite3.connect(fed.hub.dir / "samverka.db") as db:
        (size,) = db.execute("SELECT MAX(size) FROM hub_tlog_checkpoints").fetchone()
    colluders = []
    for code in (TIBRO, GAGNEF):
        with Node.open(fed.members[code]) as node:
            colluders.append(witness_signer(code, node.signing_key))
    fooled = sign_note(parse_note(forged_twin(fed, size)), *colluders)

    async def accept_fooled() -> int:
        async with HubClient(fed.hub.member, tls_of(rattvik)) as hub:
            acceptor = LogAcceptor(
                LogState(rattvik),
                lambda: witnessing_for(config),
                lambda: asyncio.sleep(0, fooled),
                hub.get_consistency_proof,
            )
            return (await acceptor.newer()).size  # type: ignore[union-attr]

    assert run_async(accept_fooled()) == size
    # Leksand's node still serves (halted as a witness, but its view is the real log).
    done = fed.procs.run("crosscheck", "--dir", str(rattvik), "--json", check=False, timeout=120)
    assert done.returncode == 1, done
    report = json.loads(done.stdout)
    assert report["status"] == "split_view", report
    split = [v for v in report["log_views"] if v["status"] == "split_view"]
    assert split and all(v["evidence"] for v in split), report["log_views"]
    state = LogState(rattvik)
    assert state.halted and state.evidence_folders()
    kept = [
        {(f / "checkpoint-1.txt").read_bytes(), (f / "checkpoint-2.txt").read_bytes()}
        for f in state.evidence_folders()
    ]
    assert all(fooled in pair for pair in kept), kept
