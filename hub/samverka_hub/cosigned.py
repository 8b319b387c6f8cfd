"""The log's witnesses at the hub: the cosignatures members hand in, the checkpoint
served to whom, and the proofs members ask for (issue 11, points 2–4).

Every member's node witnesses the hub's log: it fetches a checkpoint, checks it is
consistent with the last one it cosigned, and hands back a C2SP tlog-cosignature/v1
line (``AddCosignature``) under the name ``samverka-witness/<kommunkod>``, made with its
own Ed25519 signing key (:mod:`samverka.protocol.witness`). :class:`CosignedLog` keeps
those (table ``hub_tlog_cosignatures``, one per checkpoint size and kommun, the newest
timestamp wins; replicas on one PostgreSQL share it) and serves checkpoints with them:

- **everyone** (``GetCheckpoint``, ``/log/checkpoint``) gets the newest checkpoint that
  carries at least ``target`` cosignatures, target = min(``[tlog] witness_target``,
  active members); when none has, the newest. The cosignature lines follow the log's
  signature, ordered by kommunkod (a stable note for a stable set);
- **a witness** (``GetCheckpoint(for_witness)``, member port) gets the checkpoint *in
  progress*: the newest one newer than the newest fully cosigned one that already has a
  cosignature, was signed less than :data:`IN_PROGRESS_MS` ago, and is no older than
  what this witness last cosigned; else the newest. Under a steady push load the
  sequencer signs a checkpoint every second or so; without this rule every witness
  would cosign a different one and none would ever gather a quorum.

Both choose only among checkpoints the log key in force signed: after ``hub rotate-keys
--log`` the members that followed the rotation hold the new key alone and would refuse
one the old key signed (their witnesses backing off meanwhile).

Only cosignatures by members active in the current directory count and are served; a
cosignature must verify against one of the member's keys in force there. The table is
working state, not an archive (each witness keeps what it cosigned, ``tlog/cosigned``):
a cosignature that can no longer be served is dropped (:func:`_prune`), so it holds
about two rows per member, and choosing a checkpoint is pure Python
(:func:`cosigned_size`, :func:`in_progress_size`) over one read of it, reused for
:data:`SNAPSHOT_SECONDS`. The checks of
a cosignature handed in (:meth:`CosignedLog.add_cosignature`) refuse with a precise
``reason``: ``not_signed_by_log``, ``origin_mismatch``, ``unknown_checkpoint`` (a note
this log did not sign at that size: another root, a checkpoint of a fork),
``no_cosignature`` (no line by the caller: another member's name, a wrong name),
``unknown_witness_key`` (a line in the caller's name by a key not in force for it),
``forged_cosignature`` (a line by a key in force that does not verify),
``cosignature_in_future``, and the note format's own (``malformed_note``, …).

Proofs (RFC 9162 §2.1.3 and §2.1.4) are made from the stored hashes for any tree size up
to the newest checkpoint's; leaves are found by (origin, sequence) → log position →
leaf, or by directory version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from samverka.errors import RequestRefused
from samverka.protocol.checkpoint import (
    CheckpointError,
    NotSignedByLog,
    open_checkpoint,
)
from samverka.protocol.directory import VerifiedDirectory
from samverka.protocol.inclusion import MAX_LEAVES_PER_CALL
from samverka.protocol.kommuner import HUB_ORIGIN, is_origin
from samverka.protocol.logleaf import KIND_DIRECTORY, KIND_ENTRY
from samverka.protocol.merkle import (
    HashReaderError,
    consistency_proof,
    inclusion_proof_from,
    inclusion_proof_indexes,
    multi_inclusion_proof_from,
    multi_inclusion_proof_indexes,
)
from samverka.protocol.note import (
    DEFAULT_LIMITS,
    Ed25519Verifier,
    InvalidNoteSignature,
    NoteError,
    NoteSignature,
    UnverifiedNote,
    parse_note,
)
from samverka.protocol.wire import MAX_STORED_INT
from samverka.protocol.witness import (
    MAX_FUTURE_SKEW_SECONDS,
    witness_key_name,
    witness_verifiers,
)
from samverka.store.db import driver_execute, is_postgres, read_transaction, write_transaction
from samverka.store.store import now_ms
from samverka.store.tables import log as log_table
from samverka.transport.server.status import Conflict, NotFound
from samverka.v1 import hub_service_pb2
from sqlalchemy.dialects import postgresql, sqlite

from samverka_hub.folder import Hub
from samverka_hub.tables import TlogCosignatureRow
from samverka_hub.tlog import LogReader, checkpoints_t, hashes_t, leaves_t, load_log_key

log = logging.getLogger("samverka_hub.cosigned")

cosignatures_t = TlogCosignatureRow.table()

#: A checkpoint stays "in progress" (witnesses are steered to it) this long after it
#: was signed; then the newest is handed out again.
IN_PROGRESS_MS = 5_000
#: Cosignature lines served with a checkpoint: a note reader accepts 64 signatures
#: (samverka.protocol.note.NoteLimits): one is the log's, and a witness adds its own.
MAX_SERVED_COSIGNATURES = DEFAULT_LIMITS.max_signatures - 2
#: Newest checkpoints looked at for the one in progress: more than the sequencer signs
#: in IN_PROGRESS_MS (a round every 0.25 s or more; a catch-up signs faster, and then
#: the newest is handed out anyway).
RECENT_CHECKPOINTS = 200
#: How long a read of the cosignatures and recent checkpoints is reused (s): every
#: witness asks about once a second; another replica's cosignature shows this late.
SNAPSHOT_SECONDS = 0.2
#: Signed checkpoint notes kept in memory (they never change).
NOTE_CACHE = 16
#: Checkpoint sizes remembered as signed, or not, by the log key in force.
SIGNED_BY_CACHE = 1024
#: Stored hashes read per query when making many proofs.
_HASH_CHUNK = 2000


# --- Who witnesses -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Witnesses:
    """The active members of one directory and their signing keys in force (raw)."""

    keys: Mapping[str, tuple[bytes, ...]]

    @classmethod
    def of(cls, directory: VerifiedDirectory | None, now: int) -> Witnesses:
        if directory is None:
            return cls({})
        keys: dict[str, tuple[bytes, ...]] = {}
        for m in directory.directory.members:
            if m.kommunkod == HUB_ORIGIN or not directory.is_active(m.kommunkod):
                continue
            keys[m.kommunkod] = tuple(
                bytes(k.public_key) for k in m.keys if k.revoked_at_ms == 0 or now < k.revoked_at_ms
            )
        return cls(keys)

    @property
    def active(self) -> list[str]:
        return sorted(self.keys)

    def target(self, configured: int) -> int:
        """Cosignatures that make a checkpoint cosigned: at most one per active member."""
        return min(configured, len(self.keys))


# --- Refusals ------------------------------------------------------------------------------


def refused(reason: str, message: str, *, hint: str = "") -> RequestRefused:
    """INVALID_ARGUMENT with a machine-readable reason."""
    return RequestRefused(reason, message, hint=hint)


@dataclass(frozen=True, slots=True)
class Stored:
    """What AddCosignature did: the checkpoint's size, and its cosignatures now held."""

    size: int
    cosignatures: int
    #: False when an at least as new cosignature by this kommun was held already.
    updated: bool


# --- The log with its cosignatures ---------------------------------------------------------


class CosignedLog(LogReader):
    """The log as served to members and the public: checkpoints with their gathered
    cosignatures, the witness steering rule, and proofs. Thread-safe (each call is one
    database transaction); call it from worker threads."""

    def __init__(
        self,
        engine: sa.Engine,
        vkey: str | Callable[[], str],
        directory: Callable[[], VerifiedDirectory | None],
        *,
        witness_target: int = 3,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        super().__init__(engine, vkey)
        self._verifier = Ed25519Verifier.from_vkey(self.vkey)
        self.directory = directory
        self.witness_target = witness_target
        self.clock = clock
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self._notes: dict[int, bytes] = {}
        #: Which checkpoint sizes the log key in force signed (key hash, {size: signed}).
        self._signed_by: tuple[int, dict[int, bool]] = (0, {})

    @property
    def verifier(self) -> Ed25519Verifier:
        """The log key's verifier as it is now (``vkey`` may follow `hub rotate-keys`)."""
        vkey = self.vkey
        if self._verifier.vkey != vkey:
            self._verifier = Ed25519Verifier.from_vkey(vkey)
        return self._verifier

    def witnesses(self) -> Witnesses:
        return Witnesses.of(self.directory(), self.clock())

    # -- checkpoints --------------------------------------------------------------------

    def checkpoint_note(self) -> bytes | None:
        """The checkpoint for everyone: the newest cosigned by the target, else the newest."""
        witnesses = self.witnesses()
        snap = self._snapshot()
        if snap.newest is None:
            return None
        size = cosigned_size(snap.cosignatures, witnesses, self.witness_target, self._current)
        return self._merged(snap, snap.newest if size is None else size, witnesses)

    def witness_note(self, kommunkod: str) -> bytes | None:
        """The checkpoint for ``kommunkod``'s witness to cosign (see the module's text)."""
        witnesses = self.witnesses()
        snap = self._snapshot()
        if snap.newest is None:
            return None
        size = in_progress_size(
            snap,
            witnesses,
            self.witness_target,
            kommunkod,
            self.clock() - IN_PROGRESS_MS,
            self._current,
        )
        return self._merged(snap, snap.newest if size is None else size, witnesses)

    def _current(self, size: int) -> bool:
        """Whether the log key in force signed the checkpoint of ``size``. After `hub
        rotate-keys --log`, a checkpoint the old key signed is neither the one in
        progress nor the cosigned one: members that followed the rotation hold only the
        new key, and would refuse it (and witnesses back off) until it aged out."""
        verifier = self.verifier
        with self._lock:
            if self._signed_by[0] != verifier.key_hash:
                self._signed_by = (verifier.key_hash, {})
            known = self._signed_by[1].get(size)
        if known is None:
            try:
                signatures = parse_note(self._note(size)).unverified
            except NoteError:
                signatures = ()
            known = any(
                s.name == verifier.name and s.key_hash == verifier.key_hash for s in signatures
            )
            with self._lock:
                cache = self._signed_by[1]
                if len(cache) >= SIGNED_BY_CACHE:
                    cache.pop(next(iter(cache)))
                cache[size] = known
        return known

    def _snapshot(self) -> Snapshot:
        """What choosing a checkpoint reads, at most SNAPSHOT_SECONDS old: every witness
        asks about once a second, and the table is small (see :func:`_prune`)."""
        with self._lock:
            snap = self._snap
            if snap is not None and time.monotonic() - snap.taken < SNAPSHOT_SECONDS:
                return snap
        with read_transaction(self.engine) as conn:
            snap = read_snapshot(conn)
        with self._lock:
            self._snap = snap
        return snap

    def _merged(self, snap: Snapshot, size: int, witnesses: Witnesses) -> bytes:
        """The checkpoint of ``size`` as the log signed it, plus the active members'
        cosignature lines in kommunkod order."""
        note = self._note(size)
        rows = sorted(
            (r for r in snap.cosignatures if r.size == size and r.kommunkod in witnesses.keys),
            key=lambda r: r.kommunkod,
        )
        lines = "".join(r.line + "\n" for r in rows[:MAX_SERVED_COSIGNATURES])
        return note + lines.encode()

    def _note(self, size: int) -> bytes:
        """The checkpoint of ``size`` as the log signed it."""
        with self._lock:
            note = self._notes.get(size)
        if note is None:
            with read_transaction(self.engine) as conn:
                note = bytes(
                    conn.execute(
                        sa.select(checkpoints_t.c.note).where(checkpoints_t.c.size == size)
                    ).scalar_one()
                )
            with self._lock:  # signed notes never change: keep the last few
                if len(self._notes) >= NOTE_CACHE:
                    self._notes.pop(next(iter(self._notes)))
                self._notes[size] = note
        return note

    def add_cosignature(self, kommunkod: str, note: bytes) -> Stored:
        """Verify ``kommunkod``'s cosignature line in ``note`` (the checkpoint as the log
        signed it) and keep it. Raises RequestRefused naming what is wrong."""
        witnesses = self.witnesses()
        keys = witnesses.keys.get(kommunkod, ())
        name = witness_key_name(kommunkod)
        verifiers = witness_verifiers({kommunkod: keys})
        try:
            opened = open_checkpoint(note, self.verifier, witnesses=verifiers)
        except InvalidNoteSignature as exc:
            if exc.name == self.verifier.name:
                raise refused(
                    "not_signed_by_log", "the log's signature on this checkpoint does not verify"
                ) from exc
            raise refused(
                "forged_cosignature",
                f"the cosignature by {exc.name}+{exc.key_hash:08x} does not verify",
                hint="cosign the checkpoint's text exactly as the log signed it",
            ) from exc
        except (UnverifiedNote, NotSignedByLog) as exc:
            raise refused(
                "not_signed_by_log", f"the checkpoint is not signed by this log's key: {exc}"
            ) from exc
        except (NoteError, CheckpointError) as exc:
            raise refused(exc.reason, f"not a checkpoint of this log: {exc}") from exc
        ours = [s for s in opened.note.signatures if s.name == name]
        if not ours:
            if any(s.name == name for s in opened.note.unverified):
                raise refused(
                    "unknown_witness_key",
                    f"the cosignature in {name}'s name is by a key that is not one of "
                    f"kommun {kommunkod}'s keys in force in the member directory",
                    hint="cosign with the node's current signing key",
                )
            raise refused(
                "no_cosignature",
                f"the checkpoint carries no cosignature by {name}",
                hint="add a cosignature/v1 line under the caller's own witness name",
            )
        # Two keys in force (a rotation's overlap) may both have cosigned: keep the newest.
        sig = max(ours, key=lambda s: s.cosignature_timestamp())
        timestamp = sig.cosignature_timestamp()
        now = self.clock()
        if timestamp * 1000 > now + MAX_FUTURE_SKEW_SECONDS * 1000:
            raise refused(
                "cosignature_in_future",
                f"the cosignature's time {timestamp} is more than "
                f"{MAX_FUTURE_SKEW_SECONDS:.0f} s ahead of the hub's clock",
                hint="check the node's clock (NTP)",
            )
        size = opened.checkpoint.size
        with write_transaction(self.engine, lock=False) as conn:
            stored = conn.execute(
                sa.select(checkpoints_t.c.note).where(checkpoints_t.c.size == size)
            ).scalar()
            if stored is None or parse_note(bytes(stored)).text != opened.note.text:
                raise refused(
                    "unknown_checkpoint",
                    f"this log signed no such checkpoint of size {size}",
                    hint="cosign a checkpoint fetched with GetCheckpoint(for_witness)",
                )
            updated = _upsert(conn, size, kommunkod, sig, now)
            count = _count(conn, size, witnesses.active)
            _prune(conn, size, kommunkod, count, witnesses, self.witness_target)
        with self._lock:
            self._snap = None  # this replica's next answer sees it at once
        return Stored(size, count, updated)

    # -- proofs -------------------------------------------------------------------------

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[0:new_size]) for sizes up to the newest checkpoint."""
        if old_size > new_size:
            raise refused(
                "invalid_request", f"old_size {old_size} is larger than new_size {new_size}"
            )
        with read_transaction(self.engine) as conn:
            _check_signed(conn, new_size)
            return consistency_proof(old_size, new_size, _reader(conn))

    def inclusion(
        self,
        tree_size: int,
        queries: Sequence[hub_service_pb2.LeafQuery],
        *,
        combined: bool = False,
    ) -> tuple[list[hub_service_pb2.InclusionProof], list[bytes]]:
        """Proofs that the queried leaves are in the tree of ``tree_size`` leaves: one
        RFC 9162 inclusion proof per query; or, ``combined``, the queries' leaves and
        indexes with one proof of them all (:func:`merkle.multi_inclusion_proof_from`),
        returned second. A page of a sync is a run of consecutive leaves: its combined
        proof reads ~2·log2(n) stored hashes, where separate ones read ~log2(n) each."""
        wanted = [_leaf_key(i, q) for i, q in enumerate(queries)]
        if not wanted:
            raise refused("invalid_request", "no leaves asked for")
        if len(wanted) > MAX_LEAVES_PER_CALL:
            raise refused(
                "too_many_items", f"{len(wanted)} leaves, at most {MAX_LEAVES_PER_CALL} a call"
            )
        if tree_size == 0:
            raise refused("invalid_request", "tree_size 0: the empty tree holds no leaf")
        with read_transaction(self.engine) as conn:
            _check_signed(conn, tree_size)
            found = _find_leaves(conn, wanted)
            for key in wanted:
                hit = found.get(key)
                if hit is None or hit[0] >= tree_size:
                    raise NotFound(
                        f"{_label(key)} is not a leaf of the log's tree of size {tree_size}",
                        reason="not_in_tree",
                        hint="ask again against a newer checkpoint",
                    )
            indexes = sorted({found[key][0] for key in wanted})  # a leaf asked twice: once
            if combined:
                need = multi_inclusion_proof_indexes(tree_size, indexes)
                hashes = _read_hashes(conn, sorted(set(need)))
                paths: dict[int, list[int]] = {}
            else:
                paths = {index: inclusion_proof_indexes(tree_size, index) for index in indexes}
                need = sorted({i for path in paths.values() for i in path})
                hashes = _read_hashes(conn, need)
        if any(i not in hashes for i in need):
            raise HashReaderError(f"a stored hash of the tree of {tree_size} is missing")
        if combined:
            together = multi_inclusion_proof_from(tree_size, indexes, [hashes[i] for i in need])
            return [
                hub_service_pb2.InclusionProof(leaf_index=found[key][0], leaf=found[key][1])
                for key in wanted
            ], together
        proofs = {
            index: inclusion_proof_from(tree_size, index, [hashes[i] for i in path])
            for index, path in paths.items()
        }
        return [
            hub_service_pb2.InclusionProof(
                leaf_index=found[key][0], leaf=found[key][1], hashes=proofs[found[key][0]]
            )
            for key in wanted
        ], []


# --- Queries -------------------------------------------------------------------------------


def _newest_size(conn: sa.Connection) -> int | None:
    value = conn.execute(sa.select(sa.func.max(checkpoints_t.c.size))).scalar()
    return None if value is None else int(value)


def _fully_cosigned(conn: sa.Connection, active: list[str], target: int) -> int | None:
    """The newest checkpoint size with >= target cosignatures by active members."""
    if target <= 0:
        return _newest_size(conn)
    c = cosignatures_t.c
    value = conn.execute(
        sa.select(c.size)
        .where(c.kommunkod.in_(active))
        .group_by(c.size)
        .having(sa.func.count() >= target)
        .order_by(c.size.desc())
        .limit(1)
    ).scalar()
    return None if value is None else int(value)


# --- Choosing a checkpoint (pure, over a snapshot) -----------------------------------------


@dataclass(frozen=True, slots=True)
class Held:
    """One stored cosignature."""

    size: int
    kommunkod: str
    key_hash: int
    signature: bytes

    @property
    def line(self) -> str:
        return cosignature_line(self.kommunkod, self.key_hash, self.signature)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The cosignatures held (all: the table is kept small) and the newest checkpoints."""

    taken: float
    newest: int | None
    #: (size, signed_at_ms) of the newest RECENT_CHECKPOINTS checkpoints, newest first.
    recent: tuple[tuple[int, int], ...]
    cosignatures: tuple[Held, ...]


_SNAPSHOT_RECENT = (
    sa.select(checkpoints_t.c.size, checkpoints_t.c.signed_at_ms)
    .order_by(checkpoints_t.c.size.desc())
    .limit(RECENT_CHECKPOINTS)
)
_SNAPSHOT_COSIGNATURES = sa.select(
    cosignatures_t.c.size,
    cosignatures_t.c.kommunkod,
    cosignatures_t.c.key_hash,
    cosignatures_t.c.signature,
)


def read_snapshot(conn: sa.Connection) -> Snapshot:
    recent = tuple((int(a), int(b)) for a, b in conn.execute(_SNAPSHOT_RECENT))
    held = tuple(
        Held(int(a), k, int(h), bytes(sig)) for a, k, h, sig in conn.execute(_SNAPSHOT_COSIGNATURES)
    )
    return Snapshot(time.monotonic(), recent[0][0] if recent else None, recent, held)


def _counts(held: Iterable[Held], witnesses: Witnesses) -> dict[int, int]:
    counts: dict[int, int] = {}
    for h in held:
        if h.kommunkod in witnesses.keys:
            counts[h.size] = counts.get(h.size, 0) + 1
    return counts


def _any_size(_size: int) -> bool:
    return True


def cosigned_size(
    held: Iterable[Held],
    witnesses: Witnesses,
    configured: int,
    current: Callable[[int], bool] = _any_size,
) -> int | None:
    """The newest size with the target's cosignatures by active members (None: none),
    among the checkpoints ``current`` says the log key in force signed."""
    target = witnesses.target(configured)
    sizes = sorted(
        (size for size, n in _counts(held, witnesses).items() if n >= target), reverse=True
    )
    return next((size for size in sizes if current(size)), None)


def in_progress_size(
    snap: Snapshot,
    witnesses: Witnesses,
    configured: int,
    kommunkod: str,
    signed_since_ms: int,
    current: Callable[[int], bool] = _any_size,
) -> int | None:
    """The checkpoint in progress for ``kommunkod``'s witness: the newest newer than the
    newest fully cosigned one, with a cosignature by an active member, signed since
    ``signed_since_ms`` by the log key in force (``current``), and at least the size
    this witness cosigned last."""
    if witnesses.target(configured) <= 0:
        return None
    after = cosigned_size(snap.cosignatures, witnesses, configured, current)
    own = max((h.size for h in snap.cosignatures if h.kommunkod == kommunkod), default=0)
    started = set(_counts(snap.cosignatures, witnesses))
    for size, signed_at in snap.recent:  # newest first
        if signed_at < signed_since_ms or size < own or (after is not None and size <= after):
            continue
        if size in started and current(size):
            return size
    return None


def cosignature_line(kommunkod: str, key_hash: int, signature: bytes) -> str:
    return NoteSignature(witness_key_name(kommunkod), key_hash, signature).line


def _upsert(conn: sa.Connection, size: int, kommunkod: str, sig: NoteSignature, now: int) -> bool:
    """Keep ``sig`` unless an at least as new one by this kommun is held; True if kept.
    One statement (INSERT … ON CONFLICT), so two replicas racing cannot both insert."""
    values = {
        "size": size,
        "kommunkod": kommunkod,
        "key_hash": sig.key_hash,
        "timestamp": sig.cosignature_timestamp(),
        "signature": sig.signature,
        "received_at_ms": now,
    }
    insert = postgresql.insert if is_postgres(conn) else sqlite.insert
    stmt = insert(cosignatures_t).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[cosignatures_t.c.size, cosignatures_t.c.kommunkod],
        set_={
            k: stmt.excluded[k] for k in ("key_hash", "timestamp", "signature", "received_at_ms")
        },
        where=cosignatures_t.c.timestamp < stmt.excluded.timestamp,
    )
    return bool(conn.execute(stmt).rowcount)


def _prune(
    conn: sa.Connection, size: int, kommunkod: str, count: int, w: Witnesses, configured: int
) -> None:
    """Drop cosignatures that can no longer be served, so the table stays about two rows
    per member and choosing a checkpoint a small scan: those of checkpoints smaller than
    the newest fully cosigned one (never served again), and this kommun's own of smaller
    checkpoints not fully cosigned (it moved on, so they are no longer in progress)."""
    c = cosignatures_t.c
    target = w.target(configured)
    if count >= target:
        conn.execute(sa.delete(cosignatures_t).where(c.size < size))
    fully = _fully_cosigned(conn, w.active, target)
    floor = -1 if fully is None else fully
    conn.execute(
        sa.delete(cosignatures_t).where(c.kommunkod == kommunkod, c.size < size, c.size > floor)
    )


def _count(conn: sa.Connection, size: int, active: list[str]) -> int:
    c = cosignatures_t.c
    value = conn.execute(
        sa.select(sa.func.count()).where(c.size == size, c.kommunkod.in_(active))
    ).scalar()
    return int(value or 0)


def _check_signed(conn: sa.Connection, size: int) -> None:
    """Proofs only for trees no larger than the newest signed checkpoint's."""
    newest = _newest_size(conn)
    if newest is None or size > newest:
        raise Conflict(
            f"tree size {size} is larger than the log's newest checkpoint "
            f"({0 if newest is None else newest})",
            reason="beyond_checkpoint",
            hint="ask GetCheckpoint for the newest checkpoint and use its size",
        )


#: A queried leaf: ("", version) for a directory version, (origin, sequence) for an entry.
_Key = tuple[str, int]


def _leaf_key(at: int, q: hub_service_pb2.LeafQuery) -> _Key:
    if q.origin:
        if not is_origin(q.origin):
            raise refused("invalid_request", f"leaf {at}: {q.origin[:8]!r} is no feed origin")
        if q.directory_version:
            raise refused(
                "invalid_request", f"leaf {at}: an entry query names no directory_version"
            )
        if not 1 <= q.sequence <= MAX_STORED_INT:
            raise refused("invalid_request", f"leaf {at}: sequences start at 1")
        return (q.origin, q.sequence)
    if q.sequence:
        raise refused("invalid_request", f"leaf {at}: a sequence needs an origin")
    if not 1 <= q.directory_version <= MAX_STORED_INT:
        raise refused(
            "invalid_request", f"leaf {at}: name an origin and sequence, or a directory_version"
        )
    return ("", q.directory_version)


def _label(key: _Key) -> str:
    return f"directory version {key[1]}" if not key[0] else f"entry {key[0]}#{key[1]}"


def _find_leaves(conn: sa.Connection, keys: Iterable[_Key]) -> dict[_Key, tuple[int, bytes]]:
    """Leaf index and bytes of each key the log holds (any tree size)."""
    entries = sorted({k for k in keys if k[0]})
    versions = sorted({k[1] for k in keys if not k[0]})
    found: dict[_Key, tuple[int, bytes]] = {}
    lc = leaves_t.c
    if entries:
        # One origin = ? AND sequence IN (...) per origin: an index seek on the log's
        # (origin, sequence) key on SQLite and PostgreSQL alike. A row-value IN over
        # (origin, sequence) made SQLite scan every leaf (measured: 150 ms for 500
        # leaves of a 4,000-leaf log, growing with the log; this: 5-25 ms).
        by_origin: dict[str, list[int]] = {}
        for origin, sequence in entries:
            by_origin.setdefault(origin, []).append(sequence)
        # Then the leaves by their (kind, ref) key, in a statement of their own: joined,
        # SQLite walked every entry leaf (the unique index's kind = 1 prefix) and probed
        # the log for each, so each page of a sync cost in proportion to the whole log
        # (issue 15, full sync flat in size: 62 % of the hub's CPU serving a 30k sync).
        # Sent straight to the driver: as a SQLAlchemy expression, a page's statement
        # (a differently shaped OR of up to 290 origins) was built and compiled anew for
        # every page, 17 % of the hub's CPU serving a sync (py-spy, 10k entries).
        where = " OR ".join(
            f"(origin = ? AND sequence IN ({', '.join('?' * len(sequences))}))"
            for sequences in by_origin.values()
        )
        params = [p for origin, seqs in by_origin.items() for p in (origin, *seqs)]
        keyed = driver_execute(
            conn, f"SELECT position, origin, sequence FROM {log_table.name} WHERE {where}", params
        )
        at = {int(position): (origin, int(sequence)) for position, origin, sequence in keyed}
        if at:
            rows = conn.execute(
                sa.select(lc.ref, lc.index, lc.data).where(
                    lc.kind == KIND_ENTRY, lc.ref.in_(sorted(at))
                )
            )
            for ref, index, data in rows:
                found[at[int(ref)]] = (int(index), bytes(data))
    if versions:
        directory_rows = conn.execute(
            sa.select(lc.ref, lc.index, lc.data).where(
                lc.kind == KIND_DIRECTORY, lc.ref.in_(versions)
            )
        )
        for version, index, data in directory_rows:
            found[("", int(version))] = (int(index), bytes(data))
    return found


def _read_hashes(conn: sa.Connection, indexes: Sequence[int]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for start in range(0, len(indexes), _HASH_CHUNK):
        chunk = indexes[start : start + _HASH_CHUNK]
        rows = conn.execute(
            sa.select(hashes_t.c.index, hashes_t.c.hash).where(hashes_t.c.index.in_(chunk))
        )
        out.update((int(i), bytes(h)) for i, h in rows)
    return out


def _dict_reader(hashes: Mapping[int, bytes]) -> Callable[[Sequence[int]], list[bytes]]:
    def read(indexes: Sequence[int]) -> list[bytes]:
        return [hashes[i] for i in indexes if i in hashes]  # a missing one fails the proof

    return read


def _reader(conn: sa.Connection) -> Callable[[Sequence[int]], list[bytes]]:
    def read(indexes: Sequence[int]) -> list[bytes]:
        return _dict_reader(_read_hashes(conn, sorted(set(indexes))))(indexes)

    return read


def cosigned_log(
    hub: Hub, directory: Callable[[], VerifiedDirectory | None], *, vkey: str = ""
) -> CosignedLog | None:
    """The hub folder's log with its cosignatures (``vkey``: the log's verifier key,
    else read from the folder); None while the folder has no log key."""
    if not vkey:
        signer = load_log_key(hub.dir)
        if signer is None:
            return None
        vkey = signer.verifier().vkey
    return CosignedLog(
        hub.store.engine, vkey, directory, witness_target=hub.config.tlog.witness_target
    )
