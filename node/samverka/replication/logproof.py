"""Sync proves inclusion (issue 11, point 4): what a node stores from the hub is a leaf of
a checkpoint it accepted.

Before a page of the hub's log is stored, :class:`LogProver` asks the hub for the
inclusion proofs of its entries (one GetInclusionProofs call per page, at most
:data:`~samverka.protocol.inclusion.MAX_LEAVES_PER_CALL` leaves) in the tree of the
node's accepted checkpoint, and checks them (:mod:`samverka.protocol.inclusion`, pure).
The hub answers NOT_FOUND when a leaf is not in a tree of that size: the entry is newer
than the accepted checkpoint (the hub's sequencer and its witnesses trail a push by a
moment). The prover then asks for a newer accepted checkpoint
(:class:`AcceptedCheckpoints`: the hub's newest cosigned checkpoint, accepted by the
node's witness rules) and tries again, polling until ``[witness] proof_wait_seconds``
have passed. Past it, it proves the longest prefix of the page it can (bisecting, a
dozen calls at most) and refuses the first entry after it: ``not_in_log``. A proof
that does not verify is ``bad_proof``. Both refusals carry ``at``, the entry's index
in the page, so the sync stores exactly what was proven before it.

Only what comes from the hub is proven: a peer or an origin's node is no log, and what
they hand over (a repair, :mod:`samverka.replication.repair`) is verified as always
(signatures, chains, keys) and said so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from samverka.errors import SamverkaError, TransportError
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.inclusion import (
    MAX_LEAVES_PER_CALL,
    BadProof,
    CombinedProofMismatch,
    InclusionRefused,
    LeafClaim,
    NotInLog,
    verify_answer,
)
from samverka.protocol.kommuner import is_origin
from samverka.protocol.verify import CheckedSignature
from samverka.protocol.wire import MAX_STORED_INT
from samverka.transport.server.status import PeerError
from samverka.v1 import feed_pb2, hub_service_pb2

log = logging.getLogger("samverka.replication.logproof")

#: How often a sync waiting for a checkpoint that covers its entries asks again (s).
POLL_SECONDS = 0.5

#: GetInclusionProofs as a callable: (tree size, leaf queries, combined) -> the answer
#: (HubClient.get_inclusion_answer). Raises PeerError NOT_FOUND when a leaf is not in
#: the tree of that size.
InclusionCall = Callable[
    [int, Sequence[hub_service_pb2.LeafQuery], bool],
    Awaitable[hub_service_pb2.GetInclusionProofsResponse],
]


class AcceptedCheckpoints(Protocol):
    """The node's accepted checkpoint and a way to a newer one (the witness rules'
    acceptance over :class:`samverka.replication.logstate.LogState`)."""

    def accepted(self) -> Checkpoint | None:
        """The newest checkpoint this node accepted (None: none yet)."""
        ...

    async def newer(self) -> Checkpoint | None:
        """Ask the hub for its newest cosigned checkpoint, accept it if the rules allow
        and return the newest accepted one. A checkpoint refused raises a refusal
        (SamverkaError, not TransportError); the accepted one stays."""
        ...


@dataclass
class ProofStats:
    """What proving cost, for reports and the benchmark."""

    #: Leaves proven.
    proven: int = 0
    #: GetInclusionProofs calls made.
    calls: int = 0
    #: Seconds spent asking and verifying (waiting for a checkpoint included).
    seconds: float = 0.0
    #: Seconds spent waiting for a newer accepted checkpoint.
    waited: float = 0.0
    #: Size of the checkpoint the last proofs were checked against.
    checkpoint_size: int = 0


def entry_claims(
    entries: Sequence[feed_pb2.LogEntry],
    checked: Sequence[CheckedSignature | SamverkaError | None],
) -> list[LeafClaim | None]:
    """The leaf each entry of a page must be in the log as, from what the node holds:
    a signed entry's origin, sequence and chain hash (decoded after its signature
    verified, :func:`~samverka.replication.ingest.check_signatures`), a stand-in's
    origin, sequence and hash. None for an item ingest refuses anyway (malformed, a bad
    signature): its refusal comes at its turn, with its own reason."""
    claims: list[LeafClaim | None] = []
    for item, check in zip(entries, checked, strict=True):
        if item.HasField("redacted"):
            r = item.redacted
            well_formed = (
                is_origin(r.origin)
                and 1 <= r.sequence <= MAX_STORED_INT
                and len(r.entry_hash) == 32
            )
            claims.append(
                LeafClaim.entry(r.origin, r.sequence, bytes(r.entry_hash)) if well_formed else None
            )
        elif isinstance(check, CheckedSignature) and check.parsed is not None:
            p = check.parsed
            claims.append(LeafClaim.entry(p.origin, p.sequence, p.hash))
        else:
            claims.append(None)
    return claims


class LogProver:
    """Proves pages of the hub's log against the node's accepted checkpoint."""

    def __init__(
        self,
        call: InclusionCall,
        checkpoints: AcceptedCheckpoints,
        *,
        wait: float,
        poll: float = POLL_SECONDS,
        hub: str = "the hub",
    ) -> None:
        self.call = call
        self.checkpoints = checkpoints
        self.wait = wait
        self.poll = poll
        self.hub = hub
        self.stats = ProofStats()
        # One page at a time: a sync proves the next page while it stores this one, and
        # two at once would race for (and on) a newer accepted checkpoint.
        self._one_at_a_time = asyncio.Lock()

    async def prove(self, claims: Sequence[LeafClaim | None], *, wait: float | None = None) -> None:
        """Prove every claim (None: skipped) included in an accepted checkpoint, waiting
        up to ``wait`` seconds (default: the prover's) for a newer one where needed.

        Raises :class:`~samverka.protocol.inclusion.BadProof` or
        :class:`~samverka.protocol.inclusion.NotInLog` for the first claim that is
        not proven (``at``: its index in ``claims``); those before it are proven.
        TransportError when the hub cannot be asked.
        """
        todo = [(i, c) for i, c in enumerate(claims) if c is not None]
        if not todo:
            return
        async with self._one_at_a_time:
            started = time.monotonic()
            try:
                await self._prove(todo, self.wait if wait is None else wait)
            finally:
                self.stats.seconds += time.monotonic() - started

    async def prove_directory(self, version: int, digest: bytes) -> None:
        """Prove one member-directory version (its digest) in an accepted checkpoint."""
        await self.prove([LeafClaim.directory(version, digest)])

    async def _prove(self, todo: list[tuple[int, LeafClaim]], wait: float) -> None:
        checkpoint = self.checkpoints.accepted()
        deadline: float | None = None
        refused_checkpoint = ""
        while True:
            if checkpoint is not None:
                answers = await self._answers(checkpoint.size, [c for _, c in todo])
                if answers is not None:
                    await self._verify(checkpoint, todo, answers)
                    return
            # Not every leaf is in the accepted tree: a newer accepted checkpoint may
            # hold them (the log trails a push by the sequencer's round and the
            # witnesses' cosignatures).
            now = time.monotonic()
            if deadline is None:
                deadline = now + wait
            try:
                newer = await self.checkpoints.newer()
            except PeerError as err:
                if err.code is not grpc.StatusCode.NOT_FOUND:
                    raise
                # The log has signed no checkpoint yet (a hub just started): wait.
                refused_checkpoint = f"{err.reason or 'not_found'}: {err}"
                newer = None
            except TransportError:
                raise
            except SamverkaError as exc:
                # Not cosigned by enough witnesses yet, or worse: the rules decide;
                # keep waiting, and name it if the wait runs out.
                refused_checkpoint = f"{getattr(exc, 'reason', 'refused')}: {exc}"
                newer = None
            if newer is not None and (checkpoint is None or newer.size > checkpoint.size):
                checkpoint = newer
                continue
            now = time.monotonic()
            if now >= deadline:
                break
            pause = min(self.poll, deadline - now)
            self.stats.waited += pause
            await asyncio.sleep(pause)
        await self._refuse_first_unproven(checkpoint, todo, refused_checkpoint, wait)

    async def _answers(
        self, size: int, claims: list[LeafClaim], *, combined: bool = True
    ) -> list[hub_service_pb2.GetInclusionProofsResponse] | None:
        """The hub's answers proving ``claims`` in the tree of ``size``, one per call of
        at most MAX_LEAVES_PER_CALL leaves (``combined``: one proof of each call's leaves
        together); None when it says a leaf is not in that tree (NOT_FOUND)."""
        answers = []
        for start in range(0, len(claims), MAX_LEAVES_PER_CALL):
            part = claims[start : start + MAX_LEAVES_PER_CALL]
            self.stats.calls += 1
            try:
                answers.append(await self.call(size, [c.query() for c in part], combined))
            except PeerError as err:
                if err.code is grpc.StatusCode.NOT_FOUND:
                    return None
                raise
        return answers

    async def _verify(
        self,
        checkpoint: Checkpoint,
        todo: list[tuple[int, LeafClaim]],
        answers: list[hub_service_pb2.GetInclusionProofsResponse],
        *,
        count: bool = True,
    ) -> None:
        claims = [c for _, c in todo]
        self.stats.checkpoint_size = checkpoint.size
        try:
            try:
                # A page of 1,000 separate proofs is ~20 ms: a thread, not the event loop.
                await asyncio.to_thread(_verify_answers, checkpoint, claims, answers)
            except CombinedProofMismatch:
                # One of the leaves is not proven, and a combined proof cannot say which:
                # their own proofs do (or prove them all, if only the combined one was bad).
                separate = await self._answers(checkpoint.size, claims, combined=False)
                if separate is None:
                    raise BadProof(
                        "the hub's combined proof does not lead to the root, and it now "
                        "says a leaf it proved is not in the tree",
                        claims[0],
                    ) from None
                await asyncio.to_thread(_verify_answers, checkpoint, claims, separate)
        except InclusionRefused as refusal:
            self.stats.proven += refusal.at  # those before it are proven
            refusal.at = todo[refusal.at][0]
            raise
        if count:
            self.stats.proven += len(todo)

    async def _refuse_first_unproven(
        self,
        checkpoint: Checkpoint | None,
        todo: list[tuple[int, LeafClaim]],
        refused: str,
        wait: float,
    ) -> None:
        """Past the wait: prove the longest prefix the hub can, then refuse the leaf
        after it (not_in_log). Bisects: about log2(len(todo)) calls."""
        why = f"; the hub's newest checkpoint was refused ({refused})" if refused else ""
        if checkpoint is None:
            index, claim = todo[0]
            raise NotInLog(
                f"this node has accepted no checkpoint of the hub's log after waiting "
                f"{wait:g} s, so nothing from the hub can be proven{why}",
                claim,
                at=index,
                waited=wait,
                refused_checkpoint=refused,
            )
        good, bad = 0, len(todo)
        while bad - good > 1:
            mid = (good + bad) // 2
            answers = await self._answers(checkpoint.size, [c for _, c in todo[:mid]])
            if answers is None:
                bad = mid
            else:
                await self._verify(checkpoint, todo[:mid], answers, count=False)
                good = mid
        self.stats.proven += good
        index, claim = todo[bad - 1]
        log.warning(
            "%s cannot prove %s is in its log (accepted checkpoint: %d leaves)",
            self.hub,
            claim.label,
            checkpoint.size,
            extra={"event": "not_in_log", "origin": claim.origin, "sequence": claim.number},
        )
        raise NotInLog(
            f"{self.hub} cannot prove it is in its log: no checkpoint this node accepted "
            f"holds it (the newest, of {checkpoint.size} leaves, after waiting {wait:g} s)"
            f"{why}",
            claim,
            at=index,
            checkpoint_size=checkpoint.size,
            waited=wait,
            refused_checkpoint=refused,
        )


def _verify_answers(
    checkpoint: Checkpoint,
    claims: Sequence[LeafClaim],
    answers: Sequence[hub_service_pb2.GetInclusionProofsResponse],
) -> None:
    """:func:`verify_answer` for each call's part of ``claims``; a refusal's ``at`` is
    its index in ``claims``."""
    for n, answer in enumerate(answers):
        start = n * MAX_LEAVES_PER_CALL
        try:
            verify_answer(checkpoint, claims[start : start + MAX_LEAVES_PER_CALL], answer)
        except InclusionRefused as refusal:
            refusal.at += start
            raise
