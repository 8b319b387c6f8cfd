"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles): the log served as static tiles.

Pure. A hash tile at level L, index N holds up to 256 consecutive Merkle tree hashes at
tree level 8·L (level 0: leaf hashes; level L ≥ 1: the root of each *full* tile of level
L-1); a partial tile (the right edge) holds the W < 256 hashes a tree size has so far. An
entry bundle holds the leaves of a level-0 tile, each as a big-endian uint16 length and
its bytes. Paths: ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``, N written in
groups of three digits, all but the last prefixed with ``x`` (1234067 → x001/x234/067).

The tile arithmetic is Go's ``golang.org/x/mod/sumdb/tlog`` (tile.go) at height 8:
:func:`tile_for_storage_index`, :func:`hash_from_tile`, :func:`new_tiles`,
:func:`read_tile_data`, and :class:`TileHashReader`, which serves stored hashes out of
fetched tiles after authenticating those tiles against a trusted tree size and root.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from samverka.errors import SamverkaError
from samverka.protocol.merkle import (
    HASH_SIZE,
    MAX_TREE_SIZE,
    HashReader,
    HashReaderError,
    node_hash,
    split_stored_hash_index,
    stored_hash_index,
    tree_hash_indexes,
)

#: Tile height: each tile spans 8 tree levels.
TILE_HEIGHT = 8
#: Hashes (or entries) in a full tile.
TILE_WIDTH = 1 << TILE_HEIGHT
#: Bytes in a full hash tile.
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
#: The level that names entry bundles (``tile/entries/…``) rather than hash tiles.
ENTRIES_LEVEL = -1
#: Highest hash-tile level a path may name.
MAX_LEVEL = 63
#: Largest entry an entry bundle can carry (its length is a uint16).
MAX_ENTRY_SIZE = 0xFFFF
#: Longest tile path accepted (a 2^63 index takes well under this).
MAX_PATH_LENGTH = 128

#: Returns the bytes of each tile asked for, in the same order (may do I/O; not here).
TileReader = Callable[[Sequence["Tile"]], Sequence[bytes]]


class TileError(SamverkaError):
    """Base of the refusals of a tile, an entry bundle or a tile path."""

    reason = "tile_invalid"


class MalformedTilePath(TileError):
    """A path that is not exactly ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``
    in canonical form (no leading zeroes, W in 1..255, L in 0..63, N within 2^63 leaves)."""

    reason = "malformed_tile_path"


class MalformedTile(TileError):
    """Hash-tile bytes of another length than its width × 32."""

    reason = "malformed_tile"


class MalformedEntryBundle(TileError):
    """An entry bundle that does not hold exactly its width of length-prefixed entries."""

    reason = "malformed_entry_bundle"


class EntryTooLarge(TileError):
    """An entry longer than a bundle can carry, or than the configured limit."""

    reason = "entry_too_large"


class InconsistentTile(TileError):
    """Fetched tiles that do not hash to the trusted root (or to their parent tile)."""

    reason = "inconsistent_tile"


class HashNotInTree(TileError):
    """A stored hash asked of a tree that does not have it yet (or a tile that does not
    hold it)."""

    reason = "hash_not_in_tree"


@dataclass(frozen=True, slots=True, order=True)
class Tile:
    """A hash tile (level ≥ 0) or an entry bundle (level :data:`ENTRIES_LEVEL`), its index
    N within the level and its width W (256 when full)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not ENTRIES_LEVEL <= self.level <= MAX_LEVEL:
            raise MalformedTilePath(f"tile level {self.level} out of range")
        if not 1 <= self.width <= TILE_WIDTH:
            raise MalformedTilePath(f"tile width {self.width} out of range")
        if self.index < 0 or self.start_leaf > MAX_TREE_SIZE:
            raise MalformedTilePath(f"tile index {self.index} out of range")

    @property
    def is_entries(self) -> bool:
        return self.level == ENTRIES_LEVEL

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def start_leaf(self) -> int:
        """The first leaf the tile spans (its *start index*)."""
        return self.index << (TILE_HEIGHT * (max(self.level, 0) + 1))

    @property
    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``."""
        level = "entries" if self.is_entries else str(self.level)
        suffix = f".p/{self.width}" if self.is_partial else ""
        return f"tile/{level}/{_encode_index(self.index)}{suffix}"

    @property
    def byte_length(self) -> int:
        """The exact length of a hash tile's bytes (not defined for entry bundles)."""
        if self.is_entries:
            raise TileError("an entry bundle's length depends on its entries")
        return self.width * HASH_SIZE

    def full(self) -> Tile:
        """The full tile this partial tile will grow into."""
        return Tile(self.level, self.index, TILE_WIDTH)

    def __str__(self) -> str:
        return self.path


def _encode_index(n: int) -> str:
    s = f"{n % 1000:03d}"
    while n >= 1000:
        n //= 1000
        s = f"x{n % 1000:03d}/{s}"
    return s


_PATH = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?"
)


def parse_tile_path(path: str) -> Tile:
    """Parse a tile path strictly: only the canonical form of a valid tile is accepted."""
    if len(path) > MAX_PATH_LENGTH:
        raise MalformedTilePath("tile path too long")
    m = _PATH.fullmatch(path)
    if m is None:
        raise MalformedTilePath(f"malformed tile path {path!r}")
    level_s, groups, last, width_s = m.groups()
    level = ENTRIES_LEVEL if level_s == "entries" else int(level_s)
    index = 0
    for g in [*groups.split("/")[:-1], "x" + last]:
        index = index * 1000 + int(g[1:])
    width = TILE_WIDTH if width_s is None else int(width_s)
    if width_s is not None and width >= TILE_WIDTH:
        raise MalformedTilePath(f"partial tile width {width} must be below {TILE_WIDTH}")
    try:
        tile = Tile(level, index, width)
    except MalformedTilePath as exc:
        raise MalformedTilePath(f"malformed tile path {path!r}: {exc}") from exc
    if tile.path != path:  # e.g. a leading x000/ group
        raise MalformedTilePath(f"tile path {path!r} is not canonical ({tile.path!r})")
    return tile


# --- Which tiles ------------------------------------------------------------------------


def tile_for_storage_index(index: int) -> Tile:
    """The narrowest hash tile holding (the inputs of) the stored hash at ``index``."""
    return _tile_for_index(index)[0]


def _tile_for_index(index: int) -> tuple[Tile, int, int]:
    """The tile, and the byte range of the tile's hashes whose subtree hash is stored at
    ``index`` (a hash at a level within the tile is recomputed from its bottom row)."""
    level, n = split_stored_hash_index(index)
    tile_level = level // TILE_HEIGHT
    level -= tile_level * TILE_HEIGHT  # level within the tile
    tile_index = (n << level) >> TILE_HEIGHT
    n -= (tile_index << TILE_HEIGHT) >> level  # n within the tile, at that level
    width = (n + 1) << level
    return Tile(tile_level, tile_index, width), (n << level) * HASH_SIZE, width * HASH_SIZE


def new_tiles(old_size: int, new_size: int) -> list[Tile]:
    """The hash tiles to publish when the tree grows from ``old_size`` to ``new_size``
    (every tile of the new size that the old one did not have at that width)."""
    if not 0 <= old_size <= new_size <= MAX_TREE_SIZE:
        raise TileError(f"tree sizes {old_size}→{new_size} out of order or range")
    tiles: list[Tile] = []
    level = 0
    while new_size >> (TILE_HEIGHT * level) > 0:
        old_n = old_size >> (TILE_HEIGHT * level)
        new_n = new_size >> (TILE_HEIGHT * level)
        if old_n != new_n:
            for n in range(old_n >> TILE_HEIGHT, new_n >> TILE_HEIGHT):
                tiles.append(Tile(level, n, TILE_WIDTH))
            n = new_n >> TILE_HEIGHT
            width = new_n - (n << TILE_HEIGHT)
            if width > 0:
                tiles.append(Tile(level, n, width))
        level += 1
    return tiles


def tiles_for_size(size: int) -> list[Tile]:
    """Every hash tile of a tree of ``size`` leaves, at the width that size gives it."""
    return new_tiles(0, size)


def new_entry_bundles(old_size: int, new_size: int) -> list[Tile]:
    """The entry bundles to publish when the tree grows from ``old_size`` to ``new_size``."""
    return [
        Tile(ENTRIES_LEVEL, t.index, t.width) for t in new_tiles(old_size, new_size) if t.level == 0
    ]


def entry_bundle_for(index: int, size: int) -> Tile:
    """The entry bundle holding leaf ``index`` in a tree of ``size`` leaves."""
    if not 0 <= index < size <= MAX_TREE_SIZE:
        raise HashNotInTree(f"leaf {index} is not in a tree of size {size}")
    n = index >> TILE_HEIGHT
    return Tile(ENTRIES_LEVEL, n, min(TILE_WIDTH, size - (n << TILE_HEIGHT)))


def tile_at_size(tile: Tile, size: int) -> Tile | None:
    """``tile`` at the width a tree of ``size`` leaves gives it (None if it has no such
    tile yet)."""
    return _tile_parent(tile, 0, size)


def _tile_parent(t: Tile, k: int, size: int) -> Tile | None:
    """The k'th parent of ``t`` among the tiles of a tree of ``size`` (Go: tileParent)."""
    assert t.level >= 0, "entry bundles have no parents"
    level = t.level + k
    n = t.index >> (k * TILE_HEIGHT)
    width = TILE_WIDTH
    top = size >> (level * TILE_HEIGHT)
    if (n << TILE_HEIGHT) + width >= top:
        if (n << TILE_HEIGHT) >= top:
            return None
        width = top - (n << TILE_HEIGHT)
    return Tile(level, n, width)


# --- Tile bytes ---------------------------------------------------------------------------


def read_tile_data(tile: Tile, read: HashReader) -> bytes:
    """A hash tile's bytes, built from the stored hashes (Go: ReadTileData)."""
    if tile.is_entries:
        raise TileError("an entry bundle is built from entries, not stored hashes")
    start = tile.index << TILE_HEIGHT
    indexes = [stored_hash_index(TILE_HEIGHT * tile.level, start + i) for i in range(tile.width)]
    hashes = list(read(indexes))
    if len(hashes) != len(indexes):
        raise HashReaderError(f"asked for {len(indexes)} hashes, got {len(hashes)}")
    if any(len(h) != HASH_SIZE for h in hashes):
        raise HashReaderError("a stored hash is not 32 bytes")
    return b"".join(hashes)


def hash_from_tile(tile: Tile, data: bytes, index: int) -> bytes:
    """The stored hash at ``index``, out of ``tile``'s bytes (Go: HashFromTile); ``tile``
    must be the tile :func:`tile_for_storage_index` names, or a wider version of it."""
    if tile.is_entries:
        raise TileError("an entry bundle holds entries, not hashes")
    if len(data) != tile.byte_length:
        raise MalformedTile(f"{tile.path} is {tile.byte_length} bytes, not {len(data)}")
    t1, start, end = _tile_for_index(index)
    if (t1.level, t1.index) != (tile.level, tile.index) or tile.width < t1.width:
        raise HashNotInTree(f"stored hash {index} is in {t1.path}, not {tile.path}")
    return _subtree_hash_of_row(data[start:end])


def _subtree_hash_of_row(data: bytes) -> bytes:
    """The hash of the perfect subtree whose 2^k bottom hashes are ``data``."""
    if len(data) == HASH_SIZE:
        return data
    half = len(data) // 2
    return node_hash(_subtree_hash_of_row(data[:half]), _subtree_hash_of_row(data[half:]))


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """Each entry as a big-endian uint16 length and its bytes."""
    out = bytearray()
    count = 0
    for e in entries:
        if len(e) > MAX_ENTRY_SIZE:
            raise EntryTooLarge(f"entry of {len(e)} bytes; a bundle carries at most 65535")
        out += len(e).to_bytes(2, "big") + e
        count += 1
    if count > TILE_WIDTH:
        raise MalformedEntryBundle(f"{count} entries; a bundle holds at most {TILE_WIDTH}")
    return bytes(out)


def decode_entry_bundle(
    data: bytes, width: int, *, max_entry_size: int = MAX_ENTRY_SIZE
) -> list[bytes]:
    """The ``width`` entries of a bundle; refuses trailing bytes, a short bundle and any
    entry longer than ``max_entry_size``."""
    if not 1 <= width <= TILE_WIDTH:
        raise MalformedEntryBundle(f"bundle width {width} out of range")
    if len(data) > width * (2 + min(max_entry_size, MAX_ENTRY_SIZE)):
        raise EntryTooLarge(f"bundle of {len(data)} bytes is larger than {width} entries can be")
    entries: list[bytes] = []
    pos = 0
    for _ in range(width):
        if pos + 2 > len(data):
            raise MalformedEntryBundle(f"bundle ends after {len(entries)} of {width} entries")
        size = int.from_bytes(data[pos : pos + 2], "big")
        if size > max_entry_size:
            raise EntryTooLarge(f"entry of {size} bytes, limit {max_entry_size}")
        pos += 2
        if pos + size > len(data):
            raise MalformedEntryBundle("bundle ends inside an entry")
        entries.append(data[pos : pos + size])
        pos += size
    if pos != len(data):
        raise MalformedEntryBundle(f"{len(data) - pos} bytes after the last entry")
    return entries


# --- Reading authenticated hashes out of fetched tiles ------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    tiles: list[Tile]
    root_tiles: list[int]  # for each tree_hash_indexes(size) entry, its tile's position
    index_tiles: list[int]  # for each requested index, its tile's position


def _plan(size: int, indexes: Sequence[int]) -> _Plan:
    order: dict[Tile, int] = {}
    tiles: list[Tile] = []
    stx = tree_hash_indexes(size)
    root_tiles: list[int] = []
    for x in stx:
        t = _tile_parent(_tile_for_index(x)[0], 0, size)
        assert t is not None, "bad math in tile plan"
        if t not in order:
            order[t] = len(tiles)
            tiles.append(t)
        root_tiles.append(order[t])
    limit = stored_hash_index(0, size) if size else 0
    index_tiles: list[int] = []
    for x in indexes:
        if not 0 <= x < limit:
            raise HashNotInTree(f"stored hash {x} is not in a tree of size {size}")
        tile = _tile_for_index(x)[0]
        # Walk up to a tile already planned (authenticated first), then back down,
        # recording each child after its parent.
        k = 0
        while True:
            p = _tile_parent(tile, k, size)
            if p is not None and p in order:
                break
            k += 1
            assert k <= MAX_LEVEL, "bad math in tile plan: no planned ancestor"
        for j in range(k - 1, -1, -1):
            p = _tile_parent(tile, j, size)
            assert p is not None and p.width == TILE_WIDTH, "only full tiles have parents"
            order[p] = len(tiles)
            tiles.append(p)
        t0 = _tile_parent(tile, 0, size)
        assert t0 is not None
        index_tiles.append(order[t0])
    return _Plan(tiles, root_tiles, index_tiles)


def tiles_needed(size: int, indexes: Sequence[int]) -> list[Tile]:
    """The hash tiles a client of a tree of ``size`` leaves fetches to read the stored
    hashes at ``indexes`` and authenticate them against the root: the tiles of the root
    first, then each index's tile with any parents it needs, parents before children."""
    return list(_plan(size, indexes).tiles)


class TileHashReader:
    """A :data:`HashReader` over fetched tiles of a trusted tree (size, root), for use with
    :func:`~samverka.protocol.merkle.inclusion_proof`,
    :func:`~samverka.protocol.merkle.consistency_proof` and
    :func:`~samverka.protocol.merkle.tree_hash` (Go: TileHashReader).

    Each call fetches the tiles :func:`tiles_needed` names through ``read_tiles``, checks
    that they hash to ``root`` (and that each full tile hashes to its parent's entry) and
    only then returns hashes, so everything it returns is proven to be in the tree.
    """

    __slots__ = ("_read_tiles", "_root", "_size")

    def __init__(self, size: int, root: bytes, read_tiles: TileReader) -> None:
        if not 0 <= size <= MAX_TREE_SIZE:
            raise TileError(f"tree size {size} out of range")
        if len(root) != HASH_SIZE:
            raise MalformedTile("a root hash is 32 bytes")
        self._size = size
        self._root = root
        self._read_tiles = read_tiles

    def __call__(self, indexes: Sequence[int]) -> list[bytes]:
        if not indexes:
            return []
        plan = _plan(self._size, indexes)
        data = list(self._read_tiles(plan.tiles))
        if len(data) != len(plan.tiles):
            raise HashReaderError(f"asked for {len(plan.tiles)} tiles, got {len(data)}")
        for tile, d in zip(plan.tiles, data, strict=True):
            if len(d) != tile.byte_length:
                raise MalformedTile(f"{tile.path} is {len(d)} bytes, not {tile.byte_length}")
        # The tiles of the root, against the trusted root.
        stx = tree_hash_indexes(self._size)
        pos = plan.root_tiles
        th = hash_from_tile(plan.tiles[pos[-1]], data[pos[-1]], stx[-1])
        for i in range(len(stx) - 2, -1, -1):
            th = node_hash(hash_from_tile(plan.tiles[pos[i]], data[pos[i]], stx[i]), th)
        if th != self._root:
            raise InconsistentTile(f"the tiles do not hash to the root of size {self._size}")
        # Every other tile against its parent, parents having come first.
        order = {t: i for i, t in enumerate(plan.tiles)}
        for i in range(len(set(plan.root_tiles)), len(plan.tiles)):
            tile = plan.tiles[i]
            parent = _tile_parent(tile, 1, self._size)
            assert parent is not None and parent in order, "lost parent in tile plan"
            j = order[parent]
            want = hash_from_tile(
                parent, data[j], stored_hash_index(parent.level * TILE_HEIGHT, tile.index)
            )
            if _subtree_hash_of_row(data[i]) != want:
                raise InconsistentTile(f"{tile.path} does not hash to its entry in {parent.path}")
        return [
            hash_from_tile(plan.tiles[j], data[j], x)
            for j, x in zip(plan.index_tiles, indexes, strict=True)
        ]
