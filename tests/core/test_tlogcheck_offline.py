"""The independent verifier (tests/tlogcheck.py, no samverka imports) checks a log built
by samverka.protocol's modules and served from memory, and catches every tampering."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest
import tlogcheck
from samverka.protocol import merkle, note, tiles
from samverka.protocol.checkpoint import Checkpoint
from tlogcheck import CheckError, FetchError

ORIGIN = "hub.samverka.example/log"


class MemoryLog:
    """A log as a hub would serve it under /log/: the protocol modules build every tile,
    entry bundle and cosigned checkpoint; ``files`` maps each path to its bytes."""

    def __init__(self, seed: int = 0) -> None:
        rnd = random.Random(seed)
        self.log_key = note.Ed25519Signer(ORIGIN, rnd.randbytes(32))
        self.witnesses = [
            note.CosignatureV1Signer(f"{k}.kommun.example/witness", rnd.randbytes(32),
                                     clock=lambda: 1_750_000_000)
            for k in ("leksand", "tibro", "kiruna")
        ]  # fmt: skip
        self.hashes: list[bytes] = []
        self.entries: list[bytes] = []
        self.files: dict[str, bytes] = {}

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.hashes[i] for i in indexes]

    def grow(self, entries: list[bytes]) -> None:
        old = len(self.entries)
        for data in entries:
            self.hashes.extend(merkle.stored_hashes(len(self.entries), data, self.read))
            self.entries.append(data)
        new = len(self.entries)
        for t in tiles.new_tiles(old, new):
            self.files[t.path] = tiles.read_tile_data(t, self.read)
        for b in tiles.new_entry_bundles(old, new):
            start = b.index * tiles.TILE_WIDTH
            self.files[b.path] = tiles.encode_entry_bundle(self.entries[start : start + b.width])
        root = merkle.tree_hash(new, self.read)
        body = Checkpoint(ORIGIN, new, root).to_text()
        signed = note.sign_note(body, self.log_key)
        self.files["checkpoint"] = note.sign_note(note.parse_note(signed), *self.witnesses[:2])

    def fetch(self, path: str) -> bytes:
        try:
            return self.files[path]
        except KeyError:
            raise FetchError(f"{path}: 404") from None

    @property
    def vkey(self) -> str:
        return self.log_key.verifier().vkey

    @property
    def witness_vkeys(self) -> list[str]:
        return [w.verifier().vkey for w in self.witnesses]


def leaves(start: int, count: int) -> list[bytes]:
    rnd = random.Random(start)
    return [
        b"entry %d " % i + rnd.randbytes(rnd.randrange(0, 80)) for i in range(start, start + count)
    ]


@pytest.fixture
def grown() -> tuple[MemoryLog, tlogcheck.SignedCheckpoint]:
    """A log checked at 1,234 leaves, then grown to 3,000."""
    log = MemoryLog()
    log.grow(leaves(0, 1234))
    _, first = tlogcheck.check_log(log.fetch, log.vkey)
    log.grow(leaves(1234, 3000 - 1234))
    return log, first


def test_a_good_log_passes(grown: tuple[MemoryLog, tlogcheck.SignedCheckpoint]) -> None:
    log, first = grown
    assert first.size == 1234
    report, cp = tlogcheck.check_log(
        log.fetch,
        log.vkey,
        witness_vkeys=log.witness_vkeys,
        min_cosigners=2,
        sample=16,
        audit_all=True,
        previous=first,
        rng=random.Random(1),
    )
    assert cp.size == 3000 and report.size == 3000
    assert report.cosigners == ("leksand.kommun.example/witness", "tibro.kommun.example/witness")
    assert report.bundles_checked == 12
    assert report.consistency == (1234, 3000)
    assert 0 in report.leaves_checked and 2999 in report.leaves_checked


def test_every_size_up_to_a_few_hundred() -> None:
    log = MemoryLog()
    previous = None
    for n in [1, 2, 3, 255, 256, 257, 511, 512, 513, 700]:
        log.grow(leaves(len(log.entries), n - len(log.entries)))
        _, cp = tlogcheck.check_log(log.fetch, log.vkey, audit_all=True, previous=previous)
        previous = cp


def test_partial_tile_gone_falls_back_to_full_tile(
    grown: tuple[MemoryLog, tlogcheck.SignedCheckpoint],
) -> None:
    log, first = grown
    # The log may delete a partial tile once the full one exists (C2SP tlog-tiles).
    for path in [p for p in log.files if p.startswith("tile/0/004.p/")]:
        del log.files[path]
    tlogcheck.check_log(log.fetch, log.vkey, previous=first, audit_all=True)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


Tamper = Callable[[MemoryLog], None]


def _tamper_file(path: str, at: int) -> Tamper:
    def go(log: MemoryLog) -> None:
        log.files[path] = _flip(log.files[path], at)

    return go


def _fork(log: MemoryLog) -> None:
    """Rewrite history: the same sizes, leaf 100 changed, everything re-signed."""
    forked = MemoryLog()
    forked.log_key = log.log_key
    forked.witnesses = log.witnesses
    old = list(log.entries)
    old[100] = b"rewritten"
    forked.grow(old)
    log.files = forked.files


def _rollback(log: MemoryLog) -> None:
    smaller = MemoryLog()
    smaller.log_key = log.log_key
    smaller.grow(log.entries[:1000])
    log.files = smaller.files


def _drop_log_signature(log: MemoryLog) -> None:
    parsed = note.parse_note(log.files["checkpoint"])
    rest = [s for s in parsed.unverified if s.name != ORIGIN]
    log.files["checkpoint"] = note.format_note(parsed.text, rest)


def _forge_cosignature(log: MemoryLog) -> None:
    parsed = note.parse_note(log.files["checkpoint"])
    sigs = [
        note.NoteSignature(s.name, s.key_hash, s.signature[:8] + bytes(64))
        if s.name.startswith("tibro")
        else s
        for s in parsed.unverified
    ]
    log.files["checkpoint"] = note.format_note(parsed.text, sigs)


def _resign_with_other_key(log: MemoryLog) -> None:
    impostor = note.Ed25519Signer.generate(ORIGIN)
    text = note.parse_note(log.files["checkpoint"]).text
    log.files["checkpoint"] = note.sign_note(text, impostor)


def _bundle_swap(log: MemoryLog) -> None:
    entries = tiles.decode_entry_bundle(log.files["tile/entries/003"], 256)
    entries[5], entries[6] = entries[6], entries[5]
    log.files["tile/entries/003"] = tiles.encode_entry_bundle(entries)


def _bundle_short(log: MemoryLog) -> None:
    entries = tiles.decode_entry_bundle(log.files["tile/entries/001"], 256)
    log.files["tile/entries/001"] = tiles.encode_entry_bundle(entries[:-1])


def _missing_tile(log: MemoryLog) -> None:
    del log.files["tile/1/000.p/11"]


def _truncated_tile(log: MemoryLog) -> None:
    log.files["tile/0/002"] = log.files["tile/0/002"][:-32]


TAMPERINGS: dict[str, Tamper] = {
    "level-0 tile": _tamper_file("tile/0/002", 77),
    "partial level-0 tile": _tamper_file("tile/0/011.p/184", 3),
    "level-1 tile": _tamper_file("tile/1/000.p/11", 40),
    "entry bundle byte": _tamper_file("tile/entries/005", 300),
    "checkpoint root": lambda log: log.files.__setitem__(
        "checkpoint", log.files["checkpoint"].replace(b"\n3000\n", b"\n3001\n")
    ),
    "swapped entries": _bundle_swap,
    "short bundle": _bundle_short,
    "missing tile": _missing_tile,
    "truncated tile": _truncated_tile,
    "forked history": _fork,
    "rolled back": _rollback,
    "no log signature": _drop_log_signature,
    "forged cosignature": _forge_cosignature,
    "signed by another key": _resign_with_other_key,
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_is_caught(
    grown: tuple[MemoryLog, tlogcheck.SignedCheckpoint], name: str
) -> None:
    log, first = grown
    TAMPERINGS[name](log)
    with pytest.raises(CheckError):
        tlogcheck.check_log(
            log.fetch,
            log.vkey,
            witness_vkeys=log.witness_vkeys,
            min_cosigners=2,
            audit_all=True,
            previous=first,
        )


def test_sampled_checks_catch_a_tampered_leaf_on_their_path(
    grown: tuple[MemoryLog, tlogcheck.SignedCheckpoint],
) -> None:
    """Without the full audit, the leaves sampled are still proven: a changed entry in
    the bundle of a sampled leaf is caught."""
    log, _ = grown
    tlogcheck.check_log(log.fetch, log.vkey, sample=0)  # leaves 0 and 2999 only
    log.files["tile/entries/000"] = _flip(log.files["tile/entries/000"], 2)
    with pytest.raises(CheckError, match="leaf 0"):
        tlogcheck.check_log(log.fetch, log.vkey, sample=0)


def test_quorum_and_key_types(grown: tuple[MemoryLog, tlogcheck.SignedCheckpoint]) -> None:
    log, _ = grown
    with pytest.raises(CheckError, match="cosignatures"):
        tlogcheck.check_log(log.fetch, log.vkey, witness_vkeys=log.witness_vkeys, min_cosigners=3)
    with pytest.raises(CheckError):
        tlogcheck.check_log(log.fetch, log.witness_vkeys[0])
    with pytest.raises(CheckError):
        tlogcheck.check_log(log.fetch, log.vkey, witness_vkeys=[log.vkey])


def test_the_checker_agrees_with_the_protocol_on_proofs(
    grown: tuple[MemoryLog, tlogcheck.SignedCheckpoint],
) -> None:
    """The two implementations compute the same proofs (each verified independently)."""
    log, first = grown
    view = tlogcheck.TileView(log.fetch, 3000)
    for i in [0, 1, 255, 256, 1233, 2047, 2999]:
        assert view.path(i, 0, 3000) == merkle.inclusion_proof(3000, i, log.read)
    assert view.subproof(first.size, 0, 3000, True) == merkle.consistency_proof(
        first.size, 3000, log.read
    )
    assert tlogcheck.tile_path("entries", 1234067, 5) == "tile/entries/x001/x234/067.p/5"
