"""A transparency log in memory for the witness tests: leaves, stored hashes, checkpoints
signed with a real Ed25519 note key, consistency proofs (samverka.protocol.merkle), and
cosignatures by kommuner's signing keys."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from samverka.protocol import merkle
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.note import Ed25519Signer, parse_note, sign_note
from samverka.protocol.signing import SigningKey
from samverka.protocol.witness import witness_signer

ORIGIN = "hub.example/samverka-log"


class MemLog:
    """``salt`` makes another log with the same sizes: a fork."""

    def __init__(self, signer: Ed25519Signer, leaves: int = 0, salt: bytes = b"") -> None:
        self.signer = signer
        self.salt = salt
        self.hashes: list[bytes] = []
        self.size = 0
        self.grow(leaves)

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.hashes[i] for i in indexes]

    def grow(self, n: int) -> None:
        for _ in range(n):
            data = self.salt + self.size.to_bytes(8, "big")
            self.hashes.extend(merkle.stored_hashes(self.size, data, self.read))
            self.size += 1

    def root(self, size: int | None = None) -> bytes:
        return merkle.tree_hash(self.size if size is None else size, self.read)

    def note(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return sign_note(Checkpoint(self.signer.name, size, self.root(size)).to_text(), self.signer)

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        return merkle.consistency_proof(old, self.size if new is None else new, self.read)


def cosigned(note: bytes, keys: dict[str, SigningKey], codes: Iterable[str], *, at: int) -> bytes:
    """``note`` with a cosignature by each of ``codes`` at time ``at``."""
    signers = [witness_signer(c, keys[c], clock=lambda: at) for c in codes]
    return sign_note(parse_note(note), *signers)
