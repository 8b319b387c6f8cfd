"""A follower stores the live pages that arrived while it stored the last one as one
batch (replication.sync._batched): one verification pass and one commit per burst,
with the same position checks as page by page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import pytest
from samverka.errors import TransportError
from samverka.replication import sync
from samverka.transport.client import Page
from samverka.v1 import feed_pb2


def page(positions: Sequence[int], next_position: int | None = None) -> Page:
    entries = [feed_pb2.LogEntry(position=p) for p in positions]
    return Page(entries, next_position if next_position is not None else max(positions, default=0))


async def stream(
    pages: Sequence[Page], go: asyncio.Event, arrived: asyncio.Event, fail: Exception | None = None
) -> AsyncGenerator[Page, None]:
    """The first page, then (once the caller has it) the rest at once; then it stays
    open as a live stream does, or fails with ``fail``."""
    yield pages[0]
    await go.wait()
    for p in pages[1:]:
        yield p
    arrived.set()
    if fail is not None:
        raise fail
    await asyncio.Event().wait()


async def take(
    pages: Sequence[Page], count: int, fail: Exception | None = None
) -> list[tuple[list[int], int]]:
    """The pages _batched yields when all but the first arrive while the caller stores
    the first."""
    go, arrived = asyncio.Event(), asyncio.Event()
    got: list[tuple[list[int], int]] = []
    batches = sync._batched(stream(pages, go, arrived, fail), asyncio.Event())
    try:
        async with asyncio.timeout(10):
            async for merged in batches:
                got.append(([e.position for e in merged.entries], merged.next_position))
                go.set()
                await arrived.wait()  # storing the first page takes until the rest are here
                for _ in range(3):
                    await asyncio.sleep(0)
                if len(got) == count:
                    break
    finally:
        await batches.aclose()
    return got


def test_pages_that_arrive_while_one_is_stored_come_as_one() -> None:
    got = asyncio.run(take([page([1]), page([2]), page([3, 4]), page([], 6), page([7])], 2))
    assert got == [([1], 1), ([2, 3, 4, 7], 7)]


def test_a_page_that_does_not_follow_its_predecessor_comes_alone() -> None:
    # Position 3 is not after the previous page's resume position (5): the caller's
    # own check must see it as a page of its own, and refuse it.
    got = asyncio.run(take([page([1]), page([2], 5), page([3]), page([8])], 3))
    assert got == [([1], 1), ([2], 5), ([3, 8], 8)]


def test_batches_stop_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync, "FOLLOW_BATCH_MAX", 3)
    got = asyncio.run(take([page([1]), page([2, 3]), page([4]), page([5, 6])], 3))
    assert got == [([1], 1), ([2, 3, 4], 4), ([5, 6], 6)]


def test_a_failure_comes_after_the_pages_read_before_it() -> None:
    with pytest.raises(TransportError, match="gone"):
        asyncio.run(take([page([1]), page([2]), page([3])], 5, fail=TransportError("gone")))


def test_stop_ends_the_pages() -> None:
    async def run() -> list[int]:
        stop = asyncio.Event()
        arrived = asyncio.Event()
        seen: list[int] = []
        pages = stream([page([1]), page([2])], asyncio.Event(), arrived)
        async for merged in sync._batched(pages, stop):
            seen += [e.position for e in merged.entries]
            stop.set()
        return seen

    assert asyncio.run(run()) == [1]
