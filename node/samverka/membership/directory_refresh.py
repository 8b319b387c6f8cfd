"""Keeps an enrolled node's member directory fresh while ``node serve`` runs.

Every ``[hub] directory_refresh_seconds`` the agent asks the hub for a newer directory
(:func:`~samverka.membership.member.refresh_directory`): a new version is written to the
node folder, where the server's caller policy picks it up at once (it re-reads the file
when it changes, and open streams re-check), and an answer "not modified" renews the
held directory's confirmation time. The server refuses member calls once that time is
older than ``[hub] directory_max_age_seconds``, so a node cut off from the hub stops
serving members it can no longer tell from revoked ones.

It also refreshes at once when the hub announces a version newer than the one held
(:meth:`DirectoryRefreshAgent.announced`: the follow agent hears it on the hub's
Subscribe stream, which the hub ends when it signs a new version), so a revocation
reaches a following node within about a second instead of the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from samverka.config import NodeConfig
from samverka.errors import SamverkaError
from samverka.retry import cancel

log = logging.getLogger(__name__)


#: Refreshes woken by the hub's announcements are at least this far apart (a hub that
#: announced in a loop would not make its nodes fetch in one).
MIN_SPACING_SECONDS = 1.0


class DirectoryRefreshAgent:
    """A NodeServer resource: fetches the hub's directory every ``interval`` seconds,
    and as soon as the hub announces a newer version."""

    def __init__(self, config: NodeConfig, *, interval: float) -> None:
        self.config = config
        self.interval = interval
        self.refreshes = 0
        self.failures = 0
        #: The version held after the last refresh (None before the first).
        self.version: int | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def announced(self, version: int) -> None:
        """The hub says its directory is at ``version``: fetch it now if it is newer
        than the one held (called from the follow agent's stream, on the loop)."""
        if self.version is not None and version <= self.version:
            return
        log.debug(
            "the hub announced member directory version %d (held %s)",
            version,
            self.version,
            extra={"event": "directory_announced"},
        )
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="samverka-directory-refresh")

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def refresh_once(self) -> None:
        from samverka.membership.member import refresh_directory

        try:
            update = await refresh_directory(self.config)
        except SamverkaError as exc:
            self.failures += 1
            log.warning(
                "refreshing the member directory failed: %s",
                exc,
                extra={"event": "directory_refresh_failed"},
            )
            return
        self.refreshes += 1
        self.version = update.directory.version
        if update.changed:
            log.info(
                "member directory version %d (was %d)",
                update.directory.version,
                update.previous_version,
                extra={"event": "directory_refreshed"},
            )

    async def _run(self) -> None:
        while True:
            # Cleared before the refresh: an announcement during it wakes the next one.
            self._wake.clear()
            await self.refresh_once()
            await asyncio.sleep(MIN_SPACING_SECONDS)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, self.interval - MIN_SPACING_SECONDS)):
                    await self._wake.wait()
