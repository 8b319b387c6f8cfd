"""Live fan-out on PostgreSQL: LISTEN/NOTIFY across processes, and reconnecting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import factories
import psycopg
from samverka.node import Node
from samverka.store.logwatch import PostgresLogWatcher, libpq_conninfo, watcher_for
from samverka.store.store import Store
from serverkit import Pki, Processes, ServerProcess, next_entries, run

WRITER = str(Path(__file__).parent / "scripts" / "writer.py")


def test_subscriber_of_a_postgres_node_sees_another_process_write_within_a_second(
    node: Node,
    pki: Pki,
    pg_url: str,
    processes: Processes,
    start_server: Callable[..., ServerProcess],
) -> None:
    env = {"SAMVERKA_STORE_URL": pg_url}
    # The server and the writer share one PostgreSQL database, as hub replicas do.
    server = start_server(node.dir, env=env)

    async def scenario() -> list[tuple[list[int], float]]:
        arrivals: list[tuple[list[int], float]] = []
        async with pki.client(server.address) as client:
            pages = client.subscribe(0)
            for i in range(2):
                writer = processes.python(
                    WRITER, "--dir", str(node.dir), "--id", f"uc-pg-{i}", name=f"w{i}", env=env
                )
                page = await next_entries(
                    pages, writer=writer, writer_errors=lambda i=i: processes.errors(f"w{i}")
                )
                arrivals.append(([e.position for e in page.entries], time.time()))
                assert await asyncio.to_thread(writer.wait, 30) == 0, processes.errors(f"w{i}")
            await pages.aclose()
        return arrivals

    arrivals = run(scenario())
    assert [positions for positions, _ in arrivals] == [[1], [2]]
    for i, (_, received) in enumerate(arrivals):
        written = float(processes.output(f"w{i}").split()[2])
        assert received - written < 1.0, f"entry {i + 1} took {received - written:.3f} s"


def test_watcher_reconnects_after_losing_its_listen_connection(pg_url: str) -> None:
    store = Store.open(pg_url)
    writer_store = Store.open(pg_url)  # another engine: its own connections
    leksand = factories.FeedWriter(factories.LEKSAND)
    watcher = watcher_for(store, pg_url)
    assert isinstance(watcher, PostgresLogWatcher)
    from samverka.replication.ingest import ingest

    async def scenario() -> None:
        await watcher.start()
        try:
            await asyncio.wait_for(watcher.listening.wait(), 10)
            await asyncio.to_thread(
                ingest, writer_store, leksand.keyring(), [leksand.publish(record_id="a")]
            )
            assert await watcher.wait_beyond(0, 5), "NOTIFY did not arrive"
            assert watcher.position == 1

            # Kill the LISTEN connection from the server side, as a failover would.
            watcher.listening.clear()
            with psycopg.connect(libpq_conninfo(pg_url), autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%%' AND pid <> pg_backend_pid() "
                    "AND datname = current_database()"
                ).fetchall()
            assert killed
            # Appended while the watcher is disconnected: picked up after reconnecting.
            await asyncio.to_thread(
                ingest, writer_store, leksand.keyring(), [leksand.publish(record_id="b")]
            )
            assert await watcher.wait_beyond(1, 10), "no reconnect"
            await asyncio.wait_for(watcher.listening.wait(), 10)
            await asyncio.to_thread(
                ingest, writer_store, leksand.keyring(), [leksand.publish(record_id="c")]
            )
            assert await watcher.wait_beyond(2, 5)
            assert watcher.position == 3
        finally:
            await watcher.close()

    try:
        run(scenario())
    finally:
        store.close()
        writer_store.close()
