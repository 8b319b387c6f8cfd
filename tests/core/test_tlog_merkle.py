"""RFC 9162 Merkle trees (samverka.protocol.merkle): published vectors, stored hashes
against a naive recursive root, proofs that verify and fail when anything is tampered."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from samverka.protocol import merkle
from samverka.protocol.merkle import (
    EMPTY_ROOT,
    HashReaderError,
    MalformedHash,
    ProofError,
    ProofInputError,
    ProofLengthError,
    RootMismatch,
)

# RFC 6962 test vectors, from github.com/transparency-dev/merkle testonly/constants.go:
# the leaf inputs, the root of every size 0..8, and the hash of every perfect subtree
# (NodeHashes: [level][index]).
VECTOR_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip
VECTOR_ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip
VECTOR_NODES = [[bytes.fromhex(h) for h in level] for level in (
    ("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",),
)]  # fmt: skip
# Inclusion and consistency proofs over those leaves, as published with the same vectors
# (transparency-dev/merkle proof/verify_test.go, from the Certificate Transparency tests).
VECTOR_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
VECTOR_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


class Store:
    """A whole log's stored hashes in a list, as a hub's table would hold them."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.leaves: list[bytes] = []
        self.reads = 0

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        assert list(indexes) == sorted(set(indexes)), "reads ask in increasing order"
        self.reads += len(indexes)
        return [self.hashes[i] for i in indexes]

    def append(self, data: bytes) -> None:
        n = len(self.leaves)
        new = merkle.stored_hashes(n, data, self.read)
        assert len(self.hashes) == merkle.stored_hash_index(0, n)
        self.hashes.extend(new)
        self.leaves.append(merkle.leaf_hash(data))


def naive_root(leaves: Sequence[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1's recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


SIZE = 600


@pytest.fixture(scope="module")
def store() -> Store:
    s = Store()
    for i in range(SIZE):
        s.append(b"leaf %d" % i)
    return s


@pytest.fixture(scope="module")
def vector_store() -> Store:
    s = Store()
    for leaf in VECTOR_LEAVES:
        s.append(leaf)
    return s


def test_vector_roots(vector_store: Store) -> None:
    assert VECTOR_ROOTS[0] == EMPTY_ROOT
    assert merkle.tree_hash(0, vector_store.read) == VECTOR_ROOTS[0]
    for size in range(1, 9):
        assert merkle.tree_hash(size, vector_store.read) == VECTOR_ROOTS[size]
        assert merkle.root_from_leaf_hashes(vector_store.leaves[:size]) == VECTOR_ROOTS[size]


def test_vector_stored_hashes_are_the_published_node_hashes(vector_store: Store) -> None:
    for level, row in enumerate(VECTOR_NODES):
        for n, h in enumerate(row):
            assert vector_store.hashes[merkle.stored_hash_index(level, n)] == h
    assert len(vector_store.hashes) == merkle.stored_hash_count(8) == 15


@pytest.mark.parametrize(("index", "size", "proof"), VECTOR_INCLUSION)
def test_vector_inclusion(vector_store: Store, index: int, size: int, proof: list[str]) -> None:
    want = [bytes.fromhex(h) for h in proof]
    assert merkle.inclusion_proof(size, index, vector_store.read) == want
    leaf = merkle.leaf_hash(VECTOR_LEAVES[index])
    merkle.verify_inclusion(leaf, index, size, want, VECTOR_ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), VECTOR_CONSISTENCY)
def test_vector_consistency(vector_store: Store, old: int, new: int, proof: list[str]) -> None:
    want = [bytes.fromhex(h) for h in proof]
    assert merkle.consistency_proof(old, new, vector_store.read) == want
    merkle.verify_consistency(old, new, VECTOR_ROOTS[old], VECTOR_ROOTS[new], want)


def test_stored_hashes_agree_with_naive_root(store: Store) -> None:
    for size in range(SIZE + 1):
        want = naive_root(store.leaves[:size])
        assert merkle.tree_hash(size, store.read) == want
        assert merkle.root_from_leaf_hashes(store.leaves[:size]) == want
        assert merkle.stored_hash_count(size) == merkle.stored_hash_index(0, size)


@given(st.integers(0, 20), st.integers(0, 5000))
def test_split_stored_hash_index_inverts(level: int, n: int) -> None:
    x = merkle.stored_hash_index(level, n)
    assert merkle.split_stored_hash_index(x) == (level, n)


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8 % 32] ^= 1 << (bit % 8)
    return bytes(b)


@given(st.data())
def test_inclusion_proofs_verify_and_tampering_fails(store: Store, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = merkle.tree_hash(size, store.read)
    leaf = store.leaves[index]
    proof = merkle.inclusion_proof(size, index, store.read)
    merkle.verify_inclusion(leaf, index, size, proof, root)
    # The same proof from hashes the caller read itself (a server batching many proofs).
    needed = store.read(merkle.inclusion_proof_indexes(size, index))
    assert merkle.inclusion_proof_from(size, index, needed) == proof
    if needed:
        with pytest.raises(ProofError):
            merkle.inclusion_proof_from(size, index, needed[:-1])
    with pytest.raises(ProofError):
        merkle.inclusion_proof_from(size, index, [*needed, root])
    bit = data.draw(st.integers(0, 255), label="bit")
    with pytest.raises(ProofError):
        merkle.verify_inclusion(_flip(leaf, bit), index, size, proof, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1), label="at")
        bad = [*proof[:at], _flip(proof[at], bit), *proof[at + 1 :]]
        with pytest.raises(RootMismatch):
            merkle.verify_inclusion(leaf, index, size, bad, root)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaf, index, size, proof[:-1], root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, [*proof, root], root)
    other = data.draw(st.integers(0, size).filter(lambda i: i != index), label="other")
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, other, size, proof, root)
    # Another size, with that size's own root: refused, unless that tree's proof happens to
    # be this very one (then it is a true statement).
    other_size = data.draw(st.integers(index + 1, SIZE).filter(lambda s: s != size), label="os")
    if merkle.inclusion_proof(other_size, index, store.read) != proof:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(
                leaf, index, other_size, proof, merkle.tree_hash(other_size, store.read)
            )


def _leaf_sets(size: int) -> st.SearchStrategy[list[int]]:
    """Leaf indexes to prove together: scattered, or a run (a page of a sync)."""
    scattered = st.lists(st.integers(0, size - 1), min_size=1, max_size=40, unique=True)
    run = st.integers(0, size - 1).flatmap(
        lambda lo: st.integers(lo + 1, min(size, lo + 120)).map(lambda hi: list(range(lo, hi)))
    )
    return st.one_of(scattered, run)


@given(st.data())
def test_multi_leaf_proofs_verify_and_tampering_fails(store: Store, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, SIZE), label="size")
    indexes = data.draw(_leaf_sets(size), label="indexes")
    root = naive_root(store.leaves[:size])
    leaves = {i: store.leaves[i] for i in indexes}
    proof = merkle.multi_inclusion_proof(size, indexes, store.read)
    merkle.verify_multi_inclusion(size, leaves, proof, root)
    assert merkle.root_from_multi_inclusion_proof(size, leaves, proof) == root
    # Never longer than the leaves' own RFC 9162 paths together; a run of consecutive
    # leaves (a sync page) needs at most about two paths' worth.
    paths = {h for i in indexes for h in merkle.inclusion_proof(size, i, store.read)}
    assert len(proof) <= len(paths)
    if indexes == list(range(indexes[0], indexes[-1] + 1)):
        assert len(proof) <= 2 * size.bit_length()
    # One proof per leaf alone is the RFC 9162 path, leaf side first reversed (the multi
    # proof goes left to right, the path bottom up): the same hashes.
    if len(indexes) == 1:
        assert sorted(proof) == sorted(merkle.inclusion_proof(size, indexes[0], store.read))
    # The hashes read by the caller give the same proof; too few or too many are refused.
    needed = store.read(merkle.multi_inclusion_proof_indexes(size, indexes))
    assert merkle.multi_inclusion_proof_from(size, list(reversed(indexes)), needed) == proof
    if needed:
        with pytest.raises(ProofError):
            merkle.multi_inclusion_proof_from(size, indexes, needed[:-1])
    with pytest.raises(ProofError):
        merkle.multi_inclusion_proof_from(size, indexes, [*needed, root])
    bit = data.draw(st.integers(0, 255), label="bit")
    # A leaf changed, a proof hash changed, another root: refused.
    target = data.draw(st.sampled_from(indexes), label="target")
    with pytest.raises(RootMismatch):
        merkle.verify_multi_inclusion(
            size, {**leaves, target: _flip(leaves[target], bit)}, proof, root
        )
    with pytest.raises(RootMismatch):
        merkle.verify_multi_inclusion(size, leaves, proof, _flip(root, bit))
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1), label="at")
        bad = [*proof[:at], _flip(proof[at], bit), *proof[at + 1 :]]
        with pytest.raises(RootMismatch):
            merkle.verify_multi_inclusion(size, leaves, bad, root)
        with pytest.raises(ProofLengthError):
            merkle.verify_multi_inclusion(size, leaves, proof[:-1], root)
    with pytest.raises(ProofLengthError):
        merkle.verify_multi_inclusion(size, leaves, [*proof, root], root)
    # A leaf claimed at another index (moved, or one more claimed than proven): refused.
    free = [i for i in range(size) if i not in leaves]
    if free:
        moved = data.draw(st.sampled_from(free), label="moved")
        shifted = {i: h for i, h in leaves.items() if i != target} | {moved: leaves[target]}
        with pytest.raises(ProofError):
            merkle.verify_multi_inclusion(size, shifted, proof, root)
        with pytest.raises(ProofError):
            merkle.verify_multi_inclusion(size, {**leaves, moved: leaves[target]}, proof, root)
    # The same leaves in a larger tree, with that tree's root: refused unless that tree's
    # proof is this very one.
    if size < SIZE:
        other = data.draw(st.integers(size + 1, SIZE), label="other_size")
        if merkle.multi_inclusion_proof(other, indexes, store.read) != proof:
            with pytest.raises(ProofError):
                merkle.verify_multi_inclusion(
                    other, leaves, proof, naive_root(store.leaves[:other])
                )


def test_multi_leaf_proof_inputs_refused(store: Store) -> None:
    proof = merkle.multi_inclusion_proof(10, [3, 4], store.read)
    for indexes in ([], [3, 3], [-1], [10]):
        with pytest.raises(ProofInputError):
            merkle.multi_inclusion_proof_indexes(10, indexes)
    with pytest.raises(ProofInputError):
        merkle.verify_multi_inclusion(10, {}, proof, bytes(32))
    with pytest.raises(ProofInputError):
        merkle.verify_multi_inclusion(10, {10: store.leaves[3]}, proof, bytes(32))
    with pytest.raises(MalformedHash):
        merkle.verify_multi_inclusion(10, {3: b"short", 4: store.leaves[4]}, proof, bytes(32))
    with pytest.raises(MalformedHash):
        merkle.verify_multi_inclusion(
            10, {3: store.leaves[3], 4: store.leaves[4]}, [b"x"], bytes(32)
        )
    # The whole tree proven: nothing else is needed.
    every = {i: store.leaves[i] for i in range(7)}
    assert merkle.multi_inclusion_proof(7, list(every), store.read) == []
    merkle.verify_multi_inclusion(7, every, [], naive_root(store.leaves[:7]))


@given(st.data())
def test_consistency_proofs_verify_and_tampering_fails(store: Store, data: st.DataObject) -> None:
    new = data.draw(st.integers(1, SIZE), label="new")
    old = data.draw(st.integers(1, new), label="old")
    old_root = merkle.tree_hash(old, store.read)
    new_root = merkle.tree_hash(new, store.read)
    proof = merkle.consistency_proof(old, new, store.read)
    merkle.verify_consistency(old, new, old_root, new_root, proof)
    bit = data.draw(st.integers(0, 255), label="bit")
    if old == new:
        assert proof == []
        with pytest.raises(RootMismatch):
            merkle.verify_consistency(old, new, old_root, _flip(new_root, bit), proof)
        return
    with pytest.raises(RootMismatch):
        merkle.verify_consistency(old, new, _flip(old_root, bit), new_root, proof)
    with pytest.raises(RootMismatch):
        merkle.verify_consistency(old, new, old_root, _flip(new_root, bit), proof)
    at = data.draw(st.integers(0, len(proof) - 1), label="at")
    bad = [*proof[:at], _flip(proof[at], bit), *proof[at + 1 :]]
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, bad)
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, [*proof, new_root])
    # Other sizes with their own roots: refused unless the proof is that pair's proof too.
    other = data.draw(st.integers(1, new).filter(lambda s: s != old), label="other")
    if merkle.consistency_proof(other, new, store.read) != proof:
        with pytest.raises(ProofError):
            merkle.verify_consistency(
                other, new, merkle.tree_hash(other, store.read), new_root, proof
            )
    other_new = data.draw(st.integers(old, SIZE).filter(lambda s: s != new), label="onew")
    if merkle.consistency_proof(old, other_new, store.read) != proof:
        with pytest.raises(ProofError):
            merkle.verify_consistency(
                old, other_new, old_root, merkle.tree_hash(other_new, store.read), proof
            )


def test_consistency_edges(store: Store) -> None:
    root = merkle.tree_hash(10, store.read)
    merkle.verify_consistency(0, 10, EMPTY_ROOT, root, [])
    with pytest.raises(RootMismatch):
        merkle.verify_consistency(0, 10, root, root, [])
    with pytest.raises(ProofLengthError):
        merkle.verify_consistency(0, 10, EMPTY_ROOT, root, [root])
    with pytest.raises(ProofLengthError):
        merkle.verify_consistency(3, 10, merkle.tree_hash(3, store.read), root, [])
    with pytest.raises(ProofInputError):
        merkle.verify_consistency(11, 10, root, root, [])
    with pytest.raises(ProofInputError):
        merkle.consistency_proof(11, 10, store.read)


def test_bad_inputs_refused(store: Store) -> None:
    root = merkle.tree_hash(5, store.read)
    for size, index in [(0, 0), (5, 5), (5, -1), (-1, 0), (1 << 63, 0)]:
        with pytest.raises(ProofInputError):
            merkle.inclusion_proof(size, index, store.read)
        with pytest.raises(ProofInputError):
            merkle.verify_inclusion(store.leaves[0], index, size, [], root)
    with pytest.raises(MalformedHash):
        merkle.verify_inclusion(b"short", 0, 5, [], root)
    with pytest.raises(MalformedHash):
        merkle.verify_inclusion(store.leaves[0], 0, 5, [b"x" * 31], root)
    with pytest.raises(HashReaderError):
        merkle.tree_hash(5, lambda idx: [])
    with pytest.raises(MalformedHash):
        merkle.tree_hash(5, lambda idx: [b"x" * 33 for _ in idx])


def test_a_million_leaves_from_logarithmic_reads() -> None:
    """Proofs for a tree of 1,000,000 leaves read O(log n) stored hashes (synthetic ones:
    this counts reads, correctness is checked on the smaller trees above)."""
    reads: list[int] = []

    def read(indexes: Sequence[int]) -> list[bytes]:
        reads.append(len(indexes))
        return [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in indexes]

    n = 1_000_000
    merkle.tree_hash(n, read)
    merkle.inclusion_proof(n, 123_457, read)
    merkle.inclusion_proof(n, n - 1, read)
    merkle.consistency_proof(654_321, n, read)
    assert merkle.stored_hashes(n, b"next, even: completes nothing", read) == [
        merkle.leaf_hash(b"next, even: completes nothing")
    ]
    assert len(merkle.stored_hashes(2**20 - 1, b"completes 20 levels", read)) == 21
    assert len(reads) == 5  # one read per operation (none for an even leaf)
    assert max(reads) <= 2 * 20 + 2
