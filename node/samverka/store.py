"""The store: every entry verbatim, plus indexed columns, a current view of each
record and full-text search. sqlmodel over SQLite (WAL) or PostgreSQL, same code.

INTERFACE PINNED — implementation in progress. Callers may rely on every name and
signature below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from samverka.entries import ParsedEntry
from samverka.v1 import feed_pb2, feed_service_pb2, records_pb2
from samverka.verify import FeedHead


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


@dataclass(frozen=True, slots=True)
class SearchHit:
    origin: str
    record_id: str
    kind: int
    title: str
    summary: str
    visibility: int
    rank: float


@dataclass(frozen=True, slots=True)
class LogPage:
    entries: list[feed_pb2.LogEntry] = field(default_factory=list)
    #: Resume after this position (the last one scanned, filtered or not).
    next_position: int = 0


class Store:
    """A Samverka database. Thread-safe for one writer and many readers."""

    def __init__(self, url: str) -> None: ...

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store: ...
    def migrate(self) -> list[int]: ...
    def schema_version(self) -> int: ...
    def close(self) -> None: ...

    # -- FeedState (samverka.verify) ----------------------------------------
    def head(self, origin: str) -> FeedHead | None: ...
    def entry_hash(self, origin: str, sequence: int) -> bytes | None: ...
    def record_version(self, origin: str, record_id: str) -> int | None: ...

    # -- writing -------------------------------------------------------------
    def append(self, items: Sequence[ParsedEntry | feed_pb2.RedactedEntry]) -> list[int]: ...

    # -- reading the log -----------------------------------------------------
    def heads(self, origins: Sequence[str] = ()) -> list[FeedHead]: ...
    def log_position(self) -> int: ...
    def read_log(
        self,
        after: int,
        limit: int,
        *,
        entry_filter: feed_service_pb2.EntryFilter | None = None,
        member: bool = True,
        include_drafts: bool = False,
    ) -> LogPage: ...
    def feed_entries(self, origin: str, after_sequence: int = 0) -> list[bytes]: ...

    # -- records ---------------------------------------------------------------
    def get_record(self, origin: str, record_id: str) -> StoredRecord | None: ...
    def list_records(
        self,
        *,
        kinds: Sequence[int] = (),
        origins: Sequence[str] = (),
        include_tombstoned: bool = False,
    ) -> list[StoredRecord]: ...
    def search(
        self,
        text: str,
        *,
        limit: int = 20,
        kinds: Sequence[int] = (),
        origins: Sequence[str] = (),
        member: bool = True,
        include_drafts: bool = True,
    ) -> list[SearchHit]: ...

    # -- small state -------------------------------------------------------------
    def get_cursor(self, peer: str) -> int: ...
    def set_cursor(self, peer: str, position: int) -> None: ...
