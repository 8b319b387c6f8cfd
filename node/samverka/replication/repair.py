"""Repair without the hub (issue 11, point 7): entries the hub withholds, fetched from
the origin's own node or a peer member.

A hub that withholds the tail of a feed hands out a valid, shorter prefix; only a
second source shows it (:mod:`samverka.replication.crosscheck`). When the origin's own
node (at the address the signed member directory lists for it) or a peer member
announces a head beyond what this node holds after a sync, :func:`repair_withheld`
reads the missing entries from that source — FeedService.ReadEntries with an origin
filter, over mutual TLS with this node's certificate — through the same
:func:`~samverka.replication.sync.sync_from_peer` as any sync: every entry verified as
always (signature by a key effective for its origin, hash chain, sequence), stored
with its origin's earlier ones, and nothing taken on the source's word.

Those entries come from no log: the hub's transparency log cannot vouch for them, and
the repair says so (a log line with event ``feed_repaired``, the CLI's output). When
the hub later serves them, they are duplicates proven like any other entry.

Sources, best first: the origin's own node (its head is the feed's truth), then peers
by the head they announce. A source that cannot be reached or serves an entry that
fails verification is passed over for the next; an origin no source could repair is
reported with why.

Each repair reads with a cursor of its own per (origin, source) (``repair/<origin>@<address>``),
so a later repair from the same source reads only what is new there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from samverka.errors import SamverkaError
from samverka.node import Node
from samverka.protocol.kommuner import kommun_name
from samverka.protocol.verify import DEFAULT_MAX_CLOCK_SKEW_MS, KeyRing
from samverka.replication.crosscheck import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    Agreement,
    CrossCheck,
    Source,
    SourceKind,
    check_federation,
)
from samverka.replication.sync import SyncStopped, sync_from_peer
from samverka.store.store import Store
from samverka.transport.client import ClientTls, FeedClient
from samverka.v1 import feed_service_pb2

log = logging.getLogger("samverka.replication.repair")


@dataclass(frozen=True, slots=True)
class RepairPlan:
    """One origin this node is behind on, and who to fetch it from, best first."""

    origin: str
    ours: int
    #: The highest head any source announced.
    theirs: int
    sources: tuple[tuple[Source, int], ...]
    #: Whether the hub's own announcement was ahead of what it served as well.
    hub_announced: bool = False


@dataclass
class Repair:
    """What a repair of one origin did."""

    origin: str
    #: Our head before and after; the head the sources announced.
    before: int
    after: int
    theirs: int
    #: Who the entries came from (None: no source could give them).
    source: Source | None = None
    accepted: int = 0
    stand_ins_filled: int = 0
    #: Why each source passed over failed (label: reason).
    failures: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.after >= self.theirs

    @property
    def fetched(self) -> int:
        return self.accepted + self.stand_ins_filled

    def describe(self) -> str:
        """One line, in Swedish, for the operator."""
        name = kommun_name(self.origin)
        if self.source is not None and self.fetched:
            span = (
                f"#{self.before + 1}..#{self.after}"
                if self.after > self.before + 1
                else (f"#{self.after}")
            )
            text = (
                f"reparerat {_genitive(name)} flöde ({self.origin}) {span}: "
                f"{_poster(self.fetched)} hämtade från {_source_sv(self.source)}, "
                "som hubben inte lämnade ut (verifierade som alltid; de finns inte i hubbens "
                "transparenslogg)"
            )
            if not self.complete:
                text += f"; källorna anger #{self.theirs}, resten saknas fortfarande"
            return text
        why = "; ".join(self.failures) or "ingen källa kunde nås"
        return (
            f"kunde inte reparera {_genitive(name)} flöde ({self.origin}): vi har "
            f"#{self.before}, andra anger #{self.theirs} ({why})"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "name": kommun_name(self.origin),
            "before": self.before,
            "after": self.after,
            "theirs": self.theirs,
            "complete": self.complete,
            "accepted": self.accepted,
            "stand_ins_filled": self.stand_ins_filled,
            "source": None
            if self.source is None
            else {
                "kind": self.source.kind.value,
                "kommunkod": self.source.origin or None,
                "address": self.source.address,
            },
            "failures": self.failures,
            "message": self.describe(),
        }


@dataclass
class RepairReport:
    """A whole node's repair: the cross-check it was planned from and each repair."""

    check: CrossCheck
    repairs: list[Repair]

    @property
    def fetched(self) -> int:
        return sum(r.fetched for r in self.repairs)

    @property
    def incomplete(self) -> list[Repair]:
        return [r for r in self.repairs if not r.complete]


def plan_repairs(check: CrossCheck) -> list[RepairPlan]:
    """The origins a member node or peer holds more of than we do, with those sources
    (the origin's own node first, then peers by head). Pure. Not our own feed (being
    behind on it means a restored node: `samverka sync` takes it back from the hub, and
    publishing must wait), not a fork (no fetch mends two histories), not the hub (it
    is the one that did not hand them out)."""
    plans = []
    for origin in check.origins:
        if origin.own:
            continue
        ahead = [
            (v.source, v.theirs)
            for v in origin.verdicts
            if v.status is Agreement.BEHIND and v.source.kind is not SourceKind.HUB
        ]
        if not ahead:
            continue
        ahead.sort(key=lambda s: (s[0].kind is not SourceKind.ORIGIN, -s[1], s[0].address))
        hub = any(
            v.status is Agreement.BEHIND and v.source.kind is SourceKind.HUB
            for v in origin.verdicts
        )
        plans.append(
            RepairPlan(origin.origin, origin.ours, max(t for _, t in ahead), tuple(ahead), hub)
        )
    return plans


async def repair_origin(
    store: Store,
    keys: KeyRing,
    plan: RepairPlan,
    tls: ClientTls,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
    connect: Callable[[str], FeedClient] | None = None,
) -> Repair:
    """Fetch ``plan.origin``'s entries from its sources in turn until we hold its head.
    ``connect``: the client of a source's address (default a plain FeedClient; a
    selective sync's reads through its filter)."""
    repair = Repair(plan.origin, plan.ours, plan.ours, plan.theirs)
    only = feed_service_pb2.EntryFilter(origins=[plan.origin])

    def plain(address: str) -> FeedClient:
        return FeedClient.connect(address, tls, unary_timeout=timeout, idle_timeout=timeout)

    for source, _theirs in plan.sources:
        try:
            async with (connect or plain)(source.address) as client:
                report = await sync_from_peer(
                    store,
                    keys,
                    client,
                    peer=f"repair/{plan.origin}@{source.address}",
                    entry_filter=only,
                    source="repair",
                    max_clock_skew_ms=max_clock_skew_ms,
                )
        except SyncStopped as stopped:
            # Stored: what verified before the refused entry. Try the next source.
            repair.accepted += stopped.report.accepted
            repair.stand_ins_filled += stopped.report.stand_ins_filled
            repair.failures.append(f"{_source_sv(source)}: {stopped.reason.value}")
        except SamverkaError as exc:
            repair.failures.append(f"{_source_sv(source)}: {exc}")
        else:
            repair.accepted += report.accepted
            repair.stand_ins_filled += report.stand_ins_filled
            if report.accepted or report.stand_ins_filled:
                repair.source = source
        head = await asyncio.to_thread(store.head, plan.origin)
        repair.after = head.sequence if head is not None else 0
        if repair.complete:
            break
    _log(repair, plan)
    return repair


async def repair_withheld(
    node: Node,
    *,
    peers: Sequence[str] = (),
    origins: Sequence[str] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
) -> RepairReport:
    """Cross-check this node's feeds with the hub, each origin's own node and ``peers``
    (:func:`~samverka.replication.crosscheck.check_federation`), then fetch what a node
    or peer holds beyond us from it (:func:`repair_origin`), one origin after another.

    A selective sync's filter (``[sync]``, or the CLI's options in ``node.config``) holds
    here too: only its origins are checked, and entries of other kinds or areas are
    kept as stand-ins, as the sync from the hub keeps them."""
    from samverka.replication.selective import SyncFilter, feed_client

    chosen = SyncFilter.from_section(node.config.sync)
    if chosen.origins and not origins:
        origins = sorted(chosen.origins)
    tls = ClientTls.from_config(node.config)
    connect: Callable[[str], FeedClient] | None = None
    if chosen.active:

        def connect(address: str) -> FeedClient:
            return feed_client(node, address, chosen)

    check = await check_federation(
        node, origins=origins, peers=peers, concurrency=concurrency, timeout=timeout
    )
    plans = plan_repairs(check)
    repairs: list[Repair] = []
    if plans:
        keys = await asyncio.to_thread(node.keyring)
        for plan in plans:
            repairs.append(
                await repair_origin(
                    node.store,
                    keys,
                    plan,
                    tls,
                    timeout=timeout,
                    max_clock_skew_ms=node.config.max_clock_skew_ms,
                    connect=connect,
                )
            )
    return RepairReport(check, repairs)


def _log(repair: Repair, plan: RepairPlan) -> None:
    """One WARNING line either way: this node held less of a feed than a member node
    does (the hub withheld it, or the origin has not pushed it yet)."""
    source = repair.source
    extra = {
        "event": "feed_repaired" if repair.fetched else "feed_repair_failed",
        "origin": repair.origin,
        "sequence": repair.before + 1,
        "count": repair.fetched,
        "source": source.address if source is not None else None,
        "reason": "withheld" if plan.hub_announced else "behind",
    }
    # The hub announcing the entries itself makes it withholding for certain.
    why = "though it announces them" if plan.hub_announced else "withheld, or not pushed yet"
    if repair.fetched:
        log.warning(
            "the hub had not handed out %s#%d..#%d (%s): fetched %d from %s, verified "
            "(they are not in the hub's transparency log)",
            repair.origin,
            repair.before + 1,
            repair.after,
            why,
            repair.fetched,
            source.label if source is not None else "?",
            extra=extra,
        )
    else:
        log.warning(
            "%s is behind (we hold #%d, #%d announced) and no source gave the entries: %s",
            repair.origin,
            repair.before,
            repair.theirs,
            "; ".join(repair.failures) or "none reachable",
            extra=extra,
        )


def _genitive(name: str) -> str:
    """Swedish genitive: "Orsas", "Borås", "Leksands"."""
    return name if name[-1:].lower() in ("s", "x", "z") else f"{name}s"


def _source_sv(source: Source) -> str:
    if source.kind is SourceKind.ORIGIN:
        return f"{_genitive(kommun_name(source.origin))} nod ({source.address})"
    if source.origin:
        return f"{_genitive(kommun_name(source.origin))} nod ({source.address})"
    return f"noden på {source.address}"


def _poster(n: int) -> str:
    return f"{n} post" if n == 1 else f"{n} poster"
