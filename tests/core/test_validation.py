"""Schema validation: every field rule, every issue at once with its path, no crashes."""

# The rule table below reads best one case per line.
# ruff: noqa: E501

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import factories
import pytest
import strategies
from factories import FIXED_NOW_MS, FeedWriter, make_record
from google.protobuf.message import DecodeError, Message
from hypothesis import given, settings
from hypothesis import strategies as st
from samverka.errors import FieldIssue, RecordInvalid
from samverka.protocol.validation import (
    MAX_ITEMS,
    MAX_TIME_MS,
    is_http_url,
    is_record_id,
    record_issues,
    validate_record,
)
from samverka.protocol.verify import Verdict, verify_entry
from samverka.v1 import records_pb2

R = records_pb2
Mutator = Callable[[R.Record], object]


def issues_of(record: R.Record, origin: str | None = None) -> dict[str, str]:
    return {i.field: i.message for i in record_issues(record, origin=origin)}


M = TypeVar("M", bound=Message)


def with_unknown(message_cls: type[M], message: M, field_number: int) -> M:
    """``message`` re-parsed with a varint field this version does not know appended."""
    raw = message.SerializeToString() + _varint(field_number << 3) + b"\x01"
    return message_cls.FromString(raw)


def _ended_before_started(record: R.Record) -> None:
    record.use_case.started_at_ms = 10
    record.use_case.ended_at_ms = 5


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


@pytest.mark.parametrize("body", factories.ALL_BODIES)
def test_factory_records_are_valid(body: str) -> None:
    validate_record(make_record(body))
    tombstone = factories.make_tombstone(make_record(body))
    validate_record(tombstone)


# (what is wrong, record maker, mutation, expected path, words in the message)
CASES: list[tuple[str, str, Mutator, str, str]] = [
    # header
    ("no id", "use_case", lambda r: setattr(r.header, "id", ""), "header.id", "1-128"),
    ("id starts with -", "use_case", lambda r: setattr(r.header, "id", "-x"), "header.id", ""),
    ("id newline", "use_case", lambda r: setattr(r.header, "id", "uc-1\n"), "header.id", ""),
    ("id too long", "use_case", lambda r: setattr(r.header, "id", "a" * 129), "header.id", ""),
    ("id with space", "use_case", lambda r: setattr(r.header, "id", "a b"), "header.id", ""),
    ("origin unknown", "use_case", lambda r: setattr(r.header, "origin", "9999"), "header.origin", "kommunkod"),
    ("origin empty", "use_case", lambda r: setattr(r.header, "origin", ""), "header.origin", ""),
    ("version 0", "use_case", lambda r: setattr(r.header, "version", 0), "header.version", "1 or more"),
    ("no visibility", "use_case", lambda r: setattr(r.header, "visibility", 0), "header.visibility", "required"),
    ("bad visibility", "use_case", lambda r: setattr(r.header, "visibility", 9), "header.visibility", "not a Visibility"),
    ("bad language", "use_case", lambda r: setattr(r.header, "language", "Swedish"), "header.language", "BCP 47"),
    ("language newline", "use_case", lambda r: setattr(r.header, "language", "sv\n"), "header.language", ""),
    ("updated before created", "use_case", lambda r: setattr(r.header, "updated_at_ms", 1), "header.updated_at_ms", "before"),
    ("negative time", "use_case", lambda r: setattr(r.header, "created_at_ms", -1), "header.created_at_ms", "negative"),
    ("time in year 3000", "use_case", lambda r: setattr(r.header, "updated_at_ms", MAX_TIME_MS), "header.updated_at_ms", "Unix time"),
    ("no kind", "use_case", lambda r: setattr(r.header, "kind", 0), "header.kind", "required"),
    ("unknown kind", "use_case", lambda r: setattr(r.header, "kind", 99), "header.kind", "not a RecordKind"),
    ("kind and body differ", "use_case", lambda r: setattr(r.header, "kind", R.RECORD_KIND_LESSON), "header.kind", "body is use_case"),
    ("empty tag", "use_case", lambda r: r.header.tags.extend(["ok", ""]), "header.tags[1]", "empty"),
    ("blank tag", "use_case", lambda r: r.header.tags.append("  "), "header.tags[0]", "empty"),
    ("repeated tag", "use_case", lambda r: r.header.tags.extend(["ai", "ai"]), "header.tags[1]", "repeats"),
    ("long tag", "use_case", lambda r: r.header.tags.append("t" * 65), "header.tags[0]", "at most 64"),
    ("tag newline", "use_case", lambda r: r.header.tags.append("a\nb"), "header.tags[0]", "single line"),
    ("too many tags", "use_case", lambda r: r.header.tags.extend(f"t{i}" for i in range(MAX_ITEMS + 1)), "header.tags", "at most 64"),
    ("no body", "use_case", lambda r: r.ClearField("use_case"), "body", "required"),
    ("no header", "use_case", lambda r: r.ClearField("header"), "header", "required"),
    # text
    ("no title", "use_case", lambda r: setattr(r.use_case, "title", ""), "use_case.title", "required"),
    ("blank title", "use_case", lambda r: setattr(r.use_case, "title", " \t "), "use_case.title", "empty"),
    ("long title", "use_case", lambda r: setattr(r.use_case, "title", "å" * 201), "use_case.title", "at most 200"),
    ("title newline", "use_case", lambda r: setattr(r.use_case, "title", "a\nb"), "use_case.title", "single line"),
    ("title U+2028", "use_case", lambda r: setattr(r.use_case, "title", "a\u2028b"), "use_case.title", "single line"),
    ("title NUL", "use_case", lambda r: setattr(r.use_case, "title", "a\x00b"), "use_case.title", "control"),
    ("title DEL", "use_case", lambda r: setattr(r.use_case, "title", "a\x7fb"), "use_case.title", "control"),
    ("title C1", "use_case", lambda r: setattr(r.use_case, "title", "a\x85b"), "use_case.title", "control"),
    ("title bidi override", "use_case", lambda r: setattr(r.use_case, "title", "abc\u202edcba"), "use_case.title", "bidi"),
    ("summary bidi isolate", "use_case", lambda r: setattr(r.use_case, "summary", "x\u2067y"), "use_case.summary", "bidi"),
    ("long summary", "use_case", lambda r: setattr(r.use_case, "summary", "x" * 2001), "use_case.summary", "at most 2000"),
    ("long description", "use_case", lambda r: setattr(r.use_case, "description", "x" * 20_001), "use_case.description", "at most 20000"),
    ("empty technique", "use_case", lambda r: r.use_case.techniques.append(""), "use_case.techniques[0]", "empty"),
    ("too many vendors", "use_case", lambda r: r.use_case.vendors.extend(f"v{i}" for i in range(65)), "use_case.vendors", "65 items"),
    ("long contact role", "use_case", lambda r: setattr(r.use_case, "contact_role", "r" * 201), "use_case.contact_role", "at most 200"),
    # enums
    ("no service area", "use_case", lambda r: setattr(r.use_case, "service_area", 0), "use_case.service_area", "required"),
    ("unknown service area", "use_case", lambda r: setattr(r.use_case, "service_area", 99), "use_case.service_area", "not a ServiceArea"),
    ("negative status", "use_case", lambda r: setattr(r.use_case, "status", -1), "use_case.status", "not a UseCaseStatus"),
    ("no status", "use_case", lambda r: setattr(r.use_case, "status", 0), "use_case.status", "required"),
    ("unknown risk class", "use_case", lambda r: setattr(r.use_case, "risk_class", 42), "use_case.risk_class", "not a RiskClass"),
    # links
    ("ftp impact assessment", "use_case", lambda r: r.use_case.impact_assessment.CopyFrom(R.Link(url="ftp://x.se/a")), "use_case.impact_assessment.url", "http(s)"),
    ("link without url", "use_case", lambda r: r.use_case.impact_assessment.CopyFrom(R.Link(title="DPIA")), "use_case.impact_assessment.url", "required"),
    ("javascript link", "use_case", lambda r: r.use_case.links.add(url="javascript:alert(1)"), "use_case.links[0].url", "http(s)"),
    ("data link", "use_case", lambda r: r.use_case.links.add(url="data:text/html,<b>"), "use_case.links[0].url", "http(s)"),
    ("link with credentials", "use_case", lambda r: r.use_case.links.add(url="https://kommun.se@evil.example/"), "use_case.links[0].url", "http(s)"),
    ("link without host", "use_case", lambda r: r.use_case.links.add(url="https:///path"), "use_case.links[0].url", "http(s)"),
    ("link bad port", "use_case", lambda r: r.use_case.links.add(url="https://x.se:99999/"), "use_case.links[0].url", "http(s)"),
    ("link with space", "use_case", lambda r: r.use_case.links.add(url="https://x.se/a b"), "use_case.links[0].url", ""),
    ("link with backslash", "use_case", lambda r: r.use_case.links.add(url="https://x.se\\@evil.se/"), "use_case.links[0].url", "http(s)"),
    ("relative link", "use_case", lambda r: r.use_case.links.add(url="/relative"), "use_case.links[0].url", "http(s)"),
    ("long link", "use_case", lambda r: r.use_case.links.add(url="https://x.se/" + "a" * 2048), "use_case.links[0].url", "at most 2048"),
    ("link title newline", "use_case", lambda r: r.use_case.links.add(url="https://x.se", title="a\nb"), "use_case.links[0].title", "single line"),
    ("ftp solution url", "solution", lambda r: setattr(r.solution, "url", "ftp://x.se/mall"), "solution.url", "http(s)"),
    ("file solution url", "solution", lambda r: setattr(r.solution, "url", "file:///etc/passwd"), "solution.url", "http(s)"),
    ("solution link", "solution", lambda r: r.solution.links.add(url="mailto:a@b.se"), "solution.links[0].url", "http(s)"),
    ("recommendation link", "recommendation", lambda r: r.recommendation.links.add(url="vbscript:x"), "recommendation.links[0].url", "http(s)"),
    # kommunkoder and references
    ("hub as partner", "use_case", lambda r: r.use_case.partner_kommuner.append("0000"), "use_case.partner_kommuner[0]", "kommunkod"),
    ("unknown partner", "use_case", lambda r: r.use_case.partner_kommuner.append("2030"), "use_case.partner_kommuner[0]", "kommunkod"),
    ("partner too long", "use_case", lambda r: r.use_case.partner_kommuner.append("20299"), "use_case.partner_kommuner[0]", "at most 4"),
    ("repeated partner", "use_case", lambda r: r.use_case.partner_kommuner.extend(["1472", "1472"]), "use_case.partner_kommuner[1]", "repeats"),
    ("bad reuse origin", "use_case", lambda r: r.use_case.reuses.add(origin="x", id="sol-1"), "use_case.reuses[0].origin", "kommunkod"),
    ("bad reuse id", "use_case", lambda r: r.use_case.reuses.add(origin="1472", id=""), "use_case.reuses[0].id", "record id"),
    ("bad lesson ref", "lesson", lambda r: setattr(r.lesson.use_case, "id", "bad id"), "lesson.use_case.id", "record id"),
    ("bad solution ref", "solution", lambda r: r.solution.use_cases.add(origin="99", id="a"), "solution.use_cases[0].origin", "kommunkod"),
    ("no adopted solution", "adoption", lambda r: r.adoption.ClearField("solution"), "adoption.solution", "required"),
    ("own solution adopted", "adoption", lambda r: setattr(r.adoption.solution, "origin", "2029"), "adoption.solution.origin", "own solution"),
    ("recommendation of a kommun", "recommendation", lambda r: setattr(r.header, "origin", "2029"), "header.kind", "council"),
    # numbers
    ("negative cost", "use_case", lambda r: setattr(r.use_case.cost, "one_off_sek", -1), "use_case.cost.one_off_sek", "negative"),
    ("negative yearly cost", "solution", lambda r: setattr(r.solution.cost, "yearly_sek", -5), "solution.cost.yearly_sek", "negative"),
    ("NaN benefit", "use_case", lambda r: r.use_case.benefits.add(metric="timmar", value=float("nan")), "use_case.benefits[0].value", "finite"),
    ("infinite benefit", "use_case", lambda r: r.use_case.benefits.add(metric="timmar", value=float("inf")), "use_case.benefits[0].value", "finite"),
    ("-inf benefit", "use_case", lambda r: r.use_case.benefits.add(metric="t", value=float("-inf")), "use_case.benefits[0].value", "finite"),
    ("ended before started", "use_case", _ended_before_started, "use_case.ended_at_ms", "before"),
    ("negative adoption time", "adoption", lambda r: setattr(r.adoption, "adopted_at_ms", -1), "adoption.adopted_at_ms", "negative"),
    # other required fields and formats
    ("no lesson category", "lesson", lambda r: setattr(r.lesson, "category", 0), "lesson.category", "required"),
    ("no solution type", "solution", lambda r: setattr(r.solution, "solution_type", 0), "solution.solution_type", "required"),
    ("no solution summary", "solution", lambda r: setattr(r.solution, "summary", ""), "solution.summary", "required"),
    ("no recommendation summary", "recommendation", lambda r: setattr(r.recommendation, "summary", ""), "recommendation.summary", "required"),
    ("bad content hash", "solution", lambda r: setattr(r.solution, "content_hash", "md5:abc"), "solution.content_hash", "sha256"),
    ("upper-case content hash", "solution", lambda r: setattr(r.solution, "content_hash", "sha256:" + "AB" * 32), "solution.content_hash", "sha256"),
    ("content hash newline", "solution", lambda r: setattr(r.solution, "content_hash", "sha256:" + "ab" * 32 + "\n"), "solution.content_hash", ""),
    ("bad licence", "solution", lambda r: setattr(r.solution, "licence", "CC BY"), "solution.licence", "SPDX"),
    ("licence newline", "solution", lambda r: setattr(r.solution, "licence", "MIT\n"), "solution.licence", ""),
    # unknown fields
    ("unknown body field", "use_case", lambda r: r.use_case.CopyFrom(with_unknown(R.UseCase, r.use_case, 99)), "use_case.99", "unknown"),
    ("unknown header field", "use_case", lambda r: r.header.CopyFrom(with_unknown(R.RecordHeader, r.header, 77)), "header.77", "unknown"),
    ("unknown record field", "use_case", lambda r: r.CopyFrom(with_unknown(R.Record, r, 30)), "30", "unknown"),
    ("unknown link field", "use_case", lambda r: r.use_case.links.append(with_unknown(R.Link, R.Link(url="https://x.se"), 5)), "use_case.links[0].5", "unknown"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "mutate", "path", "words"),
    [pytest.param(body, m, p, w, id=name) for name, body, m, p, w in CASES],
)
def test_each_field_rule(body: str, mutate: Mutator, path: str, words: str) -> None:
    record = make_record(body)
    mutate(record)
    found = issues_of(record)
    assert path in found, found
    assert words in found[path]
    with pytest.raises(RecordInvalid) as info:
        validate_record(record)
    assert FieldIssue(path, found[path]) in info.value.issues
    assert path in str(info.value)


def test_header_origin_must_match_the_feed() -> None:
    found = issues_of(make_record("use_case"), origin="1472")
    assert "differs" in found["header.origin"]


def test_every_issue_is_reported_at_once() -> None:
    record = make_record("use_case")
    record.header.id = ""
    record.header.visibility = records_pb2.VISIBILITY_UNSPECIFIED
    record.use_case.title = ""
    record.use_case.links.add(url="ftp://x")
    record.use_case.partner_kommuner.append("0000")
    record.use_case.cost.one_off_sek = -3
    assert set(issues_of(record)) == {
        "header.id",
        "header.visibility",
        "use_case.title",
        "use_case.links[0].url",
        "use_case.partner_kommuner[0]",
        "use_case.cost.one_off_sek",
    }


def test_a_record_without_header_still_reports_its_body() -> None:
    record = make_record("use_case")
    record.ClearField("header")
    record.use_case.title = "a\nb"
    assert set(issues_of(record)) == {"header", "use_case.title"}


@pytest.mark.parametrize("body", factories.ALL_BODIES)
def test_a_tombstone_need_not_fill_required_fields(body: str) -> None:
    record = factories.make_tombstone(make_record(body))
    msg = getattr(record, body)
    for name in ("title", "summary", "solution"):
        if name in msg.DESCRIPTOR.fields_by_name:
            msg.ClearField(name)
    assert issues_of(record) == {}
    bare = R.Record(header=record.header)
    assert issues_of(bare) == {}


def test_a_tombstone_is_still_checked_for_sizes_and_links() -> None:
    record = factories.make_tombstone(make_record("use_case"))
    record.use_case.links.add(url="javascript:x")
    assert "use_case.links[0].url" in issues_of(record)


def test_negative_benefits_and_multiline_long_text_are_fine() -> None:
    record = make_record("use_case")
    record.use_case.benefits.add(metric="handläggningstid", value=-3.5, unit="dagar")
    record.use_case.description = "Rad ett\r\nRad två\tmed tabb"
    record.use_case.links.add(url="HTTPS://Kommun.SE:8443/väg?q=å#x")
    assert issues_of(record) == {}


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://www.leksand.se/ai", True),
        ("http://127.0.0.1:8080/", True),
        ("https://[::1]/", True),
        ("https://äldreomsorg.se/", True),
        ("https://", False),
        ("https:", False),
        ("//example.se/x", False),
        ("javascript://example.se/%0aalert(1)", False),
        ("https://exa mple.se", False),
        ("https://example.se/\x00", False),
        ("https://example.se/\u202e", False),
        ("https://user@example.se", False),
        ("https://example.se:0/", False),
        ("https://example.se:abc/", False),
        ("https://[::1/", False),
        ("", False),
    ],
)
def test_is_http_url(url: str, ok: bool) -> None:
    assert is_http_url(url) is ok


def test_record_ids() -> None:
    assert is_record_id("uc-copilot.pilot_2")
    assert is_record_id("a" * 128)
    for bad in ("", "a" * 129, "-a", ".a", "a/b", "å", "a\n", "a b"):
        assert not is_record_id(bad)


# -- properties ------------------------------------------------------------------------


@given(record=strategies.valid_records())
def test_valid_records_pass_and_survive_serialization(record: R.Record) -> None:
    assert record_issues(record) == []
    again = R.Record.FromString(record.SerializeToString())
    assert again == record
    assert record_issues(again) == []


@settings(max_examples=max(50, settings().max_examples // 2))
@given(record=strategies.valid_records(origin=factories.LEKSAND))
def test_valid_records_sign_and_verify(record: R.Record) -> None:
    writer = FeedWriter(record.header.origin)
    keys, state = factories.receiver(writer)
    verdict, parsed = verify_entry(writer.append(record), keys, state, now_ms=FIXED_NOW_MS)
    assert verdict is Verdict.ACCEPTED and parsed.record == record


@given(record=strategies.arbitrary_records())
def test_arbitrary_records_never_crash_validation(record: R.Record) -> None:
    issues = record_issues(record)
    assert all(isinstance(i, FieldIssue) and i.field and i.message for i in issues)
    try:
        validate_record(record)
    except RecordInvalid as exc:
        assert exc.issues == issues
    else:
        assert issues == []


@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_that_decode_never_crash_validation(raw: bytes) -> None:
    try:
        record = R.Record.FromString(raw)
    except DecodeError:
        return
    try:
        validate_record(record)
    except RecordInvalid as exc:
        assert exc.issues


@given(record=strategies.valid_records(), data=st.data())
def test_one_bad_field_in_a_valid_record_is_reported_alone(
    record: R.Record, data: st.DataObject
) -> None:
    """Breaking one rule in a valid record yields exactly that field's issue."""
    rule = data.draw(st.sampled_from(["title", "link", "tag", "origin"]))
    body = record.WhichOneof("body")
    assert body is not None
    if rule == "title":
        name = "note" if body == "adoption" else "title"
        setattr(getattr(record, body), name, "x\x00")
        path = f"{body}.{name}"
    elif rule == "link" and body != "adoption" and body != "lesson":
        getattr(record, body).links.add(url="javascript:void(0)")
        path = f"{body}.links[{len(getattr(record, body).links) - 1}].url"
    elif rule == "tag" and len(record.header.tags) < MAX_ITEMS:
        record.header.tags.append("")
        path = f"header.tags[{len(record.header.tags) - 1}]"
    else:
        record.header.origin = "9999"
        path = "header.origin"
    found = issues_of(record)
    if path == "header.origin":
        # A bad origin may also make the "council" check speak up.
        assert path in found
    else:
        assert list(found) == [path], found
