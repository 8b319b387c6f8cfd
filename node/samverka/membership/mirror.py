"""The node's mirror of the federation: pulled from the hub, verified entry by entry.

The hub redistributes every member's entries through its log (a global cursor).
A node pulls them into its own store — its *mirror* — so ``samverka search`` covers
the whole federation offline. The hub is trusted for nothing here: every entry is
verified against its origin's key from the signed member directory, which is
refreshed first so members admitted (or keys rotated, or revoked) since the last
fetch are known. A relayed entry the hub altered fails its origin's signature, and
the sync stops naming origin and sequence, storing nothing from it on. Every page is
also proven included in a checkpoint of the hub's transparency log that this node
accepted (:func:`hub_prover`); an entry the hub cannot prove stops the sync the same
way (``not_in_log``, ``bad_proof``).

- :func:`sync_from_hub`: refresh the directory, then read everything new after this
  node's cursor for the hub (``samverka sync``);
- :class:`FollowAgent`: inside ``samverka node serve`` on an enrolled node (``[hub]
  follow``), keeps following the hub's log live, so an entry published anywhere
  reaches this node within moments;
- :func:`hub_agents`: the push and follow agents ``node serve`` runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from samverka.errors import Reason, SamverkaError, TransportError
from samverka.node import hub_address
from samverka.protocol.verify import KeyRing
from samverka.replication.sync import (
    FOLLOW_MAX_BACKOFF,
    Progress,
    SyncReport,
    SyncStopped,
    follow_peer,
    sync_from_peer,
)
from samverka.retry import RetryPolicy, TaskState, cancel, spawn, supervise
from samverka.store.logwatch import LogWatcher
from samverka.transport.client import FeedClient
from samverka.transport.hubclient import HubClient

if TYPE_CHECKING:
    from samverka.membership.member import DirectoryUpdate
    from samverka.node import Node
    from samverka.replication.logproof import LogProver
    from samverka.transport.server.app import Resource

log = logging.getLogger("samverka.membership.mirror")

#: The cursor name of the hub in a node's store.
HUB_PEER = "hub"


@dataclass
class HubSync:
    """What ``samverka sync`` did."""

    report: SyncReport
    directory_version: int
    #: Whether the directory was newer than the one held.
    directory_changed: bool


def hub_client(node: Node) -> FeedClient:
    """A FeedService client for the hub's member port, with this node's certificate;
    through the node's ``[sync]`` filter when it has one (selective sync: it reads only
    the origins chosen, and keeps entries of other kinds or areas as stand-ins)."""
    from samverka.replication.selective import SyncFilter, feed_client

    return feed_client(node, hub_address(node.config), SyncFilter.from_section(node.config.sync))


def hub_prover(node: Node, link: HubClient) -> LogProver | None:
    """The prover of what the hub serves: its inclusion proofs (asked of ``link``)
    checked against this node's accepted checkpoint, a newer one accepted by the witness
    rules when needed (:class:`~samverka.replication.logstate.LogAcceptor`), waiting up
    to ``[witness] proof_wait_seconds``.

    None, said in a warning, when the held member directory names no log key and this
    node never accepted a checkpoint: a hub older than the log. Once a checkpoint was
    accepted, a directory without the log key is refused (LogStateError): a hub that
    drops its log must not turn proofs off.
    """
    from samverka.replication.logproof import LogProver
    from samverka.replication.logstate import (
        LogAcceptor,
        LogState,
        LogStateError,
        log_verifier_for,
    )

    config = node.config
    try:
        log_verifier_for(config)
    except LogStateError as exc:
        held = LogState(config.dir).accepted()
        if held is not None:
            raise LogStateError(
                f"{exc}, but this node has accepted a checkpoint of the hub's log ({held.size} "
                "leaves): the hub no longer names its log, so nothing it serves can be proven",
                hint="report it to the council (AI-rådet); do not remove tlog/ to get past it",
            ) from exc
        log.warning(
            "the hub's member directory names no transparency-log key: entries from the hub "
            "are not proven in a log (a hub older than the log)",
            extra={"event": "log_proofs_off"},
        )
        return None
    return LogProver(
        link.get_inclusion_answer,
        LogAcceptor.for_node(config, link),
        wait=config.witness.proof_wait_seconds,
        hub=f"the hub ({link.address})",
    )


async def refresh(node: Node) -> DirectoryUpdate:
    """Fetch the hub's newest member directory (kept only if it verifies and is newer)."""
    from samverka.membership.member import refresh_directory

    return await refresh_directory(node.config)


async def sync_from_hub(
    node: Node,
    *,
    progress: Progress | None = None,
    client: FeedClient | None = None,
) -> HubSync:
    """Refresh the member directory, then pull and verify everything new from the hub.

    Raises SyncStopped when an entry fails verification (naming origin and
    sequence; everything before it is stored and the cursor stops right before it),
    TransportError when the hub cannot be reached.
    """
    update = await refresh(node)
    keys = await asyncio.to_thread(node.keyring)
    owned = client is None
    feed = client or hub_client(node)
    link = HubClient.member(node.config)
    try:
        report = await sync_from_peer(
            node.store,
            keys,
            feed,
            peer=HUB_PEER,
            progress=progress,
            source="sync",
            max_clock_skew_ms=node.config.max_clock_skew_ms,
            prover=await asyncio.to_thread(hub_prover, node, link),
        )
    except SyncStopped as stopped:
        await watch_stop(node, feed, stopped)
        raise
    finally:
        await link.close()
        if owned:
            await feed.close()
    return HubSync(report, update.directory.version, update.changed)


async def watch_stop(node: Node, client: FeedClient, stopped: SyncStopped) -> None:
    """The monitor's look at an entry the hub served that stopped a sync: one of this
    node's own feed, signed with a key it never held, raises its alarm (with the entry
    as evidence). Best effort: the refusal stands either way."""
    from samverka.membership.monitor import watch_refusal

    try:
        await watch_refusal(node.config, client, stopped, now_ms=time.time_ns() // 1_000_000)
    except SamverkaError as exc:
        log.warning("the monitor could not read the refused entry again: %s", exc)


async def follow_hub(
    node: Node,
    *,
    stop: asyncio.Event,
    on_entries: Callable[[list[int]], None] | None = None,
    progress: Progress | None = None,
    min_backoff: float = 0.5,
    max_backoff: float = FOLLOW_MAX_BACKOFF,
    on_error: Callable[[SamverkaError], None] | None = None,
    on_directory_version: Callable[[int], None] | None = None,
) -> SyncReport:
    """Follow the hub's log live until ``stop`` is set (reconnecting as needed).

    The directory is refreshed before following and whenever an entry's key is
    unknown (a member admitted, or a key approved, since); other refusals raise
    SyncStopped. ``on_directory_version`` hears each directory version the hub
    announces on the stream (the node's DirectoryRefreshAgent fetches a newer one).
    """
    total = SyncReport(HUB_PEER)
    refreshed_for: tuple[str, int] | None = None
    while not stop.is_set():
        try:
            await refresh(node)
        except (TransportError, SamverkaError) as err:
            # Follow with the directory held; the stream reconnects on its own.
            log.warning("could not refresh the member directory: %s", err)
        keys: KeyRing = await asyncio.to_thread(node.keyring)
        client = hub_client(node)
        client.on_directory_version = on_directory_version
        link = HubClient.member(node.config)
        try:
            report = await follow_peer(
                node.store,
                keys,
                client,
                peer=HUB_PEER,
                stop=stop,
                on_entries=on_entries,
                progress=progress,
                min_backoff=min_backoff,
                max_backoff=max_backoff,
                source="sync",
                max_clock_skew_ms=node.config.max_clock_skew_ms,
                on_error=on_error,
                prover=await asyncio.to_thread(hub_prover, node, link),
            )
            _add(total, report)
            return total
        except SyncStopped as stopped:
            _add(total, stopped.report)
            await watch_stop(node, client, stopped)
            where = (stopped.origin, stopped.sequence)
            if stopped.reason is Reason.UNKNOWN_KEY and refreshed_for != where:
                # A member the held directory does not list yet: fetch it and go on.
                refreshed_for = where
                log.info("%s; fetching the member directory and following again", stopped)
                continue
            raise
        finally:
            await link.close()
            await client.close()
    return total


def _add(total: SyncReport, part: SyncReport) -> None:
    total.accepted += part.accepted
    total.duplicates += part.duplicates
    total.stand_ins_filled += part.stand_ins_filled
    total.pages += part.pages
    total.gaps_filled += part.gaps_filled
    total.position = max(total.position, part.position)


class FollowAgent:
    """A NodeServer resource: follows the hub's log live into this node's mirror.

    Entries stored are announced to the server's log watcher, so subscribers of this
    node see them at once. A refused entry (the hub served something that fails
    verification) is logged as an error and retried with back-off up to
    ``max_backoff`` seconds: nothing from it on is stored until it verifies. A lost
    stream (the hub or the network away) is retried within FOLLOW_MAX_BACKOFF
    seconds however long it lasts, so following resumes soon after the hub returns.
    """

    def __init__(
        self,
        node: Node,
        watcher: LogWatcher,
        *,
        min_backoff: float = 0.5,
        max_backoff: float = 300.0,
        on_directory_version: Callable[[int], None] | None = None,
    ) -> None:
        self.node = node
        self.watcher = watcher
        self.on_directory_version = on_directory_version
        self.policy = RetryPolicy(min_backoff, max(min_backoff, max_backoff))
        self.accepted = 0
        self.refusals = 0
        #: Up while the stream from the hub is open (or being reopened after a blip).
        self.task_state = TaskState("follow")
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def last_error(self) -> str:
        return self.task_state.last_error

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = spawn(
            supervise(
                self.task_state,
                self._follow,
                policy=self.policy,
                stop=self._stop,
                logger=log,
                alarming=(SyncStopped,),
            ),
            name="samverka-follow-hub",
        )

    async def close(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is None or task.done():
            return
        try:
            async with asyncio.timeout(5):
                await asyncio.wait([task])
        except TimeoutError:
            await cancel(task)

    def _stored(self, positions: list[int]) -> None:
        self.accepted += len(positions)
        self.task_state.mark_up()
        if positions:
            self.watcher.notify(positions[-1])

    async def _follow(self) -> None:
        from samverka.replication.selective import reread_if_wider

        # A [sync] filter widened since the last run: read the hub's log again.
        await asyncio.to_thread(reread_if_wider, self.node)
        try:
            await follow_hub(
                self.node,
                stop=self._stop,
                on_entries=self._stored,
                progress=self._progress,
                max_backoff=min(FOLLOW_MAX_BACKOFF, self.policy.maximum),
                on_error=lambda err: self.task_state.mark_down(str(err)),
                on_directory_version=self.on_directory_version,
            )
        except SyncStopped:
            self.refusals += 1
            raise

    def _progress(self, _report: SyncReport) -> None:
        self.task_state.mark_up()


def hub_agents(node: Node, watcher: LogWatcher) -> list[Resource]:
    """The agents ``node serve`` runs beside its server on an enrolled node:
    pushing its feed (``[hub] push``), following the hub (``[hub] follow``),
    witnessing its log (``[witness] cosign``, while following) and refreshing the
    member directory (``[hub] directory_refresh_seconds``)."""
    from samverka.membership.member import enrolled
    from samverka.replication.push import push_agent

    config = node.config
    if not config.hub.address or not enrolled(node):
        return []
    from samverka.membership.directory_refresh import DirectoryRefreshAgent

    refresh_seconds = config.hub.directory_refresh_seconds
    refresher = DirectoryRefreshAgent(config, interval=refresh_seconds) if refresh_seconds else None
    agents: list[Resource] = []
    if config.hub.push:
        agents.append(push_agent(config, node.store, watcher))
    if config.hub.follow:
        # The hub's announcements of a new directory version wake the refresh agent.
        announced = refresher.announced if refresher is not None else None
        agents.append(
            FollowAgent(
                node,
                watcher,
                max_backoff=config.hub.max_backoff_seconds,
                on_directory_version=announced,
            )
        )
        if config.witness.cosign:
            from samverka.membership.witness import WitnessAgent

            agents.append(WitnessAgent(node, watcher))
    if refresher is not None:
        agents.append(refresher)
    return agents
