"""Online backup and restore of a node folder (or a hub folder on SQLite).

A backup is one ``.tar.gz`` archive (mode 0600: it holds private keys) with:

``backup.json``     what was backed up: when, kommun, software version, the log
                    position and every feed head, schema versions, the database's
                    SHA-256
``samverka.db``     a consistent copy of the SQLite database, made with SQLite's
                    online backup API while the server keeps serving and writing
                    (one step under one read transaction: WAL readers never block
                    the writer, and the copy is the database at one instant)
everything else     the folder's files: samverka.toml, keys/, tls/, hub/ (the
                    pinned hub key and member directory), ca/ (a hub's CA key), …
                    but not the live database files (-wal, -shm) or temporary files

:func:`restore_folder` unpacks an archive into a *new* folder (never over a node),
checks the database's hash and ``PRAGMA quick_check``, opens it (running any newer
migrations forward) and reports the heads, so the operator can compare them with
the backup's.

A PostgreSQL store is not backed up here: use ``pg_dump``/``pg_restore`` (see
docs/OPERATIONS.md) and back up the folder's files beside it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import samverka
from samverka.config import CONFIG_FILE, NodeConfig, load_config
from samverka.errors import ConfigError, SamverkaError, StoreError
from samverka.store.db import sqlite_path
from samverka.store.migrations import revision_number

MANIFEST = "backup.json"
DATABASE = "samverka.db"
#: Files in a folder that are never copied: the live database and its WAL, temporaries.
_SKIP_SUFFIXES = ("-wal", "-shm", "-journal", ".tmp")


class BackupError(SamverkaError):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class BackupManifest:
    created_at: str
    software_version: str
    kommun: str
    log_position: int
    #: origin → newest sequence held.
    heads: dict[str, int]
    #: track → schema version: the number of the Alembic revision ``<track>_<NNNN>``
    #: (the same numbers the framework before Alembic wrote, so the format is unchanged).
    schema: dict[str, int]
    database_sha256: str
    #: The folder's files and folders in the archive (besides the database).
    files: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> BackupManifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            return cls(**raw)
        except (ValueError, TypeError) as exc:
            raise BackupError(f"the archive's {MANIFEST} is not a Samverka backup: {exc}") from exc


def backup_folder(config: NodeConfig, out: Path) -> BackupManifest:
    """Write a backup archive of ``config``'s folder to ``out`` (replaced atomically)."""
    db_path = _sqlite_file(config)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".samverka-backup-", dir=out.parent) as tmp:
        copy = Path(tmp) / DATABASE
        snapshot_sqlite(db_path, copy)
        manifest = _manifest(config, copy, files=_folder_files(config.dir, skip={db_path, out}))
        partial = Path(tmp) / "archive.tar.gz"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST, manifest.to_json())
            tar.add(copy, arcname=DATABASE, recursive=False)
            for relative in manifest.files:
                tar.add(config.dir / relative, arcname=relative, recursive=False)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)
    return manifest


def snapshot_sqlite(source: Path, target: Path) -> None:
    """Copy the database ``source`` to ``target`` with SQLite's online backup API.

    All pages are copied in one step, inside one read transaction of the source, so
    the copy is the database as of one moment even while another process writes.
    """
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {source}: {exc}") from exc
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(
            f"the online backup of {source} failed: {exc}",
            hint="check the database with `samverka doctor`; retry when it passes",
        ) from exc
    finally:
        src.close()
    if check != "ok":
        raise BackupError(f"the copy of {source} fails quick_check ({check})")


@dataclass(frozen=True, slots=True)
class RestoreResult:
    dir: Path
    manifest: BackupManifest
    #: origin → newest sequence held by the restored database.
    heads: dict[str, int]
    log_position: int
    #: Migrations applied on opening (the backup came from an older version).
    migrated: list[int]

    @property
    def matches_backup(self) -> bool:
        return self.heads == self.manifest.heads and (
            self.log_position == self.manifest.log_position
        )


def restore_folder(archive: Path, target: Path) -> RestoreResult:
    """Unpack ``archive`` into the new folder ``target``; check and open the database."""
    if (target / CONFIG_FILE).exists():
        raise BackupError(
            f"{target} already holds a node or hub",
            hint="restore into a new, empty folder; move it in place once checked",
        )
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            manifest = BackupManifest.from_json(_read_member(tar, MANIFEST))
            members = _checked_members(tar)
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(0o700)
            for member in members:
                if member.name != MANIFEST:
                    tar.extract(member, target, filter="data")
            for member in members:
                if member.isdir():  # the data filter leaves folders at the default mode
                    (target / member.name).chmod(member.mode & 0o755)
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise BackupError(
            f"cannot read the backup {archive}: {exc}",
            hint="the archive is damaged or not a Samverka backup; use another one "
            f"(and remove what was unpacked into {target})",
        ) from exc
    config = load_config(target)
    db_path = _sqlite_file(config, must_exist=False)
    extracted = target / DATABASE
    if db_path.resolve() != extracted.resolve():
        if db_path.exists():
            raise BackupError(
                f"[store] url of the restored folder points at {db_path}, which exists",
                hint="move that file away first, or restore where the url is relative",
            )
        db_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(extracted, db_path)
    digest = _sha256(db_path)
    if digest != manifest.database_sha256:
        raise BackupError(
            f"the database in {archive} does not match its manifest (damaged archive)",
            hint="use another backup",
        )
    from samverka.store.store import Store

    store = Store(config.store_url)
    try:
        migrated = store.migrate()
        heads = {h.origin: h.sequence for h in store.heads()}
        position = store.log_position()
    finally:
        store.close()
    return RestoreResult(target, manifest, heads, position, migrated)


# -- helpers -------------------------------------------------------------------------------


def _sqlite_file(config: NodeConfig, *, must_exist: bool = True) -> Path:
    path = sqlite_path(config.store_url)
    if path is None:
        raise ConfigError(
            f"[store] url is not a SQLite file ({config.store.url.split(':', 1)[0]}:…)",
            hint="back up a PostgreSQL store with pg_dump -Fc and restore it with pg_restore "
            "(docs/OPERATIONS.md, 'Backing up a hub'); back up the folder's files beside it",
        )
    if must_exist and not path.exists():
        raise StoreError(f"no database at {path}", hint="check [store] url in samverka.toml")
    return path


def _folder_files(folder: Path, *, skip: set[Path]) -> list[str]:
    skipped = {p.resolve() for p in skip}
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            continue
        if path.is_dir():
            # Folders travel too, so keys/ and tls/ come back 0700.
            files.append(path.relative_to(folder).as_posix())
            continue
        if path.resolve() in skipped or path.name.endswith(_SKIP_SUFFIXES):
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue
        files.append(path.relative_to(folder).as_posix())
    return files


def _schema_revisions(conn: sqlite3.Connection) -> dict[str, int]:
    """Each migration track's revision, from its version table ``alembic_version_<track>``
    (see samverka.store.migrations); a database not yet taken over from the framework
    before Alembic gives its ``schema_migrations`` versions."""
    tables = [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'alembic_version_%'"
        )
    ]
    schema: dict[str, int] = {}
    for table in tables:
        row = conn.execute(f'SELECT version_num FROM "{table}"').fetchone()
        if row is not None:
            schema[table.removeprefix("alembic_version_")] = revision_number(str(row[0]))
    if not tables:
        legacy = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if legacy is not None:
            for track, version in conn.execute(
                "SELECT track, MAX(version) FROM schema_migrations GROUP BY track"
            ):
                schema[str(track)] = int(version)
    return schema


def _manifest(config: NodeConfig, db_copy: Path, *, files: list[str]) -> BackupManifest:
    conn = sqlite3.connect(db_copy)
    try:
        heads = dict(conn.execute("SELECT origin, sequence FROM feed_heads").fetchall())
        position = conn.execute("SELECT COALESCE(MAX(position), 0) FROM log").fetchone()[0]
        schema = _schema_revisions(conn)
    except sqlite3.Error as exc:
        raise BackupError(f"the database holds no Samverka store: {exc}") from exc
    finally:
        conn.close()
    return BackupManifest(
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        software_version=samverka.__version__,
        kommun=config.node.kommun,
        log_position=int(position),
        heads={str(k): int(v) for k, v in heads.items()},
        schema=schema,
        database_sha256=_sha256(db_copy),
        files=files,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def _read_member(tar: tarfile.TarFile, name: str) -> bytes:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise BackupError(f"the archive has no {name}: not a Samverka backup") from None
    f = tar.extractfile(member)
    if f is None:
        raise BackupError(f"the archive's {name} is not a file")
    with contextlib.closing(f):
        return f.read()


def _checked_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Only plain files and folders at relative paths inside the archive's root."""
    members = tar.getmembers()
    names = set()
    for m in members:
        path = PurePosixPath(m.name)
        if path.is_absolute() or ".." in path.parts or not (m.isfile() or m.isdir()):
            raise BackupError(f"the archive holds an unsafe entry {m.name!r}: refused")
        names.add(m.name)
    for required in (DATABASE, CONFIG_FILE):
        if required not in names:
            raise BackupError(f"the archive has no {required}: not a complete backup")
    return members
