"""Pure pieces of the transport: splitting pages by size, listen addresses, settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from samverka.errors import ConfigError
from samverka.transport.server.app import split_address
from samverka.transport.server.feed import split_page
from samverka.transport.server.settings import MIN_MESSAGE_BYTES, ServerSettings
from samverka.v1 import feed_pb2


def _entries(sizes: list[int]) -> list[feed_pb2.LogEntry]:
    return [
        feed_pb2.LogEntry(position=i + 1, signed=feed_pb2.SignedEntry(entry=b"x" * size))
        for i, size in enumerate(sizes)
    ]


@given(
    sizes=st.lists(st.integers(0, 5_000), max_size=60),
    budget=st.integers(100, 20_000),
    extra=st.integers(0, 10),
)
def test_split_page_keeps_order_limits_size_and_cursors(
    sizes: list[int], budget: int, extra: int
) -> None:
    entries = _entries(sizes)
    scanned_to = len(entries) + extra  # filters may have scanned past the last entry
    chunks = list(split_page(entries, scanned_to, budget))
    # Every entry exactly once, in order.
    assert [e for chunk, _ in chunks for e in chunk] == entries
    # Only the last chunk may be empty (an empty page still says where to resume).
    assert all(chunk for chunk, _ in chunks[:-1])
    for chunk, cursor in chunks[:-1]:
        assert cursor == chunk[-1].position
    assert chunks[-1][1] == scanned_to
    cursors = [cursor for _, cursor in chunks]
    assert cursors == sorted(cursors)
    for chunk, _ in chunks:
        size = sum(e.ByteSize() + 8 for e in chunk)
        assert size <= budget or len(chunk) == 1  # an oversized entry travels alone


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:7443", ("127.0.0.1", 7443)),
        ("[::1]:0", ("::1", 0)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_split_address(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["7443", ":7443", "host:", "host:port", "h:70000", ""])
def test_split_address_refuses(address: str) -> None:
    with pytest.raises(ConfigError):
        split_address(address)


def test_settings_refuse_a_message_limit_below_one_entry() -> None:
    ServerSettings(max_message_bytes=MIN_MESSAGE_BYTES)
    with pytest.raises(ConfigError) as caught:
        ServerSettings(max_message_bytes=MIN_MESSAGE_BYTES - 1)
    assert "max_message_bytes" in str(caught.value) and caught.value.hint
