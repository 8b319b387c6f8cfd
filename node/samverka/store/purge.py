"""The physical purge after an erasure, off the ingest path (issue 13, point 3).

An erasure takes the content out of the live rows in the transaction that stores it
(:meth:`Store._apply_erasures`). What is left are the old bytes in the database's free
pages, WAL and TOAST; :meth:`Store.purge_erased` rewrites them (SQLite: FTS optimize,
VACUUM, WAL truncation; PostgreSQL: VACUUM FULL). That takes an exclusive lock for as
long as the rewrite runs, so it never runs inside the push or sync that brought the
erasure: the append only *requests* a purge (:meth:`Purger.request`) and

- a serving process (``samverka serve``, ``samverka hub serve``) runs it in the
  background, in the supervised task ``store-purge`` (:class:`PurgeTask`): it waits
  :data:`DEBOUNCE_S` after a request so a burst of erasures (a sync that brings
  several) costs one purge, asks for each lock for at most ``lock_timeout_s``
  (PostgreSQL ``SET lock_timeout``, SQLite's busy timeout) and, when a lock is held
  longer (a long transaction), gives up and tries again later under the retry
  policy instead of queueing behind it and blocking every writer behind itself;
- a one-shot command (``samverka usecase erase``, ``sync``, ``bundle import``,
  ``hub erase``) purges when it closes its store (:meth:`Store.close`), before it exits.

Durable: the ``store_meta`` row ``purged_erasures`` is how many rows of ``erased`` the
last purge covered; more rows than that is a purge pending
(:meth:`Store.purge_pending`), so a process that died before its purge is purged by the
next ``serve`` at its start (and by any serving replica of the same database within
:data:`RECHECK_S`). :meth:`Purger.wait_purged` / :meth:`Purger.purged` are the
"purged up to" signal tests and callers wait on instead of sleeping.

Reported (samverka.ops.metrics): :data:`erasure_observers` (an erasure applied, ``own``
or ``council``) and :data:`purge_observers` (a purge ``done`` or ``failed``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from samverka.errors import StoreError
from samverka.observers import Observers
from samverka.retry import RetryPolicy, TaskState, cancel, pause, spawn, supervise

log = logging.getLogger("samverka.store.purge")

#: A serving process waits this long after an erasure before purging (more erasures
#: meanwhile join the same purge).
DEBOUNCE_S = 1.0
#: The longest a purge waits for one table's lock before it gives up and retries later.
LOCK_TIMEOUT_S = 2.0
#: A serving process also looks at the durable mark this often (a purge left pending by
#: another process on the same database: a hub replica that died before its purge).
RECHECK_S = 600.0
#: A purge that could not get its locks (or failed) is tried again on this policy.
RETRY = RetryPolicy(initial=5.0, maximum=300.0)

#: Told of each erasure entry applied: "own" (a kommun's of its own feed) or "council".
erasure_observers: Observers[[str]] = Observers()
#: Told of each purge's outcome: "done" or "failed".
purge_observers: Observers[[str]] = Observers()


class Store(Protocol):
    """What the purge needs of :class:`samverka.store.store.Store` (a protocol: the
    store module imports this one)."""

    @property
    def purger(self) -> Purger: ...

    def purge_pending(self) -> bool: ...

    def purge_erased(self, *, lock_timeout_s: float) -> None: ...


class Purger:
    """One store's purge requests and how far they are purged (thread-safe).

    Generations: each :meth:`request` (an erasure committed by this process) is one;
    ``purged_upto`` is the newest generation a finished purge covered.
    """

    def __init__(self, store: Store, *, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.store = store
        self.lock_timeout_s = lock_timeout_s
        self.requested = 0
        self.purged_upto = 0
        self._cond = threading.Condition()
        self._running = threading.Lock()
        #: Set while a PurgeTask purges in the background: called on each request.
        self._wake: Callable[[], object] | None = None

    @property
    def background(self) -> bool:
        return self._wake is not None

    @property
    def outstanding(self) -> bool:
        """Whether this process requested a purge that has not been done yet."""
        with self._cond:
            return self.requested > self.purged_upto

    def attach(self, wake: Callable[[], object] | None) -> None:
        """Purge in the background: ``wake`` is called on each request (None: detach)."""
        self._wake = wake

    def request(self) -> int:
        """An erasure is committed: purge soon. Returns the generation to wait for."""
        with self._cond:
            self.requested += 1
            generation = self.requested
        wake = self._wake
        if wake is not None:
            wake()
        return generation

    def purge_now(self) -> None:
        """Purge once, covering every request made before it starts. Raises
        StoreError when a lock was not had within ``lock_timeout_s`` (nothing lost:
        the purge stays pending)."""
        with self._running:
            with self._cond:
                target = self.requested
            started = time.monotonic()
            try:
                self.store.purge_erased(lock_timeout_s=self.lock_timeout_s)
            except StoreError:
                purge_observers("failed")
                raise
            purge_observers("done")
            log.info(
                "erased content purged from the database files in %.2f s",
                time.monotonic() - started,
                extra={"event": "erasure_purged"},
            )
            with self._cond:
                self.purged_upto = max(self.purged_upto, target)
                self._cond.notify_all()

    def finish(self) -> None:
        """At close, without a background task: purge what this process requested
        (a failure is logged; the durable mark keeps it pending for the next serve)."""
        if self.background or not self.outstanding:
            return
        try:
            self.purge_now()
        except StoreError as exc:
            log.warning(
                "erased content not yet purged from the files: %s",
                exc,
                extra={"event": "erasure_purge_failed"},
            )

    def wait_purged(self, generation: int | None = None, timeout: float = 30.0) -> bool:
        """Wait until a purge covered ``generation`` (default: every request so far);
        False after ``timeout`` seconds."""
        with self._cond:
            target = self.requested if generation is None else generation
            return self._cond.wait_for(lambda: self.purged_upto >= target, timeout)

    async def purged(self, generation: int | None = None, timeout: float = 30.0) -> bool:
        """:meth:`wait_purged` for a coroutine (waits in a thread)."""
        return await asyncio.to_thread(self.wait_purged, generation, timeout)


class PurgeTask:
    """A serving process's background purge: a server resource (start/close) with a
    supervised task (``store-purge``, not critical: ingest goes on while it is down)."""

    def __init__(self, store: Store, *, debounce_s: float = DEBOUNCE_S) -> None:
        self.store = store
        self.debounce_s = debounce_s
        self.task_state = TaskState("store-purge")
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._look_for_pending = True
        #: Set once the task has looked for a purge pending from before (and requested
        #: it): from then on Purger.purged() waits for it too.
        self.looked = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop.clear()
        self.store.purger.attach(lambda: loop.call_soon_threadsafe(self._wake.set))
        # A purge pending from before (the process died before it) is looked for by the
        # task, which retries while the database cannot be read; the start never fails.
        self._look_for_pending = True
        self._wake.set()
        self._task = spawn(
            supervise(self.task_state, self._run, policy=RETRY, stop=self._stop, logger=log),
            name="store-purge",
        )

    async def _run(self) -> None:
        if not self.task_state.failures:
            self.task_state.mark_up()
        while not self._stop.is_set():
            waiting = asyncio.ensure_future(self._wake.wait())
            stopping = asyncio.ensure_future(self._stop.wait())
            try:
                done, _ = await asyncio.wait(
                    {waiting, stopping}, timeout=RECHECK_S, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    # Another process (a hub replica that died before its purge) may
                    # have left one pending: look at the durable mark now and then.
                    self._look_for_pending = True
            finally:
                waiting.cancel()
                stopping.cancel()
            if self._stop.is_set() or await pause(self.debounce_s, self._stop):
                return
            self._wake.clear()  # requests of the debounce are covered by this purge
            try:
                if self._look_for_pending:
                    if await asyncio.to_thread(self.store.purge_pending):
                        self.store.purger.request()
                    self._look_for_pending = False
                    self.looked.set()
                if self.store.purger.outstanding:
                    await asyncio.to_thread(self.store.purger.purge_now)
            except Exception:
                self._wake.set()  # still pending: the retry purges again
                raise
            self.task_state.mark_up()

    async def close(self) -> None:
        self._stop.set()
        await cancel(self._task)
        self.store.purger.attach(None)
