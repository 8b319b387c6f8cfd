"""Selective sync (issue 14): take only some origins, record kinds or service areas from
the hub, keep every feed's hash chain verifiable, and say what was left out.

Filtered reads skip entries (feed_service.proto), and a node verifies each origin's
hash chain, so the filter is applied in two ways:

- **origins** go on the wire (``EntryFilter.origins``): the hub serves those origins'
  chains whole, redactions included, and nothing of the others;
- **kinds and areas** do not: every entry of the origins taken is read, and one that
  does not match is kept as a *stand-in* — origin, sequence and hash, what a MEMBERS
  entry is on the public port — once its signature verified. The next entry of its
  origin vouches for it (previous_hash), and the hub's transparency log proves it as
  the same leaf as the signed entry, so the chain checks and the inclusion proofs are
  those of a full sync. What is saved is storage and noise in search, not bandwidth.

Never left out: this node's own entries, tombstones and later versions of records it
holds (so it learns of their changes and retractions), and anything whose signature
fails (ingest refuses it with the precise reason, as without a filter).

The filter in force is remembered (:data:`FILTER_FILE`). A sync with a filter that
lets in something an earlier one left out reads the hub's log from its start again
(:func:`remember`): held entries come as duplicates, and each stand-in is filled by
its signed entry (ingest's ``stand_ins_filled``). A narrower filter keeps what is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from samverka.config import SyncSection
from samverka.errors import SamverkaError
from samverka.protocol.entries import ParsedEntry, parse_signed
from samverka.protocol.erasure import is_erasure
from samverka.protocol.kommuner import HUB_ORIGIN, kommun_name
from samverka.protocol.verify import CheckedSignature, KeyRing
from samverka.protocol.vocab import RECORD_KIND, SERVICE_AREA
from samverka.replication.ingest import check_signatures
from samverka.store.indexing import record_facts
from samverka.transport.client import FeedClient, Page
from samverka.v1 import feed_pb2, feed_service_pb2

if TYPE_CHECKING:
    from samverka.node import Node

log = logging.getLogger("samverka.replication.selective")

#: The filter of the last selective (or full) sync, in the node folder.
FILTER_FILE = "sync-filter.json"


@dataclass(frozen=True, slots=True)
class SyncFilter:
    """What a sync takes: each set empty = any; a record must match all three."""

    origins: frozenset[str] = frozenset()
    kinds: frozenset[int] = frozenset()
    areas: frozenset[int] = frozenset()

    @classmethod
    def from_section(cls, section: SyncSection) -> SyncFilter:
        """From ``[sync]`` (or the CLI's options, validated the same way)."""
        return cls(
            frozenset(section.origins),
            frozenset(RECORD_KIND.parse(k) for k in section.kinds),
            frozenset(SERVICE_AREA.parse(a) for a in section.areas),
        )

    @property
    def active(self) -> bool:
        return bool(self.origins or self.kinds or self.areas)

    def wire(
        self, asked: feed_service_pb2.EntryFilter | None, own_origin: str
    ) -> feed_service_pb2.EntryFilter:
        """The read's filter: the caller's (a gap fill names its origin), else our origins
        and the node's own (the monitor watches what the hub serves of it).

        Only origins go on the wire: a content filter would leave holes in the chains.
        """
        if asked is not None and asked.origins:
            return asked
        merged = feed_service_pb2.EntryFilter()
        if asked is not None:
            merged.CopyFrom(asked)
        if self.origins:
            # The hub's feed too: the council's erasures (of any origin) must reach us;
            # its other entries are cut to stand-ins unless 0000 is chosen (_cut).
            merged.origins.extend(sorted(self.origins | {own_origin, HUB_ORIGIN}))
        return merged

    def takes(self, parsed: ParsedEntry) -> bool:
        """Whether a record entry matches the kinds and areas (origins are the wire's)."""
        record = parsed.record
        if is_erasure(record):
            return True  # an erasure carries no content and must reach every holder
        if parsed.origin == HUB_ORIGIN and self.origins and HUB_ORIGIN not in self.origins:
            return False  # read for its erasures only (wire)
        if self.kinds and record.header.kind not in self.kinds:
            return False
        if self.areas:
            area = record_facts(record).service_area
            if area and area not in self.areas:
                return False
        return True

    def within(self, wider: SyncFilter) -> bool:
        """Whether everything this filter takes, ``wider`` took too."""
        return all(
            not theirs or (mine and mine <= theirs)
            for mine, theirs in (
                (self.origins, wider.origins),
                (self.kinds, wider.kinds),
                (self.areas, wider.areas),
            )
        )

    def as_json(self) -> dict[str, list[str]]:
        return {
            "origins": sorted(self.origins),
            "kinds": sorted(RECORD_KIND.key(k) for k in self.kinds),
            "areas": sorted(SERVICE_AREA.key(a) for a in self.areas),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncFilter:
        return cls.from_section(
            SyncSection(
                origins=tuple(data.get("origins", ())),
                kinds=tuple(data.get("kinds", ())),
                areas=tuple(data.get("areas", ())),
            )
        )

    def describe(self) -> str:
        """ "ursprung Leksand (2029); typ lösning; område äldreomsorg" (Swedish)."""
        parts = []
        if self.origins:
            names = ", ".join(f"{kommun_name(o)} ({o})" for o in sorted(self.origins))
            parts.append(f"ursprung {names}")
        if self.kinds:
            kinds = ", ".join(sorted(RECORD_KIND.label(k).lower() for k in self.kinds))
            parts.append(f"typ {kinds}")
        if self.areas:
            areas = ", ".join(sorted(SERVICE_AREA.label(a).lower() for a in self.areas))
            parts.append(f"område {areas}")
        return "; ".join(parts) if parts else "allt"


@dataclass
class LeftOut:
    """What a selective sync kept only as stand-ins, and what it did not read."""

    by_kind: Counter[int] = field(default_factory=Counter)
    by_origin: Counter[str] = field(default_factory=Counter)
    #: Positions of the hub's log read past without an entry: other origins' entries
    #: (the wire's origin filter), never sent.
    not_read: int = 0

    @property
    def stand_ins(self) -> int:
        return sum(self.by_kind.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "stand_ins": self.stand_ins,
            "by_kind": {RECORD_KIND.key(k): n for k, n in sorted(self.by_kind.items())},
            "by_origin": dict(sorted(self.by_origin.items())),
            "not_read": self.not_read,
        }


class SelectiveFeed(FeedClient):
    """A FeedClient that reads through a :class:`SyncFilter` (see the module docstring).

    ``keys`` gives the key ring to verify an entry before it is cut to a stand-in;
    ``held`` says which of an origin's record ids this node holds (any version).
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        sync_filter: SyncFilter,
        own_origin: str,
        keys: Callable[[], KeyRing],
        held: Callable[[str, Iterable[str]], Iterable[str]],
        address: str = "",
    ) -> None:
        super().__init__(channel, address=address)
        self.sync_filter = sync_filter
        self.own_origin = own_origin
        self._keys = keys
        self._held = held
        #: Records taken in full during this client's life (a later version follows).
        self._taken: set[tuple[str, str]] = set()
        self.left_out = LeftOut()

    async def read_entries(
        self,
        after: int,
        entry_filter: feed_service_pb2.EntryFilter | None = None,
        batch_size: int = 0,
    ) -> AsyncGenerator[Page, None]:
        # A gap fill names its own origin: its re-read is not news of what was skipped.
        counting = entry_filter is None or not entry_filter.origins
        pages = super().read_entries(
            after, self.sync_filter.wire(entry_filter, self.own_origin), batch_size
        )
        async with contextlib.aclosing(pages):
            async for page in pages:
                if counting:
                    self._count(page, after)
                yield await self._sift(page)
                after = max(after, page.next_position)

    async def subscribe(
        self,
        after: int,
        entry_filter: feed_service_pb2.EntryFilter | None = None,
        batch_size: int = 0,
    ) -> AsyncGenerator[Page, None]:
        pages = super().subscribe(
            after, self.sync_filter.wire(entry_filter, self.own_origin), batch_size
        )
        async with contextlib.aclosing(pages):
            async for page in pages:
                self._count(page, after)
                yield await self._sift(page)
                after = max(after, page.next_position)

    def _count(self, page: Page, after: int) -> None:
        """Positions the page moves past without an entry: other origins' (the wire filter)."""
        if self.sync_filter.origins and page.next_position > after:
            self.left_out.not_read += max(0, page.next_position - after - len(page.entries))

    async def _sift(self, page: Page) -> Page:
        """The page with every entry the filter leaves out cut to a verified stand-in."""
        chosen = self.sync_filter
        hub_unchosen = bool(chosen.origins) and HUB_ORIGIN not in chosen.origins
        if not (chosen.kinds or chosen.areas or hub_unchosen) or not page.entries:
            return page
        return Page(await asyncio.to_thread(self._cut, page.entries), page.next_position)

    def _cut(self, entries: list[feed_pb2.LogEntry]) -> list[feed_pb2.LogEntry]:
        parsed: dict[int, ParsedEntry] = {}
        for i, item in enumerate(entries):
            if item.HasField("signed") and (p := _parse(item)) is not None:
                parsed[i] = p
        held = self._held_records(parsed.values())
        cut: dict[int, ParsedEntry] = {}
        for i, p in parsed.items():
            key = (p.origin, p.record_id)
            if (
                p.origin == self.own_origin
                or key in held
                or key in self._taken
                or self.sync_filter.takes(p)
            ):
                if not p.record.header.tombstone:
                    self._taken.add(key)
                continue
            cut[i] = p
        if not cut:
            return entries
        # Cut only what verifies: anything else goes on whole, for ingest to refuse.
        order = sorted(cut)
        checks = check_signatures([entries[i] for i in order], self._keys())
        out = list(entries)
        for i, check in zip(order, checks, strict=True):
            if not isinstance(check, CheckedSignature) or check.parsed is None:
                continue
            p = check.parsed  # the verified decoding: its hash is what the chain links
            out[i] = feed_pb2.LogEntry(
                position=entries[i].position,
                redacted=feed_pb2.RedactedEntry(
                    origin=p.origin, sequence=p.sequence, entry_hash=p.hash
                ),
            )
            self.left_out.by_kind[p.record.header.kind] += 1
            self.left_out.by_origin[p.origin] += 1
        return out

    def _held_records(self, parsed: Iterable[ParsedEntry]) -> set[tuple[str, str]]:
        by_origin: dict[str, set[str]] = {}
        for p in parsed:
            by_origin.setdefault(p.origin, set()).add(p.record_id)
        return {
            (origin, record_id)
            for origin, ids in by_origin.items()
            for record_id in self._held(origin, sorted(ids))
        }


def _parse(item: feed_pb2.LogEntry) -> ParsedEntry | None:
    try:
        return parse_signed(item.signed)
    except SamverkaError:
        return None  # malformed: passed on whole, ingest refuses it with the reason


def remember(node_dir: Path, chosen: SyncFilter, *, cursor: int) -> bool:
    """Record ``chosen`` as the filter in force; True when it takes something the last
    one left out and the hub's log must be read from its start again (``cursor`` > 0).

    No file: every sync so far took everything (or none ran).
    """
    path = node_dir / FILTER_FILE
    try:
        previous = SyncFilter.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        previous = SyncFilter()
    except (OSError, ValueError, SamverkaError) as exc:
        log.warning("%s is unreadable (%s): reading the hub's log from its start", path, exc)
        previous = SyncFilter(origins=frozenset({"-"}))  # matches nothing: read again
    wider = cursor > 0 and not chosen.within(previous)
    if chosen != previous or not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(chosen.as_json(), ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)
    return wider


#: The cursor name of the hub's log (samverka.membership.mirror.HUB_PEER).
HUB_CURSOR = "hub"


def reread_if_wider(node: Node) -> bool:
    """Before a sync from the hub: remember the node's ``[sync]`` filter, and when it
    takes something an earlier one left out, set the hub cursor back to 0 so the log is
    read again (held entries are duplicates, stand-ins get filled). Says so in the log."""
    chosen = SyncFilter.from_section(node.config.sync)
    cursor = node.store.get_cursor(HUB_CURSOR)
    if not remember(node.dir, chosen, cursor=cursor):
        return False
    node.store.set_cursor(HUB_CURSOR, 0)
    log.warning(
        "the sync filter now takes what an earlier one left out (%s): reading the hub's "
        "log from its start again, from position %d back to 0",
        chosen.describe(),
        cursor,
        extra={"event": "sync_filter_widened", "position": cursor},
    )
    return True


def feed_client(node: Node, address: str, sync_filter: SyncFilter) -> FeedClient:
    """A FeedService client of ``address`` with the node's certificate: through
    ``sync_filter`` when it narrows anything (entries of other kinds or areas kept as
    stand-ins), else a plain one."""
    from samverka.transport.client import ClientTls, open_channel

    tls = ClientTls.from_config(node.config)
    if not sync_filter.active:
        return FeedClient.connect(address, tls)
    return SelectiveFeed(
        open_channel(address, tls),
        address=address,
        sync_filter=sync_filter,
        own_origin=node.origin,
        keys=node.keyring,
        held=node.store.record_versions,
    )
