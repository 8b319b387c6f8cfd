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

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from samverka.store.db import driver_execute, driver_executemany, is_postgres
from samverka.store.indexing import SearchDocument
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


def search_template(
    postgres: bool,
    where: Sequence[sa.ColumnElement[bool]],
    *,
    candidates: int | None = None,
) -> sa.Select[*tuple[Any, ...]]:
    """The ranked query with the text (``q``, see query_text) and ``limit`` as bound
    parameters, so one statement serves every query of the same shape: building a
    SQLAlchemy statement costs more than SQLite's whole search over a small index."""
    candidates = RANK_CANDIDATES if candidates is None else candidates
    text = sa.bindparam("q", "", type_=sa.String)
    limit = sa.bindparam("limit", 20, type_=sa.Integer)
    r = records.c
    columns = (r.origin, r.record_id, r.kind, r.title, r.summary, r.visibility)
    if postgres:
        fts = sa.table(TABLE, sa.column("rid", sa.BigInteger), sa.column("document"))
        query = sa.func.to_tsquery(sa.literal_column("'swedish'::regconfig"), text)
        newest = (
            sa.select(fts.c.rid, fts.c.document)
            .where(fts.c.document.op("@@")(query))
            .order_by(fts.c.rid.desc())
            .limit(candidates)
            .subquery("c")
        )
        score = sa.func.ts_rank(newest.c.document, query)
        return (
            sa.select(*columns, score.label("score"))
            .select_from(newest.join(records, r.rid == newest.c.rid))
            .where(*where)
            .order_by(score.desc(), r.rid.desc())
            .limit(limit)
        )
    fts = sa.table(TABLE, sa.column("rowid", sa.Integer))
    match = sa.literal_column(TABLE).op("MATCH")(text)
    bm25 = sa.func.bm25(sa.literal_column(TABLE), *(sa.literal_column(w) for w in BM25_WEIGHTS))
    # FTS5 walks its doclists in rowid order, so with LIMIT it stops after the
    # newest `candidates` matches and scores only those.
    newest = (
        sa.select(fts.c.rowid.label("rid"), bm25.label("score"))
        .where(match)
        .order_by(fts.c.rowid.desc())
        .limit(candidates)
        .subquery("c")
    )
    return (
        sa.select(*columns, (-newest.c.score).label("score"))
        .select_from(newest.join(records, r.rid == newest.c.rid))
        .where(*where)
        .order_by(newest.c.score, r.rid.desc())
        .limit(limit)
    )
