"""``with`` and ``async with`` for objects whose whole exit is ``close()``.

The node, the store, the hub folder and the gRPC clients each hold one resource (a
database engine, a channel) and release it in ``close()``; these mixins spell the
context-manager methods once. Leaving the block closes whether or not it raised, and
never swallows the exception.
"""

from __future__ import annotations

from typing import Self


class Closing:
    """``with obj:`` calls ``obj.close()`` on the way out."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClosing:
    """``async with obj:`` awaits ``obj.close()`` on the way out."""

    __slots__ = ()

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
