"""The node's log state files (samverka.replication.logstate) in a real folder, and the
acceptor that keeps what the witness rules decide; the hub is two async callables over an
in-memory log."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import grpc
import pytest
from memlog import MemLog, cosigned
from samverka.errors import TransportError
from samverka.protocol.note import Ed25519Signer
from samverka.protocol.signing import SigningKey
from samverka.protocol.witness import (
    InconsistentCheckpoint,
    StaleCheckpoint,
    TooFewCosignatures,
    check_evidence,
    open_signed,
    should_cosign,
    witness_verifiers,
)
from samverka.replication.logstate import (
    README_FILE,
    LogAcceptor,
    LogState,
    LogStateError,
    Witnessing,
)
from samverka.transport.server.status import PeerError

NOW = 1_800_000_000
KOMMUNER = ("1480", "2029", "1472", "0180")


@pytest.fixture(scope="module")
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate("hub.example/samverka-log")


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {c: SigningKey.generate() for c in KOMMUNER}


def rules(signer: Ed25519Signer, keys: dict[str, SigningKey], quorum: int = 2) -> Witnessing:
    return Witnessing(
        log_verifier=signer.verifier(),
        witness_keys={c: [k.public.raw] for c, k in keys.items()},
        self_kommun="1480",
        quorum=quorum,
        max_age=86400.0,
    )


class FakeHub:
    """The two calls the acceptor makes, over a MemLog; ``note`` is what it shows."""

    def __init__(self, log: MemLog, keys: dict[str, SigningKey]) -> None:
        self.log = log
        self.keys = keys
        self.note = b""
        self.proof_error: Exception | None = None
        self.proof_calls: list[tuple[int, int]] = []

    def show(self, codes: tuple[str, ...] = ("2029", "1472")) -> bytes:
        self.note = cosigned(self.log.note(), self.keys, codes, at=NOW)
        return self.note

    async def checkpoint(self) -> bytes:
        return self.note

    async def proof(self, old: int, new: int) -> list[bytes]:
        self.proof_calls.append((old, new))
        if self.proof_error is not None:
            raise self.proof_error
        return self.log.proof(old, new)


def acceptor(tmp_path: Path, hub: FakeHub, r: Witnessing) -> LogAcceptor:
    return LogAcceptor(LogState(tmp_path), r, hub.checkpoint, hub.proof, clock=lambda: NOW)


def test_empty_state(tmp_path: Path) -> None:
    state = LogState(tmp_path)
    assert state.cosigned() is None and state.accepted() is None
    assert not state.halted and state.halt() is None
    assert state.evidence_folders() == []


def test_record_and_read_back(tmp_path: Path, signer: Ed25519Signer) -> None:
    log = MemLog(signer, 4)
    state = LogState(tmp_path)
    state.record_cosigned(log.note())
    signed = open_signed(log.note(), signer.verifier())
    state.record_accepted(signed)
    for name in ("cosigned", "accepted"):
        path = tmp_path / "tlog" / name
        assert path.read_bytes() == log.note()
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    held = state.accepted()
    assert held is not None and held.size == 4 and held.checkpoint == signed.checkpoint
    assert held.signed(signer.verifier()).note == log.note()
    # Never back to a smaller one.
    with pytest.raises(LogStateError):
        state.record_accepted(open_signed(log.note(2), signer.verifier()))
    # A held note that no longer verifies (edited, or another key) says so.
    with pytest.raises(LogStateError):
        held.signed(Ed25519Signer.generate("hub.example/samverka-log").verifier())
    (tmp_path / "tlog" / "cosigned").write_bytes(b"nonsense")
    with pytest.raises(LogStateError):
        state.cosigned()
    assert not list((tmp_path / "tlog").glob(".*tmp"))


def test_evidence_folder_holds_what_a_third_party_needs(
    tmp_path: Path, signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    v = signer.verifier()
    honest, fork = MemLog(signer, 6), MemLog(signer, 6, salt=b"fork")
    held = open_signed(honest.note(), v, witness_verifiers({"2029": [keys["2029"].public.raw]}))
    with pytest.raises(InconsistentCheckpoint) as info:
        should_cosign(held, open_signed(fork.note(), v), None)
    state = LogState(tmp_path)
    folder = state.keep_evidence(info.value.evidence)
    assert folder.parent == tmp_path / "tlog" / "evidence"
    assert folder.name.endswith("-same_size_different_root")
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "checkpoint-1.txt",
        "checkpoint-2.txt",
        "proof.json",
        "log.vkey",
        "witnesses.vkeys",
        README_FILE,
    }
    assert (folder / "checkpoint-1.txt").read_bytes() == honest.note()
    assert (folder / "checkpoint-2.txt").read_bytes() == fork.note()
    assert (folder / "log.vkey").read_text().strip() == v.vkey
    assert "samverka-witness/2029+" in (folder / "witnesses.vkeys").read_text()
    proof = json.loads((folder / "proof.json").read_text())
    assert proof["older"]["size"] == proof["newer"]["size"] == 6
    assert proof["older"]["root_hash"] != proof["newer"]["root_hash"]
    readme = (folder / README_FILE).read_text()
    assert "RFC 9162" in readme and "signed-note" in readme and "Svenska" in readme
    # Halted, pointing at the evidence; the same evidence twice is one folder.
    assert state.halted
    halt = state.halt()
    assert halt is not None and halt.evidence == str(folder.relative_to(tmp_path))
    assert state.keep_evidence(info.value.evidence) == folder
    assert len(state.evidence_folders()) == 1
    # An operator's hand-written halt still halts.
    (tmp_path / "tlog" / "halted").write_text("stopped by hand\n")
    assert state.halted and state.halt() is not None


def test_acceptor_takes_first_then_newer(
    tmp_path: Path, signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    hub = FakeHub(MemLog(signer, 3), keys)
    acc = acceptor(tmp_path, hub, rules(signer, keys))
    assert acc.accepted() is None
    hub.show()
    got = asyncio.run(acc.newer())
    assert got is not None and got.size == 3 and hub.proof_calls == []
    hub.log.grow(5)
    hub.show()
    got = asyncio.run(acc.newer())
    assert got is not None and got.size == 8 and hub.proof_calls == [(3, 8)]
    assert (tmp_path / "tlog" / "accepted").read_bytes() == hub.note
    # Too few cosignatures: refused, the accepted one stays.
    hub.log.grow(1)
    hub.show(("2029",))
    with pytest.raises(TooFewCosignatures):
        asyncio.run(acc.newer())
    assert acc.accepted() is not None and acc.accepted().size == 8  # type: ignore[union-attr]


def test_acceptor_replay_is_stale_not_evidence(
    tmp_path: Path, signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    hub = FakeHub(MemLog(signer, 3), keys)
    acc = acceptor(tmp_path, hub, rules(signer, keys))
    old = hub.show()
    hub.log.grow(2)
    hub.show()
    asyncio.run(acc.newer())
    hub.note = old
    with pytest.raises(StaleCheckpoint):
        asyncio.run(acc.newer())
    assert not acc.state.halted


def test_acceptor_keeps_evidence_of_a_fork(
    tmp_path: Path, signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    hub = FakeHub(MemLog(signer, 4), keys)
    acc = acceptor(tmp_path, hub, rules(signer, keys))
    held = hub.show()
    asyncio.run(acc.newer())
    hub.log = MemLog(signer, 9, salt=b"fork")
    hub.show()
    with pytest.raises(InconsistentCheckpoint) as info:
        asyncio.run(acc.newer())
    assert check_evidence(info.value.evidence)
    assert acc.state.halted
    (folder,) = acc.state.evidence_folders()
    assert (folder / "checkpoint-1.txt").read_bytes() == held
    assert (folder / "checkpoint-2.txt").read_bytes() == hub.note
    assert acc.accepted() is not None and acc.accepted().size == 4  # type: ignore[union-attr]


def test_acceptor_no_proof_versus_no_connection(
    tmp_path: Path, signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    hub = FakeHub(MemLog(signer, 4), keys)
    acc = acceptor(tmp_path, hub, rules(signer, keys))
    hub.show()
    asyncio.run(acc.newer())
    hub.log.grow(3)
    hub.show()
    # A call that fails on the way proves nothing: raised, no evidence.
    hub.proof_error = PeerError("down", code=grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(TransportError):
        asyncio.run(acc.newer())
    assert not acc.state.halted
    # A hub that answers it has no proof between two trees it signed: evidence.
    hub.proof_error = PeerError("no such tree", code=grpc.StatusCode.NOT_FOUND)
    with pytest.raises(InconsistentCheckpoint) as info:
        asyncio.run(acc.newer())
    assert info.value.evidence.kind == "no_consistency_proof"
    assert acc.state.halted
