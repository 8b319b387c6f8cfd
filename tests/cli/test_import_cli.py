"""`samverka import`: inventories in CSV, XLSX, YAML and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from clikit import Cli, Run
from samverka.node import Node
from samverka.records.inventory import MAX_FILE_BYTES

GOOD = [
    {"titel": "Chattbot för bygglov", "sammanfattning": "Svarar på frågor om bygglov",
     "verksamhetsområde": "bygglov", "status": "i drift", "riskklass": "begränsad",
     "taggar": "chatt; bygglov", "årlig kostnad": "24 000"},
    {"titel": "Fakturatolkning", "sammanfattning": "Läser leverantörsfakturor åt ekonomi",
     "verksamhetsområde": "Ekonomi", "status": "pilot", "riskklass": "minimal",
     "taggar": "", "årlig kostnad": ""},
]  # fmt: skip
#: Row 3 of the data (line 4 in CSV, row 4 in XLSX): a bad area and no summary.
BAD = {"titel": "Trasig rad", "sammanfattning": "", "verksamhetsområde": "rymden",
       "status": "pilot", "riskklass": "", "taggar": "", "årlig kostnad": ""}  # fmt: skip
COLUMNS = list(GOOD[0])


def write_csv(path: Path, rows: list[dict[str, str]], *, sep: str = ";", bom: bool = True) -> Path:
    def cell(value: str) -> str:
        return f'"{value}"' if sep in value or '"' in value else value

    lines = [sep.join(COLUMNS)] + [sep.join(cell(r[c]) for c in COLUMNS) for r in rows]
    path.write_bytes(("\ufeff" if bom else "").encode() + "\r\n".join(lines).encode() + b"\r\n")
    return path


def write_xlsx(path: Path, rows: list[dict[str, str]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(COLUMNS)
    for r in rows:
        sheet.append([r[c] or None for c in COLUMNS])
    book.save(path)
    return path


def write_yaml(path: Path, rows: list[dict[str, str]]) -> Path:
    import yaml

    items = [{k: v for k, v in r.items() if v} for r in rows]
    path.write_text(yaml.safe_dump({"användningsfall": items}, allow_unicode=True), "utf-8")
    return path


def write_json(path: Path, rows: list[dict[str, str]]) -> Path:
    items = [{k: v for k, v in r.items() if v} for r in rows]
    path.write_text(json.dumps(items, ensure_ascii=False), "utf-8")
    return path


def held_ids(node_dir: Path) -> list[str]:
    with Node.open(node_dir) as node:
        return sorted(r.record_id for r in node.store.list_records())


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "yaml": write_yaml, "json": write_json}
#: Where the bad row (the third record) is reported, per format.
BAD_PLACE = {"csv": "line 4", "xlsx": "row 4", "yaml": "line ", "json": "item 3"}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_a_file_with_one_bad_row_is_refused_whole(
    cli: Cli, leksand: Path, tmp_path: Path, fmt: str
) -> None:
    path = WRITERS[fmt](tmp_path / f"inventering.{fmt}", [*GOOD, BAD])
    result = cli("import", path, node=leksand)
    assert result.exit_code == 1, result.output
    assert "inget importerades" in result.stderr
    lines = [line for line in result.stderr.splitlines() if "rymden" in line]
    assert len(lines) == 1 and BAD_PLACE[fmt] in lines[0] and ": area: " in lines[0]
    assert any(BAD_PLACE[fmt] in line and "summary: is required" in line
               for line in result.stderr.splitlines())  # fmt: skip
    assert held_ids(leksand) == []

    skipped = cli("import", path, "--skip-invalid", node=leksand)
    assert skipped.exit_code == 0, skipped.output
    assert "2 nya" in skipped.stdout and "1 ogiltiga hoppades över" in skipped.stdout
    assert held_ids(leksand) == ["uc-chattbot-for-bygglov", "uc-fakturatolkning"]


def test_csv_import_in_a_subprocess_round_trips_swedish_and_is_searchable(
    run: Run, leksand: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "inventering.csv", GOOD)
    first = run("import", path, node=leksand)
    assert first.returncode == 0, first.stderr
    assert "2 nya, 0 ändrade, 0 oförändrade" in first.stdout
    again = run("import", path, node=leksand)
    assert again.returncode == 0, again.stderr
    assert "0 nya, 0 ändrade, 2 oförändrade" in again.stdout
    with Node.open(leksand) as node:
        assert node.store.head(node.origin).sequence == 2  # type: ignore[union-attr]
    shown = json.loads(run("usecase", "show", "uc-fakturatolkning", "--json", node=leksand).stdout)
    assert shown["record"]["use_case"]["summary"] == "Läser leverantörsfakturor åt ekonomi"
    assert shown["record"]["use_case"]["service_area"] == "SERVICE_AREA_FINANCE"
    chat = json.loads(
        run("usecase", "show", "uc-chattbot-for-bygglov", "--json", node=leksand).stdout
    )
    assert chat["record"]["header"]["tags"] == ["chatt", "bygglov"]
    assert chat["record"]["use_case"]["cost"]["yearly_sek"] == "24000"
    found = run("search", "leverantörsfakt", "--json", node=leksand)
    assert [h["id"] for h in json.loads(found.stdout)] == ["uc-fakturatolkning"]
    assert json.loads(run("search", "leverantorsfakturor", "--json", node=leksand).stdout) == []


def test_changed_rows_become_new_versions(cli: Cli, leksand: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", GOOD, sep=",", bom=False)
    assert cli("import", path, node=leksand).exit_code == 0
    changed = [dict(GOOD[0], status="avslutad"), GOOD[1]]
    write_csv(path, changed, sep=",", bom=False)
    dry = cli("import", path, "--dry-run", node=leksand)
    assert "ny version: uc-chattbot-for-bygglov" in dry.stdout
    assert "skulle importera" in dry.stdout
    result = cli("import", path, node=leksand)
    assert "0 nya, 1 ändrade, 1 oförändrade" in result.stdout
    data = json.loads(
        cli("usecase", "show", "uc-chattbot-for-bygglov", "--json", node=leksand).stdout
    )
    assert data["version"] == 2
    assert data["record"]["use_case"]["status"] == "USE_CASE_STATUS_ENDED"
    # A retired record is left retired by a later import.
    assert cli("usecase", "retire", "uc-fakturatolkning", node=leksand).exit_code == 0
    after = cli("import", path, node=leksand)
    assert "1 indragna lämnade som de är" in after.stdout


def test_dry_run_writes_nothing(cli: Cli, leksand: Path, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", GOOD)
    result = cli("import", path, "--dry-run", "--json", node=leksand)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["new"] == 2 and report["published"] == 0
    assert [r["where"] for r in report["rows"]] == ["row 2", "row 3"]
    assert held_ids(leksand) == []


def test_yaml_that_constructs_objects_is_refused(cli: Cli, leksand: Path, tmp_path: Path) -> None:
    for text in (
        "- !!python/object/apply:os.system ['touch pwned']\n",
        "- title: x\n  summary: !!python/object:collections.OrderedDict {}\n",
        "- &a {title: x, summary: s, area: it, status: idea}\n- *a\n",
    ):
        path = tmp_path / "evil.yaml"
        path.write_text(text)
        result = cli("import", path, node=leksand)
        assert result.exit_code == 1, result.output
        assert "fel: YAML line" in result.stderr
    assert not Path("pwned").exists()
    assert held_ids(leksand) == []


def test_mixed_kinds_and_unknown_columns(cli: Cli, leksand: Path, tmp_path: Path) -> None:
    path = tmp_path / "blandat.json"
    path.write_text(json.dumps({
        "use_cases": [{"title": "Bot", "summary": "s", "area": "it", "status": "idea"}],
        "lärdomar": [{"titel": "Ha en plan", "kategori": "kompetens", "use_case": "uc-bot"}],
        "solutions": [{"title": "Mall", "summary": "s", "typ": "upphandlingsmall",
                       "licens": "EUPL-1.2", "ansvarig": "Anna"}],
    }, ensure_ascii=False))  # fmt: skip
    refused = cli("import", path, node=leksand)
    assert refused.exit_code == 1 and "ansvarig: is not a known column" in refused.stderr
    result = cli("import", path, "--ignore-unknown-columns", node=leksand)
    assert result.exit_code == 0, result.output
    assert held_ids(leksand) == ["lesson-ha-en-plan", "sol-mall", "uc-bot"]


def test_limits_and_unreadable_files(cli: Cli, leksand: Path, tmp_path: Path) -> None:
    big = tmp_path / "stor.csv"
    with big.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    result = cli("import", big, node=leksand)
    assert result.exit_code == 1 and "gränsen är" in result.stderr
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("titel;sammanfattning\nÅtgärd;x\n".encode("latin-1"))
    result = cli("import", latin1, node=leksand)
    assert result.exit_code == 1 and "not UTF-8" in result.stderr
    broken = tmp_path / "trasig.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    result = cli("import", broken, node=leksand)
    assert result.exit_code == 1 and "XLSX" in result.stderr
    unknown = tmp_path / "data.bin"
    unknown.write_bytes(b"\x00\x01")
    result = cli("import", unknown, node=leksand)
    assert result.exit_code == 1 and "--format" in result.stderr


def test_duplicate_titles_in_one_file_are_reported(cli: Cli, leksand: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "dubbel.csv", [GOOD[0], GOOD[0]])
    result = cli("import", path, node=leksand)
    assert result.exit_code == 1
    assert "line 3: id: 'uc-chattbot-for-bygglov' is also the id of line 2" in result.stderr


def test_column_reference_needs_no_file_or_node(cli: Cli) -> None:
    result = cli("import", "--columns")
    assert result.exit_code == 0, result.output
    assert "verksamhetsområde" in result.stdout and "cost_yearly" in result.stdout
