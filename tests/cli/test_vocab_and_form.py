"""The vocabularies (Swedish and English enum names) and the flat record form."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samverka.errors import FieldIssue
from samverka.protocol.validation import RECORD_ID
from samverka.protocol.vocab import (
    RECORD_KIND,
    SERVICE_AREA,
    VOCABULARIES,
    UnknownTerm,
    Vocabulary,
    parse_bool,
)
from samverka.records.recordform import (
    BODY_KINDS,
    apply_form,
    derive_id,
    fields_for,
    flat_issues,
    new_record,
    parse_amount,
    parse_benefit,
    read_form,
    required_fields,
)
from samverka.v1 import records_pb2

ENUMS = {
    "service_area": records_pb2.ServiceArea,
    "status": records_pb2.UseCaseStatus,
    "risk_class": records_pb2.RiskClass,
    "category": records_pb2.LessonCategory,
    "type": records_pb2.SolutionType,
    "visibility": records_pb2.Visibility,
    "kind": records_pb2.RecordKind,
    "population_band": records_pb2.PopulationBand,
    "kommun_group": records_pb2.KommunGroup,
    "ai_rule": records_pb2.AiRule,
    "ai_act_role": records_pb2.AiActRole,
    "high_risk_area": records_pb2.HighRiskArea,
    "transparency_obligation": records_pb2.TransparencyObligation,
    "development_status": records_pb2.DevelopmentStatus,
    "maintenance_type": records_pb2.MaintenanceType,
    "algorithm_type": records_pb2.AlgorithmType,
    "algorithm_use": records_pb2.AlgorithmUse,
}


@pytest.mark.parametrize("name", list(VOCABULARIES))
def test_every_enum_value_has_names_in_both_languages(name: str) -> None:
    vocab = VOCABULARIES[name]
    enum = ENUMS[name]
    named = {t.value for t in vocab}
    assert named == {v for v in enum.values() if v != 0}  # the contract and the words agree
    for term in vocab:
        for spelling in (term.key, term.sv, term.en, term.sv.upper(), enum.Name(term.value),
                         *term.aliases):  # fmt: skip
            assert vocab.parse(spelling) == term.value, spelling
        assert vocab.label(term.value) == term.sv and vocab.label(term.value, "en") == term.en
    assert vocab.label(0) == "" and vocab.key(0) == ""


def test_swedish_letters_are_optional_but_never_confused() -> None:
    assert SERVICE_AREA.parse("aldreomsorg") == SERVICE_AREA.parse("Äldreomsorg")
    assert SERVICE_AREA.parse("  Funktionsstöd (LSS) ") == SERVICE_AREA.parse("lss")
    with pytest.raises(UnknownTerm) as caught:
        SERVICE_AREA.parse("rymden")
    assert "elderly-care" in caught.value.hint


def test_an_ambiguous_vocabulary_is_refused_at_definition() -> None:
    a = RECORD_KIND.terms[0]
    b = RECORD_KIND.terms[1]
    with pytest.raises(ValueError, match="names"):
        Vocabulary("x", "x", "X_", (a, b.__class__(b.value, a.key, "B", "B")))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=30))
def test_parse_never_crashes(text: str) -> None:
    for vocab in VOCABULARIES.values():
        with contextlib.suppress(UnknownTerm):
            assert vocab.parse(text) > 0


def test_booleans_amounts_and_benefits() -> None:
    assert parse_bool("Ja") and parse_bool("x") and not parse_bool("nej")
    with pytest.raises(ValueError):
        parse_bool("kanske")
    assert parse_amount("12 000 kr") == 12000 == parse_amount("12000.0") == parse_amount("12000:-")
    # Found by Hypothesis: an amount past int64 crashed the protobuf setter.
    with pytest.raises(ValueError, match="more than"):
        parse_amount("9223372036854775808")
    benefit = parse_benefit("handläggningstid i dagar=3,5 dagar")
    assert (benefit.metric, benefit.value, benefit.unit) == (
        "handläggningstid i dagar",
        3.5,
        "dagar",
    )


def test_required_fields_match_validation() -> None:
    assert required_fields("use_case") == ["title", "summary", "area", "status"]
    assert required_fields("lesson") == ["title", "category"]
    assert required_fields("solution") == ["title", "summary", "type"]


@pytest.mark.parametrize("body", ["use_case", "lesson", "solution", "adoption"])
def test_every_field_writes_and_reads_back(body: str) -> None:
    samples = {
        "text": "Åtgärd", "enum": None, "bool": True, "sek": "1 500", "date": "2024-05-01",
        "benefit": "timmar=10 h", "link": "https://example.se Sida", "ref": "1472/uc-x",
        "kommun": "2026", "item": "Namn",
    }  # fmt: skip
    record = new_record(body, "2029")
    values = {}
    for f in fields_for(body):
        value = next(iter(f.vocab)).key if f.vocab is not None else samples[f.type]
        if f.name == "id":
            continue
        values[f.name] = [value] if f.multiple(body) else value
    assert apply_form(record, values, own_origin="2029") == []
    form = read_form(record)
    for name, value in values.items():
        expected = "1500" if name in ("cost_one_off", "cost_yearly") else value
        assert form[name] == expected, name
    assert record.header.kind == BODY_KINDS[body]


def test_flat_issue_names_and_derived_ids() -> None:
    renamed = flat_issues(
        [FieldIssue("use_case.benefits[1].metric", "m"), FieldIssue("header.visibility", "v")],
        "use_case",
    )
    assert [i.field for i in renamed] == ["benefit[1].metric", "visibility"]
    assert derive_id("Språkstöd i hemtjänsten!", "use_case") == "uc-sprakstod-i-hemtjansten"
    assert derive_id("???", "lesson") == "lesson-record"
    taken = {"sol-x", "sol-x-2"}
    assert derive_id("X", "solution", taken) == "sol-x-3"
    assert RECORD_ID.match(derive_id("å" * 300, "use_case"))
