"""The ATRS and AI Act fields (issue 13, point 1): validation, the flat form's text
forms (parsers, with property tests) and the grouped sections people read."""

# ruff: noqa: E501

from __future__ import annotations

from collections.abc import Callable

import pytest
from factories import make_full_solution, make_full_use_case, make_use_case
from hypothesis import given, settings
from hypothesis import strategies as st
from samverka.protocol.validation import record_issues
from samverka.records.recordform import (
    COMPOUNDS,
    apply_form,
    field_for_column,
    format_item,
    new_record,
    parse_item,
    read_form,
)
from samverka.records.transparency import ENGLISH, SECTION_FIELDS, section_text, sections
from samverka.v1 import records_pb2 as R

Mutator = Callable[[R.Record], object]


def issues_of(record: R.Record) -> dict[str, str]:
    return {i.field: i.message for i in record_issues(record)}


def test_full_records_are_valid_and_survive_serialization() -> None:
    for record in (make_full_use_case(), make_full_solution()):
        assert record_issues(record) == []
        again = R.Record.FromString(record.SerializeToString())
        assert again == record
        assert record_issues(again) == []


# fmt: off
CASES: list[tuple[str, Mutator, str, str]] = [
    ("http website", lambda r: setattr(r.use_case, "website", "http://leksand.se/ai"), "use_case.website", "https"),
    ("javascript website", lambda r: setattr(r.use_case, "website", "javascript:alert(1)"), "use_case.website", "not an https link"),
    ("bad e-mail", lambda r: setattr(r.use_case, "contact_email", "ai at leksand.se"), "use_case.contact_email", "e-mail"),
    ("e-mail newline", lambda r: setattr(r.use_case, "contact_email", "ai@leksand.se\n"), "use_case.contact_email", "single line"),
    ("bad EU database id", lambda r: setattr(r.use_case, "eu_database_id", "id med mellanslag"), "use_case.eu_database_id", "1-64"),
    ("unknown Annex III area", lambda r: setattr(r.use_case, "high_risk_area", 9), "use_case.high_risk_area", "HighRiskArea"),
    ("unknown role", lambda r: setattr(r.use_case, "ai_act_role", 17), "use_case.ai_act_role", "AiActRole"),
    ("unknown Art. 50 case", lambda r: r.use_case.transparency_obligations.append(12), "use_case.transparency_obligations[1]", "TransparencyObligation"),
    ("Art. 50 case twice", lambda r: r.use_case.transparency_obligations.append(R.TRANSPARENCY_OBLIGATION_INTERACTS_WITH_PEOPLE), "use_case.transparency_obligations[1]", "repeats"),
    ("Annex III area without high risk", lambda r: setattr(r.use_case, "risk_class", R.RISK_CLASS_LIMITED), "use_case.high_risk_area", "high risk class"),
    ("FRIA not done but summarised", lambda r: setattr(r.use_case.fria, "done", False), "use_case.fria.summary", "not done"),
    ("FRIA date before 1990", lambda r: setattr(r.use_case.fria, "completed_at_ms", 86_400_000), "use_case.fria.completed_at_ms", "1990"),
    ("FRIA date in year 3000", lambda r: setattr(r.use_case.fria, "completed_at_ms", 32_503_680_000_000), "use_case.fria.completed_at_ms", "Unix time"),
    ("FRIA http link", lambda r: setattr(r.use_case.fria, "url", "http://leksand.se/fria"), "use_case.fria.url", "https"),
    ("negative assessment date", lambda r: setattr(r.use_case.assessments[0], "completed_at_ms", -1), "use_case.assessments[0].completed_at_ms", "negative"),
    ("assessment without name", lambda r: setattr(r.use_case.assessments[0], "name", ""), "use_case.assessments[0].name", "required"),
    ("risk without name", lambda r: r.use_case.risks.add(description="x"), "use_case.risks[1].name", "required"),
    ("dataset http url", lambda r: setattr(r.use_case.datasets[0], "url", "http://x.se"), "use_case.datasets[0].url", "https"),
    ("too many risks", lambda r: r.use_case.risks.extend(R.Risk(name=f"r{i}") for i in range(32)), "use_case.risks", "at most 32"),
    ("too many models", lambda r: r.use_case.models.extend(R.AiModel(name=f"m{i}") for i in range(16)), "use_case.models", "at most 16"),
    ("overlong risk text", lambda r: setattr(r.use_case.risks[0], "mitigation", "å" * 2001), "use_case.risks[0].mitigation", "at most 2000"),
    ("bidi in scope", lambda r: setattr(r.use_case.rationale, "scope", "ok\u202eko"), "use_case.rationale.scope", "bidi"),
    ("model name two lines", lambda r: setattr(r.use_case.models[0], "name", "a\nb"), "use_case.models[0].name", "single line"),
    ("bad company number", lambda r: setattr(r.use_case.accountability.suppliers[0], "company_number", "556677/8899"), "use_case.accountability.suppliers[0].company_number", "company number"),
    ("repeated model dataset", lambda r: r.use_case.models[0].datasets.append(r.use_case.models[0].datasets[0]), "use_case.models[0].datasets[1]", "repeats"),
    ("provider EU database http", lambda r: setattr(r.use_case.provider, "eu_database_url", "http://x.eu"), "use_case.provider.eu_database_url", "https"),
]
SOLUTION_CASES: list[tuple[str, Mutator, str, str]] = [
    ("unknown development status", lambda r: setattr(r.solution, "development_status", 9), "solution.development_status", "DevelopmentStatus"),
    ("unknown maintenance", lambda r: setattr(r.solution, "maintenance_type", 9), "solution.maintenance_type", "MaintenanceType"),
    ("too many platforms", lambda r: r.solution.platforms.extend(f"p{i}" for i in range(16)), "solution.platforms", "at most 16"),
    ("version two lines", lambda r: setattr(r.solution, "software_version", "1\n2"), "solution.software_version", "single line"),
]
# fmt: on


@pytest.mark.parametrize(
    ("mutate", "path", "words"), [pytest.param(m, p, w, id=n) for n, m, p, w in CASES]
)
def test_each_use_case_rule(mutate: Mutator, path: str, words: str) -> None:
    record = make_full_use_case()
    mutate(record)
    found = issues_of(record)
    assert path in found, found
    assert words in found[path]


@pytest.mark.parametrize(
    ("mutate", "path", "words"), [pytest.param(m, p, w, id=n) for n, m, p, w in SOLUTION_CASES]
)
def test_each_solution_rule(mutate: Mutator, path: str, words: str) -> None:
    record = make_full_solution()
    mutate(record)
    found = issues_of(record)
    assert path in found, found
    assert words in found[path]


def test_every_new_field_is_optional() -> None:
    """A use case without any ATRS or AI Act field stays valid (nothing became required),
    and a high-risk one need not name its Annex III area (it may be an Annex I product)."""
    assert issues_of(make_use_case()) == {}
    assert issues_of(make_use_case(risk_class=R.RISK_CLASS_HIGH)) == {}
    assert issues_of(make_full_use_case(risk_class=R.RISK_CLASS_UNSPECIFIED)) == {}


# -- the flat form ------------------------------------------------------------------------


def test_the_full_use_case_survives_the_flat_form() -> None:
    """read_form then apply_form onto an empty record gives the same record: every new
    field has a flat name (CLI option, inventory column) that carries it whole."""
    for full in (make_full_use_case(), make_full_solution()):
        body = full.WhichOneof("body")
        assert body is not None
        form = read_form(full)
        again = new_record(body, full.header.origin)
        again.header.CopyFrom(full.header)
        values = {k: v for k, v in form.items() if v not in ("", [])}
        assert apply_form(again, values, own_origin=full.header.origin) == []
        assert again == full


def test_swedish_and_atrs_column_names_and_mappings() -> None:
    record = new_record("use_case", "2029")
    issues = apply_form(
        record,
        {
            "senior_responsible_owner": "Socialchef",
            "appeals": "Överklaga till förvaltningsrätten.",
            "high_risk_area": "bilaga III 5",
            "transparency": ["chattbot", "deepfake"],
            "fria": "ja",
            "fria_date": "2025-03-01",
            "identified_risk": [
                {"namn": "Bias", "kategori": "rättvisa", "åtgärd": "Stickprov varje månad"}
            ],
            "model": ["GPT-4o | 2024-08 | OpenAI | stor språkmodell"],
            "assessment": [{"name": "DPIA", "datum": "2024-05-01", "länk": "https://x.se/d"}],
        },
        own_origin="2029",
    )
    assert issues == []
    uc = record.use_case
    assert uc.high_risk_area == R.HIGH_RISK_AREA_ESSENTIAL_SERVICES
    assert list(uc.transparency_obligations) == [
        R.TRANSPARENCY_OBLIGATION_INTERACTS_WITH_PEOPLE,
        R.TRANSPARENCY_OBLIGATION_DEEP_FAKE,
    ]
    assert uc.fria.HasField("done") and uc.fria.done
    assert uc.risks[0].mitigation == "Stickprov varje månad"
    assert uc.models[0].provider == "OpenAI" and uc.models[0].model_type == "stor språkmodell"
    assert uc.assessments[0].completed_at_ms == 1_714_521_600_000


def test_eurocities_register_columns_swedish_and_english() -> None:
    columns = {
        "Proportionalitet": "Nödvändigt för att korta väntetiden.",
        "Legal basis": "GDPR art. 6.1 e",
        "Typ av algoritm": "regelbaserad",
        "Type of use": "predictive",
        "Revideringsdatum": "2026-06-30",
    }
    names = {field_for_column(c): v for c, v in columns.items()}
    assert None not in names
    record = new_record("use_case", "2029")
    assert apply_form(record, names, own_origin="2029") == []
    uc = record.use_case
    assert (uc.algorithm_type, uc.algorithm_use) == (
        R.ALGORITHM_TYPE_RULE_BASED,
        R.ALGORITHM_USE_PREDICTIVE,
    )
    assert uc.lawful_basis == "GDPR art. 6.1 e"
    assert uc.revision_due_at_ms == 1_782_777_600_000
    bad = new_record("use_case", "2029")
    issues = apply_form(bad, {"algorithm_type": "neuronnät"}, own_origin="2029")
    assert [i.field for i in issues] == ["algorithm_type"]
    assert issues_of(make_full_use_case(algorithm_use=9)) == {
        "use_case.algorithm_use": "9 is not a AlgorithmUse"
    }
    assert "use_case.proportionality" in issues_of(make_full_use_case(proportionality="x" * 2001))


def test_bad_items_are_reported_under_their_flat_name() -> None:
    record = new_record("use_case", "2029")
    issues = apply_form(
        record,
        {
            "identified_risk": ["a | b | c | d | e"],
            "assessment": [{"vikt": "hög"}],
            "high_risk_area": "rymden",
        },
        own_origin="2029",
    )
    found = {i.field: i.message for i in issues}
    assert "at most 4" in found["identified_risk"]
    assert "'vikt' is not a part" in found["assessment"]
    assert "rymden" in found["high_risk_area"]


def test_clearing_an_unanswered_fria() -> None:
    """fria=nej is an answer (done: false, present); clearing it removes the answer."""
    record = new_record("use_case", "2029")
    assert read_form(record)["fria"] == ""  # unanswered, not "nej"
    assert apply_form(record, {"fria": "nej"}, own_origin="2029") == []
    assert record.use_case.fria.HasField("done") and not record.use_case.fria.done
    assert apply_form(record, {"fria": ""}, own_origin="2029") == []
    assert not record.use_case.fria.HasField("done")


# Part text as people type it: no separator, no surrounding spaces.
_PART = st.text(
    st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"), exclude_characters="|,"),
    max_size=30,
).map(str.strip)


@st.composite
def _items(draw: st.DrawFn) -> tuple[str, object]:
    name = draw(st.sampled_from(sorted(COMPOUNDS)))
    compound = COMPOUNDS[name]
    item = compound.message()
    for part in compound.parts:
        if part.kind == "date":
            setattr(item, part.name, draw(st.integers(0, 40_000)) * 86_400_000)
        elif part.kind == "list":
            values = draw(st.lists(_PART.filter(bool), max_size=3, unique=True))
            getattr(item, part.name).extend(values)
        else:
            setattr(item, part.name, draw(_PART))
    return name, item


@settings(max_examples=200, deadline=None)
@given(_items())
def test_item_text_round_trips(case: tuple[str, object]) -> None:
    name, item = case
    text = format_item(name, item)  # type: ignore[arg-type]
    assert parse_item(name, text) == item


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(COMPOUNDS)), st.text(max_size=300))
def test_any_item_text_parses_or_is_refused_cleanly(name: str, text: str) -> None:
    """Whatever a cell holds, the form gives a message or a clean issue, never a crash."""
    record = new_record("use_case", "2029")
    issues = apply_form(record, {name: [text]}, own_origin="2029")
    if not issues:
        record_issues(record)  # validation of whatever was built never crashes


# -- the sections people read ---------------------------------------------------------------


def test_sections_of_the_full_use_case() -> None:
    found = sections(make_full_use_case())
    titles = [s.title for s in found]
    assert titles == [
        "Ansvar och leverantör",
        "Bakgrund och syfte",
        "Beslutsprocess",
        "Teknik och modeller",
        "Data",
        "Risker och åtgärder",
        "AI-förordningen",
    ]
    ai_act = {r.label: r for r in found[-1].rows}
    assert ai_act["Högriskområde (bilaga III)"].text.startswith("Väsentliga")
    assert ai_act["Kommunens roll"].text == "Tillhandahållare"
    risks = next(r for r in found[5].rows if r.label == "Identifierade risker")
    assert risks.items[0].title == "Felaktig prioritet"
    shown = {r.label: r.text for s in found for r in s.rows}
    assert shown["Typ av algoritm"] == "Båda (hybrid)"
    assert shown["Typ av användning"] == "Föreskrivande"
    assert shown["Nästa översyn"] == "2026-06-30"
    assert shown["Rättslig grund"].startswith("Allmänt intresse")


def test_sections_show_only_what_is_filled() -> None:
    assert sections(make_use_case()) == []
    only = sections(make_use_case(contact_email="ai@leksand.se"))
    assert [(s.title, [r.label for r in s.rows]) for s in only] == [
        ("Ansvar och leverantör", ["E-post för frågor"])
    ]
    assert [s.title for s in sections(make_full_solution())] == [
        "Programvara",
        "Ansvar och leverantör",
        "Teknik och modeller",
        "AI-förordningen",
    ]


def test_section_fields_are_form_fields() -> None:
    form = read_form(make_full_use_case()) | read_form(make_full_solution())
    assert set(form) >= SECTION_FIELDS


def test_section_text_for_a_terminal() -> None:
    text = "\n".join(section_text(sections(make_full_use_case())))
    assert "  Risker och åtgärder\n" in text
    assert "\n      - Felaktig prioritet\n          Kategori: noggrannhet\n" in text
    assert "\n    Högriskområde (bilaga III): Väsentliga privata" in text


def test_every_label_has_its_english_name() -> None:
    for record in (make_full_use_case(), make_full_solution()):
        swedish, english = sections(record), sections(record, "en")
        labels = [s.title for s in swedish]
        labels += [r.label for s in swedish for r in s.rows]
        labels += [p.label for s in swedish for r in s.rows for i in r.items for p in i.rows]
        assert set(labels) <= set(ENGLISH), set(labels) - set(ENGLISH)
        assert [s.title for s in english][-1] == "EU AI Act"
    text = "\n".join(section_text(sections(make_full_use_case(), "en")))
    assert "    Role: Deployer\n" in text
    assert "High-risk area (Annex III): Essential private and public services" in text


# -- property: any valid filling of the new fields validates and survives the form ----------

_LINE = st.text(
    st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Zs"), exclude_characters="|,"),
    min_size=1,
    max_size=40,
)
_URL = st.from_regex(r"https://[a-z]{1,12}\.se/[a-z0-9/-]{0,20}", fullmatch=True)
_DAY_MS = st.integers(7_400, 40_000).map(lambda d: d * 86_400_000)  # 1990-04 .. 2079


def _maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(st.just(None), strategy)


@st.composite
def _filled_use_cases(draw: st.DrawFn) -> R.Record:
    record = make_use_case(risk_class=R.RISK_CLASS_HIGH)
    uc = record.use_case
    for name, strategy in (
        ("website", _URL),
        ("contact_email", st.from_regex(r"[a-z]{1,10}@[a-z]{1,10}\.se", fullmatch=True)),
        ("intended_purpose", _LINE),
        ("dpia_summary", _LINE),
        ("eu_database_id", st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,20}", fullmatch=True)),
        ("transparency_notice", _LINE),
        ("ai_act_role", st.sampled_from([1, 2, 3, 4])),
        ("high_risk_area", st.sampled_from(range(1, 9))),
    ):
        value = draw(_maybe(strategy))
        if value is not None:
            setattr(uc, name, value)
    for field, sub in (("accountability", "team"), ("rationale", "scope"),
                       ("decision_process", "appeals_and_review"),
                       ("technical", "maintenance"), ("provider", "trade_name")):  # fmt: skip
        value = draw(_maybe(_LINE))
        if value is not None:
            setattr(getattr(uc, field), sub, value)
    uc.transparency_obligations.extend(draw(st.lists(st.sampled_from(range(1, 6)), unique=True)))
    for _ in range(draw(st.integers(0, 2))):
        uc.risks.add(name=draw(_LINE), category=draw(st.sampled_from(["", "bias"])),
                     mitigation=draw(st.sampled_from(["", "Granskning"])))  # fmt: skip
    for _ in range(draw(st.integers(0, 2))):
        uc.assessments.add(name=draw(_LINE), completed_at_ms=draw(_DAY_MS), url=draw(_URL))
    for _ in range(draw(st.integers(0, 2))):
        uc.models.add(name=draw(_LINE), datasets=draw(st.lists(_LINE, max_size=2, unique=True)))
    if draw(st.booleans()):
        uc.fria.done = draw(st.booleans())
        if uc.fria.done:
            uc.fria.completed_at_ms = draw(_DAY_MS)
    return record


@settings(max_examples=100, deadline=None)
@given(_filled_use_cases())
def test_filled_use_cases_validate_and_survive_bytes_and_the_form(record: R.Record) -> None:
    assert record_issues(record) == []
    assert R.Record.FromString(record.SerializeToString()) == record
    again = new_record("use_case", record.header.origin)
    again.header.CopyFrom(record.header)
    values = {k: v for k, v in read_form(record).items() if v not in ("", [])}
    assert apply_form(again, values, own_origin=record.header.origin) == []
    assert again == record
