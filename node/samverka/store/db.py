"""Database engines and transactions for the store (SQLite or PostgreSQL, same code).

Two kinds of transaction, both context managers yielding a SQLAlchemy ``Connection``:

- :func:`write_transaction` serializes every writer of one database. SQLite: ``BEGIN
  IMMEDIATE`` takes the single write lock up front, across threads and processes, so a
  writer never fails half-way on a lock upgrade. PostgreSQL: a transaction-level
  advisory lock, held until commit, so writes (and the log positions they allocate)
  commit in the order they were made — several hub replicas may share one database
  and a reader must never see log position 105 before 104 is committed.
- :func:`read_transaction` gives a consistent snapshot for multi-statement reads
  (SQLite WAL read transaction; PostgreSQL REPEATABLE READ, read only).

SQLite connections run with ``journal_mode=WAL`` (readers never block the writer),
``synchronous=NORMAL`` (durable at checkpoints, safe against corruption),
``foreign_keys=ON`` and a busy timeout, so the CLI and a running server can share the
file.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

#: How long a SQLite writer waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 30.0

#: PostgreSQL advisory lock key taken by every writer ("SAMVERKA" in ASCII).
WRITE_LOCK_KEY = 0x53414D5645524B41

_WRITE = "samverka_write"
#: Set on a SQLite connection opened while its file could not be written (see
#: _sqlite_engine): SQLite then opens it read-only, and it stays so for good.
_OPENED_READ_ONLY = "samverka_opened_read_only"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_memory_sqlite(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url


#: Seconds a new PostgreSQL connection may take before the attempt fails.
CONNECT_TIMEOUT_S = 10


def create_engine(url: str, *, pool_size: int = 8) -> Engine:
    """One engine per Store: a connection pool shared by the threads that use it."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, pool_size=pool_size)
    if url.startswith("postgresql"):
        # Pre-ping: a connection the server dropped (a restart, a failover, an idle
        # killer, pg_terminate_backend) is found at checkout and replaced, instead of
        # failing the call that drew it; one loopback round trip per checkout. Recycling
        # keeps connections from outliving server timeouts; connect_timeout keeps a
        # connection attempt to an unreachable server from hanging a thread for minutes.
        return sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=2 * pool_size,
            pool_recycle=1800,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


def _sqlite_engine(url: str, *, pool_size: int) -> Engine:
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
    if is_memory_sqlite(url):
        # One shared connection, or each thread would see its own empty database.
        # Single-threaded use only (tests, throwaway tools).
        engine = sa.create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    else:
        engine = sa.create_engine(
            url,
            connect_args=connect_args,
            pool_size=pool_size,
            max_overflow=2 * pool_size,
        )

    path = None if is_memory_sqlite(url) else engine.url.database

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # A file the OS will not let us write (read-only mount, immutable file) is
        # opened read-only, silently, and that connection never writes again even when
        # the file does: remember it, so writers take a fresh one (write_transaction).
        if path:
            files = [path, f"{path}-wal"]
            record.info[_OPENED_READ_ONLY] = not all(
                os.access(f, os.W_OK) for f in files if os.path.exists(f)
            )
        # Hand transaction control to SQLAlchemy's "begin" event below: pysqlite's own
        # implicit BEGIN is deferred and cannot be made IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        # Straight to the driver: this runs before every statement outside a
        # transaction block, and exec_driver_sql costs tens of µs more.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def driver_param(conn: Connection, name: str) -> str:
    """A named placeholder in the driver's own style (exec_driver_sql, driver_executemany)."""
    return f"%({name})s" if is_postgres(conn) else f":{name}"


def driver_execute(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one ``?``-style statement on the driver connection under ``conn`` (inside
    its transaction); its rows (none for a write). psycopg gets ``%s``.

    The store's append path sends its statements this way: SQLAlchemy's execution path
    (building the statement, its cache key, the compiled-cache lookup, wrapping the
    result) cost 50–150 µs a statement here, several times what SQLite spends on it,
    and appending one live entry runs about ten (py-spy of 290 nodes following a hub:
    most of the CPU each spent per entry). Driver errors come out unwrapped
    (sqlite3/psycopg exceptions, not SQLAlchemy's).
    """
    cursor = _driver_cursor(conn)
    try:
        cursor.execute(sql.replace("?", "%s") if is_postgres(conn) else sql, tuple(params))
        return cursor.fetchall() if cursor.description else []
    finally:
        cursor.close()


def driver_executemany(conn: Connection, sql: str, rows: Sequence[dict[str, Any]]) -> None:
    """executemany of a statement with named parameters (:func:`driver_param` style) on
    the driver connection under ``conn``, like :func:`driver_execute`."""
    cursor = _driver_cursor(conn)
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def bulk_insert(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows through the driver's executemany.

    Core's executemany processes every row's parameters in Python (about 20 µs per
    row and statement here), which dominated the store's append and the transparency
    log's sequencing; the values must be plain ints, strs, bytes and bools, which both
    drivers take as they are (all rows with the first row's keys).
    """
    if not rows:
        return
    columns = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote  # a column may be named "index"
    names = ", ".join(quote(c) for c in columns)
    marks = ", ".join(driver_param(conn, c) for c in columns)
    driver_executemany(conn, f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})", rows)


def _driver_cursor(conn: Connection) -> Any:
    driver: Any = conn.connection.driver_connection
    return driver.cursor()


#: One lock per engine for the writers of this process (see write_transaction).
_process_locks: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_process_locks_guard = threading.Lock()


def _process_lock(engine: Engine) -> threading.RLock:
    with _process_locks_guard:
        lock = _process_locks.get(engine)
        if lock is None:
            lock = _process_locks[engine] = threading.RLock()
        return lock


def _release_pooled(engine: Engine) -> None:
    """After SQLite refused a write: close every idle pooled connection too.

    SQLite shares one WAL-index (``-shm``) mapping between the connections of a process;
    one opened while the file could not be written keeps it read-only for all of them
    until it closes, so a refused write can outlive the condition through a connection
    that merely sat in the pool (seen with the transparency-log sequencer reading beside
    the writers).
    """
    if engine.dialect.name == "sqlite":
        engine.pool.dispose()


@contextmanager
def write_transaction(engine: Engine, *, lock: bool = True) -> Iterator[Connection]:
    """A write transaction; commits on success, rolls back on an exception.

    ``lock=False`` skips PostgreSQL's advisory lock, for small writes that need no
    ordering with the log (cursors). SQLite always takes its write lock up front.

    Writers of one process first queue on a lock of their own: SQLite's busy handler
    waits for a held write lock by sleeping (1, 2, 5, … up to 100 ms at a time), so
    threads racing for BEGIN IMMEDIATE (a hub ingesting many pushes at once) would
    spend most of their time asleep with the lock free. Other processes still meet
    the database's lock; PostgreSQL writers that skip the advisory lock skip this too.
    """
    queue = _process_lock(engine) if lock or engine.dialect.name == "sqlite" else nullcontext()
    with queue, engine.connect() as conn:
        if conn.info.get(_OPENED_READ_ONLY):
            conn.invalidate()  # opened read-only; the next use opens a fresh connection
            _release_pooled(engine)
        conn = conn.execution_options(**{_WRITE: True})
        try:
            with conn.begin():
                if lock and is_postgres(conn):
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(WRITE_LOCK_KEY)))
                yield conn
        except (sa.exc.OperationalError, engine.dialect.loaded_dbapi.OperationalError):
            # The database refused the write (read-only, disk full, connection lost):
            # the connection's state is unknown, so it leaves the pool and the next
            # write opens a fresh one.
            conn.invalidate()
            _release_pooled(engine)
            raise


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only snapshot: every statement inside sees the same committed state."""
    with engine.connect() as conn:
        if is_postgres(conn):
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with conn.begin():
            yield conn


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; None for memory databases and other engines."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    rest = url[len(prefix) :].split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)
