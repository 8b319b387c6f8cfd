"""The node as a witness of the hub's transparency log, and what it accepts from it
(issue 11, point 3; docs/SECURITY.md "The transparency log").

Pure: signed notes and keys in, decisions and typed refusals out; the clock is a
parameter. :mod:`samverka.replication.logstate` keeps what these functions decide on
disk, :mod:`samverka.membership.witness` asks the hub and hands cosignatures in.

- **Witness identity.** A kommun witnesses with its own Ed25519 signing key (the one its
  entries are signed with), used as a C2SP tlog-cosignature/v1 key under the note key
  name ``samverka-witness/<kommunkod>``. The cosignature's "cosignature/v1\\n" header
  separates its domain from every entry signature (which starts "samverka/v1/entry\\0"),
  so one key serves both without a signature for one being good for the other.
- **Cosigning** (:func:`should_cosign`): a checkpoint signed by the pinned log key is
  cosigned on first sight, or when it is at least as large as the last one this node
  cosigned and an RFC 9162 consistency proof from that one verifies (equal size: equal
  root). Anything else is either stale (smaller: refused) or impossible beside what was
  cosigned before: the two signed notes are :class:`Evidence` of a log that forked.
- **Acceptance** (:func:`accept_checkpoint`): signed by the log key; every line in the
  name of a known witness verifies (else ``forged_cosignature``); at least ``quorum``
  distinct *other* kommuner cosigned it (a node's own cosignature proves nothing to
  itself), each within ``max_age`` of ``now``; no smaller than the last accepted one and
  consistent with it.

Two checkpoints signed by the log key that cannot both be true are a proof anyone can
check with the log's public key alone: :func:`check_evidence` does exactly that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from samverka.protocol.checkpoint import (
    Checkpoint,
    CheckpointError,
    NotSignedByLog,
    VerifiedCheckpoint,
    open_checkpoint,
)
from samverka.protocol.merkle import ProofError, verify_consistency
from samverka.protocol.note import (
    CosignatureV1Signer,
    CosignatureV1Verifier,
    Ed25519Verifier,
    InvalidNoteSignature,
    NoteError,
    UnverifiedNote,
    parse_note,
    sign_note,
)
from samverka.protocol.signing import SigningKey

#: Prefix of a witness's note key name; the kommunkod follows.
WITNESS_KEY_PREFIX = "samverka-witness/"

#: How far in the future a cosignature's timestamp may lie and still count (clocks
#: differ); further, and a colluding witness could keep a checkpoint "fresh" for ever.
MAX_FUTURE_SKEW_SECONDS = 300.0

#: Default of ``[witness] max_age_seconds``: a day.
DEFAULT_MAX_AGE_SECONDS = 24 * 3600.0


# --- Refusals -----------------------------------------------------------------------------


class TooFewCosignatures(CheckpointError):
    """Fewer distinct other kommuner cosigned the checkpoint than the quorum asks."""

    reason = "too_few_cosignatures"
    hint = (
        "the hub's witnesses have not cosigned it yet: try again in a few seconds; "
        "if it lasts, the other members' nodes are not witnessing (doctor on theirs)"
    )


class ForgedCosignature(CheckpointError):
    """A cosignature line in the name of a known witness key that does not verify."""

    reason = "forged_cosignature"
    hint = "the hub handed out a checkpoint with a forged cosignature: tell the council"


class StaleCheckpoint(CheckpointError):
    """Smaller than the checkpoint already accepted (or cosigned): replayed or rolled back."""

    reason = "stale_checkpoint"
    hint = "the hub showed an older checkpoint than one it showed before: tell the council"


class CheckpointTooOld(CheckpointError):
    """Enough cosignatures, but too few of them within ``max_age``: a frozen log or a
    replayed checkpoint."""

    reason = "checkpoint_too_old"
    hint = (
        "the hub's newest cosigned checkpoint is older than [witness] max_age_seconds: "
        "are the members' nodes witnessing (doctor), or does the hub hide newer ones?"
    )


class InconsistentCheckpoint(CheckpointError):
    """Two checkpoints signed by the log key that cannot both be true; the evidence
    rides along for :meth:`samverka.replication.logstate.LogState.keep_evidence`."""

    reason = "inconsistent_checkpoint"
    hint = (
        "the hub's log forked (a split view): the two signed checkpoints are kept under "
        "tlog/evidence/; cosigning has stopped. Send the evidence folder to the council"
    )

    def __init__(self, evidence: Evidence) -> None:
        super().__init__(f"{evidence.why} (evidence kept)")
        self.evidence = evidence


# --- Witness keys -------------------------------------------------------------------------


def witness_key_name(kommunkod: str) -> str:
    """The note key name a kommun cosigns under: ``samverka-witness/<kommunkod>``."""
    return WITNESS_KEY_PREFIX + kommunkod


def witness_kommun(name: str) -> str | None:
    """The kommunkod of a witness key name, or None for any other name."""
    if not name.startswith(WITNESS_KEY_PREFIX):
        return None
    code = name[len(WITNESS_KEY_PREFIX) :]
    return code or None


def witness_signer(
    kommunkod: str, key: SigningKey, *, clock: Callable[[], int] | None = None
) -> CosignatureV1Signer:
    """The kommun's cosigning key: its entry-signing key's seed as a cosignature/v1 key."""
    # SigningKey keeps its private key to itself; its PEM is the documented way out.
    private = serialization.load_pem_private_key(key.to_pem(), password=None)
    if not isinstance(private, Ed25519PrivateKey):  # a SigningKey is Ed25519 by construction
        raise TypeError("a signing key is an Ed25519 key")
    seed = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return CosignatureV1Signer(witness_key_name(kommunkod), seed, clock=clock)


def witness_verifiers(keys: Mapping[str, Sequence[bytes]]) -> list[CosignatureV1Verifier]:
    """Cosignature verifiers for every kommun's effective keys (kommunkod -> raw 32-byte
    Ed25519 public keys). A kommun with two effective keys (a rotation) has two
    verifiers under one name: either one's cosignature counts, once for the kommun."""
    return [
        CosignatureV1Verifier(witness_key_name(code), bytes(raw))
        for code in sorted(keys)
        for raw in keys[code]
    ]


def effective_quorum(configured: int, other_active_members: int) -> int:
    """``[witness] quorum`` capped at the number of other active members: a federation
    of three cannot ask for three other cosigners."""
    return max(0, min(configured, other_active_members))


# --- Signed checkpoints and evidence ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint note as received (the exact bytes, every signature line kept), whose
    log signature verified under ``log_key``."""

    note: bytes
    verified: VerifiedCheckpoint
    #: The log's verifier key (``<name>+<hash>+<base64>``) it verified under.
    log_key: str
    #: The witness verifier keys it was checked against (may be empty).
    witness_keys: tuple[str, ...] = ()

    @property
    def checkpoint(self) -> Checkpoint:
        return self.verified.checkpoint

    @property
    def size(self) -> int:
        return self.verified.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.verified.checkpoint.root_hash

    def cosigners(self, *, exclude: str = "") -> frozenset[str]:
        """The kommunkoder whose cosignature verified (``exclude`` left out)."""
        codes = {witness_kommun(c.name) for c in self.verified.cosignatures}
        return frozenset(c for c in codes if c is not None and c != exclude)


#: Why two checkpoints cannot both be true.
SAME_SIZE_DIFFERENT_ROOT = "same_size_different_root"
CONSISTENCY_PROOF_FAILED = "consistency_proof_failed"
NO_CONSISTENCY_PROOF = "no_consistency_proof"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two checkpoints signed by the same log key that cannot both be true: ``older``
    (the smaller, or the one held first when sizes are equal) and ``newer``, the
    consistency proof the hub gave between them (empty if none), and why."""

    kind: str
    why: str
    older: bytes
    newer: bytes
    proof: tuple[bytes, ...]
    log_key: str
    witness_keys: tuple[str, ...] = ()
    #: Where the second checkpoint came from ("hub", "peer 1480", ...), for people.
    source: str = "hub"

    @property
    def reason(self) -> str:
        return InconsistentCheckpoint.reason

    def to_json(self) -> dict[str, object]:
        """The proof's facts for ``proof.json`` (hashes hex, notes as text)."""
        old = Checkpoint.from_text(parse_note(self.older).text)
        new = Checkpoint.from_text(parse_note(self.newer).text)
        return {
            "kind": self.kind,
            "why": self.why,
            "source": self.source,
            "log_key": self.log_key,
            "older": {"size": old.size, "root_hash": old.root_hash.hex()},
            "newer": {"size": new.size, "root_hash": new.root_hash.hex()},
            "consistency_proof": [h.hex() for h in self.proof],
        }


def open_signed(
    note: bytes,
    log: Ed25519Verifier,
    witnesses: Iterable[CosignatureV1Verifier] = (),
) -> SignedCheckpoint:
    """Verify a checkpoint note's log signature and any known witness's cosignature.

    Refusals: :class:`~samverka.protocol.checkpoint.NotSignedByLog` (no valid signature
    by the log key), :class:`ForgedCosignature` (a line by a known witness key that does
    not verify), another :class:`CheckpointError` (malformed, another origin), or a
    :class:`~samverka.protocol.note.NoteError` for a note that is not one.
    """
    witness_list = list(witnesses)
    try:
        verified = open_checkpoint(note, log, witnesses=witness_list)
    except InvalidNoteSignature as exc:
        if exc.name == log.name:
            raise NotSignedByLog(f"the log key's signature on the checkpoint fails: {exc}") from exc
        raise ForgedCosignature(
            f"the cosignature by {exc.name}+{exc.key_hash:08x} does not verify"
        ) from exc
    except UnverifiedNote as exc:
        raise NotSignedByLog(f"no signature by the log key {log.name}") from exc
    return SignedCheckpoint(
        note=bytes(note),
        verified=verified,
        log_key=log.vkey,
        witness_keys=tuple(w.vkey for w in witness_list),
    )


def conflict(
    held: SignedCheckpoint,
    other: SignedCheckpoint,
    proof: Sequence[bytes] | None,
    *,
    source: str = "hub",
) -> Evidence | None:
    """None when both checkpoints can be true (the smaller is a prefix of the larger, by
    ``proof``, RFC 9162 §2.1.4.2); else the evidence. ``proof`` None: the hub could not
    give one between two sizes it signed (itself evidence: a log that holds both trees
    can always prove it)."""
    older, newer = (held, other) if held.size <= other.size else (other, held)
    keys = tuple(dict.fromkeys((*held.witness_keys, *other.witness_keys)))

    def evidence(kind: str, why: str) -> Evidence:
        return Evidence(
            kind=kind,
            why=why,
            older=older.note,
            newer=newer.note,
            proof=tuple(proof or ()),
            log_key=held.log_key,
            witness_keys=keys,
            source=source,
        )

    if older.size == newer.size:
        if older.root_hash == newer.root_hash:
            return None
        return evidence(
            SAME_SIZE_DIFFERENT_ROOT,
            f"two checkpoints of {older.size} leaves with different roots "
            f"({older.root_hash.hex()[:16]}… and {newer.root_hash.hex()[:16]}…)",
        )
    if proof is None:
        return evidence(
            NO_CONSISTENCY_PROOF,
            f"the hub gives no consistency proof from {older.size} to {newer.size} leaves",
        )
    try:
        verify_consistency(older.size, newer.size, older.root_hash, newer.root_hash, proof)
    except ProofError as exc:
        return evidence(
            CONSISTENCY_PROOF_FAILED,
            f"the checkpoint of {newer.size} leaves does not extend the one of {older.size}: {exc}",
        )
    return None


def check_evidence(evidence: Evidence) -> bool:
    """True when ``evidence`` proves the log misbehaved: both notes verify under its log
    key and they cannot both be true (a third party needs nothing else)."""
    try:
        log = Ed25519Verifier.from_vkey(evidence.log_key)
        a = open_signed(evidence.older, log)
        b = open_signed(evidence.newer, log)
    except (CheckpointError, NoteError):
        return False
    proof = evidence.proof if evidence.kind != NO_CONSISTENCY_PROOF else None
    return conflict(a, b, proof) is not None


# --- Cosigning ----------------------------------------------------------------------------


def should_cosign(
    previous: SignedCheckpoint | None,
    candidate: SignedCheckpoint,
    consistency_proof: Sequence[bytes] | None,
) -> bool:
    """True when the witness may cosign ``candidate`` given the last checkpoint it
    cosigned. ``consistency_proof`` is the hub's proof from ``previous`` to
    ``candidate`` (None: it gave none).

    Raises :class:`StaleCheckpoint` for a candidate smaller than ``previous`` and
    :class:`InconsistentCheckpoint` (with the :class:`Evidence`) for one that cannot be
    true beside it. Both must already be :func:`open_signed` under the pinned log key.
    """
    if previous is None:
        return True
    if candidate.size < previous.size:
        raise StaleCheckpoint(
            f"checkpoint of {candidate.size} leaves, this node already cosigned {previous.size}"
        )
    found = conflict(previous, candidate, consistency_proof)
    if found is not None:
        raise InconsistentCheckpoint(found)
    return True


def cosign(candidate: SignedCheckpoint, signer: CosignatureV1Signer) -> bytes:
    """The note as received with this witness's cosignature line added (an earlier line
    of the same key replaced): what AddCosignature takes."""
    return sign_note(parse_note(candidate.note), signer)


# --- Acceptance ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """A checkpoint this node accepts, with the other kommuner whose fresh cosignature
    counted."""

    signed: SignedCheckpoint
    counted: frozenset[str] = field(default_factory=frozenset)

    @property
    def checkpoint(self) -> Checkpoint:
        return self.signed.checkpoint


def accept_checkpoint(
    note: bytes,
    log_verifier: Ed25519Verifier,
    witness_keys: Mapping[str, Sequence[bytes]],
    self_kommun: str,
    quorum: int,
    max_age: float,
    now: float,
    previous_accepted: SignedCheckpoint | None,
    consistency_proof: Sequence[bytes] | None,
) -> Accepted:
    """Accept a cosigned checkpoint from the hub, or refuse it with a reason.

    ``witness_keys``: each kommun's effective keys (kommunkod -> raw public keys);
    ``quorum``: the number of distinct other kommuner that must have cosigned it
    (:func:`effective_quorum`); ``max_age``/``now`` in POSIX seconds;
    ``consistency_proof``: the hub's proof from ``previous_accepted`` to this one.

    Order: the log's signature (``not_signed_by_log``), every known witness's line
    (``forged_cosignature``), then against the last accepted checkpoint
    (``stale_checkpoint``, ``inconsistent_checkpoint`` — a conflict proven by the log's
    signature alone is evidence whatever its cosignatures), then the quorum
    (``too_few_cosignatures``) and the cosignatures' age (``checkpoint_too_old``).
    """
    signed = open_signed(note, log_verifier, witness_verifiers(witness_keys))
    if previous_accepted is not None:
        if signed.size < previous_accepted.size:
            raise StaleCheckpoint(
                f"checkpoint of {signed.size} leaves, this node already accepted "
                f"{previous_accepted.size}"
            )
        found = conflict(previous_accepted, signed, consistency_proof)
        if found is not None:
            raise InconsistentCheckpoint(found)
    counted: set[str] = set()
    stale: set[str] = set()
    for cosig in signed.verified.cosignatures:
        code = witness_kommun(cosig.name)
        if code is None or code == self_kommun:
            continue
        if now - max_age <= cosig.timestamp <= now + MAX_FUTURE_SKEW_SECONDS:
            counted.add(code)
        else:
            stale.add(code)
    if len(counted) < quorum:
        if len(counted | stale) >= quorum:
            raise CheckpointTooOld(
                f"checkpoint of {signed.size} leaves: {len(counted)} of {quorum} "
                f"cosignatures needed are within {max_age:.0f} s of now"
            )
        raise TooFewCosignatures(
            f"checkpoint of {signed.size} leaves is cosigned by {len(counted)} other "
            f"kommuner ({', '.join(sorted(counted)) or 'none'}), {quorum} needed"
        )
    return Accepted(signed=signed, counted=frozenset(counted))
