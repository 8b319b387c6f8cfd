"""The node as a witness of the hub's transparency log, inside ``samverka node serve``
(issue 11, point 3; docs/OPERATIONS.md "The node as witness").

While the node follows the hub and ``[witness] cosign`` is on, :class:`WitnessAgent`
runs one round whenever this node's store grows (an entry followed from the hub, or
one of its own) and at least every :data:`POLL_SECONDS`:

1. ``GetCheckpoint(for_witness=true)``: the checkpoint the hub gathers cosignatures
   for; checked under the pinned log key and, unless it is the one cosigned last,
   against it (``GetConsistencyProof``; :func:`~samverka.protocol.witness.should_cosign`);
2. cosigned with the kommun's signing key (``samverka-witness/<kommunkod>``) and handed
   in (``AddCosignature``); kept as ``tlog/cosigned``;
3. ``GetCheckpoint()``: the hub's cosigned checkpoint, accepted when it passes the
   quorum (:class:`~samverka.replication.logstate.LogAcceptor`), kept as
   ``tlog/accepted``. Too few cosignatures yet is the normal state for a moment after
   a push, and no failure.

Two checkpoints that cannot both be true (a split view, a forked or rewritten log) are
kept under ``tlog/evidence/``, ``tlog/halted`` is written, the JSON log line has event
``split_view``, ``samverka_witness_events_total{event="split_view"}`` counts it, and the
task stays down (``doctor`` FAILs) cosigning nothing until an operator removes
``tlog/halted``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from samverka.errors import SamverkaError
from samverka.node import earlier_log_keys
from samverka.protocol.checkpoint import CheckpointError, NotSignedByLog
from samverka.protocol.note import CosignatureV1Signer, Ed25519Verifier, NoteError, parse_note
from samverka.protocol.witness import (
    InconsistentCheckpoint,
    StaleCheckpoint,
    TooFewCosignatures,
    cosign,
    open_signed,
    should_cosign,
    witness_signer,
)
from samverka.replication.logstate import (
    LogAcceptor,
    LogState,
    Witnessing,
    witness_observers,
    witnessing_for,
)
from samverka.retry import RetryPolicy, TaskState, cancel, pause, spawn, supervise
from samverka.transport.hubclient import HubClient
from samverka.transport.server.status import PeerError

if TYPE_CHECKING:
    from samverka.node import Node
    from samverka.store.logwatch import LogWatcher

log = logging.getLogger("samverka.membership.witness")

#: Longest wait between two rounds when the store does not grow (s): a push anywhere is
#: cosigned within about this long even when this node does not follow that feed.
POLL_SECONDS = 1.0
#: After the store grew, the hub's sequencer lets a burst land (0.25 s) before it signs:
#: look again this soon so the checkpoint with the new entries is cosigned at once.
SETTLE_SECONDS = 0.3

RETRY = RetryPolicy(0.5, 10.0)
#: How long a hub may go on handing out checkpoints by the log key it rotated away from
#: before the witness counts it as a failure (doctor, the log): the sequencer signs with
#: the new key in its next round, so anything longer is a hub (or an old key) astray.
LOG_KEY_GRACE_SECONDS = 30.0


class LogKeyPending(CheckpointError):
    """The hub hands out a checkpoint by the log key it rotated away from: this node
    has the new one already, the hub's sequencer signs with it next round."""

    reason = "log_key_pending"


def _signed_by(note: bytes, vkey: str) -> bool:
    """Whether ``note`` carries a signature line by the note key ``vkey`` (unverified:
    only to tell which key a refused checkpoint claims)."""
    try:
        verifier = Ed25519Verifier.from_vkey(vkey)
        lines = parse_note(note).unverified
    except NoteError:
        return False
    return any(s.name == verifier.name and s.key_hash == verifier.key_hash for s in lines)


class WitnessHalted(SamverkaError):
    """This node saw a split view and cosigns nothing until ``tlog/halted`` is removed."""

    reason = "witness_halted"


@dataclass
class Round:
    """What one round did (for tests and the log)."""

    #: Size of the checkpoint cosigned this round (0: none).
    cosigned: int = 0
    #: Size of the accepted checkpoint after the round (0: none).
    accepted: int = 0
    #: Why the hub's cosigned checkpoint was not (yet) accepted.
    waiting: str = ""


class Witness:
    """One node's witnessing, over a hub client (I/O here; the rules are pure)."""

    def __init__(self, node: Node, hub: HubClient) -> None:
        self.node = node
        self.config = node.config
        self.hub = hub
        self.state = LogState(node.dir)
        self.acceptor = LogAcceptor.for_node(self.config, hub)
        self._signer: CosignatureV1Signer | None = None
        #: When the hub was first seen handing out its previous log key's checkpoint.
        self._pending_since: float | None = None

    def signer(self) -> CosignatureV1Signer:
        # Made again when the node's signing key changes (a key rotation switches it).
        key = self.node.signing_key
        if self._signer is None or self._signer.public_key != key.public.raw:
            self._signer = witness_signer(self.config.node.kommun, key)
        return self._signer

    async def round(self) -> Round:
        """Cosign the hub's checkpoint in progress (if the rules allow), then accept its
        cosigned checkpoint (if the quorum does)."""
        if self.state.halted:
            raise self.halted_error()
        done = Round()
        try:
            done.cosigned = await self.cosign_round()
        except PeerError as exc:
            if exc.code is not grpc.StatusCode.NOT_FOUND:
                raise
            # A hub whose log has signed nothing yet (a new hub): nothing to witness.
            done.waiting = str(exc)
            return done
        except LogKeyPending as exc:
            now = time.monotonic()
            since = self._pending_since = self._pending_since or now
            if now - since > LOG_KEY_GRACE_SECONDS:
                raise NotSignedByLog(f"{exc} for {now - since:.0f} s") from exc
            done.waiting = str(exc)
            return done
        self._pending_since = None
        try:
            accepted = await self.acceptor.newer()
        except (TooFewCosignatures, StaleCheckpoint) as exc:
            # Others have not cosigned yet, or the hub serves one older than ours (its
            # quorum target moved): no alarm, the next round asks again.
            done.waiting = str(exc)
            held = self.acceptor.accepted()
            accepted = held
        done.accepted = accepted.size if accepted is not None else 0
        return done

    async def cosign_round(self) -> int:
        rules = await asyncio.to_thread(witnessing_for, self.config)
        note = await self.hub.get_checkpoint(for_witness=True)
        try:
            candidate = open_signed(note, rules.log_verifier)
        except NotSignedByLog:
            # The hub and this node switch log keys at moments of their own (`hub
            # rotate-keys --log`). Signed by the key this node followed the hub away
            # from: the hub has not signed with its new one yet, wait (no failure).
            # Otherwise the hub may have rotated since the held directory: fetch it
            # now (as a TUF client refreshes its root on an unknown key) instead of
            # backing off until the next refresh. A key neither names stays refused.
            if await self.signed_by_earlier_key(note):
                raise LogKeyPending(
                    "the hub still hands out a checkpoint signed by its previous log key"
                ) from None
            rules = await self.refreshed_rules()
            candidate = open_signed(note, rules.log_verifier)
        held = self.state.cosigned()
        previous = held.signed(rules.log_verifier) if held is not None else None
        if previous is not None and previous.checkpoint == candidate.checkpoint:
            return 0  # cosigned already; the hub keeps it
        proof = None
        if previous is not None and candidate.size > previous.size:
            proof = await self.acceptor.proof(previous.size, candidate.size)
        try:
            should_cosign(previous, candidate, proof)
        except InconsistentCheckpoint as exc:
            self.split_view(exc)
            raise
        cosigned = cosign(candidate, self.signer())
        try:
            count = await self.hub.add_cosignature(cosigned)
        except PeerError as exc:
            if exc.reason != "not_signed_by_log":
                raise
            # The hub verifies with its log key as it is now: a `hub rotate-keys --log`
            # between the two calls. Waiting is right only if the key did move.
            now = await self.refreshed_rules()
            if now.log_verifier == rules.log_verifier:
                raise
            raise LogKeyPending(
                "the hub's log key changed while this node cosigned its checkpoint"
            ) from exc
        self.state.record_cosigned(cosigned)
        witness_observers("cosigned", "")
        log.debug(
            "cosigned checkpoint %d (%d cosignatures at the hub)",
            candidate.size,
            count,
            extra={"event": "cosigned", "size": candidate.size},
        )
        return candidate.size

    async def signed_by_earlier_key(self, note: bytes) -> bool:
        """Whether ``note`` claims a signature by a log key this node followed the hub's
        rotations away from (unverified: only to tell which side is behind)."""
        earlier = await asyncio.to_thread(earlier_log_keys, self.config.dir)
        return any(_signed_by(note, vkey) for vkey in earlier)

    async def refreshed_rules(self) -> Witnessing:
        """The witnessing rules after fetching the hub's member directory."""
        from samverka.membership.member import refresh_directory

        update = await refresh_directory(self.config)
        if update.changed:
            log.info(
                "the hub's log key is not the one the held directory named: fetched "
                "member directory version %d",
                update.directory.version,
                extra={"event": "directory_refreshed_for_log_key"},
            )
        return await asyncio.to_thread(witnessing_for, self.config)

    def split_view(self, exc: InconsistentCheckpoint) -> None:
        folder = self.state.keep_evidence(exc.evidence)
        log.error(
            "split view: %s; evidence in %s, cosigning stopped",
            exc.evidence.why,
            folder,
            extra={"event": "split_view", "evidence": str(folder), "peer": "hub"},
        )
        witness_observers("split_view", exc.evidence.kind)

    def halted_error(self) -> WitnessHalted:
        halt = self.state.halt()
        why = f"{halt.why} (evidence: {halt.evidence})" if halt and halt.evidence else ""
        return WitnessHalted(
            f"cosigning stopped after a split view{': ' + why if why else ''}",
            hint="send the evidence folder under tlog/evidence/ to the council; remove "
            "tlog/halted to cosign again once the hub's log is sorted out",
        )


class WitnessAgent:
    """A NodeServer resource: the witness rounds, supervised (task ``witness``)."""

    def __init__(
        self,
        node: Node,
        watcher: LogWatcher | None = None,
        *,
        poll: float = POLL_SECONDS,
        policy: RetryPolicy = RETRY,
    ) -> None:
        self.node = node
        self.watcher = watcher
        self.poll = poll
        self.policy = policy
        self.task_state = TaskState("witness")
        self.rounds = 0
        self.last: Round | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = spawn(
            supervise(
                self.task_state,
                self._run,
                policy=self.policy,
                stop=self._stop,
                logger=log,
                expected=(CheckpointError,),
                alarming=(InconsistentCheckpoint, WitnessHalted),
            ),
            name="samverka-witness",
        )

    async def close(self) -> None:
        self._stop.set()
        if self.watcher is not None:
            self.watcher.wake_all()
        task, self._task = self._task, None
        if task is None or task.done():
            return
        try:
            async with asyncio.timeout(5):
                await asyncio.wait([task])
        except TimeoutError:
            await cancel(task)

    async def _run(self) -> None:
        async with HubClient.member(self.node.config) as hub:
            witness = Witness(self.node, hub)
            while not self._stop.is_set():
                if witness.state.halted:
                    # Down (doctor FAILs) until the operator clears it; checked again
                    # each poll, so removing the file is enough.
                    self.task_state.mark_down(str(witness.halted_error()))
                    await self._wait_halted(witness)
                    continue
                self.last = await witness.round()
                self.rounds += 1
                self.task_state.mark_up()
                await self._wait()

    async def _wait_halted(self, witness: Witness) -> None:
        halted_logged = self.task_state.failures > 1
        if not halted_logged:
            log.error(
                "%s",
                witness.halted_error(),
                extra={"event": "witness_halted", "task": self.task_state.name},
            )
        while witness.state.halted and not self._stop.is_set():
            if await pause(self.poll, self._stop):
                return

    async def _wait(self) -> None:
        """Until the store grows (then a moment for the hub to sign) or ``poll`` s."""
        if self.watcher is None:
            await pause(self.poll, self._stop)
            return
        start = time.monotonic()
        grew = await self.watcher.wait_beyond(self.watcher.position, self.poll)
        if grew and not self._stop.is_set():
            await pause(
                min(SETTLE_SECONDS, max(0.0, self.poll - (time.monotonic() - start))), self._stop
            )


def witness_agent(node: Node, watcher: LogWatcher | None) -> WitnessAgent | None:
    """The agent ``node serve`` runs when the node follows the hub and cosigns."""
    config = node.config
    if not (config.hub.follow and config.witness.cosign):
        return None
    return WitnessAgent(node, watcher)
