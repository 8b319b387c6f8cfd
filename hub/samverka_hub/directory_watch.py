"""Keeps a running hub's view of the member directory current, and the directory fresh.

The operator's CLI (another process) and other hub replicas write new directory
versions into the shared database. ``hub serve`` notices them by polling the newest
version every ``[directory] poll_seconds`` (one indexed query), so a revocation
reaches the member port's caller policy within about a second.

The same loop re-signs the directory (a new version, same members) once
``reissue_fraction`` of its lifetime has passed, so nodes never see it expire while
the hub runs. Replicas racing to do so serialize on the database's write lock; the
second finds a fresh directory and does nothing.
"""

from __future__ import annotations

import asyncio
import logging

from samverka.protocol.directory import VerifiedDirectory
from samverka.retry import RetryPolicy, TaskState, cancel, spawn, supervise

from samverka_hub.council import Council

log = logging.getLogger("samverka_hub.directory")

#: After a failed poll: try again soon, but not in a tight loop against a dead database.
POLL_RETRY = RetryPolicy(initial=0.5, maximum=5.0)


class DirectoryWatcher:
    """A NodeServer resource: ``current`` is the newest directory, ≤ poll_seconds old."""

    def __init__(self, council: Council, *, poll_seconds: float) -> None:
        self.council = council
        self.poll_seconds = poll_seconds
        self._current: VerifiedDirectory | None = None
        self._task: asyncio.Task[None] | None = None
        #: Down while the newest directory cannot be read: a revocation would not reach
        #: the member port's caller policy, so the hub reports itself NOT_SERVING.
        self.task_state = TaskState("directory-watch", critical=True)

    @property
    def current(self) -> VerifiedDirectory:
        if self._current is None:
            raise RuntimeError("the directory watcher has not started")
        return self._current

    def current_or_none(self) -> VerifiedDirectory | None:
        return self._current

    async def start(self) -> None:
        self._current = await asyncio.to_thread(self.council.ensure_fresh_directory)
        log.info("member directory version %d", self._current.version)
        self.task_state.mark_up()
        self._task = spawn(
            supervise(self.task_state, self._run, policy=POLL_RETRY, logger=log),
            name="directory-watcher",
        )

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def refresh(self) -> VerifiedDirectory:
        """Look now: re-sign if due, else pick up a version another process wrote."""
        current = self.current
        due = self.council.clock() >= current.issued_at_ms + self.council.settings.reissue_after_ms
        if due:
            latest = await asyncio.to_thread(self.council.ensure_fresh_directory)
        else:
            version = await asyncio.to_thread(self.council.store.directory_version)
            if version == current.version:
                return current
            found = await asyncio.to_thread(self.council.store.latest_directory)
            latest = found if found is not None else current
        if latest.version != current.version:
            log.info("member directory version %d (was %d)", latest.version, current.version)
            self._current = latest
        return latest

    async def _run(self) -> None:
        """Poll until a refresh fails (a locked or unreachable database): then the old
        view stays in force and the supervisor tries again under POLL_RETRY."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            await self.refresh()
            self.task_state.mark_up()
