"""Schema validation of records (pure).

Protobuf gives us types; this module adds what the wire format cannot say: which
fields are required, that enum values are known, how long text may be and which
characters it may hold, that numbers are finite and not negative, that links are
http(s) and that kommunkoder are real. Every problem is reported at once, with its
dotted field path (``use_case.links[2].url``), so a person fixing an import file
sees them all.

Decisions worth knowing:

- **Unknown fields are refused.** A receiver cannot validate what it does not know
  (a new link field could carry any scheme), so a record with fields this version
  does not know is invalid, reported at ``<path>.<N>`` with the field number. Adding
  a field to ``samverka.v1`` therefore means upgrading receivers before writers.
- **Text rules are per field** (:data:`TEXT_RULES`): a length in characters and
  whether line breaks are allowed. Control characters and the Unicode bidi controls
  (which make text display differently from what it says, "Trojan Source") are
  refused everywhere; empty items in lists and repeated list items are refused.
- **Numbers**: integers (costs, times) may not be negative; times must be before
  the year 3000; a benefit's value must be finite (a negative benefit is allowed:
  a measured loss is worth sharing too).
- **Links** are absolute http(s) URLs with a host, no credentials, no whitespace
  or backslashes: the same rule for Link.url (also UseCase.impact_assessment) and
  Solution.url. The ATRS and AI Act links (``UseCase.website``, a dataset's,
  assessment's, FRIA's and provider's) must be https (:data:`HTTPS_URL_FIELDS`).
- **The ATRS and AI Act fields** (docs/SCHEMA.md) have their own item limits
  (:data:`ITEM_LIMITS`: at most 32 risks, 16 models …), names required in each item
  (:data:`ITEM_REQUIRED`), formats for the contact e-mail, the EU database id and a
  supplier's company number, and three consistency rules: an Annex III area only with
  the high risk class, no Art. 50 case twice, and a FRIA's date or findings only when
  it was done.
- **Tombstones** keep their body (history stays), so its sizes and characters are
  still checked, but required fields are not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from samverka.errors import FieldIssue, RecordInvalid
from samverka.protocol.erasure import erasure_issues
from samverka.protocol.kommuner import HUB_ORIGIN, is_kommunkod, is_origin
from samverka.protocol.wire import MAX_STORED_INT
from samverka.v1 import records_pb2

# Anchored with \A and \Z (not ^ and $, which also match before a trailing newline),
# so .match and .fullmatch both check the whole text.
RECORD_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
CONTENT_HASH = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
LANGUAGE = re.compile(r"\A[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")
SPDX_ID = re.compile(r"\A[A-Za-z0-9.+-]{1,64}( (AND|OR|WITH) [A-Za-z0-9.+-]{1,64})*\Z")

#: Default limit on a single-line text field, in characters.
MAX_SHORT_TEXT = 200
#: Limit on summaries and other short multi-line text.
MAX_TEXT = 2_000
#: Limit on long-form fields (descriptions, lesson text, bodies).
MAX_LONG_TEXT = 20_000
MAX_URL = 2_048
#: Limit on the number of items in any repeated field.
MAX_ITEMS = 64
#: Times (Unix ms) must lie before 3000-01-01; anything later is a unit mistake.
MAX_TIME_MS = 32_503_680_000_000
#: Dates of assessments (ATRS 2.5, the FRIA) lie after 1990-01-01: earlier is a mistake.
MIN_ASSESSMENT_TIME_MS = 631_152_000_000
#: An e-mail address (RFC 5321's 254 characters): one @, a dotted domain, no spaces.
EMAIL = re.compile(
    r"\A[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+\Z"
)
#: The EU database's registration number (its format is not published: a plain token).
EU_DATABASE_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._/-]{0,63}\Z")
#: A company registration number: organisationsnummer 556677-8899, or a foreign one.
COMPANY_NUMBER = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9 -]{0,31}\Z")


@dataclass(frozen=True, slots=True)
class TextRule:
    max_chars: int = MAX_SHORT_TEXT
    #: Whether line breaks and tabs are allowed.
    multiline: bool = False


_LONG = TextRule(MAX_LONG_TEXT, multiline=True)
_MEDIUM = TextRule(MAX_TEXT, multiline=True)

#: Text rules by full field name; every other string field is single-line, 200 chars.
TEXT_RULES: dict[str, TextRule] = {
    "samverka.v1.RecordHeader.tags": TextRule(64),
    "samverka.v1.Link.url": TextRule(MAX_URL),
    "samverka.v1.Solution.url": TextRule(MAX_URL),
    "samverka.v1.Solution.content_hash": TextRule(71),
    "samverka.v1.Solution.licence": TextRule(200),
    "samverka.v1.UseCase.partner_kommuner": TextRule(4),
    "samverka.v1.Benefit.unit": TextRule(64),
    "samverka.v1.UseCase.summary": _MEDIUM,
    "samverka.v1.Solution.summary": _MEDIUM,
    "samverka.v1.Recommendation.summary": _MEDIUM,
    "samverka.v1.UseCase.human_oversight": _MEDIUM,
    "samverka.v1.Benefit.method": _MEDIUM,
    "samverka.v1.Cost.note": _MEDIUM,
    "samverka.v1.Adoption.note": _MEDIUM,
    "samverka.v1.PolicyOverride.reason": _MEDIUM,
    "samverka.v1.KommunProfile.note": _MEDIUM,
    "samverka.v1.UseCase.description": _LONG,
    "samverka.v1.Lesson.what_worked": _LONG,
    "samverka.v1.Lesson.what_did_not": _LONG,
    "samverka.v1.Lesson.advice": _LONG,
    "samverka.v1.Solution.how_to_adopt": _LONG,
    "samverka.v1.Recommendation.body": _LONG,
    # ATRS and AI Act fields (issue 13): free text is at most 2,000 characters, the
    # system architecture 20,000; names, roles and versions keep the 200 default.
    "samverka.v1.UseCase.website": TextRule(MAX_URL),
    "samverka.v1.UseCase.contact_email": TextRule(254),
    "samverka.v1.UseCase.intended_purpose": _MEDIUM,
    "samverka.v1.UseCase.dpia_summary": _MEDIUM,
    "samverka.v1.UseCase.eu_database_id": TextRule(64),
    "samverka.v1.UseCase.transparency_notice": _MEDIUM,
    # Eurocities register fields (0.3.1).
    "samverka.v1.UseCase.proportionality": _MEDIUM,
    "samverka.v1.UseCase.lawful_basis": _MEDIUM,
    "samverka.v1.Supplier.company_number": TextRule(32),
    "samverka.v1.Accountability.data_access_terms": _MEDIUM,
    "samverka.v1.Rationale.scope": _MEDIUM,
    "samverka.v1.Rationale.expected_benefits": _MEDIUM,
    "samverka.v1.Rationale.previous_process": _MEDIUM,
    "samverka.v1.Rationale.alternatives_considered": _MEDIUM,
    "samverka.v1.DecisionProcess.process_integration": _MEDIUM,
    "samverka.v1.DecisionProcess.provided_information": _MEDIUM,
    "samverka.v1.DecisionProcess.frequency_and_scale": _MEDIUM,
    "samverka.v1.DecisionProcess.required_training": _MEDIUM,
    "samverka.v1.DecisionProcess.appeals_and_review": _MEDIUM,
    "samverka.v1.TechnicalSpecification.system_architecture": _LONG,
    "samverka.v1.TechnicalSpecification.maintenance": _MEDIUM,
    "samverka.v1.AiModel.version": TextRule(64),
    "samverka.v1.AiModel.task": _MEDIUM,
    "samverka.v1.AiModel.input": _MEDIUM,
    "samverka.v1.AiModel.output": _MEDIUM,
    "samverka.v1.AiModel.architecture": _MEDIUM,
    "samverka.v1.AiModel.performance": _MEDIUM,
    "samverka.v1.Dataset.url": TextRule(MAX_URL),
    "samverka.v1.Dataset.description": _MEDIUM,
    "samverka.v1.Dataset.collection": _MEDIUM,
    "samverka.v1.Dataset.quantity": _MEDIUM,
    "samverka.v1.Dataset.sensitive_attributes": _MEDIUM,
    "samverka.v1.Dataset.completeness_and_representativeness": _MEDIUM,
    "samverka.v1.Dataset.cleaning": _MEDIUM,
    "samverka.v1.Dataset.sharing": _MEDIUM,
    "samverka.v1.Dataset.access_and_storage": _MEDIUM,
    "samverka.v1.Assessment.summary": _MEDIUM,
    "samverka.v1.Assessment.url": TextRule(MAX_URL),
    "samverka.v1.Risk.category": TextRule(64),
    "samverka.v1.Risk.description": _MEDIUM,
    "samverka.v1.Risk.mitigation": _MEDIUM,
    "samverka.v1.FundamentalRightsAssessment.summary": _MEDIUM,
    "samverka.v1.FundamentalRightsAssessment.url": TextRule(MAX_URL),
    "samverka.v1.AiSystemProvider.url": TextRule(MAX_URL),
    "samverka.v1.AiSystemProvider.eu_database_url": TextRule(MAX_URL),
    "samverka.v1.Solution.intended_purpose": _MEDIUM,
    "samverka.v1.Solution.software_version": TextRule(64),
    "samverka.v1.Solution.platforms": TextRule(64),
}
DEFAULT_TEXT_RULE = TextRule()
#: String fields with a format of their own (checked with the header or the ref);
#: their formats admit no control characters, spaces or overlong values.
FORMATTED_FIELDS = frozenset(
    {
        "samverka.v1.RecordHeader.id",
        "samverka.v1.RecordHeader.origin",
        "samverka.v1.RecordHeader.language",
        "samverka.v1.RecordRef.origin",
        "samverka.v1.RecordRef.id",
    }
)

#: String fields holding an http(s) link.
URL_FIELDS = frozenset({"samverka.v1.Link.url", "samverka.v1.Solution.url"})
#: String fields holding an https link (the ATRS and AI Act fields: published records).
HTTPS_URL_FIELDS = frozenset(
    {
        "samverka.v1.UseCase.website",
        "samverka.v1.Dataset.url",
        "samverka.v1.Assessment.url",
        "samverka.v1.FundamentalRightsAssessment.url",
        "samverka.v1.AiSystemProvider.url",
        "samverka.v1.AiSystemProvider.eu_database_url",
    }
)
#: String fields holding kommunkoder (the hub's "0000" is not a kommun).
KOMMUNKOD_FIELDS = frozenset({"samverka.v1.UseCase.partner_kommuner"})
#: Integer fields holding a Unix time in milliseconds.
TIME_FIELDS = frozenset(
    {
        "samverka.v1.RecordHeader.created_at_ms",
        "samverka.v1.RecordHeader.updated_at_ms",
        "samverka.v1.UseCase.started_at_ms",
        "samverka.v1.UseCase.ended_at_ms",
        "samverka.v1.UseCase.revision_due_at_ms",
        "samverka.v1.Adoption.adopted_at_ms",
        "samverka.v1.Assessment.completed_at_ms",
        "samverka.v1.FundamentalRightsAssessment.completed_at_ms",
    }
)
#: Time fields that are dates of assessments (after MIN_ASSESSMENT_TIME_MS).
ASSESSMENT_TIME_FIELDS = frozenset(
    {
        "samverka.v1.Assessment.completed_at_ms",
        "samverka.v1.FundamentalRightsAssessment.completed_at_ms",
    }
)
#: Repeated fields with a limit of their own (others: MAX_ITEMS).
ITEM_LIMITS: dict[str, int] = {
    "samverka.v1.Accountability.suppliers": 16,
    "samverka.v1.UseCase.models": 16,
    "samverka.v1.Solution.models": 16,
    "samverka.v1.UseCase.datasets": 32,
    "samverka.v1.UseCase.assessments": 16,
    "samverka.v1.UseCase.risks": 32,
    "samverka.v1.AiModel.datasets": 32,
    "samverka.v1.UseCase.transparency_obligations": 5,
    "samverka.v1.Solution.platforms": 16,
}
#: The field each item of these messages must fill (as a Link its url).
ITEM_REQUIRED: dict[str, str] = {
    "samverka.v1.Link": "url",
    "samverka.v1.Supplier": "name",
    "samverka.v1.AiModel": "name",
    "samverka.v1.Dataset": "name",
    "samverka.v1.Assessment": "name",
    "samverka.v1.Risk": "name",
}

KIND_BODY = {
    records_pb2.RECORD_KIND_USE_CASE: "use_case",
    records_pb2.RECORD_KIND_LESSON: "lesson",
    records_pb2.RECORD_KIND_SOLUTION: "solution",
    records_pb2.RECORD_KIND_RECOMMENDATION: "recommendation",
    records_pb2.RECORD_KIND_ADOPTION: "adoption",
    records_pb2.RECORD_KIND_KOMMUN_PROFILE: "kommun_profile",
    records_pb2.RECORD_KIND_ERASURE: "erasure",
}

#: The one id a kommun profile has: one profile per origin, each new version replaces it.
PROFILE_ID = "kommunprofil"

#: Fields a live (not retracted) record must fill, per body.
REQUIRED = {
    "use_case": ("title", "summary", "service_area", "status"),
    "lesson": ("title", "category"),
    "solution": ("title", "summary", "solution_type"),
    "recommendation": ("title", "summary"),
    "adoption": ("solution",),
    "kommun_profile": ("population_band", "kommun_group"),
    "erasure": (),  # samverka.protocol.erasure.erasure_issues checks it whole
}

# C0 controls other than tab, line feed and carriage return; DEL; C1 controls; the
# bidi embedding, override and isolate controls.
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What single-line fields refuse on top: line and paragraph breaks and tabs.
_LINE_BREAKS = re.compile("[\t\n\r\u2028\u2029]")


def validate_record(record: records_pb2.Record, *, origin: str | None = None) -> None:
    """Raise RecordInvalid listing every problem; return None for a valid record.

    ``origin`` is the feed the record arrives in; the header must name the same.
    """
    issues = record_issues(record, origin=origin)
    if issues:
        raise RecordInvalid(issues)


def is_record_id(text: str) -> bool:
    """1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit."""
    return RECORD_ID.fullmatch(text) is not None


def record_issues(record: records_pb2.Record, *, origin: str | None = None) -> list[FieldIssue]:
    """Every schema problem of ``record``, in field order; empty when it is valid."""
    issues: list[FieldIssue] = []
    if record.HasField("header"):
        _header_issues(record, origin, issues)
    else:
        issues.append(FieldIssue("header", "is required"))
    h = record.header

    body = record.WhichOneof("body")
    if body is None and not h.tombstone:
        issues.append(FieldIssue("body", "is required unless the record is a tombstone"))

    _walk(record, "", issues)
    if body is None:
        return issues
    msg = getattr(record, body)
    if not h.tombstone:
        for name in REQUIRED[body]:
            if _missing(msg, name):
                issues.append(FieldIssue(f"{body}.{name}", "is required"))
    if body == "use_case":
        uc = record.use_case
        if uc.started_at_ms and uc.ended_at_ms and uc.ended_at_ms < uc.started_at_ms:
            issues.append(FieldIssue("use_case.ended_at_ms", "is before started_at_ms"))
        _ai_act_issues(uc, issues)
    elif body == "adoption" and h.origin and record.adoption.solution.origin == h.origin:
        issues.append(
            FieldIssue("adoption.solution.origin", "a kommun cannot adopt its own solution")
        )
    if body == "erasure":
        issues.extend(FieldIssue(path, problem) for path, problem in erasure_issues(record))
        if not is_record_id(record.erasure.record_id):
            issues.append(FieldIssue("erasure.record_id", "is not a record id"))
    if body == "adoption" and record.adoption.HasField("policy_override"):
        override = record.adoption.policy_override
        if not override.rules:
            issues.append(FieldIssue("adoption.policy_override.rules", "names no rule"))
        if not override.reason.strip():
            issues.append(FieldIssue("adoption.policy_override.reason", "is required"))
    return issues


def _ai_act_issues(uc: records_pb2.UseCase, issues: list[FieldIssue]) -> None:
    """The AI Act fields' consistency: what one field says must not contradict another."""
    if uc.high_risk_area and uc.risk_class not in (
        records_pb2.RISK_CLASS_UNSPECIFIED,
        records_pb2.RISK_CLASS_HIGH,
    ):
        issues.append(
            FieldIssue("use_case.high_risk_area", "an Annex III area needs the high risk class")
        )
    seen: set[int] = set()
    for i, obligation in enumerate(uc.transparency_obligations[:MAX_ITEMS]):
        if obligation in seen:
            issues.append(
                FieldIssue(f"use_case.transparency_obligations[{i}]", f"repeats {obligation}")
            )
        seen.add(obligation)
    if uc.HasField("fria") and uc.fria.HasField("done") and not uc.fria.done:
        for name in ("completed_at_ms", "summary", "url"):
            if getattr(uc.fria, name):
                issues.append(
                    FieldIssue(f"use_case.fria.{name}", "is given but the FRIA was not done")
                )


def _header_issues(
    record: records_pb2.Record, origin: str | None, issues: list[FieldIssue]
) -> None:
    h = record.header
    if not is_record_id(h.id):
        issues.append(
            FieldIssue("header.id", "1-128 characters of A-Z a-z 0-9 . _ -, starting alphanumeric")
        )
    if not is_origin(h.origin):
        issues.append(FieldIssue("header.origin", f"{h.origin[:8]!r} is not a kommunkod"))
    elif origin is not None and h.origin != origin:
        issues.append(FieldIssue("header.origin", f"{h.origin} differs from the feed's {origin}"))
    if h.version < 1:
        issues.append(FieldIssue("header.version", "must be 1 or more"))
    elif h.version > MAX_STORED_INT:
        issues.append(FieldIssue("header.version", f"is above {MAX_STORED_INT} (2^63 - 1)"))
    if h.visibility == records_pb2.VISIBILITY_UNSPECIFIED:
        issues.append(FieldIssue("header.visibility", "is required"))
    if h.language and not (len(h.language) <= 35 and LANGUAGE.fullmatch(h.language)):
        issues.append(FieldIssue("header.language", f"{h.language[:40]!r} is not a BCP 47 tag"))
    if h.updated_at_ms and h.created_at_ms and h.updated_at_ms < h.created_at_ms:
        issues.append(FieldIssue("header.updated_at_ms", "is before created_at_ms"))

    body = record.WhichOneof("body")
    expected = KIND_BODY.get(h.kind)
    if h.kind == records_pb2.RECORD_KIND_UNSPECIFIED:
        issues.append(FieldIssue("header.kind", "is required"))
    elif expected is not None and body is not None and body != expected:
        issues.append(FieldIssue("header.kind", f"says {expected} but the body is {body}"))
    if h.kind == records_pb2.RECORD_KIND_RECOMMENDATION and h.origin != HUB_ORIGIN:
        issues.append(FieldIssue("header.kind", "recommendations are published by the council"))
    if h.kind == records_pb2.RECORD_KIND_KOMMUN_PROFILE:
        if h.origin == HUB_ORIGIN:
            issues.append(FieldIssue("header.kind", "only a kommun has a kommun profile"))
        if h.id != PROFILE_ID:
            issues.append(FieldIssue("header.id", f"a kommun profile's id is {PROFILE_ID!r}"))


def _missing(msg: Message, name: str) -> bool:
    field = msg.DESCRIPTOR.fields_by_name[name]
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return not msg.HasField(name)
    # Blank text is reported as "is empty" by the walk, once.
    return not getattr(msg, name)


# -- the walk -------------------------------------------------------------------------
#
# Every record arriving from a peer is walked, so the walk is table-driven: what to
# check for each field (its kind, text rule, enum values, format) is worked out once
# per field descriptor (_plan_for), and a field's dotted path is only built when there
# is an issue to report. Checking field types and rule tables field by field, and
# formatting every path up front, made validation a third of a signature verification
# per entry (py-spy of hub ingest); the rules and the messages are the same.

_MESSAGE, _ENUM, _TEXT, _DOUBLE, _INT64, _OTHER = range(6)
# Text a single-line field refuses (forbidden characters or line breaks), in one search.
_NOT_SINGLE_LINE = re.compile(f"{_FORBIDDEN_CHARS.pattern}|{_LINE_BREAKS.pattern}")


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    """What to check for one field, worked out once from its descriptor."""

    name: str
    kind: int
    repeated: bool
    is_string: bool
    #: Enum fields: the known numbers and the enum's name.
    enum_numbers: frozenset[int] = frozenset()
    enum_name: str = ""
    #: Text fields (not formatted ones): the rule, the search for refused characters,
    #: and the format check of the few fields that have one (None: none).
    rule: TextRule = DEFAULT_TEXT_RULE
    refused_chars: re.Pattern[str] | None = None
    format_check: Callable[[str], str | None] | None = None
    #: Integer fields holding a Unix time, and its earliest value.
    is_time: bool = False
    min_time: int = 0
    #: Message fields holding a RecordRef.
    is_ref: bool = False
    #: Repeated fields: the most items.
    max_items: int = MAX_ITEMS


_plans: dict[FieldDescriptor, _FieldPlan] = {}


def _plan_for(field: FieldDescriptor) -> _FieldPlan:
    plan = _plans.get(field)
    if plan is None:
        plan = _plans[field] = _make_plan(field)
    return plan


def _make_plan(field: FieldDescriptor) -> _FieldPlan:
    name, full_name, repeated = field.name, field.full_name, field.is_repeated
    is_string = field.type == FieldDescriptor.TYPE_STRING
    max_items = ITEM_LIMITS.get(full_name, MAX_ITEMS)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        is_ref = field.message_type is records_pb2.RecordRef.DESCRIPTOR
        return _FieldPlan(name, _MESSAGE, repeated, is_string, is_ref=is_ref, max_items=max_items)
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        numbers = frozenset(v.number for v in field.enum_type.values)
        return _FieldPlan(
            name,
            _ENUM,
            repeated,
            is_string,
            enum_numbers=numbers,
            enum_name=field.enum_type.name,
            max_items=max_items,
        )
    if is_string:
        if full_name in FORMATTED_FIELDS:
            return _FieldPlan(name, _OTHER, repeated, is_string)
        rule = TEXT_RULES.get(full_name, DEFAULT_TEXT_RULE)
        return _FieldPlan(
            name,
            _TEXT,
            repeated,
            is_string,
            rule=rule,
            refused_chars=_FORBIDDEN_CHARS if rule.multiline else _NOT_SINGLE_LINE,
            format_check=_FORMAT_CHECKS.get(full_name),
            max_items=max_items,
        )
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return _FieldPlan(name, _DOUBLE, repeated, is_string)
    if field.type == FieldDescriptor.TYPE_INT64:
        min_time = MIN_ASSESSMENT_TIME_MS if full_name in ASSESSMENT_TIME_FIELDS else 0
        return _FieldPlan(
            name, _INT64, repeated, is_string, is_time=full_name in TIME_FIELDS, min_time=min_time
        )
    return _FieldPlan(name, _OTHER, repeated, is_string)


def _url_issue(text: str) -> str | None:
    return None if is_http_url(text) else f"{text[:80]!r} is not an http(s) link"


def _https_url_issue(text: str) -> str | None:
    if not is_http_url(text):
        return f"{text[:80]!r} is not an https link"
    return None if text[:8].lower() == "https://" else "must be an https link"


def _email_issue(text: str) -> str | None:
    return None if EMAIL.fullmatch(text) else f"{text[:80]!r} is not an e-mail address"


def _eu_database_id_issue(text: str) -> str | None:
    if EU_DATABASE_ID.fullmatch(text):
        return None
    return "must be 1-64 characters of A-Z a-z 0-9 . _ / -"


def _company_number_issue(text: str) -> str | None:
    if COMPANY_NUMBER.fullmatch(text):
        return None
    return "must be a company number: letters, digits, spaces and -"


def _kommunkod_issue(text: str) -> str | None:
    return None if is_kommunkod(text) else f"{text[:8]!r} is not a kommunkod"


def _content_hash_issue(text: str) -> str | None:
    return None if CONTENT_HASH.fullmatch(text) else "must be sha256:<64 lowercase hex>"


def _licence_issue(text: str) -> str | None:
    if SPDX_ID.fullmatch(text):
        return None
    return "must be an SPDX licence identifier or expression"


#: The format checks of string fields that have one: the issue's message, or None.
_FORMAT_CHECKS: dict[str, Callable[[str], str | None]] = {
    **dict.fromkeys(URL_FIELDS, _url_issue),
    **dict.fromkeys(HTTPS_URL_FIELDS, _https_url_issue),
    "samverka.v1.UseCase.contact_email": _email_issue,
    "samverka.v1.UseCase.eu_database_id": _eu_database_id_issue,
    "samverka.v1.Supplier.company_number": _company_number_issue,
    **dict.fromkeys(KOMMUNKOD_FIELDS, _kommunkod_issue),
    "samverka.v1.Solution.content_hash": _content_hash_issue,
    "samverka.v1.Solution.licence": _licence_issue,
}


def _walk(msg: Message, prefix: str, issues: list[FieldIssue]) -> None:
    """Check every set field of ``msg`` and the messages inside it."""
    unknown = UnknownFieldSet(msg)
    for i in range(len(unknown)):
        number = unknown[i].field_number
        issues.append(FieldIssue(f"{prefix}{number}", "is a field unknown to this version"))
    for field, value in msg.ListFields():
        plan = _plans.get(field) or _plan_for(field)
        kind = plan.kind
        if not plan.repeated:
            if kind == _TEXT:  # the common case, inline
                issue = _text_issue(plan, value)
                if issue is not None:
                    issues.append(FieldIssue(prefix + plan.name, issue))
            elif kind != _OTHER:
                _check_value(plan, value, prefix, plan.name, issues)
            continue
        items = list(value)
        if len(items) > plan.max_items:
            issues.append(
                FieldIssue(f"{prefix}{plan.name}", f"{len(items)} items, at most {plan.max_items}")
            )
            items = items[: plan.max_items]
        if plan.is_string:
            seen: set[str] = set()
            for i, item in enumerate(items):
                if kind == _TEXT:
                    issue = _text_issue(plan, item)
                    if issue is not None:
                        issues.append(FieldIssue(f"{prefix}{plan.name}[{i}]", issue))
                if item in seen:
                    issues.append(FieldIssue(f"{prefix}{plan.name}[{i}]", f"repeats {item[:40]!r}"))
                seen.add(item)
        elif kind != _OTHER:
            for i, item in enumerate(items):
                _check_value(plan, item, prefix, f"{plan.name}[{i}]", issues)
    required = ITEM_REQUIRED.get(msg.DESCRIPTOR.full_name)
    if required is not None and not getattr(msg, required):
        what = "a link" if required == "url" else f"a {msg.DESCRIPTOR.name}"
        issues.append(FieldIssue(f"{prefix}{required}", f"is required in {what}"))


def _check_value(
    plan: _FieldPlan, value: Any, prefix: str, name: str, issues: list[FieldIssue]
) -> None:
    """Check one value of a field; its path, ``prefix + name``, is built only if needed."""
    kind = plan.kind
    if kind == _TEXT:
        issue = _text_issue(plan, value)
        if issue is not None:
            issues.append(FieldIssue(prefix + name, issue))
    elif kind == _MESSAGE:
        where = prefix + name
        if plan.is_ref:
            _check_ref(value, where, issues)
        _walk(value, where + ".", issues)
    elif kind == _ENUM:
        if value not in plan.enum_numbers:
            issues.append(FieldIssue(prefix + name, f"{value} is not a {plan.enum_name}"))
    elif kind == _DOUBLE:
        if not math.isfinite(value):
            issues.append(FieldIssue(prefix + name, f"must be a finite number, not {value}"))
    elif kind == _INT64:
        if value < 0:
            issues.append(FieldIssue(prefix + name, "must not be negative"))
        elif plan.is_time and value >= MAX_TIME_MS:
            issues.append(FieldIssue(prefix + name, "is not a Unix time in milliseconds"))
        elif value and value < plan.min_time:
            issues.append(FieldIssue(prefix + name, "is before 1990"))


def _text_issue(plan: _FieldPlan, text: str) -> str | None:
    """What is wrong with a text value (the first problem), or None."""
    rule = plan.rule
    if len(text) > rule.max_chars:
        return f"{len(text)} characters, at most {rule.max_chars}"
    if not text or text.isspace():
        # Scalars are only listed when non-empty, so this is whitespace or a list item.
        return "is empty"
    assert plan.refused_chars is not None
    if plan.refused_chars.search(text):
        if _FORBIDDEN_CHARS.search(text):
            return "contains control or bidi-override characters"
        return "must be a single line"
    if plan.format_check is not None:
        return plan.format_check(text)
    return None


def _check_ref(ref: records_pb2.RecordRef, where: str, issues: list[FieldIssue]) -> None:
    if not is_origin(ref.origin):
        issues.append(FieldIssue(f"{where}.origin", f"{ref.origin[:8]!r} is not a kommunkod"))
    if not is_record_id(ref.id):
        issues.append(FieldIssue(f"{where}.id", "is not a record id"))


def is_http_url(text: str) -> bool:
    """True for an absolute http or https URL with a valid host and port.

    Refused besides other schemes: whitespace, control characters and backslashes
    (browsers read ``\\`` as ``/``, which can move the host), and credentials in the
    URL (``https://trusted.example@evil.example/`` shows one host and opens another).
    """
    if any(c.isspace() or c == "\\" for c in text) or _FORBIDDEN_CHARS.search(text):
        return False
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and port_ok
    )


# -- placeholder text (authoring only) --------------------------------------------------
#
# A record titled "…" or summarised "TODO" says nothing to the kommuner that find it.
# The node refuses to publish one (issue 14), but receivers do not: an entry signed by
# an older node with such text stays valid everywhere, so this is no schema rule and
# never makes a feed unverifiable. Drafts may hold placeholders: they never leave the
# node, and they are where unfinished text belongs.

#: Whole texts (case-folded, trimmed of punctuation) that are placeholders, not content.
PLACEHOLDER_WORDS = frozenset(
    {
        "todo", "tbd", "tba", "fixme", "xxx", "placeholder", "platshållare",
        "lorem ipsum", "test", "testar", "exempel", "example", "titel", "rubrik",
        "title", "sammanfattning", "summary", "beskrivning", "description", "text",
        "n/a", "saknas", "ej ifyllt", "fyll i", "kommer", "kommer senare",
    }
)  # fmt: skip
#: A text that starts with one of these words (then a non-letter) is a note to self.
_PLACEHOLDER_START = re.compile(r"\A(todo|tbd|fixme|xxx)(?![\w-])", re.IGNORECASE)
#: The fields whose text people read first in every list and search hit.
PLACEHOLDER_FIELDS = {
    "use_case": ("title", "summary"),
    "lesson": ("title",),
    "solution": ("title", "summary"),
    "recommendation": ("title", "summary"),
}
_FIELD_SV = {"title": "titeln", "summary": "sammanfattningen"}


def is_placeholder(text: str) -> bool:
    """Text that only holds a place: no letter or digit at all ("…", "...", "-"), a
    placeholder word ("TODO", "Lorem ipsum", "Titel"), or a note starting "TODO:"."""
    stripped = text.strip()
    if not any(c.isalnum() for c in stripped):
        return True
    words = " ".join(stripped.casefold().strip(" .…:;,!?-–—_*()[]\"'").split())
    return (
        words in PLACEHOLDER_WORDS
        or "lorem ipsum" in words
        or _PLACEHOLDER_START.match(stripped) is not None
    )


class PlaceholderText(RecordInvalid):
    """A record to be published holds placeholder text where people read what it is."""

    def __init__(self, issues: list[FieldIssue]) -> None:
        super().__init__(issues)
        said = "; ".join(f"{i.message} ({i.field})" for i in issues)
        self.args = (f"posten publiceras inte: {said}",)
        self.hint = (
            "skriv vad posten handlar om, så att andra kommuner kan hitta och förstå den; "
            "spara den som utkast (--visibility draft) tills texten är klar"
        )


def placeholder_issues(record: records_pb2.Record) -> list[FieldIssue]:
    """The title and summary fields of ``record`` that hold placeholder text (Swedish
    messages); none for a draft or a tombstone."""
    h = record.header
    if h.tombstone or h.visibility == records_pb2.VISIBILITY_DRAFT:
        return []
    body = record.WhichOneof("body")
    if body is None:
        return []
    msg = getattr(record, body)
    issues = []
    for name in PLACEHOLDER_FIELDS.get(body, ()):
        text = getattr(msg, name)
        if text and is_placeholder(text):
            shown = text.strip()[:40] or text[:40]
            issues.append(
                FieldIssue(
                    f"{body}.{name}", f"{_FIELD_SV[name]} är bara platshållartext: {shown!r}"
                )
            )
    return issues


def refuse_placeholders(record: records_pb2.Record) -> None:
    """Raise PlaceholderText when :func:`placeholder_issues` finds any (authoring only)."""
    issues = placeholder_issues(record)
    if issues:
        raise PlaceholderText(issues)
