"""Text cells a spreadsheet shows as text, never runs as a formula (pure).

Text cells whose first visible character is ``=``, ``+``, ``-`` or ``@`` are prefixed
with an apostrophe, as OWASP's CSV-injection guidance says: a spreadsheet would
otherwise run a record's title as a formula. "First visible" skips whitespace (space,
NBSP, tab, CR, LF, ...), control and format characters (zero-width space, bidi marks,
...), combining marks and the blank-looking fillers, and compares after NFKC, so that
`` =``, ``\u200b=`` and the fullwidth ``＝ ＋ － ＠`` are caught too (spreadsheets
trim or fold some of these). A cell that starts with a tab, CR or LF is prefixed as
well. Used by the catalog's CSV of search results and the Eurocities CSV export.
"""

from __future__ import annotations

import unicodedata

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
