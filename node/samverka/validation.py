"""Schema validation of records (pure).

Protobuf gives us types; this module adds what the wire format cannot say: which
fields are required, that enum values are known, how long text may be, that links
are http(s) and that kommunkoder are real. Every problem is reported at once, with
its dotted field path, so a person fixing an import file sees them all.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from samverka.errors import FieldIssue, RecordInvalid
from samverka.kommuner import HUB_ORIGIN, is_kommunkod, is_origin
from samverka.v1 import records_pb2

RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CONTENT_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
SPDX_ID = re.compile(r"^[A-Za-z0-9.+-]{1,64}( (AND|OR|WITH) [A-Za-z0-9.+-]{1,64})*$")

#: Default limit on any text field, in characters.
MAX_TEXT = 2_000
#: Long-form fields.
MAX_LONG_TEXT = 20_000
LONG_TEXT_FIELDS = frozenset(
    {"description", "body", "what_worked", "what_did_not", "advice", "how_to_adopt", "note"}
)
SHORT_TEXT_FIELDS = {"title": 200, "tags": 64, "contact_role": 200, "id": 128, "metric": 200}
MAX_URL = 2_048
#: Limit on the number of items in any repeated field.
MAX_ITEMS = 64

KIND_BODY = {
    records_pb2.RECORD_KIND_USE_CASE: "use_case",
    records_pb2.RECORD_KIND_LESSON: "lesson",
    records_pb2.RECORD_KIND_SOLUTION: "solution",
    records_pb2.RECORD_KIND_RECOMMENDATION: "recommendation",
    records_pb2.RECORD_KIND_ADOPTION: "adoption",
}

#: Fields a live (not retracted) record must fill, per body.
REQUIRED = {
    "use_case": ("title", "summary", "service_area", "status"),
    "lesson": ("title", "category"),
    "solution": ("title", "summary", "solution_type"),
    "recommendation": ("title", "summary"),
    "adoption": ("solution",),
}

#: Fields holding a single kommunkod, or a list of them.
KOMMUNKOD_FIELDS = frozenset({"partner_kommuner"})
URL_FIELDS = frozenset({"url"})


def validate_record(record: records_pb2.Record, *, origin: str | None = None) -> None:
    """Raise RecordInvalid listing every problem; return None for a valid record.

    ``origin`` is the feed the record arrives in; the header must name the same.
    """
    issues = record_issues(record, origin=origin)
    if issues:
        raise RecordInvalid(issues)


def record_issues(record: records_pb2.Record, *, origin: str | None = None) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    h = record.header
    if not record.HasField("header"):
        return [FieldIssue("header", "is required")]
    if not RECORD_ID.match(h.id):
        issues.append(
            FieldIssue("header.id", "1-128 characters of A-Z a-z 0-9 . _ -, starting alphanumeric")
        )
    if not is_origin(h.origin):
        issues.append(FieldIssue("header.origin", f"{h.origin!r} is not a kommunkod"))
    elif origin is not None and h.origin != origin:
        issues.append(FieldIssue("header.origin", f"{h.origin} differs from the feed's {origin}"))
    if h.version < 1:
        issues.append(FieldIssue("header.version", "must be 1 or more"))
    if h.visibility == records_pb2.VISIBILITY_UNSPECIFIED:
        issues.append(FieldIssue("header.visibility", "is required"))
    if h.language and not LANGUAGE.match(h.language):
        issues.append(FieldIssue("header.language", f"{h.language!r} is not a BCP 47 tag"))
    if h.updated_at_ms and h.created_at_ms and h.updated_at_ms < h.created_at_ms:
        issues.append(FieldIssue("header.updated_at_ms", "is before created_at_ms"))

    body = record.WhichOneof("body")
    expected = KIND_BODY.get(h.kind)
    if h.kind == records_pb2.RECORD_KIND_UNSPECIFIED:
        issues.append(FieldIssue("header.kind", "is required"))
    elif expected is not None and body is not None and body != expected:
        issues.append(FieldIssue("header.kind", f"says {expected} but the body is {body}"))
    if body is None and not h.tombstone:
        issues.append(FieldIssue("body", "is required unless the record is a tombstone"))
    if h.kind == records_pb2.RECORD_KIND_RECOMMENDATION and h.origin != HUB_ORIGIN:
        issues.append(FieldIssue("header.kind", "recommendations are published by the council"))

    _walk(record, "", issues)
    if body is not None and not h.tombstone:
        msg = getattr(record, body)
        for name in REQUIRED[body]:
            field = msg.DESCRIPTOR.fields_by_name[name]
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                missing = not msg.HasField(name)
            else:
                missing = not getattr(msg, name)
            if missing:
                issues.append(FieldIssue(f"{body}.{name}", "is required"))
        if body == "solution" and record.solution.content_hash:
            if not CONTENT_HASH.match(record.solution.content_hash):
                issues.append(FieldIssue("solution.content_hash", "must be sha256:<64 hex>"))
        if body == "solution" and record.solution.licence:
            if not SPDX_ID.match(record.solution.licence):
                issues.append(FieldIssue("solution.licence", "must be an SPDX identifier"))
    return issues


def _text_limit(name: str) -> int:
    if name in LONG_TEXT_FIELDS:
        return MAX_LONG_TEXT
    if name in URL_FIELDS:
        return MAX_URL
    return SHORT_TEXT_FIELDS.get(name, MAX_TEXT)


def _walk(msg: Message, prefix: str, issues: list[FieldIssue]) -> None:
    """Check enum ranges, text sizes, item counts, links and kommunkoder everywhere."""
    for field, value in msg.ListFields():
        path = f"{prefix}{field.name}"
        repeated = field.is_repeated
        values = list(value) if repeated else [value]
        if repeated and len(values) > MAX_ITEMS:
            issues.append(FieldIssue(path, f"{len(values)} items, at most {MAX_ITEMS}"))
            values = values[:MAX_ITEMS]
        for i, item in enumerate(values):
            where = f"{path}[{i}]" if repeated else path
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if field.message_type.name == "RecordRef":
                    _check_ref(item, where, issues)
                _walk(item, where + ".", issues)
            elif field.type == FieldDescriptor.TYPE_ENUM:
                if field.enum_type.values_by_number.get(item) is None:
                    issues.append(FieldIssue(where, f"{item} is not a {field.enum_type.name}"))
            elif field.type == FieldDescriptor.TYPE_STRING:
                _check_text(field.name, item, where, issues)
            elif field.type == FieldDescriptor.TYPE_DOUBLE and item != item:  # NaN
                issues.append(FieldIssue(where, "is not a number"))
            elif field.type == FieldDescriptor.TYPE_INT64 and item < 0:
                issues.append(FieldIssue(where, "must not be negative"))


def _check_text(name: str, text: str, where: str, issues: list[FieldIssue]) -> None:
    limit = _text_limit(name)
    if len(text) > limit:
        issues.append(FieldIssue(where, f"{len(text)} characters, at most {limit}"))
        return
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        issues.append(FieldIssue(where, "contains control characters"))
    if name in URL_FIELDS and text and not is_http_url(text):
        issues.append(FieldIssue(where, f"{text[:80]!r} is not an http(s) link"))
    if name in KOMMUNKOD_FIELDS and not is_kommunkod(text):
        issues.append(FieldIssue(where, f"{text!r} is not a kommunkod"))


def _check_ref(ref: records_pb2.RecordRef, where: str, issues: list[FieldIssue]) -> None:
    if not is_origin(ref.origin):
        issues.append(FieldIssue(f"{where}.origin", f"{ref.origin!r} is not a kommunkod"))
    if not RECORD_ID.match(ref.id):
        issues.append(FieldIssue(f"{where}.id", "is not a record id"))


def is_http_url(text: str) -> bool:
    """True for an absolute http or https URL with a host and no whitespace."""
    if any(c.isspace() for c in text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
