"""Keeps an enrolled node's member directory fresh while ``node serve`` runs.

Every ``[hub] directory_refresh_seconds`` the agent asks the hub for a newer directory
(:func:`~samverka.membership.member.refresh_directory`): a new version is written to the
node folder, where the server's caller policy picks it up at once (it re-reads the file
when it changes, and open streams re-check), and an answer "not modified" renews the
held directory's confirmation time. The server refuses member calls once that time is
older than ``[hub] directory_max_age_seconds``, so a node cut off from the hub stops
serving members it can no longer tell from revoked ones.
"""

from __future__ import annotations

import asyncio
import logging

from samverka.config import NodeConfig
from samverka.errors import SamverkaError
from samverka.retry import cancel

log = logging.getLogger(__name__)


class DirectoryRefreshAgent:
    """A NodeServer resource: fetches the hub's directory every ``interval`` seconds."""

    def __init__(self, config: NodeConfig, *, interval: float) -> None:
        self.config = config
        self.interval = interval
        self.refreshes = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

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
        if update.changed:
            log.info(
                "member directory version %d (was %d)",
                update.directory.version,
                update.previous_version,
                extra={"event": "directory_refreshed"},
            )

    async def _run(self) -> None:
        while True:
            await self.refresh_once()
            await asyncio.sleep(self.interval)
