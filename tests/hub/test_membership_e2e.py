"""Membership end to end with real processes on loopback.

One hub (``hub init`` + ``hub serve`` as subprocesses) serves the whole module; each
test enrolls its own kommuner with ``node init`` + ``node enroll`` (subprocesses), the
operator decides with the ``hub`` commands (subprocesses), and the checks call the
ports in-process over real TLS.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import factories
import grpc
import pytest
from hubkit import Procs, RunningHub, run_async, start_hub, wait_for
from samverka.errors import DirectoryRefused, EnrollmentRefused, EntryRefused, Reason
from samverka.membership.member import (
    DIRECTORY_FILE,
    accept_directory,
    load_directory,
    pinned_hub_key,
    refresh_directory,
)
from samverka.node import Node
from samverka.protocol.directory import verify_directory
from samverka.protocol.signing import SigningKey
from samverka.protocol.verify import MemoryFeedState, Verdict, verify_entry
from samverka.replication.ingest import ingest
from samverka.transport.client import ClientTls, FeedClient
from samverka.transport.hubclient import HubClient
from samverka.transport.pki import kommunkod_of, verify_certificate
from samverka.transport.server.status import PeerError
from samverka.v1 import hub_service_pb2, hub_service_pb2_grpc
from samverka_hub.members import MemberStore

LEKSAND, TIBRO, GAGNEF, FALUN, RATTVIK = "2029", "1472", "2026", "2080", "2031"


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procs]:
    tmp = tmp_path_factory.mktemp("membership")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}
    # The running hub looks for decisions made by the CLI every 0.1 s.
    env["SAMVERKA_DIRECTORY_POLL_SECONDS"] = "0.1"
    # No node here witnesses the hub's log: take its checkpoints uncosigned (what sync takes
    # from the hub is still proven in its log; witnessing has tests of its own).
    env["SAMVERKA_WITNESS_QUORUM"] = "0"
    p = Procs(tmp, env)
    try:
        yield p
    finally:
        p.stop_all()


@pytest.fixture(scope="module")
def hub(procs: Procs) -> Iterator[RunningHub]:
    running = start_hub(procs, procs.tmp / "hub")
    yield running
    # SIGTERM drains both ports and exits cleanly
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0, procs.log("hub")


@pytest.fixture(scope="module")
def member(procs: Procs, hub: RunningHub) -> Path:
    """Tibro's node, enrolled; shared by the tests that only need some member."""
    return enrolled_node(procs, hub, TIBRO)


def enroll_args(hub: RunningHub, node_dir: Path, *extra: str) -> list[str]:
    return [
        "node",
        "enroll",
        "--dir",
        str(node_dir),
        "--hub",
        hub.public,
        "--ca",
        str(hub.ca),
        *extra,
    ]


def enrolled_node(procs: Procs, hub: RunningHub, code: str) -> Path:
    """``node init`` + ``node enroll`` + ``hub members approve`` + ``node enroll`` again."""
    node_dir = procs.tmp / f"node-{code}"
    procs.run("node", "init", "--kommun", code, "--dir", str(node_dir), "--listen", "127.0.0.1:0")
    first = procs.json(*enroll_args(hub, node_dir, "--contact-role", "IT-chef"))
    assert first["status"] == "pending", first
    procs.run("hub", "members", "approve", code, "--dir", str(hub.dir))
    second = procs.json(*enroll_args(hub, node_dir))
    assert second["status"] == "approved", second
    return node_dir


def member_tls(node_dir: Path) -> ClientTls:
    tls = node_dir / "tls"
    return ClientTls.from_files(tls / "ca.pem", tls / "node.pem", tls / "node.key")


def test_enroll_approve_then_member_port(procs: Procs, hub: RunningHub) -> None:
    node_dir = procs.tmp / "node-leksand"
    procs.run("node", "init", "--kommun", LEKSAND, "--dir", str(node_dir))
    with Node.open(node_dir) as node:
        key_id = node.signing_key.key_id

    # asking: pending, with the next step spelled out
    asked = procs.run(*enroll_args(hub, node_dir, "--address", "127.0.0.1:7599"))
    assert "väntar" in asked.stdout
    assert f"samverka hub members approve {LEKSAND}" in asked.stdout
    assert key_id in asked.stdout

    pending = procs.json("hub", "members", "pending", "--dir", str(hub.dir))
    assert [(p["kommunkod"], p["key_id"], p["address"]) for p in pending] == [
        (LEKSAND, key_id, "127.0.0.1:7599")
    ]
    procs.run("hub", "members", "approve", LEKSAND, "--dir", str(hub.dir))

    # asking again (the same signed request) picks up certificate and directory
    done = procs.json(*enroll_args(hub, node_dir, "--address", "127.0.0.1:7599"))
    assert done["status"] == "approved" and done["member_address"] == hub.member
    cert = (node_dir / "tls" / "node.pem").read_bytes()
    ca = (node_dir / "tls" / "ca.pem").read_bytes()
    assert ca == hub.ca.read_bytes()
    assert verify_certificate(cert, ca, kommunkod=LEKSAND) == LEKSAND
    assert (node_dir / "tls" / "local" / "node.pem").exists()  # the pre-enrollment files
    assert not (node_dir / "enrollment" / "request.bin").exists()
    with Node.open(node_dir) as node:
        assert node.config.hub.address == hub.member
        hub_key = pinned_hub_key(node.config)
        assert hub_key is not None and hub_key.raw == _hub_signing_key(hub).public.raw
        ring = node.keyring()
        assert ring.get(key_id).origin == LEKSAND  # type: ignore[union-attr]
        assert ring.get(hub_key.key_id).origin == "0000"  # type: ignore[union-attr]
    shown = procs.json("node", "directory", "--dir", str(node_dir))
    assert LEKSAND in [m["kommunkod"] for m in shown["members"]]
    again = procs.run(*enroll_args(hub, node_dir))
    assert "är redan medlem" in again.stdout

    # the member port answers this node over mutual TLS
    async def as_member() -> tuple[str, int]:
        async with FeedClient.connect(hub.member, member_tls(node_dir)) as feed:
            info = await feed.get_node_info()
        with Node.open(node_dir) as node:
            update = await refresh_directory(node.config)
        return info.kommunkod, update.directory.version

    code, version = run_async(as_member())
    assert code == "0000" and version >= 2


def test_member_port_needs_a_member_certificate(
    procs: Procs, hub: RunningHub, member: Path
) -> None:
    ca = hub.ca.read_bytes()

    async def anonymous_member_port() -> None:
        async with FeedClient.connect(hub.member, ClientTls(ca=ca), unary_timeout=5) as feed:
            await feed.get_node_info()

    with pytest.raises(PeerError) as exc:
        run_async(anonymous_member_port())
    assert exc.value.code is grpc.StatusCode.UNAVAILABLE  # the handshake is refused

    # a certificate from a node's own local CA (not the hub's) is refused too
    stranger = procs.tmp / "node-stranger"
    procs.run("node", "init", "--kommun", RATTVIK, "--dir", str(stranger))

    async def foreign_certificate() -> None:
        tls = stranger / "tls"
        client_tls = ClientTls(
            ca=ca, cert=(tls / "node.pem").read_bytes(), key=(tls / "node.key").read_bytes()
        )
        async with FeedClient.connect(hub.member, client_tls, unary_timeout=5) as feed:
            await feed.get_node_info()

    with pytest.raises(PeerError) as exc:
        run_async(foreign_certificate())
    assert exc.value.code is grpc.StatusCode.UNAVAILABLE

    # the public port serves the directory to anyone, and member calls to no one
    async def public_port() -> tuple[int, grpc.StatusCode]:
        async with HubClient.public(hub.public, ca) as client:
            reply = await client.get_directory(0)
            try:
                await client.renew_certificate(b"")
            except PeerError as err:
                return reply.directory.ByteSize(), err.code
        raise AssertionError("RenewCertificate answered on the public port")

    size, code = run_async(public_port())
    assert size > 0 and code is grpc.StatusCode.UNAUTHENTICATED

    # health and reflection on both ports
    async def health_and_reflection(address: str, tls: ClientTls) -> tuple[int, list[str]]:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
        from samverka.transport.client import open_channel

        async with open_channel(address, tls) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="samverka.v1.HubService"), timeout=5
            )
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
            services: list[str] = []
            async for reply in call:
                services = [s.name for s in reply.list_services_response.service]
        return health.status, services

    for address, tls in ((hub.public, ClientTls(ca=ca)), (hub.member, member_tls(member))):
        status, services = run_async(health_and_reflection(address, tls))
        assert status == 1  # SERVING
        assert {"samverka.v1.HubService", "samverka.v1.FeedService"} <= set(services)


def test_enrollment_refusals_travel_with_a_reason(
    procs: Procs, hub: RunningHub, member: Path
) -> None:
    # a second, different request for an admitted kommun points at key rotation
    other = procs.tmp / "node-tibro-2"
    procs.run("node", "init", "--kommun", TIBRO, "--dir", str(other))
    refused = procs.run(*enroll_args(hub, other), check=False)
    assert refused.returncode == 4, refused
    assert "already a member" in refused.stderr and "rotate-key" in refused.stderr

    # a request signed by another key than it announces is INVALID_ARGUMENT bad_signature
    from samverka.membership.enrollment import build_enrollment_request
    from samverka.transport.pki import create_csr

    signed = build_enrollment_request(
        SigningKey.generate(),
        kommunkod=FALUN,
        csr_der=create_csr(FALUN).csr_der,
        created_at_ms=_now(),
    )
    signed.signature = SigningKey.generate().sign(signed.request)

    async def forged() -> None:
        async with HubClient.public(hub.public, hub.ca.read_bytes()) as client:
            await client.enroll(signed)

    with pytest.raises(EnrollmentRefused) as exc:
        run_async(forged())
    assert exc.value.reason is Reason.BAD_SIGNATURE


def test_revocation(procs: Procs, hub: RunningHub, member: Path) -> None:
    falun_dir = enrolled_node(procs, hub, FALUN)
    tibro_dir = member
    with Node.open(falun_dir) as falun:
        before = falun.publisher().publish(
            factories.make_record("use_case", record_id="uc-before", origin=FALUN)
        )

    # the member port serves Falun until the council revokes it
    async def falun_calls() -> int:
        async with HubClient(hub.member, member_tls(falun_dir)) as client:
            reply = await client.get_directory(0)
        return reply.directory.ByteSize()

    assert run_async(falun_calls()) > 0
    procs.run("hub", "members", "revoke", FALUN, "--reason", "test", "--dir", str(hub.dir))

    def refused() -> bool:
        try:
            run_async(falun_calls())
        except PeerError as err:
            assert err.code is grpc.StatusCode.PERMISSION_DENIED, err
            assert err.reason == "member_revoked"
            return True
        return False

    wait_for(refused, 10, "the running hub to refuse the revoked member")

    # Falun keeps signing; Tibro refuses what Falun signed after the revocation
    with Node.open(falun_dir) as falun:
        after = falun.publisher().publish(
            factories.make_record("use_case", record_id="uc-after", origin=FALUN)
        )
    procs.run("node", "directory", "--refresh", "--dir", str(tibro_dir))
    with Node.open(tibro_dir) as tibro:
        ring = tibro.keyring()
        state = MemoryFeedState()
        verdict, parsed = verify_entry(before.signed, ring, state)
        assert verdict is Verdict.ACCEPTED
        state.note_entry(parsed)
        with pytest.raises(EntryRefused) as exc:
            verify_entry(after.signed, ring, state)
        assert exc.value.reason is Reason.KEY_REVOKED
        # and through the same ingest every way in uses: the first is stored, not the second
        report = ingest(tibro.store, ring, [before.signed, after.signed])
        assert report.accepted == 1 and report.refused == {Reason.KEY_REVOKED: 1}
        assert tibro.store.head(FALUN).sequence == 1  # type: ignore[union-attr]

    listed = procs.json("hub", "members", "list", "--dir", str(hub.dir))
    falun_row = next(m for m in listed if m["kommunkod"] == FALUN)
    assert falun_row["status"] == "revoked"


def test_key_rotation(procs: Procs, hub: RunningHub) -> None:
    node_dir = enrolled_node(procs, hub, "2021")  # Vansbro
    with Node.open(node_dir) as node:
        old_key = node.signing_key
        old_entry = node.publisher().publish(
            factories.make_record("use_case", record_id="uc-old-key", origin="2021")
        )
    first = procs.json("node", "rotate-key", "--dir", str(node_dir))
    assert first["status"] == "pending" and first["old_key_id"] == old_key.key_id
    pending = procs.json("hub", "keys", "pending", "--dir", str(hub.dir))
    assert [p["new_key_id"] for p in pending] == [first["new_key_id"]]
    # the node waits for the decision (asking again with the same announcement) ...
    waiting = procs.start(
        "node", "rotate-key", "--dir", str(node_dir), "--wait", "60", "--json", name="rotate"
    )  # fmt: skip
    # ... while the council approves
    procs.run("hub", "keys", "approve", "2021", "--dir", str(hub.dir))
    assert waiting.wait(timeout=60) == 0, procs.log("rotate")
    done = json.loads((procs.tmp / "rotate.out").read_text())
    assert done["status"] == "approved" and done["switched"] is True
    assert done["new_key_id"] == first["new_key_id"]

    with Node.open(node_dir) as node:
        assert node.signing_key.key_id == first["new_key_id"]
        assert (node_dir / "keys" / "retired" / f"{old_key.key_id}.key").exists()
        new_entry = node.publisher().publish(
            factories.make_record("use_case", record_id="uc-new-key", origin="2021")
        )
        directory = load_directory(node.config)
        assert directory is not None
        member = directory.member("2021")
        assert member is not None
        keys = {k.key_id: k for k in member.keys}
        assert keys[old_key.key_id].revoked_at_ms > 0  # ends after the overlap
        assert keys[first["new_key_id"]].revoked_at_ms == 0

    # any member verifies both with the directory: old entries with the old key (before
    # its end), new ones with the new key; the old key past its end is refused
    ring = directory.keyring()
    state = MemoryFeedState()
    for entry in (old_entry, new_entry):
        verdict, parsed = verify_entry(entry.signed, ring, state)
        assert verdict is Verdict.ACCEPTED
        state.note_entry(parsed)
    old_end = keys[old_key.key_id].revoked_at_ms
    overlap_ms = 24 * 3600 * 1000
    assert old_end - overlap_ms <= _now()  # approval time + the default overlap
    late = factories.make_record("use_case", record_id="uc-late", origin="2021")
    from samverka.protocol.entries import build_entry, sign_entry

    late_entry = sign_entry(
        old_key,
        build_entry(
            origin="2021",
            sequence=3,
            previous_hash=parsed.hash,
            timestamp_ms=old_end,
            record=late,
        ),
    )
    with pytest.raises(EntryRefused) as exc:
        verify_entry(late_entry, ring, state, now_ms=old_end)
    assert exc.value.reason is Reason.KEY_REVOKED


def test_renew_certificate(procs: Procs, hub: RunningHub, member: Path) -> None:
    node_dir = member
    old_cert = (node_dir / "tls" / "node.pem").read_bytes()
    procs.run("node", "renew-cert", "--dir", str(node_dir))
    new_cert = (node_dir / "tls" / "node.pem").read_bytes()
    assert new_cert != old_cert and kommunkod_of(new_cert) == TIBRO

    async def call() -> str:
        async with FeedClient.connect(hub.member, member_tls(node_dir)) as feed:
            return (await feed.get_node_info()).kommunkod

    assert run_async(call()) == "0000"


def test_renew_cert_past_the_limit_says_when_to_try_again(
    procs: Procs, hub: RunningHub, member: Path
) -> None:
    """Issue 16: the hub capped no renewals. ``node renew-cert`` until the hub refuses
    (3 a day: the member may have renewed in an earlier test), then the operator's
    message says why and when; the certificate on disk is the last one issued."""
    tried = []
    for _ in range(4):
        tried.append(procs.run("node", "renew-cert", "--dir", str(member), check=False))
        if tried[-1].returncode != 0:
            break
    refused = tried[-1]
    assert refused.returncode != 0 and len(tried) >= 2, tried
    assert "RESOURCE_EXHAUSTED" in refused.stderr and "(the limit is 3)" in refused.stderr
    assert "the next renewal is allowed at" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    members = MemberStore.open(f"sqlite:///{hub.dir / 'samverka.db'}", tracks=())
    try:
        with members.read() as tx:
            issued = [c for c in tx.certificates(TIBRO) if c.purpose == "renewal"]
    finally:
        members.close()
    assert len(issued) == 3
    assert (member / "tls" / "node.pem").read_bytes() == issued[-1].certificate_pem


def test_node_refuses_an_older_directory(procs: Procs, hub: RunningHub, member: Path) -> None:
    """A hub (or anyone at its address) that serves an older directory is refused."""
    node_dir = member
    with Node.open(node_dir) as node:
        held = load_directory(node.config)
        assert held is not None and held.version >= 2
        held_bytes = (node_dir / DIRECTORY_FILE).read_bytes()
        # directory version 1, genuinely signed by the hub, from its database
        members = MemberStore.open(f"sqlite:///{hub.dir / 'samverka.db'}", tracks=())
        try:
            with members.read() as tx:
                old = tx.directory(1)
        finally:
            members.close()
        assert old is not None
        with pytest.raises(DirectoryRefused) as exc:
            accept_directory(node.config, old.signed_directory)
        assert exc.value.reason is Reason.ROLLBACK
        assert (node_dir / DIRECTORY_FILE).read_bytes() == held_bytes

        # the same through the network: a hub double answering GetDirectory with it
        double = run_async(_with_hub_double(hub, old.signed_directory, node))
        assert double.reason is Reason.ROLLBACK
        assert (node_dir / DIRECTORY_FILE).read_bytes() == held_bytes
        # the real hub's newest still verifies against the pinned key
        verify_directory(held_bytes, pinned_hub_key(node.config), now_ms=None)  # type: ignore[arg-type]


async def _with_hub_double(hub: RunningHub, directory_bytes: bytes, node: Node) -> DirectoryRefused:
    from samverka.v1 import directory_pb2

    class Double(hub_service_pb2_grpc.HubServiceServicer):
        async def GetDirectory(self, request, context):  # type: ignore[no-untyped-def]
            return hub_service_pb2.GetDirectoryResponse(
                directory=directory_pb2.SignedDirectory.FromString(directory_bytes)
            )

    tls = hub.dir / "tls"
    server = grpc.aio.server()
    hub_service_pb2_grpc.add_HubServiceServicer_to_server(Double(), server)
    creds = grpc.ssl_server_credentials(
        [((tls / "node.key").read_bytes(), (tls / "node.pem").read_bytes())],
        root_certificates=(tls / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    try:
        from dataclasses import replace

        from samverka.config import HubSection

        config = replace(node.config, hub=HubSection(address=f"127.0.0.1:{port}"))
        try:
            await refresh_directory(config)
        except DirectoryRefused as exc:
            return exc
        raise AssertionError("the node accepted an older directory")
    finally:
        await server.stop(0)


def _hub_signing_key(hub: RunningHub) -> SigningKey:
    return SigningKey.from_pem((hub.dir / "keys" / "signing.key").read_bytes())


def _now() -> int:
    import time

    return time.time_ns() // 1_000_000
