"""RFC 9162 (RFC 6962) Merkle trees: hashing, stored hashes, proofs and their verification.

Pure: no files, no network, no clock. The log's storage is reached only through a
:data:`HashReader`, a callable that returns stored hashes by their index, so a store of
any size serves proofs from O(log n) reads.

The storage layout is the one of Go's ``golang.org/x/mod/sumdb/tlog`` (after Crosby and
Wallach, "Efficient Data Structures for Tamper-Evident Logging", §3.3): the hash of every
*perfect* subtree (level L, index N: the 2**L leaves from N * 2**L) is stored once, at a
dense linear index (:func:`stored_hash_index`), in the order they become known while
leaves are appended. Appending leaf n stores the hashes :func:`stored_hashes` returns,
at indexes :func:`stored_hash_index(0, n) <stored_hash_index>` onwards.

Proof generation follows Go's ``TreeHash``/``ProveRecord``/``ProveTree`` (and so RFC 9162
§2.1.3.1 and §2.1.4.1); verification is written from RFC 9162 §2.1.3.2 and §2.1.4.2.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise

from samverka.errors import SamverkaError

#: Length of a SHA-256 hash, the only hash of these trees.
HASH_SIZE = 32

#: MTH({}) = SHA-256() (RFC 9162 §2.1.1), the root of the empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: Largest tree size and leaf index accepted anywhere: stored as signed 64-bit integers
#: (SQLite, PostgreSQL bigint, Go's int64).
MAX_TREE_SIZE = (1 << 63) - 1

#: Returns the stored hashes at the given stored-hash indexes, in the same order. The
#: functions here ask for indexes in increasing order, in one call per operation.
HashReader = Callable[[Sequence[int]], Sequence[bytes]]


class ProofError(SamverkaError):
    """Base of the Merkle-tree refusals: a proof, a size or a hash that cannot be right."""

    reason = "proof_invalid"


class ProofInputError(ProofError):
    """An index or tree size out of range for the operation (e.g. leaf index ≥ size)."""

    reason = "proof_input_invalid"


class MalformedHash(ProofError):
    """A hash that is not 32 bytes (in a proof, a root or from a hash reader)."""

    reason = "malformed_hash"


class ProofLengthError(ProofError):
    """A proof with more or fewer hashes than the sizes it is for require."""

    reason = "proof_length"


class RootMismatch(ProofError):
    """A proof that verifies to another root than the one claimed: not in this tree."""

    reason = "root_mismatch"


class HashReaderError(ProofError):
    """The hash reader returned a different number of hashes than it was asked for."""

    reason = "hash_reader"


# --- Hashing ------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d): the hash of one leaf (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root of the tree with these leaf hashes, computed from all of them (O(n)).

    For small trees, tests and independent checks; a log serves roots with
    :func:`tree_hash` from O(log n) stored hashes instead.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    # Fold perfect subtrees left to right, as the stored-hash layout does, then join the
    # remaining right-hand fringe from the right (RFC 9162's k = largest power of 2 < n).
    stack: list[tuple[int, bytes]] = []  # (level, hash) of perfect subtrees
    for h in leaf_hashes:
        _check_hash(h)
        level, cur = 0, h
        while stack and stack[-1][0] == level:
            cur = node_hash(stack.pop()[1], cur)
            level += 1
        stack.append((level, cur))
    root = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        root = node_hash(h, root)
    return root


# --- Stored hashes ------------------------------------------------------------------------


def stored_hash_index(level: int, n: int) -> int:
    """Where the hash of the perfect subtree (level, n) is stored in the linear layout.

    Level L's n'th hash is stored right after level L+1's hash that completes with it;
    level 0's n'th hash at n + n/2 + n/4 + … (Go: StoredHashIndex).
    """
    if level < 0 or n < 0:
        raise ProofInputError(f"no stored hash at level {level}, index {n}")
    n = ((n + 1) << level) - 1  # the last leaf of that subtree
    # n + n//2 + n//4 + ... = 2n - popcount(n), without the loop (proofs call this a lot).
    return 2 * n - n.bit_count() + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """The (level, n) stored at ``index``; the inverse of :func:`stored_hash_index`."""
    if index < 0:
        raise ProofInputError(f"no stored hash at index {index}")
    # stored_hash_index(0, n) < 2n, so the leaf that completed ``index`` is in
    # [index/2, index/2 + log2(index)].
    n = index // 2
    index_n = stored_hash_index(0, n)
    while True:
        # Leaf n stores 1 + trailing_zeros(n + 1) hashes.
        x = index_n + 1 + _trailing_zeros(n + 1)
        if x > index:
            break
        n += 1
        index_n = x
    level = index - index_n
    return level, n >> level


def stored_hash_count(size: int) -> int:
    """How many hashes are stored for a tree of ``size`` leaves."""
    _check_size(size)
    if size == 0:
        return 0
    count = stored_hash_index(0, size - 1) + 1
    i = size - 1
    while i & 1:
        count += 1
        i >>= 1
    return count


def stored_hashes_for_leaf_hash(n: int, leaf: bytes, read: HashReader) -> list[bytes]:
    """The hashes to store, from index ``stored_hash_index(0, n)`` on, when appending leaf
    number ``n`` (0-based) with hash ``leaf``: the leaf hash, then the hash of every
    perfect subtree that leaf completes. Reads at most log2(n) earlier hashes.
    """
    _check_index(n)
    _check_hash(leaf)
    m = _trailing_zeros(n + 1)
    # The left siblings of the subtrees leaf n completes, in increasing index order.
    indexes = [stored_hash_index(i, (n >> i) - 1) for i in reversed(range(m))]
    old = _read(read, indexes)
    hashes = [leaf]
    h = leaf
    for i in range(m):
        h = node_hash(old[m - 1 - i], h)
        hashes.append(h)
    return hashes


def stored_hashes(n: int, data: bytes, read: HashReader) -> list[bytes]:
    """As :func:`stored_hashes_for_leaf_hash`, for a leaf given by its data."""
    return stored_hashes_for_leaf_hash(n, leaf_hash(data), read)


# --- Roots and proofs from stored hashes --------------------------------------------------


def tree_hash_indexes(size: int) -> list[int]:
    """The stored-hash indexes :func:`tree_hash` reads for a tree of ``size`` leaves."""
    _check_size(size)
    return _subtree_indexes(0, size, [])


def tree_hash(size: int, read: HashReader) -> bytes:
    """The root of the tree of ``size`` leaves, from at most 1 + log2(size) stored hashes."""
    _check_size(size)
    if size == 0:
        return EMPTY_ROOT
    indexes = _subtree_indexes(0, size, [])
    h, rest = _subtree_hash(0, size, _read(read, indexes))
    assert not rest, "bad index math in tree_hash"
    return h


def inclusion_proof_indexes(size: int, index: int) -> list[int]:
    """The stored-hash indexes :func:`inclusion_proof` reads."""
    _check_inclusion_input(size, index)
    return _leaf_proof_indexes(0, size, index, [])


def inclusion_proof(size: int, index: int, read: HashReader) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1): the audit path of leaf ``index`` in the
    tree of ``size`` leaves, leaf side first, from O(log size) stored hashes."""
    indexes = inclusion_proof_indexes(size, index)
    if not indexes:
        return []
    proof, rest = _leaf_proof(0, size, index, _read(read, indexes))
    assert not rest, "bad index math in inclusion_proof"
    return proof


def inclusion_proof_from(size: int, index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """:func:`inclusion_proof` from the stored hashes at :func:`inclusion_proof_indexes`
    ``(size, index)``, in that order, read by the caller (a server proving many leaves
    reads the hashes of all of them at once)."""
    _check_inclusion_input(size, index)
    for h in hashes:
        _check_hash(h)
    try:
        proof, rest = _leaf_proof(0, size, index, list(hashes))
    except (AssertionError, IndexError) as exc:
        raise HashReaderError(f"too few hashes for the proof of {index} in {size}") from exc
    if rest:
        raise HashReaderError(f"{len(rest)} hashes more than the proof uses")
    return proof


def multi_inclusion_proof_indexes(size: int, indexes: Sequence[int]) -> list[int]:
    """The stored-hash indexes :func:`multi_inclusion_proof_from` needs to prove the
    leaves at ``indexes`` (any order; each once) together in the tree of ``size``."""
    leaves = _check_multi_input(size, indexes)
    need: list[int] = []
    _multi_indexes(0, size, leaves, 0, len(leaves), need)
    return need


def multi_inclusion_proof_from(
    size: int, indexes: Sequence[int], hashes: Sequence[bytes]
) -> list[bytes]:
    """One proof that the leaves at ``indexes`` are all in the tree of ``size`` leaves,
    from the stored hashes at :func:`multi_inclusion_proof_indexes` in that order.

    The proof is MTH of every largest subtree of RFC 9162's decomposition of the tree
    (split at the largest power of 2 below its size, as in §2.1.1) that holds none of
    the leaves, left to right: with the leaves' own hashes they give the root
    (:func:`root_from_multi_inclusion_proof`). For a run of m consecutive leaves that is
    at most about 2·log2(size) hashes in all, where m RFC 9162 paths are m·log2(size)."""
    leaves = _check_multi_input(size, indexes)
    for h in hashes:
        _check_hash(h)
    proof: list[bytes] = []
    try:
        used = _multi_proof(0, size, leaves, 0, len(leaves), list(hashes), 0, proof)
    except (AssertionError, IndexError) as exc:
        raise HashReaderError(f"too few hashes for the proof of {len(leaves)} leaves") from exc
    if used != len(hashes):
        raise HashReaderError(f"{len(hashes) - used} hashes more than the proof uses")
    return proof


def multi_inclusion_proof(size: int, indexes: Sequence[int], read: HashReader) -> list[bytes]:
    """:func:`multi_inclusion_proof_from` with the stored hashes read through ``read``."""
    return multi_inclusion_proof_from(
        size, indexes, _read(read, multi_inclusion_proof_indexes(size, indexes))
    )


def consistency_proof_indexes(old_size: int, new_size: int) -> list[int]:
    """The stored-hash indexes :func:`consistency_proof` reads."""
    _check_consistency_input(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return []
    return _tree_proof_indexes(0, new_size, old_size, [])


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1): proves the tree of ``new_size``
    leaves extends the tree of ``old_size`` leaves. Empty when old_size is 0 or equal to
    new_size (nothing to prove)."""
    indexes = consistency_proof_indexes(old_size, new_size)
    if not indexes:
        return []
    proof, rest = _tree_proof(0, new_size, old_size, _read(read, indexes))
    assert not rest, "bad index math in consistency_proof"
    return proof


# --- Verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ----------------------------------------


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index`` in a tree of
    ``size`` leaves; raises if the proof cannot be one for these sizes."""
    _check_inclusion_input(size, index)
    _check_hash(leaf)
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        _check_hash(p)
        if sn == 0:
            raise ProofLengthError(f"inclusion proof for {index} in {size} is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofLengthError(f"inclusion proof for {index} in {size} is too short")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` proves leaf hash ``leaf`` is leaf ``index`` of the tree of
    ``size`` leaves whose root is ``root``; raises a :class:`ProofError` if not."""
    _check_hash(root)
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise RootMismatch(f"inclusion proof for {index} in {size} leads to another root")


def root_from_multi_inclusion_proof(
    size: int, leaves: Mapping[int, bytes], proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` (see :func:`multi_inclusion_proof_from`) implies for the
    leaf hashes ``leaves`` (leaf index -> leaf hash) in a tree of ``size`` leaves; raises
    :class:`ProofLengthError` if it has too few or too many hashes for them."""
    indexes = _check_multi_input(size, list(leaves))
    leaf_hashes = [leaves[i] for i in indexes]
    for h in leaf_hashes:
        _check_hash(h)
    for p in proof:
        _check_hash(p)
    try:
        root, used = _multi_root(0, size, indexes, leaf_hashes, 0, len(indexes), proof, 0)
    except IndexError:
        raise ProofLengthError(f"proof of {len(indexes)} leaves in {size} is too short") from None
    if used != len(proof):
        raise ProofLengthError(f"proof of {len(indexes)} leaves in {size} is too long")
    return root


def verify_multi_inclusion(
    size: int, leaves: Mapping[int, bytes], proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` proves every leaf hash in ``leaves`` (leaf index -> leaf hash)
    is that leaf of the tree of ``size`` leaves whose root is ``root``; raises a
    :class:`ProofError` if not (which leaf is wrong cannot be told: ask for the leaves'
    own RFC 9162 proofs to find it)."""
    _check_hash(root)
    if root_from_multi_inclusion_proof(size, leaves, proof) != root:
        raise RootMismatch(f"proof of {len(leaves)} leaves in {size} leads to another root")


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that ``proof`` proves the tree (new_size, new_root) extends the tree
    (old_size, old_root); raises a :class:`ProofError` if not.

    RFC 9162 §2.1.4.2 covers 0 < old_size < new_size; for old_size == new_size the proof
    must be empty and the roots equal, and every tree extends the empty tree (whose root
    must then be :data:`EMPTY_ROOT`) with an empty proof.
    """
    _check_consistency_input(old_size, new_size)
    _check_hash(old_root)
    _check_hash(new_root)
    for p in proof:
        _check_hash(p)
    if old_size == 0 or old_size == new_size:
        if proof:
            raise ProofLengthError(f"consistency proof {old_size}→{new_size} must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise RootMismatch("the root of the empty tree is SHA-256 of nothing")
        if old_size == new_size and old_root != new_root:
            raise RootMismatch(f"two different roots for the same size {old_size}")
        return
    if not proof:
        raise ProofLengthError(f"consistency proof {old_size}→{new_size} is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of 2
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofLengthError(f"consistency proof {old_size}→{new_size} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofLengthError(f"consistency proof {old_size}→{new_size} is too short")
    if fr != old_root:
        raise RootMismatch(f"consistency proof {old_size}→{new_size}: old root differs")
    if sr != new_root:
        raise RootMismatch(f"consistency proof {old_size}→{new_size}: new root differs")


# --- Internals (after Go's tlog.go) -------------------------------------------------------


def _trailing_zeros(x: int) -> int:
    return (x & -x).bit_length() - 1


def _largest_pow2_below(n: int) -> int:
    """The largest power of 2 strictly smaller than n (n ≥ 2): RFC 9162's split point k."""
    return 1 << ((n - 1).bit_length() - 1)


def _largest_pow2_at_most(n: int) -> int:
    return 1 << (n.bit_length() - 1)


def _check_hash(h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise MalformedHash(f"a hash is {HASH_SIZE} bytes, not {len(h)}")


def _check_size(size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ProofInputError(f"tree size {size} out of range")


def _check_index(index: int) -> None:
    if not 0 <= index < MAX_TREE_SIZE:
        raise ProofInputError(f"leaf index {index} out of range")


def _check_inclusion_input(size: int, index: int) -> None:
    _check_size(size)
    if not 0 <= index < size:
        raise ProofInputError(f"leaf index {index} is not in a tree of size {size}")


def _check_consistency_input(old_size: int, new_size: int) -> None:
    _check_size(old_size)
    _check_size(new_size)
    if old_size > new_size:
        raise ProofInputError(f"tree size {old_size} is larger than {new_size}")


def _read(read: HashReader, indexes: list[int]) -> list[bytes]:
    if not indexes:
        return []
    hashes = list(read(indexes))
    if len(hashes) != len(indexes):
        raise HashReaderError(f"asked for {len(indexes)} hashes, got {len(hashes)}")
    for h in hashes:
        _check_hash(h)
    return hashes


def _subtree_indexes(lo: int, hi: int, need: list[int]) -> list[int]:
    """Append the indexes of the perfect subtrees that make up leaves [lo, hi)."""
    while lo < hi:
        k = _largest_pow2_at_most(hi - lo)
        level = k.bit_length() - 1
        assert lo & (k - 1) == 0, "bad math in _subtree_indexes"
        need.append(stored_hash_index(level, lo >> level))
        lo += k
    return need


def _subtree_hash(lo: int, hi: int, hashes: list[bytes]) -> tuple[bytes, list[bytes]]:
    """MTH(D[lo:hi]) from the hashes :func:`_subtree_indexes` named; returns the rest."""
    count = 0
    while lo < hi:
        lo += _largest_pow2_at_most(hi - lo)
        count += 1
    assert len(hashes) >= count, "bad index math in _subtree_hash"
    h = hashes[count - 1]
    for i in range(count - 2, -1, -1):
        h = node_hash(hashes[i], h)
    return h, hashes[count:]


def _leaf_proof_indexes(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    assert lo <= n < hi, "bad math in _leaf_proof_indexes"
    if lo + 1 == hi:
        return need
    k = _largest_pow2_below(hi - lo)
    if n < lo + k:
        need = _leaf_proof_indexes(lo, lo + k, n, need)
        need = _subtree_indexes(lo + k, hi, need)
    else:
        need = _subtree_indexes(lo, lo + k, need)
        need = _leaf_proof_indexes(lo + k, hi, n, need)
    return need


def _leaf_proof(lo: int, hi: int, n: int, hashes: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    assert lo <= n < hi, "bad math in _leaf_proof"
    if lo + 1 == hi:
        return [], hashes
    k = _largest_pow2_below(hi - lo)
    if n < lo + k:
        proof, hashes = _leaf_proof(lo, lo + k, n, hashes)
        th, hashes = _subtree_hash(lo + k, hi, hashes)
    else:
        th, hashes = _subtree_hash(lo, lo + k, hashes)
        proof, hashes = _leaf_proof(lo + k, hi, n, hashes)
    proof.append(th)
    return proof, hashes


def _tree_proof_indexes(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    assert lo < n <= hi, "bad math in _tree_proof_indexes"
    if n == hi:
        return need if lo == 0 else _subtree_indexes(lo, hi, need)
    k = _largest_pow2_below(hi - lo)
    if n <= lo + k:
        need = _tree_proof_indexes(lo, lo + k, n, need)
        need = _subtree_indexes(lo + k, hi, need)
    else:
        need = _subtree_indexes(lo, lo + k, need)
        need = _tree_proof_indexes(lo + k, hi, n, need)
    return need


def _tree_proof(lo: int, hi: int, n: int, hashes: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    assert lo < n <= hi, "bad math in _tree_proof"
    if n == hi:
        if lo == 0:
            return [], hashes
        th, hashes = _subtree_hash(lo, hi, hashes)
        return [th], hashes
    k = _largest_pow2_below(hi - lo)
    if n <= lo + k:
        proof, hashes = _tree_proof(lo, lo + k, n, hashes)
        th, hashes = _subtree_hash(lo + k, hi, hashes)
    else:
        th, hashes = _subtree_hash(lo, lo + k, hashes)
        proof, hashes = _tree_proof(lo + k, hi, n, hashes)
    proof.append(th)
    return proof, hashes


def _check_multi_input(size: int, indexes: Sequence[int]) -> list[int]:
    """The leaf indexes sorted; refused when none, one twice, or one outside the tree."""
    _check_size(size)
    leaves = sorted(indexes)
    if not leaves:
        raise ProofInputError("no leaves to prove")
    if leaves[0] < 0 or leaves[-1] >= size:
        raise ProofInputError(f"a leaf index is not in a tree of size {size}")
    if any(a == b for a, b in pairwise(leaves)):
        raise ProofInputError("a leaf index is named twice")
    return leaves


def _multi_indexes(lo: int, hi: int, leaves: list[int], a: int, b: int, need: list[int]) -> None:
    """Append the stored-hash indexes of the subtrees of [lo, hi) holding none of
    ``leaves[a:b]`` (the proven leaves in [lo, hi)), left to right."""
    if a == b:
        _subtree_indexes(lo, hi, need)
        return
    if hi - lo == 1:
        return
    k = lo + _largest_pow2_below(hi - lo)
    m = bisect_left(leaves, k, a, b)
    _multi_indexes(lo, k, leaves, a, m, need)
    _multi_indexes(k, hi, leaves, m, b, need)


def _multi_proof(
    lo: int,
    hi: int,
    leaves: list[int],
    a: int,
    b: int,
    hashes: list[bytes],
    at: int,
    out: list[bytes],
) -> int:
    """Append MTH of each subtree :func:`_multi_indexes` named, from ``hashes[at:]``;
    returns where the next subtree's stored hashes start."""
    if a == b:
        count, start = 0, lo
        while start < hi:
            start += _largest_pow2_at_most(hi - start)
            count += 1
        h = hashes[at + count - 1]
        for i in range(at + count - 2, at - 1, -1):
            h = node_hash(hashes[i], h)
        out.append(h)
        return at + count
    if hi - lo == 1:
        return at
    k = lo + _largest_pow2_below(hi - lo)
    m = bisect_left(leaves, k, a, b)
    at = _multi_proof(lo, k, leaves, a, m, hashes, at, out)
    return _multi_proof(k, hi, leaves, m, b, hashes, at, out)


def _multi_root(
    lo: int,
    hi: int,
    leaves: list[int],
    leaf_hashes: list[bytes],
    a: int,
    b: int,
    proof: Sequence[bytes],
    at: int,
) -> tuple[bytes, int]:
    """MTH(D[lo:hi]) from the leaf hashes of ``leaves[a:b]`` and ``proof[at:]``; returns
    it with the index of the next unused proof hash."""
    if a == b:
        return proof[at], at + 1
    if hi - lo == 1:
        return leaf_hashes[a], at
    k = lo + _largest_pow2_below(hi - lo)
    m = bisect_left(leaves, k, a, b)
    left, at = _multi_root(lo, k, leaves, leaf_hashes, a, m, proof, at)
    right, at = _multi_root(k, hi, leaves, leaf_hashes, m, b, proof, at)
    return node_hash(left, right), at
