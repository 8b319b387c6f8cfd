"""Building, signing and parsing feed entries (pure, no I/O).

The rule that matters: the signed bytes are kept and passed on as they are. An
Entry is serialized once, by its origin, and never again.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from samverka.errors import EntryRefused, Reason
from samverka.signing import SigningKey, entry_hash
from samverka.v1 import feed_pb2, records_pb2

#: Largest serialized SignedEntry accepted anywhere (entry + signature + key id).
MAX_SIGNED_ENTRY_BYTES = 256 * 1024


def build_entry(
    *,
    origin: str,
    sequence: int,
    previous_hash: bytes,
    timestamp_ms: int,
    record: records_pb2.Record,
) -> bytes:
    """Serialize a new Entry. The returned bytes are what gets signed and stored."""
    entry = feed_pb2.Entry(
        origin=origin,
        sequence=sequence,
        previous_hash=previous_hash,
        timestamp_ms=timestamp_ms,
        record=record,
    )
    return entry.SerializeToString(deterministic=True)


def sign_entry(key: SigningKey, entry_bytes: bytes) -> feed_pb2.SignedEntry:
    return feed_pb2.SignedEntry(
        entry=entry_bytes, signature=key.sign(entry_bytes), key_id=key.key_id
    )


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """A SignedEntry together with its decoded Entry. Not yet verified."""

    signed: feed_pb2.SignedEntry
    entry: feed_pb2.Entry
    hash: bytes

    @property
    def origin(self) -> str:
        return self.entry.origin

    @property
    def sequence(self) -> int:
        return self.entry.sequence

    @property
    def record(self) -> records_pb2.Record:
        return self.entry.record

    @property
    def record_id(self) -> str:
        return self.entry.record.header.id

    @property
    def version(self) -> int:
        return self.entry.record.header.version

    def signed_bytes(self) -> bytes:
        """The SignedEntry as stored; its inner entry bytes are the signed originals."""
        return self.signed.SerializeToString(deterministic=True)


def parse_signed(
    signed: feed_pb2.SignedEntry | bytes, *, max_bytes: int = MAX_SIGNED_ENTRY_BYTES
) -> ParsedEntry:
    """Decode a SignedEntry and its Entry, refusing oversize or malformed input."""
    if isinstance(signed, bytes):
        if len(signed) > max_bytes:
            raise EntryRefused(Reason.TOO_LARGE, f"{len(signed)} bytes, limit {max_bytes}")
        try:
            signed = feed_pb2.SignedEntry.FromString(signed)
        except DecodeError as exc:
            raise EntryRefused(Reason.MALFORMED, f"not a SignedEntry: {exc}") from exc
    size = len(signed.entry) + len(signed.signature) + len(signed.key_id)
    if size > max_bytes:
        raise EntryRefused(Reason.TOO_LARGE, f"{size} bytes, limit {max_bytes}")
    try:
        entry = feed_pb2.Entry.FromString(signed.entry)
    except DecodeError as exc:
        raise EntryRefused(Reason.MALFORMED, f"entry bytes do not decode: {exc}") from exc
    return ParsedEntry(signed=signed, entry=entry, hash=entry_hash(signed.entry))
