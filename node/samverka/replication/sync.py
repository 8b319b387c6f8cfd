"""Pull a peer's log into our store: verified entry by entry, resumable, never skipping.

Used by a node pulling from the hub (``samverka sync``), by the hub harvesting a member
node (with an origin filter), and by anything following a peer live.

Rules, in the spirit of python-tuf's updater (the peer is untrusted transport):

- every entry goes through :func:`samverka.replication.ingest.ingest`, the same verification as any
  other way in; the peer's word counts for nothing;
- entries are stored page by page, and the peer's cursor (``store.set_cursor(peer, …)``)
  advances only past what is stored, so an interruption at any point resumes with no
  gap, and a repeat is a harmless duplicate;
- the first refusal stops the sync with :class:`SyncStopped` naming origin, sequence
  and reason, after storing what came before it;
- a sequence gap (entries missing before the one offered) is filled by asking the peer
  for that origin's entries; if the peer cannot supply them, the sync fails loudly;
- from the hub, with a ``prover`` (:class:`~samverka.replication.logproof.LogProver`),
  each page is proven included in a checkpoint of the hub's transparency log that this
  node accepted before it is stored: the first entry the hub cannot prove stops the
  sync (``not_in_log``, ``bad_proof``) like any refused entry, after storing what came
  before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc

from samverka.errors import EntryRefused, Reason, SamverkaError, StoreError, TransportError
from samverka.observers import Observers
from samverka.protocol.entries import parse_signed
from samverka.protocol.inclusion import InclusionRefused, LeafClaim, NotInLog
from samverka.protocol.verify import DEFAULT_MAX_CLOCK_SKEW_MS, FeedHead, KeyRing
from samverka.replication.ingest import Checked, IngestReport, check_signatures, ingest
from samverka.replication.logproof import LogProver, entry_claims
from samverka.retry import Backoff, RetryPolicy, pause
from samverka.store.store import Store
from samverka.transport.client import FeedClient, Page
from samverka.transport.server.status import PeerError
from samverka.v1 import feed_pb2, feed_service_pb2

log = logging.getLogger("samverka.replication.sync")

#: Told where a peer stands when a sync starts (peer, its feed heads): the metrics turn
#: it into samverka_sync_lag_entries{peer,origin}.
peer_heads_observers: Observers[[str, Sequence[FeedHead]]] = Observers()

#: Gap fills allowed per sync before giving up (each fill should close one gap).
MAX_GAP_FILLS = 100

#: A follower's longest wait between tries (jittered to 50-100 %): after an outage of
#: any length it asks again within this many seconds of the peer's return, or sooner
#: when its channel connects again (pause_until_reconnected), so fan-out resumes within
#: 5 s (a 30 s cap left followers 8-23 s behind a hub back from 35 s away). A try at a
#: peer that is down is one refused TCP connection, or one TLS handshake if it is up
#: but cannot serve, so ~0.5 tries a second per follower costs a hub with 290 little.
FOLLOW_MAX_BACKOFF = 3.0

#: A follower reads at most this many pages ahead of the one it is storing. Pages that
#: arrived meanwhile are stored together (one verification batch, one commit), up to
#: FOLLOW_BATCH_MAX entries: a burst of live entries costs a commit per batch, not one
#: per entry.
FOLLOW_READ_AHEAD = 16
FOLLOW_BATCH_MAX = 500


@dataclass
class SyncReport:
    peer: str
    #: The cursor before and after.
    start_position: int = 0
    position: int = 0
    accepted: int = 0
    duplicates: int = 0
    #: Held stand-ins replaced by the signed entry behind them (an entry hidden before).
    stand_ins_filled: int = 0
    pages: int = 0
    #: Gaps closed by asking the peer for an origin's missing entries.
    gaps_filled: int = 0
    #: Entries proven in the hub's transparency log (a sync with a prover), and the
    #: size of the accepted checkpoint the last of them were proven in.
    proven: int = 0
    checkpoint_size: int = 0

    @property
    def received(self) -> int:
        return self.accepted + self.duplicates + self.stand_ins_filled


class SyncStopped(EntryRefused):
    """A peer offered an entry we refuse; everything before it was stored."""

    def __init__(
        self,
        refusal: EntryRefused,
        *,
        peer: str,
        report: SyncReport,
        item: feed_pb2.LogEntry | None = None,
    ) -> None:
        origin, sequence = refusal.origin, refusal.sequence
        if not origin and item is not None:
            # Refused before its bytes were trusted (e.g. an unknown key): name the entry
            # by what it claims, which is what an operator needs to find it.
            origin, sequence = _claimed(item)
        super().__init__(refusal.reason, refusal.detail, origin=origin, sequence=sequence)
        where = f" (position {item.position} of its log)" if item is not None else ""
        self.args = (f"sync from {peer} stopped{where}: {self}",)
        self.peer = peer
        self.report = report
        #: The refusal as raised (e.g. a NotInLog with the checkpoint it waited for).
        self.refusal = refusal
        self.position = item.position if item is not None else 0
        self.hint = {
            Reason.UNKNOWN_KEY: "the origin's key is not in our key ring: fetch the member "
            "directory, then sync again",
            Reason.SEQUENCE_GAP: "the peer does not hold the missing entries; try another peer",
            Reason.NOT_IN_LOG: "the hub withholds this entry from its transparency log, or its "
            "witnesses have not cosigned a checkpoint holding it yet: sync again in a while; "
            "a refusal that stays is evidence against the hub — report it to the council",
            Reason.BAD_PROOF: "the hub answered with a proof that does not hold: keep the log "
            "line and report it to the council; nothing from this entry on was stored",
        }.get(
            refusal.reason,
            "the peer served an entry that fails verification; nothing "
            "from it on was stored — report it to the council",
        )


class ProtocolViolation(TransportError):
    """The peer broke the protocol (cursor going backwards, entries it was not asked for)."""


Progress = Callable[[SyncReport], None]


async def sync_from_peer(
    store: Store,
    keys: KeyRing,
    client: FeedClient,
    *,
    peer: str,
    entry_filter: feed_service_pb2.EntryFilter | None = None,
    progress: Progress | None = None,
    batch_size: int = 0,
    source: str = "sync",
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
    prover: LogProver | None = None,
) -> SyncReport:
    """Read everything new in ``peer``'s log after our stored cursor; verify and store it.

    ``peer`` names the cursor (e.g. the hub's address or a kommunkod). Returns when the
    peer's log end at call time is reached. Raises SyncStopped on a refused entry,
    PeerError/TransportError when the peer fails (the cursor keeps what was stored).
    ``source`` and ``max_clock_skew_ms`` are passed on to ingest. ``prover``: prove
    each page in the hub's transparency log before storing it (the hub only).
    """
    puller = _Puller(store, keys, client, peer, entry_filter, progress, prover=prover)
    puller.source, puller.max_clock_skew_ms = source, max_clock_skew_ms
    await puller.begin()
    while True:
        attempt_from = puller.cursor
        try:
            async with (
                contextlib.aclosing(
                    client.read_entries(puller.cursor, entry_filter, batch_size)
                ) as pages,
                contextlib.aclosing(
                    _checked_ahead(pages, keys, puller.prove_page if prover else None)
                ) as checked_pages,
            ):
                async for page, checks, proof in checked_pages:
                    if not await puller.apply(page, await checks, proof):
                        break  # a gap was filled: read again from the cursor
                else:
                    return puller.report
        except PeerError as err:
            if err.code is not grpc.StatusCode.DEADLINE_EXCEEDED or puller.cursor == attempt_from:
                raise
            log.info("read from %s hit its deadline at %d; continuing", peer, puller.cursor)


async def follow_peer(
    store: Store,
    keys: KeyRing,
    client: FeedClient,
    *,
    peer: str,
    entry_filter: feed_service_pb2.EntryFilter | None = None,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    min_backoff: float = 0.5,
    max_backoff: float = FOLLOW_MAX_BACKOFF,
    on_entries: Callable[[list[int]], None] | None = None,
    source: str = "sync",
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
    on_error: Callable[[SamverkaError], None] | None = None,
    prover: LogProver | None = None,
) -> SyncReport:
    """Subscribe to ``peer`` and keep storing its new entries until ``stop`` is set.

    Reconnects with jittered exponential back-off when the stream ends or fails (the
    peer restarts, the network drops, heartbeats stop). A refused entry is not a
    network problem: SyncStopped is raised. ``on_entries`` gets the log positions of
    each stored batch (e.g. a server's ``watcher.advance``/``notify``); ``on_error``
    each failure that a reconnect is to mend. ``prover``: as for :func:`sync_from_peer`.
    """
    stop = stop or asyncio.Event()
    puller = _Puller(store, keys, client, peer, entry_filter, progress, on_entries, prover)
    puller.source, puller.max_clock_skew_ms = source, max_clock_skew_ms
    await puller.begin()
    backoff = Backoff(RetryPolicy(min_backoff, max(min_backoff, max_backoff)))
    while not stop.is_set():
        try:
            async with contextlib.aclosing(client.subscribe(puller.cursor, entry_filter)) as pages:
                async for page in _batched(pages, stop):
                    before = puller.report.received
                    if not await puller.apply(page):
                        break
                    if puller.report.received > before:
                        backoff.reset()  # the peer works: start back-off afresh
        except (TransportError, StoreError) as err:
            # The peer or the network failed, or our database was briefly busy (a locked
            # SQLite file): both pass. The cursor holds what was stored; resume from it.
            log.warning("following %s: %s", peer, err)
            if on_error is not None:
                on_error(err)
            await puller.begin_again()
        if stop.is_set():
            break
        await pause_until_reconnected(client, backoff.failed(), stop)
    return puller.report


async def pause_until_reconnected(client: FeedClient, seconds: float, stop: asyncio.Event) -> None:
    """Wait out a back-off of ``seconds``, but end it as soon as ``stop`` is set or the
    channel to the peer connects again after being down: its own reconnect attempts
    (grpc's back-off, at most 2 s) are the cheap probe, so a follower takes the peer
    back within moments of its return rather than when its back-off ends. A channel
    that is connected when the wait begins (the peer answered, but with an error)
    waits the whole back-off, so a peer that fails calls is not asked in a tight loop.
    """
    channel = client.channel
    ready = grpc.ChannelConnectivity.READY
    state = channel.get_state(try_to_connect=True)
    if state is ready:
        await pause(seconds, stop)
        return

    async def connected() -> None:
        current = state
        while current is not ready:
            await channel.wait_for_state_change(current)
            current = channel.get_state(try_to_connect=True)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            waits = [asyncio.ensure_future(connected()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
                await asyncio.wait(waits)


#: A page's proof in the hub's log, under way: its checks and the refusal of the first
#: entry not proven (None: all proven).
PageProof = asyncio.Future[tuple[list[Checked], InclusionRefused | None]]
ProvePage = Callable[
    [list[feed_pb2.LogEntry], Awaitable[list[Checked]]],
    Awaitable[tuple[list[Checked], InclusionRefused | None]],
]


async def _checked_ahead(
    pages: AsyncGenerator[Page, None], keys: KeyRing, prove: ProvePage | None = None
) -> AsyncGenerator[tuple[Page, asyncio.Future[list[Checked]], PageProof | None], None]:
    """Pages with their signature checks (ingest.check_signatures) already under way,
    reading one page ahead: while the caller verifies and stores a page, the next one
    arrives and its signatures are checked on another core, and (``prove``) its
    inclusion proofs are asked of the hub and checked. Only what needs no store state
    runs ahead; each page is still ingested in order."""

    async def fetch() -> tuple[Page, asyncio.Future[list[Checked]], PageProof | None]:
        page = await anext(pages)
        checks = asyncio.ensure_future(asyncio.to_thread(check_signatures, page.entries, keys))
        proof = asyncio.ensure_future(prove(page.entries, checks)) if prove else None
        return page, checks, proof

    ahead = asyncio.ensure_future(fetch())
    try:
        while True:
            try:
                page, checks, proof = await ahead
            except StopAsyncIteration:
                return
            ahead = asyncio.ensure_future(fetch())
            yield page, checks, proof
    finally:
        if not ahead.done():
            ahead.cancel()
        # The read must be over before the caller closes the stream it reads.
        await asyncio.wait([ahead])
        # A read that failed after the caller stopped is not news (exception() takes
        # it); a page read, its proof under way is not needed.
        if not ahead.cancelled() and ahead.exception() is None:
            _, _, proof = ahead.result()
            if proof is not None:
                proof.cancel()
                await asyncio.wait([proof])
                if not proof.cancelled():
                    proof.exception()


#: The end of the stream, in _batched's queue.
_END = object()


async def _batched(
    pages: AsyncGenerator[Page, None], stop: asyncio.Event
) -> AsyncGenerator[Page, None]:
    """Pages until ``stop`` is set, read ahead by a task of their own; the pages that
    arrived while the caller was storing the last one come as one page (their entries
    in order, the last one's resume position), so a burst is stored in one commit.

    Pages are merged only where each one's positions follow the one before it as the
    caller would check them one by one (entries after the previous page's resume
    position, which is not behind its own entries nor the one before it); a page that
    does not starts a page of its own, where the caller's checks refuse it. A failure
    of the stream comes after the pages read before it.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()
    room = asyncio.Semaphore(FOLLOW_READ_AHEAD)

    async def read() -> None:
        try:
            while True:
                await room.acquire()
                queue.put_nowait(await anext(pages))
        except StopAsyncIteration:
            queue.put_nowait(_END)
        except Exception as exc:  # handed to the caller, after the pages before it
            queue.put_nowait(exc)

    async def stopping() -> None:
        await stop.wait()
        queue.put_nowait(_END)

    reader = asyncio.ensure_future(read())
    stopper = asyncio.ensure_future(stopping())
    pending: list[object] = []
    try:
        while not stop.is_set():
            if not pending:
                pending.append(await queue.get())
            while not queue.empty():
                pending.append(queue.get_nowait())
            first = pending[0]
            if first is _END:
                return
            if isinstance(first, BaseException):
                raise first
            assert isinstance(first, Page)
            batch = [first]
            count = len(first.entries)
            for item in pending[1:]:
                if not isinstance(item, Page) or not _follows(batch[-1], item):
                    break
                if count + len(item.entries) > FOLLOW_BATCH_MAX:
                    break
                batch.append(item)
                count += len(item.entries)
            del pending[: len(batch)]
            for _ in batch:
                room.release()
            if len(batch) == 1:
                yield first
            else:
                entries = [entry for page in batch for entry in page.entries]
                yield Page(entries, batch[-1].next_position)
    finally:
        for task in (reader, stopper):
            task.cancel()
        # The read must be over before the caller closes the stream it reads.
        await asyncio.wait([reader, stopper])


def _follows(before: Page, page: Page) -> bool:
    """Whether ``page`` may be merged after ``before`` (see _batched)."""
    if before.entries and before.next_position < before.entries[-1].position:
        return False
    if page.next_position < before.next_position:
        return False
    return not page.entries or page.entries[0].position > before.next_position


class _Puller:
    """Applies pages from one peer to the store and keeps the cursor honest."""

    def __init__(
        self,
        store: Store,
        keys: KeyRing,
        client: FeedClient,
        peer: str,
        entry_filter: feed_service_pb2.EntryFilter | None,
        progress: Progress | None,
        on_entries: Callable[[list[int]], None] | None = None,
        prover: LogProver | None = None,
    ) -> None:
        self.store = store
        self.prover = prover
        self.keys = keys
        self.client = client
        self.peer = peer
        self.allowed_origins = frozenset(entry_filter.origins) if entry_filter else frozenset()
        self.progress = progress
        self.on_entries = on_entries
        self.report = SyncReport(peer)
        self.cursor = 0
        self.source = "sync"
        self.max_clock_skew_ms = DEFAULT_MAX_CLOCK_SKEW_MS

    async def begin(self) -> None:
        self.cursor = await asyncio.to_thread(self.store.get_cursor, self.peer)
        self.report.start_position = self.report.position = self.cursor
        await self._note_peer_heads()

    async def _note_peer_heads(self) -> None:
        """Tell the metrics where the peer stands (samverka_sync_lag_entries{peer,origin}).

        Best effort: a peer that cannot say still gets synced.
        """
        try:
            heads = await self.client.get_heads(sorted(self.allowed_origins))
        except SamverkaError as exc:
            log.debug("%s: no heads for the lag metric: %s", self.peer, exc)
            return
        peer_heads_observers(self.peer, heads.heads)

    async def begin_again(self) -> None:
        """After a failure: trust the stored cursor, not what was in flight."""
        with contextlib.suppress(StoreError):
            self.cursor = await asyncio.to_thread(self.store.get_cursor, self.peer)
            self.report.position = self.cursor

    async def apply(
        self, page: Page, checked: list[Checked] | None = None, proof: PageProof | None = None
    ) -> bool:
        """Verify and store one page. False when a gap was filled and reading must restart.

        ``checked``: the page's check_signatures, when they were run ahead; ``proof``:
        its proof in the hub's log (:meth:`prove_page`), when it was run ahead.
        """
        self._check_page(page)
        entries, checked, unproven = await self._proven_part(page.entries, checked, proof)
        if unproven is None:
            end = page.next_position
        else:  # stop right before the first entry not proven
            end = entries[-1].position if entries else self.cursor
        # The cursor moves in the same transaction as the page's entries (one commit).
        cursor = (self.peer, end) if end > self.cursor else None
        result = await asyncio.to_thread(self._ingest, entries, checked, cursor)
        self._count(result)
        refusal = result.first_refusal
        if refusal is None:
            if result.cursor_set:
                self.cursor = end
            await self._advance(end)
            if unproven is None:
                return True
            raise SyncStopped(
                unproven, peer=self.peer, report=self.report, item=page.entries[unproven.at]
            )
        # Stored: everything before the refused entry. The cursor stops right before it.
        held = result.held
        await self._advance(entries[held - 1].position if held else self.cursor)
        if (
            refusal.reason is Reason.SEQUENCE_GAP
            and self.report.gaps_filled < MAX_GAP_FILLS
            and await self._fill_gap(refusal.origin, refusal.sequence)
        ):
            self.report.gaps_filled += 1
            return False
        raise SyncStopped(refusal, peer=self.peer, report=self.report, item=entries[held])

    async def _proven_part(
        self,
        entries: list[feed_pb2.LogEntry],
        checked: list[Checked] | None,
        proof: PageProof | None = None,
    ) -> tuple[list[feed_pb2.LogEntry], list[Checked] | None, InclusionRefused | None]:
        """With a prover: the entries proven in the hub's log (all, or those before the
        first that is not), their checks, and the refusal of that first one."""
        if self.prover is None or not entries:
            return entries, checked, None
        if proof is not None:
            checked, refusal = await proof
        else:
            if checked is None:
                checked = await asyncio.to_thread(check_signatures, entries, self.keys)
            checked, refusal = await self.prove_page(entries, _done(checked))
        if refusal is None:
            return entries, checked, None
        return entries[: refusal.at], checked[: refusal.at], refusal

    async def prove_page(
        self, entries: list[feed_pb2.LogEntry], checks: Awaitable[list[Checked]]
    ) -> tuple[list[Checked], InclusionRefused | None]:
        """Prove a page's entries in the hub's log: their checks, and the refusal of the
        first entry not proven (None: all are). An entry not in the log that this node
        holds already (fetched from elsewhere) is passed over: nothing of it is taken."""
        assert self.prover is not None
        checked = await checks
        claims = entry_claims(entries, checked)
        wait: float | None = None
        try:
            while True:
                try:
                    await self.prover.prove(claims, wait=wait)
                    return checked, None
                except NotInLog as refusal:
                    claim = claims[refusal.at]
                    if claim is None or not await asyncio.to_thread(self._held, claim):
                        raise
                    # Held already, verified, from another source (a repair from its
                    # origin's node): nothing of it is taken from the hub, so nothing
                    # needs its proof. Said, since the hub serves what it did not log.
                    log.warning(
                        "%s: %s is not in the hub's log, but this node holds it already "
                        "(fetched from elsewhere): not taken from the hub",
                        self.peer,
                        claim.label,
                        extra={
                            "event": "not_in_log_held",
                            "origin": claim.origin,
                            "sequence": claim.number,
                        },
                    )
                    claims[refusal.at] = None
                    wait = 0.0  # waited once for this page already
        except InclusionRefused as refusal:
            return checked, refusal
        finally:
            self.report.proven = self.prover.stats.proven
            self.report.checkpoint_size = self.prover.stats.checkpoint_size

    def _held(self, claim: LeafClaim) -> bool:
        """Whether the store holds exactly this entry (same origin, sequence and hash)."""
        return self.store.entry_hash(claim.origin, claim.number) == claim.digest

    def _check_page(self, page: Page) -> None:
        """The peer's positions must move forward; entries must be what we asked for."""
        last = self.cursor
        for item in page.entries:
            if item.position <= last:
                raise ProtocolViolation(
                    f"{self.peer} sent position {item.position} after {last}: "
                    "a log only moves forward"
                )
            last = item.position
            if self.allowed_origins and _origin_of(item) not in self.allowed_origins:
                raise ProtocolViolation(
                    f"{self.peer} sent an entry of {_origin_of(item)!r} at position "
                    f"{item.position}, outside the requested origins"
                )
        if page.next_position < last:
            raise ProtocolViolation(
                f"{self.peer} said to resume at {page.next_position}, before its own entry {last}"
            )

    async def _advance(self, position: int) -> None:
        if position > self.cursor:
            await asyncio.to_thread(self.store.set_cursor, self.peer, position)
            self.cursor = position
        self.report.position = self.cursor
        self.report.pages += 1
        if self.progress is not None:
            self.progress(self.report)

    def _ingest(
        self,
        entries: list[feed_pb2.LogEntry],
        checked: list[Checked] | None = None,
        cursor: tuple[str, int] | None = None,
    ) -> IngestReport:
        return ingest(
            self.store,
            self.keys,
            entries,
            source=self.source,
            max_clock_skew_ms=self.max_clock_skew_ms,
            checked=checked,
            cursor=cursor,
        )

    def _count(self, result: IngestReport) -> None:
        self.report.accepted += result.accepted
        self.report.duplicates += result.duplicates
        self.report.stand_ins_filled += result.stand_ins_filled
        if result.positions and self.on_entries is not None:
            self.on_entries(result.positions)

    async def _fill_gap(self, origin: str, sequence: int) -> bool:
        """Fetch ``origin``'s entries before ``sequence`` from the peer. True if closed."""
        log.info(
            "%s: %s#%d arrived before earlier entries; asking for them", self.peer, origin, sequence
        )
        only_origin = feed_service_pb2.EntryFilter(origins=[origin])
        async with contextlib.aclosing(self.client.read_entries(0, only_origin)) as pages:
            async for page in pages:
                entries, checked, unproven = await self._proven_part(page.entries, None)
                result = await asyncio.to_thread(self._ingest, entries, checked)
                self._count(result)
                refusal = result.first_refusal or unproven
                if refusal is not None:
                    # The first refusal in page order: ingest's comes before the
                    # unproven entry (only what was proven before it was ingested).
                    held = result.held
                    raise SyncStopped(
                        refusal, peer=self.peer, report=self.report, item=page.entries[held]
                    )
                head = await asyncio.to_thread(self.store.head, origin)
                if head is not None and head.sequence >= sequence - 1:
                    return True
        return False


async def _done(value: list[Checked]) -> list[Checked]:
    return value


def _claimed(item: feed_pb2.LogEntry) -> tuple[str, int]:
    """The origin and sequence an entry claims (unverified; for checks and messages)."""
    if item.HasField("redacted"):
        return item.redacted.origin, item.redacted.sequence
    try:
        parsed = parse_signed(item.signed)
    except SamverkaError:
        return "", 0  # ingest refuses it with the precise reason
    return parsed.origin, parsed.sequence


def _origin_of(item: feed_pb2.LogEntry) -> str:
    return _claimed(item)[0]
