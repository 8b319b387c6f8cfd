"""C2SP tlog-tiles (samverka.protocol.tiles): paths, tile sets, tile bytes, entry bundles
and hashes read back out of fetched tiles, authenticated against the root."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from samverka.protocol import merkle, tiles
from samverka.protocol.tiles import (
    ENTRIES_LEVEL,
    EntryTooLarge,
    HashNotInTree,
    InconsistentTile,
    MalformedEntryBundle,
    MalformedTile,
    MalformedTilePath,
    Tile,
    TileError,
    TileHashReader,
)

# Paths from the C2SP tlog-tiles text (index 1234067 → x001/x234/067) and Go's
# sumdb/tlog tile_test.go vectors, moved to C2SP's height-8, height-less form.
PATHS = [
    ("tile/0/x001/x234/067", Tile(0, 1234067)),
    ("tile/0/x001/x234/067.p/1", Tile(0, 1234067, 1)),
    ("tile/0/001", Tile(0, 1)),
    ("tile/0/001.p/5", Tile(0, 1, 5)),
    ("tile/1/x123/x456/078", Tile(1, 123456078)),
    ("tile/2/x123/x456/078.p/255", Tile(2, 123456078, 255)),
    ("tile/1/x003/x057/500", Tile(1, 3057500)),
    ("tile/entries/000", Tile(ENTRIES_LEVEL, 0)),
    ("tile/entries/x001/000.p/17", Tile(ENTRIES_LEVEL, 1000, 17)),
    ("tile/63/000", Tile(63, 0)),
]

BAD_PATHS = [
    "tile/3/5/123/456/078",  # Go's: an N group without its x
    "tile/0/123/456/078",
    "tile/0/x000/001",  # not canonical: leading zero group
    "tile/0/x001",
    "tile/0/1",
    "tile/0/0001",
    "tile/00/000",
    "tile/01/000",
    "tile/64/000",
    "tile/-1/000",
    "tile/data/000",
    "tile/0/000.p/256",
    "tile/0/000.p/0",
    "tile/0/000.p/05",
    "tile/0/000.p/",
    "tile/0/000.p",
    "tile/0/000/",
    "/tile/0/000",
    "tile//000",
    "tile/0/",
    "tile/0/x1/000",
    "tile/0/X001/000",
    "tile/0/\u0660\u0660\u0660",  # Arabic-Indic digits
    "tile/0/00a",
    "tile/0/000 ",
    "tile/0/000\n",
    "tile/8/x999/x999/x999/x999/x999/x999/999",  # beyond 2^63 leaves
    "tile/entries/entries/000",
    "tiles/0/000",
    "tile/0/" + "x001/" * 40 + "000",
]


@pytest.mark.parametrize(("path", "tile"), PATHS)
def test_path_vectors(path: str, tile: Tile) -> None:
    assert tile.path == path
    assert tiles.parse_tile_path(path) == tile


@pytest.mark.parametrize("path", BAD_PATHS)
def test_malformed_paths_refused(path: str) -> None:
    with pytest.raises(MalformedTilePath):
        tiles.parse_tile_path(path)


@given(
    st.integers(ENTRIES_LEVEL, 7).flatmap(
        # Any index whose tile starts within 2^63 leaves.
        lambda lv: st.tuples(
            st.just(lv), st.integers(0, merkle.MAX_TREE_SIZE >> (8 * (max(lv, 0) + 1)))
        )
    ),
    st.integers(1, 256),
)
def test_paths_round_trip(level_index: tuple[int, int], width: int) -> None:
    level, index = level_index
    tile = Tile(level, index, width)
    assert tiles.parse_tile_path(tile.path) == tile


@given(st.text(alphabet="tile/0123456789xp.entries", max_size=40))
def test_parse_is_strict(path: str) -> None:
    try:
        tile = tiles.parse_tile_path(path)
    except MalformedTilePath:
        return
    assert tile.path == path


def test_c2sp_examples_of_tile_sets() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
    # level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of
    # width 17, and one partial level 2 tile of width 1" (C2SP tlog-tiles).
    got = tiles.tiles_for_size(70_000)
    assert [t for t in got if t.level == 0] == [Tile(0, n) for n in range(273)] + [
        Tile(0, 273, 112)
    ]
    assert [t for t in got if t.level > 0] == [Tile(1, 0), Tile(1, 1, 17), Tile(2, 0, 1)]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level
    # 1 tile of width 1".
    assert tiles.tiles_for_size(256) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tiles.tiles_for_size(0) == []
    assert tiles.new_entry_bundles(250, 600) == [
        Tile(ENTRIES_LEVEL, 0),
        Tile(ENTRIES_LEVEL, 1),
        Tile(ENTRIES_LEVEL, 2, 88),
    ]
    assert tiles.entry_bundle_for(600, 601) == Tile(ENTRIES_LEVEL, 2, 89)


class Log:
    """A log in memory: its stored hashes, and every tile published at every size."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.entries: list[bytes] = []
        self.published: dict[Tile, bytes] = {}

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.hashes[i] for i in indexes]

    def append(self, data: bytes) -> None:
        n = len(self.entries)
        self.hashes.extend(merkle.stored_hashes(n, data, self.read))
        self.entries.append(data)
        for t in tiles.new_tiles(n, n + 1):
            self.published[t] = tiles.read_tile_data(t, self.read)

    def read_tiles(self, wanted: Sequence[Tile]) -> list[bytes]:
        return [self.published[t] for t in wanted]


SIZE = 1200


@pytest.fixture(scope="module")
def log() -> Log:
    lg = Log()
    for i in range(SIZE):
        lg.append(b"entry %d" % i)
    return lg


def test_tiles_extend_and_hold_every_stored_hash(log: Log) -> None:
    # After Go's TestTree: a tile published at width W+1 extends the one at width W, and
    # every stored hash is readable from the tile tile_for_storage_index names.
    for t, data in log.published.items():
        if t.width > 1:
            assert log.published[Tile(t.level, t.index, t.width - 1)] == data[:-32]
        assert len(data) == t.byte_length
    for x in range(len(log.hashes)):
        t = tiles.tile_for_storage_index(x)
        assert tiles.hash_from_tile(t, log.published[t], x) == log.hashes[x]
        if t.is_partial:  # a wider tile serves it too
            wider = Tile(t.level, t.index, t.width + 1)
            if wider in log.published:
                assert tiles.hash_from_tile(wider, log.published[wider], x) == log.hashes[x]


def test_hash_from_tile_refuses(log: Log) -> None:
    t = Tile(0, 0)
    data = log.published[t]
    with pytest.raises(MalformedTile):
        tiles.hash_from_tile(t, data[:-1], 0)
    with pytest.raises(HashNotInTree):
        tiles.hash_from_tile(Tile(0, 1), log.published[Tile(0, 1)], 0)
    with pytest.raises(HashNotInTree):
        tiles.hash_from_tile(Tile(0, 0, 3), log.published[Tile(0, 0, 3)], 9)


@given(st.data())
def test_proofs_from_tiles_equal_proofs_from_storage(log: Log, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, SIZE), label="size")
    root = merkle.tree_hash(size, log.read)
    reader = TileHashReader(size, root, log.read_tiles)
    assert merkle.tree_hash(size, reader) == root
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = merkle.inclusion_proof(size, index, reader)
    assert proof == merkle.inclusion_proof(size, index, log.read)
    merkle.verify_inclusion(merkle.leaf_hash(log.entries[index]), index, size, proof, root)
    old = data.draw(st.integers(0, size), label="old")
    assert merkle.consistency_proof(old, size, reader) == merkle.consistency_proof(
        old, size, log.read
    )


@given(st.data())
def test_any_tampered_tile_is_caught(log: Log, data: st.DataObject) -> None:
    size = data.draw(st.integers(257, SIZE), label="size")
    root = merkle.tree_hash(size, log.read)
    index = data.draw(st.integers(0, size - 1), label="index")
    wanted = merkle.inclusion_proof_indexes(size, index)
    plan = tiles.tiles_needed(size, wanted)
    victim = data.draw(st.sampled_from(plan), label="victim")
    byte = data.draw(st.integers(0, victim.byte_length - 1), label="byte")

    def read_tiles(ts: Sequence[Tile]) -> list[bytes]:
        out = log.read_tiles(ts)
        return [
            d[:byte] + bytes([d[byte] ^ 1]) + d[byte + 1 :] if t == victim else d
            for t, d in zip(ts, out, strict=True)
        ]

    reader = TileHashReader(size, root, read_tiles)
    with pytest.raises(InconsistentTile):
        merkle.inclusion_proof(size, index, reader)


def test_tile_reader_refuses(log: Log) -> None:
    root = merkle.tree_hash(700, log.read)
    reader = TileHashReader(700, root, lambda ts: [b"\0" * 31 for _ in ts])
    with pytest.raises(MalformedTile):
        merkle.tree_hash(700, reader)
    reader = TileHashReader(700, root, log.read_tiles)
    with pytest.raises(HashNotInTree):
        reader([merkle.stored_hash_index(0, 700)])
    with pytest.raises(InconsistentTile):
        TileHashReader(700, merkle.tree_hash(699, log.read), log.read_tiles)([0])
    assert TileHashReader(0, merkle.EMPTY_ROOT, log.read_tiles)([]) == []


def test_tiles_needed_for_a_million_leaves_is_small() -> None:
    n = 1_000_000
    plan = tiles.tiles_needed(n, merkle.inclusion_proof_indexes(n, 123_457))
    # The root's tiles (one per level at most, plus partials) and the leaf's path down.
    assert len(plan) <= 8
    assert len(set(plan)) == len(plan)
    plan = tiles.tiles_needed(n, merkle.consistency_proof_indexes(345_678, n))
    assert len(plan) <= 10


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=256))
def test_entry_bundles_round_trip(entries: list[bytes]) -> None:
    data = tiles.encode_entry_bundle(entries)
    assert tiles.decode_entry_bundle(data, len(entries)) == entries


def test_entry_bundles_refuse() -> None:
    good = tiles.encode_entry_bundle([b"a", b"", b"ccc"])
    with pytest.raises(MalformedEntryBundle):
        tiles.decode_entry_bundle(good[:-1], 3)
    with pytest.raises(MalformedEntryBundle):
        tiles.decode_entry_bundle(good + b"\0", 3)
    with pytest.raises(MalformedEntryBundle):
        tiles.decode_entry_bundle(good, 4)
    with pytest.raises(MalformedEntryBundle):
        tiles.decode_entry_bundle(good, 2)
    with pytest.raises(MalformedEntryBundle):
        tiles.decode_entry_bundle(good, 0)
    with pytest.raises(MalformedEntryBundle):
        tiles.decode_entry_bundle(b"\x00", 1)
    with pytest.raises(EntryTooLarge):
        tiles.decode_entry_bundle(good, 3, max_entry_size=2)
    with pytest.raises(EntryTooLarge):
        tiles.encode_entry_bundle([b"x" * 65536])
    with pytest.raises(MalformedEntryBundle):
        tiles.encode_entry_bundle([b""] * 257)
    with pytest.raises(EntryTooLarge):
        tiles.decode_entry_bundle(b"\x00\x01" + b"x" * 10, 1, max_entry_size=1)


def test_tile_values_refused() -> None:
    top = merkle.MAX_TREE_SIZE >> 16
    assert Tile(1, top).start_leaf <= merkle.MAX_TREE_SIZE
    with pytest.raises(MalformedTilePath):
        tiles.parse_tile_path(Tile(1, top).path.replace("tile/1/", "tile/2/"))
    for args in [(0, 0, 0), (0, 0, 257), (64, 0, 1), (-2, 0, 1), (0, -1, 1), (0, 1 << 56, 1)]:
        with pytest.raises(TileError):
            Tile(*args)
