"""CSV export of search results, for people who work in spreadsheets (pure).

One format, chosen for Swedish Excel, which is what most kommun staff open a CSV
with: UTF-8 **with a byte-order mark** (without it Excel reads å, ä, ö as mojibake)
and **semicolons** between fields (Excel in a Swedish locale splits on ``;``, since
the comma is the decimal separator), CRLF line ends, every field quoted when it
needs to be. LibreOffice, Numbers and Python's csv module read it as well.

Cells that start with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) are
prefixed with an apostrophe: a spreadsheet would otherwise run a record's title as
a formula (CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from samverka_hub.web import present
from samverka_hub.web.catalog import Summary

BOM = "\ufeff"
HEADER = (
    "Typ",
    "Titel",
    "Sammanfattning",
    "Kommunkod",
    "Kommun",
    "Län",
    "Verksamhetsområde",
    "Status",
    "Riskklass",
    "Version",
    "Senast ändrad",
    "Länk",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(rows: Iterable[Summary], *, base_url: str) -> str:
    """The rows as CSV text (BOM first); ``base_url`` makes the record links absolute."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    base = base_url.rstrip("/")
    for s in rows:
        county = present.county_of(s.origin)
        writer.writerow(
            [
                present.kind_label(s.kind),
                cell(s.title),
                cell(s.summary),
                s.origin,
                present.kommun_name(s.origin),
                present.county_name(county) if county else "",
                present.area_label(s.service_area),
                present.status_label(s.status),
                present.risk_label(s.risk_class),
                s.version,
                present.date(s.timestamp_ms),
                base + present.record_path(s.origin, s.record_id),
            ]
        )
    return out.getvalue()
