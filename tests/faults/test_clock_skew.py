"""A node whose clock is off: within the documented tolerance its entries are taken,
beyond it they are refused with ``clock_skew`` and the hub's store is unchanged.

The tolerance is ``[limits] max_clock_skew_seconds`` (default 600 s) and only bounds
how far *ahead* of the receiver's clock an entry may be dated: a node whose clock is
behind is fine, as long as its own timestamps never go backwards (an entry dated
before its feed's newest is refused too). The pure rules:
tests/core/test_verify.py::test_clock_skew_tolerance,
::test_clock_skew_tolerance_is_configurable and
::test_timestamps_may_not_go_backwards_within_a_feed; ``samverka doctor`` compares the
node's clock with the hub's:
tests/ops/test_doctor.py::test_clock_skew_is_judged_against_the_tolerance.
"""

from __future__ import annotations

from collections.abc import Iterator

import factories
import grpc
import pytest
from arena import FALUN, LEKSAND, Arena, build_hub, now_ms, serve_hub
from soakresults import record

MINUTE = 60_000


@pytest.fixture(scope="module")
def clock_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    tmp = tmp_path_factory.mktemp("clock")
    members = build_hub(tmp / "hub", [LEKSAND, FALUN])
    hub = serve_hub(tmp / "hub", tmp / "logs")
    try:
        yield Arena(hub, members)
    finally:
        hub.stop()


@pytest.mark.parametrize(
    ("offset_minutes", "taken"),
    [(-2 * 24 * 60, True), (-1, True), (0, True), (9, True), (11, False), (60 * 24, False)],
)
def test_clock_skew_within_the_tolerance_is_taken_and_beyond_refused(
    clock_hub: Arena, offset_minutes: int, taken: bool
) -> None:
    # Clocks behind on Leksand's feed, the others on Falun's: each feed's timestamps
    # then only move forward from case to case (the parameters run in order).
    writer = clock_hub.writer(LEKSAND if offset_minutes < 0 else FALUN)
    dated = now_ms() + offset_minutes * MINUTE
    entry = writer.build(
        factories.make_record("use_case", record_id=f"skew-{offset_minutes}", origin=writer.origin),
        timestamp_ms=dated,
    )
    if taken:
        before = clock_hub.state()
        outcome = clock_hub.publish(writer.origin, entry)
        name = f"clock {offset_minutes:+d} min: entry taken"
        record("fault", name, survived=outcome.accepted == 1, entries=1, lost=1 - outcome.accepted)
        assert (outcome.ok, outcome.accepted) == (True, 1), outcome
        assert clock_hub.state().head(writer.origin) == before.head(writer.origin) + 1
    else:
        clock_hub.attack(
            f"clock {offset_minutes:+d} min ahead", writer.origin, [entry],
            code=grpc.StatusCode.INVALID_ARGUMENT, reason="clock_skew",
            origin=writer.origin, sequence=writer.sequence + 1,
        )  # fmt: skip
