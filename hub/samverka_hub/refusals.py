"""Every entry the hub refuses, counted by origin and reason (``samverka hub refusals``).

A refusal at the hub means a member's node sent (or served) something that fails
verification: a bug, a damaged database, a revoked key still in use, or an attack.
The council needs to see it, so each one is counted in the ``hub_refusals`` table
(one row per origin and reason, with the latest case's sequence, detail, source,
sender and time), in the same database every hub replica shares.

Recording is best effort: a refusal is already answered to the sender with its
precise status, and a database hiccup while counting it must not turn that answer
into a different error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import sqlalchemy as sa
from samverka.errors import EntryRefused, StoreError
from samverka.store.db import write_transaction
from samverka.store.store import Store
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from samverka_hub.tables import RefusalRow

log = logging.getLogger("samverka_hub.refusals")

#: The latest detail is kept up to this many characters (the table stays small).
MAX_DETAIL_CHARS = 500


@dataclass(frozen=True, slots=True)
class RefusalCount:
    """One row of ``samverka hub refusals``."""

    origin: str
    reason: str
    count: int
    last_sequence: int
    last_detail: str
    last_source: str
    last_peer: str
    first_at_ms: int
    last_at_ms: int


class RefusalLog:
    """The ``hub_refusals`` table of a hub's store (thread-safe, like the store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._table = RefusalRow.table()

    def record(
        self,
        refusal: EntryRefused,
        *,
        source: str,
        peer: str,
        origin: str = "",
        sequence: int = 0,
        at_ms: int | None = None,
    ) -> None:
        """Count ``refusal``. ``origin``/``sequence`` name the entry when the refusal
        itself does not (refused before its bytes were trusted). Never raises StoreError."""
        at = time.time_ns() // 1_000_000 if at_ms is None else at_ms
        values = {
            "origin": (refusal.origin or origin)[:8],
            "reason": refusal.reason.value,
            "count": 1,
            "last_sequence": refusal.sequence or sequence,
            "last_detail": refusal.detail[:MAX_DETAIL_CHARS],
            "last_source": source[:16],
            "last_peer": peer[:8],
            "first_at_ms": at,
            "last_at_ms": at,
        }
        dialect = pg_dialect if self.store.is_postgres else sqlite_dialect
        insert = dialect.insert(self._table).values(values)
        stmt = insert.on_conflict_do_update(
            index_elements=[self._table.c.origin, self._table.c.reason],
            set_={
                "count": self._table.c.count + 1,
                **{
                    k: insert.excluded[k]
                    for k in (
                        "last_sequence",
                        "last_detail",
                        "last_source",
                        "last_peer",
                        "last_at_ms",
                    )
                },
            },
        )
        try:
            # No advisory lock: a counter needs no ordering with the log.
            with write_transaction(self.store.engine, lock=False) as conn:
                conn.execute(stmt)
        except (sa.exc.SQLAlchemyError, StoreError):
            log.warning("could not count the refusal %s", refusal, exc_info=True)

    def counts(self) -> list[RefusalCount]:
        """Every (origin, reason) counted, most recent first."""
        t = self._table
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t).order_by(t.c.last_at_ms.desc(), t.c.origin, t.c.reason)
            ).all()
        # By mapping: a Row's own ``count`` is tuple.count.
        return [RefusalCount(**dict(r._mapping)) for r in rows]

    def total(self) -> int:
        t = self._table
        with self.store.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(t.c.count), 0))).scalar()
        return int(value or 0)
