"""Authoring: turn a kommun's record changes into signed entries in its own feed."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from samverka.errors import SamverkaError, StoreConflict
from samverka.protocol.entries import ParsedEntry, build_entry, sign_entry
from samverka.protocol.erasure import build_erasure
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.signing import GENESIS_HASH, SigningKey
from samverka.protocol.validation import record_issues as validate_issues
from samverka.protocol.validation import refuse_placeholders
from samverka.protocol.verify import KeyRing, TrustedKey, Verdict, verify_entry
from samverka.store.store import Store
from samverka.v1 import records_pb2

#: Tries before a publish gives up to a writer that keeps getting there first.
ATTEMPTS = 5


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Publisher:
    """Signs and appends entries for one origin.

    Every new entry goes through the same verify_entry a receiver runs, so a node
    can never publish something its peers would refuse.
    """

    def __init__(
        self,
        store: Store,
        key: SigningKey,
        origin: str,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.key = key
        self.origin = origin
        self.clock = clock
        self._keys = KeyRing([TrustedKey(origin, key.public)])

    def publish(self, record: records_pb2.Record) -> ParsedEntry:
        """Append a new version of ``record``; header origin, version and times are set here.

        Placeholder text ("…", "TODO") in a title or summary is refused (PlaceholderText),
        except in a draft: every way a record is written here goes through this method."""
        refuse_placeholders(record)
        for attempt in range(ATTEMPTS):
            try:
                return self._publish_once(record)
            except StoreConflict:
                # Another process appended to this feed between our read and write.
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _publish_once(self, record: records_pb2.Record) -> ParsedEntry:
        rec = records_pb2.Record()
        rec.CopyFrom(record)
        header = rec.header
        header.origin = self.origin
        # One consistent snapshot of the feed's head and the record's version: the
        # entry is built and verified against it, and append() refuses with
        # StoreConflict if another writer moved the head since.
        state = self.store.prefetch([self.origin], [(self.origin, header.id)])
        head = state.head(self.origin)
        version = state.record_version(self.origin, header.id)
        # Never date an entry before the feed's newest one (receivers refuse that).
        now = max(self.clock(), head.timestamp_ms or 0) if head else self.clock()
        current = self.store.get_record(self.origin, header.id) if version else None
        header.version = (version or 0) + 1
        header.created_at_ms = (
            current.record.header.created_at_ms if current else header.created_at_ms or now
        )
        header.updated_at_ms = now
        if not header.language:
            header.language = "sv"
        entry_bytes = build_entry(
            origin=self.origin,
            sequence=(head.sequence if head else 0) + 1,
            previous_hash=head.entry_hash if head else GENESIS_HASH,
            timestamp_ms=now,
            record=rec,
        )
        verdict, parsed = verify_entry(sign_entry(self.key, entry_bytes), self._keys, state)
        assert verdict is Verdict.ACCEPTED
        self.store.append([parsed])
        return parsed

    def erase(
        self,
        record_id: str,
        *,
        origin: str | None = None,
        versions: Sequence[int] = (),
        reason: int,
        note: str = "",
        request_ref: str = "",
    ) -> ParsedEntry:
        """Publish an erasure (samverka.protocol.erasure) of a record's entries.

        ``origin``: the feed holding them, this node's own unless it is the council's
        hub. ``versions``: the record versions to erase; all held entries of the record
        when empty. The store applies it at once (content gone, chain kept), and every
        holder does when the erasure reaches it.
        """
        origin = origin or self.origin
        if origin != self.origin and self.origin != HUB_ORIGIN:
            raise SamverkaError(
                f"{self.origin} can erase only its own records, not {origin}'s",
                hint="the council erases at the hub on the kommun's request",
            )
        held = self.store.record_entries(origin, record_id)
        if versions:
            wanted = set(versions)
            missing = sorted(wanted - {e.version for e in held})
            if missing:
                raise SamverkaError(
                    f"{origin}'s record {record_id!r} has no held version "
                    + ", ".join(map(str, missing)),
                    hint="`samverka usecase show ID --history` lists its versions",
                )
            held = [e for e in held if e.version in wanted]
        if not held:
            raise SamverkaError(
                f"nothing of {origin}'s record {record_id!r} is held to erase",
                hint="it may be erased already",
            )
        record = build_erasure(
            eraser=self.origin,
            origin=origin,
            record_id=record_id,
            entries=held,
            reason=reason,
            note=note,
            request_ref=request_ref,
            now_ms=self.clock(),
        )
        check = validate_issues(record, origin=self.origin)
        if check:
            raise SamverkaError("; ".join(f"{i.field}: {i.message}" for i in check))
        return self.publish(record)

    def retire(self, record_id: str) -> ParsedEntry:
        """Write a tombstone: a new version marked retracted. History stays."""
        current = self.store.get_record(self.origin, record_id)
        if current is None:
            raise SamverkaError(
                f"no record {record_id!r} in {self.origin}'s feed",
                hint="list records with `samverka usecase list`",
            )
        if current.tombstone:
            raise SamverkaError(f"record {record_id!r} is already retired")
        rec = records_pb2.Record()
        rec.CopyFrom(current.record)
        rec.header.tombstone = True
        return self.publish(rec)
