"""A node serves its feed over mutual TLS; a reader verifies every entry it gets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from samverka.node import Node
from samverka.protocol.verify import KeyRing, TrustedKey
from samverka.replication.sync import sync_from_peer
from samverka.store.store import Store
from samverka.v1 import feed_service_pb2, records_pb2
from serverkit import FEED, LEKSAND, Pki, ServerProcess, run


def _kinds_by_sequence(node: Node) -> dict[int, str]:
    return {seq: body for seq, (body, *_rest) in enumerate(FEED, start=1)}


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_reader_verifies_the_whole_feed(
    host: str,
    node: Node,
    pki: Pki,
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    server = start_server(node.dir, host)
    assert server.address.startswith("[::1]:" if ":" in host else "127.0.0.1:")
    reader = Store.open(f"sqlite:///{tmp_path / 'reader.db'}")
    keys = KeyRing([TrustedKey(LEKSAND, node.signing_key.public)])

    async def scenario() -> None:
        async with pki.client(server.address) as client:
            info = await client.get_node_info()
            assert (info.kommunkod, info.name) == (LEKSAND, "Leksand")
            assert info.public_key == node.signing_key.public
            heads = await client.get_heads()
            assert heads.log_position == len(FEED)
            assert [(h.origin, h.sequence) for h in heads.heads] == [(LEKSAND, len(FEED))]

            report = await sync_from_peer(reader, keys, client, peer="leksand")
            assert (report.accepted, report.duplicates, report.position) == (6, 0, 6)
            again = await sync_from_peer(reader, keys, client, peer="leksand")
            assert (again.accepted, again.start_position, again.position) == (0, 6, 6)

    run(scenario())
    # Same chain as the server's, verified entry by entry; the draft only as a stand-in.
    assert reader.heads() == node.store.heads()
    ids = {r.record_id for r in reader.list_records()}
    assert ids == {"uc-public", "uc-members", "lesson-public", "sol-public", "lesson-members"}
    reader.close()
    assert "FeedService/ReadEntries caller=1472" in server.log_text()


def test_drafts_never_leave_and_members_see_members_records(
    node: Node, pki: Pki, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(node.dir)

    async def scenario() -> list[tuple[int, str]]:
        async with pki.client(server.address) as client:
            seen: list[tuple[int, str]] = []
            async for page in client.read_entries(0, batch_size=2):
                assert len(page.entries) <= 2
                seen += [(e.position, e.WhichOneof("item") or "") for e in page.entries]
            return seen

    seen = run(scenario())
    assert seen == [
        (1, "signed"),
        (2, "signed"),
        (3, "redacted"),
        (4, "signed"),
        (5, "signed"),
        (6, "signed"),
    ]


def test_filters(node: Node, pki: Pki, start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(node.dir)
    F = feed_service_pb2.EntryFilter

    async def positions(entry_filter: feed_service_pb2.EntryFilter) -> tuple[list[int], int]:
        async with pki.client(server.address) as client:
            got: list[int] = []
            last = 0
            async for page in client.read_entries(0, entry_filter):
                got += [e.position for e in page.entries]
                last = page.next_position
            return got, last

    lessons = F(kinds=[records_pb2.RECORD_KIND_LESSON])
    assert run(positions(lessons)) == ([4, 6], 6)
    assert run(positions(F(tags=["copilot"]))) == ([1, 2], 6)
    assert run(positions(F(tags=["upphandling"], kinds=[records_pb2.RECORD_KIND_LESSON]))) == (
        [4],
        6,
    )
    # A content filter never shows the draft, not even redacted; an origin filter
    # keeps the chain whole.
    assert run(positions(F(kinds=[records_pb2.RECORD_KIND_USE_CASE]))) == ([1, 2], 6)
    assert run(positions(F(origins=[LEKSAND]))) == ([1, 2, 3, 4, 5, 6], 6)
    assert run(positions(F(origins=["1472"]))) == ([], 6)
    # A filter by a kommunkod that does not exist is a bad request, not an empty answer.
    from samverka.transport.server.status import PeerError

    with pytest.raises(PeerError) as caught:
        run(positions(F(origins=["9999"])))
    assert caught.value.code.name == "INVALID_ARGUMENT"
    assert caught.value.reason == "invalid_request"


def test_a_cursor_past_the_log_end_is_refused(
    node: Node, pki: Pki, start_server: Callable[..., ServerProcess]
) -> None:
    """A cursor from another log (a restored database) must not silently skip entries."""
    from samverka.transport.server.status import PeerError

    server = start_server(node.dir)

    async def read(after: int, live: bool) -> None:
        async with pki.client(server.address) as client:
            pages = client.subscribe(after) if live else client.read_entries(after)
            async for _ in pages:
                break

    for live in (False, True):
        with pytest.raises(PeerError) as caught:
            run(read(len(FEED) + 1, live))
        assert caught.value.code.name == "FAILED_PRECONDITION"
        assert caught.value.reason == "cursor_ahead"
        assert "reset the cursor" in caught.value.hint  # the server's hint travels too
