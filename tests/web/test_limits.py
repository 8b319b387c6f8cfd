"""The web catalog's limits on what a client sends, over raw sockets to the real server
(:class:`WebEndpoint`: uvicorn with the catalog's protocol and app), as an attacker
would send it: long targets and query strings, large or many headers, bodies, heads
sent slowly (slowloris, also on a kept-alive connection), and more connections than
allowed. Each is refused with its status (or the connection closed) and the catalog
answers the next ordinary request at once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from samverka_hub.web import limits
from samverka_hub.web.server import WebEndpoint
from webkit import Federation

sys.path.insert(0, str(Path(__file__).parent.parent / "hub"))
from hubkit import run_async


@asynccontextmanager
async def catalog(federation: Federation) -> AsyncIterator[int]:
    hub = federation.hub
    endpoint = WebEndpoint(
        hub.store, hub.council.current_directory, hub.config.web, listen="127.0.0.1:0"
    )
    await endpoint.start()
    try:
        assert endpoint.serving
        yield endpoint.port
    finally:
        await endpoint.close()


def exchange(port: int, data: bytes, *, timeout: float = 10) -> tuple[int, bytes]:
    """Send ``data`` on a new connection; the status of the answer, and its body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        # Refused while sending (a 1 MB head): the answer is still there to read.
        with contextlib.suppress(OSError):
            s.sendall(data)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except OSError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, body


def get(target: bytes, *headers: bytes, extra: bytes = b"") -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: katalog", b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + extra


@pytest.mark.parametrize(
    ("request_bytes", "status", "words"),
    [
        (get(b"/sok?q=" + b"a" * 9_000), 414, "för lång"),
        (get(b"/api/records?q=" + b"a" * 9_000), 414, "för lång"),
        (get(b"/sok?" + b"&".join([b"kind=use-case"] * 1_000)), 414, "för lång"),
        (get(b"/", b"X-Big: " + b"a" * 100_000), 431, "för stora"),
        (get(b"/", *(b"X-%d: a" % i for i in range(2_000))), 431, "för stora"),
        (get(b"/" + b"a" * 1_000_000), 400, "Invalid HTTP request"),
        (get(b"/", b"X-Big: " + b"a" * 1_000_000), 400, "Invalid HTTP request"),
        (
            b"POST /api/records HTTP/1.1\r\nHost: k\r\nContent-Length: 10000000\r\n\r\n"
            + b"a" * 10_000_000,
            413,
            "tar inte emot data",
        ),
        (get(b"/sok", b"Content-Length: 5", extra=b"hello"), 413, "tar inte emot data"),
        (get(b"/sok", b"Transfer-Encoding: chunked", extra=b"5\r\nhello\r\n0\r\n\r\n"), 413, ""),
    ],
    ids=[
        "query 9 KB",
        "api query 9 KB",
        "1000 values",
        "header 100 KB",
        "2000 headers",
        "path 1 MB",
        "header 1 MB",
        "POST 10 MB",
        "GET with a body",
        "chunked body",
    ],
)
def test_oversize_targets_headers_and_bodies_are_refused(
    federation: Federation, request_bytes: bytes, status: int, words: str
) -> None:
    async def scenario() -> tuple[int, bytes, int]:
        async with catalog(federation) as port:
            got, body = await asyncio.to_thread(exchange, port, request_bytes)
            after, _ = await asyncio.to_thread(exchange, port, get(b"/api/coverage"))
        return got, body, after

    got, body, after = run_async(scenario())
    assert got == status, body[:200]
    assert words.encode() in body
    assert after == 200


def test_a_request_within_the_limits_is_served(federation: Federation) -> None:
    """The longest ordinary search (every filter at its 32 values) is far within them."""
    filters = b"&".join(b"kind=use-case&area=it&county=20&kommun=2029" for _ in range(32))

    async def scenario() -> int:
        async with catalog(federation) as port:
            status, _ = await asyncio.to_thread(
                exchange, port, get(b"/sok?q=copilot&" + filters, b"Accept-Language: sv")
            )
            return status

    assert len(filters) < limits.MAX_TARGET_BYTES
    assert run_async(scenario()) == 200


def slow_head(port: int, *, first: bytes = b"") -> float:
    """Send ``first`` (whole requests) and then half a request head, one header line a
    second; the seconds until the server closes the connection (60: it did not)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        if first:
            s.sendall(first)
            s.settimeout(10)
            received = b""
            while b"\r\n\r\n" not in received:
                received += s.recv(65536)
        started = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\nHost: katalog\r\n")
        s.settimeout(1)
        for i in range(60):
            try:
                if s.recv(65536) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass
            except OSError:
                return time.monotonic() - started
            try:
                s.sendall(b"X-%d: a\r\n" % i)
            except OSError:
                return time.monotonic() - started
        return 60.0


def test_a_request_head_sent_slowly_is_cut_off(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slowloris: a head that does not complete within HEAD_SECONDS (2 s here, 10 s in
    service) loses its connection, on a new connection and on one kept alive after a
    response; before, both stayed open for as long as the client went on (60 s here)."""
    monkeypatch.setattr(limits, "HEAD_SECONDS", 2.0)
    keep_alive = b"GET /api/coverage HTTP/1.1\r\nHost: katalog\r\n\r\n"

    async def scenario() -> tuple[float, float]:
        async with catalog(federation) as port:
            fresh, kept = await asyncio.gather(
                asyncio.to_thread(slow_head, port),
                asyncio.to_thread(slow_head, port, first=keep_alive),
            )
            return fresh, kept

    fresh, kept = run_async(scenario())
    assert 1.5 <= fresh <= 5, fresh
    assert 1.5 <= kept <= 5, kept


def test_connections_beyond_the_cap_are_closed_at_once(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_CONNECTIONS (5 here, 512 in service) open at once: the next is closed without
    an answer, and once one of them goes, a new connection is served."""
    monkeypatch.setattr(limits, "MAX_CONNECTIONS", 5)

    async def scenario() -> tuple[int, int]:
        async with catalog(federation) as port:
            held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
            try:
                await asyncio.sleep(0.2)
                refused, _ = await asyncio.to_thread(exchange, port, get(b"/api/coverage"))
                held.pop().close()
                await asyncio.sleep(0.2)
                served, _ = await asyncio.to_thread(exchange, port, get(b"/api/coverage"))
            finally:
                for s in held:
                    s.close()
            return refused, served

    refused, served = run_async(scenario())
    assert refused == 0  # closed: no HTTP answer at all
    assert served == 200
