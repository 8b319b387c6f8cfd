"""The store: every entry verbatim, plus indexed columns, a current view of each
record and full-text search. SQLAlchemy over SQLite (WAL) or PostgreSQL, same code.

Tables (models in :mod:`samverka.store.tables`, created by the Alembic migrations of
:mod:`samverka.store.migrations`):

- ``log``: one row per log position — the serialized SignedEntry exactly as received
  (its inner entry bytes are the signed originals) beside the columns reads filter
  on; or a *placeholder* (no bytes) for an entry this server was only ever shown
  redacted. Positions are allocated under the write lock, so they are gap-free and
  become visible in order: a reader never sees position 105 before 104. When the
  signed entry behind a placeholder arrives later (same origin, sequence and hash),
  it *fills* the placeholder's row in place: same position, so each origin's
  entries stay in sequence order in the log.
- ``feed_heads``: each origin's newest entry, written in the same transaction.
- ``records`` (+ ``records_fts``, see :mod:`samverka.store.fulltext`): the current view,
  the newest version of each record, for listing and search. A projection of the
  log: the record itself is read from the log row that wrote it.
- ``cursors``: how far this server has read each peer.

Tags (normalized) are packed into one column of ``log`` and ``records``
(:func:`samverka.store.indexing.pack_tags`): a tag filter is a substring test on a row
already being read, and appends write no tag rows.

Verifying and writing: verify a batch against :meth:`Store.snapshot` (one
consistent read), then :meth:`Store.append` it in one transaction. Append refuses
with :class:`~samverka.errors.StoreConflict` when a feed's head moved since (another
thread, process or hub replica appended first); nothing is stored and the caller
verifies again (``ingest`` and ``Publisher`` do). On PostgreSQL the same
transaction sends ``NOTIFY samverka_log, '<newest position>'``
(:data:`NOTIFY_CHANNEL`) so other replicas wake their subscribers.

Speed: appends insert through the driver's executemany; the per-entry lookups of
verification (``head``, ``entry_hash``, ``record_version``) and ``log_position``
are one indexed query each on the pooled driver connection. Figures and the
script that measures them: tests/store/perf_store.py.

Visibility: drafts never leave the node and MEMBERS records are for members only.
Reads that serve others pass ``member`` / ``include_drafts`` and get a
``RedactedEntry`` (origin, sequence, entry hash) in place of anything hidden, so
hash chains stay verifiable.

Thread-safe: one engine (connection pool) per Store; call it from any thread.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from samverka.closing import Closing
from samverka.errors import StoreConflict, StoreError
from samverka.protocol.entries import ParsedEntry, parse_signed
from samverka.protocol.erasure import HeldEntry, erasure_targets, is_erasure
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.signing import GENESIS_HASH
from samverka.protocol.verify import FeedHead, StandIn
from samverka.store import fulltext, migrations
from samverka.store.db import (
    BUSY_TIMEOUT_S,
    bulk_insert,
    create_engine,
    driver_execute,
    driver_executemany,
    driver_param,
    is_postgres,
    normalize_url,
    read_transaction,
    write_transaction,
)
from samverka.store.indexing import (
    RecordFacts,
    becomes_current,
    pack_tags,
    record_facts,
    search_document,
    tag_needle,
    unpack_tags,
)
from samverka.store.purge import Purger, erasure_observers
from samverka.store.search_text import query_words
from samverka.store.tables import cursors, erased, feed_heads, log, records, store_meta
from samverka.v1 import feed_pb2, feed_service_pb2, records_pb2

#: A result row of any shape.
AnyRow = Row[*tuple[Any, ...]]

#: How often (0.1 s apart) the purge after an erasure tries to truncate SQLite's WAL.
PURGE_CHECKPOINT_TRIES = 20
#: The busy timeout (ms) of each of those tries.
PURGE_BUSY_MS = 100

_log = logging.getLogger("samverka.store")

#: The store_meta key: how many rows of ``erased`` the last physical purge covered.
PURGED_MARK = "purged_erasures"


def _erased_count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(erased)).scalar_one())


def _purged_mark(conn: Connection) -> int:
    value = conn.execute(
        sa.select(store_meta.c.value).where(store_meta.c.key == PURGED_MARK)
    ).scalar()
    return int(value or 0)


#: PostgreSQL channel notified with the newest log position after every append.
NOTIFY_CHANNEL = "samverka_log"

#: A filtered read scans at most this many log positions per call (bounded work);
#: the page's next_position says where to continue.
DEFAULT_MAX_SCAN = 10_000

PUBLIC = records_pb2.VISIBILITY_PUBLIC
MEMBERS = records_pb2.VISIBILITY_MEMBERS
DRAFT = records_pb2.VISIBILITY_DRAFT


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """The current version of one record, as the store holds it."""

    origin: str
    record_id: str
    kind: int  # records_pb2.RecordKind
    version: int
    visibility: int  # records_pb2.Visibility
    tombstone: bool
    title: str
    position: int  # log position of the entry that wrote this version
    key_id: str
    timestamp_ms: int
    record: records_pb2.Record
    summary: str = ""
    service_area: int = 0  # records_pb2.ServiceArea
    status: int = 0  # records_pb2.UseCaseStatus (use cases and adoptions)
    risk_class: int = 0  # records_pb2.RiskClass (use cases)
    tags: tuple[str, ...] = ()  # normalized (lower-case, NFC)


@dataclass(frozen=True, slots=True)
class ErasedEntryRow:
    """An entry held erased, and the erasure that erased it."""

    origin: str
    sequence: int
    entry_hash: bytes
    record_id: str
    by_origin: str
    by_sequence: int
    erased_at_ms: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    origin: str
    record_id: str
    kind: int
    title: str
    summary: str
    visibility: int
    #: Relevance, higher is better (comparable within one result list only).
    rank: float


@dataclass(frozen=True, slots=True)
class LogPage:
    entries: list[feed_pb2.LogEntry] = field(default_factory=list)
    #: Resume after this position (the last one scanned, filtered or not).
    next_position: int = 0
    #: The newest position in the log when the page was read: a reader with
    #: next_position >= log_position has caught up.
    log_position: int = 0


def visible(visibility: int, *, member: bool, include_drafts: bool) -> bool:
    """May a caller see a record with this visibility?"""
    if visibility == PUBLIC:
        return True
    if visibility == DRAFT:
        return include_drafts
    return member


def _visible_set(*, member: bool, include_drafts: bool) -> list[int]:
    allowed: list[int] = [PUBLIC]
    if member:
        allowed += [MEMBERS, records_pb2.VISIBILITY_UNSPECIFIED]
    if include_drafts:
        allowed.append(DRAFT)
    return allowed


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Store(Closing):
    """A Samverka database. Thread-safe: readers run in parallel, writers (threads,
    processes, hub replicas) are serialized by the database's write lock."""

    def __init__(
        self,
        url: str,
        *,
        tracks: Sequence[str] = (migrations.STORE_TRACK,),
        pool_size: int = 8,
    ) -> None:
        self.url = normalize_url(url)
        if migrations.STORE_TRACK not in tracks:
            tracks = (migrations.STORE_TRACK, *tracks)
        self.tracks = tuple(tracks)
        try:
            self.engine = create_engine(self.url, pool_size=pool_size)
        except (ValueError, sa.exc.ArgumentError) as exc:
            raise StoreError(
                f"cannot use database URL {self._safe_url()}: {exc}",
                hint="use sqlite:///path/to/file.db or postgresql://user@host/db",
            ) from exc
        self.is_postgres = is_postgres(self.engine)
        #: Full-text statements by the shape of query (see search), and their SQL.
        self._search_statements: dict[tuple[Any, ...], sa.Select[*tuple[Any, ...]]] = {}
        self._compiled: dict[tuple[Any, ...], _CompiledSql] = {}
        #: The physical purge after erasures, off the append path (samverka.store.purge).
        self.purger = Purger(self)

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        tracks: Sequence[str] = (migrations.STORE_TRACK,),
    ) -> Store:
        """Open a database, applying pending migrations unless ``migrate=False``."""
        store = cls(url, tracks=tracks)
        if migrate:
            try:
                store.migrate()
            except BaseException:
                store.close()
                raise
        return store

    def migrate(self, *, upto: int | None = None) -> list[int]:
        """Apply pending migrations of this store's tracks; return the versions applied.

        ``upto`` stops the store's own track at that version and skips other tracks
        (for tests of upgrades).
        """
        tracks = (migrations.STORE_TRACK,) if upto is not None else self.tracks
        limits = {migrations.STORE_TRACK: upto} if upto is not None else None
        with self._errors("migrate"):
            applied = migrations.migrate(self.engine, tracks, upto=limits)
        return [m.version for m in applied]

    def schema_version(self, track: str = migrations.STORE_TRACK) -> int:
        """The newest migration applied to this database (0 for a new database)."""
        with self._errors("read the schema version of"):
            return migrations.applied_versions(self.engine).get(track, 0)

    def close(self) -> None:
        """Close the engine; first purge what an erasure of this process left pending
        when no background task does (a one-shot command purges before it exits)."""
        try:
            self.purger.finish()
        finally:
            self.engine.dispose()

    # -- FeedState (samverka.protocol.verify) ----------------------------------------
    # These three run once per entry during verification, so they skip SQLAlchemy's
    # statement machinery (about 100 µs a call here) for the driver: one indexed
    # lookup each, about 20 µs. Batch callers can use prefetch() instead.
    def head(self, origin: str) -> FeedHead | None:
        row = self._fetch_one(_SQL_HEAD, (origin,))
        if row is None:
            return None
        return FeedHead(row[0], row[1], bytes(row[2]), row[3])

    def entry_hash(self, origin: str, sequence: int) -> bytes | None:
        row = self._fetch_one(_SQL_ENTRY_HASH, (origin, sequence))
        return bytes(row[0]) if row else None

    def record_version(self, origin: str, record_id: str) -> int | None:
        row = self._fetch_one(_SQL_RECORD_VERSION, (origin, record_id))
        return int(row[0]) if row else None

    def stand_in(self, origin: str, sequence: int) -> StandIn | None:
        return _stand_in(origin, sequence, self._fetch_one(_SQL_STAND_IN, (origin, sequence)))

    def record_versions(self, origin: str, record_ids: Iterable[str]) -> dict[str, int]:
        """Current versions of several records of one origin, in one query."""
        ids = list(dict.fromkeys(record_ids))
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(records.c.record_id, records.c.version).where(
                    records.c.origin == origin, records.c.record_id.in_(ids)
                )
            ).all()
        return {r.record_id: int(r.version) for r in rows}

    @contextmanager
    def snapshot(self) -> Iterator[StoreSnapshot]:
        """A FeedState that reads one consistent state of the store, for verifying a batch.

        Without it, a writer committing between two lookups (the head, then a record
        version) can make verification see half of its batch and refuse an entry
        for the wrong reason. Verify inside, append after: append() then refuses
        with StoreConflict if a head moved since, and the caller verifies again.
        """
        raw = self.engine.raw_connection()
        driver: Any = raw.driver_connection
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            if self.is_postgres:
                driver.autocommit = True
                driver.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            else:
                driver.execute("BEGIN")  # WAL: the first read fixes the snapshot
        except dbapi_error as exc:
            raw.invalidate()
            raw.close()
            raise self._read_error(exc) from exc
        try:
            yield StoreSnapshot(
                driver,
                is_postgres=self.is_postgres,
                driver_error=dbapi_error,
                on_error=self._read_error,
            )
        finally:
            try:
                driver.execute("ROLLBACK")
                if self.is_postgres:
                    driver.autocommit = False
            except dbapi_error:
                raw.invalidate()
            raw.close()

    def prefetch(
        self, origins: Iterable[str], record_keys: Iterable[tuple[str, str]] = ()
    ) -> PrefetchedState:
        """A FeedState for verifying one batch, with heads and versions read in bulk.

        Anything not prefetched is still answered, by a query.
        """
        origin_list = list(dict.fromkeys(origins))
        keys = list(dict.fromkeys(record_keys))
        heads: dict[str, FeedHead | None] = dict.fromkeys(origin_list)
        versions: dict[tuple[str, str], int | None] = dict.fromkeys(keys)
        with read_transaction(self.engine) as conn:
            for chunk in _chunks(origin_list, 500):
                for row in conn.execute(_HEAD_COLUMNS.where(feed_heads.c.origin.in_(chunk))):
                    heads[row.origin] = _feed_head(row)
            for key, (_rid, version) in _records_by_key(conn, keys).items():
                versions[key] = version
        return PrefetchedState(self, heads, versions)

    # -- writing -------------------------------------------------------------
    def append(
        self,
        items: Sequence[ParsedEntry | feed_pb2.RedactedEntry],
        *,
        fills: Sequence[ParsedEntry] = (),
        cursor: tuple[str, int] | None = None,
    ) -> list[int]:
        """Store a verified batch in one transaction; return the log positions of ``items``.

        Items of one origin must continue its chain in order (verification has
        checked that against the state the caller read). A ``RedactedEntry`` is kept
        as a placeholder: it advances the head but has no bytes and no record.

        ``fills`` are signed entries verification found behind held placeholders
        (``Verdict.FILLS_STAND_IN``; placeholders of ``items`` count too): each is
        written into its placeholder's row, at the same position, and the record's
        current view and search index are brought up to it as if it had arrived in
        order: it becomes current only over an older version, never over a newer
        one (nor a newer tombstone). The log's end does not move for them.

        ``cursor`` (peer, position): also :meth:`set_cursor` in the same transaction,
        so a sync's cursor moves exactly when what it read is stored (and a live
        entry costs a follower one commit, not two).

        Raises StoreConflict when a head moved since verification, or a placeholder
        to fill is no longer there (another writer filled it); nothing is stored.
        """
        if not items and not fills:
            if cursor is not None:
                self.set_cursor(*cursor)
            return []
        integrity = (sa.exc.IntegrityError, self.engine.dialect.loaded_dbapi.IntegrityError)
        try:
            with self._errors("write to"), write_transaction(self.engine) as conn:
                stored_at = now_ms()
                positions = self._append(conn, items, fills, stored_at)
                erased_now, erasers = self._apply_erasures(conn, items, fills, stored_at)
                if cursor is not None:
                    _put_cursor(conn, cursor[0], cursor[1], stored_at)
                if self.is_postgres and positions:
                    driver_execute(
                        conn, "SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, str(positions[-1]))
                    )
        except integrity as exc:
            # The head check runs under the write lock, so this is a second line of
            # defence (e.g. a writer that bypassed the lock).
            raise StoreConflict(
                f"another writer stored the same entries first: {getattr(exc, 'orig', exc)}"
            ) from exc
        for eraser in erasers:
            erasure_observers("council" if eraser == HUB_ORIGIN else "own")
        if erased_now:
            # The content left the live rows with the commit; the old bytes in free
            # pages and the WAL are purged later, off this path (samverka.store.purge).
            self.purger.request()
        return positions

    def _append(
        self,
        conn: Connection,
        items: Sequence[ParsedEntry | feed_pb2.RedactedEntry],
        fills: Sequence[ParsedEntry],
        stored_at: int,
    ) -> list[int]:
        origins = list(dict.fromkeys(item.origin for item in items))
        held: dict[str, FeedHead] = {}
        for chunk in _chunks(origins, 500):
            marks = ", ".join("?" * len(chunk))
            for origin, sequence, entry_hash, timestamp_ms in driver_execute(
                conn, f"{_SQL_HEADS} WHERE origin IN ({marks})", chunk
            ):
                held[origin] = FeedHead(origin, sequence, bytes(entry_hash), timestamp_ms)
        heads = dict(held)

        first = _log_end(conn) + 1
        log_rows: list[dict[str, Any]] = []
        newest: dict[tuple[str, str], _ViewUpdate] = {}
        for offset, item in enumerate(items):
            position = first + offset
            origin, sequence = item.origin, item.sequence
            head = heads.get(origin)
            head_seq = head.sequence if head else 0
            head_hash = head.entry_hash if head else GENESIS_HASH
            newest_ts = head.timestamp_ms if head else None
            if sequence != head_seq + 1:
                raise StoreConflict(
                    f"{origin}#{sequence}: the feed's head is at sequence {head_seq} "
                    f"(expected {head_seq + 1}); another writer appended first"
                )
            if isinstance(item, feed_pb2.RedactedEntry):
                # A placeholder's date is unknown; the newest known one stays.
                entry_hash = bytes(item.entry_hash)
                log_rows.append(_placeholder_row(item, position, stored_at))
            else:
                if item.entry.previous_hash != head_hash:
                    raise StoreConflict(
                        f"{origin}#{sequence}: previous_hash does not match the held head; "
                        "another writer appended first"
                    )
                entry_hash = item.hash
                newest_ts = max(item.timestamp_ms, newest_ts or 0)
                facts = record_facts(item.record)
                log_rows.append(_entry_row(item, facts, position, stored_at))
                _note_view(newest, _ViewUpdate(position, item, facts))
            heads[origin] = FeedHead(origin, sequence, entry_hash, newest_ts)

        bulk_insert(conn, log, log_rows)
        last_position = {item.origin: first + i for i, item in enumerate(items)}
        head_rows = [
            {
                "origin": h.origin,
                "sequence": h.sequence,
                "entry_hash": h.entry_hash,
                "position": last_position[h.origin],
                "timestamp_ms": h.timestamp_ms,
            }
            for h in heads.values()
        ]
        _bulk_update(conn, feed_heads, "origin", [r for r in head_rows if r["origin"] in held])
        bulk_insert(conn, feed_heads, [r for r in head_rows if r["origin"] not in held])
        for fill in fills:  # after the inserts: a placeholder of this batch can be filled
            _note_view(newest, self._fill(conn, fill))
        self._update_view(conn, newest)
        return [first + i for i in range(len(items))]

    def _fill(self, conn: Connection, parsed: ParsedEntry) -> _ViewUpdate:
        """Write a signed entry into the placeholder row it fills; its view update.

        Fills are rare (a hidden entry recovered from another source), so one
        statement each: the row must still be the placeholder verification saw.
        """
        origin, sequence = parsed.origin, parsed.sequence
        rows = driver_execute(
            conn,
            "SELECT position, stored_at_ms FROM log WHERE origin = ? AND sequence = ? "
            "AND entry_hash = ? AND signed_entry IS NULL",
            (origin, sequence, parsed.hash),
        )
        found = rows[0] if rows else None
        if found is None:
            raise StoreConflict(
                f"{origin}#{sequence}: no placeholder with this entry's hash is held any "
                "more; another writer filled it first"
            )
        position = int(found[0])
        facts = record_facts(parsed.record)
        # The position keeps the time it was first stored: positions stay in time order.
        row = _entry_row(parsed, facts, position, int(found[1]))
        _bulk_update(conn, log, "position", [row])
        # The feed's newest known timestamp may rise (the placeholder was its head, or
        # only placeholders follow it); it never falls.
        driver_execute(
            conn,
            "UPDATE feed_heads SET timestamp_ms = ? WHERE origin = ? "
            "AND (timestamp_ms IS NULL OR timestamp_ms < ?)",
            (parsed.timestamp_ms, origin, parsed.timestamp_ms),
        )
        return _ViewUpdate(position, parsed, facts)

    def _update_view(self, conn: Connection, newest: dict[tuple[str, str], _ViewUpdate]) -> None:
        """Bring the current view, record tags and full-text index up to the batch."""
        if not newest:
            return
        existing = _records_by_key(conn, list(newest))
        next_rid = _max(conn, records.c.rid) + 1

        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        docs = []
        for key, update in newest.items():
            parsed, facts = update.parsed, update.facts
            if is_erasure(parsed.record):
                continue  # an erasure is no record to list or search (only its effect shows)
            held = existing.get(key)
            if not becomes_current(parsed.version, None if held is None else held[1]):
                continue  # the view already shows this or a newer version (a fill of an old one)
            record = parsed.record
            if held is None:
                rid = next_rid
                next_rid += 1
            else:
                rid = held[0]
            values = {
                "rid": rid,
                "origin": key[0],
                "record_id": key[1],
                "kind": record.header.kind,
                "version": parsed.version,
                "visibility": record.header.visibility,
                "tombstone": record.header.tombstone,
                "title": facts.title,
                "summary": facts.summary,
                "service_area": facts.service_area,
                "status": facts.status,
                "risk_class": facts.risk_class,
                "tags": pack_tags(facts.tags),
                "position": update.position,
                "key_id": parsed.signed.key_id,
                "timestamp_ms": parsed.entry.timestamp_ms,
            }
            (inserts if held is None else updates).append(values)
            if not record.header.tombstone:
                docs.append((rid, search_document(record)))

        bulk_insert(conn, records, inserts)
        if updates:
            _bulk_update(conn, records, "rid", updates)
            for chunk in _chunks([u["rid"] for u in updates], 500):
                fulltext.delete_documents(conn, chunk)
        fulltext.insert_documents(conn, docs)

    # -- erasure (issue 13, point 3; samverka.protocol.erasure) -------------------
    def _apply_erasures(
        self,
        conn: Connection,
        items: Sequence[ParsedEntry | feed_pb2.RedactedEntry],
        fills: Sequence[ParsedEntry],
        stored_at: int,
    ) -> tuple[int, list[str]]:
        """Erase what this batch's erasures name, and this batch's entries erased before
        they arrived; return how many held entries lost their content, and the feed of
        each erasure entry that named entries not erased before.

        In the write transaction, after the batch is stored: an erased entry's log row
        becomes a placeholder (hash kept, bytes gone), its record leaves the current
        view and the full-text index (an older version not erased becomes current), and
        the ``erased`` table keeps it erased: a signed copy arriving later, from any
        source, is stored as a placeholder too, and never fills it.
        """
        signed = [i for i in items if isinstance(i, ParsedEntry)] + list(fills)
        if not signed:
            return 0, []
        named: dict[tuple[str, int], tuple[bytes, str, str, int]] = {}
        for parsed in signed:
            for target in erasure_targets(parsed.record):
                if target.origin == parsed.origin and target.sequence >= parsed.sequence:
                    continue  # an erasure erases what came before it, never itself
                named.setdefault(
                    (target.origin, target.sequence),
                    (target.entry_hash, target.record_id, parsed.origin, parsed.sequence),
                )
        origins = list(dict.fromkeys(p.origin for p in signed))
        known: dict[tuple[str, int], bytes] = {}
        for chunk in _chunks(list(dict.fromkeys([*origins, *(k[0] for k in named)])), 500):
            marks = ", ".join("?" * len(chunk))
            for origin, sequence, entry_hash in driver_execute(
                conn,
                f"SELECT origin, sequence, entry_hash FROM erased WHERE origin IN ({marks})",
                chunk,
            ):
                known[(origin, int(sequence))] = bytes(entry_hash)
        fresh = [key for key in named if key not in known]
        new_rows: list[dict[str, Any]] = [
            {
                "origin": key[0],
                "sequence": key[1],
                "entry_hash": value[0],
                "record_id": value[1],
                "by_origin": value[2],
                "by_sequence": value[3],
                "erased_at_ms": stored_at,
            }
            for key in fresh
            for value in (named[key],)
        ]
        bulk_insert(conn, erased, new_rows)
        erasers = list(
            {(r["by_origin"], r["by_sequence"]): r["by_origin"] for r in new_rows}.values()
        )
        for key in fresh:
            known[key] = named[key][0]
        # What to erase now: the newly named, and signed entries of this batch named before.
        wanted = set(fresh)
        wanted |= {(p.origin, p.sequence) for p in signed if known.get((p.origin, p.sequence))}
        positions: list[int] = []
        views: set[tuple[str, str]] = set()
        for origin, sequence in sorted(wanted):
            found = driver_execute(
                conn,
                "SELECT position, record_id FROM log WHERE origin = ? AND sequence = ? "
                "AND entry_hash = ? AND signed_entry IS NOT NULL",
                (origin, sequence, known[(origin, sequence)]),
            )
            for position, record_id in found:
                positions.append(int(position))
                views.add((origin, str(record_id)))
        if not positions:
            return 0, erasers
        driver_executemany(
            conn,
            "UPDATE log SET signed_entry = NULL, redacted = "
            + ("TRUE" if self.is_postgres else "1")
            + ", key_id = '', record_id = '', kind = 0, version = 0, visibility = 0, "
            "service_area = 0, tombstone = "
            + ("FALSE" if self.is_postgres else "0")
            + ", tags = '', timestamp_ms = 0 WHERE position = "
            + driver_param(conn, "position"),
            [{"position": p} for p in positions],
        )
        self._forget_views(conn, views)
        return len(positions), erasers

    def _forget_views(self, conn: Connection, keys: set[tuple[str, str]]) -> None:
        """Rebuild the current view of records whose entries were erased: the newest
        version still held signed becomes current, or the record leaves the view."""
        for origin, record_id in sorted(keys):
            held = _records_by_key(conn, [(origin, record_id)]).get((origin, record_id))
            if held is not None:
                fulltext.delete_documents(conn, [held[0]])
                driver_execute(conn, "DELETE FROM records WHERE rid = ?", (held[0],))
            rows = driver_execute(
                conn,
                "SELECT position, signed_entry FROM log WHERE origin = ? AND record_id = ? "
                "AND signed_entry IS NOT NULL ORDER BY version DESC LIMIT 1",
                (origin, record_id),
            )
            if rows:
                parsed = parse_signed(bytes(rows[0][1]))
                update = _ViewUpdate(int(rows[0][0]), parsed, record_facts(parsed.record))
                self._update_view(conn, {(origin, record_id): update})

    def record_entries(self, origin: str, record_id: str) -> list[HeldEntry]:
        """The entries held signed of one record (what an erasure of it would name)."""
        rows = self._fetch_all_driver(
            "SELECT sequence, entry_hash, visibility, version FROM log WHERE origin = ? "
            "AND record_id = ? AND signed_entry IS NOT NULL ORDER BY sequence",
            (origin, record_id),
        )
        return [HeldEntry(int(r[0]), bytes(r[1]), int(r[2]), int(r[3])) for r in rows]

    def _fetch_all_driver(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._errors("read from"), self.engine.connect() as conn:
            return driver_execute(conn, sql, params)

    def erased_entries(self, origin: str | None = None) -> list[ErasedEntryRow]:
        """The entries held erased (all, or of one origin), in feed order."""
        stmt = sa.select(erased).order_by(erased.c.origin, erased.c.sequence)
        if origin is not None:
            stmt = stmt.where(erased.c.origin == origin)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            ErasedEntryRow(
                r.origin,
                int(r.sequence),
                bytes(r.entry_hash),
                r.record_id,
                r.by_origin,
                int(r.by_sequence),
                int(r.erased_at_ms),
            )
            for r in rows
        ]

    def purge_pending(self) -> bool:
        """Whether erased entries were recorded since the last physical purge (durable:
        also what a process that died before its purge left)."""
        with self._errors("read the purge mark of"), self.engine.connect() as conn:
            return _erased_count(conn) > _purged_mark(conn)

    def purge_erased(self, *, lock_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        """Make erased bytes leave the database files, not only its tables.

        SQLite: the full-text index merged into one segment (FTS5 'optimize': deleted
        documents' terms leave its b-tree), every page rewritten (VACUUM) and the WAL
        checkpointed and truncated, before and after. PostgreSQL: VACUUM FULL of the
        tables that held the content (an exclusive lock on each while it runs).
        Each lock is waited for at most ``lock_timeout_s``; then StoreError, and the
        purge stays pending. On success the ``purged_erasures`` mark moves to the
        erased rows counted before it began. Called off the append path
        (samverka.store.purge). What it cannot reach: backups, PostgreSQL's WAL
        archive and replicas' copies of it (docs/OPERATIONS.md, "Radering").
        """
        with self._errors("purge erased content from"):
            with self.engine.connect() as conn:
                covered = _erased_count(conn)
            if self.is_postgres:
                with self.engine.connect() as conn:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                    _wait_for_older_snapshots(conn, lock_timeout_s)
                    conn.exec_driver_sql(f"SET lock_timeout = {int(lock_timeout_s * 1000)}")
                    try:
                        for table in ("log", "records", fulltext.TABLE):
                            conn.exec_driver_sql(f"VACUUM FULL {table}")
                    finally:
                        conn.exec_driver_sql("RESET lock_timeout")
            else:
                self._purge_sqlite(lock_timeout_s)
            with write_transaction(self.engine) as conn:
                driver_execute(
                    conn,
                    "INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                    "DO UPDATE SET value = excluded.value WHERE store_meta.value < excluded.value",
                    (PURGED_MARK, covered),
                )

    def _purge_sqlite(self, lock_timeout_s: float) -> None:
        raw = self.engine.raw_connection()
        try:
            driver: Any = raw.driver_connection
            # Writers hold the lock briefly; a long one makes this give up, not wait.
            driver.execute(f"PRAGMA busy_timeout = {int(lock_timeout_s * 1000)}")
            driver.execute(f"INSERT INTO {fulltext.TABLE}({fulltext.TABLE}) VALUES ('optimize')")
            driver.commit()
            driver.execute("VACUUM")
            # A checkpoint waits the whole busy timeout for readers: ask briefly.
            driver.execute(f"PRAGMA busy_timeout = {PURGE_BUSY_MS}")
            # A reader holding an old snapshot keeps the WAL from being truncated
            # (its frames hold the erased pages): wait for it, a little.
            for _ in range(PURGE_CHECKPOINT_TRIES):
                busy, _frames, _done = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    break
                time.sleep(0.1)
            else:
                raise StoreError(
                    "the write-ahead log could not be truncated: a reader held it",
                    hint="the purge is tried again later; or stop the node "
                    "and run `sqlite3 samverka.db 'PRAGMA wal_checkpoint(TRUNCATE)'`",
                )
        finally:
            try:
                raw.driver_connection.execute(  # type: ignore[union-attr]
                    f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}"
                )
            finally:
                raw.close()

    # -- reading the log -----------------------------------------------------
    def heads(self, origins: Sequence[str] = ()) -> list[FeedHead]:
        """Every origin's head (or those of ``origins``), ordered by origin."""
        stmt = _HEAD_COLUMNS
        if origins:
            stmt = stmt.where(feed_heads.c.origin.in_(list(origins)))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(feed_heads.c.origin)).all()
        return [_feed_head(r) for r in rows]

    def log_position(self) -> int:
        """The newest position in the log (0 when empty). Cheap enough to poll."""
        row = self._fetch_one(_SQL_LOG_POSITION, ())
        return int(row[0]) if row and row[0] is not None else 0

    def read_log(
        self,
        after: int,
        limit: int,
        *,
        entry_filter: feed_service_pb2.EntryFilter | None = None,
        member: bool = True,
        include_drafts: bool = False,
        max_scan: int = DEFAULT_MAX_SCAN,
    ) -> LogPage:
        """Up to ``limit`` log entries after position ``after``, in log order.

        Entries the caller may not see come as RedactedEntry (drafts unless
        ``include_drafts``; MEMBERS records unless ``member``; stored placeholders).
        A filter by origin keeps those origins' chains whole, redactions included.
        A filter by kind, service area, tag or time (``since_ms <= t < until_ms``;
        0 is unbounded) returns only visible matching entries, scans at most
        ``max(max_scan, limit)`` positions, and may return fewer than ``limit``
        entries before the end: continue from ``next_position`` until it reaches
        ``log_position``.
        """
        f = entry_filter or feed_service_pb2.EntryFilter()
        content = bool(f.kinds or f.service_areas or f.tags or f.since_ms or f.until_ms)
        stmt = sa.select(*_LOG_ENTRY_COLUMNS).where(log.c.position > after)
        window: int | None = None
        if f.origins or content:
            window = after + max(max_scan, limit)
            stmt = stmt.where(log.c.position <= window)
        if f.origins:
            stmt = stmt.where(log.c.origin.in_(list(f.origins)))
        if content:
            stmt = stmt.where(
                log.c.redacted == sa.false(),
                log.c.visibility.in_(_visible_set(member=member, include_drafts=include_drafts)),
            )
            if f.kinds:
                stmt = stmt.where(log.c.kind.in_(list(f.kinds)))
            if f.service_areas:
                stmt = stmt.where(log.c.service_area.in_(list(f.service_areas)))
            if f.since_ms:
                stmt = stmt.where(log.c.timestamp_ms >= f.since_ms)
            if f.until_ms:
                stmt = stmt.where(log.c.timestamp_ms < f.until_ms)
            if f.tags:
                stmt = stmt.where(self._has_any_tag(log.c.tags, f.tags))
        stmt = stmt.order_by(log.c.position).limit(max(limit, 0))

        with read_transaction(self.engine) as conn:
            end = _log_end(conn)
            rows = conn.execute(stmt).all() if limit > 0 else []
        entries = [_log_entry(row, member=member, include_drafts=include_drafts) for row in rows]
        if limit > 0 and len(rows) == limit:
            next_position = rows[-1].position
        elif limit <= 0:
            next_position = after
        else:
            next_position = end if window is None else min(window, end)
            next_position = max(next_position, after)
        return LogPage(entries=entries, next_position=next_position, log_position=end)

    def feed_entries(self, origin: str, after_sequence: int = 0) -> list[bytes]:
        """One origin's stored SignedEntry bytes in sequence order, drafts included.

        For local use only (it does not redact). Placeholders have no bytes and are
        left out; use :meth:`feed_items` for anything that leaves this node.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(log.c.signed_entry)
                .where(
                    log.c.origin == origin,
                    log.c.sequence > after_sequence,
                    log.c.signed_entry.is_not(None),
                )
                .order_by(log.c.sequence)
            ).all()
        return [bytes(r.signed_entry) for r in rows]

    def signed_entry(self, origin: str, sequence: int) -> bytes | None:
        """One held entry's SignedEntry bytes (None for a placeholder or one not held).
        For local use only, like :meth:`feed_entries`."""
        row = self._fetch_one(
            "SELECT signed_entry FROM log WHERE origin = ? AND sequence = ?", (origin, sequence)
        )
        return bytes(row[0]) if row and row[0] is not None else None

    def feed_items(
        self,
        origin: str,
        after_sequence: int = 0,
        limit: int = 500,
        *,
        member: bool = True,
        include_drafts: bool = False,
    ) -> list[feed_pb2.LogEntry]:
        """One origin's feed in sequence order, hidden entries redacted.

        What a node pushes to the hub or exports to a bundle: the chain stays whole
        and drafts never leave.
        """
        stmt = (
            sa.select(*_LOG_ENTRY_COLUMNS)
            .where(log.c.origin == origin, log.c.sequence > after_sequence)
            .order_by(log.c.sequence)
            .limit(max(limit, 0))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [_log_entry(r, member=member, include_drafts=include_drafts) for r in rows]

    def feed_digest(self, origin: str) -> bytes:
        """SHA-256 over the origin's entry hashes in sequence order (placeholders too).

        Two stores hold the same history of a feed exactly when the digests match.
        """
        digest = hashlib.sha256()
        with read_transaction(self.engine) as conn:
            result = conn.execute(
                sa.select(log.c.sequence, log.c.entry_hash)
                .where(log.c.origin == origin)
                .order_by(log.c.sequence)
            )
            for row in result:
                digest.update(row.sequence.to_bytes(8, "big"))
                digest.update(bytes(row.entry_hash))
        return digest.digest()

    # -- records ---------------------------------------------------------------
    def get_record(self, origin: str, record_id: str) -> StoredRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                _RECORD_WITH_ENTRY.where(
                    records.c.origin == origin, records.c.record_id == record_id
                )
            ).first()
        return _stored_record(row) if row else None

    def list_records(
        self,
        *,
        kinds: Sequence[int] = (),
        origins: Sequence[str] = (),
        include_tombstoned: bool = False,
        service_areas: Sequence[int] = (),
        statuses: Sequence[int] = (),
        tags: Sequence[str] = (),
        member: bool = True,
        include_drafts: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[StoredRecord]:
        """Current records, newest change first. Defaults suit the node's own user."""
        stmt = _RECORD_WITH_ENTRY
        if kinds:
            stmt = stmt.where(records.c.kind.in_(list(kinds)))
        if origins:
            stmt = stmt.where(records.c.origin.in_(list(origins)))
        if not include_tombstoned:
            stmt = stmt.where(records.c.tombstone == sa.false())
        if service_areas:
            stmt = stmt.where(records.c.service_area.in_(list(service_areas)))
        if statuses:
            stmt = stmt.where(records.c.status.in_(list(statuses)))
        if tags:
            stmt = stmt.where(self._has_any_tag(records.c.tags, tags))
        if not (member and include_drafts):
            allowed = _visible_set(member=member, include_drafts=include_drafts)
            stmt = stmt.where(records.c.visibility.in_(allowed))
        stmt = stmt.order_by(records.c.position.desc()).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [_stored_record(r) for r in rows]

    def search(
        self,
        text: str,
        *,
        limit: int = 20,
        kinds: Sequence[int] = (),
        origins: Sequence[str] = (),
        member: bool = True,
        include_drafts: bool = True,
        service_areas: Sequence[int] = (),
    ) -> list[SearchHit]:
        """Live records matching every word of ``text`` (each as a prefix), best first.

        Any text is safe: it is never interpreted as query syntax (see
        :mod:`samverka.store.search_text`); text without words finds nothing.
        """
        words = query_words(text)
        if not words or limit <= 0:
            return []
        limit = min(limit, 1000)
        restricted = not (member and include_drafts)
        allowed = _visible_set(member=member, include_drafts=include_drafts)
        # SQLite: words in most of the index are left out of the ranking (fulltext.common_words).
        common = [] if self.is_postgres else self._common_words(words)
        ranked = [w for w in words if w not in common]
        filters: dict[str, Any] = {}
        if kinds:
            filters["kinds"] = list(kinds)
        if origins:
            filters["origins"] = list(origins)
        if service_areas:
            filters["areas"] = list(service_areas)
        visible = tuple(allowed) if restricted else ()
        candidates = max(fulltext.SEARCH_CANDIDATES, limit)
        if ranked:
            q = fulltext.query_text(self.is_postgres, ranked)
            # With common words left out, every ranked candidate comes back, to be
            # checked for them in rank order.
            rows = self._search_rows(
                visible, filters, True, q, candidates if common else limit, candidates
            )
        else:
            rows = self._search_rows(
                visible, filters, False, fulltext.exact_query(common), limit, candidates
            )
        if common and ranked:
            held = self._holding(rows, common, limit)
            if len(held) < limit and len(rows) == candidates:
                # Too few of the ranked candidates hold the common words: the newest
                # records holding every word (the common ones whole) fill up, unranked.
                q = f"{q} {fulltext.exact_query(common)}"
                seen = {r[-1] for r in held}
                more = self._search_rows(visible, filters, False, q, limit, candidates)
                held += [tuple(r) for r in more if r[-1] not in seen][: limit - len(held)]
            rows = held
        return [
            SearchHit(
                origin=r[0],
                record_id=r[1],
                kind=r[2],
                title=r[3],
                summary=r[4],
                visibility=r[5],
                rank=float(r[6]),
            )
            for r in rows
        ]

    # -- small state -------------------------------------------------------------
    def get_cursor(self, peer: str) -> int:
        """How far this server has read ``peer``'s log (0: from the start)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(cursors.c.position).where(cursors.c.peer == peer)
            ).scalar()
        return int(value) if value is not None else 0

    def set_cursor(self, peer: str, position: int) -> None:
        with self._errors("write to"), write_transaction(self.engine, lock=False) as conn:
            _put_cursor(conn, peer, position, now_ms())

    # -- helpers -------------------------------------------------------------
    def _has_any_tag(self, packed: sa.Column[str], tags: Iterable[str]) -> sa.ColumnElement[bool]:
        """Rows whose packed tags hold any of ``tags`` (a substring test per tag)."""
        find = sa.func.strpos if self.is_postgres else sa.func.instr
        return sa.or_(*(find(packed, needle) > 0 for needle in {tag_needle(t) for t in tags}))

    def _fetch_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row of a single-statement read, straight through the pooled driver
        connection. ``sql`` uses ``?`` placeholders; psycopg gets ``%s``."""
        raw = self.engine.raw_connection()
        driver: Any = raw.driver_connection
        try:
            if self.is_postgres:
                # Autocommit for this one statement: no BEGIN, and no ROLLBACK round
                # trip when the pool takes the connection back.
                driver.autocommit = True
                row = _query_one(driver, True, sql, params)
                driver.autocommit = False
            else:
                row = _query_one(driver, False, sql, params)
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raw.invalidate()  # its state is unknown now; the pool opens a fresh one
            raise self._read_error(exc) from exc
        finally:
            raw.close()
        return row

    def _compiled_search(
        self, shape: tuple[Any, ...], stmt: sa.Select[*tuple[Any, ...]]
    ) -> _CompiledSql:
        compiled = self._compiled.get(shape)
        if compiled is None:
            done = stmt.compile(
                dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True}
            )
            compiled = self._compiled[shape] = _CompiledSql(
                str(done), dict(done.params), tuple(done.positiontup or ())
            )
        return compiled

    def _search_rows(
        self,
        visible: tuple[int, ...],
        filters: dict[str, Any],
        ranked: bool,
        q: str,
        limit: int,
        candidates: int,
    ) -> Sequence[Any]:
        """Rows of the search statement of this shape (fulltext.search_template), built
        once per shape with its values bound and reused by every search."""
        shape = (visible, "kinds" in filters, "origins" in filters, "areas" in filters, ranked)
        stmt = self._search_statements.get(shape)
        if stmt is None:
            where: list[sa.ColumnElement[bool]] = [records.c.tombstone == sa.false()]
            if visible:
                where.append(records.c.visibility.in_(visible))
            if "kinds" in filters:
                where.append(records.c.kind.in_(sa.bindparam("kinds", expanding=True)))
            if "origins" in filters:
                where.append(records.c.origin.in_(sa.bindparam("origins", expanding=True)))
            if "areas" in filters:
                where.append(records.c.service_area.in_(sa.bindparam("areas", expanding=True)))
            stmt = self._search_statements[shape] = fulltext.search_template(
                self.is_postgres, where, ranked=ranked
            )
        params = {"q": q, "limit": limit, "candidates": candidates, **filters}
        if filters:
            with self.engine.connect() as conn:
                if self.is_postgres:
                    # Planned for this query's words: see _fetch_all(prepare=False).
                    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
                return conn.execute(stmt, params).all()
        # The usual search (no filter lists): its SQL compiled once and run on the
        # driver, like the FeedState lookups; SQLAlchemy's execution path cost more
        # than SQLite's own search of a rare word.
        return self._fetch_all(self._compiled_search(shape, stmt), params, prepare=False)

    def _common_words(self, words: list[str]) -> list[str]:
        """SQLite: the words common in the index (fulltext.common_words)."""
        with self._sqlite_driver() as driver:
            newest = driver.execute("SELECT max(rid) FROM records").fetchone()[0] or 0
            return fulltext.common_words(driver, words, int(newest))

    def _holding(self, rows: Sequence[Any], words: list[str], limit: int) -> list[tuple[Any, ...]]:
        """The first ``limit`` of ranked ``rows`` (rid last) whose text holds every word
        of ``words`` (as a prefix), checked a batch at a time in rank order."""
        kept: list[tuple[Any, ...]] = []
        with self._sqlite_driver() as driver:
            for start in range(0, len(rows), limit):
                batch = rows[start : start + limit]
                held = fulltext.holding(driver, [int(r[-1]) for r in batch], words)
                kept += [tuple(r) for r in batch if int(r[-1]) in held]
                if len(kept) >= limit:
                    break
        return kept[:limit]

    @contextmanager
    def _sqlite_driver(self) -> Iterator[Any]:
        raw = self.engine.raw_connection()
        try:
            yield raw.driver_connection
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raw.invalidate()
            raise self._read_error(exc) from exc
        finally:
            raw.close()

    def _fetch_all(
        self, sql: _CompiledSql, values: dict[str, Any], *, prepare: bool | None = None
    ) -> list[tuple[Any, ...]]:
        """Every row of a compiled statement, on the pooled driver connection.

        ``prepare=False`` (PostgreSQL): never a prepared statement, so the server plans
        the statement for the values at hand every time; a search's plan depends on how
        common its words are (walk the newest records backwards, or the GIN index), and
        the generic plan psycopg's prepared statements end with served a word in every
        record through the GIN index: 200 ms instead of 2 over 100,000 records."""
        params = {**sql.defaults, **values}
        args: Any = tuple(params[name] for name in sql.positions) if sql.positions else params
        raw = self.engine.raw_connection()
        driver: Any = raw.driver_connection
        try:
            if self.is_postgres:
                driver.autocommit = True
                rows = [
                    tuple(r) for r in driver.execute(sql.text, args, prepare=prepare).fetchall()
                ]
                driver.autocommit = False
            else:
                rows = [tuple(r) for r in driver.execute(sql.text, args).fetchall()]
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raw.invalidate()
            raise self._read_error(exc) from exc
        finally:
            raw.close()
        return rows

    def _read_error(self, exc: Exception) -> StoreError:
        return StoreError(
            f"cannot read the database {self._safe_url()}: {exc}",
            hint="check that the database is reachable and migrated (samverka node init)",
        )

    def _safe_url(self) -> str:
        try:
            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "<invalid URL>"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn driver errors (unreachable server, locked or read-only file) into StoreError.

        Both as SQLAlchemy wraps them and as the driver raises them (the append path
        sends its statements straight to the driver).
        """
        try:
            yield
        except (sa.exc.OperationalError, self.engine.dialect.loaded_dbapi.OperationalError) as exc:
            raise StoreError(
                f"cannot {action} the database {self._safe_url()}: {getattr(exc, 'orig', exc)}",
                hint="check the [store] url in the node's config and that the database "
                "is reachable and writable",
            ) from exc


class StoreSnapshot:
    """FeedState lookups inside one read transaction (made by Store.snapshot)."""

    def __init__(
        self,
        driver: Any,
        *,
        is_postgres: bool,
        driver_error: type[Exception],
        on_error: Callable[[Exception], StoreError],
    ) -> None:
        self._driver = driver
        self._pg = is_postgres
        self._driver_error = driver_error
        self._on_error = on_error
        #: The signed (not placeholder) entries entry_hash found: stand_in() is asked
        #: right after it for every duplicate, and answers these without a query.
        self._signed: set[tuple[str, int]] = set()
        #: Heads and record versions read ahead for a batch (prefetch); None: none held.
        self._heads: dict[str, FeedHead | None] = {}
        self._versions: dict[tuple[str, str], int | None] = {}

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        try:
            return _query_one(self._driver, self._pg, sql, params)
        except self._driver_error as exc:
            raise self._on_error(exc) from exc

    def prefetch(self, origins: Iterable[str], record_keys: Iterable[tuple[str, str]]) -> None:
        """Read the heads of ``origins`` and the versions of ``record_keys`` (origin,
        record_id) in a few queries; head() and record_version() then answer them
        without one. Verifying a batch asks for each origin's head and each record's
        version: one query each otherwise, about 800 for a batch of 500 entries from
        290 feeds: 800 round trips to PostgreSQL (hub ingest of 3,000 entries: 600 ->
        450 us an entry). SQLite answers each from its page cache in microseconds,
        as fast as the bulk read, so there this does nothing.
        """
        if not self._pg:
            return
        origin_list = [o for o in dict.fromkeys(origins) if o not in self._heads]
        keys = [k for k in dict.fromkeys(record_keys) if k not in self._versions]
        try:
            for chunk in _chunks(origin_list, 500):
                self._heads.update(dict.fromkeys(chunk))
                marks = ", ".join("?" * len(chunk))
                sql = f"{_SQL_HEADS} WHERE origin IN ({marks})"
                for row in _query_all(self._driver, self._pg, sql, tuple(chunk)):
                    self._heads[row[0]] = FeedHead(row[0], row[1], bytes(row[2]), row[3])
            for chunk in _chunks(keys, 400):
                self._versions.update(dict.fromkeys(chunk))
                params = tuple(part for key in chunk for part in key)
                for _rid, origin, record_id, version in _query_all(
                    self._driver, self._pg, _records_by_key_sql(len(chunk)), params
                ):
                    self._versions[(origin, record_id)] = int(version)
        except self._driver_error as exc:
            raise self._on_error(exc) from exc

    def head(self, origin: str) -> FeedHead | None:
        if origin in self._heads:
            return self._heads[origin]
        row = self._one(_SQL_HEAD, (origin,))
        return None if row is None else FeedHead(row[0], row[1], bytes(row[2]), row[3])

    def entry_hash(self, origin: str, sequence: int) -> bytes | None:
        row = self._one(_SQL_ENTRY_HASH_KIND, (origin, sequence))
        if row is None:
            return None
        if not row[1]:
            self._signed.add((origin, sequence))
        return bytes(row[0])

    def record_version(self, origin: str, record_id: str) -> int | None:
        key = (origin, record_id)
        if key in self._versions:
            return self._versions[key]
        row = self._one(_SQL_RECORD_VERSION, key)
        return int(row[0]) if row else None

    def stand_in(self, origin: str, sequence: int) -> StandIn | None:
        # One snapshot: a row seen signed stays signed for its whole life.
        if (origin, sequence) in self._signed:
            return None
        return _stand_in(origin, sequence, self._one(_SQL_STAND_IN, (origin, sequence)))


class PrefetchedState:
    """A FeedState whose heads and record versions were read in bulk (Store.prefetch).

    Use it for one batch, wrapped in a BatchState; it does not see later writes.
    """

    def __init__(
        self,
        store: Store,
        heads: dict[str, FeedHead | None],
        versions: dict[tuple[str, str], int | None],
    ) -> None:
        self._store = store
        self._heads = heads
        self._versions = versions

    def head(self, origin: str) -> FeedHead | None:
        if origin in self._heads:
            return self._heads[origin]
        return self._store.head(origin)

    def entry_hash(self, origin: str, sequence: int) -> bytes | None:
        return self._store.entry_hash(origin, sequence)

    def record_version(self, origin: str, record_id: str) -> int | None:
        key = (origin, record_id)
        if key in self._versions:
            return self._versions[key]
        return self._store.record_version(origin, record_id)

    def stand_in(self, origin: str, sequence: int) -> StandIn | None:
        return self._store.stand_in(origin, sequence)


#: A current record with the signed entry that wrote it (the record is read from there).
_RECORD_WITH_ENTRY = sa.select(records, log.c.signed_entry).join_from(
    records, log, log.c.position == records.c.position
)

_SQL_HEADS = "SELECT origin, sequence, entry_hash, timestamp_ms FROM feed_heads"
_SQL_HEAD = f"{_SQL_HEADS} WHERE origin = ?"
_SQL_ENTRY_HASH = "SELECT entry_hash FROM log WHERE origin = ? AND sequence = ?"
_SQL_ENTRY_HASH_KIND = "SELECT entry_hash, redacted FROM log WHERE origin = ? AND sequence = ?"
_SQL_RECORD_VERSION = "SELECT version FROM records WHERE origin = ? AND record_id = ?"
_SQL_LOG_POSITION = "SELECT MAX(position) FROM log"
#: A placeholder at (origin, sequence), the hash held before it, and the timestamps of
#: the nearest signed entries before and after it (each an index walk along
#: uq_log_origin_sequence that stops at the first signed row).
_SQL_STAND_IN = (
    "SELECT l.entry_hash,"
    " (SELECT p.entry_hash FROM log p WHERE p.origin = l.origin AND p.sequence = l.sequence - 1),"
    " (SELECT b.timestamp_ms FROM log b WHERE b.origin = l.origin AND b.sequence < l.sequence"
    "  AND b.signed_entry IS NOT NULL ORDER BY b.sequence DESC LIMIT 1),"
    " (SELECT a.timestamp_ms FROM log a WHERE a.origin = l.origin AND a.sequence > l.sequence"
    "  AND a.signed_entry IS NOT NULL ORDER BY a.sequence LIMIT 1)"
    " FROM log l WHERE l.origin = ? AND l.sequence = ? AND l.signed_entry IS NULL"
    # An erased entry is never filled again: its signed copy is a duplicate.
    " AND NOT EXISTS (SELECT 1 FROM erased e WHERE e.origin = l.origin"
    " AND e.sequence = l.sequence)"
)

_HEAD_COLUMNS = sa.select(
    feed_heads.c.origin, feed_heads.c.sequence, feed_heads.c.entry_hash, feed_heads.c.timestamp_ms
)


def _stand_in(origin: str, sequence: int, row: tuple[Any, ...] | None) -> StandIn | None:
    if row is None:
        return None
    held_hash, before, not_before, not_after = row
    return StandIn(
        origin,
        sequence,
        bytes(held_hash),
        GENESIS_HASH if before is None else bytes(before),
        None if not_before is None else int(not_before),
        None if not_after is None else int(not_after),
    )


def _feed_head(row: AnyRow) -> FeedHead:
    ts = row.timestamp_ms
    return FeedHead(row.origin, row.sequence, bytes(row.entry_hash), None if ts is None else ts)


@dataclass(frozen=True, slots=True)
class _CompiledSql:
    """A statement compiled for the store's driver: its text, the values compiled into
    it (constant lists), and the order of positional parameters (SQLite) if any."""

    text: str
    defaults: dict[str, Any]
    positions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _ViewUpdate:
    """The newest version of one record in a batch, for the current view."""

    position: int
    parsed: ParsedEntry
    facts: RecordFacts


def _note_view(newest: dict[tuple[str, str], _ViewUpdate], update: _ViewUpdate) -> None:
    """Keep ``update`` if it is the newest version of its record seen in the batch."""
    key = (update.parsed.origin, update.parsed.record_id)
    held = newest.get(key)
    if becomes_current(update.parsed.version, None if held is None else held.parsed.version):
        newest[key] = update


def _bulk_update(conn: Connection, table: sa.Table, key: str, rows: list[dict[str, Any]]) -> None:
    """UPDATE many rows by their key column, like :func:`~samverka.store.db.bulk_insert`."""
    if not rows:
        return
    sets = ", ".join(f"{c} = {driver_param(conn, c)}" for c in rows[0] if c != key)
    driver_executemany(
        conn, f"UPDATE {table.name} SET {sets} WHERE {key} = {driver_param(conn, key)}", rows
    )


def _put_cursor(conn: Connection, peer: str, position: int, now: int) -> None:
    """Insert or move ``peer``'s cursor (SQLite and PostgreSQL share the upsert syntax)."""
    driver_execute(
        conn,
        "INSERT INTO cursors (peer, position, updated_at_ms) VALUES (?, ?, ?) "
        "ON CONFLICT (peer) DO UPDATE SET position = excluded.position, "
        "updated_at_ms = excluded.updated_at_ms",
        (peer, position, now),
    )


def _records_by_key(
    conn: Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(rid, version) of the held records among ``keys`` (origin, record_id).

    A join against a VALUES list: SQLite (3.40) scans the whole table for a row-value
    ``(origin, record_id) IN (...)``, but probes the unique index from a join.
    """
    held: dict[tuple[str, str], tuple[int, int]] = {}
    for chunk in _chunks(keys, 400):
        params = [part for key in chunk for part in key]
        for rid, origin, record_id, version in driver_execute(
            conn, _records_by_key_sql(len(chunk)), params
        ):
            held[(origin, record_id)] = (int(rid), int(version))
    return held


def _records_by_key_sql(count: int) -> str:
    """rid, origin, record_id, version of the held records among ``count`` (origin,
    record_id) pairs given as ``?`` parameters (see _records_by_key)."""
    values = ", ".join(["(?, ?)"] * count)
    return (
        "SELECT r.rid, r.origin, r.record_id, r.version "
        f"FROM (VALUES {values}) AS k JOIN records AS r "
        "ON r.origin = k.column1 AND r.record_id = k.column2"
    )


def _query_one(
    driver: Any, is_postgres: bool, sql: str, params: tuple[Any, ...]
) -> tuple[Any, ...] | None:
    """Run one ``?``-style statement on a driver connection; its first row."""
    row = driver.execute(sql.replace("?", "%s") if is_postgres else sql, params).fetchone()
    return None if row is None else tuple(row)


def _query_all(
    driver: Any, is_postgres: bool, sql: str, params: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    """Every row of one ``?``-style statement on a driver connection."""
    return [
        tuple(row) for row in driver.execute(sql.replace("?", "%s") if is_postgres else sql, params)
    ]


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _max(conn: Connection, column: sa.Column[int]) -> int:
    value = driver_execute(conn, f"SELECT MAX({column.name}) FROM {column.table.name}")[0][0]
    return 0 if value is None else int(value)


def _log_end(conn: Connection) -> int:
    return _max(conn, log.c.position)


def _entry_row(
    parsed: ParsedEntry, facts: RecordFacts, position: int, stored_at: int
) -> dict[str, Any]:
    header = parsed.record.header
    return {
        "position": position,
        "origin": parsed.origin,
        "sequence": parsed.sequence,
        "entry_hash": parsed.hash,
        "signed_entry": parsed.signed_bytes(),
        "redacted": False,
        "key_id": parsed.signed.key_id,
        "timestamp_ms": parsed.entry.timestamp_ms,
        "record_id": header.id,
        "kind": header.kind,
        "version": header.version,
        "visibility": header.visibility,
        "service_area": facts.service_area,
        "tombstone": header.tombstone,
        "tags": pack_tags(facts.tags),
        "stored_at_ms": stored_at,
    }


def _placeholder_row(item: feed_pb2.RedactedEntry, position: int, stored_at: int) -> dict[str, Any]:
    return {
        "position": position,
        "origin": item.origin,
        "sequence": item.sequence,
        "entry_hash": bytes(item.entry_hash),
        "signed_entry": None,
        "redacted": True,
        "key_id": "",
        "timestamp_ms": 0,
        "record_id": "",
        "kind": 0,
        "version": 0,
        "visibility": 0,
        "service_area": 0,
        "tombstone": False,
        "tags": "",
        "stored_at_ms": stored_at,
    }


#: The log columns :func:`_log_entry` reads.
_LOG_ENTRY_COLUMNS = (
    log.c.position,
    log.c.origin,
    log.c.sequence,
    log.c.entry_hash,
    log.c.signed_entry,
    log.c.visibility,
)


def _log_entry(row: AnyRow, *, member: bool, include_drafts: bool) -> feed_pb2.LogEntry:
    entry = feed_pb2.LogEntry(position=row.position)
    if row.signed_entry is not None and visible(
        row.visibility, member=member, include_drafts=include_drafts
    ):
        entry.signed.MergeFromString(bytes(row.signed_entry))
    else:
        entry.redacted.origin = row.origin
        entry.redacted.sequence = row.sequence
        entry.redacted.entry_hash = bytes(row.entry_hash)
    return entry


def _stored_record(row: AnyRow) -> StoredRecord:
    return StoredRecord(
        origin=row.origin,
        record_id=row.record_id,
        kind=row.kind,
        version=row.version,
        visibility=row.visibility,
        tombstone=bool(row.tombstone),
        title=row.title,
        position=row.position,
        key_id=row.key_id,
        timestamp_ms=row.timestamp_ms,
        record=parse_signed(bytes(row.signed_entry)).record,
        summary=row.summary,
        service_area=row.service_area,
        status=row.status,
        risk_class=row.risk_class,
        tags=unpack_tags(row.tags),
    )


#: What VACUUM FULL must wait for, given ``x``, an xid taken after the erasure committed:
#: - another session of this database whose oldest snapshot (or own transaction) began
#:   before ``x``: it may still see the erased rows, so VACUUM FULL would copy them
#:   ("recently dead") into the new files and the bytes would stay;
#: - a transaction older than ``x`` in *any* database of the server: transaction ids
#:   are the server's, so VACUUM FULL's own snapshot reaches back to it, and to that
#:   snapshot the erased rows are recently dead too (another service's transaction on
#:   a shared server kept the bytes; tests/store/test_erasure.py). A transaction that
#:   starts later has a newer xid, so once none is left the wait is over.
_OLDER_SNAPSHOTS = (
    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND ("
    "(datname = current_database() AND backend_xmin IS NOT NULL "
    "AND age(backend_xmin) >= age(%(x)s::xid)) OR "
    "(backend_xid IS NOT NULL AND age(backend_xid) >= age(%(x)s::xid)))"
)


def _wait_for_older_snapshots(conn: Any, timeout_s: float) -> None:
    """Wait, at most ``timeout_s`` (and at least a second), until nothing the purge must
    respect (_OLDER_SNAPSHOTS) is left from before it began; else StoreError, and the
    purge stays pending and is tried again later (as for a lock)."""
    xid = conn.exec_driver_sql("SELECT pg_current_xact_id()::text").scalar_one()
    deadline = time.monotonic() + max(timeout_s, 1.0)
    while True:
        older = conn.exec_driver_sql(
            _OLDER_SNAPSHOTS, {"x": str(int(xid) & 0xFFFFFFFF)}
        ).scalar_one()
        if not older:
            return
        if time.monotonic() >= deadline:
            raise StoreError(
                f"{older} other session(s) hold a snapshot or a transaction from before the "
                "purge (a snapshot of this database, a transaction of any database on the "
                "server); the erased bytes would survive VACUUM FULL, so the purge waits "
                "for them to end and is tried again"
            )
        time.sleep(0.05)
