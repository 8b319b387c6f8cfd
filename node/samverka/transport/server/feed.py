"""FeedService: a server's log of signed entries, read after a cursor or followed live.

Every store call runs in a worker thread (``asyncio.to_thread``) so one large read
never stalls the other calls on the event loop. What a caller sees is decided by the
:class:`~samverka.transport.server.policy.CallerPolicy` at the start of a call and again,
for the life of a stream, whenever the policy's revision moves (checked before every
message and every :data:`POLICY_RECHECK_SECONDS` while idle): a caller revoked mid-stream
gets PERMISSION_DENIED and nothing more. The store redacts the rest (drafts always,
MEMBERS records for the public) into RedactedEntry stand-ins.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

import samverka
from samverka.protocol.kommuner import is_origin
from samverka.protocol.signing import PublicKey
from samverka.store.logwatch import LogWatcher, SharedLogReader
from samverka.store.store import Store
from samverka.transport.server.app import ServiceBinding
from samverka.transport.server.policy import Audience, Caller, CallerPolicy, CertificatePolicy
from samverka.transport.server.settings import ServerSettings
from samverka.transport.server.status import AccessDenied, CursorAhead, InvalidRequest
from samverka.v1 import (
    directory_pb2,
    feed_pb2,
    feed_service_pb2,
    feed_service_pb2_grpc,
    records_pb2,
)

if TYPE_CHECKING:  # the stubs' generics are not subscriptable at run time
    Context = grpc.aio.ServicerContext[Any, Any]

SERVICE_NAME: str = feed_service_pb2.DESCRIPTOR.services_by_name["FeedService"].full_name

#: Room left in every streamed message for the cursor and protobuf framing.
_MESSAGE_OVERHEAD = 1024
#: Bounds on a filter, so a request cannot make the store build an absurd query.
MAX_FILTER_ORIGINS = 512
MAX_FILTER_VALUES = 64
MAX_TAG_CHARS = 64
#: An idle stream looks at its caller policy's revision at least this often, so a
#: revocation ends it within a second of the server learning of it.
POLICY_RECHECK_SECONDS = 0.25
#: gRPC metadata key of the member directory's version, sent on Subscribe by a server
#: that signs the directory (the hub): in the initial metadata, and in the trailing
#: metadata of a stream it ends, cleanly, because it signed a newer version. A follower
#: fetches the directory then and resumes from its cursor, so a revocation or an
#: admission reaches the nodes within moments (a push, not the next hourly poll).
DIRECTORY_VERSION_METADATA = "samverka-directory-version"


@dataclass(frozen=True, slots=True)
class LogView:
    """What a server holds of the hub's transparency log, for GetLogView: the checkpoint
    it accepted (a node) or cosigned last (the hub), as a signed note (empty: none),
    and the key objections it knows (serialized SignedKeyObjection)."""

    checkpoint: bytes = b""
    objections: tuple[bytes, ...] = ()


#: Reads the server's LogView (in a worker thread: it may read files).
LogViewSource = Callable[[], LogView]


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Who a server is: answered by GetNodeInfo."""

    kommunkod: str
    name: str
    public_key: PublicKey


class FeedServicer(feed_service_pb2_grpc.FeedServiceServicer):
    """FeedService over one store. The hub runs the same class over its aggregated log."""

    def __init__(
        self,
        store: Store,
        identity: NodeIdentity,
        watcher: LogWatcher,
        settings: ServerSettings,
        *,
        policy: CallerPolicy | None = None,
        reader: SharedLogReader | None = None,
        log_view: LogViewSource | None = None,
        directory_version: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.identity = identity
        self.watcher = watcher
        self.settings = settings
        self.policy: CallerPolicy = policy or CertificatePolicy()
        self.reader = reader or SharedLogReader(store)
        self.log_view = log_view
        #: The member directory's version, announced to subscribers (the hub only).
        self.directory_version = directory_version
        self._draining = False

    def binding(self) -> ServiceBinding:
        """How a NodeServer registers, health-checks, reflects and drains this service."""
        return ServiceBinding(
            name=SERVICE_NAME,
            register=lambda server: feed_service_pb2_grpc.add_FeedServiceServicer_to_server(
                self, server
            ),
            drain=self.begin_drain,
        )

    def begin_drain(self) -> None:
        """End live subscriptions cleanly (OK status) and cut open reads short."""
        self._draining = True
        self.watcher.wake_all()

    # -- unary --------------------------------------------------------------------
    async def GetNodeInfo(
        self, request: feed_service_pb2.GetNodeInfoRequest, context: Context
    ) -> feed_service_pb2.GetNodeInfoResponse:
        await self._audience(context)
        return feed_service_pb2.GetNodeInfoResponse(
            kommunkod=self.identity.kommunkod,
            name=self.identity.name,
            public_key=self.identity.public_key.raw,
            key_id=self.identity.public_key.key_id,
            software_version=samverka.__version__,
            server_time_ms=time.time_ns() // 1_000_000,
        )

    async def GetFeedHeads(
        self, request: feed_service_pb2.GetFeedHeadsRequest, context: Context
    ) -> feed_service_pb2.GetFeedHeadsResponse:
        await self._audience(context)
        origins = list(request.origins)
        _check_origins(origins)

        def read() -> tuple[list[feed_pb2.FeedHead], int]:
            # Position first: heads then cover at least everything up to it.
            position = self.store.log_position()
            heads = [
                feed_pb2.FeedHead(origin=h.origin, sequence=h.sequence, entry_hash=h.entry_hash)
                for h in self.store.heads(origins)
            ]
            return heads, position

        heads, position = await asyncio.to_thread(read)
        return feed_service_pb2.GetFeedHeadsResponse(heads=heads, log_position=position)

    async def GetLogView(
        self, request: feed_service_pb2.GetLogViewRequest, context: Context
    ) -> feed_service_pb2.GetLogViewResponse:
        await self._audience(context)
        if self.log_view is None:
            return feed_service_pb2.GetLogViewResponse()
        view = await asyncio.to_thread(self.log_view)
        objections = []
        for raw in view.objections:
            try:
                objections.append(directory_pb2.SignedKeyObjection.FromString(raw))
            except DecodeError:
                continue  # never ours to send: the reader checks each anyway
        return feed_service_pb2.GetLogViewResponse(
            checkpoint=view.checkpoint, objections=objections
        )

    # -- streams ------------------------------------------------------------------
    async def ReadEntries(
        self, request: feed_service_pb2.ReadEntriesRequest, context: Context
    ) -> AsyncIterator[feed_service_pb2.ReadEntriesResponse]:
        access = await self._access(context)
        audience = access.audience
        entry_filter = _checked_filter(request)
        limit = self._limit(request.batch_size)
        cursor = request.after.position
        end = await asyncio.to_thread(self.store.log_position)
        _check_cursor(cursor, end)
        loop = asyncio.get_running_loop()
        last_sent: int | None = None
        last_sent_at = loop.time()
        while cursor < end and not self._draining:
            page = await self.reader.read(cursor, limit, entry_filter, member=audience.member)
            scanned_to = max(page.next_position, cursor)
            for chunk, chunk_next in split_page(page.entries, scanned_to, self._budget):
                if chunk:
                    await access.check(audience)
                    yield feed_service_pb2.ReadEntriesResponse(
                        entries=chunk, next=feed_pb2.Cursor(position=chunk_next)
                    )
                    last_sent, last_sent_at = chunk_next, loop.time()
            if scanned_to == cursor:
                break  # the store had nothing more, whatever log_position said
            cursor = scanned_to
            if loop.time() - last_sent_at >= self.settings.heartbeat_seconds:
                # A long filtered scan finding nothing: report progress, so the reader's
                # cursor moves and an interruption does not start the scan over.
                await access.check(audience)
                yield feed_service_pb2.ReadEntriesResponse(next=feed_pb2.Cursor(position=cursor))
                last_sent, last_sent_at = cursor, loop.time()
        if last_sent != cursor:
            # Nothing sent, or a filtered tail was scanned: tell the reader where it stands.
            await access.check(audience)
            yield feed_service_pb2.ReadEntriesResponse(next=feed_pb2.Cursor(position=cursor))

    async def Subscribe(
        self, request: feed_service_pb2.SubscribeRequest, context: Context
    ) -> AsyncIterator[feed_service_pb2.SubscribeResponse]:
        access = await self._access(context)
        audience = access.audience
        entry_filter = _checked_filter(request)
        limit = self._limit(request.batch_size)
        cursor = request.after.position
        _check_cursor(cursor, await asyncio.to_thread(self.store.log_position))
        loop = asyncio.get_running_loop()
        heartbeat = self.settings.heartbeat_seconds
        version_of = self.directory_version
        announced = version_of() if version_of is not None else None
        if announced is not None:
            await context.send_initial_metadata(((DIRECTORY_VERSION_METADATA, str(announced)),))
        with self.watcher.attached():
            last_sent = loop.time()
            read_needed = True
            while not self._draining:
                if version_of is not None and (newer := version_of()) != announced:
                    # A new directory: a caller it revokes is refused (PERMISSION_DENIED);
                    # any other is told the version and ends cleanly, to fetch it.
                    await access.check(audience)
                    context.set_trailing_metadata(((DIRECTORY_VERSION_METADATA, str(newer)),))
                    return
                if read_needed or self.watcher.position > cursor:
                    page = await self.reader.read(
                        cursor, limit, entry_filter, member=audience.member
                    )
                    scanned_to = max(page.next_position, cursor)
                    for chunk, chunk_next in split_page(page.entries, scanned_to, self._budget):
                        if chunk:
                            await access.check(audience)
                            yield feed_service_pb2.SubscribeResponse(
                                entries=chunk, next=feed_pb2.Cursor(position=chunk_next)
                            )
                            last_sent = loop.time()
                    # Read again only if this read stopped before the log's end as it
                    # was then (the batch limit, a filter's scan window); growth since
                    # shows in the watcher's position. (Reading again until a read
                    # brought nothing cost every subscriber a second store read per
                    # new entry: 290 of them at the hub, mostly not merged.)
                    read_needed = scanned_to < page.log_position
                    cursor = scanned_to
                idle = loop.time() - last_sent
                if idle >= heartbeat:
                    # Quiet, or a long filtered scan finding nothing: say where we stand.
                    await access.check(audience)
                    yield feed_service_pb2.SubscribeResponse(next=feed_pb2.Cursor(position=cursor))
                    last_sent = loop.time()
                    continue
                if read_needed:
                    continue
                if self._draining:
                    break  # drained while this call was reading: do not start waiting
                read_needed = await self.watcher.wait_beyond(
                    cursor, min(heartbeat - idle, POLICY_RECHECK_SECONDS)
                )
                await access.check(audience)

    # -- helpers ------------------------------------------------------------------
    async def _audience(self, context: Context) -> Audience:
        return await self.policy.audience(Caller.from_context(context))

    async def _access(self, context: Context) -> StreamAccess:
        caller = Caller.from_context(context)
        revision = self.policy.revision()
        audience = await self.policy.audience(caller)
        return StreamAccess(self.policy, caller, audience, revision)

    @property
    def _budget(self) -> int:
        return self.settings.max_message_bytes - _MESSAGE_OVERHEAD

    def _limit(self, requested: int) -> int:
        cap = self.settings.batch_size
        return min(requested, cap) if requested > 0 else cap


class StreamAccess:
    """A stream's caller, the audience it was granted, and the policy revision then."""

    def __init__(
        self, policy: CallerPolicy, caller: Caller, audience: Audience, revision: object
    ) -> None:
        self.policy = policy
        self.caller = caller
        self.audience = audience
        self._revision = revision

    async def check(self, granted: Audience) -> None:
        """Ask the policy again if its revision moved; raise AccessDenied (the stream
        ends with PERMISSION_DENIED) if the caller may no longer read what ``granted``
        lets it read."""
        revision = self.policy.revision()
        if revision == self._revision:
            return
        audience = await self.policy.audience(self.caller)  # raises when refused now
        self._revision = revision
        if audience is not granted:
            raise AccessDenied(
                f"{self.caller.label} may no longer read as {granted.value} "
                f"(now {audience.value}); the stream ends",
                hint="call again to read as what you may read now",
            )


def split_page(
    entries: list[feed_pb2.LogEntry], scanned_to: int, budget: int
) -> Iterator[tuple[list[feed_pb2.LogEntry], int]]:
    """Split a page into messages of at most ``budget`` bytes, each with its resume cursor.

    Order is kept. Each chunk but the last resumes after its own last entry; the last
    resumes after everything scanned (``scanned_to``). An empty page gives one empty
    chunk. A single entry larger than ``budget`` travels alone (settings guarantee the
    real limit holds the largest entry).
    """
    chunk: list[feed_pb2.LogEntry] = []
    size = 0
    for entry in entries:
        entry_size = entry.ByteSize() + 8  # field tag and length prefix
        if chunk and size + entry_size > budget:
            yield chunk, chunk[-1].position
            chunk, size = [], 0
        chunk.append(entry)
        size += entry_size
    yield chunk, scanned_to


def _check_cursor(cursor: int, end: int) -> None:
    if cursor > end:
        raise CursorAhead(
            f"cursor {cursor} is past the end of this server's log ({end})",
            hint="the server's log is not the one the cursor came from (restored database?); "
            "reset the cursor for this peer and sync again — verification drops duplicates",
        )


def _check_origins(origins: list[str]) -> None:
    if len(origins) > MAX_FILTER_ORIGINS:
        raise InvalidRequest(f"at most {MAX_FILTER_ORIGINS} origins per request")
    bad = [o for o in origins if not is_origin(o)]
    if bad:
        raise InvalidRequest(f"not a kommunkod: {', '.join(repr(b) for b in bad[:5])}")


def _checked_filter(
    request: feed_service_pb2.ReadEntriesRequest | feed_service_pb2.SubscribeRequest,
) -> feed_service_pb2.EntryFilter | None:
    if not request.HasField("filter"):
        return None
    f: feed_service_pb2.EntryFilter = request.filter
    _check_origins(list(f.origins))
    kinds = set(records_pb2.RecordKind.values()) - {records_pb2.RECORD_KIND_UNSPECIFIED}
    areas = set(records_pb2.ServiceArea.values()) - {records_pb2.SERVICE_AREA_UNSPECIFIED}
    if len(f.kinds) > MAX_FILTER_VALUES or any(k not in kinds for k in f.kinds):
        raise InvalidRequest("filter.kinds holds an unknown or unspecified record kind")
    if len(f.service_areas) > MAX_FILTER_VALUES or any(a not in areas for a in f.service_areas):
        raise InvalidRequest("filter.service_areas holds an unknown or unspecified area")
    if len(f.tags) > MAX_FILTER_VALUES or any(not t or len(t) > MAX_TAG_CHARS for t in f.tags):
        raise InvalidRequest(
            f"filter.tags: at most {MAX_FILTER_VALUES} tags of 1–{MAX_TAG_CHARS} characters"
        )
    if f.since_ms < 0 or f.until_ms < 0 or (f.until_ms and f.since_ms > f.until_ms):
        raise InvalidRequest("filter: since_ms and until_ms must be ≥ 0 and since ≤ until")
    if f == feed_service_pb2.EntryFilter():
        return None  # an empty filter is no filter: share reads with unfiltered readers
    return f
