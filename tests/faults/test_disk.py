"""The hub's disk fills up, or its database file becomes read-only, while a node pushes.

The hub folder lives on a small ext4 filesystem of its own (a loop-mounted image, made
and removed by the test; we run as root), so "the disk is full" is real: a filler
file takes every free block. "Read-only" is the immutable attribute (``chattr +i``)
on the database and its write-ahead log, which refuses writes even to root and even
through the file handles the hub already holds.

Expected each time: the push fails with a clear error (UNAVAILABLE, reason ``store``;
the hub's log says what is wrong), every batch is stored whole or not at all, the hub
keeps answering reads, and once the condition clears the same push completes: the
hub's feed is then exactly the node's, without duplicates or gaps, and SQLite's
integrity check passes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import factories
import grpc
import pytest
import sqlalchemy as sa
from arena import HubProcess, MemberKeys, build_hub, run, serve_hub
from samverka.errors import StoreError
from samverka.protocol.verify import KeyRing, TrustedKey
from samverka.replication.ingest import ingest
from samverka.replication.push import PushReport, push_feed
from samverka.store.store import Store
from samverka.transport.client import FeedClient
from samverka.transport.hubclient import HubClient
from samverka.transport.server.status import PeerError
from soakresults import record

LEKSAND = "2029"
#: A description that makes each entry about 1.5 kB, so batches fill blocks quickly.
FILLER_TEXT = "Lärdomar om driften av tjänsten, steg för steg. " * 24


@contextlib.contextmanager
def small_filesystem(tmp: Path, megabytes: int = 24) -> Iterator[Path]:
    """An ext4 filesystem of ``megabytes`` mounted at ``tmp/mnt`` (unmounted after)."""
    image, mount = tmp / "disk.img", tmp / "mnt"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(megabytes * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot loop-mount a test filesystem (root needed): {mounted.stderr!r}")
    try:
        yield mount
    finally:
        for path in mount.rglob("*"):
            if path.is_file():
                subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        image.unlink(missing_ok=True)


def fill(mount: Path) -> Path:
    """Take every free block of the filesystem; the filler file's path."""
    filler = mount / "filler"
    chunk = b"\0" * (1024 * 1024)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (len(chunk), 4096, 512):
            try:
                while True:
                    os.write(fd, chunk[:size])
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        os.fsync(fd)
    finally:
        os.close(fd)
    return filler


@dataclass
class Node:
    member: MemberKeys
    store: Store
    writer: factories.FeedWriter

    def write(self, count: int) -> None:
        entries = [
            self.writer.publish(
                record_id=f"disk-{self.writer.sequence + 1}", description=FILLER_TEXT
            )
            for _ in range(count)
        ]
        keys = KeyRing([TrustedKey(self.member.code, self.member.key.public)])
        assert ingest(self.store, keys, entries, source="test").accepted == count

    def digest_upto(self, sequence: int) -> bytes:
        """What Store.feed_digest gives for this feed cut at ``sequence``."""
        digest = hashlib.sha256()
        for seq in range(1, sequence + 1):
            digest.update(seq.to_bytes(8, "big"))
            digest.update(self.store.entry_hash(self.member.code, seq) or b"")
        return digest.digest()


def push(hub: HubProcess, node: Node) -> PushReport | PeerError:
    async def go() -> PushReport | PeerError:
        async with HubClient(hub.member, node.member.tls(), timeout=10) as link:
            try:
                return await push_feed(node.store, LEKSAND, link, batch_size=100)
            except PeerError as err:
                return err

    return run(go())  # type: ignore[no-any-return]


def reads_work(hub: HubProcess, node: Node) -> int:
    """The hub still serves reads: its head of the feed and a page of entries."""

    async def go() -> int:
        async with FeedClient.connect(hub.member, node.member.tls()) as client:
            heads = await client.get_heads([LEKSAND])
            async for page in client.read_entries(0, batch_size=10):
                assert page.entries
                break
            return heads.heads[0].sequence if heads.heads else 0

    return run(go())  # type: ignore[no-any-return]


def hub_feed(hub: HubProcess) -> tuple[int, bytes, str, int, int]:
    """(head, digest, integrity check, rows, distinct sequences) of Leksand's feed."""
    with hub.open_store() as store, store.engine.connect() as conn:
        head = store.head(LEKSAND)
        rows, distinct = conn.execute(
            sa.text("SELECT COUNT(*), COUNT(DISTINCT sequence) FROM log WHERE origin = :o"),
            {"o": LEKSAND},
        ).one()
        integrity = conn.execute(sa.text("PRAGMA integrity_check")).scalar()
        return (
            head.sequence if head else 0,
            store.feed_digest(LEKSAND),
            str(integrity),
            int(rows),
            int(distinct),
        )


@pytest.fixture(scope="module")
def disk_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, Node, Path]]:
    """One hub on a filesystem of its own for the module, and a node that pushes to it."""
    tmp_path = tmp_path_factory.mktemp("disk")
    with small_filesystem(tmp_path) as mount:
        members = build_hub(mount / "hub", [LEKSAND])
        hub = serve_hub(mount / "hub", tmp_path / "logs")
        member = members[LEKSAND]
        writer = factories.FeedWriter(LEKSAND, member.key)
        writer.step_ms = 1
        node = Node(member, Store.open(f"sqlite:///{tmp_path / 'node.db'}"), writer)
        try:
            yield hub, node, mount
        finally:
            node.store.close()
            hub.stop()


def checkpoint(hub: HubProcess) -> None:
    """Move the write-ahead log into the database and truncate it, so the next append
    needs new blocks (otherwise it may reuse the log's old space on a full disk)."""
    with hub.open_store() as store, store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def condition(
    hub: HubProcess, node: Node, name: str, clear: list[Path], words: tuple[str, ...]
) -> None:
    """Push into the condition, check the refusal and the store, clear it, push again."""
    node.write(300)
    before_head = hub_feed(hub)[0]
    refused = push(hub, node)
    assert isinstance(refused, PeerError), f"{name}: the push went through: {refused}"
    clear_error = refused.code is grpc.StatusCode.UNAVAILABLE and refused.reason == "store"
    head, digest, integrity, rows, distinct = hub_feed(hub)
    whole_batches = (head - before_head) % 100 == 0 and digest == node.digest_upto(head)
    served = reads_work(hub, node) == head
    log_says = any(w in hub.log() for w in words)
    for path in clear:  # the filler file goes; immutable files get writable again
        if path.name == "filler":
            path.unlink()
        else:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    done = push(hub, node)
    final = hub_feed(hub)
    local = node.store.head(LEKSAND)
    assert local is not None
    resumed = isinstance(done, PushReport) and final[0] == local.sequence
    exact = final[1] == node.digest_upto(local.sequence) and final[3] == final[4] == local.sequence
    record("fault", name, survived=clear_error and whole_batches and served and resumed and exact,
           entries=local.sequence, lost=local.sequence - final[0])  # fmt: skip
    assert clear_error, refused
    assert log_says, f"the hub's log does not say {words!r}:\n{hub.log()[-3000:]}"
    assert whole_batches and integrity == "ok" and rows == distinct == head
    assert served, "the hub stopped serving reads"
    assert resumed, done
    assert exact and final[2] == "ok"


def test_a_full_disk_refuses_clearly_corrupts_nothing_and_clears(
    disk_hub: tuple[HubProcess, Node, Path],
) -> None:
    hub, node, mount = disk_hub
    node.write(200)
    assert isinstance(push(hub, node), PushReport)
    checkpoint(hub)
    filler = fill(mount)
    condition(hub, node, "the hub's disk fills up", [filler], ("database or disk is full",))


def test_a_read_only_database_refuses_clearly_corrupts_nothing_and_clears(
    disk_hub: tuple[HubProcess, Node, Path],
) -> None:
    hub, node, mount = disk_hub
    node.write(100)
    assert isinstance(push(hub, node), PushReport)
    files = [p for p in (mount / "hub").glob("samverka.db*") if not p.name.endswith("-shm")]
    for path in files:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    # SQLite names it by where the write failed: the WAL file, or the database itself.
    words = ("disk I/O error", "attempt to write a readonly database")
    condition(hub, node, "the hub's database becomes read-only", files, words)


def test_a_connection_opened_while_the_file_was_read_only_is_not_kept(tmp_path: Path) -> None:
    """SQLite opens a file it may not write read-only, and such a connection stays
    read-only after the file is writable again. A write that fails must not leave
    that connection in the pool, or the store refuses every write until a restart."""
    with small_filesystem(tmp_path) as mount:
        store = Store.open(f"sqlite:///{mount / 'node.db'}")
        writer = factories.FeedWriter(LEKSAND)
        try:
            first = [writer.publish(record_id=f"uc-{i}") for i in range(3)]
            assert ingest(store, writer.keyring(), first).ok
            files = [p for p in mount.glob("node.db*") if not p.name.endswith("-shm")]
            for path in files:
                subprocess.run(["chattr", "+i", str(path)], check=True)
            store.engine.dispose()  # the pool's next connection opens now, read-only
            more = [writer.publish(record_id="uc-while-read-only")]
            with pytest.raises(StoreError):
                ingest(store, writer.keyring(), more)
            for path in files:
                subprocess.run(["chattr", "-i", str(path)], check=True)
            report = ingest(store, writer.keyring(), more)
            assert report.ok and report.accepted == 1
            head = store.head(LEKSAND)
            assert head is not None and head.sequence == 4
        finally:
            store.close()
