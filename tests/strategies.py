"""Hypothesis strategies for records, shared by every test folder (``import strategies``).

- ``valid_records()``: records that pass ``samverka.protocol.validation``, every kind, Swedish
  and other Unicode text, optional fields present or not.
- ``arbitrary_records()``: records with any values protobuf can hold (unknown enum
  numbers, NaN, negative numbers, control characters, overlong text, long lists).
"""

from __future__ import annotations

import string
from typing import Any

import factories
from hypothesis import strategies as st
from samverka.protocol.kommuner import HUB_ORIGIN, kommuner
from samverka.v1 import records_pb2

KOMMUNKODER = sorted(kommuner())
ORIGINS = [HUB_ORIGIN, *KOMMUNKODER]

# Letters, digits, punctuation and spaces from all of Unicode (å, ä, ö included),
# but no control, format (bidi), surrogate or line/paragraph-separator characters.
_LINE_CHARS = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"), include_characters="åäöÅÄÖ"
)
_ID_FIRST = string.ascii_letters + string.digits
_ID_REST = _ID_FIRST + "._-"


def line(max_size: int = 200) -> st.SearchStrategy[str]:
    """One non-blank line of text."""
    return st.text(_LINE_CHARS, min_size=1, max_size=min(max_size, 60)).filter(str.strip)


def paragraph(max_size: int = 2000) -> st.SearchStrategy[str]:
    """Non-blank text that may hold line breaks and tabs."""
    chars = st.one_of(_LINE_CHARS, st.sampled_from("\n\t\r"))
    return st.text(chars, min_size=1, max_size=min(max_size, 120)).filter(str.strip)


def record_ids() -> st.SearchStrategy[str]:
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(_ID_FIRST),
        st.text(st.sampled_from(_ID_REST), max_size=20),
    )


def refs(origin: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[records_pb2.RecordRef]:
    return st.builds(
        records_pb2.RecordRef,
        origin=st.sampled_from(ORIGINS) if origin is None else origin,
        id=record_ids(),
    )


def urls() -> st.SearchStrategy[str]:
    host = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){1,2}", fullmatch=True)
    path = st.text(st.sampled_from(string.ascii_letters + string.digits + "/-_.~%"), max_size=30)
    return st.builds(
        lambda scheme, h, p: f"{scheme}://{h}/{p}", st.sampled_from(["http", "https"]), host, path
    )


def links() -> st.SearchStrategy[records_pb2.Link]:
    return st.builds(records_pb2.Link, url=urls(), title=st.one_of(st.just(""), line()))


def _enum(values: Any, *, allow_zero: bool = True) -> st.SearchStrategy[int]:
    numbers = [v for v in values.values() if allow_zero or v != 0]
    return st.sampled_from(numbers)


def _unique(strategy: st.SearchStrategy[str], max_size: int = 5) -> st.SearchStrategy[list[str]]:
    return st.lists(strategy, max_size=max_size, unique=True)


def _times() -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=4_102_444_800_000)  # up to 2100


def _cost() -> st.SearchStrategy[records_pb2.Cost]:
    return st.builds(
        records_pb2.Cost,
        one_off_sek=st.integers(0, 10**12),
        yearly_sek=st.integers(0, 10**12),
        note=st.one_of(st.just(""), paragraph()),
    )


def _benefit() -> st.SearchStrategy[records_pb2.Benefit]:
    return st.builds(
        records_pb2.Benefit,
        metric=line(),
        value=st.floats(allow_nan=False, allow_infinity=False),
        unit=line(64),
        method=st.one_of(st.just(""), paragraph()),
    )


def _use_case(origin: str) -> st.SearchStrategy[records_pb2.UseCase]:
    return st.builds(
        records_pb2.UseCase,
        title=line(),
        summary=paragraph(),
        description=st.one_of(st.just(""), paragraph(20_000)),
        service_area=_enum(records_pb2.ServiceArea, allow_zero=False),
        status=_enum(records_pb2.UseCaseStatus, allow_zero=False),
        techniques=_unique(line()),
        products=_unique(line()),
        vendors=_unique(line()),
        risk_class=_enum(records_pb2.RiskClass),
        processes_personal_data=st.booleans(),
        impact_assessment_done=st.booleans(),
        impact_assessment=st.one_of(st.none(), links()),
        human_oversight=st.one_of(st.just(""), paragraph()),
        data_sources=_unique(line()),
        cost=st.one_of(st.none(), _cost()),
        benefits=st.lists(_benefit(), max_size=3),
        partner_kommuner=_unique(st.sampled_from(KOMMUNKODER)),
        national_projects=_unique(line()),
        contact_role=st.one_of(st.just(""), line()),
        links=st.lists(links(), max_size=3),
        reuses=st.lists(refs(), max_size=3),
    )


def _lesson(origin: str) -> st.SearchStrategy[records_pb2.Lesson]:
    return st.builds(
        records_pb2.Lesson,
        title=line(),
        use_case=st.one_of(st.none(), refs()),
        category=_enum(records_pb2.LessonCategory, allow_zero=False),
        what_worked=st.one_of(st.just(""), paragraph()),
        what_did_not=st.one_of(st.just(""), paragraph()),
        advice=st.one_of(st.just(""), paragraph()),
        service_area=_enum(records_pb2.ServiceArea),
    )


def _solution(origin: str) -> st.SearchStrategy[records_pb2.Solution]:
    return st.builds(
        records_pb2.Solution,
        title=line(),
        summary=paragraph(),
        solution_type=_enum(records_pb2.SolutionType, allow_zero=False),
        service_area=_enum(records_pb2.ServiceArea),
        licence=st.sampled_from(["", "EUPL-1.2", "CC-BY-4.0", "MIT OR Apache-2.0"]),
        url=st.one_of(st.just(""), urls()),
        content_hash=st.one_of(
            st.just(""), st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())
        ),
        how_to_adopt=st.one_of(st.just(""), paragraph()),
        use_cases=st.lists(refs(), max_size=3),
        contact_role=st.one_of(st.just(""), line()),
        cost=st.one_of(st.none(), _cost()),
        links=st.lists(links(), max_size=3),
    )


def _recommendation(origin: str) -> st.SearchStrategy[records_pb2.Recommendation]:
    return st.builds(
        records_pb2.Recommendation,
        title=line(),
        summary=paragraph(),
        body=st.one_of(st.just(""), paragraph()),
        service_area=_enum(records_pb2.ServiceArea),
        references=st.lists(refs(), max_size=3),
        links=st.lists(links(), max_size=3),
    )


def _adoption(origin: str) -> st.SearchStrategy[records_pb2.Adoption]:
    others = st.sampled_from([o for o in ORIGINS if o != origin])
    return st.builds(
        records_pb2.Adoption,
        solution=refs(others),
        status=_enum(records_pb2.UseCaseStatus),
        note=st.one_of(st.just(""), paragraph()),
        adopted_at_ms=_times(),
    )


_BODIES = {
    "use_case": _use_case,
    "lesson": _lesson,
    "solution": _solution,
    "recommendation": _recommendation,
    "adoption": _adoption,
}


@st.composite
def valid_records(draw: st.DrawFn, origin: str | None = None) -> records_pb2.Record:
    """A record that passes validation (for ``origin`` when given)."""
    body = draw(st.sampled_from(sorted(_BODIES)))
    if body == "recommendation":
        rec_origin = HUB_ORIGIN
    else:
        rec_origin = origin or draw(st.sampled_from(ORIGINS))
    created = draw(_times())
    header = records_pb2.RecordHeader(
        id=draw(record_ids()),
        kind=factories.KIND_OF_BODY[body],  # type: ignore[arg-type]
        origin=rec_origin,
        version=draw(st.integers(1, 2**63 - 1)),  # above: out of range (SQL INTEGER)
        created_at_ms=created,
        updated_at_ms=draw(st.integers(created, 4_102_444_800_000)),
        visibility=draw(_enum(records_pb2.Visibility, allow_zero=False)),  # type: ignore[arg-type]
        tombstone=draw(st.booleans()),
        language=draw(st.sampled_from(["", "sv", "en", "se", "fi", "sv-SE", "smj"])),
        tags=draw(_unique(line(64))),
    )
    record = records_pb2.Record(header=header)
    getattr(record, body).CopyFrom(draw(_BODIES[body](rec_origin)))
    return record


# -- anything protobuf can hold ------------------------------------------------------

_ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=80)  # no lone surrogates
_ANY_INT64 = st.integers(-(2**63), 2**63 - 1)
_ANY_ENUM = st.integers(-(2**31), 2**31 - 1)
_ANY_DOUBLE = st.floats(allow_nan=True, allow_infinity=True)


def _any_message(cls: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """A message of ``cls`` with every field drawn from anything its type allows."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in cls.DESCRIPTOR.fields:
        if field.containing_oneof is not None:
            continue  # the Record body is drawn separately
        scalar: st.SearchStrategy[Any]
        if field.message_type is not None:
            scalar = _any_message(getattr(records_pb2, field.message_type.name), depth + 1)
        elif field.enum_type is not None:
            scalar = st.one_of(st.just(0), _ANY_ENUM, st.sampled_from([1, 2, 3]))
        elif field.type == field.TYPE_STRING:
            scalar = st.one_of(
                _ANY_TEXT,
                st.sampled_from(["2029", "0000", "9999", "javascript:alert(1)", "https://x.se"]),
                st.text(max_size=0),
                st.builds(lambda n: "å" * n, st.integers(0, 25_000)),
            )
        elif field.type == field.TYPE_BOOL:
            scalar = st.booleans()
        elif field.type == field.TYPE_DOUBLE:
            scalar = _ANY_DOUBLE
        elif field.type == field.TYPE_UINT64:
            scalar = st.integers(0, 2**64 - 1)
        else:
            scalar = _ANY_INT64
        if field.is_repeated:
            fields[field.name] = st.lists(scalar, max_size=3 if depth else 70)
        elif field.message_type is not None:
            fields[field.name] = st.one_of(st.none(), scalar)
        else:
            fields[field.name] = scalar
    return st.fixed_dictionaries({}, optional=fields).map(
        lambda kw: cls(**{k: v for k, v in kw.items() if v is not None})
    )


@st.composite
def arbitrary_records(draw: st.DrawFn) -> records_pb2.Record:
    """Any Record protobuf can represent, valid or (mostly) not."""
    record = records_pb2.Record()
    if draw(st.booleans()):
        record.header.CopyFrom(draw(_any_message(records_pb2.RecordHeader)))
    body = draw(st.sampled_from([None, *sorted(_BODIES)]))
    if body is not None:
        cls = type(getattr(record, body))
        getattr(record, body).CopyFrom(draw(_any_message(cls)))
    return record
