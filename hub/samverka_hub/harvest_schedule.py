"""The harvest schedule in the database: one row per member, shared by every hub
replica on that database (table ``hub_harvest_schedule``, migration hub/3).

A row holds the member's next due time and its back-off (failures in a row). A
replica *claims* a due member with one compare-and-set::

    UPDATE hub_harvest_schedule SET next_due_ms = now + lease, claimed_by = :me
    WHERE kommunkod = :m AND next_due_ms <= now

and holds it iff that changed the row: two replicas racing for one member cannot
both win (SQLite: one writer at a time; PostgreSQL: the second UPDATE waits for the
first's row lock, then finds the row no longer due). The claim is a lease: the
harvest renews it while it runs and :meth:`HarvestSchedule.finish` writes the next
due time; a replica that dies mid-harvest leaves a row that falls due when the lease
runs out, and another replica takes it.

"now" is the database's clock on PostgreSQL (replicas on several hosts compare one
clock) and this host's on SQLite (the file is on this host). Every method accepts an
explicit ``now_ms`` instead, for tests. Which member to claim and when it is due
next are decided in :mod:`samverka_hub.harvest_plan`; this module only reads and
writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from samverka.errors import StoreError
from samverka.store.db import write_transaction
from samverka.store.store import Store
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from samverka_hub.harvest_plan import Slot
from samverka_hub.tables import HarvestScheduleRow

#: The last error is kept up to this many characters.
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """The rows of the members asked for, and the database's time when they were read."""

    now_ms: int
    slots: list[Slot]


class HarvestSchedule:
    """The ``hub_harvest_schedule`` table of a hub's store (thread-safe, like the store).

    Writes skip the log's advisory lock (``lock=False``): the schedule needs no
    ordering with appends, and a claim must not wait behind a large ingest.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._t = HarvestScheduleRow.table()

    def _now(self, now_ms: int | None) -> sa.ColumnElement[int]:
        if now_ms is not None:
            return sa.literal(now_ms, sa.BigInteger)
        if self.store.is_postgres:
            return sa.cast(
                sa.func.floor(sa.extract("epoch", sa.func.clock_timestamp()) * 1000),
                sa.BigInteger,
            )
        return sa.literal(time.time_ns() // 1_000_000, sa.BigInteger)

    @contextmanager
    def _write(self, action: str) -> Iterator[sa.Connection]:
        with self._errors(action), write_transaction(self.store.engine, lock=False) as conn:
            yield conn

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"cannot {action} in the harvest schedule: {getattr(exc, 'orig', exc)}",
                hint="check that the hub's database is reachable and writable",
            ) from exc

    def read(self, members: Sequence[str], *, now_ms: int | None = None) -> ScheduleView:
        """The rows of ``members``; a member without one gets a row, due now."""
        t = self._t
        with self._errors("read"), self.store.engine.connect() as conn:
            now = int(conn.execute(sa.select(self._now(now_ms))).scalar_one())
            rows = conn.execute(
                sa.select(t.c.kommunkod, t.c.next_due_ms, t.c.failures, t.c.claimed_by).where(
                    t.c.kommunkod.in_(members)
                )
            ).all()
        slots = [Slot(r.kommunkod, r.next_due_ms, r.failures, r.claimed_by) for r in rows]
        missing = sorted(set(members) - {s.kommunkod for s in slots})
        if missing:
            self._add(missing, now)
            slots += [Slot(code, now) for code in missing]
        return ScheduleView(now, slots)

    def _add(self, members: Sequence[str], now_ms: int) -> None:
        dialect = pg_dialect if self.store.is_postgres else sqlite_dialect
        stmt = (
            dialect.insert(self._t)
            .values(
                [
                    {
                        "kommunkod": code,
                        "next_due_ms": now_ms,
                        "failures": 0,
                        "claimed_by": "",
                        "last_error": "",
                    }
                    for code in members
                ]
            )
            .on_conflict_do_nothing(index_elements=[self._t.c.kommunkod])
        )
        # Another replica adding the same member at the same moment is fine: one row.
        with self._write("add members") as conn:
            conn.execute(stmt)

    def claim(
        self, member: str, replica: str, *, lease_ms: int, now_ms: int | None = None
    ) -> Slot | None:
        """Claim ``member`` for ``lease_ms`` if it is due; None if it is not (another
        replica claimed it first, or it is not due yet). The slot returned has the
        member's back-off as it was, and the claim's end as its due time."""
        t = self._t
        now = self._now(now_ms)
        stmt = (
            sa.update(t)
            .where(t.c.kommunkod == member, t.c.next_due_ms <= now)
            .values(next_due_ms=now + lease_ms, claimed_by=replica)
            .returning(t.c.next_due_ms, t.c.failures)
        )
        with self._write("claim a member") as conn:
            row = conn.execute(stmt).first()
        return None if row is None else Slot(member, row.next_due_ms, row.failures, replica)

    def renew(
        self,
        members: Sequence[str],
        replica: str,
        *,
        lease_ms: int,
        now_ms: int | None = None,
    ) -> int:
        """Extend ``replica``'s claims on ``members`` by ``lease_ms`` from now; how many
        it still held (a claim that ran out and was taken over is not renewed)."""
        if not members:
            return 0
        t = self._t
        stmt = (
            sa.update(t)
            .where(t.c.kommunkod.in_(members), t.c.claimed_by == replica)
            .values(next_due_ms=self._now(now_ms) + lease_ms)
        )
        with self._write("renew claims") as conn:
            return int(conn.execute(stmt).rowcount)

    def finish(
        self,
        member: str,
        replica: str,
        *,
        delay_ms: int,
        failures: int,
        error: str = "",
        now_ms: int | None = None,
    ) -> bool:
        """Record ``replica``'s harvest of ``member``: due again ``delay_ms`` from now,
        with ``failures`` in a row, claim released. False if the claim was no longer
        ``replica``'s (it ran out and another replica took the member over): that
        replica's harvest then decides the next due time."""
        t = self._t
        now = self._now(now_ms)
        stmt = (
            sa.update(t)
            .where(t.c.kommunkod == member, t.c.claimed_by == replica)
            .values(
                next_due_ms=now + delay_ms,
                failures=failures,
                claimed_by="",
                last_finished_ms=now,
                last_error=error[:MAX_ERROR_CHARS],
            )
        )
        with self._write("record a harvest") as conn:
            return bool(conn.execute(stmt).rowcount == 1)

    def release(self, members: Sequence[str], replica: str, *, now_ms: int | None = None) -> int:
        """Give up ``replica``'s claims on ``members`` (a replica stopping mid-harvest):
        they are due now, for another replica, instead of when the lease runs out."""
        if not members:
            return 0
        t = self._t
        stmt = (
            sa.update(t)
            .where(t.c.kommunkod.in_(members), t.c.claimed_by == replica)
            .values(next_due_ms=self._now(now_ms), claimed_by="")
        )
        with self._write("release claims") as conn:
            return int(conn.execute(stmt).rowcount)

    def make_due(self, members: Sequence[str], *, now_ms: int | None = None) -> int:
        """Make ``members`` due now (``Harvester.wake``), keeping their back-off count.
        A member being harvested keeps its claim: one harvest of it at a time."""
        if not members:
            return 0
        t = self._t
        now = self._now(now_ms)
        stmt = (
            sa.update(t)
            .where(t.c.kommunkod.in_(members), t.c.claimed_by == "", t.c.next_due_ms > now)
            .values(next_due_ms=now)
        )
        with self._write("make members due") as conn:
            return int(conn.execute(stmt).rowcount)

    def rows(self) -> list[dict[str, Any]]:
        """Every row, by kommunkod (for operators and tests)."""
        t = self._t
        with self._errors("read"), self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.kommunkod))]
