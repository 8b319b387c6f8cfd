"""The inventory parser and planner (pure), with Hypothesis: arbitrary rows never crash;
each row is either planned as a valid record or reported with its place and field."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import openpyxl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samverka.errors import ImportFileError
from samverka.protocol.validation import validate_record
from samverka.protocol.vocab import SERVICE_AREA, USE_CASE_STATUS
from samverka.records.inventory import Inventory, plan_import, read_inventory
from samverka.records.recordform import COLUMNS, FIELDS
from samverka.v1 import records_pb2

ORIGIN = "2029"
SWEDISH = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzåäöÅÄÖéü ABCXYZ0123456789-,.;:'\"\n"),
    max_size=40,
)
COLUMN_NAMES = st.sampled_from(
    sorted({f.name for f in FIELDS} | {"titel", "sammanfattning", "verksamhetsområde", "kind"})
) | st.text(min_size=1, max_size=12)
CELL = st.one_of(
    st.none(),
    SWEDISH,
    st.sampled_from(["äldreomsorg", "pilot", "i drift", "minimal", "ja", "nej", "2024-05-01",
                     "12 000", "x=1 st", "https://example.se", "1472/uc-x", "public", "2026"]),
    st.integers(-5, 10**6).map(str),
)  # fmt: skip


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str | None]]]:
    columns = draw(st.lists(COLUMN_NAMES, min_size=1, max_size=8, unique_by=str.casefold))
    rows = draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)),
                         max_size=6))  # fmt: skip
    return columns, rows


def render(fmt: str, columns: list[str], rows: list[list[str | None]]) -> bytes:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";")
        writer.writerow(columns)
        writer.writerows([["" if c is None else c for c in row] for row in rows])
        return out.getvalue().encode("utf-8")
    items = [{k: v for k, v in zip(columns, row, strict=True)} for row in rows]
    if fmt == "json":
        return json.dumps(items, ensure_ascii=False).encode("utf-8")
    if fmt == "yaml":
        return yaml.safe_dump(items, allow_unicode=True).encode("utf-8")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([_xlsx_safe(c) for c in columns])
    for row in rows:
        sheet.append([_xlsx_safe(c) for c in row])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _xlsx_safe(cell: str | None) -> str | None:
    if cell is None:
        return None
    return "".join(c for c in cell if c == "\n" or ord(c) >= 32)


def check_outcome(inventory: Inventory) -> None:
    plan = plan_import(inventory, origin=ORIGIN, lookup=lambda _id: None)
    planned = {row.where for row in plan.rows}
    reported = {p.where for p in plan.problems}
    for raw in inventory.rows:
        assert raw.where in planned or raw.where in reported, raw
        assert not (raw.where in planned and raw.where in reported)
    for row in plan.rows:
        assert row.action == "new"
        record = records_pb2.Record()
        record.CopyFrom(row.record)
        record.header.version = 1
        validate_record(record, origin=ORIGIN)
    for problem in plan.problems:
        assert problem.where and problem.message


@pytest.mark.parametrize("fmt", ["csv", "json", "yaml"])
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables())
def test_arbitrary_rows_import_or_report(fmt: str, table: tuple[list[str], list[Any]]) -> None:
    columns, rows = table
    try:
        inventory = read_inventory(render(fmt, columns, rows), fmt, ignore_unknown_columns=True)
    except ImportFileError:
        return  # e.g. two columns meaning one field: refused with a message
    check_outcome(inventory)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables())
def test_arbitrary_rows_in_xlsx(table: tuple[list[str], list[Any]]) -> None:
    columns, rows = table
    try:
        inventory = read_inventory(render("xlsx", columns, rows), "xlsx",
                                   ignore_unknown_columns=True)  # fmt: skip
    except ImportFileError:
        return
    check_outcome(inventory)


@pytest.mark.parametrize("fmt", ["csv", "json", "yaml", "xlsx"])
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(fmt: str, data: bytes) -> None:
    try:
        inventory = read_inventory(data, fmt)
    except ImportFileError:
        return
    check_outcome(inventory)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=SWEDISH.filter(lambda t: t.strip() and any(c.isalnum() for c in t)),
    summary=SWEDISH.filter(lambda t: t.strip()),
    area=st.sampled_from(SERVICE_AREA.terms),
    status=st.sampled_from(USE_CASE_STATUS.terms),
)
def test_swedish_text_round_trips_through_csv(title: str, summary: str, area: Any,
                                              status: Any) -> None:  # fmt: skip
    data = render("csv", ["titel", "sammanfattning", "verksamhetsområde", "status"],
                  [[title, summary, area.sv, status.sv]])  # fmt: skip
    plan = plan_import(read_inventory(data, "csv"), origin=ORIGIN, lookup=lambda _id: None)
    if plan.problems:  # only text validation may refuse (e.g. a control character)
        assert all(p.field in ("title", "summary") for p in plan.problems), plan.problems
        return
    [row] = plan.rows
    uc = row.record.use_case
    assert uc.title == title.strip() and uc.summary == summary.strip()
    assert uc.service_area == area.value and uc.status == status.value


def test_csv_with_comma_separators_quotes_and_multiline_cells() -> None:
    text = ('title,summary,area,status,technique\n'
            '"Chatt, webb","Rad ett\nrad två",it,pilot,"generativ AI, RAG"\n')  # fmt: skip
    plan = plan_import(read_inventory(text.encode(), "csv"), origin=ORIGIN, lookup=lambda _: None)
    assert not plan.problems
    [row] = plan.rows
    assert row.record.use_case.summary == "Rad ett\nrad två"
    assert list(row.record.use_case.techniques) == ["generativ AI", "RAG"]


def test_line_numbers_count_multiline_cells() -> None:
    text = 'title;summary;area;status\n"A";"två\nrader";it;pilot\nB;;it;pilot\n'
    plan = plan_import(read_inventory(text.encode(), "csv"), origin=ORIGIN, lookup=lambda _: None)
    assert [str(p) for p in plan.problems] == ["line 4: summary: is required"]


def test_every_column_name_is_unambiguous() -> None:
    assert COLUMNS["verksamhetsomrade"] == COLUMNS["verksamhetsområde"] == "area"
    assert COLUMNS["arlig_kostnad"] == "cost_yearly"


def test_a_zip_that_is_not_a_workbook_and_yaml_control_characters() -> None:
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x.txt", "hej")
    with pytest.raises(ImportFileError, match="not a readable XLSX"):
        read_inventory(buf.getvalue(), "xlsx")
    with pytest.raises(ImportFileError, match="not valid YAML"):
        read_inventory(b"- title: \x00", "yaml")


def test_too_many_lines_are_refused() -> None:
    from samverka.records.inventory import MAX_ROWS

    text = "title;summary;area;status\n" + "T;S;it;pilot\n" * (MAX_ROWS + 1)
    with pytest.raises(ImportFileError, match=f"more than {MAX_ROWS} records"):
        read_inventory(text.encode(), "csv")
