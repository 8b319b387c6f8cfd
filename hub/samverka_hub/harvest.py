"""The harvest: the hub pulls members' feeds from their nodes, on a schedule.

The hub aggregates two ways into the same idempotent ingest: members push
(:mod:`samverka_hub.aggregation_service`), and the hub *harvests* the members it can
reach — those whose directory entry has an ``address`` (the node's member port,
given at enrollment). It calls each with its own client certificate (CN 0000,
issued by its CA, which enrolled nodes trust) and reads, with
:func:`samverka.sync.sync_from_peer`, only that member's own feed (an origin filter
keeps the chain whole), after a cursor kept per member (``harvest:<kommunkod>``).
Every entry is verified against the current directory's keys like any other.

Schedule (``[harvest]`` in the hub config): each member every ``interval_seconds``;
after a failure (unreachable, or an entry refused) the next attempt waits
``interval`` · 2ⁿ, at most ``max_backoff_seconds``, jittered to 50-100 % so a
network outage does not make every member come due at once. At most
``concurrency`` members are harvested at the same time. A refused entry is counted
in the refusal table (``samverka hub refusals``) like a refused push.

``samverka hub harvest [--member KOD]`` runs one round from the CLI
(:func:`harvest_once`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from samverka.client import ClientTls, FeedClient
from samverka.directory import VerifiedDirectory
from samverka.errors import ConfigError, SamverkaError
from samverka.kommuner import HUB_ORIGIN
from samverka.logwatch import LogWatcher
from samverka.store import Store
from samverka.sync import SyncReport, SyncStopped, sync_from_peer
from samverka.v1 import directory_pb2, feed_service_pb2
from samverka.verify import KeyRing

from samverka_hub.config import HarvestSection
from samverka_hub.folder import Hub
from samverka_hub.refusals import RefusalLog

log = logging.getLogger("samverka_hub.harvest")

#: The ``source`` of harvested entries in ingest reports and the refusal table.
SOURCE = "harvest"
#: How often the scheduler looks at the directory for new or changed members (seconds).
MAX_IDLE_SECONDS = 5.0


def cursor_name(kommunkod: str) -> str:
    """The hub's cursor in a member's log."""
    return f"harvest:{kommunkod}"


@dataclass(frozen=True, slots=True)
class Target:
    """A member the hub can reach."""

    kommunkod: str
    address: str


def targets(directory: VerifiedDirectory) -> list[Target]:
    """Active members with an address, the hub itself left out."""
    return [
        Target(m.kommunkod, m.address)
        for m in directory.directory.members
        if m.address
        and m.kommunkod != HUB_ORIGIN
        and m.status == directory_pb2.MEMBER_STATUS_ACTIVE
    ]


@dataclass
class HarvestOutcome:
    """One member's harvest."""

    kommunkod: str
    address: str
    report: SyncReport | None = None
    #: Empty when it worked; else what went wrong.
    error: str = ""
    #: The refusal's reason when the member served an entry that failed verification.
    refused: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def accepted(self) -> int:
        return self.report.accepted if self.report is not None else 0


async def harvest_member(
    store: Store,
    keys: KeyRing,
    tls: ClientTls,
    target: Target,
    *,
    refusals: RefusalLog,
    max_clock_skew_ms: int,
) -> HarvestOutcome:
    """Pull ``target``'s own feed from its node; verify and store what is new.

    Never raises for the member's failures: they are in the outcome (and a refused
    entry is counted in ``refusals``).
    """
    started = time.monotonic()
    outcome = HarvestOutcome(target.kommunkod, target.address)
    only_its_feed = feed_service_pb2.EntryFilter(origins=[target.kommunkod])
    try:
        async with FeedClient.connect(target.address, tls) as client:
            outcome.report = await sync_from_peer(
                store,
                keys,
                client,
                peer=cursor_name(target.kommunkod),
                entry_filter=only_its_feed,
                source=SOURCE,
                max_clock_skew_ms=max_clock_skew_ms,
            )
    except SyncStopped as stopped:
        outcome.report = stopped.report
        outcome.error = str(stopped)
        outcome.refused = stopped.reason.value
        await asyncio.to_thread(refusals.record, stopped, source=SOURCE, peer=target.kommunkod)
    except SamverkaError as err:
        outcome.error = str(err)
    except Exception as exc:  # a bug must not stop the harvest of every other member
        log.exception("harvesting %s failed unexpectedly", target.kommunkod)
        outcome.error = f"internal error: {exc!r}"
    outcome.seconds = time.monotonic() - started
    return outcome


@dataclass
class _Schedule:
    next_at: float = 0.0
    failures: int = 0


@dataclass
class HarvesterStatus:
    """What the harvester did (for logs and tests)."""

    rounds: int = 0
    harvests: int = 0
    failures: int = 0
    accepted: int = 0
    last: dict[str, HarvestOutcome] = field(default_factory=dict)


class Harvester:
    """A NodeServer resource of ``hub serve``: harvests reachable members on schedule."""

    def __init__(
        self,
        store: Store,
        directory: Callable[[], VerifiedDirectory],
        tls: ClientTls,
        watcher: LogWatcher,
        settings: HarvestSection,
        *,
        max_clock_skew_ms: int,
    ) -> None:
        self.store = store
        self.directory = directory
        self.tls = tls
        self.watcher = watcher
        self.settings = settings
        self.max_clock_skew_ms = max_clock_skew_ms
        self.refusals = RefusalLog(store)
        self.status = HarvesterStatus()
        self._schedule: dict[str, _Schedule] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="samverka-harvester")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    def wake(self) -> None:
        """Harvest every member now (e.g. for tests, or after a directory change)."""
        for schedule in self._schedule.values():
            schedule.next_at = 0.0
        self._wake.set()

    async def _run(self) -> None:
        limit = asyncio.Semaphore(self.settings.concurrency)
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                now = time.monotonic()
                current = {t.kommunkod: t for t in targets(self.directory())}
                for code in list(self._schedule):
                    if code not in current:
                        del self._schedule[code]  # revoked, or no longer reachable
                for code, target in current.items():
                    schedule = self._schedule.setdefault(code, _Schedule(next_at=now))
                    if schedule.next_at <= now and code not in running:
                        task = asyncio.create_task(
                            self._harvest(target, schedule, limit), name=f"harvest-{code}"
                        )
                        running[code] = task
                        task.add_done_callback(_forget(running, code))
                self.status.rounds += 1
                waits = [s.next_at - now for s in self._schedule.values()]
                idle = min([MAX_IDLE_SECONDS, *waits])
                self._wake.clear()
                try:
                    async with asyncio.timeout(max(idle, 0.05)):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            for task in running.values():
                task.cancel()
            if running:
                await asyncio.wait(list(running.values()))

    async def _harvest(self, target: Target, schedule: _Schedule, limit: asyncio.Semaphore) -> None:
        # Not due again while this one runs, however long it takes.
        schedule.next_at = float("inf")
        async with limit:
            keys = self.directory().keyring()
            outcome = await harvest_member(
                self.store,
                keys,
                self.tls,
                target,
                refusals=self.refusals,
                max_clock_skew_ms=self.max_clock_skew_ms,
            )
        self.status.harvests += 1
        self.status.last[target.kommunkod] = outcome
        interval = self.settings.interval_seconds
        if outcome.ok:
            schedule.failures = 0
            schedule.next_at = time.monotonic() + interval
            if outcome.accepted:
                self.status.accepted += outcome.accepted
                self.watcher.notify()
                log.info(
                    "harvested %d new entries of %s from %s",
                    outcome.accepted,
                    target.kommunkod,
                    target.address,
                )
            return
        schedule.failures += 1
        self.status.failures += 1
        if outcome.accepted:
            self.watcher.notify()
        delay = min(interval * 2**schedule.failures, self.settings.max_backoff_seconds)
        delay *= random.uniform(0.5, 1.0)
        schedule.next_at = time.monotonic() + delay
        level = logging.ERROR if outcome.refused else logging.WARNING
        log.log(
            level,
            "harvesting %s from %s failed (%d in a row; next try in %.0f s): %s",
            target.kommunkod,
            target.address,
            schedule.failures,
            delay,
            outcome.error,
        )


def _forget(
    running: dict[str, asyncio.Task[None]], code: str
) -> Callable[[asyncio.Task[None]], None]:
    def done(_task: asyncio.Task[None]) -> None:
        running.pop(code, None)

    return done


def harvester_for(
    hub: Hub, directory: Callable[[], VerifiedDirectory], watcher: LogWatcher
) -> Harvester:
    """The harvester ``hub serve`` runs, configured from the hub folder."""
    config = hub.config
    return Harvester(
        hub.store,
        directory,
        ClientTls.from_config(config.node),
        watcher,
        config.harvest,
        max_clock_skew_ms=config.node.max_clock_skew_ms,
    )


async def harvest_once(hub: Hub, *, member: str | None = None) -> list[HarvestOutcome]:
    """One harvest of every reachable member (or of ``member``), now, from the CLI.

    A running ``hub serve`` sees what is stored here through its log watcher.
    """
    directory = await asyncio.to_thread(hub.council.current_directory)
    if directory is None:
        raise ConfigError("the hub has no member directory yet", hint="run `samverka hub init`")
    chosen = targets(directory)
    if member is not None:
        chosen = [t for t in chosen if t.kommunkod == member]
        if not chosen:
            listed = directory.member(member)
            why = (
                "is not a member"
                if listed is None
                else "is not active"
                if listed.status != directory_pb2.MEMBER_STATUS_ACTIVE
                else "registered no address (it pushes instead)"
            )
            raise ConfigError(
                f"cannot harvest {member}: it {why}",
                hint="`samverka hub members list` shows members and their addresses",
            )
    config = hub.config
    tls = ClientTls.from_config(config.node)
    keys = directory.keyring()
    refusals = RefusalLog(hub.store)
    limit = asyncio.Semaphore(config.harvest.concurrency)

    async def one(target: Target) -> HarvestOutcome:
        async with limit:
            return await harvest_member(
                hub.store,
                keys,
                tls,
                target,
                refusals=refusals,
                max_clock_skew_ms=config.node.max_clock_skew_ms,
            )

    return list(await asyncio.gather(*(one(t) for t in chosen)))
