"""Backup and restore for real: a node (SQLite online backup while ``node serve`` runs and
another process writes) and a hub on the local PostgreSQL (``pg_dump``/``pg_restore``).
A restored folder, served again, must show the same feed heads as the original.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import factories
import pytest
from hubkit import Procs, run_async, wait_for
from pgserver import PgServer
from samverka.node import Node
from samverka.replication.ingest import ingest
from samverka.store.store import Store
from samverka.transport.client import ClientTls, FeedClient
from samverka_hub.folder import open_hub

LEKSAND = "2029"


def publish(node_dir: Path, count: int, prefix: str) -> None:
    with Node.open(node_dir) as node:
        for i in range(count):
            record = factories.make_record("use_case", record_id=f"{prefix}-{i}", origin=LEKSAND)
            node.publisher().publish(record)


def serve(procs: Procs, folder: Path, name: str) -> str:
    """``node serve`` on a free port; returns the bound address."""
    address_file = procs.tmp / f"{name}.address"
    procs.start(
        "node", "serve", "--dir", str(folder), "--listen", "127.0.0.1:0",
        "--address-file", str(address_file), name=name,
    )  # fmt: skip
    return str(
        wait_for(lambda: address_file.exists() and address_file.read_text().strip(), 30, f"{name}")
    )


def served_heads(address: str, folder: Path) -> tuple[dict[str, int], int]:
    """GetFeedHeads over mutual TLS with the folder's own certificate."""
    tls = ClientTls.from_files(
        folder / "tls" / "ca.pem", folder / "tls" / "node.pem", folder / "tls" / "node.key"
    )

    async def ask() -> tuple[dict[str, int], int]:
        async with FeedClient.connect(address, tls) as client:
            heads = await client.get_heads()
        return {h.origin: h.sequence for h in heads.heads}, heads.log_position

    return run_async(ask())


def entry_bytes(folder: Path) -> list[bytes]:
    with Node.open(folder) as node:
        return [
            item.signed.entry
            for item in node.store.feed_items(LEKSAND, limit=10_000, include_drafts=True)
        ]


@pytest.fixture
def leksand(procs: Procs) -> Path:
    folder = procs.tmp / "leksand"
    procs.run("node", "init", "--kommun", LEKSAND, "--dir", str(folder))
    publish(folder, 5, "uc")
    return folder


def test_restored_node_serves_the_same_heads(procs: Procs, leksand: Path) -> None:
    original = serve(procs, leksand, "original")
    archive = procs.tmp / "backups" / "leksand.tar.gz"
    procs.run("node", "backup", "--dir", str(leksand), "--out", str(archive))
    assert archive.stat().st_mode & 0o077 == 0  # it holds the private keys

    restored_dir = procs.tmp / "restored"
    result = procs.json("node", "restore", str(archive), "--dir", str(restored_dir))
    assert result["matches_backup"] is True and result["heads"] == {LEKSAND: 5}
    assert (restored_dir / "keys" / "signing.key").stat().st_mode & 0o777 == 0o600
    assert (restored_dir / "keys").stat().st_mode & 0o777 == 0o700
    restored = serve(procs, restored_dir, "restored")
    assert served_heads(restored, restored_dir) == served_heads(original, leksand)
    assert entry_bytes(restored_dir) == entry_bytes(leksand)
    doctor = procs.run("doctor", "--dir", str(restored_dir), "--offline")
    assert "FAIL" not in doctor.stdout


def test_backup_while_the_server_serves_and_another_process_writes(
    procs: Procs, leksand: Path
) -> None:
    serve(procs, leksand, "busy")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        with Node.open(leksand) as node:
            while not stop.is_set() and written[0] < 300:
                record = factories.make_record(
                    "lesson", record_id=f"lesson-{written[0]}", origin=LEKSAND
                )
                node.publisher().publish(record)
                written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    archives = []
    try:
        wait_for(lambda: written[0] >= 5, 30, "the writer to start")
        for i in range(2):
            archive = procs.tmp / f"busy-{i}.tar.gz"
            procs.run("node", "backup", "--dir", str(leksand), "--out", str(archive))
            archives.append(archive)
    finally:
        stop.set()
        thread.join(timeout=60)
    final = entry_bytes(leksand)
    for i, archive in enumerate(archives):
        folder = procs.tmp / f"busy-restored-{i}"
        result = procs.json("node", "restore", str(archive), "--dir", str(folder))
        assert result["matches_backup"] is True, result
        copy = entry_bytes(folder)
        # A consistent moment: a whole prefix of the feed, chain intact, nothing torn.
        assert 5 <= len(copy) <= len(final) and copy == final[: len(copy)]
        assert result["heads"] == {LEKSAND: len(copy)}
        with Store.open(f"sqlite:///{folder / 'samverka.db'}") as store:
            assert store.log_position() == len(copy)


def test_restore_refuses_an_existing_node_and_a_damaged_archive(
    procs: Procs, leksand: Path
) -> None:
    archive = procs.tmp / "b.tar.gz"
    procs.run("node", "backup", "--dir", str(leksand), "--out", str(archive))
    into_node = procs.run("node", "restore", str(archive), "--dir", str(leksand), check=False)
    assert into_node.returncode == 1 and "already holds" in into_node.stderr
    damaged = procs.tmp / "damaged.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    result = procs.run("node", "restore", str(damaged), "--dir", str(procs.tmp / "x"), check=False)
    assert result.returncode != 0 and "fel:" in result.stderr


# -- the hub on PostgreSQL ---------------------------------------------------------------


@pytest.fixture
def databases(pg_server: PgServer) -> Iterator[tuple[str, str]]:
    """Two throwaway PostgreSQL databases: the hub's, and the one its dump is restored to."""
    with pg_server.database() as source, pg_server.database() as target:
        yield source, target


def test_hub_on_postgresql_dumped_and_restored_serves_the_same_heads(
    procs: Procs, leksand: Path, databases: tuple[str, str], pg_server: PgServer
) -> None:
    base = pg_server.url(driver="postgresql")  # libpq's form, for pg_dump and pg_restore
    for tool in ("pg_dump", "pg_restore"):
        assert shutil.which(tool), f"{tool} is not installed"
    source, target = databases
    hub_dir = procs.tmp / "hub"
    procs.run(
        "hub", "init", "--dir", str(hub_dir), "--store-url", f"{base}/{source}",
        "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
    )  # fmt: skip
    # The hub holds entries: its own (a council record) and Leksand's, as if pushed.
    with open_hub(hub_dir) as hub, Node.open(leksand) as node:
        hub.node().publisher().publish(
            factories.make_record("recommendation", record_id="rec-1", origin="0000")
        )
        report = ingest(hub.store, node.keyring(), node.store.feed_items(LEKSAND), source="test")
        assert report.accepted == 5
        before = {h.origin: h.sequence for h in hub.store.heads()}
        position = hub.store.log_position()

    dump = procs.tmp / "hub.dump"
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), f"{base}/{source}"], check=True, timeout=120)
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", "-d", f"{base}/{target}", str(dump)],
        check=True,
        timeout=120,
    )
    # The folder's files come back from a file backup; the database from the dump.
    restored_dir = procs.tmp / "hub-restored"
    shutil.copytree(hub_dir, restored_dir)
    env = {**procs.env, "SAMVERKA_STORE_URL": f"{base}/{target}"}
    restored = Procs(procs.tmp, env)
    try:
        # A restored copy says it is one (it would fork the directory and the log if it
        # signed beside production); this copy replaces production, so it is promoted.
        checked = restored.run("doctor", "--dir", str(restored_dir), "--offline", check=False)
        fails = [line for line in checked.stdout.splitlines() if line.startswith("FAIL")]
        assert len(fails) == 1 and "är en kopia" in fails[0], checked.stdout
        restored.run("hub", "promote", "--dir", str(restored_dir), "--reason", "restore test")
        assert "FAIL" not in restored.run("doctor", "--dir", str(restored_dir), "--offline").stdout
        address_file = procs.tmp / "hub-restored.addresses"
        restored.start(
            "hub", "serve", "--dir", str(restored_dir), "--address-file", str(address_file),
            name="hub-restored",
        )  # fmt: skip
        bound = wait_for(
            lambda: address_file.exists() and json.loads(address_file.read_text()), 30, "hub"
        )
        heads, served_position = served_heads(bound["member"], restored_dir)
        assert heads == before and served_position == position
    finally:
        restored.stop_all()
