"""The transparency log on the web port, in the C2SP formats (issue 11, point 2).

- ``GET /log/checkpoint``: the checkpoint (C2SP tlog-checkpoint in a C2SP signed
  note) with the witnesses' cosignatures (C2SP tlog-cosignature/v1 lines after the
  log's signature, by kommunkod): the newest one cosigned by ``[tlog] witness_target``
  members (fewer if there are fewer), else the newest
  (:class:`samverka_hub.cosigned.CosignedLog`), ``text/plain``, not cached (it changes
  with every append and cosignature);
- ``GET /log/tile/<L>/<N>[.p/<W>]``: hash tiles of height 8, and
  ``GET /log/tile/entries/<N>[.p/<W>]``: entry bundles (uint16 big-endian length and
  leaf bytes, :func:`samverka_hub.tlog.entry_leaf`), ``application/octet-stream``
  (C2SP tlog-tiles). A tile is served when the newest checkpoint's tree holds it at
  that width or wider: the first W hashes (or entries) of a tile never change, so a
  full tile is cached for a year (immutable) and a partial one a minute (clients move
  on to wider ones). A tile beyond the tree, or a path that is no tile, is 404;
- ``GET /log/key``: the log's verifier key (``<name>+<hash>+<base64>``), ``text/plain``.

Tiles follow the newest checkpoint, which may be newer than the cosigned one served:
a client proves against the checkpoint it holds, and every smaller tree's tiles are
there too.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from samverka.protocol.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    MalformedTilePath,
    Tile,
    encode_entry_bundle,
    parse_tile_path,
    read_tile_data,
    tile_at_size,
)
from starlette.concurrency import run_in_threadpool

from samverka_hub.tlog import LogReader

router = APIRouter(prefix="/log", include_in_schema=False)

TEXT = "text/plain; charset=utf-8"
FULL_TILE_CACHE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=60"
CHECKPOINT_CACHE = "no-cache"


def _reader(request: Request) -> LogReader:
    reader: LogReader | None = getattr(request.app.state, "tlog", None)
    if reader is None:
        raise HTTPException(404, "this server serves no transparency log")
    return reader


@router.get("/key")
async def key(request: Request) -> Response:
    reader = _reader(request)
    return Response(reader.vkey + "\n", media_type=TEXT, headers={"Cache-Control": "no-cache"})


@router.get("/checkpoint")
async def checkpoint(request: Request) -> Response:
    note = await run_in_threadpool(_reader(request).checkpoint_note)
    if note is None:
        raise HTTPException(404, "the log has no checkpoint yet")
    return Response(note, media_type=TEXT, headers={"Cache-Control": CHECKPOINT_CACHE})


@router.get("/tile/{path:path}")
async def tile(request: Request, path: str) -> Response:
    reader = _reader(request)
    try:
        wanted = parse_tile_path("tile/" + path)
    except MalformedTilePath as exc:
        raise HTTPException(404, f"not a tile: {exc}") from exc
    data = await run_in_threadpool(_tile_bytes, reader, wanted)
    if data is None:
        raise HTTPException(404, f"{wanted.path} is beyond the log's tree")
    cache = PARTIAL_TILE_CACHE if wanted.is_partial else FULL_TILE_CACHE
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})


def _tile_bytes(reader: LogReader, wanted: Tile) -> bytes | None:
    """The tile's bytes, or None when the newest checkpoint's tree has no such tile."""
    latest = reader.latest()
    if latest is None:
        return None
    size = latest[0]
    if wanted.is_entries:
        start = wanted.index << TILE_HEIGHT
        if start + wanted.width > size:
            return None
        return encode_entry_bundle(reader.read_leaves(start, wanted.width))
    current = tile_at_size(Tile(wanted.level, wanted.index, TILE_WIDTH), size)
    if current is None or current.width < wanted.width:
        return None
    return read_tile_data(wanted, reader.read_hashes)
