"""What the web catalog accepts over HTTP: limits on connections, request heads and bodies.

The catalog is public, read-only and plain HTTP, so anyone may send it anything. uvicorn
(h11) alone bounds only a request head that arrives in pieces (16 KiB, then 400); a head
that arrives in one read is parsed whole, and nothing bounds how long a client may take
to send its head: one that sends a header line now and then (slowloris) kept its
connection, and a file descriptor of the hub's process, for as long as it liked.

- :class:`GuardedH11Protocol` (uvicorn's HTTP/1.1 protocol with the limits it lacks):
  at most :data:`MAX_CONNECTIONS` open connections (more are closed at once), and a
  request head complete within :data:`HEAD_SECONDS` of the connection, or of the
  previous response, else the connection is closed; h11's buffer for an incomplete head
  is :data:`MAX_HEAD_BYTES`.
- :func:`request_problem` (pure, applied to every request before routing): a target
  (path and query string) over :data:`MAX_TARGET_BYTES` is 414, headers over
  :data:`MAX_HEADER_BYTES` or :data:`MAX_HEADERS` 431, any request body 413 (the
  catalog only reads).

Query parameters are bounded again where they are read (:mod:`.query`: 200 characters,
32 values each, numbers within their ranges), so a request within these limits costs
the catalog a bounded amount of work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

#: Open connections at once; a new one beyond them is closed without an answer.
MAX_CONNECTIONS = 512
#: Seconds a client has to send a complete request head (after connecting, or after
#: the previous response on a kept-alive connection).
HEAD_SECONDS = 10.0
#: The request target (path and query string), in bytes: 414 beyond it.
MAX_TARGET_BYTES = 8 * 1024
#: All header names and values together, in bytes, and their number: 431 beyond either.
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 64
#: h11's buffer for a request head not yet complete (the line, the headers, their
#: framing): a head still incomplete past it is refused with 400.
MAX_HEAD_BYTES = MAX_TARGET_BYTES + MAX_HEADER_BYTES + 4 * 1024

_REFUSALS = {
    413: "Katalogen tar inte emot data: den går bara att läsa.",
    414: f"Adressen är för lång (högst {MAX_TARGET_BYTES // 1024} KiB).",
    431: f"Förfrågans huvuden är för stora (högst {MAX_HEADERS} st, "
    f"{MAX_HEADER_BYTES // 1024} KiB).",
}


def request_problem(scope: Mapping[str, Any]) -> tuple[int, str] | None:
    """The status and (Swedish) reason an HTTP request is refused with, before routing;
    None when it is within the limits."""
    target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    if target > MAX_TARGET_BYTES:
        return 414, _REFUSALS[414]
    headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
    if len(headers) > MAX_HEADERS or sum(len(k) + len(v) for k, v in headers) > MAX_HEADER_BYTES:
        return 431, _REFUSALS[431]
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return 413, _REFUSALS[413]
    return None


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a connection cap and a deadline for each request
    head (see the module docstring); pass it as ``uvicorn.Config(http=...)``."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > MAX_CONNECTIONS:
            transport.close()
            return
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request head was parsed: the app has it now
            self._head_arrived()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()  # the next request on this connection, if any

    def _await_head(self) -> None:
        self._head_arrived()
        self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_too_slow)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class QuietInvalidRequests(logging.Filter):
    """Drops uvicorn's WARNING for each malformed request (answered 400): anyone can
    send those, so each one logged would let them fill the hub's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Invalid HTTP request received."
