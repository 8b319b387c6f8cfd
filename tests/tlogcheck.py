"""An independent checker of a C2SP tiled transparency log.

Written only from RFC 9162 (§2.1 Merkle trees, proofs and their verification) and the
C2SP texts (signed-note, tlog-checkpoint, tlog-cosignature, tlog-tiles). It imports
nothing from ``samverka``: only the standard library and ``cryptography``. A second
implementation, so that a mistake shared by the project's own code and its tests cannot
go unnoticed.

What it checks, given a log prefix URL (…/log/), the log's verifier key and optionally
witness keys:

1. ``checkpoint`` is a signed note signed by the log key (and counts valid cosignatures
   by the witnesses), and its body is a well-formed checkpoint;
2. the hash tiles hash to the checkpoint's root (all of them when ``audit_all``), and
   every full tile hashes to its entry in the tile above;
3. entry bundles hash, leaf by leaf, to the level-0 tiles;
4. inclusion proofs of sampled leaves, computed here from tiles (RFC 9162 §2.1.3.1) and
   verified with §2.1.3.2 (and :func:`combined_inclusion_ok` for the hub's combined
   proof of several leaves, a Samverka addition);
5. a consistency proof between two checkpoints it fetched (§2.1.4.1, verified with
   §2.1.4.2), computed from the tiles of the newer one.

The fetch is one injectable function ``fetch(path) -> bytes``, relative to the prefix,
so tests can serve bytes from memory; :func:`http_fetcher` does it over HTTP(S).

Usage: ``python tests/tlogcheck.py URL VKEY [--witness VKEY]... [--sample N]``
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Fetch = Callable[[str], bytes]

MAX_CHECKPOINT_BYTES = 1 << 16
MAX_TILE_BYTES = 256 * 32
MAX_BUNDLE_BYTES = 256 * (2 + 0xFFFF)


class CheckError(Exception):
    """The log failed a check; the message says which and where."""


class FetchError(CheckError):
    """A resource could not be fetched."""


# --- RFC 9162 §2.1 ------------------------------------------------------------------------


def _h_leaf(entry: bytes) -> bytes:
    return hashlib.sha256(bytes([0]) + entry).digest()


def _h_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(bytes([1]) + left + right).digest()


def _split_point(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_inclusion_ok(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _h_node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            r = _h_node(r, p)
        fn //= 2
        sn //= 2
    return sn == 0 and r == root


def combined_inclusion_ok(
    size: int, leaves: dict[int, bytes], hashes: Sequence[bytes], root: bytes
) -> bool:
    """Samverka's combined proof of several leaves (hub_service.proto,
    GetInclusionProofsResponse.combined), from its definition: the MTH of every largest
    subtree of RFC 9162 §2.1.1's split holding none of ``leaves`` (index -> leaf hash),
    left to right."""
    if not leaves or max(leaves) >= size or min(leaves) < 0:
        return False
    given = iter(hashes)

    def mth(lo: int, hi: int) -> bytes:
        if not any(lo <= i < hi for i in leaves):
            return next(given)
        if hi - lo == 1:
            return leaves[lo]
        k = _split_point(hi - lo)
        return _h_node(mth(lo, lo + k), mth(lo + k, hi))

    try:
        computed = mth(0, size)
    except StopIteration:
        return False
    return next(given, None) is None and computed == root


def rfc_consistency_ok(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step (for 0 < first < second)."""
    if not 0 < first < second or not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn //= 2
        sn //= 2
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = _h_node(c, fr)
            sr = _h_node(c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            sr = _h_node(sr, c)
        fn //= 2
        sn //= 2
    return fr == first_hash and sr == second_hash and sn == 0


# --- Signed notes and checkpoints (C2SP) --------------------------------------------------


@dataclass(frozen=True)
class VKey:
    name: str
    key_id: bytes
    sig_type: int
    public: bytes


def parse_vkey(text: str) -> VKey:
    """``<name>+<hex key ID>+<base64(type || key)>`` (signed-note §Verifier keys)."""
    pieces = text.split("+", 2)
    if len(pieces) != 3 or not pieces[0] or len(pieces[1]) != 8:
        raise CheckError(f"not a verifier key: {text!r}")
    name = pieces[0]
    try:
        key_id = bytes.fromhex(pieces[1])
        material = base64.b64decode(pieces[2], validate=True)
    except ValueError as exc:
        raise CheckError(f"not a verifier key: {text!r}") from exc
    if len(material) != 33 or material[0] not in (0x01, 0x04):
        raise CheckError("only Ed25519 (0x01) and cosignature/v1 (0x04) keys are supported")
    if hashlib.sha256(name.encode() + b"\n" + material).digest()[:4] != key_id:
        raise CheckError(f"key ID of {name} does not match its key")
    return VKey(name, key_id, material[0], material[1:])


def _ed25519_ok(public: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, msg)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class SignedCheckpoint:
    origin: str
    size: int
    root: bytes
    cosigners: tuple[str, ...]


def verify_checkpoint(raw: bytes, log_key: VKey, witnesses: Sequence[VKey]) -> SignedCheckpoint:
    """Verify a checkpoint note: the log's Ed25519 signature, witnesses' cosignatures."""
    if len(raw) > MAX_CHECKPOINT_BYTES:
        raise CheckError("checkpoint too large")
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckError("checkpoint is not UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise CheckError("checkpoint holds a control character")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise CheckError("checkpoint has no signature block")
    text, block = note[: cut + 1], note[cut + 2 :]
    body = text.encode()
    log_ok = False
    cosigners: list[str] = []
    for line in block.splitlines():
        if not line.startswith("\u2014 "):
            raise CheckError(f"bad signature line {line!r}")
        name, _, b64 = line[2:].partition(" ")
        try:
            sig = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise CheckError(f"signature by {name} is not base64") from exc
        key_id, rest = sig[:4], sig[4:]
        if name == log_key.name and key_id == log_key.key_id:
            if not _ed25519_ok(log_key.public, body, rest):
                raise CheckError("the log's signature on the checkpoint does not verify")
            log_ok = True
            continue
        for w in witnesses:
            if name == w.name and key_id == w.key_id:
                if len(rest) != 72:
                    raise CheckError(f"cosignature by {name} has the wrong length")
                t = int.from_bytes(rest[:8], "big")
                msg = b"cosignature/v1\ntime " + str(t).encode() + b"\n" + body
                if not _ed25519_ok(w.public, msg, rest[8:]):
                    raise CheckError(f"cosignature by {name} does not verify")
                cosigners.append(name)
    if not log_ok:
        raise CheckError("the checkpoint carries no signature by the log key")
    lines = text.split("\n")[:-1]
    if len(lines) < 3 or any(not x for x in lines):
        raise CheckError("checkpoint body has fewer than three lines or an empty line")
    size_s = lines[1]
    if not size_s.isascii() or not size_s.isdigit() or (size_s != "0" and size_s[0] == "0"):
        raise CheckError(f"bad tree size {size_s!r}")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except ValueError as exc:
        raise CheckError("root hash is not base64") from exc
    if len(root) != 32:
        raise CheckError("root hash is not 32 bytes")
    return SignedCheckpoint(lines[0], int(size_s), root, tuple(sorted(set(cosigners))))


# --- Tiles (C2SP tlog-tiles) --------------------------------------------------------------


def tile_path(level: str, n: int, width: int) -> str:
    groups = []
    while True:
        groups.append(n % 1000)
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    parts = [f"x{g:03d}" for g in groups[:-1]] + [f"{groups[-1]:03d}"]
    p = f"tile/{level}/" + "/".join(parts)
    return p + (f".p/{width}" if width < 256 else "")


class TileView:
    """The tree of one checkpoint, read through its tiles. Each tile is fetched once at
    the width the tree size gives it (falling back to the full tile, as the spec allows)."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        self.fetch = fetch
        self.size = size
        self.tiles: dict[tuple[int, int], list[bytes]] = {}
        self.fetched = 0

    def width(self, level: int, n: int) -> int:
        """Width of tile (level, n): the hashes at tree level 8*level that exist."""
        count = self.size >> (8 * level)
        return max(0, min(256, count - 256 * n))

    def tile(self, level: int, n: int) -> list[bytes]:
        key = (level, n)
        if key not in self.tiles:
            w = self.width(level, n)
            if w == 0:
                raise CheckError(f"tile {level}/{n} does not exist at size {self.size}")
            data = _get(self.fetch, tile_path(str(level), n, w), MAX_TILE_BYTES, w < 256)
            if w < 256 and data is None:
                data = _get(self.fetch, tile_path(str(level), n, 256), MAX_TILE_BYTES, False)
                data = None if data is None else data[: 32 * w]
            assert data is not None
            if len(data) != 32 * w:
                raise CheckError(f"tile {level}/{n} is {len(data)} bytes, expected {32 * w}")
            self.tiles[key] = [data[i : i + 32] for i in range(0, len(data), 32)]
            self.fetched += 1
        return self.tiles[key]

    def perfect(self, height: int, start: int) -> bytes:
        """MTH of the 2**height leaves from ``start`` (aligned), out of the tiles: the
        tile at level height//8 holds the hashes of tree level 8*(height//8); the rest of
        the way up is hashed here."""
        level, within = divmod(height, 8)
        first = start >> (8 * level)  # position at tree level 8*level
        row = [self.tile(level, (first + i) // 256)[(first + i) % 256] for i in range(1 << within)]
        while len(row) > 1:
            row = [_h_node(row[i], row[i + 1]) for i in range(0, len(row), 2)]
        return row[0]

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) (RFC 9162 §2.1.1) for a range the tiles can give: [lo, hi) is a
        node of the RFC's recursion (lo is a multiple of the largest power of 2 ≤ hi-lo)."""
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n & (n - 1) == 0 and lo % n == 0:
            return self.perfect(n.bit_length() - 1, lo)
        k = _split_point(n)
        return _h_node(self.mth(lo, lo + k), self.mth(lo + k, hi))

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]) (RFC 9162 §2.1.3.1), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []
        k = _split_point(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:hi], b) (RFC 9162 §2.1.4.1)."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _split_point(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]


def _get(fetch: Fetch, path: str, limit: int, may_miss: bool) -> bytes | None:
    try:
        data = fetch(path)
    except FetchError:
        if may_miss:
            return None
        raise
    if len(data) > limit:
        raise CheckError(f"{path} is larger than {limit} bytes")
    return data


def read_bundle(fetch: Fetch, n: int, width: int) -> list[bytes]:
    data = _get(fetch, tile_path("entries", n, width), MAX_BUNDLE_BYTES, False)
    assert data is not None
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise CheckError(f"entry bundle {n} is truncated")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 + length > len(data):
            raise CheckError(f"entry bundle {n} is truncated")
        out.append(data[pos + 2 : pos + 2 + length])
        pos += 2 + length
    if len(out) != width:
        raise CheckError(f"entry bundle {n} holds {len(out)} entries, expected {width}")
    return out


# --- The check ----------------------------------------------------------------------------


@dataclass
class Report:
    origin: str = ""
    size: int = 0
    cosigners: tuple[str, ...] = ()
    leaves_checked: list[int] = field(default_factory=list)
    bundles_checked: int = 0
    tiles_fetched: int = 0
    consistency: tuple[int, int] | None = None


def check_log(
    fetch: Fetch,
    log_vkey: str,
    *,
    witness_vkeys: Sequence[str] = (),
    min_cosigners: int = 0,
    sample: int = 8,
    audit_all: bool = False,
    previous: SignedCheckpoint | None = None,
    rng: random.Random | None = None,
) -> tuple[Report, SignedCheckpoint]:
    """Check the log as it is now. With ``previous`` (a checkpoint fetched before), also
    prove the current tree extends it. Raises :class:`CheckError` on the first failure."""
    log_key = parse_vkey(log_vkey)
    if log_key.sig_type != 0x01:
        raise CheckError("the log key must be an Ed25519 note key (type 0x01)")
    witnesses = [parse_vkey(v) for v in witness_vkeys]
    if any(w.sig_type != 0x04 for w in witnesses):
        raise CheckError("witness keys must be cosignature/v1 keys (type 0x04)")
    raw = fetch("checkpoint")
    cp = verify_checkpoint(raw, log_key, witnesses)
    if cp.origin != log_key.name:
        raise CheckError(f"checkpoint origin {cp.origin!r} is not the log's name")
    if len(cp.cosigners) < min_cosigners:
        raise CheckError(f"{len(cp.cosigners)} cosignatures, {min_cosigners} required")
    report = Report(origin=cp.origin, size=cp.size, cosigners=cp.cosigners)
    view = TileView(fetch, cp.size)
    if view.mth(0, cp.size) != cp.root:
        raise CheckError("the tiles do not hash to the checkpoint's root")
    rng = rng or random.Random()
    if cp.size:
        if audit_all:
            _audit_all(view, fetch, cp, report)
        picks = {0, cp.size - 1, *(rng.randrange(cp.size) for _ in range(sample))}
        for i in sorted(picks):
            bundle_n = i // 256
            entries = read_bundle(fetch, bundle_n, min(256, cp.size - 256 * bundle_n))
            leaf = _h_leaf(entries[i % 256])
            if leaf != view.tile(0, bundle_n)[i % 256]:
                raise CheckError(f"leaf {i}: the entry does not hash to its level-0 tile hash")
            proof = view.path(i, 0, cp.size)
            if not rfc_inclusion_ok(i, cp.size, leaf, proof, cp.root):
                raise CheckError(f"leaf {i}: the inclusion proof does not verify")
            report.leaves_checked.append(i)
    if previous is not None:
        _check_consistency(view, previous, cp)
        report.consistency = (previous.size, cp.size)
    report.tiles_fetched = view.fetched
    return report, cp


def _audit_all(view: TileView, fetch: Fetch, cp: SignedCheckpoint, report: Report) -> None:
    """Every tile against the tile above it, every bundle against its level-0 tile."""
    level = 0
    while cp.size >> (8 * level):
        count = cp.size >> (8 * level)
        for n in range((count + 255) // 256):
            hashes = view.tile(level, n)
            if len(hashes) == 256 and view.width(level + 1, n // 256) > n % 256:
                row = hashes
                while len(row) > 1:
                    row = [_h_node(row[i], row[i + 1]) for i in range(0, len(row), 2)]
                if row[0] != view.tile(level + 1, n // 256)[n % 256]:
                    raise CheckError(f"tile {level}/{n} does not hash to its parent's entry")
        level += 1
    for n in range((cp.size + 255) // 256):
        width = min(256, cp.size - 256 * n)
        entries = read_bundle(fetch, n, width)
        hashes = view.tile(0, n)
        for j, e in enumerate(entries):
            if _h_leaf(e) != hashes[j]:
                raise CheckError(f"leaf {256 * n + j}: its entry does not hash to the tile")
        report.bundles_checked += 1


def _check_consistency(view: TileView, old: SignedCheckpoint, new: SignedCheckpoint) -> None:
    if old.origin != new.origin:
        raise CheckError("the two checkpoints are of different logs")
    if old.size > new.size:
        raise CheckError(f"the log shrank from {old.size} to {new.size}")
    if old.size == new.size:
        if old.root != new.root:
            raise CheckError(f"two different roots for size {old.size}: a fork")
        return
    if old.size == 0:
        return
    proof = view.subproof(old.size, 0, new.size, True)
    if not rfc_consistency_ok(old.size, new.size, old.root, new.root, proof):
        raise CheckError(f"no consistency between sizes {old.size} and {new.size}: a fork")


def http_fetcher(base_url: str, *, timeout: float = 10.0) -> Fetch:
    """``fetch(path)`` over HTTP(S) against the log prefix ``base_url`` (…/log/)."""
    prefix = base_url if base_url.endswith("/") else base_url + "/"

    def fetch(path: str) -> bytes:
        try:
            with urllib.request.urlopen(prefix + path, timeout=timeout) as resp:
                data: bytes = resp.read(MAX_BUNDLE_BYTES + 1)
                return data
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{path}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise FetchError(f"{path}: {exc}") from exc

    return fetch


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("url")
    ap.add_argument("vkey")
    ap.add_argument("--witness", action="append", default=[])
    ap.add_argument("--min-cosigners", type=int, default=0)
    ap.add_argument("--sample", type=int, default=8)
    ap.add_argument("--all", action="store_true", help="audit every tile and bundle")
    args = ap.parse_args(argv)
    fetch = http_fetcher(args.url)
    try:
        report, _ = check_log(
            fetch,
            args.vkey,
            witness_vkeys=args.witness,
            min_cosigners=args.min_cosigners,
            sample=args.sample,
            audit_all=args.all,
        )
    except CheckError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    print(f"OK {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
