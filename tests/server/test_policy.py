"""Who may see what: the public port, a CallerPolicy hook, and errors on the wire."""

from __future__ import annotations

import grpc
import pytest
from samverka.errors import EntryRefused, Reason
from samverka.node import Node
from samverka.store.logwatch import PollingLogWatcher
from samverka.transport.server import (
    AccessDenied,
    Audience,
    Caller,
    FeedServicer,
    NodeIdentity,
    NodeServer,
    ServerSettings,
    ServerTls,
)
from samverka.transport.server.status import PeerError, from_rpc_error, to_wire
from serverkit import FEED, LEKSAND, TIBRO, Pki, run


class RevokedTibro:
    """A hub-like policy: certificate holders are members unless revoked."""

    def __init__(self) -> None:
        self.callers: list[Caller] = []

    async def audience(self, caller: Caller) -> Audience:
        self.callers.append(caller)
        if caller.kommunkod == TIBRO:
            raise AccessDenied(f"{TIBRO} is revoked", hint="ask the council")
        return Audience.MEMBERS if caller.kommunkod else Audience.PUBLIC

    def revision(self) -> object:
        return 0  # the revocation above never changes during a call


def _servers(node: Node, policy: object) -> NodeServer:
    """A member port (mutual TLS) and a public port (server TLS only) on one server."""
    settings = ServerSettings()
    watcher = PollingLogWatcher(node.store)
    identity = NodeIdentity(LEKSAND, "Leksand", node.signing_key.public)
    tls_dir = node.dir / "tls"
    member_tls = ServerTls.from_files(
        tls_dir / "node.pem", tls_dir / "node.key", tls_dir / "ca.pem"
    )
    public_tls = ServerTls.from_files(tls_dir / "node.pem", tls_dir / "node.key", None)
    server = NodeServer(settings)
    server.add_resource(watcher)
    member = FeedServicer(node.store, identity, watcher, settings, policy=policy)  # type: ignore[arg-type]
    public = FeedServicer(node.store, identity, watcher, settings)
    server.add_listener("member", "127.0.0.1:0", member_tls, [member.binding()])
    server.add_listener("public", "[::1]:0", public_tls, [public.binding()])
    return server


def test_public_port_serves_public_records_only(node: Node, pki: Pki) -> None:
    async def scenario() -> list[str]:
        server = _servers(node, RevokedTibro())
        await server.start()
        try:
            public = server.listeners[1].bound_address
            from samverka.transport.client import FeedClient

            async with FeedClient.connect(public, pki.anonymous()) as client:
                kinds: list[str] = []
                async for page in client.read_entries(0):
                    kinds += [e.WhichOneof("item") or "" for e in page.entries]
                return kinds
        finally:
            await server.stop(grace=0)

    kinds = run(scenario())
    visibility = [vis for _body, _id, vis, _tags in FEED]
    expected = ["signed" if v == 1 else "redacted" for v in visibility]  # 1 = PUBLIC
    assert kinds == expected == ["signed", "redacted", "redacted", "signed", "signed", "redacted"]


def test_policy_refusal_travels_as_permission_denied(node: Node, pki: Pki) -> None:
    policy = RevokedTibro()

    async def scenario() -> None:
        server = _servers(node, policy)
        await server.start()
        try:
            async with pki.client(server.listeners[0].bound_address) as client:
                with pytest.raises(PeerError) as caught:
                    await client.get_heads()
                assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
                assert caught.value.reason == "access_denied"
                assert f"{TIBRO} is revoked" in str(caught.value)
                with pytest.raises(PeerError) as caught:
                    async for _ in client.subscribe(0):
                        pass
                assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
        finally:
            await server.stop(grace=0)

    run(scenario())
    assert {c.common_name for c in policy.callers} == {TIBRO}
    assert all(c.peer.startswith("ipv4:127.0.0.1:") for c in policy.callers)


def test_entry_refusal_round_trips_through_a_status() -> None:
    refusal = EntryRefused(Reason.BAD_SIGNATURE, "does not verify", origin=LEKSAND, sequence=7)
    wire = to_wire(refusal)
    assert wire.code is grpc.StatusCode.INVALID_ARGUMENT
    err = grpc.aio.AioRpcError(
        wire.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*wire.trailing_metadata()),
        details=wire.message,
    )
    back = from_rpc_error(err)
    assert isinstance(back, EntryRefused)
    assert (back.reason, back.origin, back.sequence, back.detail) == (
        Reason.BAD_SIGNATURE,
        LEKSAND,
        7,
        "does not verify",
    )
    assert str(back) == str(refusal)
    gap = to_wire(EntryRefused(Reason.SEQUENCE_GAP, "missing", origin=LEKSAND, sequence=9))
    assert gap.code is grpc.StatusCode.FAILED_PRECONDITION
    # A bug never leaks its text.
    assert to_wire(RuntimeError("secret path /etc/x")).message == "internal error"


def test_certificate_policy_refuses_a_cn_that_is_no_kommunkod() -> None:
    from samverka.transport.server import CertificatePolicy

    with pytest.raises(AccessDenied):
        run(CertificatePolicy().audience(Caller("ipv4:127.0.0.1:1", "evil")))
    assert run(CertificatePolicy().audience(Caller("x", None))) is Audience.PUBLIC
    assert run(CertificatePolicy().audience(Caller("x", "0000"))) is Audience.MEMBERS
