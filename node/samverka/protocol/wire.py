"""Limits on a request's protobuf bytes, checked before they are decoded.

protobuf decodes a whole message before anyone can look at it: 4 MiB of two million
empty repeated items cost ~96 MiB and a second of CPU to materialize, and a number the
schema calls ``uint64`` may not fit the store's signed 64-bit integers. This module
walks the wire format instead (tags, varints, lengths; no objects are built) against
the message's descriptor and refuses, with a :class:`~samverka.errors.RequestRefused`:

- ``too_large``: more bytes than the method allows (checked first, in O(1));
- ``too_many_items``: a repeated field with more items than allowed in one message
  (packed scalars are counted without decoding them), or more fields in the whole
  request than its budget;
- ``malformed``: a truncated varint or length, a wire type the field does not have, a
  group, nesting deeper than allowed, a field number the schema does not know (the
  unsigned wrappers carry nothing a receiver would pass on unread), or a singular
  field sent twice (serializers never do; protobuf would merge them silently);
- ``out_of_range``: a ``uint64``/``fixed64`` of 2^63 or more (stored as SQL signed
  integers; no sequence, position or version gets near), or a ``uint32`` above 2^32-1
  (protobuf would silently truncate it).

The walk stops at the first violation, so its cost is bounded by the limits, not by
the request: a flood of worst-case requests costs the server little. ``bytes`` fields
are skipped, not walked: signed payloads are checked where they are verified.

Pure: bytes and descriptors in, an exception or None out.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from samverka.errors import RequestRefused

#: The largest integer a sequence, position or version may hold: SQL's signed 64 bits.
MAX_STORED_INT = 2**63 - 1
_MAX_UINT32 = 2**32 - 1


@dataclass(frozen=True, slots=True)
class WireLimits:
    """What one request of a method may hold."""

    #: Largest request in bytes.
    max_bytes: int = 64 * 1024
    #: Most items of one repeated field in one message.
    max_items: int = 1_000
    #: Most fields read in the whole request, nested ones included (a budget on the walk).
    max_fields: int = 20_000
    #: Deepest nesting of messages (the request itself is depth 0).
    max_depth: int = 16


_T = FieldDescriptor
_VARINT_TYPES = frozenset(
    {
        _T.TYPE_INT32,
        _T.TYPE_INT64,
        _T.TYPE_UINT32,
        _T.TYPE_UINT64,
        _T.TYPE_SINT32,
        _T.TYPE_SINT64,
        _T.TYPE_BOOL,
        _T.TYPE_ENUM,
    }
)
_FIXED64_TYPES = frozenset({_T.TYPE_FIXED64, _T.TYPE_SFIXED64, _T.TYPE_DOUBLE})
_FIXED32_TYPES = frozenset({_T.TYPE_FIXED32, _T.TYPE_SFIXED32, _T.TYPE_FLOAT})
_LEN_TYPES = frozenset({_T.TYPE_STRING, _T.TYPE_BYTES, _T.TYPE_MESSAGE})
_WIRE_TYPE_NAMES = {0: "varint", 1: "64-bit", 2: "length-delimited", 5: "32-bit"}
#: Bytes with the high bit set: continuation bytes of a varint.
_CONTINUATION = bytes(range(128, 256))


def check_request(raw: bytes, descriptor: Descriptor, limits: WireLimits) -> None:
    """Refuse ``raw`` (a serialized ``descriptor`` message) if it breaks ``limits``."""
    if len(raw) > limits.max_bytes:
        raise RequestRefused(
            "too_large",
            f"the {descriptor.name} is {len(raw)} bytes; at most {limits.max_bytes}",
            hint="send a smaller request (fewer items per call)",
        )
    _Walk(raw, limits).message(descriptor, 0, len(raw), 0)


class _Walk:
    __slots__ = ("budget", "limits", "raw")

    def __init__(self, raw: bytes, limits: WireLimits) -> None:
        self.raw = raw
        self.limits = limits
        self.budget = limits.max_fields

    def varint(self, pos: int, end: int, what: str) -> tuple[int, int]:
        raw = self.raw
        value = shift = 0
        while pos < end and shift < 70:
            byte = raw[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value, pos
            shift += 7
        raise RequestRefused("malformed", f"{what}: a truncated or overlong varint")

    def message(self, desc: Descriptor, pos: int, end: int, depth: int) -> None:
        limits = self.limits
        if depth > limits.max_depth:
            raise RequestRefused("malformed", f"messages nested deeper than {limits.max_depth}")
        counts: dict[int, int] = {}
        by_number = desc.fields_by_number
        while pos < end:
            key, pos = self.varint(pos, end, desc.name)
            number, wire_type = key >> 3, key & 7
            self.budget -= 1
            if self.budget < 0:
                raise RequestRefused(
                    "too_many_items",
                    f"the request holds more than {limits.max_fields} fields",
                    hint="send fewer items per call",
                )
            field = by_number.get(number)
            if field is None:
                raise RequestRefused(
                    "malformed",
                    f"{desc.name} carries field number {number}, unknown to this version",
                    hint="send a request serialized from the samverka.v1 protobuf messages",
                )
            where = f"{desc.name}.{field.name}"
            seen = counts.get(number, 0) + 1
            counts[number] = seen
            repeated = field.is_repeated
            if not repeated and seen > 1:
                raise RequestRefused("malformed", f"{where} appears more than once")
            ftype = field.type
            if wire_type == 0 and ftype in _VARINT_TYPES:
                value, pos = self.varint(pos, end, where)
                _check_range(field, value, where)
            elif wire_type == 1 and ftype in _FIXED64_TYPES:
                if pos + 8 > end:
                    raise RequestRefused("malformed", f"{where}: truncated")
                if ftype == _T.TYPE_FIXED64:
                    _check_range(field, int.from_bytes(self.raw[pos : pos + 8], "little"), where)
                pos += 8
            elif wire_type == 5 and ftype in _FIXED32_TYPES:
                if pos + 4 > end:
                    raise RequestRefused("malformed", f"{where}: truncated")
                pos += 4
            elif wire_type == 2:
                length, pos = self.varint(pos, end, where)
                stop = pos + length
                if stop > end:
                    raise RequestRefused("malformed", f"{where}: length past the end")
                if ftype == _T.TYPE_MESSAGE and field.message_type is not None:
                    self.message(field.message_type, pos, stop, depth + 1)
                elif ftype not in _LEN_TYPES:
                    if not repeated:
                        raise RequestRefused("malformed", f"{where}: not a packed field")
                    # Packed scalars: each varint ends in one byte below 0x80.
                    blob = self.raw[pos:stop]
                    if ftype in _VARINT_TYPES:
                        items = len(blob.translate(None, _CONTINUATION))
                        if blob and blob[-1] >= 0x80:
                            raise RequestRefused("malformed", f"{where}: truncated varint")
                    else:
                        size = 8 if ftype in _FIXED64_TYPES else 4
                        if length % size:
                            raise RequestRefused("malformed", f"{where}: ragged packed field")
                        items = length // size
                    counts[number] = seen = seen - 1 + items
                    self.budget -= items
                pos = stop
            else:
                raise RequestRefused(
                    "malformed",
                    f"{where} sent as {_WIRE_TYPE_NAMES.get(wire_type, f'wire type {wire_type}')}"
                    " data, which it is not",
                )
            if repeated and seen > limits.max_items:
                raise RequestRefused(
                    "too_many_items",
                    f"more than {limits.max_items} items in {where}",
                    hint="send fewer items per call",
                )


def _check_range(field: FieldDescriptor, value: int, where: str) -> None:
    ftype = field.type
    if ftype in (_T.TYPE_UINT64, _T.TYPE_FIXED64) and value > MAX_STORED_INT:
        raise RequestRefused(
            "out_of_range", f"{where} = {value} is above {MAX_STORED_INT} (2^63 - 1)"
        )
    if ftype == _T.TYPE_UINT32 and value > _MAX_UINT32:
        raise RequestRefused("out_of_range", f"{where} = {value} is above 2^32 - 1")
