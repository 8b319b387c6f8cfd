"""Helpers for the server tests (imported by the tests; fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import factories
import pytest
import uvloop
from samverka.node import Node
from samverka.transport.client import ClientTls, FeedClient, Page
from samverka.v1 import records_pb2

T = TypeVar("T")
HERE = Path(__file__).parent
SCRIPTS = HERE / "scripts"
LEKSAND, TIBRO = factories.LEKSAND, factories.TIBRO

PUBLIC = records_pb2.VISIBILITY_PUBLIC
MEMBERS = records_pb2.VISIBILITY_MEMBERS
DRAFT = records_pb2.VISIBILITY_DRAFT


def run(coro: Coroutine[Any, Any, T], *, timeout: float = 60.0) -> T:
    """Run ``coro`` on a new uvloop loop (one per call, like every CLI command).

    Bounded by ``timeout``: pytest-timeout's SIGALRM cannot interrupt a uvloop loop that
    keeps receiving heartbeats, so a scenario waiting for something that never comes
    must fail by itself.
    """

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(bounded())


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


#: The feed the ``node`` fixture publishes, in order: (body, record id, visibility, tags).
FEED: list[tuple[str, str, int, tuple[str, ...]]] = [
    ("use_case", "uc-public", PUBLIC, ("copilot",)),
    ("use_case", "uc-members", MEMBERS, ("copilot", "intern")),
    ("use_case", "uc-draft", DRAFT, ()),
    ("lesson", "lesson-public", PUBLIC, ("upphandling",)),
    ("solution", "sol-public", PUBLIC, ()),
    ("lesson", "lesson-members", MEMBERS, ()),
]


def publish(
    node: Node,
    body: str,
    record_id: str,
    visibility: int = PUBLIC,
    tags: tuple[str, ...] = (),
    **fields: Any,
) -> int:
    """Publish a factory record through the node's own publisher; returns its sequence."""
    record = factories.make_record(
        body, record_id=record_id, origin=node.origin, visibility=visibility, tags=tags, **fields
    )
    return node.publisher().publish(record).sequence


@dataclass(frozen=True)
class Pki:
    """Reader certificates, as files."""

    ca: Path  # the node's CA, which a reader trusts
    member_cert: Path  # Tibro, issued by the node's CA
    member_key: Path
    foreign_cert: Path  # Tibro, issued by a CA nobody here trusts
    foreign_key: Path

    def member(self) -> ClientTls:
        return ClientTls.from_files(self.ca, self.member_cert, self.member_key)

    def foreign(self) -> ClientTls:
        return ClientTls.from_files(self.ca, self.foreign_cert, self.foreign_key)

    def anonymous(self) -> ClientTls:
        return ClientTls.from_files(self.ca)

    def client(self, address: str, **kwargs: float) -> FeedClient:
        return FeedClient.connect(address, self.member(), **kwargs)


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    address: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Processes:
    """Every process a test started; all are stopped at teardown."""

    tmp: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def python(
        self, *args: str, name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``python ARGS``; stdout and stderr go to ``<name>.stdout/.stderr``."""
        with (
            open(self.tmp / f"{name}.stdout", "wb") as out,
            open(self.tmp / f"{name}.stderr", "wb") as err,
        ):
            proc = subprocess.Popen(
                [sys.executable, *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=self.tmp,
            )
        self.started.append(proc)
        return proc

    def output(self, name: str) -> str:
        return (self.tmp / f"{name}.stdout").read_text(encoding="utf-8", errors="replace")

    def errors(self, name: str) -> str:
        return (self.tmp / f"{name}.stderr").read_text(encoding="utf-8", errors="replace")

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


async def next_entries(
    pages: AsyncIterator[Page],
    *,
    writer: subprocess.Popen[bytes] | None = None,
    writer_errors: Callable[[], str] = str,
) -> Page:
    """The next page with entries (heartbeats skipped). Fails at once, showing
    ``writer_errors()``, if ``writer`` exits non-zero before the entries come."""

    async def entries() -> Page:
        page = await anext(pages)
        while page.heartbeat:
            page = await anext(pages)
        return page

    if writer is None:
        return await entries()
    waiting = asyncio.ensure_future(entries())
    while True:
        done, _ = await asyncio.wait({waiting}, timeout=0.05)
        if done:
            return waiting.result()
        if writer.poll() not in (None, 0):
            waiting.cancel()
            pytest.fail(f"the writer process failed ({writer.returncode}):\n{writer_errors()}")
