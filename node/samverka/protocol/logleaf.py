"""The leaves of the hub's transparency log: part of the protocol (issue 11).

Pure. The hub appends them (``samverka_hub.tlog``); a node recomputes them from what it
holds to check an inclusion proof (:mod:`samverka.protocol.inclusion`); anyone reading
the C2SP entry bundles parses them. A small versioned binary format, the same for every
entry whatever its visibility::

    entry leaf      0x01 0x01  u64 sequence  u8 len  origin (ASCII)  32-byte entry hash
    directory leaf  0x01 0x02  u64 version   32-byte digest of the directory bytes

(0x01 is the format version, the second byte the kind; integers big-endian.) A leaf
is a *commitment*, never the entry itself: the entry hash is the chain hash (SHA-256
of the signed entry bytes, :func:`samverka.protocol.signing.entry_hash`) the origin's
feed already links, so a leaf proves exactly which entry stood at that place, and
anyone holding the entry checks it by hashing. A MEMBERS entry's leaf is thus its
redacted stand-in (origin, sequence, entry hash): the log leaks nothing. The
directory digest is :func:`samverka.protocol.directory.directory_digest` of the
signed directory's ``directory`` bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LEAF_FORMAT = 1
KIND_ENTRY = 1
KIND_DIRECTORY = 2


def entry_leaf(origin: str, sequence: int, entry_hash: bytes) -> bytes:
    """The leaf of one log entry: its redacted stand-in (origin, sequence, hash)."""
    raw = origin.encode("ascii")
    if not 0 < len(raw) < 256 or len(entry_hash) != 32:
        raise ValueError("an entry leaf needs an origin and a 32-byte entry hash")
    return (
        bytes((LEAF_FORMAT, KIND_ENTRY)) + struct.pack(">QB", sequence, len(raw)) + raw + entry_hash
    )


def directory_leaf(version: int, digest: bytes) -> bytes:
    """The leaf of one member-directory version: its number and digest."""
    if len(digest) != 32:
        raise ValueError("a directory leaf needs a 32-byte digest")
    return bytes((LEAF_FORMAT, KIND_DIRECTORY)) + struct.pack(">Q", version) + digest


@dataclass(frozen=True, slots=True)
class Leaf:
    kind: int
    #: The sequence (entries) or version (directories).
    number: int
    origin: str
    digest: bytes


def parse_leaf(data: bytes) -> Leaf:
    """The inverse of :func:`entry_leaf` / :func:`directory_leaf`; ValueError if malformed."""
    if len(data) < 2 or data[0] != LEAF_FORMAT:
        raise ValueError("not a samverka log leaf of format 1")
    if data[1] == KIND_DIRECTORY and len(data) == 42:
        (version,) = struct.unpack(">Q", data[2:10])
        return Leaf(KIND_DIRECTORY, version, "", data[10:])
    if data[1] == KIND_ENTRY and len(data) >= 11:
        sequence, n = struct.unpack(">QB", data[2:11])
        if len(data) == 11 + n + 32:
            return Leaf(KIND_ENTRY, sequence, data[11 : 11 + n].decode("ascii"), data[11 + n :])
    raise ValueError("malformed samverka log leaf")
