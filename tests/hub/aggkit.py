"""Helpers for the aggregation tests (``import aggkit``): enrolled nodes, authoring,
and looking into node and hub databases."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import factories
import grpc
from hubkit import Procs, RunningHub
from samverka.membership.member import enroll as member_enroll
from samverka.node import Node, init_node
from samverka.replication.ingest import ingest
from samverka.store.store import Store
from samverka.transport.client import ClientTls
from samverka.v1 import hub_service_pb2, hub_service_pb2_grpc, records_pb2
from samverka_hub.folder import open_hub

PUBLIC = records_pb2.VISIBILITY_PUBLIC
MEMBERS = records_pb2.VISIBILITY_MEMBERS
DRAFT = records_pb2.VISIBILITY_DRAFT


@dataclass(frozen=True)
class Member:
    code: str
    dir: Path
    #: The node's member port as registered in the directory ("" behind a firewall).
    address: str = ""

    def tls(self) -> ClientTls:
        tls = self.dir / "tls"
        return ClientTls.from_files(tls / "ca.pem", tls / "node.pem", tls / "node.key")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def enroll(
    procs: Procs, hub: RunningHub, code: str, *, reachable: bool = False, commands: bool = False
) -> Member:
    """``node init`` + ``node enroll`` + ``hub members approve`` + ``node enroll``: in this
    process (what the commands run, through the same functions, against the running hub
    over TLS: three subprocesses less, ~1 s each; the commands have tests of their own,
    tests/hub/test_membership_e2e.py), or with ``commands`` as ``samverka`` processes (for
    the tests that script a kommun's own steps)."""
    node_dir = procs.tmp / f"node-{code}"
    address = f"127.0.0.1:{free_port()}" if reachable else ""
    with init_node(node_dir, code, listen=address or "127.0.0.1:0"):
        pass
    if commands:
        asking = ["node", "enroll", "--dir", str(node_dir), "--hub", hub.public]
        asking += ["--ca", str(hub.ca)]
        if address:
            asking += ["--address", address]
        assert procs.json(*asking)["status"] == "pending"
        procs.run("hub", "members", "approve", code, "--dir", str(hub.dir))
        assert procs.json(*asking)["status"] == "approved"
        return Member(code, node_dir, address)

    enroll_here(procs, hub, node_dir, code, address)
    return Member(code, node_dir, address)


def enroll_here(
    procs: Procs, hub: RunningHub, node_dir: Path, code: str, address: str = ""
) -> None:
    """What ``node enroll`` + ``hub members approve`` + ``node enroll`` run, in this
    process: the node's request over TLS to the running hub's public port, the council's
    approval on the hub folder (opened with the hub's environment), the request again."""

    def ask() -> str:
        with Node.open(node_dir) as node:
            outcome = asyncio.run(
                member_enroll(node, hub=hub.public, ca_pem=hub.ca.read_bytes(), address=address)
            )
        return outcome.status_name

    assert ask() == "pending"
    opened = open_hub(hub.dir, env=procs.env)  # the hub's own settings, as the command's
    try:
        opened.council.approve(code)
    finally:
        opened.close()
    assert ask() == "approved"
    # The member port admits by the directory hub serve polls ([directory] poll_seconds):
    # wait until it holds this node (the commands' process start-up used to hide this).
    tls = ClientTls.from_files(*(node_dir / "tls" / n for n in ("ca.pem", "node.pem", "node.key")))

    async def admitted() -> bool:
        async with grpc.aio.secure_channel(hub.member, tls.credentials()) as channel:
            stub = hub_service_pb2_grpc.HubServiceStub(channel)
            try:
                await stub.GetDirectory(hub_service_pb2.GetDirectoryRequest(), timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() is grpc.StatusCode.PERMISSION_DENIED:
                    return False
                raise
        return True

    deadline = time.monotonic() + 30
    while not asyncio.run(admitted()):
        assert time.monotonic() < deadline, f"the hub's member port never admitted {code}"
        time.sleep(0.05)


def author(member: Member, record_id: str, visibility: int = PUBLIC, **fields: object) -> int:
    """Publish a record through the node's own publisher (as the CLI does); its sequence."""
    with Node.open(member.dir) as node:
        record = factories.make_record(
            "use_case", record_id=record_id, origin=node.origin, visibility=visibility, **fields
        )
        return node.publisher().publish(record).sequence


def bulk(member: Member, count: int) -> None:
    """Append ``count`` signed entries to the node's own feed quickly (one ingest)."""
    with Node.open(member.dir) as node:
        head = node.store.head(node.origin)
        writer = factories.FeedWriter(node.origin, node.signing_key)
        if head is not None:
            writer.sequence, writer.head_hash = head.sequence, head.entry_hash
            writer.next_timestamp_ms = (head.timestamp_ms or 0) + 1
        writer.step_ms = 1
        entries = [writer.publish(record_id=f"bulk-{time.time_ns()}-{i}") for i in range(count)]
        assert ingest(node.store, node.keyring(), entries, source="test").accepted == count


def open_store(path: Path) -> Store:
    return Store.open(f"sqlite:///{path / 'samverka.db'}", migrate=False)


def head_of(path: Path, origin: str) -> int:
    with open_store(path) as store:
        head = store.head(origin)
    return head.sequence if head is not None else 0


def database_bytes(path: Path) -> bytes:
    """Everything the SQLite database holds on disk (main file and write-ahead log)."""
    return b"".join(
        (path / name).read_bytes()
        for name in ("samverka.db", "samverka.db-wal")
        if (path / name).exists()
    )
