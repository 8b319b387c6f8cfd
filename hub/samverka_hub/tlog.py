"""The hub's transparency log: every accepted entry and every member-directory version
as a leaf of one RFC 9162 Merkle tree, with signed checkpoints (issue 11, points 1–2).

**Leaves** (:func:`~samverka.protocol.logleaf.entry_leaf`,
:func:`~samverka.protocol.logleaf.directory_leaf`: part of the protocol, since a node
recomputes them to check inclusion proofs) are a small versioned binary format, the
same for every entry whatever its visibility::

    entry leaf      0x01 0x01  u64 sequence  u8 len  origin (ASCII)  32-byte entry hash
    directory leaf  0x01 0x02  u64 version   32-byte digest of the directory bytes

(0x01 is the format version, the second byte the kind; integers big-endian.) A leaf
is a *commitment*, never the entry itself: the entry hash is the chain hash (SHA-256
of the signed entry bytes) the origin's feed already links, so a leaf proves exactly
which entry stood at that place, and anyone holding the entry checks it by hashing.
Why not the public bytes for PUBLIC entries: a leaf in an entry bundle is at most
64 KiB and an entry may be larger; one shape for all leaves keeps the bundle small
(≤ 256 × 46 B) and the log leaks nothing — not even which entries are PUBLIC: a
MEMBERS entry's leaf is its redacted stand-in (origin, sequence, entry hash), which
is what non-members see of it in the feed anyway.

**Order**: the sequencer appends, in each round, the directory versions it has not
yet logged (by version), then the log positions it has not yet logged (by the
store's global cursor). Positions are allocated gap-free under the store's write
lock and committed in order, so each round appends a prefix of what is committed.

**Storage** (hub track, :mod:`samverka_hub.tables`): ``hub_tlog_leaves`` (index →
kind, ref, data), ``hub_tlog_hashes`` (stored-hash index → hash, per
:func:`samverka.protocol.merkle.stored_hashes`), ``hub_tlog_checkpoints`` (size →
signed note). One round is one transaction: leaves, hashes and the new signed
checkpoint commit together. Replicas on one PostgreSQL share one log: a round takes
an advisory lock of its own (:data:`SEQUENCER_LOCK_KEY`, not the store's write lock,
so ingest never waits for the sequencer), and re-reads the log's size under it.
On SQLite the round is a write transaction (BEGIN IMMEDIATE), short and batched.

The sequencer runs beside ingest (:class:`Sequencer`, a NodeServer resource), never in
the ingest transaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from samverka.errors import ConfigError, SamverkaError
from samverka.node import write_new
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.logleaf import KIND_DIRECTORY as KIND_DIRECTORY
from samverka.protocol.logleaf import KIND_ENTRY as KIND_ENTRY
from samverka.protocol.logleaf import LEAF_FORMAT as LEAF_FORMAT
from samverka.protocol.logleaf import Leaf as Leaf
from samverka.protocol.logleaf import directory_leaf as directory_leaf
from samverka.protocol.logleaf import entry_leaf as entry_leaf
from samverka.protocol.logleaf import parse_leaf as parse_leaf
from samverka.protocol.merkle import (
    EMPTY_ROOT,
    HashReaderError,
    leaf_hash,
    stored_hash_index,
    stored_hashes_for_leaf_hash,
    tree_hash,
)
from samverka.protocol.note import Ed25519Signer, is_valid_name, sign_note
from samverka.retry import RetryPolicy, TaskState, cancel, spawn, supervise
from samverka.store.db import (
    bulk_insert,
    driver_execute,
    is_postgres,
    read_transaction,
    write_transaction,
)
from samverka.store.logwatch import LogWatcher
from samverka.store.store import now_ms
from samverka.store.tables import log as log_table

from samverka_hub.tables import DirectoryRow, TlogCheckpointRow, TlogHashRow, TlogLeafRow

log = logging.getLogger("samverka_hub.tlog")

#: PostgreSQL advisory lock of the sequencer ("SAMVTLOG"): one appender at a time.
SEQUENCER_LOCK_KEY = 0x53414D56544C4F47
#: Most leaves appended in one round (one transaction).
MAX_BATCH = 2000
#: Where the log's note signing key lives in the hub folder (0600).
LOG_KEY_FILE = Path("keys") / "log.key"
#: The verifier key beside it, for operators.
LOG_VKEY_FILE = Path("keys") / "log.vkey"

leaves_t = TlogLeafRow.table()
hashes_t = TlogHashRow.table()
checkpoints_t = TlogCheckpointRow.table()
directories_t = DirectoryRow.table()


# --- The log key --------------------------------------------------------------------------


def log_key_name(host: str) -> str:
    """The note key name (and checkpoint origin) of a hub's log: ``<host>/samverka-log``."""
    name = f"{host or 'localhost'}/samverka-log"
    if not is_valid_name(name):
        raise ConfigError(f"cannot name the log key {name!r}", hint="set [hub] address")
    return name


def create_log_key(hub_dir: Path, name: str) -> Ed25519Signer:
    """Write a new log key (0600) and its verifier key; refuses to overwrite one."""
    signer = Ed25519Signer.generate(name)
    write_new(hub_dir / LOG_KEY_FILE, (signer.skey + "\n").encode(), mode=0o600)
    write_new(hub_dir / LOG_VKEY_FILE, (signer.verifier().vkey + "\n").encode(), mode=0o644)
    return signer


def load_log_key(hub_dir: Path) -> Ed25519Signer | None:
    path = hub_dir / LOG_KEY_FILE
    if not path.exists():
        return None
    if os.stat(path).st_mode & 0o077:
        raise ConfigError(f"{path} can be read by others", hint=f"chmod 600 {path}")
    return Ed25519Signer.from_skey(path.read_text(encoding="ascii").strip())


def ensure_log_key(hub_dir: Path, host: str) -> Ed25519Signer:
    """The hub's log key, created (and said so) in a hub folder made before the log."""
    signer = load_log_key(hub_dir)
    if signer is None:
        signer = create_log_key(hub_dir, log_key_name(host))
        log.warning(
            "this hub folder had no transparency-log key: created %s; its verifier key is %s",
            hub_dir / LOG_KEY_FILE,
            signer.verifier().vkey,
            extra={"event": "log_key_created"},
        )
    return signer


# --- Appending ----------------------------------------------------------------------------


class _PendingReader:
    """A HashReader over the stored hashes plus those of this round, not yet written."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.pending: dict[int, bytes] = {}

    def __call__(self, indexes: Sequence[int]) -> list[bytes]:
        missing = [i for i in indexes if i not in self.pending]
        found: dict[int, bytes] = {}
        if missing:
            # Straight to the driver: this runs for every leaf sequenced (samverka.store.db).
            marks = ", ".join("?" * len(missing))
            sql = f'SELECT "index", hash FROM {hashes_t.name} WHERE "index" IN ({marks})'
            rows = driver_execute(self.conn, sql, missing)
            found = {int(r[0]): bytes(r[1]) for r in rows}
        out = []
        for i in indexes:
            h = self.pending.get(i, found.get(i))
            if h is None:
                raise HashReaderError(f"stored hash {i} is missing")
            out.append(h)
        return out


def _size(conn: sa.Connection) -> int:
    top = conn.execute(sa.select(sa.func.max(leaves_t.c.index))).scalar()
    return 0 if top is None else int(top) + 1


def _last_ref(conn: sa.Connection, kind: int) -> int:
    top = conn.execute(sa.select(sa.func.max(leaves_t.c.ref)).where(leaves_t.c.kind == kind))
    value = top.scalar()
    return 0 if value is None else int(value)


def sequence_once(engine: sa.Engine, signer: Ed25519Signer, *, batch: int = MAX_BATCH) -> int:
    """Append what is not yet logged (up to ``batch`` leaves), sign a checkpoint for the
    new size and commit both. Returns how many leaves were appended (0: nothing new, and
    then nothing is written unless the log has no checkpoint yet)."""
    with write_transaction(engine, lock=False) as conn:
        if is_postgres(conn):
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SEQUENCER_LOCK_KEY)))
        size = _size(conn)
        new: list[tuple[int, int, bytes]] = []
        last_version = _last_ref(conn, KIND_DIRECTORY)
        for version, digest in conn.execute(
            sa.select(directories_t.c.version, directories_t.c.digest)
            .where(directories_t.c.version > last_version)
            .order_by(directories_t.c.version)
            .limit(batch)
        ):
            new.append((KIND_DIRECTORY, int(version), directory_leaf(int(version), digest)))
        last_position = _last_ref(conn, KIND_ENTRY)
        if len(new) < batch:
            for position, origin, sequence, entry_hash in conn.execute(
                sa.select(
                    log_table.c.position,
                    log_table.c.origin,
                    log_table.c.sequence,
                    log_table.c.entry_hash,
                )
                .where(log_table.c.position > last_position)
                .order_by(log_table.c.position)
                .limit(batch - len(new))
            ):
                new.append(
                    (KIND_ENTRY, int(position), entry_leaf(origin, int(sequence), entry_hash))
                )
        has_checkpoint = conn.execute(sa.select(checkpoints_t.c.size).limit(1)).first()
        if not new and has_checkpoint is not None:
            return 0
        reader = _PendingReader(conn)
        leaf_rows, hash_rows = [], []
        for offset, (kind, ref, data) in enumerate(new):
            n = size + offset
            leaf_rows.append({"index": n, "kind": kind, "ref": ref, "data": data})
            hashes = stored_hashes_for_leaf_hash(n, leaf_hash(data), reader)
            first = stored_hash_index(0, n)
            for k, h in enumerate(hashes):
                reader.pending[first + k] = h
                hash_rows.append({"index": first + k, "hash": h})
        # Through the driver's executemany: Core's cost ~20 µs a row in Python, and
        # every leaf brings a row here and two in the hashes on average.
        bulk_insert(conn, leaves_t, leaf_rows)
        bulk_insert(conn, hashes_t, hash_rows)
        new_size = size + len(new)
        root = tree_hash(new_size, reader) if new_size else EMPTY_ROOT
        note = sign_note(Checkpoint(signer.name, new_size, root).to_text(), signer)
        conn.execute(
            checkpoints_t.insert(),
            [{"size": new_size, "note": note, "signed_at_ms": now_ms()}],
        )
        return len(new)


# --- Reading ------------------------------------------------------------------------------


class LogReader:
    """What the web port serves: the newest checkpoint, stored hashes and leaves.

    ``vkey`` may be a callable giving the log's verifier key as it is now (after
    ``hub rotate-keys --log`` the new one; :mod:`samverka_hub.keyfiles`)."""

    def __init__(self, engine: sa.Engine, vkey: str | Callable[[], str]) -> None:
        self.engine = engine
        self._vkey = vkey

    @property
    def vkey(self) -> str:
        return self._vkey() if callable(self._vkey) else self._vkey

    def latest(self) -> tuple[int, bytes] | None:
        """The newest signed checkpoint: its size and note bytes."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                sa.select(checkpoints_t.c.size, checkpoints_t.c.note)
                .order_by(checkpoints_t.c.size.desc())
                .limit(1)
            ).first()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def checkpoint_note(self) -> bytes | None:
        """The checkpoint served at /log/checkpoint: here the newest as signed;
        :class:`samverka_hub.cosigned.CosignedLog` serves the cosigned one."""
        latest = self.latest()
        return None if latest is None else latest[1]

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                sa.select(hashes_t.c.index, hashes_t.c.hash).where(hashes_t.c.index.in_(indexes))
            )
            found = {r[0]: bytes(r[1]) for r in rows}
        if len(found) != len(set(indexes)):
            raise HashReaderError("a stored hash is missing")
        return [found[i] for i in indexes]

    def read_leaves(self, start: int, count: int) -> list[bytes]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                sa.select(leaves_t.c.data)
                .where(leaves_t.c.index >= start, leaves_t.c.index < start + count)
                .order_by(leaves_t.c.index)
            )
            data = [bytes(r[0]) for r in rows]
        if len(data) != count:
            raise HashReaderError(f"leaves {start}..{start + count - 1} are not all stored")
        return data


class NotTheSigningSeat(SamverkaError):
    """This database may not sign (a restored copy not yet promoted)."""


class LogKeyRotated(SamverkaError):
    """This folder's log key is not the one the member directory names."""


class DirectoryLogKey:
    """The log key the newest directory version names ("" if none names one), read
    again only when a new version appears (one indexed query a round)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._version = -1
        self._log_key = ""

    def __call__(self) -> str:
        from samverka.v1 import directory_pb2

        with read_transaction(self.engine) as conn:
            version = conn.execute(sa.select(sa.func.max(directories_t.c.version))).scalar()
            if version is None:
                return ""
            if int(version) != self._version:
                raw = conn.execute(
                    sa.select(directories_t.c.signed_directory).where(
                        directories_t.c.version == version
                    )
                ).scalar_one()
                signed = directory_pb2.SignedDirectory.FromString(bytes(raw))
                self._log_key = directory_pb2.Directory.FromString(signed.directory).log_key
                self._version = int(version)
        return self._log_key


def log_reader(hub_dir: Path, engine: sa.Engine) -> LogReader | None:
    """A reader of the log in this hub folder's database; None before it has a key."""
    signer = load_log_key(hub_dir)
    return None if signer is None else LogReader(engine, signer.verifier().vkey)


# --- The background task ------------------------------------------------------------------

RETRY = RetryPolicy(initial=0.5, maximum=10.0)
#: After a wake-up, wait this long before a round (a checkpoint lags a push by about it).
SETTLE_SECONDS = 0.25


class Sequencer:
    """A NodeServer resource: appends new log positions and directory versions as
    leaves after each notification of the log watcher, or every ``interval`` s
    (directory versions, and positions other replicas wrote), and signs checkpoints."""

    def __init__(
        self,
        engine: sa.Engine,
        signer: Ed25519Signer | Callable[[], Ed25519Signer],
        watcher: LogWatcher,
        *,
        interval: float = 1.0,
        settle: float = SETTLE_SECONDS,
        may_sign: Callable[[], tuple[bool, str]] | None = None,
    ) -> None:
        self.engine = engine
        #: The council's signing seat (Council.signing_allowed): a restored copy of the
        #: database signs no checkpoint (it would fork the log) until `hub promote`.
        self.may_sign = may_sign
        #: The log key, or a callable reading it as it is now: after `hub rotate-keys
        #: --log` the next checkpoint is signed by the new key.
        self._signer = signer
        self._directory_log_key = DirectoryLogKey(engine)
        self.watcher = watcher
        self.interval = interval
        self.settle = settle
        self.task_state = TaskState("tlog-sequencer")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = spawn(
            supervise(self.task_state, self._run, policy=RETRY, logger=log),
            name="tlog-sequencer",
        )

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    def current_signer(self) -> Ed25519Signer:
        """The log key to sign with: refused (task down, with the hint) when the newest
        directory names another log key: after `hub rotate-keys --log` at another
        replica, this folder's old key would sign checkpoints no node takes."""
        signer = self._signer() if callable(self._signer) else self._signer
        named = self._directory_log_key()
        vkey = signer.verifier().vkey
        if named and named != vkey:
            raise LogKeyRotated(
                f"the member directory names the log key {named}, not this folder's "
                f"{vkey}: the log key was rotated; no checkpoint is signed with the old one",
                hint="copy keys/log.key and keys/log.vkey from the folder where `samverka hub "
                "rotate-keys` ran (docs/OPERATIONS.md, 'Rotating the hub's keys')",
            )
        return signer

    async def _run(self) -> None:
        seen = 0
        while True:
            if self.may_sign is not None:
                allowed, here = await asyncio.to_thread(self.may_sign)
                if not allowed:
                    raise NotTheSigningSeat(
                        f"this database ({here}) is a copy of the hub's: its transparency "
                        "log would fork the one production signs, so no checkpoint is signed",
                        hint="if this copy replaces production, run `samverka hub promote`",
                    )
            signer = await asyncio.to_thread(self.current_signer)
            appended = await asyncio.to_thread(sequence_once, self.engine, signer)
            self.task_state.mark_up()
            if appended:
                log.debug("transparency log: %d leaves appended", appended)
            if appended == MAX_BATCH:
                continue  # catching up
            seen = max(seen, self.watcher.position)
            await self.watcher.wait_beyond(seen, self.interval)
            # Let a burst of pushes land first: fewer, larger rounds, each one short
            # write transaction (ingest measured no slower with 0.25 s; see the docs).
            await asyncio.sleep(self.settle)
