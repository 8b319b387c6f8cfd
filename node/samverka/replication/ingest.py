"""Verify a batch of entries and store what passes, in one transaction.

Every way entries arrive (a sync from a peer, an offline bundle, a push to the hub)
ends here, so every receiver applies exactly the same rules.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Container, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from samverka.errors import EntryRefused, Reason, StoreConflict
from samverka.observers import Observers
from samverka.protocol.entries import MAX_SIGNED_ENTRY_BYTES, ParsedEntry
from samverka.protocol.verify import (
    DEFAULT_MAX_CLOCK_SKEW_MS,
    BatchState,
    CheckedSignature,
    KeyRing,
    Verdict,
    check_entry,
    verify_entry,
    verify_redacted,
)
from samverka.store.store import Store
from samverka.v1 import feed_pb2

log = logging.getLogger(__name__)

Incoming = feed_pb2.LogEntry | feed_pb2.SignedEntry | feed_pb2.RedactedEntry | bytes

#: Verify-and-append rounds before a batch gives up to writers that keep getting there first.
ATTEMPTS = 5

#: What check_signatures says about one item: its checked envelope with the entry
#: decoded, the refusal its envelope, signature or entry structure earns, or None for
#: a redacted stand-in (nothing to check).
Checked = CheckedSignature | EntryRefused | None

#: Batches smaller than this check their signatures in the calling thread: handing a
#: few entries (a live entry, a small push) to other threads costs more than it saves.
PARALLEL_MIN = 32
#: Threads that check signatures (cryptography releases the GIL while verifying).
SIGNATURE_THREADS = max(2, os.cpu_count() or 2)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _signature_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(SIGNATURE_THREADS, thread_name_prefix="samverka-verify")
        return _pool


def check_signatures(
    items: Sequence[Incoming], keys: KeyRing, *, max_bytes: int = MAX_SIGNED_ENTRY_BYTES
) -> list[Checked]:
    """Steps 1–4 of verification (envelope, key id, signature, the entry decoded:
    :func:`~samverka.protocol.verify.check_entry`) for every item at once.

    They do not depend on the store, so they run ahead of the ordered checks, spread
    over the CPU's cores for larger batches. The refusals are kept, not raised:
    :func:`ingest` raises each at its item's turn, so the outcome is the same as
    checking one entry after another.
    """
    signed = [_signed_part(item) for item in items]
    if len(signed) < PARALLEL_MIN:
        return _check_all(signed, keys, max_bytes)
    step = -(-len(signed) // SIGNATURE_THREADS)
    parts = [signed[i : i + step] for i in range(0, len(signed), step)]
    pool = _signature_pool()
    futures = [pool.submit(_check_all, part, keys, max_bytes) for part in parts]
    return [checked for future in futures for checked in future.result()]


def _signed_part(item: Incoming) -> feed_pb2.SignedEntry | bytes | None:
    if isinstance(item, feed_pb2.LogEntry):
        return None if item.HasField("redacted") else item.signed
    if isinstance(item, feed_pb2.RedactedEntry):
        return None
    return item


def _check_all(
    signed: list[feed_pb2.SignedEntry | bytes | None], keys: KeyRing, max_bytes: int
) -> list[Checked]:
    out: list[Checked] = []
    for item in signed:
        if item is None:
            out.append(None)
            continue
        try:
            out.append(check_entry(item, keys, max_bytes=max_bytes))
        except EntryRefused as refusal:
            out.append(refusal)
    return out


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    #: Signed entries that replaced a held redacted stand-in with the same origin,
    #: sequence and hash (an entry once hidden, recovered); neither new nor duplicates.
    stand_ins_filled: int = 0
    refused: Counter[Reason] = field(default_factory=Counter)
    #: The first refusal, with origin, sequence and reason, for the error message.
    first_refusal: EntryRefused | None = None
    #: Index in the batch of the item ``first_refusal`` is about (None: no refusal).
    #: With ``stop_at_first_refusal``, exactly the items before it are now held, so
    #: ``held == refused_index``.
    refused_index: int | None = None
    #: Log positions of the stored entries (appended; fills keep their placeholder's).
    positions: list[int] = field(default_factory=list)
    #: Where the batch came from ("push", "harvest", "sync", "bundle", ...).
    source: str = ""
    #: Stand-ins not stored because no signed entry after them vouched for them and
    #: their origin is not in ``trust_stand_ins``.
    stand_ins_left_out: int = 0
    #: Origins of the items that passed verification (accepted or duplicate).
    origins: set[str] = field(default_factory=set)
    #: The ``cursor`` given to :func:`ingest` was stored (nothing was refused).
    cursor_set: bool = False

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def held(self) -> int:
        """Items of the batch the store now holds: new, already held, or filled in."""
        return self.accepted + self.duplicates + self.stand_ins_filled


#: Told of every ingested batch with the seconds it took (the metrics count them).
ingest_observers: Observers[[IngestReport, float]] = Observers()


def _log_refusal(report: IngestReport) -> None:
    refusal = report.first_refusal
    if refusal is None:
        return
    # INFO, not WARNING: CLI commands (bundle import) report refusals themselves,
    # and Python's last-resort handler would print a WARNING there a second time.
    log.info(
        "entry refused: %s",
        refusal,
        extra={
            "event": "entry_refused",
            "origin": refusal.origin,
            "sequence": refusal.sequence,
            "reason": refusal.reason.value,
            "source": report.source or "unspecified",
            "count": sum(report.refused.values()),
        },
    )


def ingest(
    store: Store,
    keys: KeyRing,
    items: Iterable[Incoming],
    *,
    stop_at_first_refusal: bool = True,
    source: str = "unspecified",
    now_ms: int | None = None,
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
    trust_stand_ins: Container[str] | None = None,
    checked: Sequence[Checked] | None = None,
    cursor: tuple[str, int] | None = None,
) -> IngestReport:
    """Verify ``items`` in order against ``keys`` and the store; store the accepted.

    With ``stop_at_first_refusal`` (the default, used by sync and bundle import)
    nothing from the first bad entry on is stored. Otherwise a refused entry is
    skipped and counted, and the rest are still checked (later entries of the same
    origin then refuse as a gap, which is the truth).

    ``source`` says how the entries came ("push", "harvest", "sync", "bundle", ...),
    so ingests and refusals can be counted by way in. ``now_ms`` (default: the wall
    clock) and ``max_clock_skew_ms`` (the receiver's ``[limits]``) are passed on to
    :func:`~samverka.protocol.verify.verify_entry`.

    Redacted stand-ins cannot be checked on their own; the next signed entry of
    their origin vouches for them (its previous_hash). If that entry contradicts
    them (a FORK), the stand-ins of that origin no signed entry has vouched for yet
    are not stored either, and the refusal names the first of them. A stand-in at
    the end of its origin's part of the batch is taken on the sender's word, unless
    ``trust_stand_ins`` is given and lacks its origin: then it is left out (the hub
    takes a member's word for its own feed only, so nobody can block another
    origin's next sequence with a false stand-in). Leaving stand-ins out is not a
    refusal; ``held == refused_index`` then need not hold.

    A signed entry whose origin, sequence and hash match a held stand-in (an entry
    that some source showed only redacted, e.g. a hub hiding a PUBLIC entry, or the
    public port hiding a MEMBERS record) fills it: it is stored in the placeholder's
    place and counted in ``stand_ins_filled`` (see
    :meth:`~samverka.store.store.Store.append`).

    If another writer stores some of the same entries between verification and
    append (a push and a harvest of one node, two hub replicas), the store refuses
    with StoreConflict; the batch is then verified again, and what the other writer
    stored counts as duplicates.

    ``checked`` is :func:`check_signatures` of these very ``items`` and ``keys``, when
    the caller ran it ahead (e.g. on the next page while this one is stored);
    otherwise it runs here.

    ``cursor`` (peer, position): when nothing in the batch is refused, also move that
    cursor (:meth:`~samverka.store.store.Store.set_cursor`), in the same transaction as the
    entries (``report.cursor_set``). A sync reading a page thus stores it and its
    place in the peer's log in one commit.
    """
    started = time.monotonic()
    batch = list(items)
    if checked is None:
        checked = check_signatures(batch, keys)
    elif len(checked) != len(batch):
        raise ValueError("checked must hold one result per item")
    rules = _Rules(
        keys, stop_at_first_refusal, now_ms, max_clock_skew_ms, trust_stand_ins, checked, cursor
    )
    for attempt in range(ATTEMPTS):
        try:
            report = _ingest_once(store, rules, batch)
        except StoreConflict:
            if attempt == ATTEMPTS - 1:
                raise
            continue
        report.source = source
        # The one place every way in is reported (samverka_entries_*_total{source}).
        seconds = time.monotonic() - started
        _log_refusal(report)
        ingest_observers(report, seconds)
        return report
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class _Rules:
    keys: KeyRing
    stop_at_first_refusal: bool
    now_ms: int | None
    max_clock_skew_ms: int
    trust_stand_ins: Container[str] | None
    checked: Sequence[Checked]
    cursor: tuple[str, int] | None


def _ingest_once(store: Store, rules: _Rules, items: list[Incoming]) -> IngestReport:
    report = IngestReport()
    # One consistent view of the store for the whole batch (see Store.snapshot).
    with store.snapshot() as snapshot:
        snapshot.prefetch(*_looked_up(items, rules.checked))
        verifier = _BatchVerifier(BatchState(snapshot), rules, report)
        accepted = verifier.run(items)
    fills = verifier.filled()
    cursor = rules.cursor if report.first_refusal is None else None
    if accepted or fills or cursor is not None:
        report.positions = store.append(accepted, fills=fills, cursor=cursor)
        report.accepted = len(accepted)
        report.stand_ins_filled = len(fills)
        report.cursor_set = cursor is not None
    return report


def _looked_up(
    items: list[Incoming], checked: Sequence[Checked]
) -> tuple[list[str], list[tuple[str, str]]]:
    """The feeds and records verifying ``items`` will look up: the origins of the
    entries decoded ahead and of the stand-ins, and the entries' (origin, record_id)."""
    origins: list[str] = []
    records: list[tuple[str, str]] = []
    for item, check in zip(items, checked, strict=True):
        if isinstance(check, CheckedSignature) and check.parsed is not None:
            origins.append(check.parsed.origin)
            records.append((check.parsed.origin, check.parsed.record_id))
        elif isinstance(item, feed_pb2.LogEntry) and item.HasField("redacted"):
            origins.append(item.redacted.origin)
        elif isinstance(item, feed_pb2.RedactedEntry):
            origins.append(item.origin)
    return origins, records


class _BatchVerifier:
    """Verifies one batch in order, keeping track of stand-ins not yet vouched for."""

    def __init__(self, state: BatchState, rules: _Rules, report: IngestReport) -> None:
        self.state = state
        self.rules = rules
        self.report = report
        #: (batch index, item) of every accepted item, in order.
        self.accepted: list[tuple[int, ParsedEntry | feed_pb2.RedactedEntry]] = []
        #: Batch indices of the duplicates.
        self.duplicates: list[int] = []
        #: (batch index, entry) of the signed entries that fill held stand-ins.
        self.fills: list[tuple[int, ParsedEntry]] = []
        #: Per origin: (batch index, sequence) of accepted stand-ins no signed entry
        #: of the batch has vouched for yet.
        self.unvouched: dict[str, list[tuple[int, int]]] = {}
        #: Origins whose stand-ins were contradicted: nothing more of them is accepted.
        self.contradicted: set[str] = set()

    def run(self, items: list[Incoming]) -> list[ParsedEntry | feed_pb2.RedactedEntry]:
        for index, item in enumerate(items):
            try:
                self._verify(index, item)
            except EntryRefused as refusal:
                if self._refuse(index, refusal):
                    break
        self._leave_out_untrusted_stand_ins()
        self.report.duplicates = len(self.duplicates)
        return [item for _, item in self.accepted]

    def filled(self) -> list[ParsedEntry]:
        return [entry for _, entry in self.fills]

    def _leave_out_untrusted_stand_ins(self) -> None:
        trusted = self.rules.trust_stand_ins
        if trusted is None:
            return
        # Each origin's unvouched stand-ins are the last of it accepted in this batch,
        # so leaving them out keeps every chain in the batch whole.
        left_out = {
            i
            for origin, stand_ins in self.unvouched.items()
            if origin not in trusted
            for i, _ in stand_ins
        }
        if left_out:
            self.accepted = [(i, a) for i, a in self.accepted if i not in left_out]
            self.report.stand_ins_left_out = len(left_out)

    def _verify(self, index: int, item: Incoming) -> None:
        if isinstance(item, feed_pb2.LogEntry):
            item = item.redacted if item.HasField("redacted") else item.signed
        if isinstance(item, feed_pb2.RedactedEntry):
            if item.origin in self.contradicted:
                raise _after_contradiction(item.origin, item.sequence)
            verdict = verify_redacted(item, self.state)
            self.report.origins.add(item.origin)
            if verdict is Verdict.ACCEPTED:
                self.state.note_redacted(item)
                self.accepted.append((index, item))
                self.unvouched.setdefault(item.origin, []).append((index, item.sequence))
            else:
                self.duplicates.append(index)
            return
        checked = self.rules.checked[index]
        if isinstance(checked, EntryRefused):
            raise checked
        verdict, parsed = verify_entry(
            item,
            self.rules.keys,
            self.state,
            now_ms=self.rules.now_ms,
            max_clock_skew_ms=self.rules.max_clock_skew_ms,
            checked=checked,
        )
        if parsed.origin in self.contradicted:
            raise _after_contradiction(parsed.origin, parsed.sequence)
        self.report.origins.add(parsed.origin)
        if verdict is Verdict.DUPLICATE:
            # An entry already held sits before this batch's new stand-ins: it
            # vouches for none of them.
            self.duplicates.append(index)
        elif verdict is Verdict.FILLS_STAND_IN:
            # Its hash proves the stand-in it fills, its previous_hash the one before.
            self._vouch(parsed.origin, up_to=parsed.sequence)
            self.state.note_fill(parsed)
            self.fills.append((index, parsed))
        else:
            # Verified against the chain: the stand-ins before it are vouched for.
            self._vouch(parsed.origin, up_to=parsed.sequence)
            self.state.note_entry(parsed)
            self.accepted.append((index, parsed))

    def _vouch(self, origin: str, *, up_to: int) -> None:
        """The origin's unvouched stand-ins up to sequence ``up_to`` are vouched for."""
        left = [(i, seq) for i, seq in self.unvouched.get(origin, []) if seq > up_to]
        if left:
            self.unvouched[origin] = left
        else:
            self.unvouched.pop(origin, None)

    def _refuse(self, index: int, refusal: EntryRefused) -> bool:
        """Count a refusal; True when the batch stops here."""
        report = self.report
        stand_ins = self.unvouched.pop(refusal.origin, []) if refusal.reason is Reason.FORK else []
        if stand_ins:
            # The entry contradicts stand-ins of this batch: whichever is wrong, the
            # stand-ins are unproven, so none of them is stored.
            first_index, first_sequence = stand_ins[0]
            refusal = EntryRefused(
                Reason.FORK,
                f"the redacted stand-in's hash is contradicted by entry #{refusal.sequence} "
                f"after it ({refusal.detail})",
                origin=refusal.origin,
                sequence=first_sequence,
            )
            self.contradicted.add(refusal.origin)
            if self.rules.stop_at_first_refusal:
                index = first_index  # nothing from the first unproven stand-in on
                self.accepted = [(i, a) for i, a in self.accepted if i < index]
                self.duplicates = [i for i in self.duplicates if i < index]
                self.fills = [(i, f) for i, f in self.fills if i < index]
            else:
                dropped = {i for i, _ in stand_ins}
                self.accepted = [(i, a) for i, a in self.accepted if i not in dropped]
                report.refused[Reason.FORK] += len(stand_ins)
        report.refused[refusal.reason] += 1
        if report.first_refusal is None:
            report.first_refusal = refusal
            report.refused_index = index
        return self.rules.stop_at_first_refusal


def _after_contradiction(origin: str, sequence: int) -> EntryRefused:
    return EntryRefused(
        Reason.FORK,
        "an earlier entry of this batch contradicted this origin's stand-ins; "
        "nothing more of it is taken from this batch",
        origin=origin,
        sequence=sequence,
    )
