"""Erasure that propagates (issue 13, point 3): pure, no I/O.

An erasure is a record of kind ``RECORD_KIND_ERASURE`` (body ``Erasure``) in a feed,
signed, chained and logged like any other. It names the entries it erases by origin,
sequence and chain hash. Every holder that verified it (ingest, sync, bundle import,
the publisher itself) keeps those entries as redacted stand-ins: the signed bytes go,
the hash stays. Since an entry's chain hash is SHA-256 of its signed bytes, and the
next entry's ``previous_hash`` and the transparency log's leaf
(:mod:`samverka.protocol.logleaf`) commit to that hash only, the chain and every
inclusion proof stay valid without the content.

Who may erase what (checked by :func:`erasure_issues`, part of schema validation, so a
violating erasure is refused SCHEMA_INVALID like any bad record):

- a kommun, entries of its own feed only (``erasure.origin`` == the record's origin);
- the council's hub (origin ``0000``), entries of any feed, on a kommun's request
  (``request_ref`` names it). Its erasure is signed by the hub's key and in its log.

Nothing else removes content: a stand-in that no verified erasure names is an entry
hidden from the reader (a draft, a MEMBERS record), which a signed copy from any
source fills again; an erased stand-in is never filled (the store refuses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from samverka.protocol.kommuner import HUB_ORIGIN, is_origin
from samverka.protocol.wire import MAX_STORED_INT
from samverka.v1 import erasure_pb2, records_pb2

#: Longest note an erasure may carry: a short explanation, never the erased text.
MAX_NOTE_CHARS = 200
#: Longest request reference (the council's diarienummer or similar).
MAX_REQUEST_REF_CHARS = 100
#: Most entries one erasure names (schema validation caps repeated fields at 64 too).
MAX_ERASED_ENTRIES = 64

#: ``--reason`` names on the command line, and the category they stand for.
REASONS: dict[str, int] = {
    "personuppgifter": erasure_pb2.ERASURE_REASON_PERSONAL_DATA,
    "sekretess": erasure_pb2.ERASURE_REASON_CONFIDENTIAL,
    "intrang": erasure_pb2.ERASURE_REASON_INFRINGING,
    "beslut": erasure_pb2.ERASURE_REASON_LEGAL_ORDER,
    "annat": erasure_pb2.ERASURE_REASON_OTHER,
}


@dataclass(frozen=True, slots=True)
class ErasureTarget:
    """One entry an erasure removes the content of."""

    origin: str
    sequence: int
    entry_hash: bytes
    record_id: str


@dataclass(frozen=True, slots=True)
class HeldEntry:
    """What the eraser knows of one entry it holds (for :func:`build_erasure`)."""

    sequence: int
    entry_hash: bytes
    visibility: int
    #: The record version the entry holds (0: not known).
    version: int = 0


def erasure_id(origin: str, record_id: str, sequences: Iterable[int]) -> str:
    """A record id for the erasure of these entries: stable, and never the erased text."""
    digest = hashlib.sha256(
        f"{origin}\0{record_id}\0{','.join(map(str, sorted(sequences)))}".encode()
    ).hexdigest()
    return f"radering-{digest[:24]}"


def build_erasure(
    *,
    eraser: str,
    origin: str,
    record_id: str,
    entries: Iterable[HeldEntry],
    reason: int,
    note: str = "",
    request_ref: str = "",
    now_ms: int,
) -> records_pb2.Record:
    """The erasure record (version 1) naming ``entries`` of ``origin``'s ``record_id``.

    Its visibility is the widest of the erased entries' (PUBLIC if any was public):
    everyone who may have seen the content learns of the erasure, and a MEMBERS
    record's id is not shown to the public.
    """
    held = sorted(entries, key=lambda e: e.sequence)
    visibilities = {e.visibility for e in held}
    if records_pb2.VISIBILITY_PUBLIC in visibilities:
        visibility = records_pb2.VISIBILITY_PUBLIC
    elif visibilities <= {records_pb2.VISIBILITY_DRAFT}:
        visibility = records_pb2.VISIBILITY_DRAFT
    else:
        visibility = records_pb2.VISIBILITY_MEMBERS
    record = records_pb2.Record(
        header=records_pb2.RecordHeader(
            id=erasure_id(origin, record_id, (e.sequence for e in held)),
            kind=records_pb2.RECORD_KIND_ERASURE,
            origin=eraser,
            version=1,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
            visibility=visibility,
            language="sv",
        ),
        erasure=erasure_pb2.Erasure(
            origin=origin,
            record_id=record_id,
            entries=[
                erasure_pb2.ErasedEntry(sequence=e.sequence, entry_hash=e.entry_hash) for e in held
            ],
            reason=reason,  # type: ignore[arg-type]
            note=note,
            request_ref=request_ref,
        ),
    )
    return record


def is_erasure(record: records_pb2.Record) -> bool:
    return record.header.kind == records_pb2.RECORD_KIND_ERASURE


def erasure_targets(record: records_pb2.Record) -> list[ErasureTarget]:
    """The entries a (verified, valid) erasure record erases; [] for other records."""
    if not is_erasure(record) or not record.HasField("erasure"):
        return []
    e = record.erasure
    return [
        ErasureTarget(e.origin, item.sequence, bytes(item.entry_hash), e.record_id)
        for item in e.entries
    ]


def erasure_issues(record: records_pb2.Record) -> list[tuple[str, str]]:
    """What makes an erasure record invalid, as (field path, problem) pairs (the form of
    ``erasure.record_id`` is checked by samverka.protocol.validation, which calls this)."""
    h, e = record.header, record.erasure
    issues: list[tuple[str, str]] = []
    if h.tombstone:
        issues.append(("header.tombstone", "an erasure cannot be retracted"))
    if h.version != 1:
        issues.append(("header.version", "an erasure has one version only"))
    if not is_origin(e.origin):
        issues.append(("erasure.origin", f"{e.origin[:8]!r} is not a kommunkod"))
    elif e.origin != h.origin and h.origin != HUB_ORIGIN:
        issues.append(
            ("erasure.origin", "a kommun erases only its own entries (the council any, on request)")
        )
    if not e.entries:
        issues.append(("erasure.entries", "names no entry"))
    seen: set[int] = set()
    for i, item in enumerate(e.entries):
        if not 1 <= item.sequence <= MAX_STORED_INT:
            issues.append((f"erasure.entries[{i}].sequence", "is not a sequence number"))
        if len(item.entry_hash) != 32:
            issues.append((f"erasure.entries[{i}].entry_hash", "must be 32 bytes"))
        if item.sequence in seen:
            issues.append((f"erasure.entries[{i}].sequence", "is named twice"))
        seen.add(item.sequence)
    if e.reason == erasure_pb2.ERASURE_REASON_UNSPECIFIED:
        issues.append(("erasure.reason", "is required"))
    if len(e.note) > MAX_NOTE_CHARS:
        issues.append(("erasure.note", f"{len(e.note)} characters, at most {MAX_NOTE_CHARS}"))
    if len(e.request_ref) > MAX_REQUEST_REF_CHARS:
        issues.append(
            (
                "erasure.request_ref",
                f"{len(e.request_ref)} characters, at most {MAX_REQUEST_REF_CHARS}",
            )
        )
    return issues
