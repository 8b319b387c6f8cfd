"""CSV export of search results, for people who work in spreadsheets (pure).

One format, chosen for Swedish Excel, which is what most kommun staff open a CSV
with: UTF-8 **with a byte-order mark** (without it Excel reads å, ä, ö as mojibake)
and **semicolons** between fields (Excel in a Swedish locale splits on ``;``, since
the comma is the decimal separator), CRLF line ends, every field quoted when it
needs to be. LibreOffice, Numbers and Python's csv module read it as well.

Text cells whose first visible character is ``=``, ``+``, ``-`` or ``@`` are prefixed
with an apostrophe, as OWASP's CSV-injection guidance says: a spreadsheet would
otherwise run a record's title as a formula. "First visible" skips whitespace (space,
NBSP, tab, CR, LF, ...), control and format characters (zero-width space, bidi marks,
...), combining marks and the blank-looking fillers, and compares after NFKC, so that
`` =``, ``\u200b=`` and the fullwidth ``＝ ＋ － ＠`` are caught too (spreadsheets
trim or fold some of these). A cell that starts with a tab, CR or LF is prefixed as
well.

The link column is built from ``[web] public_url`` (a path when it is empty), never
from the request's Host header.
"""

from __future__ import annotations

import csv
import io
import unicodedata
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
_FORMULA_START = frozenset("=+-@")
_CONTROL_START = ("\t", "\r", "\n")
#: Unicode categories that show nothing: controls, format characters (zero-width space,
#: bidi marks, soft hyphen), separators (spaces, NBSP) and lone combining marks.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})
#: Letters and symbols that render blank (Hangul fillers, the braille blank).
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _first_visible(text: str) -> str:
    for ch in text:
        if ch.isspace() or ch in _BLANK_LOOKING:
            continue
        if unicodedata.category(ch) in _INVISIBLE_CATEGORIES:
            continue
        return ch
    return ""


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet could take ``text`` for a formula (see the module docstring)."""
    if text.startswith(_CONTROL_START):
        return True
    first = _first_visible(text)
    return bool(first) and unicodedata.normalize("NFKC", first)[:1] in _FORMULA_START


def cell(text: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if is_formula_like(text) else text


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
