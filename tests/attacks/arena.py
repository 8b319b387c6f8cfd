"""A real hub process to attack (``import arena``), shared by tests/attacks, tests/faults
and tests/load.

- :func:`build_hub` makes a hub folder in-process (``init_hub``) and admits members
  through the council's own API (``submit_enrollment`` + ``approve``): each member gets
  a signing key and a TLS certificate from the hub's CA without a subprocess, so 290
  members cost seconds, not 1,160 CLI runs.
- :class:`HubProcess` runs ``samverka hub serve`` on that folder (fixed loopback ports,
  so a restarted hub is found at the same address) and can stop, ``kill -9`` and
  restart it.
- :func:`publish_raw` sends any bytes as a ``HubService.Publish`` request over mutual
  TLS and returns the :class:`Outcome` (status code, ErrorInfo reason, origin,
  sequence); :func:`hub_state` reads what the hub's store holds (log position and
  every feed head), so an attack test asserts the store did not change.
- :func:`enroll_node` makes a real node folder and enrolls it at the running hub
  (``samverka.membership.member.enroll``, approved in-process), for tests that run the
  ``samverka`` CLI against the hub.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import factories
import grpc
import soakresults
import sqlalchemy as sa
import uvloop
from samverka.errors import EntryRefused
from samverka.membership.enrollment import build_enrollment_request
from samverka.membership.member import enroll
from samverka.node import init_node
from samverka.protocol.signing import SigningKey
from samverka.protocol.verify import FeedHead
from samverka.store.store import Store
from samverka.transport.client import ClientTls, open_channel
from samverka.transport.pki import create_csr
from samverka.transport.server.status import PeerError, from_rpc_error
from samverka.v1 import feed_pb2, hub_service_pb2
from samverka_hub.folder import Hub, init_hub, open_hub

LEKSAND, TIBRO, GAGNEF, RATTVIK, FALUN = "2029", "1472", "2026", "2031", "2080"

PUBLISH = "/samverka.v1.HubService/Publish"
T = TypeVar("T")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(coro: Coroutine[Any, Any, T], *, timeout: float = 120.0) -> T:
    """Run ``coro`` on a new uvloop loop, bounded by ``timeout`` seconds (a uvloop loop
    receiving heartbeats is not interrupted by pytest-timeout)."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(bounded())


# -- members and the hub folder -----------------------------------------------------------


@dataclass(frozen=True)
class MemberKeys:
    """What an enrolled kommun holds: its signing key and a certificate from the hub's CA."""

    code: str
    key: SigningKey
    cert_pem: bytes
    tls_key_pem: bytes
    ca_pem: bytes

    def tls(self) -> ClientTls:
        return ClientTls(ca=self.ca_pem, cert=self.cert_pem, key=self.tls_key_pem)


def build_hub(
    hub_dir: Path,
    codes: Iterable[str],
    *,
    store_url: str = "",
    member_port: int = 0,
    public_port: int = 0,
) -> dict[str, MemberKeys]:
    """A new hub folder with ``codes`` admitted as members (in-process, no subprocess)."""
    hub = init_hub(
        hub_dir,
        member_listen=f"127.0.0.1:{member_port}",
        public_listen=f"127.0.0.1:{public_port}",
        store_url=store_url,
    )
    try:
        ca_pem = (hub_dir / "tls" / "ca.pem").read_bytes()
        members = {}
        for code in codes:
            members[code] = _admit(hub, code, ca_pem)
        return members
    finally:
        hub.close()


def _admit(hub: Hub, code: str, ca_pem: bytes) -> MemberKeys:
    key = SigningKey.generate()
    csr = create_csr(code, hosts=("localhost", "127.0.0.1"))
    request = build_enrollment_request(
        key, kommunkod=code, csr_der=csr.csr_der, created_at_ms=now_ms(), contact_role="IT-chef"
    )
    hub.council.submit_enrollment(request)
    admission = hub.council.approve(code)
    return MemberKeys(code, key, admission.certificate_pem, csr.key_pem, ca_pem)


def revoke(hub_dir: Path, code: str, *, at_ms: int | None = None) -> int:
    """Revoke ``code`` through the council (as ``hub members revoke`` does) from
    ``at_ms`` (default now); the revocation time."""
    when = at_ms if at_ms is not None else now_ms()
    with open_hub(hub_dir) as hub:
        hub.council.revoke(code, reason="attack test", at_ms=when)
    return when


# -- the hub process ---------------------------------------------------------------------------


def hub_env(**extra: str) -> dict[str, str]:
    """The environment for ``samverka`` subprocesses: no inherited SAMVERKA_* settings,
    no harvest, metrics or web catalog (nothing listens on a fixed port), decisions
    made in-process seen within 0.1 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}
    env |= {
        "SAMVERKA_DIRECTORY_POLL_SECONDS": "0.1",
        "SAMVERKA_HARVEST_ENABLED": "false",
        "SAMVERKA_METRICS_LISTEN": "",
        "SAMVERKA_WEB_ENABLED": "false",
    }
    return env | extra


@dataclass
class HubProcess:
    """``samverka hub serve`` for a hub folder, on fixed loopback ports."""

    dir: Path
    logs: Path
    member: str
    public: str
    env: dict[str, str]
    name: str = "hub"
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    store_url: str = ""

    @property
    def ca_pem(self) -> bytes:
        return (self.dir / "tls" / "ca.pem").read_bytes()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        name = f"{self.name}-{self.starts}"
        address_file = self.logs / f"{name}.addresses"
        with (
            open(self.logs / f"{name}.out", "wb") as out,
            open(self.logs / f"{name}.err", "wb") as err,
        ):
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "samverka", "hub", "serve", "--dir", str(self.dir),
                    "--listen", self.member, "--public-listen", self.public,
                    "--address-file", str(address_file),
                ],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env, cwd=self.logs,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not address_file.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"hub serve exited {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"hub serve did not listen within {timeout} s")
            time.sleep(0.02)
        bound = json.loads(address_file.read_text())
        assert (bound["member"], bound["public"]) == (self.member, self.public), bound

    def log(self) -> str:
        """Everything the newest hub process wrote to stderr."""
        path = self.logs / f"{self.name}-{self.starts}.err"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def kill9(self) -> None:
        """``kill -9``: no drain, no cleanup, whatever was in flight is cut off."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def url(self) -> str:
        return self.store_url or f"sqlite:///{self.dir / 'samverka.db'}"

    def open_store(self) -> Store:
        return Store.open(self.url(), migrate=False)


def serve_hub(
    hub_dir: Path, logs: Path, *, name: str = "hub", store_url: str = "", **env: str
) -> HubProcess:
    """Start ``hub serve`` on two free loopback ports (kept across restarts)."""
    logs.mkdir(parents=True, exist_ok=True)
    process = HubProcess(
        dir=hub_dir,
        logs=logs,
        member=f"127.0.0.1:{free_port()}",
        public=f"127.0.0.1:{free_port()}",
        env=hub_env(**env),
        name=name,
        store_url=store_url,
    )
    process.start()
    return process


# -- what the hub holds --------------------------------------------------------------------------


@dataclass(frozen=True)
class HubState:
    """Everything an append changes: the log's end and every feed head."""

    log_position: int
    heads: tuple[tuple[str, int, bytes], ...]

    def head(self, origin: str) -> int:
        return next((seq for o, seq, _ in self.heads if o == origin), 0)


def hub_state(store: Store) -> HubState:
    heads = tuple(sorted((h.origin, h.sequence, h.entry_hash) for h in store.heads()))
    return HubState(store.log_position(), heads)


def writer_at(store: Store, member: MemberKeys) -> factories.FeedWriter:
    """A FeedWriter for ``member``'s feed continuing at the hub's head (key, chain, clock)."""
    writer = factories.FeedWriter(member.code, member.key)
    head: FeedHead | None = store.head(member.code)
    if head is not None:
        writer.sequence, writer.head_hash = head.sequence, head.entry_hash
        writer.next_timestamp_ms = (head.timestamp_ms or factories.T0_MS) + 1
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT record_id, MAX(version) FROM log WHERE origin = :o "
                    "AND record_id IS NOT NULL GROUP BY record_id"
                ),
                {"o": member.code},
            ).all()
        writer.versions = {rid: int(v) for rid, v in rows if rid}
    return writer


# -- calling Publish with any bytes -----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the hub answered: the status code, and the refusal's ErrorInfo (or the counts)."""

    code: grpc.StatusCode
    reason: str = ""
    origin: str = ""
    sequence: int = 0
    detail: str = ""
    accepted: int = 0
    duplicates: int = 0

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK


def outcome_of(err: grpc.RpcError) -> Outcome:
    exc = from_rpc_error(err)
    code = err.code()  # type: ignore[attr-defined]
    if isinstance(exc, EntryRefused):
        return Outcome(code, exc.reason.value, exc.origin, exc.sequence, exc.detail)
    assert isinstance(exc, PeerError)
    return Outcome(code, exc.reason, detail=str(exc))


Item = feed_pb2.SignedEntry | feed_pb2.LogEntry


def request_bytes(*items: Item) -> bytes:
    entries = [
        i if isinstance(i, feed_pb2.LogEntry) else feed_pb2.LogEntry(signed=i) for i in items
    ]
    return hub_service_pb2.PublishRequest(entries=entries).SerializeToString()


class Wire:
    """One mutual-TLS channel to the hub's member port, for many raw Publish calls.

    Use inside a coroutine (``async with Wire(...) as wire``)."""

    def __init__(self, address: str, tls: ClientTls) -> None:
        self.channel = open_channel(address, tls)
        self._publish = self.channel.unary_unary(
            PUBLISH,
            request_serializer=lambda raw: raw,
            response_deserializer=hub_service_pb2.PublishResponse.FromString,
        )

    async def __aenter__(self) -> Wire:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()

    async def publish(self, raw: bytes, *, timeout: float = 30) -> Outcome:
        for _ in range(200):
            try:
                reply = await self._publish(raw, timeout=timeout)
            except grpc.aio.AioRpcError as err:
                outcome = outcome_of(err)
                if outcome.reason != "overloaded":
                    return outcome
                # The caller's rate limit (100 calls/s): a fuzzer sending back to back
                # waits for it, as a well-behaved client would.
                await asyncio.sleep(0.05)
                continue
            return Outcome(grpc.StatusCode.OK, accepted=reply.accepted, duplicates=reply.duplicates)
        raise AssertionError("the hub kept answering overloaded for 10 s")


def publish_raw(address: str, tls: ClientTls, raw: bytes) -> Outcome:
    """One Publish call carrying ``raw`` as the request bytes."""

    async def call() -> Outcome:
        async with Wire(address, tls) as wire:
            return await wire.publish(raw)

    return run(call())


def publish(address: str, member: MemberKeys, *items: Item) -> Outcome:
    return publish_raw(address, member.tls(), request_bytes(*items))


# -- real node folders ----------------------------------------------------------------------------


def enroll_node(
    hub: HubProcess, code: str, node_dir: Path, *, address: str = "", quorum: int | None = None
) -> Path:
    """``node init`` + ``node enroll`` (the library calls the CLI runs) + the council's
    approval in-process: a node folder that holds the hub's CA, certificate, pinned key,
    directory and member address. ``quorum``: its ``[witness] quorum`` (0 where the
    federation has no witnessing nodes and witnessing is not the point: what sync takes
    from the hub is still proven in its log, against checkpoints taken uncosigned)."""
    node = init_node(node_dir, code, listen=address or "127.0.0.1:0")
    if quorum is not None:
        with (node_dir / "samverka.toml").open("a", encoding="utf-8") as toml:
            toml.write(f"\n[witness]\nquorum = {quorum}\n")
    try:
        asked = run(enroll(node, hub=hub.public, ca_pem=hub.ca_pem, address=address))
        assert asked.status_name == "pending", asked
        with open_hub(hub.dir) as opened:
            opened.council.approve(code)
        done = run(enroll(node, hub=hub.public, ca_pem=hub.ca_pem, address=address))
        assert done.status_name == "approved", done
    finally:
        node.close()
    return node_dir


# -- the arena: one running hub with members, for many attacks -----------------------------


@dataclass
class Arena:
    """A running hub and the keys of its members; attacks are sent as one of them."""

    hub: HubProcess
    members: dict[str, MemberKeys]

    def state(self) -> HubState:
        with self.hub.open_store() as store:
            return hub_state(store)

    def writer(self, code: str) -> factories.FeedWriter:
        """``code``'s feed writer, continuing at the hub's head."""
        with self.hub.open_store() as store:
            return writer_at(store, self.members[code])

    def publish(self, sender: str, *items: Item) -> Outcome:
        return publish(self.hub.member, self.members[sender], *items)

    def publish_raw(self, sender: str, raw: bytes) -> Outcome:
        return publish_raw(self.hub.member, self.members[sender].tls(), raw)

    def attack(
        self,
        name: str,
        sender: str,
        request: bytes | Sequence[Item],
        *,
        code: grpc.StatusCode,
        reason: str,
        origin: str | None = None,
        sequence: int | None = None,
    ) -> Outcome:
        """Send ``request`` as ``sender``; assert the precise refusal and an unchanged store."""
        raw = request if isinstance(request, bytes) else request_bytes(*request)
        before = self.state()
        outcome = self.publish_raw(sender, raw)
        after = self.state()
        expected = (code, reason)
        if origin is not None:
            expected += (origin,)  # type: ignore[assignment]
        if sequence is not None:
            expected += (sequence,)  # type: ignore[assignment]
        got = (outcome.code, outcome.reason, outcome.origin, outcome.sequence)[: len(expected)]
        refused = got == expected and after == before
        soakresults.record(
            "attack", name, refused=refused, code=outcome.code.name, reason=outcome.reason
        )
        assert got == expected, f"{name}: expected {expected}, the hub answered {outcome}"
        assert after == before, f"{name}: the hub's store changed"
        return outcome
