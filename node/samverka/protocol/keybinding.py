"""Which signing keys a node takes for each kommun: the hub alone cannot bind a key.

Pure: no files, no network, no clock (callers pass ``now_ms``). The member directory is
the hub's word on which key belongs to which kommun. For a kommun a node already knows,
that word alone no longer binds a new key; what the node held before does, with what
the kommun itself signed. The node keeps a :class:`KeyState` (a binding per kommun and
key) and moves it forward with each directory version it adopts (:func:`update`):

1. **First sight.** The first directory that lists a kommun (at this node) binds the
   keys it lists at once, as the hub key is pinned at enrollment (trust on first use);
   a key listed with a rotation from another listed key comes after that key.
2. **Own kommun.** The node knows its own keys: those it holds are effective, any other
   key listed for it is refused here (``not_held``); the monitor objects to it.
3. **The hub** ("0000"): the keys the directory lists; the directory's signature by
   the pinned hub key binds them (hub key rotation is announced in the directory).
4. **Rotation.** A new key announced in ``Member.rotations`` by a
   ``SignedKeyRotation`` signed by an effective key of the kommun (listed, and in force
   at the rotation's time) and by the new key takes effect at once.
5. **Challenge.** Any other new key is pending ("in challenge"): its entries are
   refused (``key_in_challenge``) until it has stood ``challenge_period_ms`` since this
   node first saw a directory listing it proven in an accepted (cosigned) checkpoint
   (``proven``), with no valid objection.
6. **Objection.** A ``SignedKeyObjection`` by the kommun, signed by a key effective at
   this node no later than the objected key (any effective key while the objected key
   is pending), refuses the key for good (``key_objected``). Objections come from
   ``Member.objections``, from peers (``GetLogView``) and from the node itself; each is
   kept and read again on every update, so one that arrives before the key it objects
   to is listed still counts.

Order: each key that becomes effective gets the next ``order`` (keys bound together at
first sight share one). Objections of one round are judged against the bindings as they
were before that round, so the order in which a directory lists keys, rotations and
objections, or in which objections are learnt within one update, changes nothing.

Known limit: whoever holds a kommun's earlier key can object to its replacement, so a
stolen (not merely lost) key can block the kommun's new key; the council then revokes
the member and the kommun is admitted anew (docs/SECURITY.md).
"""

from __future__ import annotations

import base64
import binascii
import enum
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from samverka.errors import DirectoryRefused
from samverka.protocol.directory import (
    KeyObjection,
    KeyRotationStatement,
    checked_rotation,
    effective_revocation,
    parse_key_objection,
    rotation_new_key_id,
    rotation_old_key_id,
)
from samverka.protocol.kommuner import HUB_ORIGIN, is_origin
from samverka.protocol.signing import PublicKey, key_id
from samverka.protocol.verify import KeyStanding, TrustedKey
from samverka.v1 import directory_pb2

#: Objections kept per kommun that no key of it can be shown to have signed yet (a
#: peer could send any number; a real one is signed by a key this node will know).
MAX_UNPROVEN_OBJECTIONS_PER_KOMMUN = 32

#: The version of :meth:`KeyState.to_json`'s layout.
STATE_FORMAT = 1


class Standing(enum.StrEnum):
    EFFECTIVE = "effective"
    #: Listed, not yet effective: in its challenge period (or waiting for it to start).
    PENDING = "pending"
    #: Refused for good.
    REFUSED = "refused"


class Via(enum.StrEnum):
    """How a binding came to stand as it does."""

    FIRST_SIGHT = "first_sight"
    OWN = "own"
    HUB = "hub"
    ROTATION = "rotation"
    CHALLENGE = "challenge"
    #: Pending: listed without a rotation from an effective key.
    LISTED = "listed"
    OBJECTION = "objection"
    #: Refused at the node of the kommun itself: a key it does not hold.
    NOT_HELD = "not_held"


@dataclass(frozen=True, slots=True)
class Binding:
    """One key of one kommun as this node takes it."""

    kommunkod: str
    public_key: bytes
    standing: Standing
    via: Via
    #: Rank among the keys that became effective at this node (lower: earlier); None
    #: for a key never effective.
    order: int | None = None
    #: When this node first saw the key listed (ms); None for a key only objected to.
    listed_ms: int | None = None
    #: When this node first saw it listed in a directory proven in an accepted
    #: checkpoint (ms): its challenge period runs from here.
    proven_ms: int | None = None
    #: The objection that refused it (serialized SignedKeyObjection), and its signer.
    objection: bytes = b""
    objected_by: str = ""
    #: Hex of the first 16 bytes of SHA-256 over the key (computed once).
    key_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_id", key_id(self.public_key))

    def effective_at_ms(self, challenge_period_ms: int) -> int | None:
        """When a pending key takes effect unless objected to (None: not yet known)."""
        if self.standing is not Standing.PENDING or self.proven_ms is None:
            return None
        return self.proven_ms + challenge_period_ms

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kommunkod": self.kommunkod,
            "key_id": self.key_id,
            "public_key": _b64(self.public_key),
            "standing": self.standing.value,
            "via": self.via.value,
            "order": self.order,
            "listed_ms": self.listed_ms,
            "proven_ms": self.proven_ms,
        }
        if self.objection:
            data["objection"] = _b64(self.objection)
            data["objected_by"] = self.objected_by
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Binding:
        binding = cls(
            kommunkod=str(data["kommunkod"]),
            public_key=_unb64(data["public_key"]),
            standing=Standing(data["standing"]),
            via=Via(data["via"]),
            order=_opt_int(data.get("order")),
            listed_ms=_opt_int(data.get("listed_ms")),
            proven_ms=_opt_int(data.get("proven_ms")),
            objection=_unb64(data.get("objection", "")),
            objected_by=str(data.get("objected_by", "")),
        )
        if len(binding.public_key) != 32 or not is_origin(binding.kommunkod):
            raise ValueError(f"a binding of {binding.kommunkod[:10]!r} is malformed")
        if data.get("key_id", binding.key_id) != binding.key_id:
            raise ValueError(f"key id {data.get('key_id')!r} does not match its key")
        return binding


@dataclass(frozen=True, slots=True)
class KeyState:
    """Every binding this node holds, the objections it keeps, and the next order."""

    bindings: Mapping[tuple[str, str], Binding] = field(default_factory=dict)
    #: Serialized objections not (yet) attached to a binding, sorted, each once.
    objections: tuple[bytes, ...] = ()
    next_order: int = 1

    def binding(self, kommunkod: str, key_id: str) -> Binding | None:
        return self.bindings.get((kommunkod, key_id))

    def for_kommun(self, kommunkod: str) -> list[Binding]:
        return [b for (code, _), b in sorted(self.bindings.items()) if code == kommunkod]

    def standing(self, kommunkod: str, key_id: str) -> Standing | None:
        found = self.binding(kommunkod, key_id)
        return found.standing if found is not None else None

    def pending(self) -> list[Binding]:
        return [b for _, b in sorted(self.bindings.items()) if b.standing is Standing.PENDING]

    def refused(self) -> list[Binding]:
        return [b for _, b in sorted(self.bindings.items()) if b.standing is Standing.REFUSED]

    def known_objections(self) -> list[bytes]:
        """The objections that refused a key here (for peers: ``GetLogView``)."""
        return sorted({b.objection for b in self.bindings.values() if b.objection})

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "next_order": self.next_order,
            "bindings": [b.to_json() for _, b in sorted(self.bindings.items())],
            "objections": [_b64(o) for o in self.objections],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeyState:
        """Read :meth:`to_json`'s layout; ValueError (or KeyError/TypeError) if not it."""
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"key state format {data.get('format')!r}, expected {STATE_FORMAT}")
        bindings: dict[tuple[str, str], Binding] = {}
        for item in data["bindings"]:
            b = Binding.from_json(item)
            bindings[(b.kommunkod, b.key_id)] = b
        return cls(
            bindings=bindings,
            objections=tuple(sorted({_unb64(o) for o in data.get("objections", [])})),
            next_order=int(data["next_order"]),
        )


EMPTY = KeyState()


# -- moving the state forward -----------------------------------------------------------


def update(
    state: KeyState,
    directory: directory_pb2.Directory | None,
    *,
    now_ms: int,
    challenge_period_ms: int,
    objections: Iterable[directory_pb2.SignedKeyObjection | bytes] = (),
    proven: bool = False,
    own: str = "",
    held: Iterable[str] = (),
) -> KeyState:
    """The bindings after adopting ``directory`` (a verified one; None: no new one) and
    learning ``objections``, at ``now_ms``.

    ``proven``: ``directory`` is proven included in a checkpoint this node accepted,
    so the challenge period of each pending key it lists starts now (if not before).
    ``own`` and ``held``: this node's kommunkod and the key ids it holds for it (its
    signing key, a pending rotation's new key, keys it rotated from).
    """
    bindings = dict(state.bindings)
    order = state.next_order
    held_ids = frozenset(held)
    pool = set(state.objections)
    for raw in objections:
        pool.add(raw if isinstance(raw, bytes) else raw.SerializeToString(deterministic=True))
    listed: dict[tuple[str, str], directory_pb2.MemberKey] = {}
    members: list[directory_pb2.Member] = []
    if directory is not None:
        members = sorted(directory.members, key=lambda m: m.kommunkod)
        for m in members:
            for k in m.keys:
                listed[(m.kommunkod, k.key_id)] = k
            pool.update(o.SerializeToString(deterministic=True) for o in m.objections)
        known = {code for code, _ in bindings}
        for m in members:
            first_sight = m.kommunkod not in known
            order = _list_member(
                bindings, m, order, now_ms=now_ms, own=own, held=held_ids, first_sight=first_sight
            )
        if proven:
            for where in listed:
                b = bindings[where]
                if b.standing is Standing.PENDING and b.proven_ms is None:
                    bindings[where] = replace(b, proven_ms=now_ms)
    for _ in range(len(bindings) + 2):
        changed = False
        for m in members:
            if m.kommunkod in (HUB_ORIGIN, own):
                continue
            for rotation in sorted(m.rotations, key=lambda r: r.SerializeToString()):
                if _rotate(bindings, listed, m.kommunkod, rotation, order):
                    order += 1
                    changed = True
        if _object(bindings, pool):
            changed = True
        for where, b in sorted(bindings.items(), key=lambda kv: (kv[1].proven_ms or 0, kv[0])):
            due = b.effective_at_ms(challenge_period_ms)
            if due is not None and due <= now_ms:
                bindings[where] = replace(
                    b, standing=Standing.EFFECTIVE, via=Via.CHALLENGE, order=order
                )
                order += 1
                changed = True
        if not changed:
            break
    attached = {b.objection for b in bindings.values() if b.objection}
    return KeyState(
        bindings=bindings,
        objections=_kept(pool - attached),
        next_order=order,
    )


def _list_member(
    bindings: dict[tuple[str, str], Binding],
    member: directory_pb2.Member,
    order: int,
    *,
    now_ms: int,
    own: str,
    held: frozenset[str],
    first_sight: bool,
) -> int:
    """Bind the keys ``member`` lists that this node has not seen; the next order."""
    code = member.kommunkod
    keys = {bytes(k.public_key): k.key_id for k in member.keys}
    targets = _rotation_targets(member) if first_sight and code not in (own, HUB_ORIGIN) else set()
    used = False

    def bind(raw: bytes, standing: Standing, via: Via) -> None:
        nonlocal used
        effective = standing is Standing.EFFECTIVE
        used = used or effective
        bindings[(code, key_id(raw))] = Binding(
            code, raw, standing, via, order=order if effective else None, listed_ms=now_ms
        )

    for raw, kid in sorted(keys.items(), key=lambda kv: kv[1]):
        held_before = bindings.get((code, kid))
        if code == own and kid in held:
            # The node holds it: its own word beats anything (a key refused as not held
            # before the node switched to it, e.g. a backup restored).
            if (
                held_before is None
                or held_before.via is Via.NOT_HELD
                or (held_before.standing is Standing.PENDING)
            ):
                bind(raw, Standing.EFFECTIVE, Via.OWN)
            continue
        if held_before is not None:
            continue
        if code == HUB_ORIGIN:
            bind(raw, Standing.EFFECTIVE, Via.HUB)
        elif code == own:
            bind(raw, Standing.REFUSED, Via.NOT_HELD)
        elif first_sight and kid not in targets:
            bind(raw, Standing.EFFECTIVE, Via.FIRST_SIGHT)
        else:
            bind(raw, Standing.PENDING, Via.LISTED)
    return order + 1 if used else order


@lru_cache(maxsize=4096)
def _checked(signed_bytes: bytes, old_key: bytes) -> KeyRotationStatement | None:
    """checked_rotation, once per rotation and old key: a directory lists every approved
    rotation on each version, and first sight checks each twice (pure, so cached)."""
    signed = directory_pb2.SignedKeyRotation.FromString(signed_bytes)
    return checked_rotation(signed, PublicKey(old_key))


def _check_rotation(
    signed: directory_pb2.SignedKeyRotation, old_key: PublicKey
) -> KeyRotationStatement | None:
    return _checked(signed.SerializeToString(deterministic=True), old_key.raw)


def _rotation_targets(member: directory_pb2.Member) -> set[str]:
    """Keys ``member`` lists that a rotation from another listed key announces: at
    first sight they come after that key, so they are not bound as roots."""
    by_id = {k.key_id: PublicKey(bytes(k.public_key)) for k in member.keys}
    targets: set[str] = set()
    for signed in member.rotations:
        old = by_id.get(rotation_old_key_id(signed))
        statement = _check_rotation(signed, old) if old is not None else None
        if statement is not None and statement.new_key_id in by_id:
            targets.add(statement.new_key_id)
    return targets


def _rotate(
    bindings: dict[tuple[str, str], Binding],
    listed: Mapping[tuple[str, str], directory_pb2.MemberKey],
    code: str,
    signed: directory_pb2.SignedKeyRotation,
    order: int,
) -> bool:
    """Take a pending key at once when an effective key announced it; True if it did."""
    old_id = rotation_old_key_id(signed)
    old = bindings.get((code, old_id))
    old_listed = listed.get((code, old_id))
    if old is None or old.standing is not Standing.EFFECTIVE or old_listed is None:
        return False
    announced = rotation_new_key_id(signed)
    pending = bindings.get((code, announced)) if announced else None
    if pending is None or pending.standing is not Standing.PENDING:
        return False  # nothing to take (the usual case: checked without any signature)
    statement = _check_rotation(signed, PublicKey(old.public_key))
    if statement is None or statement.kommunkod != code:
        return False
    # The old key must have been in force when it announced the new one: a key the
    # kommun retired (or the hub revoked) cannot hand the kommun's name on.
    created = statement.rotation.created_at_ms
    if created < old_listed.valid_from_ms or (
        old_listed.revoked_at_ms and created >= old_listed.revoked_at_ms
    ):
        return False
    new = bindings.get((code, statement.new_key_id))
    if new is None or new.standing is not Standing.PENDING:
        return False
    bindings[(code, statement.new_key_id)] = replace(
        new, standing=Standing.EFFECTIVE, via=Via.ROTATION, order=order
    )
    return True


def _object(bindings: dict[tuple[str, str], Binding], pool: set[bytes]) -> bool:
    """Apply every valid objection in ``pool``, judged against the bindings as they
    stand before any of them; True if a binding changed."""
    before = dict(bindings)
    changed = False
    for raw in sorted(pool):
        try:
            objection = parse_key_objection(raw)
        except DirectoryRefused:
            pool.discard(raw)
            continue
        held = before.get((objection.kommunkod, objection.objected_key_id))
        if held is not None and held.objection == raw:
            continue  # already honoured (a directory lists it on every version)
        verdict = judge_objection(before, objection)
        if verdict is None:
            continue
        if verdict is False:
            pool.discard(raw)  # signed in the name of a known key that did not sign it
            continue
        code, target_id = objection.kommunkod, objection.objected_key_id
        target = bindings.get((code, target_id))
        if target is not None and target.standing is Standing.REFUSED:
            if not target.objection:
                bindings[(code, target_id)] = replace(
                    target, objection=raw, objected_by=objection.signer_key_id
                )
                changed = True
            continue
        base = target or Binding(
            code, bytes(objection.objection.objected_public_key), Standing.REFUSED, Via.OBJECTION
        )
        bindings[(code, target_id)] = replace(
            base,
            standing=Standing.REFUSED,
            via=Via.OBJECTION,
            objection=raw,
            objected_by=objection.signer_key_id,
        )
        changed = True
    return changed


def judge_objection(
    bindings: Mapping[tuple[str, str], Binding], objection: KeyObjection
) -> bool | None:
    """Whether ``objection`` counts against the bindings: True (it does), False (it
    never will: a known key of the kommun is named but did not sign it, or it objects
    to its own signer), None (not now: its signer is not effective here, or signs after
    the key it objects to)."""
    code = objection.kommunkod
    signer = bindings.get((code, objection.signer_key_id))
    if signer is None:
        return None
    if not objection.verifies_with(PublicKey(signer.public_key)):
        return False
    if objection.objected_key_id == signer.key_id:
        return False
    if signer.standing is not Standing.EFFECTIVE or signer.order is None:
        return None
    target = bindings.get((code, objection.objected_key_id))
    if (
        target is not None
        and target.standing is Standing.EFFECTIVE
        and target.order is not None
        and signer.order > target.order
    ):
        return None  # a later key does not disown an earlier one
    return True


def _kept(pool: set[bytes]) -> tuple[bytes, ...]:
    """The objections to keep for later updates: at most a few per kommun that no known
    key signed yet (the smallest, so the choice does not depend on arrival order)."""
    per_kommun: dict[str, list[bytes]] = {}
    for raw in sorted(pool):
        try:
            objection = parse_key_objection(raw)
        except DirectoryRefused:
            continue
        per_kommun.setdefault(objection.kommunkod, []).append(raw)
    kept: list[bytes] = []
    for _, raws in sorted(per_kommun.items()):
        kept.extend(raws[:MAX_UNPROVEN_OBJECTIONS_PER_KOMMUN])
    return tuple(sorted(kept))


# -- what the state means for entries -----------------------------------------------------


def trusted_keys(
    state: KeyState,
    directory: directory_pb2.Directory,
    *,
    now_ms: int,
    challenge_period_ms: int,
) -> list[TrustedKey]:
    """Every key ``directory`` lists, with its window from the directory and its
    standing from ``state``: what ``verify_entry`` checks entries against.

    A key the state has not seen (the state was not updated with this directory) is in
    challenge; a pending key whose period has run out meanwhile is effective (the
    next update makes it so for good).
    """
    out: list[TrustedKey] = []
    for m in sorted(directory.members, key=lambda m: m.kommunkod):
        for k in m.keys:
            b = state.binding(m.kommunkod, k.key_id)
            standing, note = _standing(b, m.kommunkod, now_ms, challenge_period_ms)
            out.append(
                TrustedKey(
                    origin=m.kommunkod,
                    public_key=PublicKey(bytes(k.public_key)),
                    valid_from_ms=k.valid_from_ms,
                    revoked_at_ms=effective_revocation(m, k),
                    standing=standing,
                    standing_note=note,
                )
            )
    return out


def _standing(
    b: Binding | None, code: str, now_ms: int, challenge_period_ms: int
) -> tuple[KeyStanding, str]:
    period = _duration(challenge_period_ms)
    if b is None:
        return KeyStanding.IN_CHALLENGE, "is not yet bound by this node (its key state is behind)"
    if b.standing is Standing.EFFECTIVE:
        return KeyStanding.EFFECTIVE, ""
    if b.standing is Standing.REFUSED:
        if b.via is Via.NOT_HELD and not b.objection:
            return KeyStanding.OBJECTED, (
                "is not a key this node holds for its own kommun: the hub listed it on its own"
            )
        return KeyStanding.OBJECTED, (
            f"was objected to by {code} (an objection signed with its key {b.objected_by})"
        )
    due = b.effective_at_ms(challenge_period_ms)
    if due is not None and due <= now_ms:
        return KeyStanding.EFFECTIVE, ""
    what = (
        f"was listed by the hub without an announcement under an earlier key of {code}; "
        f"it takes effect after standing {period} in a checkpoint cosigned by other kommuner, "
        f"unless {code} objects"
    )
    if due is None:
        return KeyStanding.IN_CHALLENGE, what + " (no accepted checkpoint holds it yet)"
    return KeyStanding.IN_CHALLENGE, what + f" (at {_utc(due)} at the earliest)"


# -- the node's own kommun ----------------------------------------------------------------


def keys_not_held(
    directory: directory_pb2.Directory, own: str, held: Iterable[str]
) -> list[directory_pb2.MemberKey]:
    """The keys ``directory`` lists for ``own`` that are not among ``held``: keys the
    hub bound to this node's kommun that the node never asked for."""
    held_ids = set(held)
    return [
        k
        for m in directory.members
        if m.kommunkod == own
        for k in m.keys
        if k.key_id not in held_ids
    ]


# -- helpers --------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from exc


def _opt_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _duration(ms: int) -> str:
    if ms % 3_600_000 == 0:
        return f"{ms // 3_600_000} h"
    if ms % 60_000 == 0:
        return f"{ms // 60_000} min"
    return f"{ms / 1000:g} s"


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
