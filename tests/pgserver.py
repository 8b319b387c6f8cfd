"""The PostgreSQL server the tests, ``make soak`` and ``make bench`` use.

- ``SAMVERKA_TEST_PG`` set (a libpq URL, e.g. ``postgresql://postgres@127.0.0.1:5432/test``,
  whose database is the one to connect to for CREATE/DROP DATABASE): that running server
  is used, and never stopped. CI (.ci/run) names the machine's server this way.
- unset: a throwaway cluster of our own, as ``make browser`` provides chromium. It is made
  from the installed server binaries (the newest ``/usr/lib/postgresql/*/bin``; when there
  are none, Debian's versioned server package is installed with apt-get, without the
  ``main`` cluster Debian would otherwise create and start on 5432), by ``initdb`` in a
  temporary folder, with trust authentication on 127.0.0.1 only, a free TCP port, its
  unix socket in that folder and fsync off. It is stopped and the folder deleted at the
  end, also on Ctrl-C or an exception; a watchdog process does the same should the
  process that started it die without cleaning up (SIGKILL, SIGTERM, os._exit).

initdb refuses to run as root: as root, the cluster runs as the ``postgres`` system
user (created when missing), which owns the folder. The superuser is ``postgres`` in
either case.

    with provide() as server:          # SAMVERKA_TEST_PG, else a throwaway cluster
        server.url("db")               # postgresql+psycopg://postgres@127.0.0.1:PORT/db
        server.restart()               # throwaway only (NeedsThrowaway otherwise)

``python tests/pgserver.py`` starts a throwaway cluster, prints its URL and start-up time
and stops it; ``--install`` only makes sure the server binaries are there.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Self
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import make_conninfo

if TYPE_CHECKING:
    import sqlalchemy as sa

ENV = "SAMVERKA_TEST_PG"
#: The database superuser of a throwaway cluster.
SUPERUSER = "postgres"
#: The system user a throwaway cluster runs as when we are root.
SYSTEM_USER = "postgres"

#: Settings for a server whose data may be lost: speed over durability.
TEST_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "100",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}


class PgServerError(RuntimeError):
    """The server could not be provided (binaries missing and not installable, initdb or
    start failed); the message says what to do."""


class NeedsThrowaway(PgServerError):
    """Stop/start/restart asked of a server we did not start (``SAMVERKA_TEST_PG``)."""


class PgServer:
    """A PostgreSQL server: where it is, and (when it is our throwaway) its control."""

    def __init__(self, host: str, port: int, user: str, admin_db: str, password: str = "") -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        #: The database connected to for CREATE/DROP DATABASE.
        self.admin_db = admin_db

    throwaway = False

    @property
    def netloc(self) -> str:
        """``user[:password]@host:port``, for URLs."""
        auth = self.user if not self.password else f"{self.user}:{self.password}"
        return f"{auth}@{self.host}:{self.port}"

    def url(self, database: str = "", driver: str = "postgresql+psycopg") -> str:
        """A URL of ``database`` (``driver`` ``postgresql`` gives the libpq form);
        without a database, the server's URL to append ``/name`` to."""
        base = f"{driver}://{self.netloc}"
        return f"{base}/{database}" if database else base

    def dsn(self, database: str | None = None) -> str:
        """A libpq keyword DSN of ``database`` (the admin database by default)."""
        return make_conninfo(
            "",
            host=self.host,
            port=str(self.port),
            user=self.user,
            password=self.password or None,
            dbname=database or self.admin_db,
            connect_timeout="5",
        )

    @property
    def admin_dsn(self) -> str:
        return self.dsn()

    def connect(self, database: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection (to the admin database by default)."""
        return psycopg.connect(self.dsn(database), autocommit=True)

    @contextmanager
    def database(self, prefix: str = "samverka_t") -> Iterator[str]:
        """A new, empty UTF-8 database ``<prefix>_<random>``, dropped after: its name."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        with self.connect() as admin:
            admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        try:
            yield name
        finally:
            with self.connect() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def describe(self) -> str:
        return f"PostgreSQL at {self.host}:{self.port} (named by {ENV})"

    def is_ready(self) -> bool:
        try:
            with self.connect():
                return True
        except psycopg.OperationalError:
            return False

    # Control: only a throwaway cluster may be stopped and started.
    def stop(self, mode: str = "fast") -> None:
        raise NeedsThrowaway(self._refusal("stop"))

    def start(self) -> None:
        raise NeedsThrowaway(self._refusal("start"))

    def restart(self, mode: str = "fast") -> None:
        raise NeedsThrowaway(self._refusal("restart"))

    def close(self) -> None:
        """Nothing to do: a named server outlives us."""

    def _refusal(self, what: str) -> str:
        return (
            f"cannot {what} {self.describe()}: only a throwaway cluster may be; "
            f"unset {ENV} to have the tests start their own"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url()}>"


def named(url: str) -> PgServer:
    """The running server a libpq URL names (its database is the admin database)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise PgServerError(f"{ENV}={url!r}: expected a URL like postgresql://user@host:port/db")
    return PgServer(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or SUPERUSER),
        admin_db=unquote(parts.path.lstrip("/")) or "postgres",
        password=unquote(parts.password or ""),
    )


class Throwaway(PgServer):
    """A cluster of our own in a temporary folder (see the module's docstring)."""

    throwaway = True

    def __init__(self, bindir: Path, folder: Path, port: int, runas: list[str]) -> None:
        super().__init__("127.0.0.1", port, SUPERUSER, "postgres")
        self.bindir = bindir
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "server.log"
        self._runas = runas
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.closed = False

    def describe(self) -> str:
        return f"the throwaway PostgreSQL at {self.host}:{self.port} ({self.folder})"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id, when it runs."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [*self._runas, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]
        # Its own session: a Ctrl-C in the terminal reaches pytest (which then stops the
        # server in order), not the postmaster.
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
        )

    def start(self) -> None:
        result = self._pg_ctl("-l", str(self.log), "-w", "-t", "60", "start")
        if result.returncode != 0:
            raise PgServerError(
                f"pg_ctl start failed ({result.stdout.strip()}); the server's log:\n"
                + self.log_tail()
            )

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (``immediate`` to crash it; ``smart`` to wait)."""
        result = self._pg_ctl("-m", mode, "-w", "-t", "60", "stop")
        if result.returncode != 0 and self.pid is not None:
            raise PgServerError(f"pg_ctl stop failed: {result.stdout.strip()}")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        """Stop the server (fast, else immediate) and delete the folder."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.pid is not None:
                try:
                    self.stop("fast")
                except (PgServerError, subprocess.TimeoutExpired):
                    self._pg_ctl("-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            if self._watchdog is not None:
                if self._watchdog.stdin is not None:
                    self._watchdog.stdin.close()  # it finds nothing left to do
                try:
                    self._watchdog.wait(10)
                except subprocess.TimeoutExpired:
                    self._watchdog.kill()

    def _start_watchdog(self) -> None:
        """A process that stops the cluster and deletes the folder when our end of its
        stdin closes without close() having run (this process died)."""
        script = (
            "import shutil, subprocess, sys\n"
            "sys.stdin.buffer.read()\n"
            "folder, data, runas = sys.argv[1], sys.argv[2], sys.argv[4:]\n"
            "import os\n"
            "if os.path.exists(os.path.join(data, 'postmaster.pid')):\n"
            "    subprocess.run([*runas, sys.argv[3], '-D', data, '-m', 'immediate', '-w',\n"
            "                    'stop'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "shutil.rmtree(folder, ignore_errors=True)\n"
        )
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", script, str(self.folder), str(self.data),
             str(self.bindir / "pg_ctl"), *self._runas],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def find_bindir() -> Path | None:
    """The newest installed server's bin folder (with initdb, pg_ctl and postgres)."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", path.parent.name)) or (0,)

    found = [
        p
        for p in Path("/usr/lib/postgresql").glob("*/bin")
        if all((p / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))
    ]
    return max(found, key=version) if found else None


def install_server(say: Callable[[str], None] = print) -> Path:
    """Debian's server package, installed with apt-get (as root), without the ``main``
    cluster its postinst would create and start: ``create_main_cluster = false`` in a
    createcluster.d drop-in while it installs (removed after). Its bin folder."""
    if os.geteuid() != 0:
        raise PgServerError(
            "no PostgreSQL server is installed (no /usr/lib/postgresql/*/bin/initdb) and we "
            "are not root to install it: apt-get install postgresql-NN, or name a running "
            f"server in {ENV}=postgresql://user@host:port/db"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> None:
        subprocess.run(["apt-get", *args], check=True, env=env)

    say("pgserver: installing Debian's PostgreSQL server (apt-get, no 'main' cluster)")
    apt("update", "-q")
    apt("install", "-y", "-q", "--no-install-recommends", "postgresql-common")
    depends = subprocess.run(
        ["apt-cache", "depends", "postgresql"], capture_output=True, text=True, check=True
    ).stdout
    versioned = re.search(r"Depends:\s*(postgresql-\d+)\b", depends)
    if versioned is None:
        raise PgServerError(f"apt-cache depends postgresql names no server package:\n{depends}")
    dropin_dir = Path("/etc/postgresql-common/createcluster.d")
    made_dir = not dropin_dir.exists()
    dropin = dropin_dir / "zz-samverka-tests.conf"
    dropin_dir.mkdir(parents=True, exist_ok=True)
    dropin.write_text(
        "# samverka tests/pgserver.py, while it installs\ncreate_main_cluster = false\n"
    )
    try:
        apt("install", "-y", "-q", "--no-install-recommends", versioned.group(1))
    finally:
        dropin.unlink(missing_ok=True)
        if made_dir:
            dropin_dir.rmdir()
    bindir = find_bindir()
    if bindir is None:
        raise PgServerError(f"installed {versioned.group(1)} but found no initdb")
    return bindir


#: The store's tables that hold what a record says (log entries, current records, search).
STORE_TABLES = ("log", "records", "records_fts")


def relation_bytes(conn: sa.Connection, tables: tuple[str, ...] = STORE_TABLES) -> bytes:
    """Every byte of ``tables``' relation files (and their TOAST), read by the server
    after a CHECKPOINT: where an erased text must no longer be (needs a superuser)."""
    conn.exec_driver_sql("CHECKPOINT")
    chunks = []
    for table in tables:
        toast = conn.exec_driver_sql(
            f"SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = '{table}'::regclass"
        ).scalar()
        for rel in (table, toast):
            if rel and rel != "-":
                path = conn.exec_driver_sql(f"SELECT pg_relation_filepath('{rel}')").scalar()
                data = conn.exec_driver_sql("SELECT pg_read_binary_file(%s)", (path,)).scalar()
                assert data is not None, rel
                chunks.append(bytes(data))
    return b"".join(chunks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _runas() -> tuple[list[str], int, int]:
    """The command prefix that runs a program as the cluster's user, and its uid, gid."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/var/lib/postgresql", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
        )  # fmt: skip
        entry = pwd.getpwnam(SYSTEM_USER)
    if shutil.which("runuser"):
        return ["runuser", "-u", SYSTEM_USER, "--"], entry.pw_uid, entry.pw_gid
    prefix = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"]
    return [*prefix, "--"], entry.pw_uid, entry.pw_gid


def start_throwaway(say: Callable[[str], None] = print) -> Throwaway:
    """A new cluster, running and ready (see the module's docstring)."""
    bindir = find_bindir() or install_server(say)
    runas, uid, gid = _runas()
    folder = Path(tempfile.mkdtemp(prefix="samverka-pg-"))
    try:
        os.chown(folder, uid, gid)
        if runas and subprocess.run([*runas, "test", "-w", str(folder)]).returncode != 0:
            # TMPDIR is somewhere the cluster's user cannot reach: /tmp then.
            shutil.rmtree(folder)
            folder = Path(tempfile.mkdtemp(prefix="samverka-pg-", dir="/tmp"))
            os.chown(folder, uid, gid)
        data = folder / "data"
        initdb = subprocess.run(
            [*runas, str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER,
             "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise PgServerError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        # Trust on the socket (in our folder) and on 127.0.0.1 only.
        hba = data / "pg_hba.conf"
        hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        conf = data / "postgresql.conf"
        settings = {**TEST_SETTINGS, "unix_socket_directories": f"'{folder}'"}
        server: Throwaway | None = None
        for _attempt in range(5):  # another process may take the free port first
            port = free_port()
            lines = [f"{k} = {v}" for k, v in {**settings, "port": str(port)}.items()]
            with conf.open("a") as f:
                f.write("\n# samverka tests/pgserver.py\n" + "\n".join(lines) + "\n")
            server = Throwaway(bindir, folder, port, runas)
            try:
                server.start()
                break
            except PgServerError:
                if "already in use" not in server.log_tail():
                    raise
                server = None
        if server is None:
            raise PgServerError("no free port for the throwaway PostgreSQL after 5 tries")
        server._start_watchdog()
        return server
    except BaseException:
        # Also on Ctrl-C during start-up: nothing left running, no folder left behind.
        pid_file = folder / "data" / "postmaster.pid"
        if pid_file.exists():
            subprocess.run(
                [*runas, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate",
                 "-w", "stop"],
                capture_output=True, check=False,
            )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
        raise


def from_environment(say: Callable[[str], None] = print) -> PgServer:
    """The server ``SAMVERKA_TEST_PG`` names, else a new throwaway cluster."""
    url = os.environ.get(ENV, "").strip()
    return named(url) if url else start_throwaway(say)


@contextmanager
def provide(say: Callable[[str], None] = print) -> Iterator[PgServer]:
    """:func:`from_environment`, closed (a throwaway stopped and deleted) after."""
    server = from_environment(say)
    try:
        yield server
    finally:
        server.close()


def main(argv: list[str]) -> int:
    if "--install" in argv:  # what `make postgres` runs
        bindir = find_bindir() or install_server()
        print(f"postgres: a throwaway cluster per run, from {bindir}")
        return 0
    started = time.monotonic()
    with start_throwaway() as server:
        ready = time.monotonic() - started
        with server.connect() as conn:
            row = conn.execute("SELECT version()").fetchone()
        print(f"{server.url()} ready in {ready:.2f} s: {row[0] if row else '?'}")
        print(f"folder {server.folder}, postmaster pid {server.pid}")
    print(f"stopped and deleted in {time.monotonic() - started - ready:.2f} s")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise SystemExit(main(sys.argv[1:]))
