"""HubService.Publish: members push entries to the hub (the other way in is the harvest).

A mixin of :class:`samverka_hub.service.HubServicer`. Member port only: the caller is
identified by its certificate. The pusher is trusted for nothing about the entries:

- any origin's entries may be relayed (a node may pass on what it holds); each is
  verified with :func:`samverka.replication.ingest.ingest` against the current member directory's
  keys, and the signature decides;
- redacted stand-ins (drafts, which never leave their node) are taken on the
  pusher's word for its own feed only; another origin's stand-in needs a signed
  entry after it in the same batch, so nobody can block an origin's next sequence
  with a false stand-in;
- the first refused entry ends the call with its precise status and ErrorInfo
  (reason, origin, sequence); the entries before it are kept, and the refusal is
  counted in the hub's refusal table (``samverka hub refusals``).

Duplicates change nothing (a push and a harvest, or two pushes, of the same entries
leave one copy; the store's StoreConflict makes ingest verify again and retry). The
reply carries the hub's heads for the batch's origins, so a pusher knows where the
hub stands without asking.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from samverka.errors import EntryRefused, SamverkaError
from samverka.protocol.entries import parse_signed
from samverka.protocol.verify import KeyRing
from samverka.replication.ingest import IngestReport, ingest
from samverka.transport.server.status import InvalidRequest
from samverka.v1 import feed_pb2, hub_service_pb2

from samverka_hub.refusals import RefusalLog

if TYPE_CHECKING:
    import grpc

    from samverka_hub.runtime import HubRuntime

    Context = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger("samverka_hub.publish")

#: Most entries one Publish call may carry (a node pushes in batches of 500); bounds
#: the verification work of one call. The message size is bounded by the server.
MAX_PUBLISH_ENTRIES = 2000

#: The ``source`` of pushed entries in ingest reports and the refusal table.
SOURCE = "push"

#: Publish calls verified and stored at once; the others wait their turn. Appends are
#: serialized by the write lock anyway, and one batch's signatures already use every
#: core. Without this, a burst (290 kommuner pushing after the hub restarted) queued
#: every call in the thread pool, the later ones ran past the server's time limit for
#: unary calls, and their work was done for nothing (the pusher got DEADLINE_EXCEEDED
#: and sent the batch again). A call whose deadline passes while it waits ends having
#: done no work.
PUBLISH_SLOTS = 2


class AggregationMethods:
    """Publish over a :class:`HubRuntime`."""

    runtime: HubRuntime
    public: bool
    _publish_slots: asyncio.Semaphore | None = None

    if TYPE_CHECKING:  # provided by MembershipMethods

        async def caller_kommun(self, context: Context) -> str: ...

    async def Publish(
        self, request: hub_service_pb2.PublishRequest, context: Context
    ) -> hub_service_pb2.PublishResponse:
        caller = await self.caller_kommun(context)
        items = list(request.entries)
        if len(items) > MAX_PUBLISH_ENTRIES:
            raise InvalidRequest(
                f"{len(items)} entries in one Publish call; at most {MAX_PUBLISH_ENTRIES}",
                hint="push in smaller batches",
            )
        runtime = self.runtime
        if self._publish_slots is None:
            self._publish_slots = asyncio.Semaphore(PUBLISH_SLOTS)
        async with self._publish_slots:
            report: IngestReport = await asyncio.to_thread(
                ingest,
                runtime.store,
                _keyring(runtime),
                items,
                source=SOURCE,
                max_clock_skew_ms=runtime.hub.config.node.max_clock_skew_ms,
                trust_stand_ins=frozenset({caller}),
            )
        if report.positions:
            runtime.log_watcher.notify(report.positions[-1])
        refusal = report.first_refusal
        if refusal is not None:
            named = _named(refusal, items, report.refused_index)
            await asyncio.to_thread(
                RefusalLog(runtime.store).record, named, source=SOURCE, peer=caller
            )
            log.warning(
                "refused an entry pushed by %s after storing %d: %s", caller, report.accepted, named
            )
            raise named
        # The batch's origins as verification saw them (decoding every entry again
        # here cost as much as a twentieth of the call).
        origins = sorted(report.origins)
        heads = await asyncio.to_thread(runtime.store.heads, origins) if origins else []
        if report.accepted:
            log.info(
                "%s pushed %d new entries (%d duplicates)",
                caller,
                report.accepted,
                report.duplicates,
            )
        if report.stand_ins_filled:
            log.info(
                "%s pushed %d entries held here only as redacted stand-ins; filled in",
                caller,
                report.stand_ins_filled,
            )
        return hub_service_pb2.PublishResponse(
            accepted=report.accepted,
            duplicates=report.duplicates,
            heads=[
                feed_pb2.FeedHead(origin=h.origin, sequence=h.sequence, entry_hash=h.entry_hash)
                for h in heads
            ],
        )


#: The key ring of the directory in force, built once per directory (290 members'
#: keys cost about a millisecond to build, per Publish call otherwise).
_keyring_cache: tuple[object, KeyRing] | None = None


def _keyring(runtime: HubRuntime) -> KeyRing:
    global _keyring_cache
    directory = runtime.directory.current
    if _keyring_cache is None or _keyring_cache[0] is not directory:
        _keyring_cache = (directory, directory.keyring())
    return _keyring_cache[1]


def _named(
    refusal: EntryRefused, items: list[feed_pb2.LogEntry], index: int | None
) -> EntryRefused:
    """The refusal, naming the entry by what it claims when verification refused it
    before its bytes were trusted (an unknown key, a bad signature)."""
    if refusal.origin or index is None or index >= len(items):
        return refusal
    origin, sequence = _claimed(items[index])
    if not origin:
        return refusal
    return EntryRefused(refusal.reason, refusal.detail, origin=origin, sequence=sequence)


def _claimed(item: feed_pb2.LogEntry) -> tuple[str, int]:
    """The origin and sequence an item claims (unverified: for names and heads only)."""
    if item.HasField("redacted"):
        return item.redacted.origin[:8], item.redacted.sequence
    try:
        parsed = parse_signed(item.signed)
    except SamverkaError:
        return "", 0
    return parsed.origin, parsed.sequence
