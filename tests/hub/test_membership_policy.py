"""Who may call a member port: DirectoryPolicy over a signed directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hubkit import T0
from samverka.membership.member import (
    DIRECTORY_FILE,
    HUB_KEY_FILE,
    CachedDirectory,
    DirectoryPolicy,
    MemberRevoked,
    write_file,
)
from samverka.node import init_node
from samverka.protocol.directory import build_directory, hub_member
from samverka.protocol.signing import SigningKey
from samverka.transport.server.policy import Audience, Caller
from samverka.transport.server.status import AccessDenied
from samverka.v1 import directory_pb2


def member(code: str, *, revoked_at: int = 0) -> directory_pb2.Member:
    key = SigningKey.generate()
    return directory_pb2.Member(
        kommunkod=code,
        status=directory_pb2.MEMBER_STATUS_REVOKED
        if revoked_at
        else directory_pb2.MEMBER_STATUS_ACTIVE,
        revoked_at_ms=revoked_at,
        keys=[directory_pb2.MemberKey(public_key=key.public.raw, key_id=key.key_id)],
    )


def directory(hub_key: SigningKey, version: int, *members: directory_pb2.Member):  # type: ignore[no-untyped-def]
    return build_directory(
        hub_key,
        version=version,
        members=[hub_member(hub_key.public), *members],
        issued_at_ms=T0,
    )


def audience(policy: DirectoryPolicy, common_name: str | None) -> Audience:
    return asyncio.run(policy.audience(Caller(peer="test", common_name=common_name)))


def test_policy(hub_key: SigningKey) -> None:
    d = directory(hub_key, 2, member("2029"), member("1472", revoked_at=T0 - 1))
    node_policy = DirectoryPolicy(lambda: d)
    assert audience(node_policy, None) is Audience.PUBLIC
    assert audience(node_policy, "2029") is Audience.MEMBERS
    assert audience(node_policy, "2026") is Audience.MEMBERS  # not listed yet: the CA vouches
    with pytest.raises(MemberRevoked) as exc:
        audience(node_policy, "1472")
    assert exc.value.reason == "member_revoked"
    with pytest.raises(AccessDenied):
        audience(node_policy, "evil")
    hub_policy = DirectoryPolicy(lambda: d, require_listed=True, allow=frozenset({"0000"}))
    with pytest.raises(AccessDenied):
        audience(hub_policy, "2026")
    assert audience(hub_policy, "0000") is Audience.MEMBERS
    # without any directory a node's policy still works (not enrolled yet)
    assert audience(DirectoryPolicy(lambda: None), "1472") is Audience.MEMBERS


def test_cached_directory_follows_the_file(tmp_path: Path, hub_key: SigningKey) -> None:
    with init_node(tmp_path / "n", "2029") as node:
        config = node.config
    cached = CachedDirectory(config)
    assert cached() is None
    write_file(config.dir / HUB_KEY_FILE, hub_key.public.to_pem(), mode=0o644)
    write_file(config.dir / DIRECTORY_FILE, directory(hub_key, 3).signed_bytes(), mode=0o644)
    assert cached().version == 3  # type: ignore[union-attr]
    write_file(
        config.dir / DIRECTORY_FILE,
        directory(hub_key, 4, member("1472", revoked_at=T0)).signed_bytes(),
        mode=0o644,
    )
    policy = DirectoryPolicy(cached)
    with pytest.raises(MemberRevoked):
        audience(policy, "1472")
