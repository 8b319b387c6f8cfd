"""Offline signed bundles: a node's feeds on a file, for kommuner that cannot reach the hub.

File format, version 1 (messages in ``proto/samverka/v1/bundle.proto``)::

    offset 0   the 18 bytes  "SAMVERKA-BUNDLE/1\\n"     magic line; "1" is the format version
    then       varint N, then N bytes: SignedBundleHeader (N <= 1 MiB)
    then       entry_count times: varint N, then N bytes: LogEntry (N <= 257 KiB)
    then       end of file (anything more is refused)

- A *varint* is the protobuf base-128 varint (as in ``writeDelimitedTo``).
- ``SignedBundleHeader.header`` holds a serialized ``BundleHeader`` signed by the
  exporter's Ed25519 key over ``"samverka/v1/bundle" 0x00 || header bytes``. The header
  names the exporter, the number of items, and each origin's head (last sequence and
  entry hash) the bundle covers.
- Each ``LogEntry`` holds a ``SignedEntry`` exactly as its origin signed it, or a
  ``RedactedEntry`` (origin, sequence, entry hash) standing in for an entry that may
  not travel: drafts always, MEMBERS records unless exported with ``include_members``.
  ``LogEntry.position`` is the item's number in the bundle (1, 2, …), nothing more.
- Items run origin by origin, each origin from sequence 1 up to its head without gaps,
  so a receiver can verify every hash chain from its start.

Importing runs every item through :func:`samverka.replication.ingest.ingest`, the same
verification as a network sync, with the receiver's keyring. Trust never comes from
the bundle itself: the header signature is checked when the exporter's key is known,
and entries verify only against keys the receiver already trusts (its own, pinned
ones, the directory's). A redacted stand-in is stored only when a signed entry after
it vouches for it (its previous_hash), or when it ends the exporter's own feed and the
header verified with the exporter's key names it as that feed's head, sequence and hash
(the exporter's word for its own drafts, as the hub's Publish takes a member's). Any
other trailing stand-in is left out and counted: a made-up stand-in for another
origin's next sequence, or one changed in transit in front of an item cut short (the
header's signature covers the heads, not the items), would otherwise make the real
entry a ``fork`` at every later sync. The first bad item stops the import:
what came before it is stored (it verified), nothing from it on is, and
:class:`BundleRefused` names the item, its origin and sequence, and the reason.
A file cut short, or with bytes appended, is refused the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from google.protobuf.message import DecodeError

from samverka.errors import EntryRefused, ImportFileError, Reason, StoreError
from samverka.protocol.entries import MAX_SIGNED_ENTRY_BYTES, parse_signed
from samverka.protocol.signing import SigningKey
from samverka.protocol.verify import KeyRing
from samverka.replication.ingest import ingest
from samverka.store.store import Store
from samverka.v1 import bundle_pb2, feed_pb2

FORMAT_VERSION = 1
MAGIC = b"SAMVERKA-BUNDLE/%d\n" % FORMAT_VERSION
MAGIC_PREFIX = b"SAMVERKA-BUNDLE/"
#: Domain prefix of the header signature (never valid as an entry signature).
BUNDLE_DOMAIN = b"samverka/v1/bundle\x00"
MAX_HEADER_BYTES = 1024 * 1024
#: A LogEntry around the largest accepted SignedEntry.
MAX_ITEM_BYTES = MAX_SIGNED_ENTRY_BYTES + 1024
#: Entries verified and stored per transaction on import, read per query on export.
BATCH = 500

Progress = Callable[[int], None]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BundleRefused(ImportFileError):
    """A bundle (or one of its items) failed; nothing from the bad item on was stored.

    ``item`` is the 1-based item number (0 for the file or its header); ``origin`` and
    ``sequence`` name the entry when known; ``stored`` counts entries stored before it.
    """

    def __init__(
        self,
        reason: Reason,
        detail: str,
        *,
        item: int = 0,
        origin: str = "",
        sequence: int = 0,
        stored: int = 0,
        hint: str = "",
    ) -> None:
        where = "bundle"
        if item:
            where = f"bundle item {item}"
        if origin and sequence:
            where += f" ({origin}#{sequence})"
        elif origin:
            where += f" ({origin})"
        super().__init__(
            f"{where}: {reason.value}: {detail}",
            hint=hint
            or "nothing from this item on was imported; ask the sender for a new "
            "bundle, or check that you trust the right key (--trust-key KOD=FILE.pub)",
        )
        self.reason = reason
        self.detail = detail
        self.item = item
        self.origin = origin
        self.sequence = sequence
        self.stored = stored


# -- framing ---------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def write_delimited(out: BinaryIO, data: bytes) -> None:
    out.write(encode_varint(len(data)))
    out.write(data)


class _Truncated(Exception):
    """The file ends inside a length or a message."""


class _Reader:
    """Reads the length-delimited messages of a bundle from a binary stream."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def varint(self) -> int | None:
        """The next varint, or None at a clean end of file."""
        value = shift = 0
        for i in range(10):
            byte = self.stream.read(1)
            if not byte:
                if i == 0:
                    return None
                raise _Truncated("the file ends inside an item's length")
            value |= (byte[0] & 0x7F) << shift
            if not byte[0] & 0x80:
                return value
            shift += 7
        raise ValueError("an item length is longer than 10 bytes")

    def message(self, limit: int) -> bytes | None:
        length = self.varint()
        if length is None:
            return None
        if length > limit:
            raise ValueError(f"an item claims {length} bytes, the limit is {limit}")
        data = self.stream.read(length)
        if len(data) != length:
            raise _Truncated(f"the file ends inside an item ({len(data)} of {length} bytes)")
        return data


# -- export ------------------------------------------------------------------------------


@dataclass
class ExportSummary:
    header: bundle_pb2.BundleHeader
    #: Items written as RedactedEntry (drafts; MEMBERS records unless included).
    redacted: int = 0

    @property
    def entries(self) -> int:
        return self.header.entry_count

    @property
    def origins(self) -> list[str]:
        return [h.origin for h in self.header.heads]


def export_bundle(
    store: Store,
    key: SigningKey,
    exporter: str,
    out: BinaryIO,
    *,
    origins: Sequence[str] = (),
    include_members: bool = False,
    clock: Callable[[], int] = _now_ms,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the feeds of ``origins`` (default: every origin held) to ``out``.

    The heads are read first, and each feed is written up to its head, so entries
    appended while exporting are left for the next bundle.
    """
    heads = store.heads(list(origins))
    header = bundle_pb2.BundleHeader(
        format_version=FORMAT_VERSION,
        exporter=exporter,
        created_at_ms=clock(),
        entry_count=sum(h.sequence for h in heads),
        heads=[
            feed_pb2.FeedHead(origin=h.origin, sequence=h.sequence, entry_hash=h.entry_hash)
            for h in heads
        ],
        includes_members=include_members,
    )
    header_bytes = header.SerializeToString(deterministic=True)
    signed = bundle_pb2.SignedBundleHeader(
        header=header_bytes,
        signature=key.sign(header_bytes, domain=BUNDLE_DOMAIN),
        key_id=key.key_id,
    )
    out.write(MAGIC)
    write_delimited(out, signed.SerializeToString(deterministic=True))
    summary = ExportSummary(header=header)
    number = 0
    for head in heads:
        after = 0
        while after < head.sequence:
            items = store.feed_items(
                head.origin,
                after,
                limit=min(BATCH, head.sequence - after),
                member=include_members,
                include_drafts=False,
            )
            if not items:
                raise StoreError(
                    f"{head.origin}'s feed ends at {after}, before its head {head.sequence}"
                )
            for item in items:
                number += 1
                item.position = number
                if item.HasField("redacted"):
                    summary.redacted += 1
                    after = item.redacted.sequence
                else:
                    after = parse_signed(item.signed).sequence
                write_delimited(out, item.SerializeToString(deterministic=True))
            if progress is not None:
                progress(len(items))
    if number != header.entry_count:
        raise StoreError(f"wrote {number} entries, the header says {header.entry_count}")
    return summary


# -- import ------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    header: bundle_pb2.BundleHeader
    #: True when the header signature verified with a trusted key of the exporter.
    header_verified: bool
    items: int = 0
    accepted: int = 0
    duplicates: int = 0
    #: Held stand-ins replaced by the bundle's signed entry behind them.
    stand_ins_filled: int = 0
    #: Trailing stand-ins not stored: no signed entry vouched for them, and they are
    #: not the verified exporter's own (see the module docstring).
    stand_ins_left_out: int = 0
    origins: set[str] = field(default_factory=set)


def read_header(stream: BinaryIO) -> tuple[bundle_pb2.SignedBundleHeader, bundle_pb2.BundleHeader]:
    """Read the magic line and the signed header (not yet verified)."""
    magic = stream.read(len(MAGIC))
    if magic != MAGIC:
        if magic.startswith(MAGIC_PREFIX):
            version = magic[len(MAGIC_PREFIX) :].split(b"\n")[0].decode("ascii", "replace")
            raise BundleRefused(
                Reason.MALFORMED,
                f"format version {version} is not supported (this is version {FORMAT_VERSION})",
                hint="update samverka, or ask the sender for a version 1 bundle",
            )
        raise BundleRefused(
            Reason.MALFORMED,
            "not a Samverka bundle (the file does not start with SAMVERKA-BUNDLE/)",
            hint="check the file name; bundles are written by `samverka bundle export`",
        )
    reader = _Reader(stream)
    try:
        data = reader.message(MAX_HEADER_BYTES)
        if data is None:
            raise _Truncated("the file ends before the header")
        signed = bundle_pb2.SignedBundleHeader.FromString(data)
        header = bundle_pb2.BundleHeader.FromString(signed.header)
    except _Truncated as exc:
        raise BundleRefused(Reason.MALFORMED, f"truncated: {exc}") from exc
    except (ValueError, DecodeError) as exc:
        raise BundleRefused(Reason.MALFORMED, f"the header does not decode: {exc}") from exc
    if header.format_version != FORMAT_VERSION:
        raise BundleRefused(
            Reason.MALFORMED,
            f"the header says format version {header.format_version}, the file {FORMAT_VERSION}",
        )
    return signed, header


def verify_header(
    signed: bundle_pb2.SignedBundleHeader, header: bundle_pb2.BundleHeader, keys: KeyRing
) -> bool:
    """True if the exporter's trusted key signed the header; False if the key is unknown.

    Raises BundleRefused when a known key does not verify or is not the exporter's.
    """
    key = keys.get(signed.key_id)
    if key is None:
        return False
    if key.origin != header.exporter:
        raise BundleRefused(
            Reason.KEY_NOT_OF_ORIGIN,
            f"the header is signed with key {key.key_id} of {key.origin}, "
            f"but names {header.exporter} as the exporter",
        )
    if not key.public_key.verify(signed.header, signed.signature, domain=BUNDLE_DOMAIN):
        raise BundleRefused(
            Reason.BAD_SIGNATURE,
            f"the header signature does not verify with {header.exporter}'s key {key.key_id}",
        )
    return True


def import_bundle(
    store: Store,
    keys: KeyRing,
    stream: BinaryIO,
    *,
    progress: Progress | None = None,
) -> ImportSummary:
    """Verify and store a bundle's entries, batch by batch; raise BundleRefused on the first
    bad item (after storing what came before it)."""
    signed, header = read_header(stream)
    summary = ImportSummary(header=header, header_verified=verify_header(signed, header, keys))
    reader = _Reader(stream)
    last_seen: dict[str, int] = {}
    batch: list[feed_pb2.LogEntry] = []

    vouching_heads = {h.origin: h for h in header.heads} if summary.header_verified else {}
    # Only a verified exporter's word, and for its own feed only, stands in for a draft
    # at the end of a feed; nobody can block another origin's next sequence.
    own_word = frozenset({header.exporter}) if summary.header_verified else frozenset[str]()

    def flush() -> None:
        if not batch:
            return
        first = summary.items - len(batch) + 1
        # A stand-in ending the batch had no entry after it to vouch for it (the file ends
        # or the next item is broken): only the signed header's head may, exactly.
        while batch and batch[-1].HasField("redacted"):
            stand_in = batch[-1].redacted
            head = vouching_heads.get(stand_in.origin)
            if head is not None and (head.sequence, head.entry_hash) == (
                stand_in.sequence,
                stand_in.entry_hash,
            ):
                break
            batch.pop()
            summary.stand_ins_left_out += 1
        if not batch:
            return
        # A stand-in cannot be checked on its own; refuse one its successor (or the signed
        # header) contradicts before ingest could store it.
        bad = first_contradicted_stand_in(batch, vouching_heads)
        result = ingest(
            store,
            keys,
            batch if bad is None else batch[:bad],
            source="bundle",
            trust_stand_ins=own_word,
        )
        summary.accepted += result.accepted
        summary.stand_ins_left_out += result.stand_ins_left_out
        summary.duplicates += result.duplicates
        summary.stand_ins_filled += result.stand_ins_filled
        refusal = result.first_refusal
        if refusal is not None:
            index = result.held
            raise _refused(refusal, first + index, header, summary.accepted)
        if bad is not None:
            stand_in = batch[bad].redacted
            raise BundleRefused(
                Reason.FORK,
                "this redacted entry's hash does not match the previous_hash of the entry "
                "after it (or the signed header's head)",
                item=first + bad,
                origin=stand_in.origin,
                sequence=stand_in.sequence,
                stored=summary.accepted,
            )
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for number in range(1, header.entry_count + 1):
        try:
            data = reader.message(MAX_ITEM_BYTES)
            if data is None:
                break
            item = feed_pb2.LogEntry.FromString(data)
        except (_Truncated, ValueError, DecodeError) as exc:
            flush()
            origin, sequence = expected_entry(header, number)
            truncated = "truncated: " if isinstance(exc, _Truncated) else ""
            raise BundleRefused(
                Reason.MALFORMED,
                f"{truncated}{exc}",
                item=number,
                origin=origin,
                sequence=sequence,
                stored=summary.accepted,
            ) from exc
        summary.items = number
        origin, sequence = _claimed(item)
        if origin:
            summary.origins.add(origin)
            last_seen[origin] = max(last_seen.get(origin, 0), sequence)
        batch.append(item)
        # Keep a stand-in in the batch with the entry after it, which vouches for it.
        if len(batch) >= BATCH and not item.HasField("redacted"):
            flush()
    flush()

    if summary.items < header.entry_count:
        origin, sequence = _first_missing(header, last_seen)
        raise BundleRefused(
            Reason.MALFORMED,
            f"truncated: the header lists {header.entry_count} entries, the file holds "
            f"{summary.items}",
            item=summary.items + 1,
            origin=origin,
            sequence=sequence,
            stored=summary.accepted,
        )
    if stream.read(1):
        raise BundleRefused(
            Reason.MALFORMED,
            f"bytes follow the last of the {header.entry_count} entries the header lists",
            item=header.entry_count + 1,
            stored=summary.accepted,
        )
    origin, sequence = _first_missing(header, last_seen)
    if origin:
        raise BundleRefused(
            Reason.SEQUENCE_GAP,
            f"the header says {origin}'s feed runs to a later sequence than the file holds",
            origin=origin,
            sequence=sequence,
            stored=summary.accepted,
        )
    return summary


def first_contradicted_stand_in(
    items: Sequence[feed_pb2.LogEntry], heads: dict[str, feed_pb2.FeedHead]
) -> int | None:
    """Index of the first RedactedEntry whose hash the next entry (its signed
    previous_hash) or a verified header head contradicts, or that ends its feed among
    ``items`` (another origin's item follows) where that head names another entry;
    None if there is none."""
    for i, item in enumerate(items):
        if not item.HasField("redacted"):
            continue
        stand_in = item.redacted
        head = heads.get(stand_in.origin)
        if head is not None and head.sequence == stand_in.sequence:
            if head.entry_hash != stand_in.entry_hash:
                return i
            continue
        if i + 1 >= len(items):
            continue
        following = _claimed(items[i + 1])[0]  # "" for an entry ingest will refuse
        if head is not None and following and following != stand_in.origin:
            return i  # its feed ends here, yet the signed header names a later head
        if not items[i + 1].HasField("signed"):
            continue
        try:
            after = parse_signed(items[i + 1].signed)
        except EntryRefused:
            continue  # ingest refuses that entry itself
        if (
            after.origin == stand_in.origin
            and after.sequence == stand_in.sequence + 1
            and after.entry.previous_hash != stand_in.entry_hash
        ):
            return i
    return None


def expected_entry(header: bundle_pb2.BundleHeader, number: int) -> tuple[str, int]:
    """The origin and sequence item ``number`` holds by the layout the header describes.

    Items run origin by origin from sequence 1, so a damaged item can still be named.
    """
    before = 0
    for head in header.heads:
        if number <= before + head.sequence:
            return head.origin, number - before
        before += head.sequence
    return "", 0


def _claimed(item: feed_pb2.LogEntry) -> tuple[str, int]:
    """The origin and sequence an item claims (unverified; for messages only)."""
    if item.HasField("redacted"):
        return item.redacted.origin, item.redacted.sequence
    try:
        parsed = parse_signed(item.signed)
    except EntryRefused:
        return "", 0
    return parsed.origin, parsed.sequence


def _first_missing(header: bundle_pb2.BundleHeader, last_seen: dict[str, int]) -> tuple[str, int]:
    for head in header.heads:
        seen = last_seen.get(head.origin, 0)
        if seen < head.sequence:
            return head.origin, seen + 1
    return "", 0


def _refused(
    refusal: EntryRefused, number: int, header: bundle_pb2.BundleHeader, stored: int
) -> BundleRefused:
    origin, sequence = refusal.origin, refusal.sequence
    if not origin:
        origin, sequence = expected_entry(header, number)
    return BundleRefused(
        refusal.reason,
        refusal.detail,
        item=number,
        origin=origin,
        sequence=sequence,
        stored=stored,
        hint=_hint(refusal.reason, origin),
    )


def _hint(reason: Reason, origin: str) -> str:
    if reason is Reason.UNKNOWN_KEY:
        return (
            f"this node does not trust {origin or 'the origin'}'s signing key; if you got "
            f"the key from that kommun itself, pass --trust-key {origin or 'KOD'}=FILE.pub"
        )
    if reason is Reason.SEQUENCE_GAP:
        return "earlier entries of this feed are missing here; import an older bundle first"
    return ""
