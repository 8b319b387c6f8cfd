"""The full-text index of the current view, on SQLite FTS5 or PostgreSQL tsvector.

One logical table, ``records_fts``, keyed by ``records.rid``, holding a record's
:class:`~samverka.store.indexing.SearchDocument` in three weighted parts. Only live
(not retracted) records are indexed.

- SQLite: an FTS5 table with ``tokenize='unicode61 remove_diacritics 0'`` (the default
  folds å/ä/ö into a/o), ranked by bm25 with weights 10 / 4 / 1. FTS5 has no Swedish stemmer, so
  prefix matching carries inflections ("äldreomsorg" finds "äldreomsorgen").
- PostgreSQL: a ``tsvector`` column built with the ``swedish`` configuration (stemming
  and stop words, no unaccent) under weights A / B / C, with a GIN index.

The index is created by the store's migration ``store_0002`` (its DDL frozen there).
The store calls :func:`delete_documents` and :func:`insert_documents` inside its write
transaction, and :func:`search_statement` to query. Ranks are "higher is better" on
both engines (SQLite's bm25 is negated).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from samverka.store.db import driver_execute, driver_executemany, is_postgres
from samverka.store.indexing import SearchDocument, normalize_text
from samverka.store.search_text import fts5_query, pg_tsquery
from samverka.store.tables import records

TABLE = "records_fts"

#: How many matches a search ranks at most: the newest ones (by when the record was
#: first stored). Scoring costs several µs per match, so a word found in half of
#: 100,000 records would take a quarter of a second to rank in full; beyond this
#: many matches a query is too broad for the order among old matches to matter.
#: What stays proportional to the number of matches on SQLite: expanding a prefix
#: into its terms' merged doclist and bm25's count of matching documents (about
#: 10 ms for a word found in all of 100,000 records on a busy 2-core machine).
RANK_CANDIDATES = 500

#: How many of the newest matches ``Store.search`` ranks (at least as many as it is
#: asked for). Fewer than the web catalog's RANK_CANDIDATES, because both engines pay
#: per candidate: SQLite's bm25 ~18 µs each, and PostgreSQL walks the primary key
#: backwards until it has this many matches of a word in a few per cent of the records
#: (issue 15: search p95 < 10 ms over 100,000 records).
SEARCH_CANDIDATES = 100

#: SQLite: a word whose exact term is in at least COMMON_SHARE of the newest records of
#: an index of at least COMMON_MIN_DOCS is *common* (as "och" or "AI" are): FTS5 would
#: spend time proportional to all its occurrences expanding it as a prefix and counting
#: it for bm25 (tens of ms over 100,000 records), for a word that says nothing about
#: which record fits best. See :func:`common_words` for what search does with one.
COMMON_SHARE = 0.2
COMMON_PROBE = 64
COMMON_MIN_DOCS = 5_000

_PROBE = f"SELECT rowid FROM {TABLE} WHERE {TABLE} MATCH ? ORDER BY rowid DESC LIMIT ?"

#: bm25 weights of the title, keywords and body columns (SQLite).
BM25_WEIGHTS = ("10.0", "4.0", "1.0")

# Executed with the driver's executemany (see db.driver_execute for why).
_PG_INSERT = (
    f"INSERT INTO {TABLE} (rid, document) VALUES (%(rid)s, "
    "setweight(to_tsvector('swedish'::regconfig, %(title)s), 'A') || "
    "setweight(to_tsvector('swedish'::regconfig, %(keywords)s), 'B') || "
    "setweight(to_tsvector('swedish'::regconfig, %(body)s), 'C'))"
)

_SQLITE_INSERT = (
    f"INSERT INTO {TABLE} (rowid, title, keywords, body) VALUES (:rid, :title, :keywords, :body)"
)


def delete_documents(conn: Connection, rids: Sequence[int]) -> None:
    if not rids:
        return
    key = "rid" if is_postgres(conn) else "rowid"
    marks = ", ".join("?" * len(rids))
    driver_execute(conn, f"DELETE FROM {TABLE} WHERE {key} IN ({marks})", rids)


def insert_documents(conn: Connection, docs: Sequence[tuple[int, SearchDocument]]) -> None:
    if not docs:
        return
    if is_postgres(conn):
        # Lower-cased here so matching does not depend on the database's LC_CTYPE.
        rows = [
            {
                "rid": rid,
                "title": d.title.lower(),
                "keywords": d.keywords.lower(),
                "body": d.body.lower(),
            }
            for rid, d in docs
        ]
        driver_executemany(conn, _PG_INSERT, rows)
    else:
        rows = [
            {"rid": rid, "title": d.title, "keywords": d.keywords, "body": d.body}
            for rid, d in docs
        ]
        driver_executemany(conn, _SQLITE_INSERT, rows)


def search_statement(
    conn: Connection,
    words: list[str],
    *,
    limit: int,
    where: Sequence[sa.ColumnElement[bool]],
    candidates: int | None = None,
) -> sa.Select[*tuple[Any, ...]]:
    """The ranked query for ``words`` (from search_text.query_words, not empty).

    ``where`` holds extra conditions on the ``records`` table (visibility, kind, …).
    Only the newest ``candidates`` matches are ranked (see RANK_CANDIDATES).
    """
    postgres = is_postgres(conn)
    stmt = search_template(postgres, where, candidates=candidates)
    return stmt.params(q=query_text(postgres, words), limit=limit)


def query_text(postgres: bool, words: list[str]) -> str:
    """The engine's full-text query for ``words``: the value of search_template's ``q``."""
    return pg_tsquery(words) if postgres else fts5_query(words)


def exact_query(words: list[str]) -> str:
    """SQLite FTS5 MATCH string: every word as its exact term (not a prefix), all required."""
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def common_words(driver: Any, words: list[str], newest_rid: int) -> list[str]:
    """The words of ``words`` that are common in a SQLite index (see COMMON_SHARE),
    each found by reading at most COMMON_PROBE of its newest exact matches (FTS5 streams
    an exact term's doclist, newest first, without expanding or counting it).

    Search then ranks by the other words only (bm25 over the newest matches of those),
    and keeps the hits that also hold each common word as a prefix (checked in their
    indexed text, :func:`holding`); when every word is common, the newest records that
    hold each one as a whole word come first, unranked (score 0).
    """
    if newest_rid < COMMON_MIN_DOCS:
        return []
    found = []
    for word in words:
        rows = driver.execute(_PROBE, (exact_query([word]), COMMON_PROBE)).fetchall()
        if len(rows) == COMMON_PROBE and newest_rid - rows[-1][0] < COMMON_PROBE / COMMON_SHARE:
            found.append(word)
    return found


def holding(driver: Any, rids: Sequence[int], words: list[str]) -> set[int]:
    """Of the indexed records ``rids`` (SQLite), those whose text holds every word of
    ``words`` as a prefix of one of its words, as the MATCH of ``"word"*`` decides (a
    word is a run of letters and digits, lower-cased, NFC)."""
    if not rids:
        return set()
    patterns = [re.compile(r"(?<![^\W_])" + re.escape(w)) for w in words]
    marks = ", ".join("?" * len(rids))
    rows = driver.execute(
        f"SELECT rowid, title, keywords, body FROM {TABLE} WHERE rowid IN ({marks})", list(rids)
    ).fetchall()
    held = set()
    for rid, *texts in rows:
        text = normalize_text(" ".join(t or "" for t in texts).lower())
        if all(p.search(text) for p in patterns):
            held.add(int(rid))
    return held


def search_template(
    postgres: bool,
    where: Sequence[sa.ColumnElement[bool]],
    *,
    candidates: int | None = None,
    ranked: bool = True,
) -> sa.Select[*tuple[Any, ...]]:
    """The ranked query with the text (``q``, see query_text), ``limit`` and the number
    of ``candidates`` ranked as bound parameters, so one statement serves every query of
    the same shape: building a SQLAlchemy statement costs more than SQLite's whole
    search over a small index. Its columns: origin, record_id, kind, title, summary,
    visibility, score, rid. ``ranked=False`` (SQLite, see common_words): the newest
    matches first, score 0, no bm25."""
    default = RANK_CANDIDATES if candidates is None else candidates
    text = sa.bindparam("q", "", type_=sa.String)
    limit = sa.bindparam("limit", 20, type_=sa.Integer)
    cap = sa.bindparam("candidates", default, type_=sa.Integer)
    r = records.c
    columns = (r.origin, r.record_id, r.kind, r.title, r.summary, r.visibility)
    if postgres:
        fts = sa.table(TABLE, sa.column("rid", sa.BigInteger), sa.column("document"))
        query = sa.func.to_tsquery(sa.literal_column("'swedish'::regconfig"), text)
        newest = (
            sa.select(fts.c.rid, fts.c.document)
            .where(fts.c.document.op("@@")(query))
            .order_by(fts.c.rid.desc())
            .limit(cap)
            .subquery("c")
        )
        score = sa.func.ts_rank(newest.c.document, query)
        return (
            sa.select(*columns, score.label("score"), r.rid)
            .select_from(newest.join(records, r.rid == newest.c.rid))
            .where(*where)
            .order_by(score.desc(), r.rid.desc())
            .limit(limit)
        )
    fts = sa.table(TABLE, sa.column("rowid", sa.Integer))
    match = sa.literal_column(TABLE).op("MATCH")(text)
    bm25: sa.ColumnElement[Any] = sa.func.bm25(
        sa.literal_column(TABLE), *(sa.literal_column(w) for w in BM25_WEIGHTS)
    )
    if not ranked:
        bm25 = sa.literal(0.0)
    # FTS5 walks its doclists in rowid order, so with LIMIT it stops after the
    # newest `candidates` matches and scores only those.
    newest = (
        sa.select(fts.c.rowid.label("rid"), bm25.label("score"))
        .where(match)
        .order_by(fts.c.rowid.desc())
        .limit(cap)
        .subquery("c")
    )
    return (
        sa.select(*columns, (-newest.c.score).label("score"), r.rid)
        .select_from(newest.join(records, r.rid == newest.c.rid))
        .where(*where)
        .order_by(newest.c.score, r.rid.desc())
        .limit(limit)
    )
