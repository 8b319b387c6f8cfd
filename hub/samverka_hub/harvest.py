"""The harvest: the hub pulls members' feeds from their nodes, on a schedule.

The hub aggregates two ways into the same idempotent ingest: members push
(:mod:`samverka_hub.aggregation_service`), and the hub *harvests* the members it can
reach — those whose directory entry has an ``address`` (the node's member port,
given at enrollment). It calls each with its own client certificate (CN 0000,
issued by its CA, which enrolled nodes trust) and reads, with
:func:`samverka.replication.sync.sync_from_peer`, only that member's own feed (an origin filter
keeps the chain whole), after a cursor kept per member (``harvest:<kommunkod>``).
Every entry is verified against the current directory's keys like any other.

Schedule (``[harvest]`` in the hub config): each member every ``interval_seconds``;
after a failure (unreachable, or an entry refused) the next attempt waits
``interval`` · 2ⁿ, at most ``max_backoff_seconds``, jittered to 50-100 % so a
network outage does not make every member come due at once. At most
``concurrency`` members are harvested at the same time by one replica. A refused
entry is counted in the refusal table (``samverka hub refusals``) like a refused push.

The schedule is kept in the database (:mod:`samverka_hub.harvest_schedule`), so
hub replicas sharing one database share it: a due member is claimed by one replica
with a compare-and-set and held for ``lease_seconds`` (renewed while the harvest
runs), so each member is read once per interval however many replicas run, and a
member whose replica died is taken over by another when the lease runs out. The
decisions (what to claim, when next) are pure: :mod:`samverka_hub.harvest_plan`.

``samverka hub harvest [--member KOD]`` runs one round from the CLI
(:func:`harvest_once`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from samverka.errors import ConfigError, SamverkaError, StoreError
from samverka.protocol.directory import VerifiedDirectory
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.verify import KeyRing
from samverka.replication.sync import SyncReport, SyncStopped, sync_from_peer
from samverka.retry import RetryPolicy, TaskState, cancel, spawn, supervise
from samverka.store.logwatch import LogWatcher
from samverka.store.store import Store
from samverka.transport.client import ClientTls, FeedClient
from samverka.v1 import directory_pb2, feed_service_pb2

from samverka_hub.config import HarvestSection
from samverka_hub.folder import Hub
from samverka_hub.harvest_plan import MIN_IDLE_SECONDS, after_harvest, plan_round
from samverka_hub.harvest_schedule import HarvestSchedule
from samverka_hub.refusals import RefusalLog

log = logging.getLogger("samverka_hub.harvest")

#: The ``source`` of harvested entries in ingest reports and the refusal table.
SOURCE = "harvest"
#: How often the scheduler looks at the directory for new or changed members (seconds).
MAX_IDLE_SECONDS = 5.0
#: After a failed round (the schedule unreadable): look again under this policy.
ROUND_RETRY = RetryPolicy(initial=1.0, maximum=MAX_IDLE_SECONDS)


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


def replica_id() -> str:
    """This process's name in the schedule's claims: host, process id and a random
    token (a restarted replica, even with the same pid, never owns its predecessor's)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class HarvesterStatus:
    """What this replica's harvester did (for logs and tests)."""

    rounds: int = 0
    harvests: int = 0
    failures: int = 0
    accepted: int = 0
    #: Due members another replica claimed first (and harvests): not read twice.
    claimed_elsewhere: int = 0
    last: dict[str, HarvestOutcome] = field(default_factory=dict)


class Harvester:
    """A NodeServer resource of ``hub serve``: harvests reachable members on schedule.

    The schedule is in the database (:class:`HarvestSchedule`), shared by every hub
    replica on it: each due member is claimed by one replica, which harvests it and
    writes when it is due next. While harvesting, the replica renews its claims every
    third of ``[harvest] lease_seconds``; stopping, it releases them.
    """

    def __init__(
        self,
        store: Store,
        directory: Callable[[], VerifiedDirectory],
        tls: ClientTls,
        watcher: LogWatcher,
        settings: HarvestSection,
        *,
        max_clock_skew_ms: int,
        replica: str | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.tls = tls
        self.watcher = watcher
        self.settings = settings
        self.max_clock_skew_ms = max_clock_skew_ms
        self.refusals = RefusalLog(store)
        self.schedule = HarvestSchedule(store)
        self.replica = replica or replica_id()
        self.status = HarvesterStatus()
        #: Down while the harvest schedule cannot be read (the database is away).
        self.task_state = TaskState("harvest")
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._wake_all = False
        self._running: dict[str, asyncio.Task[None]] = {}
        self._renewed = 0.0

    @property
    def _lease_ms(self) -> int:
        return round(self.settings.lease_seconds * 1000)

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = spawn(
            supervise(self.task_state, self._run, policy=ROUND_RETRY, logger=log),
            name="samverka-harvester",
        )

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    def wake(self) -> None:
        """Harvest every member now (e.g. for tests, or after a directory change): the
        next look at the schedule makes them due (members being harvested, here or by
        another replica, keep their claim)."""
        self._wake_all = True
        self._wake.set()

    async def _run(self) -> None:
        try:
            while True:
                self._wake.clear()  # a wake() from here on ends the wait below at once
                current = {t.kommunkod: t for t in targets(self.directory())}
                # The database down (StoreError) ends this run: nothing can be claimed,
                # by any replica; the supervisor logs it and starts again after a wait.
                idle = await self._round(current)
                self.task_state.mark_up()
                self.status.rounds += 1
                try:
                    async with asyncio.timeout(idle):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            claimed, running = list(self._running), list(self._running.values())
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)
            # Stopping mid-harvest: hand the claims back, due now, rather than make
            # the members wait for the lease to run out.
            with contextlib.suppress(StoreError):
                await asyncio.to_thread(self.schedule.release, claimed, self.replica)

    async def _round(self, current: dict[str, Target]) -> float:
        """One look at the schedule: renew, claim what is due, start those harvests.
        How long to wait before the next look."""
        codes = sorted(current)
        if not codes and not self._running:
            return MAX_IDLE_SECONDS  # nobody to harvest: no need to ask the database
        if self._wake_all:
            await asyncio.to_thread(self.schedule.make_due, codes)
            self._wake_all = False
        renew_every = self.settings.lease_seconds / 3
        if self._running and time.monotonic() - self._renewed >= renew_every:
            await self._renew()
        view = await asyncio.to_thread(self.schedule.read, codes)
        plan = plan_round(
            view.slots,
            now_ms=view.now_ms,
            running=self._running,
            free=self.settings.concurrency - len(self._running),
            max_idle_seconds=MAX_IDLE_SECONDS,
        )
        lost = 0
        for code in plan.claim:
            claimed = await asyncio.to_thread(
                self.schedule.claim, code, self.replica, lease_ms=self._lease_ms
            )
            if claimed is None:
                lost += 1  # another replica claimed it first
                continue
            if not self._running:
                self._renewed = time.monotonic()  # the first claim is fresh
            task = asyncio.create_task(
                self._harvest(current[code], claimed.failures), name=f"harvest-{code}"
            )
            self._running[code] = task
            task.add_done_callback(self._forget(code))
        self.status.claimed_elsewhere += lost
        idle = plan.wait_seconds
        if self._running:
            idle = min(idle, max(renew_every - (time.monotonic() - self._renewed), 0.0))
        if lost:
            idle = 0.0  # read the winner's claim, to wait for its end rather than guess
        return max(idle, MIN_IDLE_SECONDS)

    async def _renew(self) -> None:
        members = sorted(self._running)
        held = await asyncio.to_thread(
            self.schedule.renew, members, self.replica, lease_ms=self._lease_ms
        )
        self._renewed = time.monotonic()
        if held < len(members):
            log.warning(
                "%d of %d harvest claims ran out before they were renewed (the event loop "
                "or the database was slow for [harvest] lease_seconds); another replica "
                "may harvest those members too",
                len(members) - held,
                len(members),
            )

    def _forget(self, code: str) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self._running.pop(code, None)
            # Look again now: the member's next due time is written, and a harvest
            # slot is free for a member that may be waiting for one.
            self._wake.set()

        return done

    async def _harvest(self, target: Target, failures: int) -> None:
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
        settings = self.settings
        step = after_harvest(
            outcome.ok,
            failures,
            interval_seconds=settings.interval_seconds,
            max_backoff_seconds=settings.max_backoff_seconds,
            jitter=random.uniform(0.5, 1.0),
        )
        try:
            kept = await asyncio.to_thread(
                self.schedule.finish,
                target.kommunkod,
                self.replica,
                delay_ms=step.delay_ms,
                failures=step.failures,
                error=outcome.error,
            )
        except StoreError as err:
            # The claim stays until its lease ends; then the member is harvested again.
            log.warning("could not record the harvest of %s: %s", target.kommunkod, err)
        else:
            if not kept:
                log.warning(
                    "the claim on %s ran out during its harvest and another replica "
                    "took it over (a harvest longer than [harvest] lease_seconds without "
                    "renewal)",
                    target.kommunkod,
                )
        if outcome.accepted:
            self.watcher.notify()  # what a failed harvest stored before it failed too
        if outcome.ok:
            if outcome.accepted:
                self.status.accepted += outcome.accepted
                log.info(
                    "harvested %d new entries of %s from %s",
                    outcome.accepted,
                    target.kommunkod,
                    target.address,
                )
            return
        self.status.failures += 1
        level = logging.ERROR if outcome.refused else logging.WARNING
        log.log(
            level,
            "harvesting %s from %s failed (%d in a row; next try in %.0f s): %s",
            target.kommunkod,
            target.address,
            step.failures,
            step.delay_ms / 1000,
            outcome.error,
        )


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
