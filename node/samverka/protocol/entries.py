"""Building, signing and parsing feed entries (pure, no I/O).

The rule that matters: the signed bytes are kept and passed on as they are. An
Entry is serialized once, by its origin, and never again.

Parsing comes in two steps on purpose. :func:`parse_envelope` decodes only the
unauthenticated SignedEntry (size limit, well-formed protobuf, nothing unknown);
:func:`decode_entry` decodes the Entry inside it and is called by
``verify.verify_entry`` only after the signature over the raw entry bytes has been
checked, so no byte of an unsigned Entry ever reaches the protobuf decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from samverka.errors import EntryRefused, Reason
from samverka.protocol.kommuner import is_origin
from samverka.protocol.signing import SIGNATURE_BYTES, SigningKey, entry_hash
from samverka.protocol.wire import MAX_STORED_INT
from samverka.v1 import feed_pb2, records_pb2

#: Largest serialized SignedEntry accepted anywhere (entry + signature + key id).
MAX_SIGNED_ENTRY_BYTES = 256 * 1024

#: A key id is 32 lowercase hex characters (16 bytes of SHA-256).
KEY_ID_CHARS = 32


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
    """A SignedEntry together with its decoded Entry.

    Built by :func:`decode_entry`; it says nothing about authenticity on its own.
    Every ParsedEntry that reaches a store comes out of ``verify.verify_entry``.

    The fields the ordered checks and the store read for every entry (origin,
    sequence, record id, …) are read out of the decoded messages once, here: each
    protobuf attribute read builds a wrapper object, and an entry's way from the wire
    into the store asked for ``entry.record.header.id`` a dozen times.
    """

    signed: feed_pb2.SignedEntry
    entry: feed_pb2.Entry
    hash: bytes
    origin: str
    sequence: int
    timestamp_ms: int
    record: records_pb2.Record
    record_id: str
    version: int

    def signed_bytes(self) -> bytes:
        """The SignedEntry as stored; its inner entry bytes are the signed originals."""
        return self.signed.SerializeToString(deterministic=True)


def has_unknown_fields(msg: Message) -> bool:
    """True if ``msg`` or any message inside it carries fields this version does not know."""
    if len(UnknownFieldSet(msg)):
        return True
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        items = value if field.is_repeated else [value]
        if any(has_unknown_fields(item) for item in items):
            return True
    return False


def parse_envelope(
    signed: feed_pb2.SignedEntry | bytes, *, max_bytes: int = MAX_SIGNED_ENTRY_BYTES
) -> feed_pb2.SignedEntry:
    """Check and decode the unauthenticated envelope; the entry bytes stay undecoded.

    Refuses TOO_LARGE above ``max_bytes`` (checked before decoding bytes), and
    MALFORMED for bytes that are not a SignedEntry or carry fields nothing signs
    (unknown fields in the envelope would otherwise be stored and passed on).
    """
    if isinstance(signed, bytes | bytearray | memoryview):
        raw = bytes(signed)
        if len(raw) > max_bytes:
            raise EntryRefused(Reason.TOO_LARGE, f"{len(raw)} bytes, limit {max_bytes}")
        try:
            signed = feed_pb2.SignedEntry.FromString(raw)
        except DecodeError as exc:
            raise EntryRefused(Reason.MALFORMED, f"not a SignedEntry: {exc}") from exc
    else:
        size = signed.ByteSize()
        if size > max_bytes:
            raise EntryRefused(Reason.TOO_LARGE, f"{size} bytes, limit {max_bytes}")
    if len(UnknownFieldSet(signed)):
        raise EntryRefused(Reason.MALFORMED, "the SignedEntry carries unknown fields")
    if not signed.entry:
        raise EntryRefused(Reason.MALFORMED, "the SignedEntry has no entry bytes")
    return signed


def check_position(origin: str, sequence: int) -> Callable[[str], EntryRefused]:
    """Refuse a feed position that is no kommunkod's or out of range (MALFORMED); return
    the maker of further MALFORMED refusals at that position. Entries and redacted
    stand-ins name their place in a feed alike, so both are checked here."""

    def malformed(detail: str) -> EntryRefused:
        return EntryRefused(Reason.MALFORMED, detail, origin=origin[:8], sequence=sequence)

    if not is_origin(origin):
        raise malformed(f"origin {origin[:8]!r} is not a kommunkod")
    if sequence < 1:
        raise malformed("sequence numbers start at 1")
    if sequence > MAX_STORED_INT:
        raise EntryRefused(
            Reason.MALFORMED,
            f"sequence {sequence} is above {MAX_STORED_INT} (2^63 - 1)",
            origin=origin[:8],
        )
    return malformed


def decode_entry(signed: feed_pb2.SignedEntry) -> ParsedEntry:
    """Decode the Entry inside an envelope and check its structure (not its record).

    Call only after the signature over ``signed.entry`` verified. Refuses MALFORMED
    for undecodable bytes (including invalid UTF-8 in a string), unknown fields
    in the Entry itself, a bad origin code, sequence 0, a previous_hash that is not
    32 bytes, a timestamp that is not positive, or a missing record.
    """
    try:
        entry = feed_pb2.Entry.FromString(signed.entry)
    except DecodeError as exc:
        raise EntryRefused(Reason.MALFORMED, f"entry bytes do not decode: {exc}") from exc

    malformed = check_position(entry.origin, entry.sequence)
    if len(entry.previous_hash) != 32:
        raise malformed(f"previous_hash is {len(entry.previous_hash)} bytes, not 32")
    if entry.timestamp_ms < 1:
        raise malformed("timestamp_ms must be a positive Unix time in milliseconds")
    if not entry.HasField("record"):
        raise malformed("the entry carries no record")
    if len(UnknownFieldSet(entry)):
        # Unknown fields inside the record are reported by schema validation, with
        # their path; the Entry around it has nothing to add.
        raise malformed("the entry carries fields unknown to this version of Samverka")
    record = entry.record
    header = record.header
    return ParsedEntry(
        signed=signed,
        entry=entry,
        hash=entry_hash(signed.entry),
        origin=entry.origin,
        sequence=entry.sequence,
        timestamp_ms=entry.timestamp_ms,
        record=record,
        record_id=header.id,
        version=header.version,
    )


def parse_signed(
    signed: feed_pb2.SignedEntry | bytes, *, max_bytes: int = MAX_SIGNED_ENTRY_BYTES
) -> ParsedEntry:
    """Decode envelope and Entry WITHOUT verifying the signature.

    For reading back what a store already verified (and for tools that display
    entries). Anything from a peer goes through ``verify.verify_entry`` instead.
    """
    return decode_entry(parse_envelope(signed, max_bytes=max_bytes))


def well_formed_key_id(key_id: str) -> bool:
    """32 lowercase hex characters, the form ``signing.key_id`` produces."""
    return len(key_id) == KEY_ID_CHARS and all(c in "0123456789abcdef" for c in key_id)


def well_formed_signature(signature: bytes) -> bool:
    return len(signature) == SIGNATURE_BYTES
