"""The one verification function every receiver uses (pure, no I/O).

Like python-tuf's trusted metadata set, this module takes bytes and answers with a
verdict or a typed refusal; the callers (ingest, sync, bundle import) do the I/O.
The state it checks against is read through the small :class:`FeedState` protocol,
which the store implements and tests can implement in memory. The one outside
input is the receiver's clock, and only when a caller passes no ``now_ms``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from samverka.errors import EntryRefused, Reason, RecordInvalid
from samverka.protocol.entries import (
    MAX_SIGNED_ENTRY_BYTES,
    ParsedEntry,
    check_position,
    decode_entry,
    parse_envelope,
)
from samverka.protocol.signing import GENESIS_HASH, PublicKey
from samverka.protocol.validation import validate_record
from samverka.v1 import feed_pb2


@dataclass(frozen=True, slots=True)
class FeedHead:
    """The newest entry a receiver holds of one origin's feed."""

    origin: str
    sequence: int
    entry_hash: bytes
    #: The newest entry timestamp known in this feed (Unix ms): the head's own, or,
    #: when the head is a redacted entry, that of the newest entry before it. Later
    #: entries may not be older. None when the holder does not know it (the check
    #: is then skipped).
    timestamp_ms: int | None = None


class KeyStanding(enum.StrEnum):
    """Whether a key listed for an origin signs for it yet (samverka.protocol.keybinding)."""

    EFFECTIVE = "effective"
    #: Listed by the hub without an announcement under the origin's earlier key: its
    #: entries are refused (KEY_IN_CHALLENGE) until it has stood its challenge period.
    IN_CHALLENGE = "in_challenge"
    #: Objected to by its origin: its entries are refused for good (KEY_OBJECTED).
    OBJECTED = "objected"


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A signing key a receiver trusts for one origin.

    Entries whose timestamp is at or after ``revoked_at_ms`` are refused, and every
    entry while ``standing`` is not EFFECTIVE (``standing_note`` says why, for the
    refusal's message).
    """

    origin: str
    public_key: PublicKey
    valid_from_ms: int = 0
    revoked_at_ms: int | None = None
    standing: KeyStanding = KeyStanding.EFFECTIVE
    standing_note: str = ""

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
        """Trust ``key``; a key already held is replaced (e.g. by its revoked form).

        A key id can belong to one origin only: a directory that gives one key to
        two kommuner is refused here rather than letting either sign as the other.
        """
        held = self._by_id.get(key.key_id)
        if held is not None and held.origin != key.origin:
            raise ValueError(
                f"key {key.key_id} is already trusted for {held.origin}, not {key.origin}"
            )
        self._by_id[key.key_id] = key

    def get(self, key_id: str) -> TrustedKey | None:
        return self._by_id.get(key_id)

    def for_origin(self, origin: str) -> list[TrustedKey]:
        return [k for k in self._by_id.values() if k.origin == origin]

    def __len__(self) -> int:
        return len(self._by_id)


@dataclass(frozen=True, slots=True)
class StandIn:
    """A redacted stand-in the receiver holds, with what the signed entry that fills
    it must agree with to take its place as if it had arrived in order."""

    origin: str
    sequence: int
    entry_hash: bytes
    #: The hash held at ``sequence - 1`` (GENESIS_HASH at sequence 1): the filling
    #: entry's previous_hash.
    previous_hash: bytes
    #: Timestamp of the nearest signed entry held before it (None: none): the filling
    #: entry may not be dated earlier (an origin's timestamps never go backwards).
    not_before_ms: int | None = None
    #: Timestamp of the nearest signed entry held after it (None: none): the filling
    #: entry may not be dated later.
    not_after_ms: int | None = None


class FeedState(Protocol):
    """What verification needs to know about the receiver's store."""

    def head(self, origin: str) -> FeedHead | None: ...

    def entry_hash(self, origin: str, sequence: int) -> bytes | None: ...

    def record_version(self, origin: str, record_id: str) -> int | None: ...

    def stand_in(self, origin: str, sequence: int) -> StandIn | None:
        """The placeholder held at ``sequence``; None when the entry held there (if
        any) is a signed one. Asked only when a signed entry's hash equals the held
        one, so a store pays for it on duplicates, not on new entries."""
        ...


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"
    #: The receiver already holds exactly this entry; storing it again changes nothing.
    DUPLICATE = "duplicate"
    #: The receiver holds a redacted stand-in with this entry's hash: the signed entry
    #: replaces the placeholder (the log position and chain stay as they are).
    FILLS_STAND_IN = "fills_stand_in"


#: How far ahead of the receiver's clock an entry's timestamp may be (10 minutes):
#: generous for a kommun server whose NTP is off, tight enough that one entry dated
#: far ahead cannot raise its feed's time floor (timestamps never go backwards) and
#: so block the origin's honest entries, or slip past a revocation decided meanwhile.
DEFAULT_MAX_CLOCK_SKEW_MS = 10 * 60 * 1000


def wall_clock_ms() -> int:
    """The receiver's clock in Unix milliseconds (the default for ``now_ms``)."""
    return time.time_ns() // 1_000_000


def verify_entry(
    signed: feed_pb2.SignedEntry | bytes,
    keys: KeyRing,
    state: FeedState,
    *,
    now_ms: int | None = None,
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
    max_bytes: int = MAX_SIGNED_ENTRY_BYTES,
    checked: CheckedSignature | None = None,
) -> tuple[Verdict, ParsedEntry]:
    """Verify one signed entry against trusted keys and the receiver's state.

    Raises EntryRefused with a precise Reason; otherwise says whether the entry is
    new (ACCEPTED) or already held (DUPLICATE, idempotent). The checks run in this
    order, and nothing unauthenticated is decoded beyond the envelope:

    1. envelope: at most ``max_bytes`` (TOO_LARGE), a SignedEntry with no unknown
       fields (MALFORMED);
    2. the key id names a trusted key (UNKNOWN_KEY);
    3. the Ed25519 signature over the domain prefix and the raw entry bytes
       verifies with that key (BAD_SIGNATURE);
    4. only now the Entry is decoded and its structure checked (MALFORMED);
    5. the key belongs to the entry's origin (KEY_NOT_OF_ORIGIN) and signs for it
       yet: not in its challenge period (KEY_IN_CHALLENGE), not objected to by its
       origin (KEY_OBJECTED);
    6. the entry's timestamp lies in the key's validity window (KEY_REVOKED);
    7. the timestamp is at most ``max_clock_skew_ms`` ahead of ``now_ms``, the
       receiver's clock, read from the wall clock when None (CLOCK_SKEW);
    8. the record passes schema validation (SCHEMA_INVALID);
    9. the chain: a held entry again is a DUPLICATE; a different entry at a held
       sequence or a previous_hash that does not match is a FORK; a later sequence
       than the next is a SEQUENCE_GAP; and a next entry dated before the feed's
       newest known timestamp is refused as CLOCK_SKEW. The signed entry behind a
       held redacted stand-in (same origin, sequence and hash) FILLS_STAND_IN, if
       its previous_hash is the hash held before it (else FORK) and its date lies
       between the signed entries held around it (else CLOCK_SKEW);
    10. the record's version is newer than the held one (VERSION_NOT_NEWER). Not for
       a stand-in's entry: its place in the chain is fixed already, and the store
       makes it the record's current version only if no newer one is current.

    On timestamps going backwards (step 9): refused. An origin's clock is the only
    clock its entries carry, and key revocation is judged by it; if a feed could go
    back in time, a stolen key revoked at R could keep signing entries dated just
    before R after the owner has moved on. With monotonic timestamps the backdating
    room is only between the feed's newest entry and R. Equal timestamps are fine
    (a batch written within one millisecond). The check needs
    ``FeedHead.timestamp_ms``; a state that leaves it None skips it. A publisher
    must therefore never date an entry before its feed's head (clamp its clock).
    Entries dated in the future (step 7) are refused, not held: the origin's
    later entries chain from them, so the receiver simply asks again later.

    ``checked``: steps 1–3 (or 1–4, :func:`check_entry`) already done for this very
    ``signed`` and ``keys`` (e.g. for a whole batch at once, on several cores).
    """
    if checked is None:
        checked = check_signature(signed, keys, max_bytes=max_bytes)
    envelope, key = checked.envelope, checked.key

    parsed = checked.parsed if checked.parsed is not None else decode_entry(envelope)
    entry, origin, seq = parsed.entry, parsed.origin, parsed.sequence

    def refuse(reason: Reason, detail: str) -> EntryRefused:
        return EntryRefused(reason, detail, origin=origin, sequence=seq)

    if key.origin != origin:
        raise refuse(
            Reason.KEY_NOT_OF_ORIGIN, f"key {key.key_id} belongs to {key.origin}, not {origin}"
        )
    if key.standing is not KeyStanding.EFFECTIVE:
        in_challenge = key.standing is KeyStanding.IN_CHALLENGE
        raise refuse(
            Reason.KEY_IN_CHALLENGE if in_challenge else Reason.KEY_OBJECTED,
            f"key {key.key_id} of {origin} "
            + (key.standing_note or ("is in challenge" if in_challenge else "was objected to")),
        )
    if entry.timestamp_ms < key.valid_from_ms:
        raise refuse(
            Reason.KEY_REVOKED,
            f"key {key.key_id} is valid from {key.valid_from_ms}, "
            f"the entry is dated {entry.timestamp_ms}",
        )
    if key.revoked_at_ms is not None and entry.timestamp_ms >= key.revoked_at_ms:
        raise refuse(
            Reason.KEY_REVOKED,
            f"key {key.key_id} was revoked at {key.revoked_at_ms}, "
            f"the entry is dated {entry.timestamp_ms}",
        )
    now = wall_clock_ms() if now_ms is None else now_ms
    if entry.timestamp_ms > now + max_clock_skew_ms:
        raise refuse(
            Reason.CLOCK_SKEW,
            f"dated {entry.timestamp_ms - now} ms ahead of this receiver's clock, "
            f"tolerance {max_clock_skew_ms} ms",
        )
    try:
        validate_record(entry.record, origin=origin)
    except RecordInvalid as exc:
        raise refuse(Reason.SCHEMA_INVALID, str(exc)) from exc

    verdict = check_chain(
        origin,
        seq,
        parsed.hash,
        state,
        previous_hash=entry.previous_hash,
        timestamp_ms=entry.timestamp_ms,
    )
    if verdict is not Verdict.ACCEPTED:
        return verdict, parsed

    current = state.record_version(origin, parsed.record_id)
    if current is not None and parsed.version <= current:
        raise refuse(
            Reason.VERSION_NOT_NEWER,
            f"record {parsed.record_id} version {parsed.version} is not newer than {current}",
        )
    return Verdict.ACCEPTED, parsed


@dataclass(frozen=True, slots=True)
class CheckedSignature:
    """An envelope whose key id names ``key`` and whose signature verified with it
    (steps 1–3 of :func:`verify_entry`); ``parsed``: the Entry inside, decoded and
    its structure checked (step 4, :func:`check_entry`), or None if not yet."""

    envelope: feed_pb2.SignedEntry
    key: TrustedKey
    parsed: ParsedEntry | None = None


def check_signature(
    signed: feed_pb2.SignedEntry | bytes,
    keys: KeyRing,
    *,
    max_bytes: int = MAX_SIGNED_ENTRY_BYTES,
) -> CheckedSignature:
    """Steps 1–3 of :func:`verify_entry`: envelope, known key id, signature.

    They depend on the keys only, never on the receiver's state, so a batch's
    signatures can be checked ahead and at once (cryptography releases the GIL
    while it verifies, so threads use every core); the rest of verification then
    runs in order. Raises the same refusals verify_entry would.
    """
    envelope = parse_envelope(signed, max_bytes=max_bytes)
    key = keys.get(envelope.key_id)
    if key is None:
        raise EntryRefused(Reason.UNKNOWN_KEY, f"no trusted key has id {envelope.key_id[:64]!r}")
    if not key.public_key.verify(envelope.entry, envelope.signature):
        raise EntryRefused(Reason.BAD_SIGNATURE, f"signature does not verify with key {key.key_id}")
    return CheckedSignature(envelope, key)


def check_entry(
    signed: feed_pb2.SignedEntry | bytes,
    keys: KeyRing,
    *,
    max_bytes: int = MAX_SIGNED_ENTRY_BYTES,
) -> CheckedSignature:
    """Steps 1–4 of :func:`verify_entry`: :func:`check_signature`, then the Entry
    decoded (only once its signature verified) and its structure checked.

    Like steps 1–3 they need no receiver state, so a batch runs them ahead; the
    decoded entries then name the feeds and records the ordered checks will look up,
    which the store can read for the whole batch at once.
    """
    checked = check_signature(signed, keys, max_bytes=max_bytes)
    return CheckedSignature(checked.envelope, checked.key, decode_entry(checked.envelope))


def check_chain(
    origin: str,
    sequence: int,
    this_hash: bytes,
    state: FeedState,
    *,
    previous_hash: bytes | None,
    timestamp_ms: int | None = None,
) -> Verdict:
    """Check an entry's place in its origin's hash chain.

    ``previous_hash`` and ``timestamp_ms`` are None for a redacted entry, whose own
    link and date cannot be seen; the next visible entry's previous_hash then
    vouches for it. A redacted entry never fills a held stand-in (it is a DUPLICATE
    of whatever is held with its hash).
    """

    def refuse(reason: Reason, detail: str) -> EntryRefused:
        return EntryRefused(reason, detail, origin=origin, sequence=sequence)

    head = state.head(origin)
    head_seq = head.sequence if head else 0
    if sequence <= head_seq:
        held = state.entry_hash(origin, sequence)
        if held != this_hash:
            raise refuse(Reason.FORK, f"a different entry is already held at sequence {sequence}")
        if previous_hash is None:
            return Verdict.DUPLICATE
        stand_in = state.stand_in(origin, sequence)
        if stand_in is None:
            return Verdict.DUPLICATE
        check_fill(stand_in, previous_hash=previous_hash, timestamp_ms=timestamp_ms)
        return Verdict.FILLS_STAND_IN
    if sequence > head_seq + 1:
        raise refuse(
            Reason.SEQUENCE_GAP,
            f"expected sequence {head_seq + 1}, got {sequence}; "
            f"entries {head_seq + 1}..{sequence - 1} are missing",
        )
    expected_prev = head.entry_hash if head else GENESIS_HASH
    if previous_hash is not None and previous_hash != expected_prev:
        raise refuse(
            Reason.FORK,
            "previous_hash does not match the held entry at sequence "
            f"{head_seq} ({expected_prev.hex()[:16]}…)",
        )
    newest = head.timestamp_ms if head else None
    if timestamp_ms is not None and newest is not None and timestamp_ms < newest:
        raise refuse(
            Reason.CLOCK_SKEW,
            f"dated {timestamp_ms}, before the feed's newest entry ({newest}); "
            "an origin's timestamps never go backwards",
        )
    return Verdict.ACCEPTED


def check_fill(stand_in: StandIn, *, previous_hash: bytes, timestamp_ms: int | None) -> None:
    """May a signed entry with the stand-in's hash take its place? Raises if not.

    The equal hash already proves the entry is the one the chain after the stand-in
    vouched for (or the sender claimed); what is left is what in-order arrival would
    have checked: the link to the entry before it (a stand-in is never checked
    against that link, so a mismatch means two histories were spliced: FORK) and
    that the origin's timestamps still never go backwards around it (CLOCK_SKEW).
    """

    def refuse(reason: Reason, detail: str) -> EntryRefused:
        return EntryRefused(reason, detail, origin=stand_in.origin, sequence=stand_in.sequence)

    if previous_hash != stand_in.previous_hash:
        raise refuse(
            Reason.FORK,
            "the entry behind the held stand-in does not chain to the held entry at "
            f"sequence {stand_in.sequence - 1} ({stand_in.previous_hash.hex()[:16]}…)",
        )
    if timestamp_ms is None:
        return
    if stand_in.not_before_ms is not None and timestamp_ms < stand_in.not_before_ms:
        raise refuse(
            Reason.CLOCK_SKEW,
            f"dated {timestamp_ms}, before the signed entry held before it "
            f"({stand_in.not_before_ms}); an origin's timestamps never go backwards",
        )
    if stand_in.not_after_ms is not None and timestamp_ms > stand_in.not_after_ms:
        raise refuse(
            Reason.CLOCK_SKEW,
            f"dated {timestamp_ms}, after the signed entry held after it "
            f"({stand_in.not_after_ms}); an origin's timestamps never go backwards",
        )


def verify_redacted(item: feed_pb2.RedactedEntry, state: FeedState) -> Verdict:
    """Place a stand-in for an entry the reader may not see into the chain."""

    malformed = check_position(item.origin, item.sequence)
    if len(item.entry_hash) != 32:
        raise malformed("redacted entry hash must be 32 bytes")
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
        #: Stand-ins noted in this batch, with the newest timestamp known before each.
        self._stand_in_floor: dict[tuple[str, int], int | None] = {}
        #: Stand-ins (held or of this batch) that a signed entry of this batch filled.
        self._filled: set[tuple[str, int]] = set()
        #: Per origin: sequence → timestamp of the signed entries noted in this batch.
        self._signed_ms: dict[str, dict[int, int]] = {}

    def head(self, origin: str) -> FeedHead | None:
        return self._heads.get(origin) or self._base.head(origin)

    def entry_hash(self, origin: str, sequence: int) -> bytes | None:
        held = self._hashes.get((origin, sequence))
        return held if held is not None else self._base.entry_hash(origin, sequence)

    def record_version(self, origin: str, record_id: str) -> int | None:
        held = self._versions.get((origin, record_id))
        return held if held is not None else self._base.record_version(origin, record_id)

    def stand_in(self, origin: str, sequence: int) -> StandIn | None:
        key = (origin, sequence)
        if key in self._filled:
            return None
        if key in self._stand_in_floor:
            before = GENESIS_HASH if sequence == 1 else self.entry_hash(origin, sequence - 1)
            found: StandIn | None = StandIn(
                origin,
                sequence,
                self._hashes[key],
                # Never missing (a chain is held from sequence 1 on); b"" would refuse.
                before or b"",
                not_before_ms=self._stand_in_floor[key],
            )
        elif key in self._hashes:
            return None  # a signed entry of this batch
        else:
            found = self._base.stand_in(origin, sequence)
        if found is None:
            return None
        # Signed entries of this batch around it (fills, or entries after the head)
        # bound its date more tightly than the store alone.
        signed = self._signed_ms.get(origin, {})
        before_ms = [ms for seq, ms in signed.items() if seq < sequence]
        after_ms = [ms for seq, ms in signed.items() if seq > sequence]
        not_before = max([*before_ms, *_known(found.not_before_ms)], default=None)
        not_after = min([*after_ms, *_known(found.not_after_ms)], default=None)
        return StandIn(
            found.origin,
            found.sequence,
            found.entry_hash,
            found.previous_hash,
            not_before,
            not_after,
        )

    def note_entry(self, parsed: ParsedEntry) -> None:
        """Record an entry verify_entry ACCEPTED, so later entries chain from it."""
        self._note(parsed.origin, parsed.sequence, parsed.hash, parsed.timestamp_ms)
        self._versions[(parsed.origin, parsed.record_id)] = parsed.version
        self._signed_ms.setdefault(parsed.origin, {})[parsed.sequence] = parsed.timestamp_ms

    def note_redacted(self, item: feed_pb2.RedactedEntry) -> None:
        """Record a stand-in verify_redacted ACCEPTED.

        Its date is unknown but not before the feed's newest known one, which
        therefore stays the lower bound for the next entry.
        """
        previous = self.head(item.origin)
        newest = previous.timestamp_ms if previous else None
        self._note(item.origin, item.sequence, item.entry_hash, newest)
        self._stand_in_floor[(item.origin, item.sequence)] = newest

    def note_fill(self, parsed: ParsedEntry) -> None:
        """Record an entry verify_entry said FILLS_STAND_IN.

        The head stays where it is, but its newest known timestamp may rise (when
        the stand-in was the head, or only stand-ins follow it); the record's
        version is the newer of the held one and the filled one, as the store's
        current view will be.
        """
        origin = parsed.origin
        self._filled.add((origin, parsed.sequence))
        self._signed_ms.setdefault(origin, {})[parsed.sequence] = parsed.timestamp_ms
        head = self.head(origin)
        if head is not None and (head.timestamp_ms or 0) < parsed.timestamp_ms:
            self._heads[origin] = FeedHead(
                origin, head.sequence, head.entry_hash, parsed.timestamp_ms
            )
        held = self.record_version(origin, parsed.record_id)
        if held is None or held < parsed.version:
            self._versions[(origin, parsed.record_id)] = parsed.version

    def _note(
        self, origin: str, sequence: int, entry_hash: bytes, timestamp_ms: int | None
    ) -> None:
        self._heads[origin] = FeedHead(origin, sequence, entry_hash, timestamp_ms)
        self._hashes[(origin, sequence)] = entry_hash


def _known(value: int | None) -> list[int]:
    return [] if value is None else [value]


class MemoryFeedState(BatchState):
    """An in-memory receiver state, for tests and for checking a bundle on its own."""

    class _Empty:
        def head(self, origin: str) -> FeedHead | None:
            return None

        def entry_hash(self, origin: str, sequence: int) -> bytes | None:
            return None

        def record_version(self, origin: str, record_id: str) -> int | None:
            return None

        def stand_in(self, origin: str, sequence: int) -> StandIn | None:
            return None

    def __init__(self) -> None:
        super().__init__(self._Empty())
