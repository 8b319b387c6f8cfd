"""Inclusion in the hub's transparency log: is what we hold a leaf of a checkpoint we
accepted? (issue 11, point 4: sync proves inclusion.)

Pure: the caller hands in an accepted checkpoint (:mod:`samverka.replication.logstate`),
the leaves it computed from what it holds (:class:`LeafClaim`: an entry's origin,
sequence and chain hash; a directory version's number and digest) and the
``InclusionProof`` messages the hub answered GetInclusionProofs with, in the same
order. :func:`verify_inclusion_proofs` checks each one:

1. the proof's ``leaf`` is, byte for byte, the leaf recomputed from what we hold
   (:mod:`samverka.protocol.logleaf`): the hub says what it logged, we never take its
   word for what that leaf *means*;
2. the RFC 9162 §2.1.3.2 path from that leaf at ``leaf_index`` leads to the
   checkpoint's root in a tree of the checkpoint's size.

Asked for ``combined`` (a page of a sync: a run of consecutive leaves), the hub answers
each leaf with its index and bytes, checked as in 1., and one proof of them all
(:func:`verify_combined_proof`, :func:`samverka.protocol.merkle.verify_multi_inclusion`):
about 2·log2(n) hashes for the page, where separate paths are log2(n) for each leaf.
A combined proof that does not lead to the root cannot say which leaf is wrong
(:class:`CombinedProofMismatch`): the caller then asks for the leaves' own proofs.
:func:`verify_answer` takes either form (a hub that predates ``combined`` answers with
separate proofs).

A proof that fails is :class:`BadProof` (``bad_proof``): the hub answered with
something that is not a proof of this leaf in this tree — a leaf for another entry, a
proof for another index or tree size, one cut short. An entry the hub cannot prove at
all (its GetInclusionProofs says NOT_FOUND even against a newer accepted checkpoint)
is :class:`NotInLog` (``not_in_log``), raised by the caller that waited for one.

Both are :class:`~samverka.errors.EntryRefused`, so a sync stops at that very entry,
naming it, with everything before it stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from samverka.errors import EntryRefused, Reason
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.logleaf import directory_leaf, entry_leaf
from samverka.protocol.merkle import (
    ProofError,
    leaf_hash,
    verify_inclusion,
    verify_multi_inclusion,
)
from samverka.v1 import hub_service_pb2

#: Most leaves one GetInclusionProofs call asks for (the hub's limit; a sync page is at
#: most this many entries, so one call per page).
MAX_LEAVES_PER_CALL = 1000


@dataclass(frozen=True, slots=True)
class LeafClaim:
    """A leaf as the receiver computes it from what it holds: an entry (``origin``
    non-empty; ``number`` its sequence, ``digest`` its chain hash) or a member-directory
    version (``origin`` empty; ``number`` the version, ``digest`` the directory digest)."""

    origin: str
    number: int
    digest: bytes

    @classmethod
    def entry(cls, origin: str, sequence: int, entry_hash: bytes) -> LeafClaim:
        return cls(origin, sequence, entry_hash)

    @classmethod
    def directory(cls, version: int, digest: bytes) -> LeafClaim:
        return cls("", version, digest)

    @property
    def is_directory(self) -> bool:
        return not self.origin

    @property
    def leaf(self) -> bytes:
        """The leaf bytes the log must hold for this (ValueError if it cannot be one)."""
        if self.is_directory:
            return directory_leaf(self.number, self.digest)
        return entry_leaf(self.origin, self.number, self.digest)

    @property
    def label(self) -> str:
        """How messages name it: ``2034#5`` or ``directory version 7``."""
        return (
            f"directory version {self.number}"
            if self.is_directory
            else (f"{self.origin}#{self.number}")
        )

    def query(self) -> hub_service_pb2.LeafQuery:
        """The GetInclusionProofs query that names this leaf."""
        if self.is_directory:
            return hub_service_pb2.LeafQuery(directory_version=self.number)
        return hub_service_pb2.LeafQuery(origin=self.origin, sequence=self.number)


class InclusionRefused(EntryRefused):
    """The hub did not prove that something it served is in its log."""

    def __init__(self, reason: Reason, detail: str, claim: LeafClaim, *, at: int = 0) -> None:
        super().__init__(reason, detail, origin=claim.origin, sequence=claim.number)
        if claim.is_directory:
            self.args = (f"{claim.label}: {reason.value}: {detail}",)
        self.claim = claim
        #: Index of ``claim`` in the batch that was being proven.
        self.at = at


class NotInLog(InclusionRefused):
    """No accepted checkpoint holds the leaf: the hub cannot prove it logged it."""

    def __init__(
        self,
        detail: str,
        claim: LeafClaim,
        *,
        at: int = 0,
        checkpoint_size: int | None = None,
        waited: float = 0.0,
        refused_checkpoint: str = "",
    ) -> None:
        super().__init__(Reason.NOT_IN_LOG, detail, claim, at=at)
        #: The newest accepted checkpoint's size (None: none accepted), the seconds
        #: waited for a newer one, and why the hub's newest was refused (if it was).
        self.checkpoint_size = checkpoint_size
        self.waited = waited
        self.refused_checkpoint = refused_checkpoint


class BadProof(InclusionRefused):
    """The hub's answer is not a proof of this leaf in the accepted checkpoint."""

    def __init__(self, detail: str, claim: LeafClaim, *, at: int = 0) -> None:
        super().__init__(Reason.BAD_PROOF, detail, claim, at=at)


class CombinedProofMismatch(BadProof):
    """A combined proof does not lead to the checkpoint's root: one of its leaves is not
    proven, which one it cannot tell (``at`` is 0). Ask for the leaves' own proofs."""


def verify_inclusion_proofs(
    checkpoint: Checkpoint,
    claims: Sequence[LeafClaim],
    proofs: Sequence[hub_service_pb2.InclusionProof],
) -> list[int]:
    """Check that ``proofs[i]`` proves ``claims[i]`` is a leaf of ``checkpoint``'s tree;
    returns the leaf indexes. Raises :class:`BadProof` for the first that does not (its
    ``at`` says which), so everything before it is proven."""
    if len(proofs) != len(claims):
        # Which one is missing cannot be told; the first claim not answered is refused.
        at = min(len(proofs), len(claims) - 1)
        if at < 0:
            raise ValueError("more proofs than leaves asked for, and none asked for")
        raise BadProof(
            f"the hub answered {len(proofs)} proofs for {len(claims)} leaves", claims[at], at=at
        )
    indexes = []
    for at, (claim, proof) in enumerate(zip(claims, proofs, strict=True)):
        indexes.append(verify_one(checkpoint, claim, proof, at=at))
    return indexes


def verify_answer(
    checkpoint: Checkpoint,
    claims: Sequence[LeafClaim],
    answer: hub_service_pb2.GetInclusionProofsResponse,
) -> list[int]:
    """Check a GetInclusionProofs answer in either form: separate proofs (each leaf with
    its own hashes; a hub that predates ``combined`` answers so) or one combined proof.
    Returns the leaf indexes; raises :class:`BadProof` (:class:`CombinedProofMismatch`
    when only the combined proof as a whole fails)."""
    if not answer.combined and any(p.hashes for p in answer.proofs):
        return verify_inclusion_proofs(checkpoint, claims, answer.proofs)
    return verify_combined_proof(checkpoint, claims, answer.proofs, answer.combined)


def verify_combined_proof(
    checkpoint: Checkpoint,
    claims: Sequence[LeafClaim],
    proofs: Sequence[hub_service_pb2.InclusionProof],
    combined: Sequence[bytes],
) -> list[int]:
    """Check that ``proofs[i]`` names ``claims[i]``'s leaf (its bytes, an index inside
    the checkpoint's tree) and that ``combined`` proves all of them together in it;
    returns the leaf indexes. A claim named wrongly is :class:`BadProof` at that claim;
    a combined proof that does not lead to the root, :class:`CombinedProofMismatch`
    (at 0: which leaf is wrong cannot be told from it)."""
    if len(proofs) != len(claims):
        at = min(len(proofs), len(claims) - 1)
        if at < 0:
            raise ValueError("more proofs than leaves asked for, and none asked for")
        raise BadProof(
            f"the hub answered {len(proofs)} leaves for {len(claims)} asked", claims[at], at=at
        )
    size = checkpoint.size
    hashes: dict[int, bytes] = {}
    indexes: list[int] = []
    for at, (claim, proof) in enumerate(zip(claims, proofs, strict=True)):
        leaf = _claimed_leaf(claim, proof, size, at)
        index = int(proof.leaf_index)
        h = leaf_hash(leaf)
        if hashes.setdefault(index, h) != h:
            raise BadProof(f"the hub names leaf {index} for two different leaves", claim, at=at)
        indexes.append(index)
    try:
        verify_multi_inclusion(size, hashes, list(combined), checkpoint.root_hash)
    except ProofError as exc:
        raise CombinedProofMismatch(
            f"the combined proof of {len(hashes)} leaves does not lead to the root of the "
            f"accepted checkpoint of {size} leaves ({exc.reason}: {exc})",
            claims[0],
        ) from exc
    return indexes


def _claimed_leaf(
    claim: LeafClaim, proof: hub_service_pb2.InclusionProof, size: int, at: int
) -> bytes:
    """The leaf ``claim`` must be, checked against what the hub named at ``proof``."""
    try:
        leaf = claim.leaf
    except ValueError as exc:
        raise BadProof(f"cannot be a leaf of the log: {exc}", claim, at=at) from exc
    if bytes(proof.leaf) != leaf:
        raise BadProof(
            f"the hub's proof is for another leaf at index {proof.leaf_index} (its log holds "
            "something else there than what it served)",
            claim,
            at=at,
        )
    if proof.leaf_index >= size:
        raise BadProof(
            f"the proof names leaf {proof.leaf_index}, beyond the checkpoint's {size} leaves",
            claim,
            at=at,
        )
    return leaf


def verify_one(
    checkpoint: Checkpoint,
    claim: LeafClaim,
    proof: hub_service_pb2.InclusionProof,
    *,
    at: int = 0,
) -> int:
    """Check one proof (see :func:`verify_inclusion_proofs`); returns its leaf index."""
    size = checkpoint.size
    leaf = _claimed_leaf(claim, proof, size, at)
    try:
        verify_inclusion(
            leaf_hash(leaf), proof.leaf_index, size, list(proof.hashes), checkpoint.root_hash
        )
    except ProofError as exc:
        raise BadProof(
            f"the inclusion proof for leaf {proof.leaf_index} does not lead to the root of the "
            f"accepted checkpoint of {size} leaves ({exc.reason}: {exc})",
            claim,
            at=at,
        ) from exc
    return int(proof.leaf_index)
