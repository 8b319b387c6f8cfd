"""The harvest schedule shared by hub replicas: its pure decisions
(:mod:`samverka_hub.harvest_plan`), and its claims in the database
(:mod:`samverka_hub.harvest_schedule`) on SQLite and PostgreSQL, with two stores on
one database standing for two replicas. Real processes: test_replicas_harvest.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hubkit
import pytest
from samverka.store.store import Store
from samverka_hub.harvest_plan import MIN_IDLE_SECONDS, Slot, after_harvest, plan_round
from samverka_hub.harvest_schedule import HarvestSchedule

T = 1_700_000_000_000  # a "now" on the database's clock (ms)
A, B = "host-a:11:aaaa", "host-b:22:bbbb"  # two replicas' claim names
LEASE = 30_000


# -- the pure decisions ----------------------------------------------------------------------


def test_the_longest_overdue_members_are_claimed_up_to_the_free_slots() -> None:
    slots = [
        Slot("2029", T - 10),
        Slot("1472", T - 500),
        Slot("2026", T),  # due exactly now
        Slot("2080", T + 2_000),  # due in 2 s
    ]
    plan = plan_round(slots, now_ms=T, running=(), free=2, max_idle_seconds=5.0)
    assert plan.claim == ("1472", "2029")
    assert plan.wait_seconds == 2.0  # the first member not yet due
    plan = plan_round(slots, now_ms=T, running=(), free=8, max_idle_seconds=5.0)
    assert plan.claim == ("1472", "2029", "2026")
    assert plan_round(slots, now_ms=T, running=(), free=0, max_idle_seconds=5.0).claim == ()


def test_members_running_here_are_not_claimed_again_and_the_wait_is_bounded() -> None:
    slots = [Slot("2029", T - 10, claimed_by=A), Slot("1472", T + 60_000)]
    plan = plan_round(slots, now_ms=T, running={"2029"}, free=1, max_idle_seconds=5.0)
    assert plan.claim == ()
    assert plan.wait_seconds == 5.0  # nothing due for a minute: look again after max idle
    assert plan_round([], now_ms=T, running=(), free=1, max_idle_seconds=5.0).wait_seconds == 5.0


def test_a_member_claimed_elsewhere_is_waited_for_until_its_lease_ends() -> None:
    """Another replica's claim is a due time like any other: if that replica died,
    the member is due (and claimed here) when the lease runs out."""
    held = Slot("2029", T + 1_500, claimed_by=B)
    plan = plan_round([held], now_ms=T, running=(), free=1, max_idle_seconds=5.0)
    assert (plan.claim, plan.wait_seconds) == ((), 1.5)
    later = plan_round([held], now_ms=T + 1_500, running=(), free=1, max_idle_seconds=5.0)
    assert later.claim == ("2029",)
    soon = plan_round([Slot("2029", T + 1)], now_ms=T, running=(), free=1, max_idle_seconds=5.0)
    assert soon.wait_seconds == MIN_IDLE_SECONDS  # never a busy loop


def test_after_a_success_the_member_is_due_one_interval_later() -> None:
    step = after_harvest(True, 5, interval_seconds=300, max_backoff_seconds=3600, jitter=0.5)
    assert (step.failures, step.delay_ms) == (0, 300_000)  # no jitter, back-off reset


def test_failures_back_off_exponentially_jittered_and_capped() -> None:
    delays, failures = [], 0
    for _ in range(6):
        step = after_harvest(
            False, failures, interval_seconds=300, max_backoff_seconds=3600, jitter=1.0
        )
        failures = step.failures
        delays.append(step.delay_ms // 1000)
    assert failures == 6
    assert delays == [600, 1200, 2400, 3600, 3600, 3600]  # interval · 2ⁿ, at most the cap
    half = after_harvest(False, 0, interval_seconds=300, max_backoff_seconds=3600, jitter=0.5)
    assert half.delay_ms == 300_000
    # a member failing for months: the exponent never overflows
    ancient = after_harvest(False, 5_000, interval_seconds=1, max_backoff_seconds=60, jitter=1)
    assert (ancient.failures, ancient.delay_ms) == (5_001, 60_000)


# -- the claims in the database ---------------------------------------------------------------


@pytest.fixture
def two_replicas(tmp_path: Path, store_url: str) -> Iterator[tuple[HarvestSchedule, ...]]:
    """The schedule through two stores (two engines, as two replicas) on one database."""
    with hubkit.make_hub(tmp_path / "hub", store_url=store_url) as made:
        other = Store.open(made.hub.store.url, migrate=False)
        try:
            yield HarvestSchedule(made.hub.store), HarvestSchedule(other)
        finally:
            other.close()


def test_a_new_member_is_due_at_once_and_only_one_of_two_claimers_wins(
    two_replicas: tuple[HarvestSchedule, HarvestSchedule],
) -> None:
    a, b = two_replicas
    view = a.read(["2029", "1472"], now_ms=T)
    assert sorted(view.slots, key=lambda s: s.kommunkod) == [Slot("1472", T), Slot("2029", T)]
    assert b.read(["2029"], now_ms=T + 5).slots == [Slot("2029", T)]  # one row, shared

    won = a.claim("2029", A, lease_ms=LEASE, now_ms=T)
    assert won == Slot("2029", T + LEASE, 0, A)
    assert b.claim("2029", B, lease_ms=LEASE, now_ms=T + 1) is None  # held: not due
    assert b.read(["2029"], now_ms=T + 1).slots == [Slot("2029", T + LEASE, 0, A)]
    assert b.claim("1472", B, lease_ms=LEASE, now_ms=T + 1) is not None  # another member

    # finished: due one interval later, the claim released, and nobody can take it early
    assert a.finish("2029", A, delay_ms=300_000, failures=0, now_ms=T + 800)
    (row,) = [r for r in a.rows() if r["kommunkod"] == "2029"]
    assert (row["next_due_ms"], row["claimed_by"], row["last_finished_ms"]) == (
        T + 300_800,
        "",
        T + 800,
    )
    assert b.claim("2029", B, lease_ms=LEASE, now_ms=T + 300_799) is None
    assert b.claim("2029", B, lease_ms=LEASE, now_ms=T + 300_800) is not None


def test_racing_claimers_take_each_member_exactly_once(
    two_replicas: tuple[HarvestSchedule, HarvestSchedule],
) -> None:
    """Six threads on two engines claim the same 20 due members at the same moment."""
    a, b = two_replicas
    members = [f"{2000 + i}" for i in range(20)]
    a.read(members, now_ms=T)
    won: dict[str, list[str]] = {m: [] for m in members}
    barrier = threading.Barrier(6)

    def claimer(schedule: HarvestSchedule, name: str) -> None:
        barrier.wait()
        for m in members:
            if schedule.claim(m, name, lease_ms=LEASE, now_ms=T + 1) is not None:
                won[m].append(name)

    threads = [
        threading.Thread(target=claimer, args=(s, f"replica-{i}")) for i, s in enumerate([a, b] * 3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(names) == 1 for names in won.values()), won
    assert {r["claimed_by"] for r in a.rows()} == {names[0] for names in won.values()}


def test_an_expired_lease_is_reclaimed_and_the_dead_claim_changes_nothing(
    two_replicas: tuple[HarvestSchedule, HarvestSchedule],
) -> None:
    """Replica A claims and stops renewing (it died); after the lease B takes over,
    and A's late renewal or finish (had it only stalled) does not undo B's claim."""
    a, b = two_replicas
    a.read(["2029"], now_ms=T)
    assert a.claim("2029", A, lease_ms=LEASE, now_ms=T) is not None
    assert a.renew(["2029"], A, lease_ms=LEASE, now_ms=T + 10_000) == 1  # ends at T+40 s
    assert b.claim("2029", B, lease_ms=LEASE, now_ms=T + 39_999) is None
    taken = b.claim("2029", B, lease_ms=LEASE, now_ms=T + 40_000)
    assert taken is not None and taken.claimed_by == B

    assert a.renew(["2029"], A, lease_ms=LEASE, now_ms=T + 40_001) == 0
    assert not a.finish("2029", A, delay_ms=1, failures=3, error="x", now_ms=T + 40_002)
    assert a.release(["2029"], A, now_ms=T + 40_003) == 0
    (row,) = a.rows()
    assert (row["claimed_by"], row["next_due_ms"], row["failures"]) == (B, T + 70_000, 0)

    # B fails: the back-off it writes is what the next claimer reads
    assert b.finish("2029", B, delay_ms=5_000, failures=1, error="unreachable", now_ms=T + 41_000)
    again = a.claim("2029", A, lease_ms=LEASE, now_ms=T + 46_000)
    assert again is not None and again.failures == 1
    assert a.rows()[0]["last_error"] == "unreachable"


def test_wake_makes_idle_members_due_but_leaves_claims_alone(
    two_replicas: tuple[HarvestSchedule, HarvestSchedule],
) -> None:
    a, b = two_replicas
    a.read(["2029", "1472", "2026"], now_ms=T)
    assert a.claim("2029", A, lease_ms=LEASE, now_ms=T) is not None
    assert a.claim("1472", A, lease_ms=LEASE, now_ms=T) is not None
    assert a.finish("1472", A, delay_ms=300_000, failures=2, now_ms=T)
    assert b.make_due(["2029", "1472", "2026"], now_ms=T + 1) == 1  # 2026 was due already
    rows = {r["kommunkod"]: r for r in a.rows()}
    assert rows["1472"]["next_due_ms"] == T + 1 and rows["1472"]["failures"] == 2
    assert rows["2029"]["claimed_by"] == A and rows["2029"]["next_due_ms"] == T + LEASE

    # a replica stopping mid-harvest hands its claim back, due now
    assert a.release(["2029"], A, now_ms=T + 2) == 1
    assert b.claim("2029", B, lease_ms=LEASE, now_ms=T + 2) is not None


def test_the_lease_runs_on_the_databases_clock(
    two_replicas: tuple[HarvestSchedule, HarvestSchedule],
) -> None:
    """Without an explicit time: PostgreSQL's clock (SQLite: this host's)."""
    a, b = two_replicas
    view = a.read(["2029"])
    assert abs(view.now_ms - time.time_ns() // 1_000_000) < 5_000
    assert a.claim("2029", A, lease_ms=300) is not None
    assert b.claim("2029", B, lease_ms=300) is None
    time.sleep(0.35)
    assert b.claim("2029", B, lease_ms=300) is not None
