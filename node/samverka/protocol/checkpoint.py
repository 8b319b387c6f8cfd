"""C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the signed tree head.

Pure. A checkpoint is the text of a signed note (:mod:`samverka.protocol.note`)::

    <origin>
    <tree size, decimal, no leading zeroes>
    <root hash, base64>
    [extension lines, each non-empty]

:func:`open_checkpoint` verifies the log's signature and any witnesses' cosignatures and
parses the body strictly; counting cosignatures against a quorum is the caller's policy.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from samverka.errors import SamverkaError
from samverka.protocol.merkle import HASH_SIZE, MAX_TREE_SIZE
from samverka.protocol.note import (
    DEFAULT_LIMITS,
    CosignatureV1Verifier,
    Note,
    NoteLimits,
    NoteSignature,
    Verifier,
    Verifiers,
    open_note,
)

_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


class CheckpointError(SamverkaError):
    """Base of the refusals of a checkpoint; ``reason`` is machine-readable."""

    reason = "checkpoint_invalid"


class MalformedCheckpoint(CheckpointError):
    """A note text that is not a checkpoint: too few lines, an empty line, a tree size
    with leading zeroes or out of range, a root hash that is not base64 of 32 bytes."""

    reason = "malformed_checkpoint"


class OriginMismatch(CheckpointError):
    """A checkpoint of another log than the one expected."""

    reason = "origin_mismatch"


class NotSignedByLog(CheckpointError):
    """A checkpoint whose verified signatures do not include the log's own."""

    reason = "not_signed_by_log"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: its origin, the number of leaves and the root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _has_control(self.origin):
            raise MalformedCheckpoint("the origin is one non-empty line")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise MalformedCheckpoint(f"tree size {self.size} out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise MalformedCheckpoint(f"a root hash is {HASH_SIZE} bytes")
        for ext in self.extensions:
            if not ext or "\n" in ext or _has_control(ext):
                raise MalformedCheckpoint("an extension line is one non-empty line")

    def to_text(self) -> str:
        """The note text (ending in a newline) that the log signs."""
        root = base64.b64encode(self.root_hash).decode()
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body strictly (the inverse of :meth:`to_text`)."""
        if not text.endswith("\n"):
            raise MalformedCheckpoint("a checkpoint ends in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpoint("a checkpoint has at least three lines")
        origin, size_line, root_line, *extensions = lines
        if not _SIZE.fullmatch(size_line):
            raise MalformedCheckpoint(f"tree size {size_line!r} is not a decimal number")
        try:
            root = base64.b64decode(root_line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise MalformedCheckpoint("the root hash is not base64") from exc
        if base64.b64encode(root).decode() != root_line:
            raise MalformedCheckpoint("the root hash is not canonical base64")
        return cls(origin, int(size_line), root, tuple(extensions))


def _has_control(s: str) -> bool:
    return any(c < " " for c in s)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature/v1: the witness's name and key hash, and its timestamp."""

    name: str
    key_hash: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class VerifiedCheckpoint:
    """A checkpoint whose log signature verified, with the cosignatures that verified.
    ``note`` keeps every signature line, those of unknown keys too (untrusted)."""

    checkpoint: Checkpoint
    note: Note
    cosignatures: tuple[Cosignature, ...]

    @property
    def cosigners(self) -> frozenset[str]:
        return frozenset(c.name for c in self.cosignatures)


def open_checkpoint(
    msg: bytes,
    log: Verifier,
    *,
    witnesses: Iterable[CosignatureV1Verifier] = (),
    origin: str | None = None,
    limits: NoteLimits = DEFAULT_LIMITS,
) -> VerifiedCheckpoint:
    """Verify a signed checkpoint: the ``log`` key must have signed it, any signature by a
    known witness must verify, and the body must be a checkpoint of ``origin`` (the log's
    key name when not given, as the spec recommends)."""
    witness_list = list(witnesses)
    note = open_note(msg, Verifiers([log, *witness_list]), limits=limits)
    if not note.signed_by(log.name, log.key_hash):
        raise NotSignedByLog(f"no valid signature by the log key {log.name}")
    cp = Checkpoint.from_text(note.text)
    expected = log.name if origin is None else origin
    if cp.origin != expected:
        raise OriginMismatch(f"checkpoint of {cp.origin!r}, expected {expected!r}")
    witness_ids = {(w.name, w.key_hash) for w in witness_list}
    cosigs = tuple(
        cosignature_of(s) for s in note.signatures if (s.name, s.key_hash) in witness_ids
    )
    return VerifiedCheckpoint(checkpoint=cp, note=note, cosignatures=cosigs)


def cosignature_of(sig: NoteSignature) -> Cosignature:
    """The cosignature a (verified) signature line carries."""
    return Cosignature(sig.name, sig.key_hash, sig.cosignature_timestamp())
