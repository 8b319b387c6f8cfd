"""What the catalog needs that the store's current view has no column for, kept in memory.

The store's ``records`` view has the columns lists filter on (kind, area, status,
risk class, …) but not a use case's techniques, nor which use case a lesson is
about, nor which solutions a use case reuses: those live inside the signed record.
Reading and decoding every record for each page would not scale, so the catalog
keeps this small projection of the log in memory and follows the log by position:

- each refresh reads the log entries of use cases and lessons stored since the last
  one (one range scan on the log's primary key), decodes them, and keeps, per
  record, the facts of its **newest** entry (an origin's entries are stored in
  sequence order, and every new entry of a record carries a higher version, so the
  newest entry in the log is the current version);
- visibility and retraction are kept too, so the technique list counts PUBLIC live
  use cases only; everything else the projection answers is a set of *candidates*
  that the caller narrows with a PUBLIC-only query on the current view.

Building it costs one decode per use case and lesson (a few seconds for 100,000
records on a busy 2-core machine, once per process); afterwards a refresh costs one
``MAX(position)`` query when nothing changed. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from samverka.errors import EntryRefused
from samverka.protocol.entries import parse_signed
from samverka.protocol.vocab import normalize
from samverka.store.store import Store
from samverka.store.tables import log, records
from samverka.v1 import records_pb2

USE_CASE = records_pb2.RECORD_KIND_USE_CASE
LESSON = records_pb2.RECORD_KIND_LESSON
ERASURE = records_pb2.RECORD_KIND_ERASURE
PUBLIC = records_pb2.VISIBILITY_PUBLIC

#: Log rows decoded per query while catching up.
BATCH = 2_000

Key = tuple[str, str]  # (origin, record_id)


def technique_key(text: str) -> str:
    """How techniques are compared: case, spacing and punctuation do not matter."""
    return normalize(text)


@dataclass(frozen=True, slots=True)
class _UseCaseFacts:
    rid: int
    public_live: bool
    techniques: tuple[str, ...]  # as written
    reuses: tuple[Key, ...]


class Projection:
    """Techniques, lesson targets and reuse links of every use case and lesson in the log."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._position = 0
        self._use_cases: dict[Key, _UseCaseFacts] = {}
        #: A lesson → the use case it is about (newest version), and the reverse.
        self._lesson_target: dict[Key, Key] = {}
        self._lessons_of: dict[Key, set[Key]] = {}
        #: A solution → the use cases whose newest version reuses it.
        self._reused_by: dict[Key, set[Key]] = {}
        #: technique_key → current-view ids of the use cases naming it (newest version).
        self._by_technique: dict[str, set[int]] = {}
        self._technique_list: tuple[int, list[tuple[str, int]]] = (-1, [])

    @property
    def position(self) -> int:
        """The log position the projection has read up to."""
        return self._position

    def refresh(self, *, wait: bool = True) -> bool:
        """Read what was appended to the log since the last refresh.

        ``wait=False`` returns at once (False) while another thread is reading, for
        answers that may be a little behind (the list of techniques to suggest).
        """
        end = self.store.log_position()
        if end <= self._position:
            return True
        if not self._lock.acquire(blocking=wait):
            return False
        try:
            while self._position < end:
                self._read_batch(end)
        finally:
            self._lock.release()
        return True

    def _read_batch(self, end: int) -> None:
        stmt = (
            sa.select(log.c.position, log.c.signed_entry, records.c.rid)
            .join_from(
                log,
                records,
                sa.and_(records.c.origin == log.c.origin, records.c.record_id == log.c.record_id),
                isouter=True,  # an erasure is in no current view
            )
            .where(
                log.c.position > self._position,
                log.c.position <= end,
                log.c.kind.in_([USE_CASE, LESSON, ERASURE]),
                log.c.signed_entry.is_not(None),
            )
            .order_by(log.c.position)
            .limit(BATCH)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        for row in rows:
            if row.rid is not None:
                self._note(bytes(row.signed_entry), int(row.rid))
            else:
                self._note_erasure(bytes(row.signed_entry))
        # Fewer rows than a batch: everything up to ``end`` has been read.
        self._position = int(rows[-1].position) if len(rows) == BATCH else end

    def _note_erasure(self, signed_bytes: bytes) -> None:
        """An erasure (issue 13): forget what the erased record's entries said, then take
        the record's current version again if one is left (only some were erased)."""
        record = parse_signed(signed_bytes).record
        if not record.HasField("erasure"):
            return
        key = (record.erasure.origin, record.erasure.record_id)
        old = self._use_cases.pop(key, None)
        if old is not None:
            for ref in old.reuses:
                self._reused_by.get(ref, set()).discard(key)
            for text in old.techniques:
                self._by_technique.get(technique_key(text), set()).discard(old.rid)
        old_target = self._lesson_target.pop(key, None)
        if old_target is not None:
            self._lessons_of.get(old_target, set()).discard(key)
        stmt = (
            sa.select(log.c.signed_entry, records.c.rid)
            .join_from(records, log, log.c.position == records.c.position)
            .where(records.c.origin == key[0], records.c.record_id == key[1])
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is not None and row.signed_entry is not None:
            self._note(bytes(row.signed_entry), int(row.rid))

    def _note(self, signed_bytes: bytes, rid: int) -> None:
        try:
            record = parse_signed(signed_bytes).record
        except EntryRefused:  # the store verified it; nothing else can be wrong here
            return
        header = record.header
        key = (header.origin, header.id)
        live = not header.tombstone
        if record.HasField("use_case"):
            uc = record.use_case
            facts = _UseCaseFacts(
                rid=rid,
                public_live=live and header.visibility == PUBLIC,
                techniques=tuple(uc.techniques),
                reuses=tuple((r.origin or header.origin, r.id) for r in uc.reuses),
            )
            old = self._use_cases.get(key)
            if old is not None:
                for ref in old.reuses:
                    self._reused_by.get(ref, set()).discard(key)
                for text in old.techniques:
                    self._by_technique.get(technique_key(text), set()).discard(old.rid)
            self._use_cases[key] = facts
            for ref in facts.reuses:
                self._reused_by.setdefault(ref, set()).add(key)
            for text in facts.techniques:
                self._by_technique.setdefault(technique_key(text), set()).add(rid)
        elif record.HasField("lesson"):
            old_target = self._lesson_target.pop(key, None)
            if old_target is not None:
                self._lessons_of.get(old_target, set()).discard(key)
            if record.lesson.HasField("use_case"):
                about = record.lesson.use_case
                target = (about.origin or header.origin, about.id)
                self._lesson_target[key] = target
                self._lessons_of.setdefault(target, set()).add(key)

    # -- answers (after refresh) ---------------------------------------------------------

    def techniques(self, limit: int = 200) -> list[tuple[str, int]]:
        """Techniques of PUBLIC live use cases, most used first: (the spelling most
        use cases use, number of use cases). Counted once per log position."""
        position, cached = self._technique_list
        if position == self._position:
            return cached[:limit]
        if not self._lock.acquire(blocking=False):
            return cached[:limit]  # being brought up to date: the last list will do
        try:
            use_cases = dict(self._use_cases)
            position = self._position
        finally:
            self._lock.release()
        counts: Counter[str] = Counter()
        spellings: dict[str, Counter[str]] = {}
        for facts in use_cases.values():
            if not facts.public_live:
                continue
            for text in set(facts.techniques):
                k = technique_key(text)
                counts[k] += 1
                spellings.setdefault(k, Counter())[text] += 1
        ranked = [
            (spellings[k].most_common(1)[0][0], n)
            for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        self._technique_list = (position, ranked)
        return ranked[:limit]

    def rids_with_technique(self, technique: str) -> list[int]:
        """Current-view ids (``records.rid``) of use cases naming ``technique`` (any
        visibility: the caller's query keeps PUBLIC live ones)."""
        with self._lock:
            return sorted(self._by_technique.get(technique_key(technique), ()))

    def lessons_about(self, use_case: Key) -> list[Key]:
        """Lessons whose newest version is about ``use_case`` (candidates)."""
        with self._lock:
            return sorted(self._lessons_of.get(use_case, ()))

    def reusing(self, solution: Key) -> list[Key]:
        """Use cases whose newest version reuses ``solution`` (candidates)."""
        with self._lock:
            return sorted(self._reused_by.get(solution, ()))
