"""Live fan-out: notice when the log grows, wake the subscriptions waiting for it.

A server process has one :class:`LogWatcher`. It knows the newest log position it has
seen and wakes every waiting subscription when that position grows. Growth is learnt
three ways:

- in-process: code that appends in the server's own process (a publisher, an ingest
  of pushed entries) calls :meth:`LogWatcher.notify`, from any thread;
- SQLite, other processes (the CLI authoring into the node's file while the server
  runs): :class:`PollingLogWatcher` asks ``store.log_position()`` every 150 ms, but
  only while at least one subscription is attached;
- PostgreSQL, other processes and other hub replicas: :class:`PostgresLogWatcher`
  LISTENs on channel ``samverka_log``, where the store NOTIFYs the new position in
  every append transaction; it reconnects with back-off (:mod:`samverka.retry`) and
  re-reads the position after each reconnect, so a notification lost while
  disconnected costs a delay, never an entry.

Woken subscriptions then read the new entries through one :class:`SharedLogReader`,
which merges identical concurrent reads (same cursor, filter, audience and batch
size) into one store query: 290 nodes following the hub at its tail cost one query
per new entry, not 290.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from samverka.retry import RetryPolicy, TaskState, cancel, spawn, supervise
from samverka.store.store import LogPage, Store
from samverka.v1 import feed_service_pb2

log = logging.getLogger("samverka.store.logwatch")

#: PostgreSQL channel the store notifies with the new log position after each append.
NOTIFY_CHANNEL = "samverka_log"

#: Reconnecting the LISTEN session: capped at 2 s, so fan-out from other replicas
#: resumes within seconds of the database's return (one connection attempt per wait).
LISTEN_RETRY = RetryPolicy(initial=0.25, maximum=2.0)


class LogWatcher:
    """Knows the newest log position and wakes waiters when it grows.

    Only in-process notifications: use it alone for a store no other process writes.
    Everything but :meth:`notify` must run on the event loop that called :meth:`start`.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._position = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self._attached = 0
        self._has_subscribers = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def position(self) -> int:
        """The newest log position this watcher has seen."""
        return self._position

    @property
    def subscribers(self) -> int:
        return self._attached

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.refresh()

    async def close(self) -> None:
        self._closed = True
        self.wake_all()

    # -- learning about growth ---------------------------------------------------
    def notify(self, position: int | None = None) -> None:
        """The log grew (to ``position``, if known). Safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if position is None:
            loop.call_soon_threadsafe(self._schedule_refresh)
        else:
            loop.call_soon_threadsafe(self.advance, position)

    def advance(self, position: int) -> None:
        """Record a newer position and wake every waiter (event-loop thread only)."""
        if position > self._position:
            self._position = position
            self.wake_all()

    async def refresh(self) -> None:
        """Ask the store for its newest position."""
        self.advance(await asyncio.to_thread(self.store.log_position))

    def _schedule_refresh(self) -> None:
        task = asyncio.ensure_future(self.refresh())
        task.add_done_callback(_log_failure)

    # -- waiting ------------------------------------------------------------------
    @contextlib.contextmanager
    def attached(self) -> Iterator[None]:
        """Mark a live subscription, so polling sources know someone is listening."""
        self._attached += 1
        self._has_subscribers.set()
        try:
            yield
        finally:
            self._attached -= 1
            if self._attached == 0:
                self._has_subscribers.clear()

    async def wait_beyond(self, position: int, timeout: float) -> bool:
        """Wait until the log is known to extend past ``position``, at most ``timeout`` s.

        Returns whether it does. Also returns early (False) on :meth:`wake_all`
        without growth, e.g. when the server drains.
        """
        if self._position > position or self._closed:
            return self._position > position
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)
        return self._position > position

    def wake_all(self) -> None:
        """Wake every waiter now (growth, or shutdown)."""
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class PollingLogWatcher(LogWatcher):
    """Also polls ``store.log_position()`` while subscriptions exist (SQLite)."""

    def __init__(self, store: Store, *, interval: float = 0.15) -> None:
        super().__init__(store)
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        self._task = asyncio.create_task(self._poll(), name="samverka-log-poll")

    async def close(self) -> None:
        await cancel(self._task)
        await super().close()

    async def _poll(self) -> None:
        while True:
            await self._has_subscribers.wait()
            try:
                await self.refresh()
            except Exception:  # a locked or briefly missing file: try again next tick
                log.warning("polling the log position failed", exc_info=True)
            await asyncio.sleep(self.interval)


class PostgresLogWatcher(LogWatcher):
    """Also LISTENs for the store's NOTIFY on ``samverka_log`` (PostgreSQL).

    The listening task is supervised (:func:`samverka.retry.supervise`): a lost
    connection, a failed re-read or a server that stopped answering (checked after
    ``check_seconds`` without a notification) marks :attr:`task_state` down, is logged
    once, and the task reconnects under ``policy`` until the server is back.
    """

    def __init__(
        self,
        store: Store,
        conninfo: str,
        *,
        channel: str = NOTIFY_CHANNEL,
        policy: RetryPolicy = LISTEN_RETRY,
        check_seconds: float = 5.0,
    ) -> None:
        super().__init__(store)
        self.conninfo = conninfo
        self.channel = channel
        self.policy = policy
        self.check_seconds = check_seconds
        #: Up while LISTEN is in place: without it, entries other processes and
        #: replicas append reach this process's subscribers only by their next poll.
        self.task_state = TaskState("log-listener", critical=True)
        self._task: asyncio.Task[None] | None = None
        #: Set once the first LISTEN is in place (tests and start-up wait for it).
        self.listening = asyncio.Event()

    async def start(self) -> None:
        await super().start()
        self._task = spawn(
            supervise(
                self.task_state,
                self._listen,
                policy=self.policy,
                logger=log,
                expected=self._expected(),
            ),
            name="samverka-log-listen",
        )

    async def close(self) -> None:
        await cancel(self._task)
        await super().close()

    @staticmethod
    def _expected() -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.Error,)

    async def _listen(self) -> None:
        """One connection: LISTEN, catch up, then wake waiters per notification until
        the connection fails (raises) — there is no other way out."""
        import psycopg  # only PostgreSQL deployments need the driver loaded
        from psycopg import sql

        conn = await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, connect_timeout=max(1, round(self.check_seconds))
        )
        async with conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            # Anything appended while we were not listening is picked up here.
            await self.refresh()
            self.listening.set()
            self.task_state.mark_up()
            while True:
                async for note in conn.notifies(timeout=self.check_seconds):
                    self._on_payload(note.payload)
                # Quiet for check_seconds: make sure the server still answers (a
                # paused server or a dropped network sends no error, only silence).
                async with asyncio.timeout(self.check_seconds):
                    await conn.execute("SELECT 1")

    def _on_payload(self, payload: str) -> None:
        try:
            self.advance(int(payload))
        except ValueError:
            self._schedule_refresh()


def watcher_for(store: Store, url: str) -> LogWatcher:
    """The right watcher for a store URL: LISTEN on PostgreSQL, polling otherwise."""
    if url.startswith(("postgresql", "postgres:")):  # postgres:// is PostgreSQL too
        return PostgresLogWatcher(store, libpq_conninfo(url))
    return PollingLogWatcher(store)


def libpq_conninfo(url: str) -> str:
    """A libpq URI from an SQLAlchemy URL (``postgresql+psycopg://`` → ``postgresql://``)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class SharedLogReader:
    """``store.read_log`` off the event loop, with identical concurrent reads merged.

    Sharing is safe because the log is append-only: a page read a moment ago for the
    same cursor is still a correct page (at worst shorter), and the reader simply
    asks again from its new cursor.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._inflight: dict[tuple[int, int, bytes, bool], asyncio.Future[LogPage]] = {}
        #: Store queries made, and reads answered by joining one already in flight.
        self.queries = 0
        self.joined = 0

    async def read(
        self,
        after: int,
        limit: int,
        entry_filter: feed_service_pb2.EntryFilter | None,
        *,
        member: bool,
    ) -> LogPage:
        filter_key = entry_filter.SerializeToString(deterministic=True) if entry_filter else b""
        key = (after, limit, filter_key, member)
        shared = self._inflight.get(key)
        if shared is None:
            self.queries += 1
            shared = asyncio.ensure_future(
                asyncio.to_thread(
                    self.store.read_log,
                    after,
                    limit,
                    entry_filter=entry_filter,
                    member=member,
                    include_drafts=False,  # drafts never leave the node
                )
            )
            self._inflight[key] = shared
            shared.add_done_callback(lambda _: self._inflight.pop(key, None))
        else:
            self.joined += 1
        # shield: one reader giving up (cancelled) must not cancel the others' read.
        return await asyncio.shield(shared)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("refreshing the log position failed", exc_info=task.exception())
