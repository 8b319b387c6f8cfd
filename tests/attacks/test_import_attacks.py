"""Hostile inventory files given to ``samverka import``: refused with a message, nothing
stored, no object constructed, bounded time and memory.

Already tested in tests/cli (not repeated here):

- YAML tags that construct objects, and aliases ("billion laughs"):
  test_import_cli.py::test_yaml_that_constructs_objects_is_refused;
- files over 10 MiB, not UTF-8, a broken XLSX, an unknown format:
  test_import_cli.py::test_limits_and_unreadable_files;
- too many rows: test_inventory.py::test_too_many_lines_are_refused;
- arbitrary bytes in every format: test_inventory.py::test_arbitrary_bytes_never_crash.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner, Result
from samverka.cli import main
from samverka.node import Node, init_node
from soakresults import record

LEKSAND = "2029"
HEADER = ["titel", "sammanfattning", "verksamhetsområde", "status", "länkar"]


@pytest.fixture
def node(tmp_path: Path) -> Path:
    with init_node(tmp_path / "leksand", LEKSAND):
        pass
    return tmp_path / "leksand"


def import_file(node: Path, path: Path) -> Result:
    """``samverka import FILE`` (the root command, in this process: click's CliRunner)."""
    return CliRunner().invoke(main, ["import", str(path)], env={"SAMVERKA_DIR": str(node)})


def held(node: Path) -> int:
    with Node.open(node) as opened:
        return opened.store.log_position()


def workbook(rows: list[list[str]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [HEADER, *rows]:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_sheet_row(data: bytes, row_xml: bytes) -> bytes:
    """The workbook with its second row replaced by ``row_xml`` (deflated again)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            part = source.read(name)
            if name == "xl/worksheets/sheet1.xml":
                part = re.sub(rb'<row r="2".*?</row>', row_xml, part, flags=re.S)
            target.writestr(name, part)
    return out.getvalue()


LINKS = ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,<script>", "ftp://x.se/a",
         "//evil.example/x", "http//missing-colon.se"]  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "yaml"])
def test_links_other_than_http_are_refused_with_the_line(
    node: Path, tmp_path: Path, fmt: str
) -> None:
    if fmt == "csv":
        lines = [";".join(HEADER)] + [f"Fall {i};Sammanfattning;it;pilot;{url}"
                                       for i, url in enumerate(LINKS)]  # fmt: skip
        text = "\n".join(lines) + "\n"
    else:
        text = "".join(
            f"- titel: Fall {i}\n  sammanfattning: S\n  verksamhetsområde: it\n"
            f"  status: pilot\n  länkar: ['{url}']\n"
            for i, url in enumerate(LINKS)
        )
    path = tmp_path / f"länkar.{fmt}"
    path.write_text(text, encoding="utf-8")
    result = import_file(node, path)
    refused = result.exit_code == 1 and held(node) == 0
    record("attack", f"non-http(s) links in a {fmt.upper()} import", refused=refused,
           code=f"exit {result.exit_code}", reason="not an http(s) link")  # fmt: skip
    assert result.exit_code == 1, result
    assert result.stderr.count("is not an http(s) link") == len(LINKS), result.stderr
    assert "javascript:alert(1)" in result.stderr and ("line 2" in result.stderr)
    assert held(node) == 0


def test_a_workbook_that_unpacks_to_a_huge_cell_is_refused_fast(node: Path, tmp_path: Path) -> None:
    """A 50 kB XLSX holding a 50 MB cell (deflate packs it 1000:1)."""
    row = b'<row r="2"><c r="A2" t="inlineStr"><is><t>' + b"A" * 50_000_000 + b"</t></is></c></row>"
    bomb = with_sheet_row(workbook([["x", "y", "it", "pilot", ""]]), row)
    assert len(bomb) < 100_000
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(bomb)
    started = time.monotonic()
    result = import_file(node, path)
    elapsed = time.monotonic() - started
    record("attack", "XLSX zip bomb (50 MB cell in 50 kB)", refused=result.exit_code == 1,
           code=f"exit {result.exit_code}", reason="unpacks to")  # fmt: skip
    assert result.exit_code == 1, result
    assert "unpacks to" in result.stderr and "32 MiB" in result.stderr, result.stderr
    assert elapsed < 30
    assert held(node) == 0


def test_a_workbook_with_a_lying_dimension_and_deep_yaml_json(node: Path, tmp_path: Path) -> None:
    source = zipfile.ZipFile(io.BytesIO(workbook([["A", "B", "it", "pilot", ""]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            part = source.read(name)
            if name == "xl/worksheets/sheet1.xml":  # claims 16,384 columns x 1,048,576 rows
                part = re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD1048576"/>',
                              part)  # fmt: skip
            target.writestr(name, part)
    files = {
        "dimension.xlsx": out.getvalue(),
        "deep.yaml": b"[" * 100_000 + b"]" * 100_000,
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "nul.csv": b"titel;sammanfattning\n\x00;\x00\n",
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = import_file(node, path)
        record("attack", f"import {name}", refused=result.exit_code == 1,
               code=f"exit {result.exit_code}", reason="")  # fmt: skip
        assert result.exit_code == 1, (name, result)
        assert "fel:" in result.stderr and "Traceback" not in result.stderr, (name, result)
    assert held(node) == 0


HUGE = "9" * 5000  # Python's int() refuses more than 4,300 digits (a ValueError)


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_a_5000_digit_number_is_refused_with_its_row_and_field(
    node: Path, tmp_path: Path, fmt: str
) -> None:
    """Issue 16: a 5,000-digit integer ended the import in a traceback (YAML and JSON in
    the parser, CSV in the amount's conversion)."""
    good = "titel: Bra fall\n  sammanfattning: S\n  verksamhetsområde: it\n  status: pilot"
    if fmt == "yaml":
        text = (f"- {good}\n"
                f"- titel: Stort fall\n  sammanfattning: S\n  verksamhetsområde: it\n"
                f"  status: pilot\n  årlig kostnad: {HUGE}\n"
                f"- titel: Hex\n  sammanfattning: S\n  verksamhetsområde: it\n"
                f"  status: pilot\n  årlig kostnad: 0x{'f' * 5000}\n")  # fmt: skip
        places = ["line 5: cost_yearly: ", "line 10: cost_yearly: "]
    elif fmt == "json":
        row = '"sammanfattning": "S", "verksamhetsområde": "it", "status": "pilot"'
        text = f'[{{"titel": "Bra fall", {row}}}, {{"titel": "Stort fall", {row}, "årlig kostnad": {HUGE}}}]'  # noqa: E501
        places = ["item 2: cost_yearly: "]
    else:
        text = ("titel;sammanfattning;verksamhetsområde;status;årlig kostnad\n"
                f"Bra fall;S;it;pilot;\nStort fall;S;it;pilot;{HUGE}\n")  # fmt: skip
        places = ["line 3: cost_yearly: "]
    path = tmp_path / f"stora-tal.{fmt}"
    path.write_text(text, encoding="utf-8")
    result = import_file(node, path)
    clean = result.exception is None or isinstance(result.exception, SystemExit)
    refused = result.exit_code == 1 and clean and held(node) == 0
    record("attack", f"5,000-digit integer in a {fmt.upper()} import", refused=refused,
           code=f"exit {result.exit_code}", reason="row and field named")  # fmt: skip
    assert result.exit_code == 1 and clean, (result.exception, result.output)
    assert "Traceback" not in result.stderr and "set_int_max_str_digits" not in result.stderr
    for place in places:
        line = next(x for x in result.stderr.splitlines() if place in x)
        assert "(500" in line and len(line) < 200, line  # the value is cut short
    assert "1 000 000 000 000 kronor" in result.stderr
    assert "inget importerades" in result.stderr
    assert held(node) == 0


def test_a_5000_digit_number_in_a_workbook_is_refused_with_its_row(
    node: Path, tmp_path: Path
) -> None:
    """openpyxl converts a numeric cell with int(), which refuses 5,000 digits: the row
    is named, without Python's advice to raise its limit."""
    data = workbook([["Stort fall", "S", "it", "pilot", "5"]])
    number = b'<c r="E2"><v>' + HUGE.encode() + b"</v></c>"
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            part = source.read(name)
            if name == "xl/worksheets/sheet1.xml":
                part, count = re.subn(rb'<c r="E2".*?</c>', number, part, flags=re.S)
                assert count == 1, part
            target.writestr(name, part)
    path = tmp_path / "stora-tal.xlsx"
    path.write_bytes(out.getvalue())
    result = import_file(node, path)
    clean = result.exception is None or isinstance(result.exception, SystemExit)
    record("attack", "5,000-digit integer in an XLSX import", refused=result.exit_code == 1,
           code=f"exit {result.exit_code}", reason="row named")  # fmt: skip
    assert result.exit_code == 1 and clean, (result.exception, result.output)
    assert "row 2: a number of more than 4,300 digits" in result.stderr, result.stderr
    assert "set_int_max_str_digits" not in result.stderr
    assert held(node) == 0
