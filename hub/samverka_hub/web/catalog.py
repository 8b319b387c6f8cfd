"""The catalog's read model: what the web pages, the JSON API and the CSV export show.

**PUBLIC records only, decided here and nowhere else.** Every query on the current
view carries :data:`PUBLIC_LIVE` (visibility PUBLIC — so drafts and MEMBERS records
never match — and not retracted), and the signed entry of a record is read only
through the same condition. A record that exists but is not PUBLIC is answered
exactly like one that does not exist. Coverage counts PUBLIC records only
(``member_view=False`` in :mod:`samverka_hub.stats`).

Reads are the store's tables through SQLAlchemy Core, like
:mod:`samverka_hub.insight`; full-text search is the store's
(:func:`samverka.store.fulltext.search_statement`: every word a literal prefix, Swedish
on both engines, the newest 500 matches ranked) with the catalog's filters added.
What the current view has no column for (techniques, lessons of a use case, reuse)
comes from :class:`~samverka_hub.web.projection.Projection`.

Every function blocks: call it from a worker thread (FastAPI runs plain ``def``
routes in its thread pool).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from samverka.protocol.directory import VerifiedDirectory
from samverka.protocol.entries import parse_signed
from samverka.protocol.kommuner import counties, is_origin, kommun_name, kommuner
from samverka.records.profile import Suggestion, check_rules, held_profiles, suggestions
from samverka.store import fulltext
from samverka.store.search_text import query_words
from samverka.store.store import Store, StoredRecord
from samverka.store.tables import log, records
from samverka.v1 import records_pb2

from samverka_hub.insight import active_members, read_profiles, read_tallies
from samverka_hub.stats import Coverage, compute_coverage
from samverka_hub.web.projection import Key, Projection
from samverka_hub.web.signature import KeyRings, SignatureCheck, check_signature

R = records_pb2
T = TypeVar("T")
PUBLIC = R.VISIBILITY_PUBLIC
USE_CASE = R.RECORD_KIND_USE_CASE
LESSON = R.RECORD_KIND_LESSON
SOLUTION = R.RECORD_KIND_SOLUTION
RECOMMENDATION = R.RECORD_KIND_RECOMMENDATION
ADOPTION = R.RECORD_KIND_ADOPTION
PROFILE = R.RECORD_KIND_KOMMUN_PROFILE

#: What people search and browse (adoptions are shown on the records they adopt).
BROWSABLE_KINDS: tuple[int, ...] = (USE_CASE, LESSON, SOLUTION, RECOMMENDATION)

#: The one condition every catalog read of the current view carries.
PUBLIC_LIVE = sa.and_(records.c.visibility == PUBLIC, records.c.tombstone == sa.false())

#: Full-text search ranks at most this many (the newest) matches; see samverka.store.fulltext.
MAX_TEXT_MATCHES = fulltext.RANK_CANDIDATES
#: Browsing deeper than this many records is refused (use filters or the API's export).
MAX_OFFSET = 10_000
#: Answers kept by Catalog._memo (each valid until the log moves).
MEMO_ENTRIES = 512
#: The newest log positions a feed without a kommun or län filter looks through.
FEED_SCAN = 20_000
#: How long a computed coverage is reused although the log moved (seconds).
COVERAGE_MAX_AGE = 10.0


class BadFilter(ValueError):
    """A filter value that names nothing real (an unknown län, kommun or area)."""


@dataclass(frozen=True, slots=True)
class Filters:
    """A search or browse request. Empty fields do not filter."""

    text: str = ""
    kinds: tuple[int, ...] = ()
    areas: tuple[int, ...] = ()
    statuses: tuple[int, ...] = ()
    risks: tuple[int, ...] = ()
    technique: str = ""
    #: A län code ("20"): records of its kommuner.
    county: str = ""
    #: An origin: a kommunkod, or "0000" for the council.
    kommun: str = ""

    def check(self) -> None:
        if self.county and self.county not in counties():
            raise BadFilter(f"okänt län: {self.county[:8]!r}")
        if self.kommun and not is_origin(self.kommun):
            raise BadFilter(f"okänd kommunkod: {self.kommun[:8]!r}")
        for kind in self.kinds:
            if kind not in BROWSABLE_KINDS:
                raise BadFilter(f"okänd posttyp: {kind}")

    def origins(self) -> list[str] | None:
        """The origins the filters allow (None: any)."""
        allowed: set[str] | None = None
        if self.county:
            allowed = {k.code for k in kommuner().values() if k.county_code == self.county}
        if self.kommun:
            allowed = {self.kommun} if allowed is None else allowed & {self.kommun}
        return None if allowed is None else sorted(allowed)

    @property
    def empty(self) -> bool:
        return self == Filters()


@dataclass(frozen=True, slots=True)
class Summary:
    """One record in a result list."""

    origin: str
    record_id: str
    kind: int
    title: str
    summary: str
    service_area: int
    status: int
    risk_class: int
    version: int
    #: When the current version was signed (Unix ms).
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class ResultPage:
    items: list[Summary]
    #: Matches in all (for full-text search: among the newest MAX_TEXT_MATCHES ranked).
    total: int
    page: int
    per_page: int
    #: True when a full-text search found as many matches as it ranks at most.
    capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.total, MAX_OFFSET) // self.per_page))


@dataclass(frozen=True, slots=True)
class RecordView:
    """A PUBLIC live record with what its page shows around it."""

    summary: Summary
    record: records_pb2.Record
    signed_bytes: bytes
    signature: SignatureCheck
    #: PUBLIC live lessons about this use case.
    lessons: list[Summary] = field(default_factory=list)
    #: Kommuner with a PUBLIC live adoption of this solution: (kommunkod, status).
    adopters: list[tuple[str, int]] = field(default_factory=list)
    #: PUBLIC live use cases that reuse this solution.
    reused_by: list[Summary] = field(default_factory=list)
    #: Records this one refers to (a lesson's use case, a solution's use cases, a
    #: use case's reused solutions, a recommendation's references), PUBLIC live only.
    references: list[Summary] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A PUBLIC live record in a feed, with its signature checked again."""

    summary: Summary
    signature: SignatureCheck


@dataclass(frozen=True, slots=True)
class Retracted:
    """A PUBLIC record its origin has retracted (the page says so; no content)."""

    origin: str
    record_id: str
    kind: int
    version: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Adopted:
    """A kommun's PUBLIC adoption, with the adopted solution when it is PUBLIC."""

    solution_origin: str
    solution_id: str
    status: int
    solution: Summary | None


@dataclass(frozen=True, slots=True)
class KommunView:
    code: str
    shared: ResultPage
    #: Shared records by kind (PUBLIC live).
    counts: dict[int, int]
    adopted: list[Adopted]
    #: Solutions of this kommun that others adopted: (solution, adopters).
    reused: list[tuple[Summary, int]]
    member: bool


@dataclass(frozen=True, slots=True)
class Proven:
    """A PUBLIC solution in production in several kommuner."""

    solution: Summary
    #: Kommuner (other than its origin) with a PUBLIC live adoption in production.
    in_production: int
    #: Every PUBLIC live adoption by another kommun, any status.
    adoptions: int
    adopters: tuple[str, ...]


_SUMMARY_COLUMNS = (
    records.c.origin,
    records.c.record_id,
    records.c.kind,
    records.c.title,
    records.c.summary,
    records.c.service_area,
    records.c.status,
    records.c.risk_class,
    records.c.version,
    records.c.timestamp_ms,
)


def _summary(row: Any) -> Summary:
    return Summary(
        origin=row.origin,
        record_id=row.record_id,
        kind=int(row.kind),
        title=row.title,
        summary=row.summary,
        service_area=int(row.service_area),
        status=int(row.status),
        risk_class=int(row.risk_class),
        version=int(row.version),
        timestamp_ms=int(row.timestamp_ms),
    )


class Catalog:
    """The catalog over one hub store. Thread-safe; share one per process."""

    def __init__(
        self,
        store: Store,
        directory: Callable[[], VerifiedDirectory | None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.directory = directory
        self.projection = Projection(store)
        self._rings = KeyRings()
        self._clock = clock
        self._coverage_lock = threading.Lock()
        self._coverage: _CountedCoverage | None = None
        self._memo_lock = threading.Lock()
        self._memos: dict[Hashable, tuple[int, Any]] = {}

    def _memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, reused until the log moves (an append can change any answer).

        For answers that cost a scan (a count of matches, the proven solutions);
        at most MEMO_ENTRIES are kept.
        """
        position = self.store.log_position()
        with self._memo_lock:
            held = self._memos.get(key)
        if held is not None and held[0] == position:
            kept: T = held[1]
            return kept
        value = compute()
        with self._memo_lock:
            if len(self._memos) >= MEMO_ENTRIES:
                self._memos.clear()
            self._memos[key] = (position, value)
        return value

    # -- search and browse -----------------------------------------------------------

    def _conditions(self, f: Filters) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = [PUBLIC_LIVE]
        origins = f.origins()
        if f.kinds and origins is not None:
            # One kommun's (or one län's) records are few: let the (origin, id)
            # index find them (see unindexed()).
            where.append(unindexed(records.c.kind).in_(list(f.kinds)))
        elif f.kinds:
            where.append(records.c.kind.in_(list(f.kinds)))
        else:
            # Every kind but adoptions and kommun profiles (validation refuses kinds it
            # does not know; a profile is shown on its kommun's page, not as a hit).
            # Said as "NOT IN" on purpose: SQLite would answer "kind IN (1, 2, 3, 4)"
            # through the kind index, one row lookup per record, even to find the
            # newest 20 — several times slower than walking the table.
            where.append(records.c.kind.not_in([ADOPTION, PROFILE]))
        if f.areas:
            where.append(records.c.service_area.in_(list(f.areas)))
        if f.statuses:
            where.append(records.c.status.in_(list(f.statuses)))
        if f.risks:
            where.append(records.c.risk_class.in_(list(f.risks)))
        if origins is not None:
            where.append(records.c.origin.in_(origins))
        if f.technique.strip():
            self.projection.refresh()
            rids = self.projection.rids_with_technique(f.technique)
            where.append(self._rid_in(rids))
        return where

    def _rid_in(
        self, rids: list[int], rid: sa.ColumnElement[int] = records.c.rid
    ) -> sa.ColumnElement[bool]:
        """``records.rid IN rids`` as one bound parameter, however many ids (``rid``:
        the column, or an expression of it)."""
        if not rids:
            return sa.false()
        if self.store.is_postgres:
            array = sa.bindparam("rids", rids, type_=sa.ARRAY(sa.BigInteger))
            return rid == sa.func.any(array)
        listed: sa.Select[tuple[Any]] = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.bindparam("rids", "[" + ",".join(map(str, rids)) + "]"))
        )
        return rid.in_(listed.scalar_subquery())

    def search(self, f: Filters, *, page: int = 1, per_page: int = 20) -> ResultPage:
        """PUBLIC live records matching ``f``: best first with text, else newest first."""
        f.check()
        page = max(1, page)
        offset = (page - 1) * per_page
        if offset >= MAX_OFFSET:
            return ResultPage([], 0, page, per_page)
        where = self._conditions(f)
        words = query_words(f.text)
        if f.text.strip() and not words:
            return ResultPage([], 0, page, per_page)
        with self.store.engine.connect() as conn:
            if words:
                stmt = fulltext.search_statement(conn, words, limit=MAX_TEXT_MATCHES, where=where)
                ranked = [(r.origin, r.record_id) for r in conn.execute(stmt)]
                keys = ranked[offset : offset + per_page]
                by_key = self._summaries(conn, keys)
                items = [by_key[k] for k in keys if k in by_key]
                return ResultPage(
                    items,
                    len(ranked),
                    page,
                    per_page,
                    capped=len(ranked) >= MAX_TEXT_MATCHES,
                )
            count = sa.select(sa.func.count()).select_from(records).where(*where)
            total = self._memo(("count", f), lambda: int(conn.execute(count).scalar_one()))
            rows = conn.execute(
                sa.select(*_SUMMARY_COLUMNS)
                .where(*where)
                .order_by(records.c.rid.desc())
                .limit(per_page)
                .offset(offset)
            ).all()
        return ResultPage([_summary(r) for r in rows], total, page, per_page)

    def export(self, f: Filters, *, limit: int) -> list[Summary]:
        """Up to ``limit`` PUBLIC live records matching ``f``, in the page order."""
        f.check()
        words = query_words(f.text)
        if f.text.strip() and not words:
            return []
        where = self._conditions(f)
        with self.store.engine.connect() as conn:
            if words:
                stmt = fulltext.search_statement(
                    conn, words, limit=min(limit, MAX_TEXT_MATCHES), where=where
                )
                keys = [(r.origin, r.record_id) for r in conn.execute(stmt)]
                by_key = self._summaries(conn, keys)
                return [by_key[k] for k in keys if k in by_key]
            rows = conn.execute(
                sa.select(*_SUMMARY_COLUMNS)
                .where(*where)
                .order_by(records.c.rid.desc())
                .limit(limit)
            ).all()
        return [_summary(r) for r in rows]

    def newest(self, f: Filters, *, limit: int) -> list[FeedItem]:
        """The ``limit`` PUBLIC live records matching ``f`` (no text) whose current
        version was written last, newest first, each with its signature checked again
        against the directory in force (for the Atom feeds, :mod:`.feeds`).

        Reused until the log or the directory moves: feed readers poll, often.
        """
        f.check()
        if f.text:
            raise BadFilter("ett flöde kan inte filtreras på sökord")
        directory = self.directory()
        version = directory.version if directory is not None else 0
        return self._memo(("newest", f, limit, version), lambda: self._newest(f, limit, directory))

    def _newest(
        self, f: Filters, limit: int, directory: VerifiedDirectory | None
    ) -> list[FeedItem]:
        # Walk the log from its end (its primary key) and keep the entries that are a
        # record's current version: the newest changes come first without sorting the
        # whole current view (which has no index on position: ~1 s at 100,000 records,
        # reading every record's signed entry on SQLite). What the log row knows filters
        # before the record is looked up; "log.position + 0" keeps the log the outer
        # loop (SQLite would otherwise scan every record and look the log up by it).
        prefilter = [
            log.c.visibility == PUBLIC,
            log.c.redacted == sa.false(),
            log.c.tombstone == sa.false(),
            # Browsable kinds only: not adoptions, not kommun profiles (kind 6).
            log.c.kind.in_(list(f.kinds or BROWSABLE_KINDS)),
        ]
        if f.areas:
            prefilter.append(log.c.service_area.in_(list(f.areas)))
        origins = f.origins()
        if origins is not None:
            prefilter.append(log.c.origin.in_(origins))  # the (origin, position) index
        else:
            # A feed is news: without an origin to narrow it by index, it looks at the
            # newest FEED_SCAN log positions only, so a filter that matches nothing costs
            # a bounded walk (about 0.1 s), not one of the whole log (0.5 s at 100,000).
            end = self.store.log_position()
            prefilter.append(log.c.position > end - FEED_SCAN)
        current = sa.and_(
            records.c.origin == log.c.origin,
            records.c.record_id == log.c.record_id,
            records.c.position == log.c.position + 0,
        )
        # The record's conditions with no index of records usable (+ 0): else SQLite
        # takes the records matching a kind or an area as the outer loop, and the log
        # (not indexable by "position + 0") is scanned once per record: seconds.
        kept = [
            PUBLIC_LIVE,
            unindexed(records.c.kind).in_(list(f.kinds or BROWSABLE_KINDS)),
        ]
        if f.areas:
            kept.append(unindexed(records.c.service_area).in_(list(f.areas)))
        if f.statuses:
            kept.append(records.c.status.in_(list(f.statuses)))
        if f.risks:
            kept.append(records.c.risk_class.in_(list(f.risks)))
        if f.technique.strip():
            self.projection.refresh()
            rids = self.projection.rids_with_technique(f.technique)
            kept.append(self._rid_in(rids, unindexed(records.c.rid)))
        stmt = (
            sa.select(*_SUMMARY_COLUMNS, log.c.signed_entry)
            .select_from(log)
            .join(records, current)
            .where(*prefilter, *kept)
            .order_by(log.c.position.desc())
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            FeedItem(
                _summary(r),
                check_signature(bytes(r.signed_entry), directory, rings=self._rings),
            )
            for r in rows
        ]

    def _summaries(
        self,
        conn: sa.Connection,
        keys: Sequence[Key],
        *,
        kinds: Sequence[int] = BROWSABLE_KINDS,
    ) -> dict[Key, Summary]:
        """PUBLIC live records among ``keys`` (a superset is read, then narrowed)."""
        wanted = set(keys)
        if not wanted:
            return {}
        # Kinds are checked here, not in SQL: with "kind IN (…)" SQLite prefers the
        # kind index to the (origin, record_id) one and visits every record.
        rows = conn.execute(
            sa.select(*_SUMMARY_COLUMNS).where(
                PUBLIC_LIVE,
                records.c.origin.in_(sorted({o for o, _ in wanted})),
                records.c.record_id.in_(sorted({r for _, r in wanted})),
            )
        ).all()
        found = {(r.origin, r.record_id): _summary(r) for r in rows if r.kind in kinds}
        return {k: s for k, s in found.items() if k in wanted}

    def public_records(self, kinds: Sequence[int], *, limit: int) -> list[records_pb2.Record]:
        """The newest ``limit`` PUBLIC live records of ``kinds``, decoded (for the exports,
        :mod:`.exports`); the same list object until the log moves."""

        def compute() -> list[records_pb2.Record]:
            held = self.store.list_records(
                kinds=kinds, member=False, include_drafts=False, limit=limit
            )
            return [s.record for s in held if s.visibility == PUBLIC and not s.tombstone]

        return self._memo(("public_records", tuple(kinds), limit), compute)

    def public_record(self, origin: str, record_id: str) -> records_pb2.Record | None:
        """One PUBLIC live record, decoded; None when it is not (or not PUBLIC)."""
        held = PublicHoldings(self.store).get_record(origin, record_id)
        return held.record if held is not None else None

    def techniques(self, limit: int = 200) -> list[tuple[str, int]]:
        """Techniques named by PUBLIC live use cases, most used first (suggestions:
        while the projection is being built, what it knows so far)."""
        self.projection.refresh(wait=False)
        return self.projection.techniques(limit)

    # -- one record ----------------------------------------------------------------------

    def record(self, origin: str, record_id: str) -> RecordView | Retracted | None:
        """A PUBLIC record: its view, or Retracted, or None (absent or not PUBLIC)."""
        stmt = (
            sa.select(*_SUMMARY_COLUMNS, records.c.tombstone, log.c.signed_entry)
            .join_from(records, log, log.c.position == records.c.position)
            .where(
                records.c.origin == origin,
                records.c.record_id == record_id,
                records.c.visibility == PUBLIC,
                records.c.kind.in_([*BROWSABLE_KINDS, ADOPTION]),
            )
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(stmt).first()
            if row is None:
                return None
            summary = _summary(row)
            if row.tombstone:
                return Retracted(origin, record_id, summary.kind, summary.version, row.timestamp_ms)
            signed_bytes = bytes(row.signed_entry)
            parsed = parse_signed(signed_bytes).record
            signature = check_signature(signed_bytes, self.directory(), rings=self._rings)
            key = (origin, record_id)
            lessons: list[Summary] = []
            adopters: list[tuple[str, int]] = []
            reused_by: list[Summary] = []
            if summary.kind == USE_CASE:
                self.projection.refresh()
                found = self._summaries(conn, self.projection.lessons_about(key), kinds=[LESSON])
                lessons = sorted(found.values(), key=lambda s: -s.timestamp_ms)
            if summary.kind == SOLUTION:
                adopters = self._adopters(conn, key)
                self.projection.refresh()
                found = self._summaries(conn, self.projection.reusing(key), kinds=[USE_CASE])
                reused_by = sorted(found.values(), key=lambda s: (s.origin, s.record_id))
            refs = _references(parsed)
            by_key = self._summaries(conn, refs)
            references = [by_key[k] for k in refs if k in by_key]
        return RecordView(
            summary=summary,
            record=parsed,
            signed_bytes=signed_bytes,
            signature=signature,
            lessons=lessons,
            adopters=adopters,
            reused_by=reused_by,
            references=references,
        )

    def signed_entry(self, origin: str, record_id: str) -> bytes | None:
        """The stored SignedEntry of a PUBLIC live record's current version, else None."""
        stmt = (
            sa.select(log.c.signed_entry)
            .join_from(records, log, log.c.position == records.c.position)
            .where(
                records.c.origin == origin,
                records.c.record_id == record_id,
                PUBLIC_LIVE,
                records.c.kind.in_([*BROWSABLE_KINDS, ADOPTION]),
            )
        )
        with self.store.engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        return bytes(value) if value is not None else None

    def _adopters(self, conn: sa.Connection, solution: Key) -> list[tuple[str, int]]:
        """Kommuner (not the origin) with a PUBLIC live adoption of ``solution``."""
        # The current view's title of an adoption is "ORIGIN/ID" of the adopted
        # solution (samverka.store.indexing).
        rows = conn.execute(
            sa.select(records.c.origin, sa.func.max(records.c.status).label("status"))
            .where(
                PUBLIC_LIVE,
                records.c.kind == ADOPTION,
                records.c.title == f"{solution[0]}/{solution[1]}",
                records.c.origin != solution[0],
            )
            .group_by(records.c.origin)
            .order_by(records.c.origin)
        ).all()
        return [(r.origin, int(r.status)) for r in rows]

    # -- a kommun ------------------------------------------------------------------------

    def kommun(self, code: str, *, page: int = 1, per_page: int = 20) -> KommunView:
        """What ``code`` shares (PUBLIC live) and has adopted (reused until the log moves)."""
        if not is_origin(code):
            raise BadFilter(f"okänd kommunkod: {code[:8]!r}")
        directory = self.directory()
        member = directory is not None and directory.is_active(code)
        return self._memo(
            ("kommun", code, page, per_page, member),
            lambda: self._kommun(code, page=page, per_page=per_page, member=member),
        )

    def _kommun(self, code: str, *, page: int, per_page: int, member: bool) -> KommunView:
        shared = self.search(Filters(kommun=code), page=page, per_page=per_page)
        with self.store.engine.connect() as conn:
            counts = {
                int(r.kind): int(r.n)
                for r in conn.execute(
                    sa.select(records.c.kind, sa.func.count().label("n"))
                    .where(PUBLIC_LIVE, records.c.origin == code)
                    .group_by(records.c.kind)
                )
            }
            adoption_rows = conn.execute(
                sa.select(records.c.title, records.c.status)
                .where(PUBLIC_LIVE, unindexed(records.c.kind) == ADOPTION, records.c.origin == code)
                .order_by(records.c.rid.desc())
            ).all()
            refs = [_split_ref(r.title) for r in adoption_rows]
            solutions = self._summaries(conn, [k for k in refs if k], kinds=[SOLUTION])
            adopted = [
                Adopted(ref[0], ref[1], int(row.status), solutions.get(ref))
                for ref, row in zip(refs, adoption_rows, strict=True)
                if ref is not None and ref[0] != code
            ]
            adopted_counts = self._memo("adopters", self._count_adopters)
            reuse_counts = {k: n for k, n in adopted_counts.items() if k[0] == code}
            own = self._summaries(conn, list(reuse_counts), kinds=[SOLUTION])
        reused = sorted(
            ((s, reuse_counts[k]) for k, s in own.items()),
            key=lambda sn: (-sn[1], sn[0].title),
        )
        return KommunView(code, shared, counts, adopted, reused, member)

    def _count_adopters(self) -> dict[Key, int]:
        """Every adopted solution → how many other kommuner adopted it (PUBLIC live
        adoptions), in one GROUP BY over the adoptions."""
        adopted_from = sa.func.substr(records.c.title, 1, 4)
        stmt = (
            sa.select(records.c.title, sa.func.count(sa.distinct(records.c.origin)).label("n"))
            .where(PUBLIC_LIVE, records.c.kind == ADOPTION, records.c.origin != adopted_from)
            .group_by(records.c.title)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return {k: int(r.n) for r in rows if (k := _split_ref(r.title))}

    # -- proven elsewhere ------------------------------------------------------------------

    def proven(
        self,
        *,
        min_kommuner: int = 2,
        areas: Sequence[int] = (),
        limit: int = 50,
    ) -> list[Proven]:
        """PUBLIC solutions in production in at least ``min_kommuner`` other kommuner
        (PUBLIC live adoptions with status production), most adopted first.

        Counted again only when the log moved (one GROUP BY over the adoptions, and
        one query for who adopted the solutions listed).
        """
        key = (max(1, min_kommuner), tuple(sorted(areas)), limit)
        return self._memo(("proven", key), lambda: self._count_proven(*key))

    def _count_proven(self, min_kommuner: int, areas: tuple[int, ...], limit: int) -> list[Proven]:
        production = R.USE_CASE_STATUS_PRODUCTION
        # The current view's title of an adoption is "ORIGIN/ID" of the adopted
        # solution (samverka.store.indexing); an origin is always four characters.
        adopted_from = sa.func.substr(records.c.title, 1, 4)
        not_own = records.c.origin != adopted_from
        in_production = sa.func.count(
            sa.distinct(sa.case((records.c.status == production, records.c.origin)))
        )
        stmt = (
            sa.select(
                records.c.title,
                in_production.label("in_production"),
                sa.func.count(sa.distinct(records.c.origin)).label("adoptions"),
            )
            .where(PUBLIC_LIVE, records.c.kind == ADOPTION, not_own)
            .group_by(records.c.title)
            .having(in_production >= min_kommuner)
            .order_by(in_production.desc(), records.c.title)
        )
        with self.store.engine.connect() as conn:
            counted = conn.execute(stmt).all()
            keys = [k for r in counted if (k := _split_ref(r.title))]
            solutions = self._summaries(conn, keys, kinds=[SOLUTION])
            chosen: list[tuple[Summary, int, int]] = []
            for r in counted:
                ref = _split_ref(r.title)
                solution = solutions.get(ref) if ref else None
                if solution is None or (areas and solution.service_area not in areas):
                    continue
                chosen.append((solution, int(r.in_production), int(r.adoptions)))
                if len(chosen) == limit:
                    break
            adopters: dict[str, list[str]] = {}
            if chosen:
                titles = [f"{s.origin}/{s.record_id}" for s, _, _ in chosen]
                for row in conn.execute(
                    sa.select(records.c.title, records.c.origin)
                    .where(
                        PUBLIC_LIVE,
                        records.c.kind == ADOPTION,
                        records.c.status == production,
                        records.c.title.in_(titles),
                        not_own,
                    )
                    .distinct()
                    .order_by(records.c.origin)
                ):
                    adopters.setdefault(row.title, []).append(row.origin)
        return [
            Proven(s, n, total, tuple(adopters.get(f"{s.origin}/{s.record_id}", ())))
            for s, n, total in chosen
        ]

    # -- "Passar er" ---------------------------------------------------------------------

    def profiled_kommuner(self) -> list[str]:
        """Kommuner with a PUBLIC profile, by name (the choices of "Passar er")."""

        def compute() -> list[str]:
            codes = held_profiles(PublicHoldings(self.store))
            return sorted(codes, key=lambda c: kommun_name(c).casefold())

        return self._memo("profiled", compute)

    def suits(self, code: str, *, limit: int = 20) -> list[Suggestion]:
        """ "Passar er" for ``code``, ranked by the node's own ranking
        (:func:`samverka.records.profile.suggestions`) over PUBLIC live records only."""
        if not is_origin(code):
            raise BadFilter(f"okänd kommunkod: {code[:8]!r}")
        return self._memo(
            ("suits", code, limit),
            lambda: suggestions(PublicHoldings(self.store), code, limit=limit),
        )

    def rule_marks(self, code: str, keys: Sequence[Key]) -> dict[Key, list[str]]:
        """Records among ``keys`` that break ``code``'s published AI rules (risk class,
        personal data, DPIA), each with the reasons in Swedish; the node's own check
        (:func:`samverka.records.profile.check_rules`), over PUBLIC records only."""
        if not is_origin(code):
            raise BadFilter(f"okänd kommunkod: {code[:8]!r}")
        return self._memo(("marks", code, tuple(keys)), lambda: self._rule_marks(code, keys))

    def _rule_marks(self, code: str, keys: Sequence[Key]) -> dict[Key, list[str]]:
        holdings = PublicHoldings(self.store)
        marks: dict[Key, list[str]] = {}
        for key in keys:
            held = holdings.get_record(*key)
            if held is None or held.kind not in (USE_CASE, SOLUTION):
                continue
            check = check_rules(holdings, code, held)
            if check.breaches:
                marks[key] = [b.text for b in check.breaches]
        return marks

    # -- coverage --------------------------------------------------------------------------

    def coverage(self) -> Coverage:
        """Coverage of all 290 kommuner from PUBLIC records (member_view=False).

        Counted again when the log or the directory moved, but at most every
        COVERAGE_MAX_AGE seconds: a picture a few seconds old is still the picture.
        """
        directory = self.directory()
        version = directory.version if directory is not None else 0
        with self._coverage_lock:  # one count at a time; the others wait and reuse it
            held = self._coverage
            now = self._clock()
            if held is not None and held.version == version:
                if now - held.at < COVERAGE_MAX_AGE:
                    return held.coverage
                if held.position == self.store.log_position():
                    self._coverage = _CountedCoverage(now, held.position, version, held.coverage)
                    return held.coverage
            position = self.store.log_position()
            coverage = compute_coverage(
                read_tallies(self.store),
                active_members(directory),
                member_view=False,
                profiles=read_profiles(self.store, member_view=False),
            )
            self._coverage = _CountedCoverage(now, position, version, coverage)
            return coverage


@dataclass(frozen=True, slots=True)
class _CountedCoverage:
    at: float
    position: int
    version: int
    coverage: Coverage


class PublicHoldings:
    """A hub store seen as the catalog sees it: PUBLIC live records only (what
    :mod:`samverka.records.profile` ranks and checks over, for "Passar er")."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get_record(self, origin: str, record_id: str) -> StoredRecord | None:
        held = self.store.get_record(origin, record_id)
        if held is None or held.tombstone or held.visibility != PUBLIC:
            return None
        return held

    def list_records(
        self, *, kinds: Sequence[int] = (), origins: Sequence[str] = ()
    ) -> list[StoredRecord]:
        held = self.store.list_records(kinds=kinds, origins=origins)
        return [s for s in held if s.visibility == PUBLIC]


def unindexed(column: sa.Column[int]) -> sa.ColumnElement[int]:
    """``column + 0``: the same value, but no index on ``column`` can answer for it.

    SQLite plans without statistics and takes an equality on an indexed column as
    selective, so "kind = 5 AND origin = '2029'" walks every adoption through the
    kind index (about 35 ms at 100,000 records) instead of one kommun's records
    through the (origin, record_id) index (about 4 ms).
    """
    return column + 0


def _split_ref(text: str) -> Key | None:
    """ "ORIGIN/ID" (an adoption's title in the current view) → (origin, id)."""
    origin, sep, record_id = text.partition("/")
    return (origin, record_id) if sep and origin and record_id else None


def _references(record: records_pb2.Record) -> list[Key]:
    """Records this record names, in the order it names them."""
    origin = record.header.origin
    refs: list[records_pb2.RecordRef] = []
    body = record.WhichOneof("body")
    if body == "lesson" and record.lesson.HasField("use_case"):
        refs.append(record.lesson.use_case)
    elif body == "solution":
        refs.extend(record.solution.use_cases)
    elif body == "use_case":
        refs.extend(record.use_case.reuses)
    elif body == "recommendation":
        refs.extend(record.recommendation.references)
    elif body == "adoption":
        refs.append(record.adoption.solution)
    return list(dict.fromkeys((r.origin or origin, r.id) for r in refs))
