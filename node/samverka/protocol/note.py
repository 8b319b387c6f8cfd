"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, and C2SP
tlog-cosignature/v1 (https://c2sp.org/tlog-cosignature), the witnesses' timestamped
Ed25519 cosignatures.

Pure: bytes in, bytes out; the clock a cosigner stamps with is injected. Modelled on Go's
``golang.org/x/mod/sumdb/note`` and ``github.com/transparency-dev/formats/note``:

- a note is UTF-8 text ending in a newline, a blank line, then one or more signature
  lines ``— <name> base64(key hash (4) || signature)``;
- :func:`open_note` parses a note strictly (size, number of signatures, names, canonical
  base64) and verifies it against known verifiers: a signature by a known key must verify
  (else the whole note is refused), signatures by unknown keys are kept, untrusted, and a
  note with no verified signature is refused;
- keys are ``<name>+<key hash hex>+<base64(type || key)>`` (verifier) and
  ``PRIVATE+KEY+<name>+<key hash hex>+<base64(type || seed)>`` (signer), type 0x01 for a
  note signature, 0x04 for a cosignature/v1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from samverka.errors import SamverkaError

#: Signature type of an Ed25519 note signature (signed-note §Signature types).
ALG_ED25519 = 0x01
#: Signature type of a timestamped Ed25519 checkpoint cosignature (tlog-cosignature).
ALG_COSIGNATURE_V1 = 0x04

#: Length of an Ed25519 signature and of a key or seed.
ED25519_SIGNATURE_SIZE = 64
ED25519_KEY_SIZE = 32

#: Header line of the message a cosignature/v1 signs (its domain separation).
COSIGNATURE_V1_HEADER = b"cosignature/v1\n"

#: A cosignature's timestamp MUST NOT exceed 2^63 - 1 (tlog-cosignature §Format).
MAX_TIMESTAMP = (1 << 63) - 1

_SIG_PREFIX = "\u2014 "  # em dash, space
_KEY_HASH_SIZE = 4
_TIMESTAMP_SIZE = 8


@dataclass(frozen=True, slots=True)
class NoteLimits:
    """Bounds on an untrusted note, checked before anything is decoded or verified.

    The spec asks verifiers to accept at least 16 signatures; 64 leaves room for a log
    key, a rotation key and every kommun's cosignature of a large federation.
    """

    max_bytes: int = 64 * 1024
    max_signatures: int = 64


DEFAULT_LIMITS = NoteLimits()


# --- Errors -------------------------------------------------------------------------------


class NoteError(SamverkaError):
    """Base of the refusals of a note or a key; ``reason`` is machine-readable."""

    reason = "note_invalid"


class MalformedNote(NoteError):
    """Not a signed note: bad UTF-8, a control character, no blank line before the
    signatures, a signature line that is not ``— <name> <base64>``."""

    reason = "malformed_note"


class NoteTooLarge(NoteError):
    """The note is longer than the configured limit."""

    reason = "note_too_large"


class TooManySignatures(NoteError):
    """The note has more signature lines than the configured limit."""

    reason = "too_many_signatures"


class InvalidKeyName(NoteError):
    """A key name that is empty or holds a space or a plus."""

    reason = "invalid_key_name"


class MalformedKey(NoteError):
    """A verifier or signer key string that is not ``<name>+<hash>+<base64>``, or whose
    key material has the wrong length."""

    reason = "malformed_key"


class UnknownKeyType(NoteError):
    """A key of a signature type this code does not implement (or not the one expected)."""

    reason = "unknown_key_type"


class KeyHashMismatch(NoteError):
    """A key string whose key hash is not the hash of its name and key."""

    reason = "key_hash_mismatch"


class AmbiguousVerifier(NoteError):
    """Two known verifiers with the same name and key hash."""

    reason = "ambiguous_verifier"


class InvalidNoteSignature(NoteError):
    """A signature by a known key that does not verify: the note is refused."""

    reason = "invalid_signature"

    def __init__(self, name: str, key_hash: int) -> None:
        super().__init__(f"invalid signature for key {name}+{key_hash:08x}")
        self.name = name
        self.key_hash = key_hash


class UnverifiedNote(NoteError):
    """A well-formed note that no known key has signed; the parsed note rides along."""

    reason = "unverified_note"

    def __init__(self, note: Note) -> None:
        super().__init__("note has no verifiable signatures")
        self.note = note


# --- Keys ---------------------------------------------------------------------------------


def is_valid_name(name: str) -> bool:
    """A key name is non-empty and has no Unicode space and no plus (signed-note §Format)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_hash(name: str, typed_key: bytes) -> int:
    """SHA-256(name || 0x0A || type || public key)[:4] as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + typed_key).digest()
    return int.from_bytes(digest[:_KEY_HASH_SIZE], "big")


@runtime_checkable
class Verifier(Protocol):
    """Verifies signatures by one key, identified by its name and key hash."""

    @property
    def name(self) -> str: ...

    @property
    def key_hash(self) -> int: ...

    def verify(self, text: bytes, signature: bytes) -> bool:
        """True if ``signature`` (without the 4-byte key hash) is valid for ``text``."""
        ...


@runtime_checkable
class Signer(Protocol):
    """Signs note texts with one key, identified by its name and key hash."""

    @property
    def name(self) -> str: ...

    @property
    def key_hash(self) -> int: ...

    def sign(self, text: bytes) -> bytes:
        """The signature of ``text`` (without the 4-byte key hash)."""
        ...


def _b64decode_canonical(s: str) -> bytes:
    """Standard base64 that must be exactly what encoding the result gives back."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError("not base64") from exc
    if base64.b64encode(raw).decode("ascii") != s:
        raise ValueError("not canonical base64")
    return raw


def _parse_key_hash(hex8: str) -> int:
    if len(hex8) != 8 or any(c not in "0123456789abcdef" for c in hex8):
        raise MalformedKey("a key hash is 8 lowercase hex digits")
    return int(hex8, 16)


def _split_vkey(vkey: str) -> tuple[str, int, int, bytes]:
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise MalformedKey("a verifier key is <name>+<hash>+<base64>")
    name, hex8, b64 = parts
    if not is_valid_name(name):
        raise InvalidKeyName(f"invalid key name {name!r}")
    declared = _parse_key_hash(hex8)
    try:
        typed = _b64decode_canonical(b64)
    except ValueError as exc:
        raise MalformedKey("a verifier key's key material is not base64") from exc
    if not typed:
        raise MalformedKey("a verifier key has no key material")
    return name, declared, typed[0], typed


def _split_skey(skey: str) -> tuple[str, int, int, bytes]:
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise MalformedKey("a signer key is PRIVATE+KEY+<name>+<hash>+<base64>")
    name, hex8, b64 = parts[2:]
    if not is_valid_name(name):
        raise InvalidKeyName(f"invalid key name {name!r}")
    declared = _parse_key_hash(hex8)
    try:
        typed = _b64decode_canonical(b64)
    except ValueError as exc:
        raise MalformedKey("a signer key's key material is not base64") from exc
    if not typed:
        raise MalformedKey("a signer key has no key material")
    return name, declared, typed[0], typed[1:]


def _vkey_string(name: str, alg: int, public: bytes) -> str:
    typed = bytes([alg]) + public
    return f"{name}+{key_hash(name, typed):08x}+{base64.b64encode(typed).decode()}"


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def _ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except _CryptoInvalidSignature:
        return False
    return True


class _Ed25519Key:
    """Shared by the four key classes: a name, a type byte and a 32-byte public key."""

    alg: int = ALG_ED25519
    __slots__ = ("_hash", "_name", "_public")

    def __init__(self, name: str, public: bytes) -> None:
        if not is_valid_name(name):
            raise InvalidKeyName(f"invalid key name {name!r}")
        if len(public) != ED25519_KEY_SIZE:
            raise MalformedKey(f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes")
        self._name = name
        self._public = bytes(public)
        self._hash = key_hash(name, bytes([self.alg]) + self._public)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_hash(self) -> int:
        return self._hash

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._public

    @property
    def vkey(self) -> str:
        """The verifier key string ``<name>+<hash>+<base64(type || key)>``."""
        return _vkey_string(self._name, self.alg, self._public)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name}+{self._hash:08x})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Ed25519Key)
            and type(other) is type(self)
            and (other._name, other._public) == (self._name, self._public)
        )

    def __hash__(self) -> int:
        return hash((type(self), self._name, self._public))

    @classmethod
    def _from_vkey_parts(cls, vkey: str) -> tuple[str, bytes]:
        name, declared, alg, typed = _split_vkey(vkey)
        if alg != cls.alg:
            raise UnknownKeyType(f"key type 0x{alg:02x}, expected 0x{cls.alg:02x}")
        if len(typed) != 1 + ED25519_KEY_SIZE:
            raise MalformedKey(f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes")
        if key_hash(name, typed) != declared:
            raise KeyHashMismatch(f"key hash {declared:08x} is not that of {name}'s key")
        return name, typed[1:]


class Ed25519Verifier(_Ed25519Key):
    """Verifies Ed25519 note signatures (type 0x01)."""

    __slots__ = ()

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        """Parse ``<name>+<hash>+<base64(0x01 || key)>``; the hash must match."""
        return cls(*cls._from_vkey_parts(vkey))

    def verify(self, text: bytes, signature: bytes) -> bool:
        return _ed25519_verify(self._public, text, signature)


class CosignatureV1Verifier(_Ed25519Key):
    """Verifies a witness's tlog-cosignature/v1 (type 0x04): ``signature`` is
    timestamp (uint64 BE) || Ed25519 over ``cosignature/v1\\ntime <t>\\n`` + text."""

    alg = ALG_COSIGNATURE_V1
    __slots__ = ()

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureV1Verifier:
        """Parse ``<name>+<hash>+<base64(0x04 || key)>``; the hash must match."""
        return cls(*cls._from_vkey_parts(vkey))

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != _TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        message = cosignature_v1_message(timestamp, text)
        return _ed25519_verify(self._public, message, signature[_TIMESTAMP_SIZE:])


class _Ed25519SignerBase(_Ed25519Key):
    __slots__ = ("_key",)

    def __init__(self, name: str, seed: bytes) -> None:
        if len(seed) != ED25519_KEY_SIZE:
            raise MalformedKey(f"an Ed25519 seed is {ED25519_KEY_SIZE} bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(bytes(seed))
        super().__init__(name, _raw_public(self._key))

    @property
    def skey(self) -> str:
        """The signer key string ``PRIVATE+KEY+<name>+<hash>+<base64(type || seed)>``;
        a secret."""
        typed = bytes([self.alg]) + _raw_seed(self._key)
        return f"PRIVATE+KEY+{self._name}+{self._hash:08x}+{base64.b64encode(typed).decode()}"

    @classmethod
    def _from_skey_parts(cls, skey: str) -> tuple[str, bytes]:
        name, declared, alg, seed = _split_skey(skey)
        if alg != cls.alg:
            raise UnknownKeyType(f"key type 0x{alg:02x}, expected 0x{cls.alg:02x}")
        if len(seed) != ED25519_KEY_SIZE:
            raise MalformedKey(f"an Ed25519 seed is {ED25519_KEY_SIZE} bytes")
        # The hash is of the public key: derive it, then compare.
        public = _raw_public(Ed25519PrivateKey.from_private_bytes(seed))
        if key_hash(name, bytes([alg]) + public) != declared:
            raise KeyHashMismatch(f"key hash {declared:08x} is not that of {name}'s key")
        return name, seed

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name}+{self._hash:08x}, <secret>)"


class Ed25519Signer(_Ed25519SignerBase):
    """Signs notes with an Ed25519 key (type 0x01)."""

    __slots__ = ()

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519Signer:
        return cls(*cls._from_skey_parts(skey))

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        return cls(name, _raw_seed(Ed25519PrivateKey.generate()))

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self._name, self._public)

    def sign(self, text: bytes) -> bytes:
        return self._key.sign(text)


class CosignatureV1Signer(_Ed25519SignerBase):
    """A witness's key: cosigns checkpoints with tlog-cosignature/v1 (type 0x04).

    ``clock`` gives the POSIX time to stamp (injected; defaults to the system clock).
    """

    alg = ALG_COSIGNATURE_V1
    __slots__ = ("_clock",)

    def __init__(self, name: str, seed: bytes, *, clock: Callable[[], int] | None = None) -> None:
        super().__init__(name, seed)
        self._clock: Callable[[], int] = clock or (lambda: int(time.time()))

    @classmethod
    def from_skey(cls, skey: str, *, clock: Callable[[], int] | None = None) -> CosignatureV1Signer:
        name, seed = cls._from_skey_parts(skey)
        return cls(name, seed, clock=clock)

    @classmethod
    def generate(cls, name: str, *, clock: Callable[[], int] | None = None) -> CosignatureV1Signer:
        return cls(name, _raw_seed(Ed25519PrivateKey.generate()), clock=clock)

    def verifier(self) -> CosignatureV1Verifier:
        return CosignatureV1Verifier(self._name, self._public)

    def sign(self, text: bytes) -> bytes:
        return self.sign_at(self._clock(), text)

    def sign_at(self, timestamp: int, text: bytes) -> bytes:
        """timestamp (uint64 BE) || Ed25519(cosignature_v1_message(timestamp, text))."""
        if not 0 <= timestamp <= MAX_TIMESTAMP:
            raise ValueError(f"cosignature timestamp {timestamp} out of range")
        signature = self._key.sign(cosignature_v1_message(timestamp, text))
        return timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature


def cosignature_v1_message(timestamp: int, text: bytes) -> bytes:
    """The message a cosignature/v1 signs: ``cosignature/v1\\ntime <t>\\n`` + checkpoint
    body (the whole note text, final newline included, no signature lines)."""
    return COSIGNATURE_V1_HEADER + b"time %d\n" % timestamp + text


def verifier_from_vkey(vkey: str) -> Ed25519Verifier | CosignatureV1Verifier:
    """A note verifier (0x01) or a cosignature verifier (0x04), by the key's type byte."""
    _, _, alg, _ = _split_vkey(vkey)
    if alg == ALG_ED25519:
        return Ed25519Verifier.from_vkey(vkey)
    if alg == ALG_COSIGNATURE_V1:
        return CosignatureV1Verifier.from_vkey(vkey)
    raise UnknownKeyType(f"unknown key type 0x{alg:02x}")


class Verifiers:
    """A set of known verifiers, looked up by (name, key hash). Two verifiers with the
    same name and hash are refused when the set is made (Go's ambiguousVerifierError)."""

    __slots__ = ("_by_id",)

    def __init__(self, verifiers: Iterable[Verifier] = ()) -> None:
        by_id: dict[tuple[str, int], Verifier] = {}
        for v in verifiers:
            ident = (v.name, v.key_hash)
            if ident in by_id and by_id[ident] != v:
                raise AmbiguousVerifier(f"two keys named {v.name}+{v.key_hash:08x}")
            by_id[ident] = v
        self._by_id: Mapping[tuple[str, int], Verifier] = by_id

    def get(self, name: str, key_hash: int) -> Verifier | None:
        return self._by_id.get((name, key_hash))

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Verifier]:
        return iter(self._by_id.values())


# --- Notes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the key's name and hash, and the signature after the hash."""

    name: str
    key_hash: int
    signature: bytes

    @property
    def line(self) -> str:
        """``— <name> base64(key hash || signature)``, without the newline."""
        raw = self.key_hash.to_bytes(_KEY_HASH_SIZE, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(raw).decode()}"

    def cosignature_timestamp(self) -> int:
        """The timestamp of a cosignature/v1 (its first 8 bytes); not a proof of anything
        until the signature has been verified."""
        if len(self.signature) != _TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
            raise MalformedNote("not a cosignature/v1: wrong length")
        return int.from_bytes(self.signature[:_TIMESTAMP_SIZE], "big")


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text (ending in a newline) with its signatures: ``signatures`` verified by
    known keys, ``unverified`` by keys the reader did not know (kept, never trusted)."""

    text: str
    signatures: tuple[NoteSignature, ...] = ()
    unverified: tuple[NoteSignature, ...] = ()

    def signed_by(self, name: str, key_hash: int) -> bool:
        return any(s.name == name and s.key_hash == key_hash for s in self.signatures)


def parse_note(msg: bytes, *, limits: NoteLimits = DEFAULT_LIMITS) -> Note:
    """Parse a signed note strictly without verifying anything: every signature is put in
    ``unverified``. Identical repeated lines are dropped."""
    if len(msg) > limits.max_bytes:
        raise NoteTooLarge(f"note of {len(msg)} bytes, limit {limits.max_bytes}")
    try:
        decoded = msg.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise MalformedNote("note is not valid UTF-8") from exc
    if any(c < " " and c != "\n" for c in decoded):
        raise MalformedNote("note holds a control character")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise MalformedNote("no blank line before the signatures")
    text, sig_block = decoded[: split + 1], decoded[split + 2 :]
    if not sig_block or not sig_block.endswith("\n"):
        raise MalformedNote("the signature block is empty or does not end in a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > limits.max_signatures:
        raise TooManySignatures(f"{len(lines)} signatures, limit {limits.max_signatures}")
    seen: set[str] = set()
    sigs: list[NoteSignature] = []
    for line in lines:
        sig = _parse_signature_line(line)
        if line in seen:
            continue
        seen.add(line)
        sigs.append(sig)
    return Note(text=text, unverified=tuple(sigs))


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNote("a signature line starts with an em dash and a space")
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not is_valid_name(name):
        raise MalformedNote(f"signature line with an invalid key name {name!r}")
    try:
        raw = _b64decode_canonical(b64)
    except ValueError as exc:
        raise MalformedNote(f"signature by {name} is not canonical base64") from exc
    if len(raw) < _KEY_HASH_SIZE + 1:
        raise MalformedNote(f"signature by {name} is too short")
    return NoteSignature(
        name=name,
        key_hash=int.from_bytes(raw[:_KEY_HASH_SIZE], "big"),
        signature=raw[_KEY_HASH_SIZE:],
    )


def open_note(
    msg: bytes,
    known: Verifiers | Iterable[Verifier],
    *,
    limits: NoteLimits = DEFAULT_LIMITS,
) -> Note:
    """Parse ``msg`` and verify it with the ``known`` keys (signed-note §Signatures).

    Raises :class:`InvalidNoteSignature` when a known key's signature fails,
    :class:`UnverifiedNote` when no known key signed, or a parse error. A key that signs
    twice counts once.
    """
    verifiers = known if isinstance(known, Verifiers) else Verifiers(known)
    parsed = parse_note(msg, limits=limits)
    text = parsed.text.encode()
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    done: set[tuple[str, int]] = set()
    for sig in parsed.unverified:
        v = verifiers.get(sig.name, sig.key_hash)
        if v is None:
            unverified.append(sig)
            continue
        if (sig.name, sig.key_hash) in done:
            continue
        if not v.verify(text, sig.signature):
            raise InvalidNoteSignature(sig.name, sig.key_hash)
        done.add((sig.name, sig.key_hash))
        verified.append(sig)
    note = Note(text=parsed.text, signatures=tuple(verified), unverified=tuple(unverified))
    if not verified:
        raise UnverifiedNote(note)
    return note


def format_note(text: str, signatures: Iterable[NoteSignature]) -> bytes:
    """The encoded note: text, a blank line, one line per signature."""
    _check_text(text)
    sigs = list(signatures)
    if not sigs:
        raise MalformedNote("a signed note has at least one signature")
    for s in sigs:
        if not is_valid_name(s.name):
            raise InvalidKeyName(f"invalid key name {s.name!r}")
    lines = [s.line for s in sigs]
    return (text + "\n" + "".join(line + "\n" for line in lines)).encode()


def sign_note(note: Note | str, *signers: Signer) -> bytes:
    """Sign the note text with ``signers`` and encode it. The note's existing signatures
    (verified, then unverified) come first, except those by a key that signs anew."""
    if isinstance(note, str):
        note = Note(text=note)
    _check_text(note.text)
    text = note.text.encode()
    fresh: list[NoteSignature] = []
    for s in signers:
        if not is_valid_name(s.name):
            raise InvalidKeyName(f"invalid signer name {s.name!r}")
        fresh.append(NoteSignature(s.name, s.key_hash, s.sign(text)))
    replaced = {(s.name, s.key_hash) for s in fresh}
    kept = [s for s in (*note.signatures, *note.unverified) if (s.name, s.key_hash) not in replaced]
    return format_note(note.text, [*kept, *fresh])


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedNote("a note's text is not encodable as UTF-8") from exc
    if not text.endswith("\n"):
        raise MalformedNote("a note's text ends in a newline")
    if any(c < " " and c != "\n" for c in text):
        raise MalformedNote("a note's text holds a control character")
