"""Inclusion proofs against an accepted checkpoint (samverka.protocol.inclusion) and the
log's leaf format (samverka.protocol.logleaf): honest proofs verify; a hub answering
with another leaf, a proof for another index, a truncated or padded proof, a proof in
another tree size, or too few proofs is refused with ``bad_proof`` naming the entry."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from samverka.errors import EntryRefused, Reason
from samverka.protocol import merkle
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.inclusion import (
    BadProof,
    CombinedProofMismatch,
    LeafClaim,
    NotInLog,
    verify_answer,
    verify_inclusion_proofs,
    verify_one,
)
from samverka.protocol.logleaf import (
    KIND_DIRECTORY,
    KIND_ENTRY,
    Leaf,
    directory_leaf,
    entry_leaf,
    parse_leaf,
)
from samverka.v1 import hub_service_pb2


def h(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class Tree:
    """A log in memory: leaves, stored hashes, proofs (as the hub computes them)."""

    def __init__(self, claims: list[LeafClaim]) -> None:
        self.claims = claims
        self.stored: list[bytes] = []
        for n, claim in enumerate(claims):
            self.stored += merkle.stored_hashes(n, claim.leaf, self.read)

    def read(self, indexes: object) -> list[bytes]:
        return [self.stored[i] for i in indexes]  # type: ignore[attr-defined]

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        size = len(self.claims) if size is None else size
        return Checkpoint("hub.test/samverka-log", size, merkle.tree_hash(size, self.read))

    def proof(self, index: int, size: int | None = None) -> hub_service_pb2.InclusionProof:
        size = len(self.claims) if size is None else size
        return hub_service_pb2.InclusionProof(
            leaf_index=index,
            leaf=self.claims[index].leaf,
            hashes=merkle.inclusion_proof(size, index, self.read),
        )


def federation_log(n: int = 13) -> Tree:
    """Directory versions and entries of three origins, interleaved as the hub logs them."""
    claims = [LeafClaim.directory(1, h("dir 1"))]
    for i in range(n):
        origin = ("2034", "2039", "1280")[i % 3]
        claims.append(LeafClaim.entry(origin, i // 3 + 1, h(f"{origin} {i}")))
        if i == 6:
            claims.append(LeafClaim.directory(2, h("dir 2")))
    return Tree(claims)


def test_the_leaf_format_round_trips_and_refuses_what_is_not_a_leaf() -> None:
    digest = h("x")
    leaf = entry_leaf("1280", 7, digest)
    assert leaf == b"\x01\x01" + (7).to_bytes(8, "big") + b"\x04" + b"1280" + digest
    assert parse_leaf(leaf) == Leaf(KIND_ENTRY, 7, "1280", digest)
    assert parse_leaf(directory_leaf(3, digest)) == Leaf(KIND_DIRECTORY, 3, "", digest)
    for bad in (b"", b"\x02\x01", leaf[:-1], leaf + b"\x00", directory_leaf(3, digest)[:-1]):
        with pytest.raises(ValueError):
            parse_leaf(bad)
    with pytest.raises(ValueError):
        entry_leaf("1280", 7, digest[:31])
    with pytest.raises(ValueError):
        entry_leaf("", 7, digest)


def test_honest_proofs_verify_for_every_leaf_in_every_tree_size() -> None:
    tree = federation_log()
    for size in range(1, len(tree.claims) + 1):
        checkpoint = tree.checkpoint(size)
        claims = tree.claims[:size]
        proofs = [tree.proof(i, size) for i in range(size)]
        assert verify_inclusion_proofs(checkpoint, claims, proofs) == list(range(size))


def test_a_claim_names_its_query_and_its_entry() -> None:
    entry, directory = LeafClaim.entry("2034", 5, h("e")), LeafClaim.directory(9, h("d"))
    assert entry.query() == hub_service_pb2.LeafQuery(origin="2034", sequence=5)
    assert directory.query() == hub_service_pb2.LeafQuery(directory_version=9)
    assert (entry.label, directory.label) == ("2034#5", "directory version 9")


def refused(tree: Tree, claims: list[LeafClaim], proofs: list[hub_service_pb2.InclusionProof],
            size: int | None = None) -> BadProof:  # fmt: skip
    with pytest.raises(BadProof) as caught:
        verify_inclusion_proofs(tree.checkpoint(size), claims, proofs)
    err = caught.value
    assert isinstance(err, EntryRefused) and err.reason is Reason.BAD_PROOF
    return err


def test_a_proof_of_another_leaf_is_refused() -> None:
    """The hub served 2034#3 with one hash, but its log holds another entry there."""
    tree = federation_log()
    served = LeafClaim.entry("2034", 3, h("what the hub served"))
    at = next(i for i, c in enumerate(tree.claims) if (c.origin, c.number) == ("2034", 3))
    claims = [*tree.claims[:at], served]
    proofs = [tree.proof(i) for i in range(at + 1)]
    err = refused(tree, claims, proofs)
    assert (err.at, err.origin, err.sequence) == (at, "2034", 3)
    assert str(err).startswith("2034#3: bad_proof: the hub's proof is for another leaf")


def test_a_proof_for_another_index_is_refused() -> None:
    """The leaf bytes match, but the path is that of a neighbour."""
    tree = federation_log()
    proof = tree.proof(5)
    proof.leaf_index = 4
    err = refused(tree, [tree.claims[5]], [proof])
    assert "does not lead to the root" in str(err)
    # The right path presented as if it were another leaf's index is refused too.
    proof = tree.proof(4)
    proof.leaf = tree.claims[5].leaf
    refused(tree, [tree.claims[5]], [proof])


@pytest.mark.parametrize("cut", ["truncated", "padded", "flipped", "short hash"])
def test_a_mangled_path_is_refused(cut: str) -> None:
    tree = federation_log()
    proof = tree.proof(6)
    hashes = list(proof.hashes)
    if cut == "truncated":
        hashes = hashes[:-1]
    elif cut == "padded":
        hashes.append(h("pad"))
    elif cut == "flipped":
        hashes[0] = bytes([hashes[0][0] ^ 1]) + hashes[0][1:]
    else:
        hashes[1] = hashes[1][:31]
    del proof.hashes[:]
    proof.hashes.extend(hashes)
    err = refused(tree, [tree.claims[6]], [proof])
    assert err.at == 0 and "accepted checkpoint of" in str(err)


def test_a_proof_in_another_tree_size_is_refused() -> None:
    """A path computed in a larger (or smaller) tree than the accepted checkpoint."""
    tree = federation_log()
    size = len(tree.claims)
    refused(tree, [tree.claims[3]], [tree.proof(3, size)], size=size - 2)
    refused(tree, [tree.claims[3]], [tree.proof(3, size - 2)], size=size)


def test_a_leaf_index_beyond_the_checkpoint_is_refused() -> None:
    tree = federation_log()
    proof = tree.proof(len(tree.claims) - 1)
    err = refused(tree, [tree.claims[-1]], [proof], size=len(tree.claims) - 1)
    assert "beyond the checkpoint" in str(err)


def test_too_few_proofs_refuse_the_first_leaf_left_unanswered() -> None:
    tree = federation_log()
    err = refused(tree, tree.claims[:4], [tree.proof(i) for i in range(3)])
    assert err.at == 3 and "3 proofs for 4 leaves" in str(err)
    err = refused(tree, tree.claims[:2], [tree.proof(i) for i in range(3)])
    assert err.at == 1


def test_the_first_bad_proof_of_a_batch_is_named_and_those_before_it_stand() -> None:
    tree = federation_log()
    proofs = [tree.proof(i) for i in range(len(tree.claims))]
    proofs[7].hashes[0] = h("forged")
    err = refused(tree, tree.claims, proofs)
    assert err.at == 7
    assert verify_inclusion_proofs(tree.checkpoint(), tree.claims[:7], proofs[:7]) == list(range(7))


def test_a_directory_version_is_proven_and_another_digest_refused() -> None:
    tree = federation_log()
    at = next(i for i, c in enumerate(tree.claims) if c.is_directory and c.number == 2)
    assert verify_one(tree.checkpoint(), tree.claims[at], tree.proof(at)) == at
    err = refused(tree, [LeafClaim.directory(2, h("another directory"))], [tree.proof(at)])
    assert str(err).startswith("directory version 2: bad_proof")
    assert (err.origin, err.sequence) == ("", 2)


def test_not_in_log_names_the_entry() -> None:
    err = NotInLog("no accepted checkpoint holds it", LeafClaim.entry("2034", 6, h("x")), at=2)
    assert (err.reason, err.origin, err.sequence, err.at) == (Reason.NOT_IN_LOG, "2034", 6, 2)
    assert str(err) == "2034#6: not_in_log: no accepted checkpoint holds it"


@given(st.integers(1, 40), st.data())
def test_any_honest_proof_verifies_and_any_flipped_bit_does_not(
    size: int, data: st.DataObject
) -> None:
    tree = Tree([LeafClaim.entry("1280", i + 1, h(str(i))) for i in range(size)])
    index = data.draw(st.integers(0, size - 1))
    proof = tree.proof(index)
    assert verify_one(tree.checkpoint(), tree.claims[index], proof) == index
    if proof.hashes:
        k = data.draw(st.integers(0, len(proof.hashes) - 1))
        bit = data.draw(st.integers(0, 255))
        raw = bytearray(proof.hashes[k])
        raw[bit // 8] ^= 1 << (bit % 8)
        proof.hashes[k] = bytes(raw)
        with pytest.raises(BadProof):
            verify_one(tree.checkpoint(), tree.claims[index], proof)


def combined_answer(
    tree: Tree, indexes: list[int], size: int | None = None
) -> hub_service_pb2.GetInclusionProofsResponse:
    """The hub's answer to a combined request for the leaves at ``indexes``."""
    size = len(tree.claims) if size is None else size
    return hub_service_pb2.GetInclusionProofsResponse(
        proofs=[
            hub_service_pb2.InclusionProof(leaf_index=i, leaf=tree.claims[i].leaf) for i in indexes
        ],
        combined=merkle.multi_inclusion_proof(size, sorted(set(indexes)), tree.read),
    )


def test_a_combined_proof_verifies_and_names_a_wrong_leaf_or_says_it_cannot() -> None:
    tree = federation_log(40)
    cp = tree.checkpoint()
    page = list(range(5, 30))  # a page: a run of leaves
    claims = [tree.claims[i] for i in page]
    answer = combined_answer(tree, page)
    assert verify_answer(cp, claims, answer) == page
    assert len(answer.combined) <= 2 * cp.size.bit_length()
    # A hub that predates combined proofs answers with separate ones: also taken.
    separate = hub_service_pb2.GetInclusionProofsResponse(proofs=[tree.proof(i) for i in page])
    assert verify_answer(cp, claims, separate) == page
    # Another leaf named for a claim: refused at that claim, as with separate proofs.
    wrong = combined_answer(tree, page)
    wrong.proofs[7].leaf = tree.claims[40].leaf
    with pytest.raises(BadProof) as refused:
        verify_answer(cp, claims, wrong)
    assert refused.value.at == 7 and not isinstance(refused.value, CombinedProofMismatch)
    # Two claims at one index: refused at the second.
    twice = combined_answer(tree, page)
    twice.proofs[3].leaf_index = twice.proofs[2].leaf_index
    twice.proofs[3].leaf = claims[3].leaf
    with pytest.raises(BadProof) as refused:
        verify_answer(cp, claims, twice)
    assert refused.value.at == 3
    # A flipped hash, a hash missing, or an honest proof of another tree size: the
    # combined proof fails as a whole (the caller then asks for separate proofs).
    flipped = combined_answer(tree, page)
    flipped.combined[0] = bytes([flipped.combined[0][0] ^ 1]) + flipped.combined[0][1:]
    short = combined_answer(tree, page)
    del short.combined[-1]
    smaller = combined_answer(tree, page, size=35)
    for bad in (flipped, short, smaller):
        with pytest.raises(CombinedProofMismatch) as refused:
            verify_answer(cp, claims, bad)
        assert refused.value.reason is Reason.BAD_PROOF
    # Too few leaves answered: the first left unanswered.
    few = combined_answer(tree, page[:-2])
    with pytest.raises(BadProof) as refused:
        verify_answer(cp, claims, few)
    assert refused.value.at == len(page) - 2
