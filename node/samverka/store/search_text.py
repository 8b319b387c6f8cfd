"""Turn what a person typed into a safe full-text query (pure).

User text is never passed to the database as query syntax. It is cut into words
(runs of letters and digits; everything else separates), each word is quoted and
prefix-matched, and the words are ANDed. So quotes, ``*``, ``NEAR``, ``-``,
parentheses and ``AND/OR/NOT`` are searched for literally (or ignored, being
punctuation), and empty or absurd input gives an empty query, never an error.

Swedish: å, ä and ö are letters of their own ("får" is not "far"); neither engine is
told to strip diacritics. Text is NFC-normalized and lower-cased here, so matching
does not depend on the database's locale.
"""

from __future__ import annotations

import re

from samverka.store.indexing import normalize_text

#: A word: letters and digits (``\\w`` without the underscore, which both engines split on).
WORD = re.compile(r"[^\W_]+")
#: Inputs are cut to this many characters before anything else, so cost is bounded.
MAX_QUERY_CHARS = 1_000
MAX_WORDS = 12
MAX_WORD_CHARS = 64


def query_words(text: str) -> list[str]:
    """The distinct lower-cased words of ``text``, at most MAX_WORDS of MAX_WORD_CHARS each."""
    words: dict[str, None] = {}
    for match in WORD.finditer(normalize_text(text[:MAX_QUERY_CHARS])):
        word = normalize_text(match.group().lower())[:MAX_WORD_CHARS]
        words.setdefault(word, None)
        if len(words) == MAX_WORDS:
            break
    return list(words)


def fts5_query(words: list[str]) -> str:
    """SQLite FTS5 MATCH string: every word quoted and prefix-matched, all required."""
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def pg_tsquery(words: list[str]) -> str:
    """PostgreSQL ``to_tsquery`` input: every word a quoted prefix operand, all required.

    The ``swedish`` configuration then stems each operand (and drops stop words), and
    ``:*`` matches every indexed lexeme that starts with the stem.
    """
    return " & ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "':*" for w in words)
