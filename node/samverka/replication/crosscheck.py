"""Cross-checking feed heads with a second source: what a relay can still hide.

Signatures and hash chains (:mod:`samverka.protocol.verify`) leave a relaying hub no way to
forge, alter or reorder an entry, or to drop one from the middle of a feed, without
the receiver refusing at that very entry (origin and sequence named). What they cannot
show is a feed's *end*: a hub that withholds an origin's newest entries, or stops
relaying an origin at all, hands out a valid, shorter prefix, and nothing in that
prefix is wrong.

A receiver notices only by comparing with a source that holds the feed on its own:
best the origin's own node (its head is the feed's truth), else another member or the
hub's own announcement of its heads. :func:`compare_heads` does that comparison
(pure); :func:`cross_check` asks a peer's FeedService for its heads and compares.

What a mismatch means:

- ``behind``: the source holds entries of the origin after ours. They were withheld
  from us, or have not reached us yet (a push or sync in flight): ask again after a
  sync; a gap that stays is withholding.
- ``fork``: the source holds a different entry at a sequence we hold. Two histories
  of the feed exist: the origin signed both (a restored or copied node folder, or a
  stolen key), since nobody else can sign its entries.

A source *behind* us is not reported: it has not seen the newest entries yet, and
what it lacks cannot hide anything from us.

``samverka crosscheck`` runs it for a whole node: :func:`plan_sources` picks who to
ask (the hub, each origin's own node at the address the signed member directory
lists, nodes named by hand), :func:`check_federation` asks them all at once, bounded
in number and time, and :func:`judge` (pure) turns their answers into one
:class:`OriginCheck` per origin: in agreement, behind, fork, or unreachable.
An origin's node that cannot be reached is normal (many kommuner expose none) and
decides nothing; only the hub or a node named by hand not answering is a transport
problem.

The same calls ask each source's view of the hub's transparency log (GetLogView: the
checkpoint it accepted; the hub's: the one it serves as cosigned), and
:func:`compare_views` holds each against the checkpoint this node accepted: the
same, consistent by the hub's RFC 9162 consistency proof, or a *split view* — the hub
showed members two logs. Then both signed checkpoints are kept under ``tlog/evidence/``
and this node stops cosigning (``tlog/halted``; :mod:`samverka.replication.logstate`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import grpc

from samverka.config import NodeConfig
from samverka.errors import SamverkaError
from samverka.node import Node, hub_address, load_directory, load_key_state, update_key_state
from samverka.protocol.checkpoint import CheckpointError
from samverka.protocol.directory import ACTIVE
from samverka.protocol.kommuner import HUB_ORIGIN, kommun_name
from samverka.protocol.note import Ed25519Verifier, NoteError
from samverka.protocol.verify import FeedHead, FeedState
from samverka.protocol.witness import SignedCheckpoint, conflict, open_signed
from samverka.replication.logstate import (
    LogAcceptor,
    LogState,
    log_verifier_for,
    witness_observers,
    witnessing_for,
)
from samverka.transport.client import ClientTls, FeedClient
from samverka.transport.hubclient import HubClient
from samverka.transport.server.status import PeerError

if TYPE_CHECKING:
    from samverka.protocol.directory import VerifiedDirectory

log = logging.getLogger("samverka.replication.crosscheck")

#: How many sources are asked at once, and how long each may take (seconds), by default.
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 10.0


class MismatchKind(enum.StrEnum):
    BEHIND = "behind"
    FORK = "fork"


@dataclass(frozen=True, slots=True)
class HeadMismatch:
    """One origin whose feed a source holds differently from us."""

    origin: str
    kind: MismatchKind
    #: Our head's sequence (0: we hold none of the feed) and the source's.
    ours: int
    theirs: int
    #: Who was asked (an address or a name, for the message).
    source: str

    @property
    def sequence(self) -> int:
        """The first sequence in question: our first missing one, or the forked one."""
        return self.ours + 1 if self.kind is MismatchKind.BEHIND else self.theirs

    def __str__(self) -> str:
        if self.kind is MismatchKind.BEHIND:
            return (
                f"{self.origin}#{self.sequence}: {self.source} holds the feed up to "
                f"#{self.theirs}, we only up to #{self.ours}: entries "
                f"#{self.sequence}..#{self.theirs} were withheld from us or have not "
                "reached us yet"
            )
        return (
            f"{self.origin}#{self.theirs}: {self.source} holds a different entry at this "
            "sequence than we do: the feed has two histories"
        )


def compare_heads(
    state: FeedState, heads: Iterable[FeedHead], *, source: str
) -> list[HeadMismatch]:
    """What ``source``'s heads say we lack or hold differently, one item per origin."""
    found: list[HeadMismatch] = []
    for theirs in heads:
        ours = state.head(theirs.origin)
        our_sequence = ours.sequence if ours is not None else 0
        if theirs.sequence > our_sequence:
            found.append(
                HeadMismatch(
                    theirs.origin, MismatchKind.BEHIND, our_sequence, theirs.sequence, source
                )
            )
        elif state.entry_hash(theirs.origin, theirs.sequence) != theirs.entry_hash:
            found.append(
                HeadMismatch(
                    theirs.origin, MismatchKind.FORK, our_sequence, theirs.sequence, source
                )
            )
    return found


async def cross_check(
    state: FeedState,
    client: FeedClient,
    *,
    source: str,
    origins: Sequence[str] = (),
) -> list[HeadMismatch]:
    """Ask ``client``'s peer for its heads (of ``origins``, default all) and compare.

    Raises TransportError/PeerError when the peer cannot answer. ``state`` is read in
    a worker thread (a store's lookups are blocking).
    """
    heads = await client.get_heads(list(origins))
    return await asyncio.to_thread(compare_heads, state, heads.heads, source=source)


# -- a whole node's cross-check: who is asked, what they said, what it means ------------------


class SourceKind(enum.StrEnum):
    #: The hub's own announcement of its heads (GetFeedHeads on its member port).
    HUB = "hub"
    #: An origin's own node, at the address the signed member directory lists for it:
    #: its head of its own feed is the feed's truth. Asked for that feed only.
    ORIGIN = "origin"
    #: A node named by hand (``--peer``): its own feed and its mirror of the others.
    PEER = "peer"


class Agreement(enum.StrEnum):
    """What a source's head (or all sources together) says about one origin's feed."""

    AGREE = "agree"
    BEHIND = "behind"
    FORK = "fork"
    UNREACHABLE = "unreachable"


#: Worst first: an origin's status is the worst of its sources' answers.
_SEVERITY = (Agreement.FORK, Agreement.BEHIND, Agreement.AGREE, Agreement.UNREACHABLE)


@dataclass(frozen=True, slots=True)
class Source:
    """Somebody to ask for feed heads."""

    kind: SourceKind
    address: str
    #: How messages name it ("the hub", "Mora's node").
    label: str
    #: ORIGIN: the kommun whose node it is.
    origin: str = ""

    def speaks_for(self, origin: str) -> bool:
        return self.kind is not SourceKind.ORIGIN or self.origin == origin


@dataclass(frozen=True, slots=True)
class Answer:
    """What one source said: its heads, or (``heads`` None) why it could not be asked."""

    source: Source
    heads: tuple[FeedHead, ...] | None
    error: str = ""
    #: The source's view of the hub's log (GetLogView): the checkpoint it accepted
    #: (the hub: the one it serves as cosigned); empty when it holds or serves none.
    log_view: bytes = b""
    #: The key objections the source knows (serialized SignedKeyObjection): this node
    #: honours those that hold (samverka.protocol.keybinding), whoever relayed them.
    objections: tuple[bytes, ...] = ()

    @property
    def reachable(self) -> bool:
        return self.heads is not None


@dataclass(frozen=True, slots=True)
class SourceVerdict:
    """One source's answer about one origin."""

    source: Source
    status: Agreement
    #: The source's head sequence (0: it holds none, or did not answer).
    theirs: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class OriginCheck:
    """One origin's feed as we hold it, against every source that spoke for it."""

    origin: str
    #: Our head's sequence (0: we hold none of the feed).
    ours: int
    verdicts: tuple[SourceVerdict, ...]
    mismatches: tuple[HeadMismatch, ...]
    #: Whether this is the checking node's own feed.
    own: bool = False

    @property
    def name(self) -> str:
        return kommun_name(self.origin)

    @property
    def status(self) -> Agreement:
        found = {v.status for v in self.verdicts}
        return next((s for s in _SEVERITY if s in found), Agreement.UNREACHABLE)

    @property
    def confirmed_by_origin(self) -> bool:
        """Whether the origin's own node (or, for our own feed, we) vouched for the head."""
        return self.own or any(
            v.source.kind is SourceKind.ORIGIN and v.status is Agreement.AGREE
            for v in self.verdicts
        )

    def describe(self) -> str:
        """One line: the head and who agrees, or each mismatch."""
        if self.mismatches:
            return "; ".join(str(m) for m in self.mismatches)
        agreeing = [v.source.label for v in self.verdicts if v.status is Agreement.AGREE]
        held = f"#{self.ours}" if self.ours else "none of the feed"
        text = f"we hold {held}"
        if agreeing:
            text += f", in agreement with {_and(agreeing)}"
        if self.own:
            text += " (our own feed)"
            behind_us = [
                f"{v.source.label} holds #{v.theirs}"
                for v in self.verdicts
                if v.status is Agreement.AGREE and v.theirs < self.ours
            ]
            if behind_us:
                text += f"; {_and(behind_us)}: not pushed yet"
        missing = [
            f"{v.source.label} ({v.source.address}) not reachable: {v.error}"
            for v in self.verdicts
            if v.status is Agreement.UNREACHABLE
        ]
        if missing:
            text += "; " + "; ".join(missing)
        return text

    def hint(self) -> str:
        """What to do about a mismatch (empty when there is none)."""
        forks = [m for m in self.mismatches if m.kind is MismatchKind.FORK]
        behind = [m for m in self.mismatches if m.kind is MismatchKind.BEHIND]
        if forks and self.own:
            return (
                "our own feed has two histories: do not publish from this node until it is "
                "cleared up; another copy of this node folder (an old backup, a clone) "
                "published, or the signing key is in other hands; tell the council "
                "(AI-rådet), see docs/OPERATIONS.md, 'Restoring a node'"
            )
        if forks:
            return (
                f"two histories of {self.name}'s feed exist, and only its signing key can "
                f"have signed both: tell {self.name}'s operators (a node folder restored or "
                "copied and published from twice, or a stolen key) and the council (AI-rådet)"
            )
        if not behind:
            return ""
        if self.own:
            return (
                "the source holds more of our own feed than this node (restored from an older "
                "backup?): do not publish; run `samverka sync` to take the entries back"
            )
        first = min(m.sequence for m in behind)
        last = max(m.theirs for m in behind)
        entries = f"#{first}..#{last}" if first < last else f"#{first}"
        if any(
            v.source.kind is SourceKind.HUB and v.status is Agreement.BEHIND for v in self.verdicts
        ):
            return (
                f"the hub announces {entries}: run `samverka sync`; if this node is still "
                "behind afterwards, the hub announces entries it does not hand out "
                "(withholding): tell the council (AI-rådet)"
            )
        return (
            f"the hub does not show {entries}: {self.name} may not have pushed them yet; "
            "run `samverka sync` and `samverka crosscheck` again later; if it stays, the hub "
            f"withholds them: tell the council (AI-rådet) and {self.name}"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "name": self.name,
            "status": self.status.value,
            "ours": self.ours,
            "own": self.own,
            "confirmed_by_origin": self.confirmed_by_origin,
            "sources": [
                {
                    "kind": v.source.kind.value,
                    "source": v.source.label,
                    "address": v.source.address,
                    "status": v.status.value,
                    "theirs": v.theirs,
                    "error": v.error or None,
                }
                for v in self.verdicts
            ],
            "mismatches": [
                {
                    "kind": m.kind.value,
                    "source": m.source,
                    "ours": m.ours,
                    "theirs": m.theirs,
                    "sequence": m.sequence,
                    "message": str(m),
                }
                for m in self.mismatches
            ],
            "hint": self.hint() or None,
        }


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """Every origin's check, and every source's answer."""

    origins: tuple[OriginCheck, ...]
    answers: tuple[Answer, ...]
    #: Each source's view of the hub's log against the checkpoint this node accepted.
    views: tuple[ViewCheck, ...] = ()

    @property
    def split_views(self) -> list[ViewCheck]:
        """Sources whose accepted checkpoint cannot be true beside ours (evidence kept)."""
        return [v for v in self.views if v.status is ViewStatus.SPLIT_VIEW]

    @property
    def mismatched(self) -> list[OriginCheck]:
        return [o for o in self.origins if o.mismatches]

    @property
    def failed_sources(self) -> list[Answer]:
        """The hub or nodes named by hand that did not answer: a transport problem."""
        return [
            a for a in self.answers if not a.reachable and a.source.kind is not SourceKind.ORIGIN
        ]

    @property
    def unreachable_nodes(self) -> list[Answer]:
        """Origins' own nodes that did not answer (normal: many kommuner expose none)."""
        return [a for a in self.answers if not a.reachable and a.source.kind is SourceKind.ORIGIN]

    def count(self, status: Agreement) -> int:
        return sum(1 for o in self.origins if o.status is status)


_HUB_LABEL = "the hub"


class ViewStatus(enum.StrEnum):
    #: The same checkpoint as ours.
    AGREE = "agree"
    #: Another size, and the hub's consistency proof shows one extends the other.
    CONSISTENT = "consistent"
    #: Cannot both be true: the two signed checkpoints are kept as evidence.
    SPLIT_VIEW = "split_view"
    #: Not compared: the source holds none, its note is not signed by the log key (it
    #: proves nothing), or the hub could not be asked for a proof.
    UNCHECKED = "unchecked"


@dataclass(frozen=True, slots=True)
class ViewCheck:
    """One source's view of the hub's log against ours."""

    source: Source
    status: ViewStatus
    #: The source's checkpoint size (0: none or unreadable).
    size: int = 0
    detail: str = ""
    #: SPLIT_VIEW: the evidence folder.
    evidence: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source.label,
            "address": self.source.address,
            "status": self.status.value,
            "size": self.size,
            "detail": self.detail or None,
            "evidence": self.evidence or None,
        }


async def compare_views(config: NodeConfig, answers: Sequence[Answer]) -> tuple[ViewCheck, ...]:
    """Compare each source's view of the hub's log with the checkpoint this node
    accepted: the same, consistent (by the hub's RFC 9162 proof between the two), or a
    split view — then both signed notes are kept under ``tlog/evidence/`` and this node
    stops cosigning (``tlog/halted``). A note not signed by the log key proves nothing
    and is only reported."""
    views = [a for a in answers if a.log_view]
    if not views:
        return ()
    state = LogState(config.dir)
    try:
        held = await asyncio.to_thread(state.accepted)
        log_key = await asyncio.to_thread(log_verifier_for, config)
        ours = held.signed(log_key) if held is not None else None
    except SamverkaError as err:
        return tuple(ViewCheck(a.source, ViewStatus.UNCHECKED, 0, str(err)) for a in views)
    if ours is None:
        why = "this node has accepted no checkpoint of the hub's log yet"
        return tuple(ViewCheck(a.source, ViewStatus.UNCHECKED, 0, why) for a in views)
    checks: list[ViewCheck] = []
    async with HubClient.member(config) as hub:
        acceptor = LogAcceptor(
            state, lambda: witnessing_for(config), hub.get_checkpoint, hub.get_consistency_proof
        )
        for answer in views:
            checks.append(await _compare_view(state, acceptor, ours, answer))
    return tuple(checks)


async def _compare_view(
    state: LogState, acceptor: LogAcceptor, ours: SignedCheckpoint, answer: Answer
) -> ViewCheck:
    source = answer.source
    try:
        theirs = open_signed(answer.log_view, Ed25519Verifier.from_vkey(ours.log_key))
    except (CheckpointError, NoteError) as err:
        return ViewCheck(source, ViewStatus.UNCHECKED, 0, f"not a checkpoint of the log: {err}")
    if theirs.checkpoint == ours.checkpoint:
        return ViewCheck(source, ViewStatus.AGREE, theirs.size)
    proof = None
    if theirs.size != ours.size:
        low, high = sorted((theirs.size, ours.size))
        try:
            proof = await acceptor.proof(low, high)
        except SamverkaError as err:
            return ViewCheck(
                source, ViewStatus.UNCHECKED, theirs.size, f"no consistency proof: {err}"
            )
    evidence = conflict(ours, theirs, proof, source=source.label)
    if evidence is None:
        return ViewCheck(source, ViewStatus.CONSISTENT, theirs.size)
    folder = await asyncio.to_thread(state.keep_evidence, evidence)
    log.error(
        "split view: %s holds a checkpoint of the hub's log that cannot be true beside "
        "ours: %s; evidence in %s, cosigning stopped",
        source.label,
        evidence.why,
        folder,
        extra={"event": "split_view", "evidence": str(folder), "peer": source.address},
    )
    witness_observers("split_view", evidence.kind)
    return ViewCheck(source, ViewStatus.SPLIT_VIEW, theirs.size, evidence.why, str(folder))


def judge(
    state: FeedState,
    answers: Iterable[Answer],
    *,
    own: str,
    held: Iterable[str] = (),
    scope: Sequence[str] = (),
) -> CrossCheck:
    """Compare every answer with ``state`` (:func:`compare_heads`), one check per origin.

    The origins are ``scope`` when given, else those we hold (``held``), those any
    source announced and those whose own node was asked. ``state`` is read (a
    store's lookups are blocking: call it in a worker thread).
    """
    answers = tuple(answers)
    wanted = set(scope)
    # Keyed by (origin, source address): addresses are unique, labels need not be.
    found: dict[tuple[str, str], HeadMismatch] = {}
    theirs: dict[tuple[str, str], int] = {}
    for answer in answers:
        if answer.heads is None:
            continue
        relevant = [
            h
            for h in answer.heads
            if answer.source.speaks_for(h.origin) and (not wanted or h.origin in wanted)
        ]
        address = answer.source.address
        for announced in relevant:
            theirs[(announced.origin, address)] = announced.sequence
        for differs in compare_heads(state, relevant, source=answer.source.label):
            found[(differs.origin, address)] = differs
    if wanted:
        origins = sorted(wanted)
    else:
        origins = sorted(
            {*held}
            | {origin for origin, _ in theirs}
            | {a.source.origin for a in answers if a.source.kind is SourceKind.ORIGIN}
        )
    checks = []
    for origin in origins:
        head = state.head(origin)
        verdicts, mismatches = [], []
        for answer in answers:
            address = answer.source.address
            if not answer.source.speaks_for(origin):
                continue
            if answer.heads is None:
                # The hub or a peer not answering is reported once, not per origin.
                if answer.source.kind is SourceKind.ORIGIN:
                    verdicts.append(
                        SourceVerdict(answer.source, Agreement.UNREACHABLE, 0, answer.error)
                    )
                continue
            mismatch = found.get((origin, address))
            if mismatch is not None:
                mismatches.append(mismatch)
            status = Agreement(mismatch.kind.value) if mismatch else Agreement.AGREE
            verdicts.append(SourceVerdict(answer.source, status, theirs.get((origin, address), 0)))
        checks.append(
            OriginCheck(
                origin,
                head.sequence if head is not None else 0,
                tuple(verdicts),
                tuple(mismatches),
                own=origin == own,
            )
        )
    return CrossCheck(tuple(checks), answers)


def plan_sources(
    directory: VerifiedDirectory | None,
    *,
    hub_address: str,
    own: str,
    scope: Sequence[str] = (),
    peers: Sequence[str] = (),
) -> list[Source]:
    """Who to ask: the hub, every active member's node the directory gives an address
    for (not ours, not the hub's: it is asked as the hub), and ``peers``."""
    sources = [Source(SourceKind.HUB, hub_address, _HUB_LABEL)] if hub_address else []
    taken = {hub_address}
    members = directory.directory.members if directory is not None else ()
    for member in sorted(members, key=lambda m: m.kommunkod):
        code, address = member.kommunkod, member.address.strip()
        if (
            not address
            or member.status != ACTIVE
            or code in (own, HUB_ORIGIN)
            or (scope and code not in scope)
            or address in taken
        ):
            continue
        taken.add(address)
        sources.append(Source(SourceKind.ORIGIN, address, f"{kommun_name(code)}'s node", code))
    for address in dict.fromkeys(peers):
        if address not in taken:
            taken.add(address)
            sources.append(Source(SourceKind.PEER, address, f"the node at {address}"))
    return sources


async def ask(
    source: Source, tls: ClientTls, *, origins: Sequence[str] = (), timeout: float
) -> Answer:
    """``source``'s heads (of ``origins``, default all; an origin's node: of its own feed),
    within ``timeout`` seconds. Never raises for the peer's failure: the Answer says it."""
    wanted = [source.origin] if source.kind is SourceKind.ORIGIN else list(origins)
    try:
        async with (
            asyncio.timeout(timeout),
            FeedClient.connect(source.address, tls, unary_timeout=timeout) as client,
        ):
            if source.kind is not SourceKind.HUB:
                # Who answers: a peer is named by its kommun; the address the directory
                # lists for an origin must lead to that origin's node, or its head would
                # be a mirror's and not the feed's truth.
                info = await client.get_node_info()
                if source.kind is SourceKind.PEER:
                    label = f"{kommun_name(info.kommunkod)}'s node ({source.address})"
                    source = Source(source.kind, source.address, label, info.kommunkod)
                elif info.kommunkod != source.origin:
                    return Answer(
                        source,
                        None,
                        f"answers as {info.kommunkod} ({kommun_name(info.kommunkod)}), not "
                        f"{source.origin}: the directory's address for it is out of date",
                    )
            heads = await client.get_heads(wanted)
            view, objections = await _log_view(client)
    except TimeoutError:
        return Answer(source, None, f"no answer within {timeout:g} s")
    except SamverkaError as err:
        return Answer(source, None, str(err))
    return Answer(source, tuple(heads.heads), log_view=view, objections=objections)


#: Objections taken from one source's GetLogView (each a few hundred bytes; a kommun
#: objects to a handful of keys at most).
MAX_OBJECTIONS_PER_SOURCE = 1000


async def _log_view(client: FeedClient) -> tuple[bytes, tuple[bytes, ...]]:
    """The peer's accepted checkpoint and the key objections it knows; empty from a peer
    that serves no GetLogView (an older version) or holds none."""
    try:
        reply = await client.get_log_view()
    except PeerError as err:
        if err.code is grpc.StatusCode.UNIMPLEMENTED:
            return b"", ()
        raise
    objections = tuple(
        o.SerializeToString(deterministic=True)
        for o in reply.objections[:MAX_OBJECTIONS_PER_SOURCE]
    )
    return bytes(reply.checkpoint), objections


async def check_federation(
    node: Node,
    *,
    origins: Sequence[str] = (),
    peers: Sequence[str] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
) -> CrossCheck:
    """Compare the heads this node holds with the hub's, each origin's own node's (where
    the member directory held lists an address) and ``peers``', ``concurrency`` at a
    time, each within ``timeout`` seconds. Reads the directory this node holds (kept
    current by sync) and changes nothing but this: the key objections the sources know
    (GetLogView) are honoured from now on where they hold (``tlog/keys.json``), so a
    kommun's objection reaches this node even when the hub does not list it.

    Raises ConfigError when the node is not enrolled.
    """
    config = node.config
    address = hub_address(config)
    directory = await asyncio.to_thread(load_directory, config)
    sources = plan_sources(
        directory, hub_address=address, own=node.origin, scope=origins, peers=peers
    )
    tls = ClientTls.from_config(config)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def bounded(source: Source) -> Answer:
        async with gate:
            return await ask(source, tls, origins=origins, timeout=timeout)

    answers = await asyncio.gather(*(bounded(s) for s in sources))

    def compare() -> CrossCheck:
        # Our heads are read after the answers came: a sync running meanwhile can only
        # move us forward, never make us look behind.
        held = [h.origin for h in node.store.heads()]
        return judge(node.store, answers, own=node.origin, held=held, scope=origins)

    result = await asyncio.to_thread(compare)
    views = await compare_views(config, answers)
    learnt = [o for a in answers for o in a.objections]
    if learnt:
        await asyncio.to_thread(honour_objections, config, learnt)
    return replace(result, views=views)


def honour_objections(config: NodeConfig, objections: Sequence[bytes]) -> list[str]:
    """Take objections learnt from peers into the node's key state; the keys (as
    ``kommunkod:key id``) they newly refuse, each said in a log line."""
    before = {(b.kommunkod, b.key_id) for b in load_key_state(config).refused()}
    after = update_key_state(config, objections=objections).refused()
    refused = [f"{b.kommunkod}:{b.key_id}" for b in after if (b.kommunkod, b.key_id) not in before]
    for key in refused:
        log.warning(
            "key %s refused from now on: its kommun objected (learnt from a peer)",
            key,
            extra={"event": "objection_learnt", "origin": key.split(":")[0]},
        )
    return refused


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
