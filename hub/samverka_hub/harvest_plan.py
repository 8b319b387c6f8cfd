"""The harvest schedule's decisions, without I/O: which members to claim now, how long
to wait before looking again, and when a harvested member is due next.

The schedule itself lives in the database every hub replica shares
(:mod:`samverka_hub.harvest_schedule`); the harvester
(:class:`samverka_hub.harvest.Harvester`) reads it, asks :func:`plan_round` what to
do, claims and harvests, then records :func:`after_harvest`'s answer. Times are
milliseconds on the database's clock, so replicas on hosts whose clocks differ agree
on what is due.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

#: The shortest wait between two looks at the schedule (seconds): never a busy loop.
MIN_IDLE_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Slot:
    """One member's row of the shared schedule, as read."""

    kommunkod: str
    #: When it is due (ms on the database's clock); while claimed, when the claim ends.
    next_due_ms: int
    #: Failed harvests in a row.
    failures: int = 0
    #: The replica holding the claim, "" when none does.
    claimed_by: str = ""

    def due(self, now_ms: int) -> bool:
        return self.next_due_ms <= now_ms


@dataclass(frozen=True, slots=True)
class Round:
    """What one look at the schedule decided."""

    #: Due members to claim, longest overdue first (at most the free harvest slots).
    claim: tuple[str, ...]
    #: How long to wait before looking again, unless woken.
    wait_seconds: float


def plan_round(
    slots: Iterable[Slot],
    *,
    now_ms: int,
    running: Collection[str],
    free: int,
    max_idle_seconds: float,
) -> Round:
    """Decide which due members to claim and how long to wait for the next one.

    ``running`` are the members this replica is harvesting (their claim is its own);
    ``free`` is how many more it may start. A member claimed by another replica has
    its claim's end as its due time, so it is waited for like any other: if that
    replica dies, the member is due when the claim runs out.
    """
    waiting = [s for s in slots if s.kommunkod not in running]
    due = sorted((s for s in waiting if s.due(now_ms)), key=lambda s: (s.next_due_ms, s.kommunkod))
    claim = tuple(s.kommunkod for s in due[: max(free, 0)])
    later = [(s.next_due_ms - now_ms) / 1000 for s in waiting if not s.due(now_ms)]
    wait = min([max_idle_seconds, *later])
    return Round(claim, max(wait, MIN_IDLE_SECONDS))


@dataclass(frozen=True, slots=True)
class NextHarvest:
    """When a member is due again after a harvest, and its failures in a row."""

    failures: int
    delay_ms: int


def after_harvest(
    ok: bool,
    failures: int,
    *,
    interval_seconds: float,
    max_backoff_seconds: float,
    jitter: float,
) -> NextHarvest:
    """The next harvest: ``interval`` after a success; after the n-th failure in a row
    ``interval`` · 2ⁿ, at most ``max_backoff``, times ``jitter`` (drawn from 0.5-1.0 by
    the caller, so an outage does not make every member come due at once).

    ``failures`` is the count before this harvest.
    """
    if ok:
        return NextHarvest(0, round(interval_seconds * 1000))
    failures += 1
    # The exponent is capped: after ~1,000 failures (weeks at the longest back-off)
    # interval · 2ⁿ would no longer fit in a float and raise OverflowError.
    backoff = min(interval_seconds * 2 ** min(failures, 64), max_backoff_seconds)
    return NextHarvest(failures, round(backoff * jitter * 1000))
