"""The node's state as a witness of the hub's transparency log, in the node folder
(issue 11; docs/SECURITY.md "The transparency log"):

    tlog/cosigned                     the last checkpoint this node cosigned (signed note)
    tlog/accepted                     the newest checkpoint it accepted, with the
                                      cosignatures that made it acceptable (signed note)
    tlog/evidence/<UTC>-<kind>/       two signed checkpoints that cannot both be true, the
                                      proof, the log key, the witness keys, README.txt
    tlog/halted                       present after a split view: no more cosigning until
                                      an operator has sent the evidence on and removed it

Files are written atomically (temporary file, fsync, rename) and readable by all (0644):
nothing here is secret, and all of it is what a third party needs.

:class:`LogState` is the files; :class:`LogAcceptor` decides on new checkpoints with the
pure rules of :mod:`samverka.protocol.witness` and keeps what they decide: sync proves
its entries against :meth:`LogAcceptor.accepted` and asks :meth:`LogAcceptor.newer`
for a newer one (the ``AcceptedCheckpoints`` of :mod:`samverka.replication.logproof`),
the witness task (:mod:`samverka.membership.witness`) cosigns through it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import grpc

from samverka.config import NodeConfig
from samverka.errors import SamverkaError, TransportError
from samverka.node import directory_keys, earlier_log_keys, load_directory, replace_file
from samverka.observers import Observers
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.directory import ACTIVE
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.note import Ed25519Verifier, NoteError, parse_note
from samverka.protocol.verify import KeyStanding
from samverka.protocol.witness import (
    CONSISTENCY_PROOF_FAILED,
    NO_CONSISTENCY_PROOF,
    SAME_SIZE_DIFFERENT_ROOT,
    Accepted,
    Evidence,
    InconsistentCheckpoint,
    SignedCheckpoint,
    accept_checkpoint,
    effective_quorum,
    open_signed,
)
from samverka.transport.hubclient import HubClient
from samverka.transport.server.status import PeerError

log = logging.getLogger("samverka.replication.logstate")

#: Told of what the node does as a witness: (event, reason) with event one of
#: "cosigned", "accepted", "refused" (reason: the refusal's) and "split_view" (reason:
#: the evidence's kind). ops.metrics counts them.
witness_observers: Observers[[str, str]] = Observers()

TLOG_DIR = "tlog"
COSIGNED_FILE = "tlog/cosigned"
ACCEPTED_FILE = "tlog/accepted"
EVIDENCE_DIR = "tlog/evidence"
HALTED_FILE = "tlog/halted"

#: Names of the files in an evidence folder.
OLDER_NOTE = "checkpoint-1.txt"
NEWER_NOTE = "checkpoint-2.txt"
PROOF_FILE = "proof.json"
LOG_KEY_FILE = "log.vkey"
WITNESS_KEYS_FILE = "witnesses.vkeys"
README_FILE = "README.txt"


class LogStateError(SamverkaError):
    """A file under ``tlog/`` that cannot be read or does not hold what it should."""

    reason = "log_state_invalid"


@dataclass(frozen=True, slots=True)
class HeldCheckpoint:
    """A checkpoint note this node wrote itself after verifying it, and its body."""

    note: bytes
    checkpoint: Checkpoint
    #: Log keys this node pinned before the current one (a hub key rotation moved the
    #: log key: samverka.membership.hubtrust): a note held from then verifies under them.
    earlier_keys: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return self.checkpoint.size

    def signed(self, log_verifier: Ed25519Verifier) -> SignedCheckpoint:
        """The note verified again under the log key (a changed or damaged file shows)."""
        try:
            return open_signed(self.note, log_verifier)
        except (SamverkaError, NoteError) as exc:
            for vkey in reversed(self.earlier_keys):
                try:
                    return open_signed(self.note, Ed25519Verifier.from_vkey(vkey))
                except (SamverkaError, NoteError):
                    continue
            raise LogStateError(
                f"the held checkpoint of {self.size} leaves does not verify under the log "
                f"key {log_verifier.name}: {exc}",
                hint="the log key changed without an announcement, or the file was "
                "edited: compare tlog/ with a backup before removing it",
            ) from exc


@dataclass(frozen=True, slots=True)
class Halt:
    """What ``tlog/halted`` says: when, why, and where the evidence is."""

    at: str
    reason: str
    why: str
    evidence: str


class LogState:
    """The files under ``<node>/tlog/``."""

    def __init__(self, node_dir: Path) -> None:
        self.dir = Path(node_dir)

    # -- reading -------------------------------------------------------------------------

    def cosigned(self) -> HeldCheckpoint | None:
        """The last checkpoint this node cosigned (None: none yet)."""
        return self._read_note(COSIGNED_FILE)

    def accepted(self) -> HeldCheckpoint | None:
        """The newest checkpoint this node accepted (None: none yet)."""
        return self._read_note(ACCEPTED_FILE)

    @property
    def halted(self) -> bool:
        """True after a split view: the node cosigns nothing until an operator clears it."""
        return (self.dir / HALTED_FILE).exists()

    def halt(self) -> Halt | None:
        """The contents of ``tlog/halted`` (None when not halted)."""
        path = self.dir / HALTED_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LogStateError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            data = json.loads(raw)
            return Halt(
                str(data["at"]), str(data["reason"]), str(data["why"]), str(data["evidence"])
            )
        except (ValueError, KeyError, TypeError):
            # Halted all the same: an operator may have written it by hand.
            return Halt("", "halted", raw.decode("utf-8", "replace").strip(), "")

    def evidence_folders(self) -> list[Path]:
        folder = self.dir / EVIDENCE_DIR
        return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def _read_note(self, name: str) -> HeldCheckpoint | None:
        path = self.dir / name
        try:
            note = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LogStateError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            return HeldCheckpoint(
                note,
                Checkpoint.from_text(parse_note(note).text),
                earlier_keys=tuple(earlier_log_keys(self.dir)),
            )
        except (SamverkaError, NoteError) as exc:
            raise LogStateError(
                f"{path} is not a signed checkpoint: {exc}",
                hint="restore it from a backup of the node folder, or remove it: the node "
                "then trusts the hub's next checkpoint on first sight",
            ) from exc

    # -- writing -------------------------------------------------------------------------

    def record_cosigned(self, note: bytes) -> None:
        """Keep ``note`` (as handed to AddCosignature) as the last cosigned checkpoint."""
        self._write(COSIGNED_FILE, note)

    def record_accepted(self, accepted: Accepted | SignedCheckpoint) -> None:
        """Keep an accepted checkpoint; never one smaller than the one held."""
        signed = accepted.signed if isinstance(accepted, Accepted) else accepted
        held = self.accepted()
        if held is not None and signed.size < held.size:
            raise LogStateError(
                f"refusing to replace the accepted checkpoint of {held.size} leaves by "
                f"one of {signed.size}"
            )
        self._write(ACCEPTED_FILE, signed.note)

    def keep_evidence(self, evidence: Evidence, *, halt: bool = True) -> Path:
        """Write ``evidence`` to a folder of its own (the same evidence twice: the folder
        already written) and, with ``halt``, stop this node's cosigning."""
        for existing in self.evidence_folders():
            with contextlib.suppress(OSError):
                if (existing / OLDER_NOTE).read_bytes() == evidence.older and (
                    existing / NEWER_NOTE
                ).read_bytes() == evidence.newer:
                    if halt and not self.halted:
                        self._halt(evidence, existing)
                    return existing
        files = {
            OLDER_NOTE: evidence.older,
            NEWER_NOTE: evidence.newer,
            PROOF_FILE: json.dumps(evidence.to_json(), indent=2).encode() + b"\n",
            LOG_KEY_FILE: evidence.log_key.encode() + b"\n",
            WITNESS_KEYS_FILE: "".join(k + "\n" for k in evidence.witness_keys).encode(),
            README_FILE: evidence_readme(evidence).encode("utf-8"),
        }
        folder = self.keep(evidence.kind, files)
        if halt:
            self._halt(evidence, folder)
        return folder

    def keep(self, kind: str, files: Mapping[str, bytes], *, now: float | None = None) -> Path:
        """A new folder ``tlog/evidence/<UTC time>-<kind>/`` holding ``files`` (any kind
        of evidence: a monitor's too)."""
        stamp = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
        base = self.dir / EVIDENCE_DIR / f"{stamp:%Y%m%dT%H%M%SZ}-{kind}"
        folder, n = base, 1
        while True:
            try:
                folder.mkdir(parents=True, mode=0o755)
                break
            except FileExistsError:
                n += 1
                folder = base.with_name(f"{base.name}-{n}")
        for name, data in files.items():
            replace_file(folder / name, data, mode=0o644)
        return folder

    def _halt(self, evidence: Evidence, folder: Path) -> None:
        data = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "reason": evidence.kind,
            "why": evidence.why,
            "evidence": str(folder.relative_to(self.dir)),
            "source": evidence.source,
        }
        self._write(HALTED_FILE, json.dumps(data, indent=2).encode() + b"\n")

    def _write(self, name: str, data: bytes) -> None:
        replace_file(self.dir / name, data, mode=0o644)


def evidence_readme(evidence: Evidence) -> str:
    """README.txt of an evidence folder: what it proves and how anyone can check it."""
    older = Checkpoint.from_text(parse_note(evidence.older).text)
    newer = Checkpoint.from_text(parse_note(evidence.newer).text)
    return f"""\
Bevis: navets transparenslogg har visat två checkpoints som inte båda kan vara sanna
==========================================================================================

Svenska. Filerna {OLDER_NOTE} och {NEWER_NOTE} är två checkpoints (C2SP
tlog-checkpoint, signerade anteckningar enligt C2SP signed-note) som båda är signerade med
loggens nyckel i {LOG_KEY_FILE}. {_why_sv(evidence)} Kontrollera det själv med vilket
verktyg som helst för C2SP signed-note och RFC 9162 (till exempel Go-paketen
golang.org/x/mod/sumdb/note och golang.org/x/mod/sumdb/tlog, eller transparency-dev/merkle):
(1) verifiera båda anteckningarnas signatur med nyckeln i {LOG_KEY_FILE}; (2) läs
trädstorlek och rothash (rad 2 och 3); (3) är storlekarna lika ska rötterna vara lika, annars
ska konsistensbeviset i {PROOF_FILE} (hashar i hex, RFC 9162 avsnitt 2.1.4.2) visa att det
mindre trädet är ett prefix av det större. Här håller det inte. Vittnenas nycklar
(tlog-cosignature/v1) står i {WITNESS_KEYS_FILE}. Skicka hela mappen till samverkansrådet.

English. {OLDER_NOTE} and {NEWER_NOTE} are two checkpoints (C2SP tlog-checkpoint, in
C2SP signed-note format), both signed by the log key in {LOG_KEY_FILE}.
{evidence.why}. Check it with any C2SP signed-note and RFC 9162 tool (e.g. Go's
golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, or transparency-dev/merkle):
(1) verify both notes' signature with the key in {LOG_KEY_FILE}; (2) read each tree size
and root hash (lines 2 and 3); (3) equal sizes must have equal roots, otherwise the
consistency proof in {PROOF_FILE} (hex hashes, RFC 9162 section 2.1.4.2) must show the
smaller tree is a prefix of the larger. It does not. The witnesses' keys
(tlog-cosignature/v1) are in {WITNESS_KEYS_FILE}. Send the whole folder to the council.

older: size {older.size}, root {older.root_hash.hex()}
newer: size {newer.size}, root {newer.root_hash.hex()}
kind: {evidence.kind}; second checkpoint from: {evidence.source}
"""


def _why_sv(evidence: Evidence) -> str:
    return {
        SAME_SIZE_DIFFERENT_ROOT: "De har samma trädstorlek men olika rothash.",
        CONSISTENCY_PROOF_FAILED: "Konsistensbeviset mellan dem (från navet) håller inte.",
        NO_CONSISTENCY_PROOF: "Navet kan inte ge något konsistensbevis mellan dem.",
    }.get(evidence.kind, "De motsäger varandra.")


# --- deciding on new checkpoints ------------------------------------------------------------

#: Fetches the hub's cosigned checkpoint note (GetCheckpoint, for_witness=false).
FetchCheckpoint = Callable[[], Awaitable[bytes]]
#: Fetches a consistency proof (GetConsistencyProof(old_size, new_size)); raising a
#: :class:`~samverka.errors.SamverkaError` that is not a transport error means "none".
FetchProof = Callable[[int, int], Awaitable[Sequence[bytes]]]


@dataclass(frozen=True, slots=True)
class Witnessing:
    """What acceptance needs besides the hub: the pinned log key, each kommun's effective
    keys (kommunkod -> raw Ed25519 public keys), this kommun, the quorum, the maximum age
    of a cosignature (seconds)."""

    log_verifier: Ed25519Verifier
    witness_keys: Mapping[str, Sequence[bytes]]
    self_kommun: str
    quorum: int
    max_age: float


def log_verifier_for(config: NodeConfig) -> Ed25519Verifier:
    """The hub's log key as the held member directory carries it (``Directory.log_key``;
    the directory's signature by the pinned hub key binds it)."""
    directory = load_directory(config)
    vkey = directory.directory.log_key if directory is not None else ""
    if not vkey:
        raise LogStateError(
            "the member directory this node holds names no transparency-log key",
            hint="enroll first, or refresh the directory (`samverka node directory "
            "--refresh`); a hub that predates the log names none",
        )
    try:
        return Ed25519Verifier.from_vkey(vkey)
    except NoteError as exc:
        raise LogStateError(f"the directory's log key {vkey!r} is not a note key: {exc}") from exc


def witnessing_for(config: NodeConfig, *, now_ms: int | None = None) -> Witnessing:
    """The acceptance rules from the node folder: the log key, the effective signing keys
    of the active members (not the hub's, not keys in challenge, objected to or revoked),
    ``[witness] quorum`` capped at the other active members, ``max_age_seconds``."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    verifier = log_verifier_for(config)
    directory = load_directory(config)
    active = (
        {m.kommunkod for m in directory.directory.members if m.status == ACTIVE}
        if directory is not None
        else set()
    ) - {HUB_ORIGIN}
    keys: dict[str, list[bytes]] = {}
    for key in directory_keys(config):
        if key.origin not in active or key.standing is not KeyStanding.EFFECTIVE:
            continue
        if key.revoked_at_ms is not None and key.revoked_at_ms <= now:
            continue
        keys.setdefault(key.origin, []).append(key.public_key.raw)
    own = config.node.kommun
    return Witnessing(
        log_verifier=verifier,
        witness_keys=keys,
        self_kommun=own,
        quorum=effective_quorum(config.witness.quorum, len(active - {own})),
        max_age=config.witness.max_age_seconds,
    )


def _no_larger(now: Checkpoint | None, before: Checkpoint | None) -> bool:
    return now is None or (before is not None and now.size <= before.size)


class LogAcceptor:
    """The node's accepted checkpoint and the way to a newer one: the hub's newest
    cosigned checkpoint, checked by :func:`~samverka.protocol.witness.accept_checkpoint`
    against the one held; a conflict is kept as evidence (and halts cosigning) before
    the refusal is raised."""

    def __init__(
        self,
        state: LogState,
        rules: Witnessing | Callable[[], Witnessing],
        fetch_checkpoint: FetchCheckpoint,
        fetch_proof: FetchProof,
        *,
        fetch_newest: FetchCheckpoint | None = None,
        clock: Callable[[], float] = time.time,
        is_transport_error: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.state = state
        self._rules = rules
        self._fetch_checkpoint = fetch_checkpoint
        #: The checkpoint the hub hands its witnesses (the newest, or the one they are
        #: gathering on): asked when the cosigned one brings nothing new.
        self._fetch_newest = fetch_newest
        self._fetch_proof = fetch_proof
        self._clock = clock
        self._is_transport_error = is_transport_error or _is_transport_error

    @classmethod
    def for_node(cls, config: NodeConfig, hub: HubClient) -> LogAcceptor:
        """Over the node folder's ``tlog/`` and rules (re-read on each decision: a new
        directory version changes the keys), asking ``hub`` (its member port)."""
        return cls(
            LogState(config.dir),
            lambda: witnessing_for(config),
            hub.get_checkpoint,
            hub.get_consistency_proof,
            fetch_newest=lambda: hub.get_checkpoint(for_witness=True),
        )

    def rules(self) -> Witnessing:
        return self._rules() if callable(self._rules) else self._rules

    def accepted(self) -> Checkpoint | None:
        held = self.state.accepted()
        return held.checkpoint if held is not None else None

    async def newer(self) -> Checkpoint | None:
        """Fetch the hub's cosigned checkpoint, accept it if the rules allow, and return
        the newest accepted one. A refusal is raised (the held one stays)."""
        held = self.accepted()
        refusal: SamverkaError | None = None
        try:
            await self.consider(await self._fetch_checkpoint())
        except InconsistentCheckpoint:
            raise
        except SamverkaError as exc:
            if self._is_transport_error(exc) or self._fetch_newest is None:
                raise
            refusal = exc
        if self._fetch_newest is not None and _no_larger(self.accepted(), held):
            # The hub serves as "cosigned" the newest checkpoint its own witness target
            # was met for; that one goes stale while fewer members witness than the
            # target (a member gone quiet) or none (this node's quorum may then be 0).
            # The checkpoint the witnesses are gathering on may meet this node's rules.
            try:
                await self.consider(await self._fetch_newest())
            except InconsistentCheckpoint:
                raise
            except SamverkaError as exc:
                if self._is_transport_error(exc):
                    raise
            else:
                refusal = None
        if refusal is not None and _no_larger(self.accepted(), held):
            raise refusal
        return self.accepted()

    async def consider(self, note: bytes, *, source: str = "hub") -> Accepted:
        """Accept ``note`` or raise why not; evidence of a conflict is kept first."""
        rules = self.rules()
        held = self.state.accepted()
        previous = held.signed(rules.log_verifier) if held is not None else None
        proof: Sequence[bytes] | None = None
        if previous is not None:
            candidate = Checkpoint.from_text(parse_note(note).text)
            if candidate.size > previous.size:
                proof = await self.proof(previous.size, candidate.size)
        try:
            accepted = self._accept(note, rules, previous, proof)
        except InconsistentCheckpoint as exc:
            folder = self.state.keep_evidence(replace(exc.evidence, source=source))
            log.error(
                "split view: %s; evidence in %s, cosigning stopped",
                exc.evidence.why,
                folder,
                extra={"event": "split_view", "evidence": str(folder), "peer": source},
            )
            witness_observers("split_view", exc.evidence.kind)
            raise
        except SamverkaError as exc:
            witness_observers("refused", str(getattr(exc, "reason", "") or type(exc).__name__))
            raise
        if held is None or accepted.signed.note != held.note:
            # Larger, or the same tree with other (fresher) cosignatures: keep the newest.
            self.state.record_accepted(accepted)
            witness_observers("accepted", "")
        return accepted

    def _accept(
        self,
        note: bytes,
        rules: Witnessing,
        previous: SignedCheckpoint | None,
        proof: Sequence[bytes] | None,
    ) -> Accepted:
        return accept_checkpoint(
            note,
            rules.log_verifier,
            rules.witness_keys,
            rules.self_kommun,
            rules.quorum,
            rules.max_age,
            self._clock(),
            previous,
            proof,
        )

    async def proof(self, old_size: int, new_size: int) -> Sequence[bytes] | None:
        """The hub's consistency proof, or None when it answers that it has none (a
        transport failure is raised: it proves nothing either way)."""
        try:
            return await self._fetch_proof(old_size, new_size)
        except SamverkaError as exc:
            if self._is_transport_error(exc):
                raise
            return None


#: Status codes by which a hub that was reached says it has no such proof (as opposed
#: to a call that failed on the way, which proves nothing either way).
_NO_PROOF_CODES = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, PeerError):
        return exc.code not in _NO_PROOF_CODES
    return isinstance(exc, TransportError)
