"""The one retry policy, and supervised background tasks that live by it.

Every loop that reconnects — the log listener (PostgreSQL LISTEN), following a peer or
the hub, the push agent, the hub's harvester and directory watch — waits between tries
as :class:`RetryPolicy` says: ``initial`` · 2ⁿ⁻¹ seconds after the n-th failure in a row,
at most ``maximum``, each wait jittered to 50-100 % (so many nodes do not return in
step), back to ``initial`` once the task works again. The waits are tenacity's
(``wait_exponential`` + ``wait_random_exponential``); none is written by hand.

:func:`supervise` runs a background task's body under that policy: an exception is
logged once with what happens next, the task's :class:`TaskState` turns down (the
process reports it in ``/metrics`` and the gRPC health service), the body runs again
after the wait, and a stop event or cancellation ends the wait at once. Nothing a body
raises escapes (no "Task exception was never retrieved"), only cancellation.

A base module like :mod:`samverka.errors`: every layer may use it; it imports only the
other base modules (errors, observers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import tenacity

from samverka.errors import SamverkaError
from samverka.observers import Observers

log = logging.getLogger("samverka.retry")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait after the n-th failure in a row: 50-100 % of
    min(``initial`` · 2ⁿ⁻¹, ``maximum``) seconds."""

    initial: float = 0.5
    maximum: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(f"retry policy needs 0 < initial <= maximum: {self}")

    @property
    def wait(self) -> tenacity.wait.wait_base:
        """The policy as a tenacity wait strategy (for ``tenacity.AsyncRetrying``)."""
        half, cap = self.initial / 2, self.maximum / 2
        # half of the capped exponential, plus a uniform draw from 0 to the other half
        return tenacity.wait_exponential(
            multiplier=half, max=cap
        ) + tenacity.wait_random_exponential(multiplier=half, max=cap)

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` (≥ 1) failures in a row."""
        state = tenacity.RetryCallState(_RETRYING, None, (), {})
        state.attempt_number = max(failures, 1)
        return float(self.wait(state))


_RETRYING = tenacity.AsyncRetrying()


class Backoff:
    """A loop's place in :class:`RetryPolicy`: failures in a row, reset on success."""

    __slots__ = ("failures", "policy")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0

    def failed(self) -> float:
        """One more failure: the seconds to wait before the next try."""
        self.failures += 1
        return self.policy.delay(self.failures)

    def reset(self) -> None:
        """It worked: the next failure waits ``initial`` again."""
        self.failures = 0


async def pause(seconds: float, stop: asyncio.Event | None = None) -> bool:
    """Wait ``seconds``, or until ``stop`` is set; True when stopped. Cancellation
    ends the wait at once, like any await."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    if not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()
    return stop.is_set()


#: Told of every supervised task's state change, process-wide (ops.metrics adds its
#: samverka_task_up gauge here when the process serves /metrics).
task_observers: Observers[[TaskState]] = Observers()


@dataclass(eq=False)
class TaskState:
    """Whether a background task does its job, for /metrics and the health service.

    ``critical``: while it is down the process as a whole cannot do its job (the
    server's overall health turns NOT_SERVING), not just this task.
    """

    name: str
    critical: bool = False
    up: bool = False
    #: Failures in a row (0 once the task works again).
    failures: int = 0
    last_error: str = ""
    #: Told of this task's changes (a server's health service); see also task_observers.
    observers: Observers[[TaskState]] = field(default_factory=Observers)

    def mark_up(self) -> None:
        """The task does its job now (its back-off starts afresh)."""
        if self.failures:
            log.info(
                "%s works again after %d failure%s",
                self.name,
                self.failures,
                "" if self.failures == 1 else "s",
                extra={"event": "task_recovered", "task": self.name},
            )
        self.failures = 0
        self.last_error = ""
        self._set(True)

    def mark_down(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        self._set(False)

    def _set(self, up: bool) -> None:
        changed = up != self.up
        self.up = up
        if changed or not up:
            self.observers(self)
            task_observers(self)


async def supervise(
    state: TaskState,
    body: Callable[[], Awaitable[None]],
    *,
    policy: RetryPolicy,
    stop: asyncio.Event | None = None,
    logger: logging.Logger = log,
    expected: tuple[type[Exception], ...] = (),
    alarming: tuple[type[Exception], ...] = (),
) -> None:
    """Run ``body`` until it returns or ``stop`` is set, again after each failure.

    ``body`` calls ``state.mark_up()`` once it does its job (that resets the back-off);
    an exception marks the task down and is logged once, with the wait and the error
    (the first of a run of failures, or a new error, at WARNING; the same error again
    at DEBUG), with a traceback only when it is neither a SamverkaError, an OSError nor
    one of ``expected``; one of ``alarming`` (e.g. a refused entry: no retry will mend
    it without someone's action) always at ERROR. A SamverkaError's hint is logged
    with it. Cancellation (and only it) propagates.
    """
    last = ""
    while stop is None or not stop.is_set():
        try:
            await body()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            state.mark_down(error)
            delay = policy.delay(state.failures)
            level = logging.WARNING if error != last or state.failures == 1 else logging.DEBUG
            if isinstance(exc, alarming):
                level = logging.ERROR
            hint = getattr(exc, "hint", "")
            logger.log(
                level,
                "%s failed (%d in a row): %s%s; trying again in %.1f s",
                state.name,
                state.failures,
                error,
                f" (hint: {hint})" if hint else "",
                delay,
                exc_info=not isinstance(exc, (*_EXPECTED, *expected)) and level == logging.WARNING,
                extra={
                    "event": "task_failed",
                    "task": state.name,
                    "failures": state.failures,
                    "retry_in_seconds": round(delay, 3),
                },
            )
            last = error
            if await pause(delay, stop):
                return


#: Failures that need no traceback in the log: our own errors and lost connections.
_EXPECTED = (SamverkaError, OSError, TimeoutError)


def spawn(coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
    """A background task whose unexpected end is logged at once (never only at exit
    as "Task exception was never retrieved")."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_report_end)
    return task


def _report_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error(
            "background task %s ended: %s",
            task.get_name(),
            exc,
            exc_info=exc,
            extra={"event": "task_ended", "task": task.get_name()},
        )


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait for it to end (our own cancellation still propagates)."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait([task])
