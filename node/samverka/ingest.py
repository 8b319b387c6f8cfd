"""Verify a batch of entries and store what passes, in one transaction.

Every way entries arrive (a sync from a peer, an offline bundle, a push to the hub)
ends here, so every receiver applies exactly the same rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from samverka.entries import ParsedEntry
from samverka.errors import EntryRefused, Reason, StoreConflict
from samverka.store import Store
from samverka.v1 import feed_pb2
from samverka.verify import BatchState, KeyRing, Verdict, verify_entry, verify_redacted

Incoming = feed_pb2.LogEntry | feed_pb2.SignedEntry | feed_pb2.RedactedEntry | bytes

#: Verify-and-append rounds before a batch gives up to writers that keep getting there first.
ATTEMPTS = 5


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    refused: Counter[Reason] = field(default_factory=Counter)
    #: The first refusal, with origin, sequence and reason, for the error message.
    first_refusal: EntryRefused | None = None
    #: Log positions of the stored entries.
    positions: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused


def ingest(
    store: Store,
    keys: KeyRing,
    items: Iterable[Incoming],
    *,
    stop_at_first_refusal: bool = True,
) -> IngestReport:
    """Verify ``items`` in order against ``keys`` and the store; store the accepted.

    With ``stop_at_first_refusal`` (the default, used by sync and bundle import)
    nothing from the first bad entry on is stored. Otherwise a refused entry is
    skipped and counted, and the rest are still checked (later entries of the same
    origin then refuse as a gap, which is the truth).

    If another writer stores some of the same entries between verification and
    append (a push and a harvest of one node, two hub replicas), the store refuses
    with StoreConflict; the batch is then verified again, and what the other writer
    stored counts as duplicates.
    """
    batch = list(items)
    for attempt in range(ATTEMPTS):
        try:
            return _ingest_once(store, keys, batch, stop_at_first_refusal)
        except StoreConflict:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _ingest_once(
    store: Store, keys: KeyRing, items: list[Incoming], stop_at_first_refusal: bool
) -> IngestReport:
    report = IngestReport()
    accepted: list[ParsedEntry | feed_pb2.RedactedEntry] = []
    # One consistent view of the store for the whole batch (see Store.snapshot).
    with store.snapshot() as snapshot:
        _verify_batch(BatchState(snapshot), keys, items, stop_at_first_refusal, report, accepted)
    if accepted:
        report.positions = store.append(accepted)
        report.accepted = len(accepted)
    return report


def _verify_batch(
    state: BatchState,
    keys: KeyRing,
    items: list[Incoming],
    stop_at_first_refusal: bool,
    report: IngestReport,
    accepted: list[ParsedEntry | feed_pb2.RedactedEntry],
) -> None:
    for item in items:
        try:
            if isinstance(item, feed_pb2.LogEntry):
                item = item.redacted if item.HasField("redacted") else item.signed
            if isinstance(item, feed_pb2.RedactedEntry):
                if verify_redacted(item, state) is Verdict.ACCEPTED:
                    state.note_redacted(item)
                    accepted.append(item)
                else:
                    report.duplicates += 1
                continue
            verdict, parsed = verify_entry(item, keys, state)
        except EntryRefused as refusal:
            report.refused[refusal.reason] += 1
            if report.first_refusal is None:
                report.first_refusal = refusal
            if stop_at_first_refusal:
                break
            continue
        if verdict is Verdict.DUPLICATE:
            report.duplicates += 1
        else:
            state.note_entry(parsed)
            accepted.append(parsed)
