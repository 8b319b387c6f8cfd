"""Key binding (samverka.protocol.keybinding): which keys a node takes for each kommun.

The hub alone cannot bind a key to a kommun the node knows: a new key takes effect at
once only when announced under an effective key (rotation), else after standing the
challenge period in an accepted checkpoint, unobjected; an objection by an earlier key
refuses it for good. Pure: directories and objections built here, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st
from samverka.errors import EntryRefused, Reason
from samverka.membership.enrollment import build_key_rotation
from samverka.protocol.directory import build_key_objection, hub_member
from samverka.protocol.keybinding import (
    EMPTY,
    MAX_UNPROVEN_OBJECTIONS_PER_KOMMUN,
    KeyState,
    Standing,
    Via,
    keys_not_held,
    trusted_keys,
    update,
)
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.signing import SigningKey
from samverka.protocol.verify import KeyRing, KeyStanding, MemoryFeedState, verify_entry
from samverka.v1 import directory_pb2

ORSA, TIBRO, LEKSAND = "2034", "1472", "2029"
HOUR = 3_600_000
PERIOD = 24 * HOUR
T0 = factories.FIXED_NOW_MS


# -- building directories ---------------------------------------------------------------


@dataclass
class Kommun:
    """A kommun's listing as the hub would write it: keys, rotations, objections."""

    code: str
    keys: list[SigningKey] = field(default_factory=list)
    rotations: list[directory_pb2.SignedKeyRotation] = field(default_factory=list)
    objections: list[directory_pb2.SignedKeyObjection] = field(default_factory=list)
    revoked: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls, code: str) -> Kommun:
        return cls(code, [SigningKey.generate()])

    def rotate(self, *, at_ms: int = T0, old: SigningKey | None = None) -> SigningKey:
        new = SigningKey.generate()
        self.rotations.append(
            build_key_rotation(old or self.keys[-1], new, kommunkod=self.code, created_at_ms=at_ms)
        )
        self.keys.append(new)
        return new

    def plant(self) -> SigningKey:
        """A key the hub lists for this kommun on its own."""
        key = SigningKey.generate()
        self.keys.append(key)
        return key

    def member(self) -> directory_pb2.Member:
        return directory_pb2.Member(
            kommunkod=self.code,
            status=directory_pb2.MEMBER_STATUS_ACTIVE,
            keys=[
                directory_pb2.MemberKey(
                    public_key=k.public.raw,
                    key_id=k.key_id,
                    revoked_at_ms=self.revoked.get(k.key_id, 0),
                )
                for k in self.keys
            ],
            rotations=self.rotations,
            objections=self.objections,
        )


HUB_KEY = SigningKey.generate()


def directory(*kommuner: Kommun, version: int = 1) -> directory_pb2.Directory:
    members = [hub_member(HUB_KEY.public), *(k.member() for k in kommuner)]
    return directory_pb2.Directory(version=version, members=members)


def objection(
    signer: SigningKey, objected: SigningKey, *, code: str = ORSA, at_ms: int = T0
) -> directory_pb2.SignedKeyObjection:
    return build_key_objection(
        signer, kommunkod=code, objected=objected.public, created_at_ms=at_ms
    )


def step(
    state: KeyState,
    d: directory_pb2.Directory | None,
    *,
    now: int = T0,
    proven: bool = False,
    objections: Iterable[directory_pb2.SignedKeyObjection] = (),
    own: str = "",
    held: Sequence[SigningKey] = (),
) -> KeyState:
    return update(
        state,
        d,
        now_ms=now,
        challenge_period_ms=PERIOD,
        objections=objections,
        proven=proven,
        own=own,
        held=[k.key_id for k in held],
    )


def standing(state: KeyState, key: SigningKey, code: str = ORSA) -> Standing | None:
    return state.standing(code, key.key_id)


def entry_verdict(
    state: KeyState, d: directory_pb2.Directory, key: SigningKey, *, now: int = T0
) -> Reason | None:
    """What verify_entry says of an Orsa entry signed with ``key`` (None: accepted)."""
    ring = KeyRing(trusted_keys(state, d, now_ms=now, challenge_period_ms=PERIOD))
    signed = factories.FeedWriter(ORSA, key).publish(record_id="r", origin=ORSA)
    try:
        verify_entry(signed, ring, MemoryFeedState(), now_ms=T0 + 10 * PERIOD)
    except EntryRefused as refused:
        return refused.reason
    return None


def known_orsa() -> tuple[Kommun, KeyState]:
    """Orsa with one key, as a node holds it after its first directory."""
    orsa = Kommun.new(ORSA)
    return orsa, step(EMPTY, directory(orsa))


# -- first sight, own kommun, the hub -----------------------------------------------------


def test_the_first_directory_binds_a_kommuns_keys_at_once() -> None:
    orsa = Kommun.new(ORSA)
    orsa.keys.append(SigningKey.generate())  # two keys, no rotation: both taken on first use
    d = directory(orsa)
    state = step(EMPTY, d)
    bindings = state.for_kommun(ORSA)
    assert {b.standing for b in bindings} == {Standing.EFFECTIVE}
    assert {b.via for b in bindings} == {Via.FIRST_SIGHT}
    assert len({b.order for b in bindings}) == 1
    assert entry_verdict(state, d, orsa.keys[0]) is None
    assert entry_verdict(state, d, orsa.keys[1]) is None


def test_at_first_sight_a_rotated_key_comes_after_the_key_that_announced_it() -> None:
    orsa = Kommun.new(ORSA)
    second = orsa.rotate()
    third = orsa.rotate()
    state = step(EMPTY, directory(orsa))
    first = state.binding(ORSA, orsa.keys[0].key_id)
    b2, b3 = state.binding(ORSA, second.key_id), state.binding(ORSA, third.key_id)
    assert first is not None and b2 is not None and b3 is not None
    assert (first.via, b2.via, b3.via) == (Via.FIRST_SIGHT, Via.ROTATION, Via.ROTATION)
    assert first.order is not None and b2.order is not None and b3.order is not None
    assert first.order < b2.order < b3.order


def test_the_hubs_keys_are_bound_by_the_directory_itself() -> None:
    state = step(EMPTY, directory())
    hub = state.binding(HUB_ORIGIN, HUB_KEY.key_id)
    assert hub is not None and (hub.standing, hub.via) == (Standing.EFFECTIVE, Via.HUB)


def test_own_kommun_keys_it_holds_are_effective_any_other_is_refused() -> None:
    orsa = Kommun.new(ORSA)
    planted = orsa.plant()
    d = directory(orsa)
    state = step(EMPTY, d, own=ORSA, held=[orsa.keys[0]])
    assert standing(state, orsa.keys[0]) is Standing.EFFECTIVE
    b = state.binding(ORSA, planted.key_id)
    assert b is not None and (b.standing, b.via) == (Standing.REFUSED, Via.NOT_HELD)
    assert entry_verdict(state, d, planted) is Reason.KEY_OBJECTED
    [ring_key] = [
        k
        for k in trusted_keys(state, d, now_ms=T0, challenge_period_ms=PERIOD)
        if k.key_id == planted.key_id
    ]
    assert "not a key this node holds" in ring_key.standing_note
    # Not held now, held later (a backup of keys restored): its own word wins.
    again = step(state, d, own=ORSA, held=[orsa.keys[0], planted])
    assert standing(again, planted) is Standing.EFFECTIVE


def test_keys_not_held_lists_only_the_own_kommuns_foreign_keys() -> None:
    orsa, tibro = Kommun.new(ORSA), Kommun.new(TIBRO)
    planted = orsa.plant()
    found = keys_not_held(directory(orsa, tibro), ORSA, [orsa.keys[0].key_id])
    assert [k.key_id for k in found] == [planted.key_id]
    assert keys_not_held(directory(orsa, tibro), TIBRO, [tibro.keys[0].key_id]) == []


# -- a new key for a known kommun ------------------------------------------------------------


def test_a_key_the_hub_lists_on_its_own_is_in_challenge_and_its_entries_refused() -> None:
    orsa, state = known_orsa()
    planted = orsa.plant()
    d = directory(orsa, version=2)
    state = step(state, d, now=T0 + HOUR)
    b = state.binding(ORSA, planted.key_id)
    assert b is not None and (b.standing, b.via, b.listed_ms) == (
        Standing.PENDING,
        Via.LISTED,
        T0 + HOUR,
    )
    assert entry_verdict(state, d, planted) is Reason.KEY_IN_CHALLENGE
    assert entry_verdict(state, d, orsa.keys[0]) is None  # the honest key still signs
    # Without an accepted checkpoint that holds it, no time is enough.
    later = step(state, d, now=T0 + 100 * PERIOD)
    assert standing(later, planted) is Standing.PENDING


def test_the_refusal_says_when_the_key_could_take_effect() -> None:
    orsa, state = known_orsa()
    planted = orsa.plant()
    d = directory(orsa, version=2)
    state = step(state, d, now=T0)
    ring = KeyRing(trusted_keys(state, d, now_ms=T0, challenge_period_ms=PERIOD))
    key = ring.get(planted.key_id)
    assert key is not None and key.standing is KeyStanding.IN_CHALLENGE
    assert "no accepted checkpoint holds it yet" in key.standing_note
    proven = step(state, d, now=T0 + HOUR, proven=True)
    ring = KeyRing(trusted_keys(proven, d, now_ms=T0 + HOUR, challenge_period_ms=PERIOD))
    key = ring.get(planted.key_id)
    assert key is not None and "24 h" in key.standing_note
    assert "2026-01-02T01:00:00Z" in key.standing_note  # proven at T0 + 1 h, plus 24 h
    signed = factories.FeedWriter(ORSA, planted).publish(record_id="r", origin=ORSA)
    with pytest.raises(EntryRefused) as refused:
        verify_entry(signed, ring, MemoryFeedState(), now_ms=T0 + HOUR)
    assert refused.value.reason is Reason.KEY_IN_CHALLENGE
    assert str(refused.value).startswith(f"{ORSA}#1: key_in_challenge: key {planted.key_id}")


def test_a_pending_key_takes_effect_after_the_challenge_period_from_its_proof() -> None:
    orsa, state = known_orsa()
    planted = orsa.plant()
    d = directory(orsa, version=2)
    state = step(state, d, now=T0)
    state = step(state, d, now=T0 + HOUR, proven=True)
    assert state.binding(ORSA, planted.key_id).proven_ms == T0 + HOUR  # type: ignore[union-attr]
    # A later proof does not start the period again.
    state = step(state, d, now=T0 + 2 * HOUR, proven=True)
    assert state.binding(ORSA, planted.key_id).proven_ms == T0 + HOUR  # type: ignore[union-attr]
    just_before = step(state, d, now=T0 + HOUR + PERIOD - 1)
    assert standing(just_before, planted) is Standing.PENDING
    assert entry_verdict(just_before, d, planted, now=T0 + HOUR + PERIOD - 1) is (
        Reason.KEY_IN_CHALLENGE
    )
    # Read lazily at the due time (no update yet), and for good after an update.
    assert entry_verdict(just_before, d, planted, now=T0 + HOUR + PERIOD) is None
    due = step(just_before, None, now=T0 + HOUR + PERIOD)
    b = due.binding(ORSA, planted.key_id)
    assert b is not None and (b.standing, b.via) == (Standing.EFFECTIVE, Via.CHALLENGE)
    first = due.binding(ORSA, orsa.keys[0].key_id)
    assert first is not None and first.order is not None and b.order is not None
    assert first.order < b.order


def test_a_rotation_under_an_effective_key_takes_effect_at_once() -> None:
    orsa, state = known_orsa()
    new = orsa.rotate()
    d = directory(orsa, version=2)
    state = step(state, d)
    b = state.binding(ORSA, new.key_id)
    assert b is not None and (b.standing, b.via) == (Standing.EFFECTIVE, Via.ROTATION)
    assert entry_verdict(state, d, new) is None


def test_a_chain_of_rotations_seen_at_once_takes_effect_at_once() -> None:
    orsa, state = known_orsa()
    second, third = orsa.rotate(), orsa.rotate()
    state = step(state, directory(orsa, version=2))
    assert standing(state, second) is Standing.EFFECTIVE
    assert standing(state, third) is Standing.EFFECTIVE


def _tampered(signed: directory_pb2.SignedKeyRotation, which: str) -> None:
    sig = bytearray(getattr(signed, which))
    sig[0] ^= 1
    setattr(signed, which, bytes(sig))


@pytest.mark.parametrize(
    "flaw",
    [
        "old signature altered",
        "new signature altered",
        "announced by a key the hub planted",
        "announced by another kommun's key",
        "names another kommun",
        "made after the old key was revoked",
        "made before the old key was valid",
        "old key no longer listed",
    ],
)
def test_a_rotation_that_does_not_hold_leaves_the_key_in_challenge(flaw: str) -> None:
    orsa, tibro = Kommun.new(ORSA), Kommun.new(TIBRO)
    state = step(EMPTY, directory(orsa, tibro))
    old = orsa.keys[0]
    if flaw == "announced by a key the hub planted":
        planted = orsa.plant()
        state = step(state, directory(orsa, tibro, version=2))
        old = planted
    new = SigningKey.generate()
    code = TIBRO if flaw == "names another kommun" else ORSA
    signer = tibro.keys[0] if flaw == "announced by another kommun's key" else old
    at = T0
    if flaw == "made after the old key was revoked":
        orsa.revoked[old.key_id] = T0 - 1
    rotation = build_key_rotation(signer, new, kommunkod=code, created_at_ms=at)
    if flaw == "old signature altered":
        _tampered(rotation, "old_signature")
    if flaw == "new signature altered":
        _tampered(rotation, "new_signature")
    orsa.keys.append(new)
    orsa.rotations.append(rotation)
    d = directory(orsa, tibro, version=3)
    if flaw == "made before the old key was valid":
        for k in next(m for m in d.members if m.kommunkod == ORSA).keys:
            if k.key_id == old.key_id:
                k.valid_from_ms = T0 + 1
    if flaw == "old key no longer listed":
        member = next(m for m in d.members if m.kommunkod == ORSA)
        kept = [k for k in member.keys if k.key_id != old.key_id]
        del member.keys[:]
        member.keys.extend(kept)
    state = step(state, d)
    assert standing(state, new) is Standing.PENDING, flaw


# -- objections ---------------------------------------------------------------------------------


def test_an_objection_by_the_kommuns_key_refuses_a_pending_key_for_good() -> None:
    orsa, state = known_orsa()
    planted = orsa.plant()
    d = directory(orsa, version=2)
    state = step(state, d, proven=True)
    refusal = objection(orsa.keys[0], planted)
    state = step(state, None, objections=[refusal])
    b = state.binding(ORSA, planted.key_id)
    assert b is not None and (b.standing, b.via) == (Standing.REFUSED, Via.OBJECTION)
    assert b.objected_by == orsa.keys[0].key_id
    assert state.known_objections() == [refusal.SerializeToString(deterministic=True)]
    assert state.objections == ()  # attached to the binding, not kept twice
    # The challenge period passing changes nothing.
    later = step(state, d, now=T0 + 10 * PERIOD, proven=True)
    assert standing(later, planted) is Standing.REFUSED
    assert entry_verdict(later, d, planted, now=T0 + 10 * PERIOD) is Reason.KEY_OBJECTED


def test_an_objection_listed_in_the_directory_counts() -> None:
    orsa, state = known_orsa()
    planted = orsa.plant()
    orsa.objections.append(objection(orsa.keys[0], planted))
    state = step(state, directory(orsa, version=2))
    assert standing(state, planted) is Standing.REFUSED


def test_a_late_objection_by_an_earlier_key_refuses_a_key_that_took_effect() -> None:
    orsa, state = known_orsa()
    planted = orsa.plant()
    d = directory(orsa, version=2)
    state = step(state, d, proven=True)
    state = step(state, d, now=T0 + PERIOD)
    assert standing(state, planted) is Standing.EFFECTIVE
    state = step(state, None, now=T0 + PERIOD + 1, objections=[objection(orsa.keys[0], planted)])
    assert standing(state, planted) is Standing.REFUSED


@pytest.mark.parametrize(
    "who",
    [
        "the objected key itself",
        "a later key",
        "another kommun's key",
        "a pending key",
        "a stranger",
    ],
)
def test_an_objection_not_by_an_earlier_key_of_the_kommun_does_not_count(who: str) -> None:
    orsa, tibro = Kommun.new(ORSA), Kommun.new(TIBRO)
    state = step(EMPTY, directory(orsa, tibro))
    target = orsa.keys[0]
    if who == "the objected key itself":
        signer = target
    elif who == "a later key":
        signer = orsa.rotate()
        state = step(state, directory(orsa, tibro, version=2))
    elif who == "another kommun's key":
        signer = tibro.keys[0]
    elif who == "a pending key":
        signer = orsa.plant()
        state = step(state, directory(orsa, tibro, version=2))
    else:
        signer = SigningKey.generate()
    state = step(state, None, objections=[objection(signer, target)])
    assert standing(state, target) is Standing.EFFECTIVE, who


def test_an_objection_with_a_forged_signature_is_dropped() -> None:
    orsa, state = known_orsa()
    planted = orsa.plant()
    state = step(state, directory(orsa, version=2))
    forged = objection(orsa.keys[0], planted)
    forged.signature = bytes(64)
    state = step(state, None, objections=[forged])
    assert standing(state, planted) is Standing.PENDING
    assert state.objections == ()  # never valid: not kept


def test_an_objection_learnt_before_the_key_is_listed_refuses_it_when_it_is() -> None:
    orsa, state = known_orsa()
    planted = SigningKey.generate()
    state = step(state, None, objections=[objection(orsa.keys[0], planted)])
    b = state.binding(ORSA, planted.key_id)
    assert b is not None and b.standing is Standing.REFUSED and b.listed_ms is None
    orsa.keys.append(planted)
    state = step(state, directory(orsa, version=2))
    assert standing(state, planted) is Standing.REFUSED


def test_an_objection_learnt_before_its_kommun_is_kept_until_its_signer_is_known() -> None:
    orsa = Kommun.new(ORSA)
    planted = SigningKey.generate()
    refusal = objection(orsa.keys[0], planted)
    state = step(EMPTY, directory(), objections=[refusal])
    assert state.objections == (refusal.SerializeToString(deterministic=True),)
    orsa.keys.append(planted)
    state = step(state, directory(orsa, version=2))
    # First sight binds both listed keys, but the objection by the other one counts.
    assert standing(state, planted) is Standing.REFUSED
    assert standing(state, orsa.keys[0]) is Standing.EFFECTIVE


def test_two_keys_bound_together_that_object_to_each_other_are_both_refused() -> None:
    orsa = Kommun.new(ORSA)
    planted = orsa.plant()
    both = [objection(orsa.keys[0], planted), objection(planted, orsa.keys[0])]
    for objections in (both, both[::-1]):
        state = step(EMPTY, directory(orsa), objections=objections)
        assert standing(state, orsa.keys[0]) is Standing.REFUSED
        assert standing(state, planted) is Standing.REFUSED


def test_unproven_objections_kept_per_kommun_are_bounded() -> None:
    stranger = SigningKey.generate()
    flood = [
        objection(stranger, SigningKey.generate())
        for _ in range(MAX_UNPROVEN_OBJECTIONS_PER_KOMMUN + 5)
    ]
    state = step(EMPTY, directory(), objections=flood)
    assert len(state.objections) == MAX_UNPROVEN_OBJECTIONS_PER_KOMMUN
    assert state.objections == tuple(sorted(state.objections))


def test_malformed_objections_are_ignored() -> None:
    _, state = known_orsa()
    junk = [b"\xff\x00", directory_pb2.SignedKeyObjection(objection=b"x").SerializeToString()]
    state = update(state, None, now_ms=T0, challenge_period_ms=PERIOD, objections=junk)
    assert state.objections == ()


# -- the state itself ---------------------------------------------------------------------------


def test_the_state_round_trips_through_json() -> None:
    orsa, state = known_orsa()
    planted, other = orsa.plant(), orsa.plant()
    state = step(state, directory(orsa, version=2), proven=True)
    state = step(state, None, objections=[objection(orsa.keys[0], other)])
    state = step(state, None, objections=[objection(SigningKey.generate(), planted, code=TIBRO)])
    again = KeyState.from_json(state.to_json())
    assert again == state


@pytest.mark.parametrize(
    "damage",
    [
        {"format": 99},
        {"bindings": [{"kommunkod": "12", "public_key": "", "standing": "x", "via": "y"}]},
        {"objections": ["***"]},
        {"next_order": "x"},
    ],
)
def test_a_damaged_state_file_is_refused(damage: dict[str, object]) -> None:
    _, state = known_orsa()
    data = state.to_json() | damage
    with pytest.raises((ValueError, KeyError, TypeError)):
        KeyState.from_json(data)


def test_a_key_id_that_does_not_match_its_key_is_refused() -> None:
    _, state = known_orsa()
    data = state.to_json()
    data["bindings"][0]["key_id"] = "00" * 16
    with pytest.raises(ValueError, match="does not match"):
        KeyState.from_json(data)


def test_updating_twice_with_the_same_input_changes_nothing() -> None:
    orsa, state = known_orsa()
    orsa.plant()
    orsa.rotate()
    d = directory(orsa, version=2)
    once = step(state, d, now=T0 + 5, proven=True)
    assert step(once, d, now=T0 + 5, proven=True) == once


def test_a_key_unknown_to_the_state_is_in_challenge() -> None:
    orsa = Kommun.new(ORSA)
    [key] = trusted_keys(EMPTY, directory(orsa), now_ms=T0, challenge_period_ms=PERIOD)[1:]
    assert key.standing is KeyStanding.IN_CHALLENGE


# -- order independence (hypothesis) ------------------------------------------------------------


def _scenario() -> tuple[
    list[Kommun], list[directory_pb2.SignedKeyObjection], KeyState, list[SigningKey]
]:
    """Orsa known with key A; then B rotated from A, C and D planted, E rotated from C
    (a pending key: does not count); objections A->C, D->A (D pending: no), C->D."""
    orsa, state = known_orsa()
    a = orsa.keys[0]
    b = orsa.rotate()
    c, d = orsa.plant(), orsa.plant()
    e = orsa.rotate(old=c)
    tibro = Kommun.new(TIBRO)
    objections = [objection(a, c), objection(d, a), objection(c, d)]
    return [orsa, tibro], objections, state, [a, b, c, d, e]


SCENARIO = _scenario()


def _shuffled(kommuner: list[Kommun], perm: list[int], rperm: list[int]) -> list[Kommun]:
    """The same listings with keys and rotations in another order."""
    return [
        Kommun(
            k.code,
            [k.keys[i] for i in perm if i < len(k.keys)],
            [k.rotations[i] for i in rperm if i < len(k.rotations)],
            list(k.objections),
            dict(k.revoked),
        )
        for k in kommuner
    ]


@given(
    keys_order=st.permutations(range(5)),
    rotations_order=st.permutations(range(2)),
    members_reversed=st.booleans(),
    objections_order=st.permutations(range(3)),
    split=st.integers(min_value=0, max_value=3),
    in_directory=st.booleans(),
)
def test_the_outcome_does_not_depend_on_listing_or_arrival_order(
    keys_order: list[int],
    rotations_order: list[int],
    members_reversed: bool,
    objections_order: list[int],
    split: int,
    in_directory: bool,
) -> None:
    kommuner, objections, start, (a, b, c, d, e) = SCENARIO
    shuffled = _shuffled(kommuner, keys_order, rotations_order)
    if members_reversed:
        shuffled.reverse()
    ordered = [objections[i] for i in objections_order]
    first, second = ordered[:split], ordered[split:]
    if in_directory:
        shuffled[0 if shuffled[0].code == ORSA else 1].objections.extend(first)
        first = []
    d2 = directory(*shuffled, version=2)
    state = step(start, d2, objections=first)
    state = step(state, None, objections=second)
    assert [standing(state, k) for k in (a, b, c, d, e)] == [
        Standing.EFFECTIVE,  # A: D's objection does not count (D pending)
        Standing.EFFECTIVE,  # B: rotated from A
        Standing.REFUSED,  # C: A objects
        Standing.PENDING,  # D: C's objection does not count (C pending, then refused)
        Standing.PENDING,  # E: announced by C, a pending key
    ]
    assert step(EMPTY, None) == EMPTY


@given(order=st.permutations(range(4)))
def test_objections_against_effective_keys_judged_by_order_whatever_their_arrival(
    order: list[int],
) -> None:
    """Keys that took effect one after another: A (first sight), B (rotated from A),
    C (stood its challenge). Objections A->C, B->C, C->A, C->B arriving one per update
    in any order: C is refused (an earlier key objects), A and B stay (a later key
    cannot disown an earlier one)."""
    orsa, state = known_orsa()
    a = orsa.keys[0]
    b = orsa.rotate()
    c = orsa.plant()
    d = directory(orsa, version=2)
    state = step(state, d, proven=True)
    state = step(state, d, now=T0 + PERIOD)
    assert [standing(state, k) for k in (a, b, c)] == [Standing.EFFECTIVE] * 3
    objections = [objection(a, c), objection(b, c), objection(c, a), objection(c, b)]
    for i in order:
        state = step(state, None, now=T0 + PERIOD + 1, objections=[objections[i]])
    assert [standing(state, k) for k in (a, b, c)] == [
        Standing.EFFECTIVE,
        Standing.EFFECTIVE,
        Standing.REFUSED,
    ]
