"""Push this node's own feed to the hub (``samverka node push``, and the push agent).

A node behind a firewall cannot be harvested, so it pushes: it asks the hub for its
head of this node's feed (FeedService.GetFeedHeads on the hub's member port) and
sends what follows, in feed order and in batches (HubService.Publish). The hub
verifies every entry like any receiver and answers with its new head, so the next
batch starts where the hub really is, never where the node hopes it is.

- Drafts never leave the node: ``store.feed_items(include_drafts=False)`` puts a
  redacted stand-in (origin, sequence, entry hash) in their place, which keeps the
  hub's copy of the chain verifiable. MEMBERS records go (the hub is a member).
- A refused push stops with the hub's reason (:class:`PushStopped`); a
  ``sequence_gap`` means the hub's head moved back or was misread: the push
  starts again from the hub's head (a gap is filled, never skipped).
- Pushing is idempotent: what the hub already holds comes back as duplicates.
- A hub holding more of this feed than the node, or a different entry at one of
  its sequences, stops the push (:class:`FeedMismatch`): the node's database is
  older than what it published (restored from a backup?) or someone forked the feed.

:class:`PushAgent` runs inside ``samverka node serve`` when the node is enrolled:
it pushes after every local append (it watches the log) and every
``[hub] push_interval_seconds``, and backs off exponentially, with jitter, while the
hub is unreachable, catching up when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from samverka.config import NodeConfig
from samverka.errors import EntryRefused, Reason, SamverkaError, StoreError
from samverka.protocol.verify import FeedHead
from samverka.retry import Backoff, RetryPolicy, TaskState, cancel, pause, spawn, supervise
from samverka.store.logwatch import LogWatcher
from samverka.store.store import Store
from samverka.transport.hubclient import HubClient
from samverka.v1 import feed_pb2

log = logging.getLogger("samverka.replication.push")

#: Entries per Publish call (the hub takes at most 2000).
DEFAULT_BATCH_SIZE = 500
#: Bytes of entries per Publish call: below the hub's default 4 MiB message limit.
DEFAULT_BATCH_BYTES = 3 * 1024 * 1024
#: Restarts from the hub's head after a sequence_gap, per push.
MAX_GAP_RESTARTS = 3


@dataclass
class PushReport:
    origin: str
    #: The hub's head of our feed when the push began, and after it.
    hub_sequence_before: int = 0
    hub_sequence: int = 0
    #: Our own head when the push began.
    local_sequence: int = 0
    accepted: int = 0
    duplicates: int = 0
    batches: int = 0
    #: Restarts from the hub's head after it answered sequence_gap.
    gap_restarts: int = 0
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return self.accepted + self.duplicates

    @property
    def up_to_date(self) -> bool:
        return self.hub_sequence >= self.local_sequence

    @property
    def entries_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


class PushStopped(EntryRefused):
    """The hub refused an entry of our feed; what came before it is at the hub."""

    def __init__(self, refusal: EntryRefused, *, report: PushReport, hub: str) -> None:
        super().__init__(
            refusal.reason, refusal.detail, origin=refusal.origin, sequence=refusal.sequence
        )
        self.args = (f"the hub at {hub} refused {self}",)
        self.report = report
        self.hint = {
            Reason.KEY_REVOKED: "this node signs with a key the council has revoked",
            Reason.UNKNOWN_KEY: "the hub does not know this node's signing key: is the node "
            "enrolled, and was a key rotation approved?",
            Reason.CLOCK_SKEW: "this node's clock runs ahead of the hub's: check NTP",
        }.get(
            refusal.reason,
            "the hub refuses an entry this node published; tell the council (they see "
            "it in `samverka hub refusals`)",
        )


class FeedMismatch(EntryRefused):
    """The hub's copy of our feed is not a prefix of ours."""


ProgressFn = Callable[[PushReport], None]


async def push_feed(
    store: Store,
    origin: str,
    link: HubClient,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batch_bytes: int = DEFAULT_BATCH_BYTES,
    progress: ProgressFn | None = None,
) -> PushReport:
    """Send ``origin``'s feed from the hub's head onward; return what happened.

    Raises PushStopped when the hub refuses an entry, FeedMismatch when the hub's
    copy is not a prefix of ours, TransportError/PeerError when the hub cannot be
    reached (nothing is lost: the next push starts from the hub's head).
    """
    started = time.monotonic()
    report = PushReport(origin)
    hub_head = await link.head(origin)
    local = await asyncio.to_thread(store.head, origin)
    report.local_sequence = local.sequence if local else 0
    after = await _check_prefix(store, origin, hub_head, report.local_sequence)
    report.hub_sequence_before = report.hub_sequence = after
    if progress is not None:
        progress(report)
    while after < report.local_sequence:
        items = await asyncio.to_thread(
            store.feed_items, origin, after, batch_size, member=True, include_drafts=False
        )
        if not items:
            break
        batch = _fit(items, max_batch_bytes)
        try:
            published = await link.publish(batch)
        except EntryRefused as refusal:
            if refusal.reason is Reason.SEQUENCE_GAP and report.gap_restarts < MAX_GAP_RESTARTS:
                # The hub is not where we thought: start again from its head.
                report.gap_restarts += 1
                hub_head = await link.head(origin)
                after = await _check_prefix(store, origin, hub_head, report.local_sequence)
                log.info("the hub answered %s; pushing again from #%d", refusal, after + 1)
                continue
            report.seconds = time.monotonic() - started
            raise PushStopped(refusal, report=report, hub=link.address) from refusal
        report.accepted += published.accepted
        report.duplicates += published.duplicates
        report.batches += 1
        head = next((h for h in published.heads if h.origin == origin), None)
        reached = head.sequence if head is not None else 0
        if reached <= after:
            raise FeedMismatch(
                Reason.SEQUENCE_GAP,
                f"the hub took none of #{after + 1}..#{after + len(batch)} and stays at #{reached}",
                origin=origin,
                sequence=after + 1,
            )
        after = reached
        report.hub_sequence = after
        report.seconds = time.monotonic() - started
        if progress is not None:
            progress(report)
    report.seconds = time.monotonic() - started
    return report


async def _check_prefix(
    store: Store, origin: str, hub_head: FeedHead | None, local_sequence: int
) -> int:
    """The hub's sequence of our feed, after checking its head is one of our entries."""
    if hub_head is None:
        return 0
    if hub_head.sequence > local_sequence:
        mismatch = FeedMismatch(
            Reason.FORK,
            f"the hub holds this feed up to #{hub_head.sequence}, this node only to "
            f"#{local_sequence}",
            origin=origin,
            sequence=hub_head.sequence,
        )
        mismatch.hint = (
            "this node's database is older than what it published (restored from a "
            "backup?): run `samverka sync` to take the newer entries back from the hub "
            "before publishing again"
        )
        raise mismatch
    ours = await asyncio.to_thread(store.entry_hash, origin, hub_head.sequence)
    if ours != hub_head.entry_hash:
        mismatch = FeedMismatch(
            Reason.FORK,
            f"the hub holds a different entry at #{hub_head.sequence} than this node",
            origin=origin,
            sequence=hub_head.sequence,
        )
        mismatch.hint = (
            "two histories of this feed exist (a node folder restored or copied and "
            "used twice?); tell the council before publishing again"
        )
        raise mismatch
    return hub_head.sequence


def _fit(items: list[feed_pb2.LogEntry], max_bytes: int) -> list[feed_pb2.LogEntry]:
    """The longest prefix of ``items`` within ``max_bytes`` (at least one item)."""
    total = 0
    for i, item in enumerate(items):
        total += item.ByteSize() + 8  # field tag and length prefix
        if total > max_bytes and i > 0:
            return items[:i]
    return items


# -- the agent in `node serve` ---------------------------------------------------------


@dataclass
class PushAgentStatus:
    """What the agent last did (for logs and tests)."""

    pushes: int = 0
    failures: int = 0
    accepted: int = 0
    #: The hub's sequence of our feed as last seen (-1: not yet known).
    hub_sequence: int = -1
    last_error: str = ""
    history: list[PushReport] = field(default_factory=list)


class PushAgent:
    """A NodeServer resource: keeps the hub's copy of this node's feed current.

    Pushes when the node's own head moves past what the hub holds (noticed through
    the log watcher, so entries written by the CLI in another process count too) and
    every ``interval`` seconds. While the hub is unreachable or refuses, it waits
    ``min_backoff`` · 2ⁿ seconds (at most ``max_backoff``), each wait jittered to
    50-100 % so many nodes do not return in step, then catches up from the hub's head.
    """

    def __init__(
        self,
        store: Store,
        origin: str,
        watcher: LogWatcher,
        connect: Callable[[], HubClient],
        *,
        interval: float = 60.0,
        min_backoff: float = 1.0,
        max_backoff: float = 300.0,
    ) -> None:
        self.store = store
        self.origin = origin
        self.watcher = watcher
        self.connect = connect
        self.interval = interval
        self.policy = RetryPolicy(min_backoff, max(min_backoff, max_backoff))
        self.status = PushAgentStatus()
        #: Up while the hub takes our pushes (down while it is unreachable or refuses).
        self.task_state = TaskState("push")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Supervised: a failure outside a push (the store, the watcher) is logged and
        # the agent starts again, instead of ending silently.
        self._task = spawn(
            supervise(self.task_state, self._run, policy=self.policy, logger=log),
            name="samverka-push-agent",
        )

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def _run(self) -> None:
        link = self.connect()
        backoff = Backoff(self.policy)
        try:
            # Attached, a polling watcher keeps looking for appends by other processes.
            with self.watcher.attached():
                due = True  # push once at start: catch up with what happened offline
                while True:
                    seen = self.watcher.position
                    if due or await self._own_feed_moved():
                        if not await self._push_once(link):
                            await pause(backoff.failed())
                            continue
                        backoff.reset()
                    grew = await self.watcher.wait_beyond(seen, self.interval)
                    due = not grew  # the interval passed quietly: check with the hub
        finally:
            await link.close()

    async def _own_feed_moved(self) -> bool:
        try:
            head = await asyncio.to_thread(self.store.head, self.origin)
        except StoreError:
            return True  # let the push say what is wrong
        return (head.sequence if head else 0) > self.status.hub_sequence

    async def _push_once(self, link: HubClient) -> bool:
        try:
            report = await push_feed(self.store, self.origin, link)
        except asyncio.CancelledError:
            raise
        except SamverkaError as err:
            self.status.failures += 1
            self.status.last_error = str(err)
            self.task_state.mark_down(str(err))
            level = logging.WARNING if self.status.failures <= 3 else logging.DEBUG
            log.log(level, "push to the hub failed (attempt %d): %s", self.status.failures, err)
            return False
        self.task_state.mark_up()
        self.status.pushes += 1
        self.status.accepted += report.accepted
        self.status.hub_sequence = report.hub_sequence
        self.status.history = [*self.status.history[-9:], report]
        if self.status.failures:
            log.info("the hub is reachable again after %d failed pushes", self.status.failures)
        self.status.failures = 0
        self.status.last_error = ""
        if report.sent:
            log.info(
                "pushed %d entries to the hub (%d new); it holds %s up to #%d",
                report.sent,
                report.accepted,
                self.origin,
                report.hub_sequence,
            )
        return True


def push_agent(config: NodeConfig, store: Store, watcher: LogWatcher, **kwargs: Any) -> PushAgent:
    """The push agent for an enrolled node's ``node serve`` (``[hub]`` settings)."""
    hub = config.hub
    return PushAgent(
        store,
        config.node.kommun,
        watcher,
        lambda: HubClient.member(config),
        interval=hub.push_interval_seconds,
        max_backoff=hub.max_backoff_seconds,
        **kwargs,
    )
