"""Revocation ends open streams: a member's Subscribe opened before ``hub members revoke``
is closed with PERMISSION_DENIED within a second, with no new entry needed to notice,
and nothing published after the revocation reaches it on any stream. Against the
arena's running ``hub serve`` process (its directory poll is 0.1 s in tests).

Before the fix the caller policy was asked once, at the start of the call: the open
stream kept delivering MEMBERS records after the revocation (seen 5 s and 30 s on).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
from arena import TIBRO, Arena, enroll_node, hub_env, revoke, run
from samverka.errors import SamverkaError
from samverka.membership.member import refresh_directory
from samverka.node import Node
from samverka.transport.client import ClientTls, FeedClient
from samverka.transport.server.status import PeerError
from samverka.v1 import feed_pb2, records_pb2
from soakresults import record

SATER = "2082"


def status_of(err: SamverkaError) -> tuple[grpc.StatusCode | None, str]:
    """The gRPC status code and ErrorInfo reason a refusal came with."""
    cause = err.__cause__
    code = cause.code() if isinstance(cause, grpc.aio.AioRpcError) else getattr(err, "code", None)
    reason = getattr(err, "reason", "")
    return code, str(getattr(reason, "value", reason))


def published_ids(entries: list[feed_pb2.LogEntry]) -> set[str]:
    from samverka.protocol.entries import parse_signed

    return {parse_signed(e.signed).record.header.id for e in entries if e.HasField("signed")}


def test_a_revoked_members_open_subscribe_ends_within_a_second(
    hub_arena: Arena, tmp_path: Path
) -> None:
    node = enroll_node(hub_arena.hub, SATER, tmp_path / "sater", quorum=0)
    with Node.open(node) as opened:
        tls = ClientTls.from_config(opened.config)
    tibro = hub_arena.writer(TIBRO)
    members = records_pb2.VISIBILITY_MEMBERS

    async def scenario() -> tuple[float, SamverkaError | None, set[str], SamverkaError | None]:
        received: list[feed_pb2.LogEntry] = []
        async with FeedClient.connect(hub_arena.hub.member, tls) as client:
            # The running hub learns of the admission at its next directory poll.
            for _ in range(200):
                try:
                    start = (await client.get_heads([])).log_position
                    break
                except PeerError as err:
                    if err.code is not grpc.StatusCode.PERMISSION_DENIED:
                        raise
                    await asyncio.sleep(0.05)

            ended: asyncio.Future[SamverkaError | None] = asyncio.get_running_loop().create_future()

            async def follow() -> None:
                try:
                    async for page in client.subscribe(start):
                        received.extend(page.entries)
                    ended.set_result(None)
                except SamverkaError as err:
                    ended.set_result(err)

            task = asyncio.create_task(follow())
            before = tibro.publish(record_id="sater-before", visibility=members)
            assert (await asyncio.to_thread(hub_arena.publish, TIBRO, before)).accepted == 1
            for _ in range(200):  # the open stream delivers it in full
                if "sater-before" in published_ids(received):
                    break
                await asyncio.sleep(0.02)
            assert "sater-before" in published_ids(received)

            await asyncio.to_thread(revoke, hub_arena.hub.dir, SATER)
            revoked = time.monotonic()
            done, _ = await asyncio.wait([ended], timeout=10)
            closed_after = time.monotonic() - revoked
            error = ended.result() if done else None
            after = tibro.publish(record_id="sater-after", visibility=members)
            assert (await asyncio.to_thread(hub_arena.publish, TIBRO, after)).accepted == 1
            await asyncio.sleep(0.5)
            task.cancel()
            # A new stream by the revoked certificate, from the start of the log.
            fresh: SamverkaError | None = None
            try:
                async for page in client.read_entries(0):
                    received.extend(page.entries)
            except SamverkaError as err:
                fresh = err
        return closed_after, error, published_ids(received), fresh

    closed_after, error, seen, fresh = run(scenario())
    print(f"stream closed {closed_after:.3f} s after the revocation")
    code, reason = status_of(error) if error is not None else (None, "still open")
    fresh_code = status_of(fresh)[0] if fresh is not None else None
    denied = grpc.StatusCode.PERMISSION_DENIED
    ok = (code, reason) == (denied, "member_revoked") and closed_after < 1.0
    ok &= "sater-after" not in seen and fresh_code is denied
    record("attack", "revoked member's open Subscribe keeps receiving", refused=ok,
           code=code.name if code else "still open",
           reason=f"{reason} after {closed_after:.2f} s")  # fmt: skip
    assert (code, reason) == (denied, "member_revoked"), error
    assert closed_after < 1.0, f"closed {closed_after:.2f} s after the revocation"
    assert "sater-after" not in seen
    assert fresh_code is denied, fresh


AVESTA, HEDEMORA = "2084", "2083"


def test_a_node_whose_directory_is_too_old_refuses_member_calls(
    hub_arena: Arena, tmp_path: Path
) -> None:
    """``node serve`` (a subprocess) whose directory the hub last confirmed two hours ago,
    with ``[hub] directory_max_age_seconds`` 60 and no refresh: a member's call is refused
    (PERMISSION_DENIED ``directory_stale``), not served by a possibly revoked certificate;
    once the directory is refreshed from the hub the same call is served."""
    served = enroll_node(hub_arena.hub, AVESTA, tmp_path / "avesta", quorum=0)
    caller = enroll_node(hub_arena.hub, HEDEMORA, tmp_path / "hedemora", quorum=0)
    directory = served / "hub" / "directory.bin"
    two_hours_ago = time.time() - 7200
    os.utime(directory, (two_hours_ago, two_hours_ago))
    address_file = tmp_path / "avesta.address"
    env = hub_env(
        SAMVERKA_HUB_PUSH="false",
        SAMVERKA_HUB_FOLLOW="false",
        SAMVERKA_HUB_DIRECTORY_REFRESH_SECONDS="0",
        SAMVERKA_HUB_DIRECTORY_MAX_AGE_SECONDS="60",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "samverka", "node", "serve", "--dir", str(served),
         "--listen", "127.0.0.1:0", "--address-file", str(address_file)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (address_file.exists() and address_file.read_text().strip()):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "node serve did not listen"
            time.sleep(0.05)
        address = address_file.read_text().strip()
        with Node.open(caller) as opened:
            tls = ClientTls.from_config(opened.config)

        async def ask() -> SamverkaError | None:
            async with FeedClient.connect(address, tls) as client:
                try:
                    await client.get_heads([])
                except SamverkaError as err:
                    return err
            return None

        stale = run(ask())
        with Node.open(served) as opened:
            run(refresh_directory(opened.config))
        fresh = run(ask())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    code, reason = status_of(stale) if stale is not None else (None, "served")
    refused = (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "directory_stale")
    record("attack", "member call to a node with a stale directory", refused=refused,
           code=code.name if code else "OK", reason=reason)  # fmt: skip
    assert refused, stale
    assert stale is not None and "directory_max_age_seconds" in str(stale)
    assert fresh is None, fresh


SMEDJEBACKEN, HUDIKSVALL = "2061", "2184"


def test_a_following_node_refuses_a_revoked_member_within_seconds(
    hub_arena: Arena, tmp_path: Path
) -> None:
    """``node serve`` (a subprocess) following the hub, with its directory refresh every
    60 s: a member it serves is revoked at the hub; the hub tells its followers the new
    directory version on the Subscribe stream, and the node refuses the revoked member's
    next calls (PERMISSION_DENIED ``member_revoked``) within seconds, not at the next
    refresh. Before, the node went on serving the revoked certificate for up to 60 s."""
    served = enroll_node(hub_arena.hub, SMEDJEBACKEN, tmp_path / "smedjebacken", quorum=0)
    caller = enroll_node(hub_arena.hub, HUDIKSVALL, tmp_path / "hudiksvall", quorum=0)
    address_file = tmp_path / "smedjebacken.address"
    env = hub_env(
        SAMVERKA_HUB_PUSH="false",
        SAMVERKA_HUB_FOLLOW="true",
        SAMVERKA_HUB_DIRECTORY_REFRESH_SECONDS="60",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "samverka", "node", "serve", "--dir", str(served),
         "--listen", "127.0.0.1:0", "--address-file", str(address_file)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "smedjebacken.err", "wb"),  # noqa: SIM115 (the child holds it)
    )  # fmt: skip
    tibro = hub_arena.writer(TIBRO)
    try:
        deadline = time.monotonic() + 30
        while not (address_file.exists() and address_file.read_text().strip()):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "node serve did not listen"
            time.sleep(0.05)
        address = address_file.read_text().strip()
        with Node.open(caller) as opened:
            tls = ClientTls.from_config(opened.config)
        entry = tibro.publish(record_id="smedjebacken-follows")
        assert hub_arena.publish(TIBRO, entry).accepted == 1

        async def scenario() -> tuple[float, SamverkaError | None]:
            async with FeedClient.connect(address, tls) as client:
                # The node follows the hub live: the entry reaches it (and Hudiksvall is served).
                for _ in range(300):
                    heads = await client.get_heads([TIBRO])
                    if heads.heads and heads.heads[0].sequence >= tibro.sequence:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the node did not take the hub's entry")
                await asyncio.to_thread(revoke, hub_arena.hub.dir, HUDIKSVALL)
                revoked = time.monotonic()
                while time.monotonic() - revoked < 20:
                    try:
                        await client.get_heads([])
                    except SamverkaError as err:
                        return time.monotonic() - revoked, err
                    await asyncio.sleep(0.05)
                return time.monotonic() - revoked, None

        refused_after, error = run(scenario())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    code, reason = status_of(error) if error is not None else (None, "served")
    denied = (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "member_revoked")
    print(f"the following node refused the revoked member {refused_after:.2f} s after")
    record("attack", "revoked member's calls to a following node", refused=denied
           and refused_after < 3.0, code=code.name if code else "OK",
           reason=f"{reason} after {refused_after:.2f} s")  # fmt: skip
    assert denied, error
    assert refused_after < 3.0, f"refused {refused_after:.2f} s after the revocation"
