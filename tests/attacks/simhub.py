"""A misbehaving hub in memory (``import simhub``), in the spirit of python-tuf's
``tests/repository_simulator.py``.

:class:`RogueLog` is a copy of a real store's log (every entry as the hub stored it)
in which one origin's entries are altered, dropped, reordered, withheld or hidden
behind a stand-in, or a redacted stand-in lies about its hash. :class:`SimHub` serves
it over real gRPC with mutual TLS and the real hub's own certificate and keys (a hub
gone rogue has them all): FeedService (GetNodeInfo, GetFeedHeads, ReadEntries) and HubService
(GetDirectory, with any signed directory, e.g. an expired one). A real node's sync
code reads from it exactly as from the hub, so each test shows what the receiving
node detects, over the network, in milliseconds.

It also keeps a transparency log, signed with the real hub's log key
(``keys/log.key``): an RFC 9162 tree (:mod:`samverka.protocol.merkle`) whose leaves are
the served directory's version and every entry it serves, as it serves them (an altered
entry is logged altered: the hub signs what it likes), and serves GetCheckpoint,
GetInclusionProofs and GetConsistencyProof from it. So the node's proofs pass and each
test shows the misbehaviour it is about, except where the log itself lies:
:meth:`RogueLog.unlogged` (entries served but left out of the log: ``not_in_log``) and
:meth:`RogueLog.misproven` (a proof whose path is forged: ``bad_proof``). ``witnesses``
cosign its checkpoints (signers a test holds), for nodes whose quorum is above 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
from samverka.protocol import merkle
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.directory import directory_digest
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.logleaf import directory_leaf, entry_leaf
from samverka.protocol.note import Ed25519Signer, Signer, sign_note
from samverka.protocol.signing import PublicKey, entry_hash
from samverka.store.store import Store
from samverka.v1 import (
    directory_pb2,
    feed_pb2,
    feed_service_pb2,
    feed_service_pb2_grpc,
    hub_service_pb2,
    hub_service_pb2_grpc,
)

Context = Any


def _origin(item: feed_pb2.LogEntry) -> str:
    if item.HasField("redacted"):
        return item.redacted.origin
    return feed_pb2.Entry.FromString(item.signed.entry).origin


def _sequence(item: feed_pb2.LogEntry) -> int:
    if item.HasField("redacted"):
        return item.redacted.sequence
    return feed_pb2.Entry.FromString(item.signed.entry).sequence


def _hash(item: feed_pb2.LogEntry) -> bytes:
    if item.HasField("redacted"):
        return bytes(item.redacted.entry_hash)
    return entry_hash(item.signed.entry)


@dataclass(frozen=True)
class RogueLog:
    """The log a misbehaving hub serves. Positions stay increasing; contents may lie."""

    entries: tuple[feed_pb2.LogEntry, ...]
    #: The heads the hub announces (GetFeedHeads); None: those of what it serves.
    announced: tuple[feed_pb2.FeedHead, ...] | None = None
    #: (origin, sequence) served but not in the transparency log.
    not_logged: frozenset[tuple[str, int]] = frozenset()
    #: (origin, sequence) whose inclusion proof is forged (one hash flipped).
    forged_proofs: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def of(cls, store: Store) -> RogueLog:
        """Everything the store's log holds, as a member reads it (drafts as stand-ins)."""
        page = store.read_log(0, 1_000_000, member=True)
        return cls(tuple(page.entries))

    # -- what the hub says ------------------------------------------------------------
    @property
    def end(self) -> int:
        return self.entries[-1].position if self.entries else 0

    def heads(self) -> list[feed_pb2.FeedHead]:
        if self.announced is not None:
            return list(self.announced)
        newest: dict[str, feed_pb2.LogEntry] = {}
        for item in self.entries:
            newest[_origin(item)] = item
        return [
            feed_pb2.FeedHead(origin=o, sequence=_sequence(i), entry_hash=_hash(i))
            for o, i in sorted(newest.items())
        ]

    def index(self, origin: str, sequence: int) -> int:
        for i, item in enumerate(self.entries):
            if _origin(item) == origin and _sequence(item) == sequence:
                return i
        raise KeyError(f"{origin}#{sequence} is not in the log")

    # -- misbehaviours ------------------------------------------------------------------
    def altered(self, origin: str, sequence: int) -> RogueLog:
        """One byte of the signed entry bytes changed (the hub edits a record)."""
        i = self.index(origin, sequence)
        item = feed_pb2.LogEntry()
        item.CopyFrom(self.entries[i])
        raw = bytearray(item.signed.entry)
        raw[-1] ^= 0x20
        item.signed.entry = bytes(raw)
        return self._with(i, item)

    def lying_stand_in(self, origin: str, sequence: int) -> RogueLog:
        """The redacted stand-in at ``sequence`` carries a hash of the hub's choosing."""
        i = self.index(origin, sequence)
        item = feed_pb2.LogEntry()
        item.CopyFrom(self.entries[i])
        assert item.HasField("redacted"), f"{origin}#{sequence} is not a stand-in"
        item.redacted.entry_hash = bytes(32)
        return self._with(i, item)

    def hidden(self, origin: str, sequence: int) -> RogueLog:
        """A visible entry served as a redacted stand-in with its true hash (the hub
        pretends it is a draft): the chain still verifies."""
        i = self.index(origin, sequence)
        original = self.entries[i]
        assert original.HasField("signed"), f"{origin}#{sequence} is already a stand-in"
        item = feed_pb2.LogEntry(
            position=original.position,
            redacted=feed_pb2.RedactedEntry(
                origin=origin, sequence=sequence, entry_hash=entry_hash(original.signed.entry)
            ),
        )
        return self._with(i, item)

    def dropped(self, origin: str, sequence: int) -> RogueLog:
        """The entry is gone from the log (and from every read of the origin)."""
        i = self.index(origin, sequence)
        return replace(self, entries=self.entries[:i] + self.entries[i + 1 :])

    def reordered(self, origin: str, sequence: int) -> RogueLog:
        """``sequence`` and ``sequence + 1`` trade places (positions still increase)."""
        i, j = self.index(origin, sequence), self.index(origin, sequence + 1)
        first, second = feed_pb2.LogEntry(), feed_pb2.LogEntry()
        first.CopyFrom(self.entries[j])
        first.position = self.entries[i].position
        second.CopyFrom(self.entries[i])
        second.position = self.entries[j].position
        entries = list(self.entries)
        entries[i], entries[j] = first, second
        return replace(self, entries=tuple(entries))

    def withheld(self, origin: str, from_sequence: int, *, admit: bool = False) -> RogueLog:
        """``origin``'s entries from ``from_sequence`` on are never served.

        The heads the hub announces match what it serves (a consistent lie), unless
        ``admit``: then it still announces the true heads it holds.
        """
        kept = tuple(
            item
            for item in self.entries
            if not (_origin(item) == origin and _sequence(item) >= from_sequence)
        )
        announced = tuple(self.heads()) if admit else None
        return RogueLog(kept, announced, self.not_logged, self.forged_proofs)

    def unlogged(self, origin: str, from_sequence: int) -> RogueLog:
        """``origin``'s entries from ``from_sequence`` on are served but never logged
        (the hub hides them from the witnesses, or shows this reader another history)."""
        hidden = {
            (_origin(item), _sequence(item))
            for item in self.entries
            if _origin(item) == origin and _sequence(item) >= from_sequence
        }
        return replace(self, not_logged=self.not_logged | hidden)

    def misproven(self, origin: str, sequence: int) -> RogueLog:
        """The inclusion proof of ``origin#sequence`` has a forged hash."""
        self.index(origin, sequence)
        return replace(self, forged_proofs=self.forged_proofs | {(origin, sequence)})

    def _with(self, index: int, item: feed_pb2.LogEntry) -> RogueLog:
        entries = list(self.entries)
        entries[index] = item
        return replace(self, entries=tuple(entries))


class TransparencyLog:
    """The simulated hub's Merkle tree: the first logged directory version's leaf, one
    leaf per entry it serves and logs, in log order, then the later directory versions
    (as a hub logs versions issued since); checkpoints signed with the hub's log key."""

    def __init__(
        self,
        log: RogueLog,
        directories: Sequence[directory_pb2.SignedDirectory],
        signer: Ed25519Signer,
        witnesses: Sequence[Signer] = (),
    ) -> None:
        self.signer = signer
        self.witnesses = list(witnesses)
        self.leaves: list[bytes] = []
        #: (origin, sequence) or ("", version) -> leaf index.
        self.index: dict[tuple[str, int], int] = {}
        self._log_directories(directories[:1])
        for item in log.entries:
            origin, sequence = _origin(item), _sequence(item)
            if (origin, sequence) in log.not_logged:
                continue
            self.index[(origin, sequence)] = len(self.leaves)
            self.leaves.append(entry_leaf(origin, sequence, _hash(item)))
        self._log_directories(directories[1:])
        self.forged = {self.index[k] for k in log.forged_proofs if k in self.index}
        self.stored: list[bytes] = []
        for n, leaf in enumerate(self.leaves):
            self.stored += merkle.stored_hashes(n, leaf, self.read)

    def _log_directories(self, directories: Sequence[directory_pb2.SignedDirectory]) -> None:
        for signed in directories:
            version = directory_pb2.Directory.FromString(signed.directory).version
            self.index[("", version)] = len(self.leaves)
            self.leaves.append(directory_leaf(version, directory_digest(signed.directory)))

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.stored[i] for i in indexes]

    @property
    def size(self) -> int:
        return len(self.leaves)

    def checkpoint(self) -> bytes:
        cp = Checkpoint(self.signer.name, self.size, merkle.tree_hash(self.size, self.read))
        return sign_note(cp.to_text(), self.signer, *self.witnesses)

    def combined(
        self, tree_size: int, proofs: list[hub_service_pb2.InclusionProof]
    ) -> hub_service_pb2.GetInclusionProofsResponse:
        """The answer to a combined request for the leaves of ``proofs``: their indexes
        and bytes, and one proof of them all (forged when one of them is)."""
        indexes = sorted({p.leaf_index for p in proofs})
        hashes = merkle.multi_inclusion_proof(tree_size, indexes, self.read)
        if self.forged.intersection(indexes) and hashes:
            hashes[0] = bytes([hashes[0][0] ^ 1]) + hashes[0][1:]
        return hub_service_pb2.GetInclusionProofsResponse(
            proofs=[
                hub_service_pb2.InclusionProof(leaf_index=p.leaf_index, leaf=p.leaf) for p in proofs
            ],
            combined=hashes,
        )

    def proof(self, tree_size: int, index: int) -> hub_service_pb2.InclusionProof:
        hashes = merkle.inclusion_proof(tree_size, index, self.read)
        if index in self.forged and hashes:
            hashes[0] = bytes([hashes[0][0] ^ 1]) + hashes[0][1:]
        return hub_service_pb2.InclusionProof(
            leaf_index=index, leaf=self.leaves[index], hashes=hashes
        )


@dataclass
class SimHub:
    """Serves a :class:`RogueLog` (and a directory) as the hub at ``address``."""

    hub_dir: Path
    log: RogueLog
    directory: directory_pb2.SignedDirectory
    address: str = ""
    calls: list[str] = field(default_factory=list)
    #: Cosigners of its checkpoints (e.g. CosignatureV1Signers of members' keys).
    witnesses: Sequence[Signer] = ()
    #: The directory versions in its log (the first before the entries, the others
    #: after them); None: the directory it serves.
    logged_directories: Sequence[directory_pb2.SignedDirectory] | None = None
    #: Answer GetInclusionProofs with separate proofs even when asked for a combined
    #: one, as a hub that predates ``combined`` does.
    separate_proofs_only: bool = False
    #: GetInclusionProofs calls: whether each asked for a combined proof.
    combined_asked: list[bool] = field(default_factory=list)
    _server: grpc.aio.Server | None = None
    _tlog: TransparencyLog | None = None
    _tlog_of: tuple[object, tuple[bytes, ...]] = (None, ())

    @property
    def tlog(self) -> TransparencyLog:
        """The log of what it serves now (rebuilt when ``log`` or ``directory`` change)."""
        directories = (
            (self.directory,) if self.logged_directories is None else self.logged_directories
        )
        key = (self.log, tuple(d.SerializeToString() for d in directories))
        if self._tlog is None or self._tlog_of[0] is not key[0] or self._tlog_of[1] != key[1]:
            signer = Ed25519Signer.from_skey(
                (self.hub_dir / "keys" / "log.key").read_text(encoding="ascii").strip()
            )
            self._tlog = TransparencyLog(self.log, directories, signer, self.witnesses)
            self._tlog_of = key
        return self._tlog

    async def start(self) -> str:
        tls = self.hub_dir / "tls"
        server = grpc.aio.server()
        feed_service_pb2_grpc.add_FeedServiceServicer_to_server(_Feed(self), server)
        hub_service_pb2_grpc.add_HubServiceServicer_to_server(_Directory(self), server)
        credentials = grpc.ssl_server_credentials(
            [((tls / "node.key").read_bytes(), (tls / "node.pem").read_bytes())],
            root_certificates=(tls / "ca.pem").read_bytes(),
            require_client_auth=True,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        await server.start()
        self._server = server
        self.address = f"127.0.0.1:{port}"
        return self.address

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)

    async def __aenter__(self) -> SimHub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class _Feed(feed_service_pb2_grpc.FeedServiceServicer):
    def __init__(self, sim: SimHub) -> None:
        self.sim = sim

    async def GetNodeInfo(
        self, request: feed_service_pb2.GetNodeInfoRequest, context: Context
    ) -> feed_service_pb2.GetNodeInfoResponse:
        self.sim.calls.append("GetNodeInfo")
        key = PublicKey.from_pem((self.sim.hub_dir / "keys" / "signing.pub").read_bytes())
        return feed_service_pb2.GetNodeInfoResponse(
            kommunkod=HUB_ORIGIN, name="AI-rådet (hub)", public_key=key.raw, key_id=key.key_id
        )

    async def GetFeedHeads(
        self, request: feed_service_pb2.GetFeedHeadsRequest, context: Context
    ) -> feed_service_pb2.GetFeedHeadsResponse:
        self.sim.calls.append("GetFeedHeads")
        wanted = set(request.origins)
        heads = [h for h in self.sim.log.heads() if not wanted or h.origin in wanted]
        return feed_service_pb2.GetFeedHeadsResponse(heads=heads, log_position=self.sim.log.end)

    async def ReadEntries(
        self, request: feed_service_pb2.ReadEntriesRequest, context: Context
    ) -> AsyncIterator[feed_service_pb2.ReadEntriesResponse]:
        self.sim.calls.append("ReadEntries")
        after = request.after.position
        origins = set(request.filter.origins) if request.HasField("filter") else set()
        keep: Callable[[feed_pb2.LogEntry], bool] = (
            (lambda item: _origin(item) in origins) if origins else (lambda item: True)
        )
        batch = request.batch_size or 500
        page: list[feed_pb2.LogEntry] = []
        for item in self.sim.log.entries:
            if item.position <= after or not keep(item):
                continue
            page.append(item)
            if len(page) == batch:
                yield feed_service_pb2.ReadEntriesResponse(
                    entries=page, next=feed_pb2.Cursor(position=page[-1].position)
                )
                page = []
        yield feed_service_pb2.ReadEntriesResponse(
            entries=page, next=feed_pb2.Cursor(position=max(self.sim.log.end, after))
        )


class _Directory(hub_service_pb2_grpc.HubServiceServicer):
    def __init__(self, sim: SimHub) -> None:
        self.sim = sim

    async def GetDirectory(
        self, request: hub_service_pb2.GetDirectoryRequest, context: Context
    ) -> hub_service_pb2.GetDirectoryResponse:
        self.sim.calls.append("GetDirectory")
        return hub_service_pb2.GetDirectoryResponse(directory=self.sim.directory)

    # -- the transparency log -------------------------------------------------------------

    async def GetCheckpoint(
        self, request: hub_service_pb2.GetCheckpointRequest, context: Context
    ) -> hub_service_pb2.GetCheckpointResponse:
        self.sim.calls.append("GetCheckpoint")
        return hub_service_pb2.GetCheckpointResponse(checkpoint=self.sim.tlog.checkpoint())

    async def GetInclusionProofs(
        self, request: hub_service_pb2.GetInclusionProofsRequest, context: Context
    ) -> hub_service_pb2.GetInclusionProofsResponse:
        self.sim.calls.append("GetInclusionProofs")
        self.sim.combined_asked.append(request.combined)
        tlog = self.sim.tlog
        if not 0 < request.tree_size <= tlog.size:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "no tree of that size")
        proofs = []
        for query in request.leaves:
            key = (query.origin, query.sequence if query.origin else query.directory_version)
            index = tlog.index.get(key)
            if index is None or index >= request.tree_size:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"{key} is not in the tree")
            assert index is not None
            proofs.append(tlog.proof(request.tree_size, index))
        if not request.combined or self.sim.separate_proofs_only:
            return hub_service_pb2.GetInclusionProofsResponse(proofs=proofs)
        return tlog.combined(request.tree_size, proofs)

    async def GetConsistencyProof(
        self, request: hub_service_pb2.GetConsistencyProofRequest, context: Context
    ) -> hub_service_pb2.GetConsistencyProofResponse:
        self.sim.calls.append("GetConsistencyProof")
        tlog = self.sim.tlog
        if not request.old_size <= request.new_size <= tlog.size:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "no tree of that size")
        hashes = merkle.consistency_proof(request.old_size, request.new_size, tlog.read)
        return hub_service_pb2.GetConsistencyProofResponse(hashes=hashes)


class LogKeyOnly:
    """Accepted checkpoints for tests where witnessing is not the point (quorum 0): any
    checkpoint the hub's log key signed, newest wins. The node's own acceptance (the
    witness rules over its LogState) replaces it where cosignatures matter."""

    def __init__(self, link: Any, vkey: str) -> None:
        from samverka.protocol.note import Ed25519Verifier

        self.link = link
        self.verifier = Ed25519Verifier.from_vkey(vkey)
        self.checkpoint: Checkpoint | None = None
        self.asked = 0

    def accepted(self) -> Checkpoint | None:
        return self.checkpoint

    async def newer(self) -> Checkpoint | None:
        from samverka.protocol.checkpoint import open_checkpoint

        self.asked += 1
        opened = open_checkpoint(await self.link.get_checkpoint(), self.verifier).checkpoint
        if self.checkpoint is None or opened.size > self.checkpoint.size:
            self.checkpoint = opened
        return self.checkpoint


def log_vkey(hub_dir: Path) -> str:
    """The real hub's log verifier key (keys/log.vkey)."""
    return (hub_dir / "keys" / "log.vkey").read_text(encoding="ascii").strip()
