"""The one retry policy (samverka.retry): jitter, cap, reset after success, prompt stop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from samverka.errors import StoreError
from samverka.retry import Backoff, RetryPolicy, TaskState, pause, supervise, task_observers


def test_waits_double_from_initial_up_to_the_cap_each_jittered_to_50_to_100_percent() -> None:
    policy = RetryPolicy(initial=0.5, maximum=10.0)
    for failures, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 10.0)]:
        waits = [policy.delay(failures) for _ in range(400)]
        assert all(nominal * 0.5 <= w <= nominal for w in waits), (failures, min(waits))
        # jittered: spread over the band, not one value
        assert max(waits) - min(waits) > nominal * 0.3, failures
    assert max(policy.delay(60) for _ in range(200)) <= 10.0  # capped, even far out


def test_backoff_starts_afresh_after_a_success() -> None:
    backoff = Backoff(RetryPolicy(initial=1.0, maximum=64.0))
    for _ in range(5):
        backoff.failed()
    assert backoff.failed() >= 16.0  # the sixth failure in a row: 32 s nominal
    backoff.reset()
    assert backoff.failed() <= 1.0


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(initial=5.0, maximum=1.0)
    with pytest.raises(ValueError):
        RetryPolicy(initial=0.0, maximum=1.0)


def test_pause_ends_when_stop_is_set() -> None:
    async def scenario() -> tuple[bool, float]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        started = time.monotonic()
        stopped = await pause(60.0, stop)
        return stopped, time.monotonic() - started

    stopped, took = asyncio.run(scenario())
    assert stopped and took < 1.0


def test_supervise_retries_marks_down_and_up_and_resets() -> None:
    """A body failing twice, then working, then failing once more: down, up, and the
    failure after the success waits ``initial`` again (the count starts afresh)."""
    state = TaskState("t")
    seen: list[tuple[bool, int]] = []
    state.observers.add(lambda s: seen.append((s.up, s.failures)))
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs in (1, 2, 4):
            raise StoreError(f"database away ({runs})")
        state.mark_up()
        if runs == 3:
            raise OSError("connection reset")

    stop = asyncio.Event()

    async def scenario() -> None:
        await supervise(state, body, policy=RetryPolicy(initial=0.01, maximum=0.02), stop=stop)

    asyncio.run(scenario())
    assert runs == 5
    assert seen == [(False, 1), (False, 2), (True, 0), (False, 1), (False, 2), (True, 0)]
    assert state.up and state.failures == 0 and state.last_error == ""


def test_supervise_stops_promptly_on_stop_without_waiting_out_the_backoff() -> None:
    state = TaskState("t")

    async def body() -> None:
        raise StoreError("down")

    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(
            supervise(state, body, policy=RetryPolicy(initial=60.0, maximum=600.0), stop=stop)
        )
        await asyncio.sleep(0.05)  # now in its 30-60 s wait
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 2)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.5
    assert not state.up and state.failures == 1


def test_supervise_ends_at_once_when_cancelled_during_a_wait() -> None:
    async def body() -> None:
        raise StoreError("down")

    async def scenario() -> float:
        task = asyncio.create_task(
            supervise(TaskState("t"), body, policy=RetryPolicy(initial=60.0, maximum=600.0))
        )
        await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.5


def test_supervise_logs_a_repeated_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    """The same error again is DEBUG, not another WARNING; each WARNING says what next."""
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs < 5:
            raise StoreError("database away")

    caplog.set_level(logging.DEBUG, logger="samverka.retry")
    asyncio.run(
        supervise(TaskState("listener"), body, policy=RetryPolicy(initial=0.001, maximum=0.002))
    )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "listener failed (1 in a row): database away; trying again in" in warnings[0].message
    assert not warnings[0].exc_info  # an expected failure: no traceback


def test_process_wide_observers_see_every_change() -> None:
    seen: list[str] = []

    def note(state: TaskState) -> None:
        seen.append(f"{state.name}:{state.up}")

    task_observers.add(note)
    try:
        state = TaskState("x")
        state.mark_down("e")
        state.mark_up()
        state.mark_up()  # no change: not told again
    finally:
        task_observers.remove(note)
    assert seen == ["x:False", "x:True"]
