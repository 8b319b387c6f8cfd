"""The one verification function every receiver uses (pure, no I/O).

Like python-tuf's trusted metadata set, this module takes bytes and answers with a
verdict or a typed refusal; the callers (ingest, sync, bundle import) do the I/O.
The state it checks against is read through the small :class:`FeedState` protocol,
which the store implements and tests can implement in memory.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from samverka.entries import MAX_SIGNED_ENTRY_BYTES, ParsedEntry, parse_signed
from samverka.errors import EntryRefused, Reason, RecordInvalid
from samverka.signing import GENESIS_HASH, PublicKey
from samverka.v1 import feed_pb2
from samverka.validation import validate_record


@dataclass(frozen=True, slots=True)
class FeedHead:
    origin: str
    sequence: int
    entry_hash: bytes


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A signing key a receiver trusts for one origin.

    Entries whose timestamp is at or after ``revoked_at_ms`` are refused.
    """

    origin: str
    public_key: PublicKey
    valid_from_ms: int = 0
    revoked_at_ms: int | None = None

    @property
    def key_id(self) -> str:
        return self.public_key.key_id


class KeyRing:
    """The keys a receiver trusts, by key id (from config, a pin or the directory)."""

    def __init__(self, keys: Iterable[TrustedKey] = ()) -> None:
        self._by_id: dict[str, TrustedKey] = {}
        for key in keys:
            self.add(key)

    def add(self, key: TrustedKey) -> None:
        self._by_id[key.key_id] = key

    def get(self, key_id: str) -> TrustedKey | None:
        return self._by_id.get(key_id)

    def for_origin(self, origin: str) -> list[TrustedKey]:
        return [k for k in self._by_id.values() if k.origin == origin]

    def __len__(self) -> int:
        return len(self._by_id)


class FeedState(Protocol):
    """What verification needs to know about the receiver's store."""

    def head(self, origin: str) -> FeedHead | None: ...

    def entry_hash(self, origin: str, sequence: int) -> bytes | None: ...

    def record_version(self, origin: str, record_id: str) -> int | None: ...


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"
    #: The receiver already holds exactly this entry; storing it again changes nothing.
    DUPLICATE = "duplicate"


def verify_entry(
    signed: feed_pb2.SignedEntry | bytes,
    keys: KeyRing,
    state: FeedState,
    *,
    max_bytes: int = MAX_SIGNED_ENTRY_BYTES,
) -> tuple[Verdict, ParsedEntry]:
    """Verify one signed entry against trusted keys and the receiver's state.

    Raises EntryRefused with a precise Reason; otherwise says whether the entry is
    new (ACCEPTED) or already held (DUPLICATE).
    """
    parsed = parse_signed(signed, max_bytes=max_bytes)
    entry, origin, seq = parsed.entry, parsed.origin, parsed.sequence

    def refuse(reason: Reason, detail: str) -> EntryRefused:
        return EntryRefused(reason, detail, origin=origin, sequence=seq)

    key = keys.get(parsed.signed.key_id)
    if key is None:
        raise refuse(Reason.UNKNOWN_KEY, f"no trusted key has id {parsed.signed.key_id!r}")
    if key.origin != origin:
        raise refuse(
            Reason.KEY_NOT_OF_ORIGIN, f"key {key.key_id} belongs to {key.origin}, not {origin}"
        )
    if not key.public_key.verify(parsed.signed.entry, parsed.signed.signature):
        raise refuse(Reason.BAD_SIGNATURE, f"signature does not verify with key {key.key_id}")
    if entry.timestamp_ms < key.valid_from_ms:
        raise refuse(Reason.KEY_REVOKED, f"key {key.key_id} was not valid yet at the entry's time")
    if key.revoked_at_ms is not None and entry.timestamp_ms >= key.revoked_at_ms:
        raise refuse(Reason.KEY_REVOKED, f"key {key.key_id} was revoked before the entry")
    if seq < 1:
        raise refuse(Reason.MALFORMED, "sequence numbers start at 1")
    try:
        validate_record(entry.record, origin=origin)
    except RecordInvalid as exc:
        raise refuse(Reason.SCHEMA_INVALID, str(exc)) from exc

    verdict = check_chain(origin, seq, parsed.hash, state, previous_hash=entry.previous_hash)
    if verdict is Verdict.DUPLICATE:
        return verdict, parsed

    current = state.record_version(origin, parsed.record_id)
    if current is not None and parsed.version <= current:
        raise refuse(
            Reason.VERSION_NOT_NEWER,
            f"record {parsed.record_id} version {parsed.version} is not newer than {current}",
        )
    return Verdict.ACCEPTED, parsed


def check_chain(
    origin: str,
    sequence: int,
    this_hash: bytes,
    state: FeedState,
    *,
    previous_hash: bytes | None,
) -> Verdict:
    """Check an entry's place in its origin's hash chain.

    ``previous_hash`` is None for a redacted entry, whose own link cannot be seen;
    the next visible entry's previous_hash then vouches for it.
    """
    head = state.head(origin)
    head_seq = head.sequence if head else 0
    if sequence <= head_seq:
        held = state.entry_hash(origin, sequence)
        if held == this_hash:
            return Verdict.DUPLICATE
        raise EntryRefused(
            Reason.FORK,
            f"a different entry is already held at sequence {sequence}",
            origin=origin,
            sequence=sequence,
        )
    if sequence > head_seq + 1:
        raise EntryRefused(
            Reason.SEQUENCE_GAP,
            f"expected sequence {head_seq + 1}, got {sequence}; "
            f"entries {head_seq + 1}..{sequence - 1} are missing",
            origin=origin,
            sequence=sequence,
        )
    expected_prev = head.entry_hash if head else GENESIS_HASH
    if previous_hash is not None and previous_hash != expected_prev:
        raise EntryRefused(
            Reason.FORK,
            "previous_hash does not match the held entry at sequence "
            f"{head_seq} ({expected_prev.hex()[:16]}…)",
            origin=origin,
            sequence=sequence,
        )
    return Verdict.ACCEPTED


def verify_redacted(item: feed_pb2.RedactedEntry, state: FeedState) -> Verdict:
    """Place a stand-in for an entry the reader may not see into the chain."""
    if len(item.entry_hash) != 32:
        raise EntryRefused(
            Reason.MALFORMED,
            "redacted entry hash must be 32 bytes",
            origin=item.origin,
            sequence=item.sequence,
        )
    return check_chain(item.origin, item.sequence, item.entry_hash, state, previous_hash=None)


class BatchState:
    """A FeedState that sees a batch's accepted entries before they are stored.

    Lets a whole batch be verified first and then written in one transaction.
    """

    def __init__(self, base: FeedState) -> None:
        self._base = base
        self._heads: dict[str, FeedHead] = {}
        self._hashes: dict[tuple[str, int], bytes] = {}
        self._versions: dict[tuple[str, str], int] = {}

    def head(self, origin: str) -> FeedHead | None:
        return self._heads.get(origin) or self._base.head(origin)

    def entry_hash(self, origin: str, sequence: int) -> bytes | None:
        held = self._hashes.get((origin, sequence))
        return held if held is not None else self._base.entry_hash(origin, sequence)

    def record_version(self, origin: str, record_id: str) -> int | None:
        held = self._versions.get((origin, record_id))
        return held if held is not None else self._base.record_version(origin, record_id)

    def note_entry(self, parsed: ParsedEntry) -> None:
        self._note(parsed.origin, parsed.sequence, parsed.hash)
        self._versions[(parsed.origin, parsed.record_id)] = parsed.version

    def note_redacted(self, item: feed_pb2.RedactedEntry) -> None:
        self._note(item.origin, item.sequence, item.entry_hash)

    def _note(self, origin: str, sequence: int, entry_hash: bytes) -> None:
        self._heads[origin] = FeedHead(origin, sequence, entry_hash)
        self._hashes[(origin, sequence)] = entry_hash


class MemoryFeedState(BatchState):
    """An in-memory receiver state, for tests and for checking a bundle on its own."""

    class _Empty:
        def head(self, origin: str) -> FeedHead | None:
            return None

        def entry_hash(self, origin: str, sequence: int) -> bytes | None:
            return None

        def record_version(self, origin: str, record_id: str) -> int | None:
            return None

    def __init__(self) -> None:
        super().__init__(self._Empty())
