"""Reading a kommun's existing AI inventory (pure: bytes in, a plan out; no I/O).

Accepted files (at most :data:`MAX_FILE_BYTES` and :data:`MAX_ROWS` records):

- **CSV**, UTF-8 with or without a byte-order mark, separated by ``;`` (what Swedish
  Excel writes), ``,`` or tab; the first non-empty line names the columns.
- **XLSX** (the first sheet; read-only, formulas read as their cached values); the
  first non-empty row names the columns. A workbook unpacking to more than
  :data:`MAX_XLSX_UNPACKED_BYTES` is refused before it is read (a "zip bomb").
- **YAML** (``yaml.safe_load`` rules: tags that would construct objects, such as
  ``!!python/object``, are refused) and **JSON**: a list of records, or a mapping of
  sections to lists (``use_cases:``, ``lessons:``, ``solutions:``, or Swedish
  ``användningsfall:``, ``lärdomar:``, ``lösningar:``), the section giving the kind.

Columns and keys are the flat fields of :mod:`samverka.records.recordform`, the same names
as the CLI options (``title``, ``area``, ``cost_yearly``), or their Swedish names
(``titel``, ``sammanfattning``, ``verksamhetsområde``, ``årlig kostnad``); the ATRS and AI
Act fields also by the standards' English names (``senior_responsible_owner``,
``appeals and review``, ``intended purpose``; docs/SCHEMA.md). Their items (risks,
models, datasets, assessments, suppliers) are one per line in a cell, parts separated
by ``|``, or mappings in YAML/JSON. A column
``kind`` (``posttyp``) says which kind a row is; without it rows are of the
importer's default kind (use cases). In CSV/XLSX cells, lists are separated by ``;``
or new lines (plain lists such as tags or products also by ``,``).

Every row is converted and validated as receivers will validate it, and every
problem is reported with where it is (``line 7`` in CSV and YAML, ``row 7`` in
XLSX, ``item 3`` in JSON) and the field. :func:`plan_import` then compares each row
with what the node holds: rows become new records, new versions of changed ones,
or nothing when unchanged, so importing the same file twice changes nothing. A
column present in the file is authoritative (an empty cell clears the field on
update); fields without a column are left as they are.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from samverka.errors import FieldIssue, ImportFileError
from samverka.protocol.validation import placeholder_issues, record_issues
from samverka.protocol.vocab import RECORD_KIND, UnknownTerm
from samverka.records.recordform import (
    BODY_KINDS,
    FIELDS_BY_NAME,
    apply_form,
    body_of,
    column_key,
    derive_id,
    field_for_column,
    flat_issues,
    new_record,
    same_content,
)
from samverka.v1 import records_pb2

if TYPE_CHECKING:
    from samverka.store.store import StoredRecord

#: Largest inventory file accepted, in bytes (10 MiB).
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Most records in one file.
MAX_ROWS = 5_000
#: Most columns in a CSV/XLSX file.
MAX_COLUMNS = 200
#: Most lines (empty ones too) scanned in a CSV file or rows in a sheet: a compressed
#: XLSX of 10 MiB can hold millions of empty rows.
MAX_SCANNED_LINES = 50_000
#: Most bytes an XLSX file may unpack to (the sum of its parts' declared sizes, which
#: zipfile never inflates a part beyond): deflated XML packs about 1000:1, so a 50 kB
#: workbook can hold a 50 MB cell that takes the XML reader 600 MB and seconds to load.
MAX_XLSX_UNPACKED_BYTES = 32 * 1024 * 1024
#: Longest integer literal a YAML/JSON inventory's reader turns into a number; a longer
#: one is kept as its text, for the field to refuse with the row and field's name
#: (Python refuses int() of more than 4,300 digits with a ValueError, and no field
#: holds more than protobuf's 20-digit uint64 anyway).
MAX_NUMBER_CHARS = 40

FORMATS = ("csv", "xlsx", "yaml", "json")

#: Column names that say which kind of record a row is.
KIND_COLUMNS = frozenset({"kind", "posttyp", "typ_av_post", "record_kind", "post"})
#: Bodies an inventory may hold (recommendations come from the council only).
IMPORTABLE = ("use_case", "lesson", "solution", "adoption")

#: Plain-text list fields whose CSV/XLSX cells may also be separated by commas.
_COMMA_LISTS = frozenset(
    {"tag", "technique", "product", "vendor", "data_source", "partner", "national_project"}
    | {"transparency", "platform"}
)


@dataclass(frozen=True, slots=True)
class RawRow:
    """One record as read from the file: where it is, its kind, its flat values.

    A value of None means the file has no such column or key; "" means an empty cell.
    """

    where: str
    body: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: where in the file ("line 7", or "file"), which field, what."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.field}: {self.message}"
            if self.field
            else (f"{self.where}: {self.message}")
        )


@dataclass
class Inventory:
    """A parsed file: its rows and the problems found while reading it."""

    format: str
    rows: list[RawRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Column names that are not fields (ignored only when asked to).
    unknown_columns: list[str] = field(default_factory=list)


# -- detecting and reading -------------------------------------------------------------


def detect_format(name: str, data: bytes) -> str:
    """The format from the file name, else from the content."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix in ("yaml", "yml"):
        return "yaml"
    if suffix in FORMATS:
        return suffix
    if suffix in ("txt", "tsv"):
        return "csv"
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"[", b"{"):
        return "json"
    raise ImportFileError(
        f"cannot tell the format of {name!r}",
        hint="name the file .csv, .xlsx, .yaml or .json, or pass --format",
    )


def read_inventory(
    data: bytes,
    fmt: str,
    *,
    default_body: str = "use_case",
    ignore_unknown_columns: bool = False,
) -> Inventory:
    """Parse ``data`` into rows; raise ImportFileError when the file cannot be read at all."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(
            f"the file is {len(data)} bytes; the limit is {MAX_FILE_BYTES} bytes (10 MiB)",
            hint="split the inventory into smaller files",
        )
    reader = {"csv": _read_csv, "xlsx": _read_xlsx, "yaml": _read_yaml, "json": _read_json}
    if fmt not in reader:
        raise ImportFileError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    inventory = Inventory(format=fmt)
    for raw in reader[fmt](data, inventory, default_body):
        if len(inventory.rows) >= MAX_ROWS:
            raise ImportFileError(
                f"the file has more than {MAX_ROWS} records",
                hint="split the inventory into smaller files",
            )
        inventory.rows.append(raw)
    if inventory.unknown_columns and not ignore_unknown_columns:
        for name in inventory.unknown_columns:
            inventory.problems.append(
                Problem("file", name, "is not a known column (no data was read from it)")
            )
    return inventory


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"the file is not UTF-8 text (byte {exc.start})",
            hint="in Excel, save as 'CSV UTF-8 (kommaavgränsad)'",
        ) from exc


class _Columns:
    """A header row mapped to flat fields (plus the kind column)."""

    def __init__(self, names: list[Any], inventory: Inventory) -> None:
        self.fields: list[str | None] = []
        self.kind_index: int | None = None
        seen: dict[str, str] = {}
        if len(names) > MAX_COLUMNS:
            raise ImportFileError(f"{len(names)} columns; at most {MAX_COLUMNS} are read")
        for i, name in enumerate(names):
            text = "" if name is None else str(name).strip()
            if not text:
                self.fields.append(None)
                continue
            if column_key(text) in KIND_COLUMNS:
                self.kind_index = i
                self.fields.append(None)
                continue
            flat = field_for_column(text)
            if flat is None:
                inventory.unknown_columns.append(text)
            elif flat in seen:
                raise ImportFileError(
                    f"columns {seen[flat]!r} and {text!r} both mean the field {flat}",
                    hint="keep one of them",
                )
            else:
                seen[flat] = text
            self.fields.append(flat)

    def row(
        self, cells: list[Any], where: str, default_body: str, problems: list[Problem]
    ) -> RawRow | None:
        """A RawRow from one line of cells, or None for an empty line."""
        if all(c is None or str(c).strip() == "" for c in cells):
            return None
        values: dict[str, Any] = {}
        for i, flat in enumerate(self.fields):
            if flat is None:
                continue
            cell = cells[i] if i < len(cells) else None
            values[flat] = _split_cell(flat, cell)
        extra = [c for c in cells[len(self.fields) :] if c is not None and str(c).strip()]
        if extra:
            problems.append(Problem(where, "", f"{len(extra)} value(s) beyond the last column"))
        kind_cell = cells[self.kind_index] if self.kind_index is not None else None
        body = _body_from(kind_cell, default_body, where, problems)
        return RawRow(where, body, values) if body else None


def _split_cell(flat: str, cell: Any) -> Any:
    """A cell's value: lists split on ';' and new lines (and ',' for plain lists)."""
    if cell is None:
        return ""
    f = FIELDS_BY_NAME[flat]
    if not any(f.multiple(body) for body in IMPORTABLE if f.applies_to(body)):
        return cell
    if not isinstance(cell, str):
        return [cell]
    pattern = r"[;\n,]" if flat in _COMMA_LISTS else r"[;\n]"
    if f.type == "item":  # an ATRS item's parts are text that may hold ';': one per line
        pattern = r"\n"
    return [part.strip() for part in re.split(pattern, cell) if part.strip()]


def _body_from(value: Any, default_body: str, where: str, problems: list[Problem]) -> str:
    if value is None or str(value).strip() == "":
        return default_body
    try:
        kind = RECORD_KIND.parse(str(value))
    except UnknownTerm:
        kind = 0
    body = next((b for b, k in BODY_KINDS.items() if k == kind), "")
    if body not in IMPORTABLE:
        problems.append(Problem(where, "kind", f"{value!r} is not one of: {', '.join(IMPORTABLE)}"))
        return ""
    return body


def _read_csv(data: bytes, inventory: Inventory, default_body: str) -> Iterator[RawRow]:
    text = _decode(data)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(";,\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns: _Columns | None = None
    line = 1
    try:
        for cells in reader:
            if reader.line_num > MAX_SCANNED_LINES:
                raise ImportFileError(f"the file has more than {MAX_SCANNED_LINES} lines")
            where = f"line {line}"
            line = reader.line_num + 1
            if columns is None:
                if any(c.strip() for c in cells):
                    columns = _Columns(cells, inventory)
                continue
            raw = columns.row(list(cells), where, default_body, inventory.problems)
            if raw is not None:
                yield raw
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: not valid CSV: {exc}") from exc


def _read_xlsx(data: bytes, inventory: Inventory, default_body: str) -> Iterator[RawRow]:
    import openpyxl  # imported here: it is slow to import and only XLSX needs it

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ImportFileError(f"not a readable XLSX workbook: {exc}") from exc
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise ImportFileError(
            f"the workbook unpacks to {unpacked} bytes; the limit is "
            f"{MAX_XLSX_UNPACKED_BYTES} bytes (32 MiB)",
            hint="split the inventory into smaller files, or save it as CSV UTF-8",
        )
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ImportFileError(f"not a readable XLSX workbook: {exc}") from exc
    try:
        sheet = book.worksheets[0]
        columns: _Columns | None = None
        rows = sheet.iter_rows(values_only=True)
        for number in range(1, MAX_SCANNED_LINES + 2):
            try:
                cells = next(rows, None)
            except ValueError as exc:
                if "integer string conversion" in str(exc):  # openpyxl's int() of the cell
                    raise ImportFileError(
                        f"row {number}: a number of more than 4,300 digits "
                        "(no field takes more than 20)",
                        hint="correct the number in that row",
                    ) from exc
                raise ImportFileError(f"row {number}: not readable: {exc}") from exc
            except Exception as exc:
                raise ImportFileError(f"row {number}: not readable: {exc}") from exc
            if cells is None:
                return
            if number > MAX_SCANNED_LINES:
                raise ImportFileError(f"the sheet has more than {MAX_SCANNED_LINES} rows")
            if columns is None:
                if any(c is not None and str(c).strip() for c in cells):
                    columns = _Columns(list(cells), inventory)
                continue
            raw = columns.row(list(cells), f"row {number}", default_body, inventory.problems)
            if raw is not None:
                yield raw
    finally:
        book.close()


def _read_yaml(data: bytes, inventory: Inventory, default_body: str) -> Iterator[RawRow]:
    text = _decode(data)
    loader: yaml.SafeLoader | None = None
    try:
        loader = _InventoryLoader(text)
        node = loader.get_single_node()
        _refuse_aliases(node)
        document = loader.construct_document(node) if node is not None else None
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise ImportFileError(
            f"YAML line {line}: {exc.problem}",
            hint="inventory files hold plain values only; YAML tags that construct "
            "objects (such as !!python/object) are refused",
        ) from exc
    except yaml.YAMLError as exc:
        raise ImportFileError(f"not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ImportFileError("the YAML is nested too deeply") from exc
    finally:
        if loader is not None:
            loader.dispose()
    lines = _yaml_item_lines(node)
    yield from _structured(document, inventory, default_body, lambda i, s: lines.get((s, i)))


class _InventoryLoader(yaml.SafeLoader):
    """SafeLoader whose integers longer than MAX_NUMBER_CHARS stay text (see _json_int)."""

    def construct_long_int(self, node: yaml.ScalarNode) -> Any:
        text = str(self.construct_scalar(node))
        if len(text) > MAX_NUMBER_CHARS:
            return text
        return self.construct_yaml_int(node)


_InventoryLoader.add_constructor("tag:yaml.org,2002:int", _InventoryLoader.construct_long_int)


def _json_int(text: str) -> int | str:
    """An integer literal; one longer than MAX_NUMBER_CHARS stays text, so that the field
    it is given for reports it with its row (every value is read as text in the end)."""
    return int(text) if len(text) <= MAX_NUMBER_CHARS else text


def _refuse_aliases(root: Any) -> None:
    """Refuse anchors/aliases: an inventory never needs them, and a few aliases can
    make a tiny file expand into an enormous structure ("billion laughs")."""
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            continue
        if id(node) in seen:
            raise ImportFileError(
                f"YAML line {node.start_mark.line + 1}: anchors and aliases (&, *) are not "
                "accepted in inventories",
                hint="write each value out in full",
            )
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def _yaml_item_lines(node: Any) -> dict[tuple[str, int], str]:
    """'line N' of each record in a YAML document, keyed like _structured numbers them."""
    out: dict[tuple[str, int], str] = {}
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[("", i)] = f"line {item.start_mark.line + 1}"
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(value, yaml.SequenceNode):
                for i, item in enumerate(value.value):
                    out[(str(key.value), i)] = f"line {item.start_mark.line + 1}"
    return out


def _read_json(data: bytes, inventory: Inventory, default_body: str) -> Iterator[RawRow]:
    try:
        document = json.loads(_decode(data), parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"not valid JSON: line {exc.lineno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise ImportFileError("the JSON is nested too deeply") from exc
    yield from _structured(document, inventory, default_body, lambda i, s: None)


def _structured(
    document: Any,
    inventory: Inventory,
    default_body: str,
    line_of: Callable[[int, str], str | None],
) -> Iterator[RawRow]:
    """Rows from a YAML/JSON document: a list, or sections of lists."""
    sections: list[tuple[str, str, Any]] = []
    if isinstance(document, list):
        sections.append(("", default_body, document))
    elif isinstance(document, dict):
        for key, items in document.items():
            body = _section_body(str(key))
            if body is None:
                raise ImportFileError(
                    f"unknown section {key!r}",
                    hint="use use_cases, lessons, solutions, adoptions "
                    "(or användningsfall, lärdomar, lösningar), or a plain list",
                )
            sections.append((str(key), body, items))
    elif document is not None:
        raise ImportFileError("the file must hold a list of records or sections of lists")
    for key, body, items in sections:
        if items is None:
            continue
        if not isinstance(items, list):
            raise ImportFileError(f"section {key or 'top level'!r} must be a list of records")
        for i, item in enumerate(items):
            label = f"item {i + 1}" + (f" of {key}" if key else "")
            where = line_of(i, key) or label
            if not isinstance(item, dict):
                inventory.problems.append(Problem(where, "", "is not a mapping of fields"))
                continue
            raw = _mapping_row(item, where, body, inventory)
            if raw is not None:
                yield raw


def _section_body(key: str) -> str | None:
    for candidate in (key, key.rstrip("s"), key.removesuffix("es")):
        try:
            kind = RECORD_KIND.parse(candidate)
        except UnknownTerm:
            continue
        body = next((b for b, k in BODY_KINDS.items() if k == kind), None)
        if body in IMPORTABLE:
            return body
    return None


def _mapping_row(
    item: dict[Any, Any], where: str, default_body: str, inventory: Inventory
) -> RawRow | None:
    values: dict[str, Any] = {}
    body = default_body
    for key, value in item.items():
        name = str(key)
        if column_key(name) in KIND_COLUMNS:
            body = _body_from(value, default_body, where, inventory.problems)
            if not body:
                return None
            continue
        flat = field_for_column(name)
        if flat is None:
            if name not in inventory.unknown_columns:
                inventory.unknown_columns.append(name)
            continue
        if flat in values:
            inventory.problems.append(Problem(where, flat, f"is given twice (as {name!r} too)"))
            continue
        values[flat] = _structured_value(flat, value)
    return RawRow(where, body, values)


def _structured_value(flat: str, value: Any) -> Any:
    """YAML/JSON values: null is an empty field; a text for a list field is split."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _split_cell(flat, value)
    if isinstance(value, dict | list | tuple):
        return value
    return value


# -- planning the import ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedRow:
    """What importing one row does: ``new``, ``update``, ``unchanged`` or ``retired``.

    ``retired`` rows name records this kommun has retracted; an import leaves them
    retracted (it never revives a record).
    """

    where: str
    action: str
    record: records_pb2.Record

    @property
    def record_id(self) -> str:
        return self.record.header.id


@dataclass
class ImportPlan:
    rows: list[PlannedRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    @property
    def invalid_rows(self) -> int:
        return len({p.where for p in self.problems if p.where != "file"})

    def to_publish(self) -> list[PlannedRow]:
        return [r for r in self.rows if r.action in ("new", "update")]


def plan_import(
    inventory: Inventory,
    *,
    origin: str,
    lookup: Callable[[str], StoredRecord | None],
    default_visibility: int | None = None,
) -> ImportPlan:
    """Convert and validate every row and compare it with what the node holds.

    ``lookup(record_id)`` returns the node's current record of that id (its own
    origin), or None. Pure apart from calling ``lookup``.
    """
    plan = ImportPlan(problems=list(inventory.problems))
    used_ids: dict[str, str] = {}
    for raw in inventory.rows:
        issues, planned = _plan_row(raw, origin, lookup, default_visibility, used_ids)
        plan.problems.extend(Problem(raw.where, i.field, i.message) for i in issues)
        if planned is not None and not issues:
            plan.rows.append(planned)
            used_ids[planned.record_id] = raw.where
    return plan


def _plan_row(
    raw: RawRow,
    origin: str,
    lookup: Callable[[str], StoredRecord | None],
    default_visibility: int | None,
    used_ids: Mapping[str, str],
) -> tuple[list[FieldIssue], PlannedRow | None]:
    values = dict(raw.values)
    given_id = _text(values.pop("id", None))
    title = _text(values.get("title"))
    if given_id:
        record_id = given_id
    elif title:
        record_id = derive_id(title, raw.body)
    else:
        record_id = ""
    if record_id in used_ids:
        other = used_ids[record_id]
        return [FieldIssue("id", f"{record_id!r} is also the id of {other}")], None

    current = lookup(record_id) if record_id else None
    if current is not None and body_of(current.record) != raw.body:
        kind = RECORD_KIND.label(current.kind, "en").lower()
        return [FieldIssue("id", f"{record_id!r} is already a {kind} in this feed")], None

    if current is None:
        record = new_record(raw.body, origin)
        if default_visibility:
            record.header.visibility = default_visibility  # type: ignore[assignment]
        # A new record has nothing to clear: empty cells are simply not given.
        values = {k: v for k, v in values.items() if v not in ("", [])}
    else:
        record = records_pb2.Record()
        record.CopyFrom(current.record)
    issues = apply_form(record, values, own_origin=origin)
    record.header.id = record_id
    if not record_id:
        issues.append(FieldIssue("id", "give an id or a title to derive one from"))
    probe = records_pb2.Record()
    probe.CopyFrom(record)
    probe.header.version = probe.header.version or 1
    converted = {i.field.split("[")[0] for i in issues}
    checked = record_issues(probe, origin=origin) + placeholder_issues(probe)
    for issue in flat_issues(checked, raw.body):
        # A field that did not convert is already reported; do not add "is required".
        if issue.field.split("[")[0].split(".")[0] not in converted:
            issues.append(issue)
    if issues:
        return issues, None
    if current is None:
        return [], PlannedRow(raw.where, "new", record)
    if current.tombstone:
        return [], PlannedRow(raw.where, "retired", current.record)
    if same_content(record, current.record):
        return [], PlannedRow(raw.where, "unchanged", current.record)
    return [], PlannedRow(raw.where, "update", record)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return str(value[0]).strip() if len(value) == 1 else ""
    return str(value).strip()
