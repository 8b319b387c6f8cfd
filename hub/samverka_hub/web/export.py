"""CSV export of search results, for people who work in spreadsheets (pure).

One format, chosen for Swedish Excel, which is what most kommun staff open a CSV
with: UTF-8 **with a byte-order mark** (without it Excel reads å, ä, ö as mojibake)
and **semicolons** between fields (Excel in a Swedish locale splits on ``;``, since
the comma is the decimal separator), CRLF line ends, every field quoted when it
needs to be. LibreOffice, Numbers and Python's csv module read it as well.

Text cells that a spreadsheet could take for a formula are prefixed with an apostrophe
(:func:`samverka.exports.spreadsheet.cell`, OWASP's CSV-injection guidance).

The link column is built from ``[web] public_url`` (a path when it is empty), never
from the request's Host header.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from samverka.exports.spreadsheet import cell, is_formula_like

from samverka_hub.web import present
from samverka_hub.web.catalog import Summary

__all__ = ["BOM", "HEADER", "cell", "is_formula_like", "to_csv"]

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


def to_csv(rows: Iterable[Summary], *, base_url: str) -> str:
    """The rows as CSV text (BOM first); ``base_url`` (``[web] public_url``, "" for
    links that are paths) is put before the record links' paths."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    base = base_url.rstrip("/")
    for s in rows:
        county = present.county_of(s.origin)
        writer.writerow(
            [
                cell(present.kind_label(s.kind)),
                cell(s.title),
                cell(s.summary),
                cell(s.origin),
                cell(present.kommun_name(s.origin)),
                cell(present.county_name(county) if county else ""),
                cell(present.area_label(s.service_area)),
                cell(present.status_label(s.status)),
                cell(present.risk_label(s.risk_class)),
                s.version,
                present.date(s.timestamp_ms),
                cell(base + present.record_path(s.origin, s.record_id)),
            ]
        )
    return out.getvalue()
