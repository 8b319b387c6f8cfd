"""tests/pgserver.py: the tests' PostgreSQL, named by SAMVERKA_TEST_PG or our own."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pgserver
import psycopg
import pytest


def alive(pid: int) -> bool:
    """The process runs (a zombie waiting for its reaper counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def test_a_throwaway_cluster_serves_restarts_and_leaves_nothing_behind() -> None:
    """Started whatever SAMVERKA_TEST_PG says: its own folder and port, trust on
    127.0.0.1, data kept over a restart; stopped, no process and no folder remain."""
    started = time.monotonic()
    server = pgserver.start_throwaway(say=lambda _: None)
    try:
        startup = time.monotonic() - started
        assert server.throwaway and isinstance(server, pgserver.Throwaway)
        assert server.host == "127.0.0.1" and server.port != 5432
        assert server.folder.is_dir() and (server.folder / f".s.PGSQL.{server.port}").exists()
        first = server.pid
        assert first is not None and alive(first)
        assert startup < 30, f"start-up took {startup:.1f} s"

        with server.connect() as conn:
            conn.execute('CREATE SCHEMA "t_pgserver"')
            conn.execute('CREATE TABLE "t_pgserver".kept (n int)')
            conn.execute('INSERT INTO "t_pgserver".kept VALUES (7)')
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        with server.database() as name, psycopg.connect(server.url(name, "postgresql")) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)

        server.restart()
        second = server.pid
        assert second is not None and second != first and not alive(first)
        with server.connect() as conn:
            assert conn.execute('SELECT n FROM "t_pgserver".kept').fetchone() == (7,)
            conn.execute('DROP SCHEMA "t_pgserver" CASCADE')

        server.stop()
        assert server.pid is None and not alive(second)
        with pytest.raises(psycopg.OperationalError):
            server.connect()
        server.start()
        assert server.is_ready()
        third = server.pid
    finally:
        server.close()
    assert third is not None and not alive(third)
    assert not server.folder.exists()
    watchdog = server._watchdog
    assert watchdog is not None and watchdog.poll() is not None


def test_a_named_server_is_described_by_its_url_and_never_stopped() -> None:
    server = pgserver.named("postgresql://tester:s3cret@db.example:6543/admin")
    assert not server.throwaway
    assert (server.host, server.port, server.user, server.admin_db) == (
        "db.example", 6543, "tester", "admin",
    )  # fmt: skip
    assert server.url("x") == "postgresql+psycopg://tester:s3cret@db.example:6543/x"
    assert server.url(driver="postgresql") == "postgresql://tester:s3cret@db.example:6543"
    assert "dbname=admin" in server.dsn() and "port=6543" in server.dsn()
    for control in (server.stop, server.start, server.restart):
        with pytest.raises(pgserver.NeedsThrowaway, match=pgserver.ENV):
            control()
    server.close()  # nothing to do


def test_the_session_server_is_the_named_one_or_our_own(pg_server: pgserver.PgServer) -> None:
    named = os.environ.get(pgserver.ENV, "").strip()
    if named:
        assert not pg_server.throwaway
        assert pg_server.url() == pgserver.named(named).url()
    else:
        assert isinstance(pg_server, pgserver.Throwaway) and pg_server.folder.is_dir()
    assert pg_server.is_ready()
