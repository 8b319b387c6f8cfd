"""The witness rules (samverka.protocol.witness): what a node cosigns, what it accepts,
and the evidence two conflicting checkpoints make. Pure: an in-memory log signs its
checkpoints with a real Ed25519 note key; kommuner cosign with their signing keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from memlog import ORIGIN, MemLog
from samverka.protocol.checkpoint import NotSignedByLog
from samverka.protocol.note import (
    CosignatureV1Signer,
    Ed25519Signer,
    NoteSignature,
    format_note,
    parse_note,
    sign_note,
)
from samverka.protocol.signing import SigningKey
from samverka.protocol.witness import (
    CONSISTENCY_PROOF_FAILED,
    NO_CONSISTENCY_PROOF,
    SAME_SIZE_DIFFERENT_ROOT,
    CheckpointTooOld,
    ForgedCosignature,
    InconsistentCheckpoint,
    StaleCheckpoint,
    TooFewCosignatures,
    accept_checkpoint,
    check_evidence,
    conflict,
    cosign,
    effective_quorum,
    open_signed,
    should_cosign,
    witness_key_name,
    witness_kommun,
    witness_signer,
    witness_verifiers,
)

NOW = 1_800_000_000
DAY = 24 * 3600.0
KOMMUNER = ("1480", "2029", "1472", "0180")
SELF = "1480"


@pytest.fixture(scope="module")
def log_signer() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {code: SigningKey.generate() for code in KOMMUNER}


def effective(keys: dict[str, SigningKey]) -> dict[str, list[bytes]]:
    return {code: [k.public.raw] for code, k in keys.items()}


def cosigned(
    note: bytes, keys: dict[str, SigningKey], codes: tuple[str, ...], at: int = NOW
) -> bytes:
    signers = [witness_signer(c, keys[c], clock=lambda: at) for c in codes]
    return sign_note(parse_note(note), *signers)


def accept(note: bytes, log_signer: Ed25519Signer, keys: dict[str, SigningKey], **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "log_verifier": log_signer.verifier(),
        "witness_keys": effective(keys),
        "self_kommun": SELF,
        "quorum": 2,
        "max_age": DAY,
        "now": NOW,
        "previous_accepted": None,
        "consistency_proof": None,
    }
    args.update(kw)
    return accept_checkpoint(note, **args)  # type: ignore[arg-type]


# --- keys ---------------------------------------------------------------------------------


def test_witness_key_is_the_kommuns_signing_key_under_its_witness_name(
    keys: dict[str, SigningKey],
) -> None:
    signer = witness_signer("2029", keys["2029"])
    assert signer.name == "samverka-witness/2029" == witness_key_name("2029")
    assert signer.public_key == keys["2029"].public.raw
    (verifier,) = witness_verifiers({"2029": [keys["2029"].public.raw]})
    assert verifier.vkey == signer.verifier().vkey
    assert witness_kommun("samverka-witness/2029") == "2029"
    assert witness_kommun("hub.example/samverka-log") is None
    assert witness_kommun("samverka-witness/") is None


def test_a_cosignature_is_no_entry_signature(keys: dict[str, SigningKey]) -> None:
    """Domain separation: one key, two kinds of signature, never interchangeable."""
    text = b"anything\n"
    cosig = witness_signer("2029", keys["2029"], clock=lambda: NOW).sign(text)
    assert not keys["2029"].public.verify(text, cosig[8:])
    assert not keys["2029"].public.verify(b"cosignature/v1\ntime %d\n" % NOW + text, cosig[8:])


def test_effective_quorum_is_capped_at_the_other_members() -> None:
    assert effective_quorum(2, 3) == 2
    assert effective_quorum(2, 1) == 1
    assert effective_quorum(2, 0) == 0
    assert effective_quorum(5, 3) == 3


# --- acceptance ---------------------------------------------------------------------------


def test_accepts_a_checkpoint_with_a_quorum_of_other_kommuner(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    log = MemLog(log_signer, 5)
    note = cosigned(log.note(), keys, ("2029", "1472"))
    got = accept(note, log_signer, keys)
    assert got.checkpoint.size == 5
    assert got.counted == {"2029", "1472"}
    assert got.signed.note == note


def test_own_cosignature_is_not_counted(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    log = MemLog(log_signer, 5)
    note = cosigned(log.note(), keys, (SELF, "2029"))
    with pytest.raises(TooFewCosignatures) as info:
        accept(note, log_signer, keys)
    assert info.value.reason == "too_few_cosignatures"


def test_too_few_and_none(log_signer: Ed25519Signer, keys: dict[str, SigningKey]) -> None:
    log = MemLog(log_signer, 5)
    with pytest.raises(TooFewCosignatures):
        accept(log.note(), log_signer, keys)
    with pytest.raises(TooFewCosignatures):
        accept(cosigned(log.note(), keys, ("0180",)), log_signer, keys, quorum=2)
    # A federation with no other member (quorum 0) accepts on the log's signature.
    assert accept(log.note(), log_signer, keys, quorum=0).counted == frozenset()


def test_two_keys_of_one_kommun_count_once(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    """A kommun with two effective keys (mid-rotation) cosigning twice is one cosigner."""
    second = SigningKey.generate()
    eff = effective(keys)
    eff["2029"] = [keys["2029"].public.raw, second.public.raw]
    log = MemLog(log_signer, 5)
    note = sign_note(
        parse_note(log.note()),
        witness_signer("2029", keys["2029"], clock=lambda: NOW),
        witness_signer("2029", second, clock=lambda: NOW),
    )
    with pytest.raises(TooFewCosignatures):
        accept(note, log_signer, keys, witness_keys=eff)
    assert accept(note, log_signer, keys, witness_keys=eff, quorum=1).counted == {"2029"}


def test_duplicate_cosignature_lines_count_once(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    log = MemLog(log_signer, 5)
    note = cosigned(log.note(), keys, ("2029",))
    line = note.decode().splitlines()[-1]
    doubled = note + (line + "\n").encode()
    with pytest.raises(TooFewCosignatures):
        accept(doubled, log_signer, keys)
    # The same key cosigning twice at two times: still one kommun.
    again = cosigned(log.note(), keys, ("2029",), at=NOW - 10)
    lines = parse_note(note).unverified + parse_note(again).unverified[1:]
    both = format_note(parse_note(note).text, lines)
    with pytest.raises(TooFewCosignatures):
        accept(both, log_signer, keys)


def test_forged_cosignature_is_refused(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    log = MemLog(log_signer, 5)
    note = cosigned(log.note(), keys, ("2029", "1472", "0180"))
    parsed = parse_note(note)
    sigs = list(parsed.unverified)
    bad = sigs[2]
    sigs[2] = NoteSignature(
        bad.name, bad.key_hash, bad.signature[:-1] + bytes([bad.signature[-1] ^ 1])
    )
    forged = format_note(parsed.text, sigs)
    with pytest.raises(ForgedCosignature) as info:
        accept(forged, log_signer, keys)
    assert info.value.reason == "forged_cosignature"


def test_cosignature_by_an_unknown_key_does_not_count(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    """The hub (or anyone) making keys in a kommun's name adds nothing to the quorum."""
    log = MemLog(log_signer, 5)
    impostors = {c: SigningKey.generate() for c in ("2029", "1472")}
    note = cosigned(log.note(), impostors, ("2029", "1472"))
    with pytest.raises(TooFewCosignatures):
        accept(note, log_signer, keys)


def test_cosignature_of_another_checkpoint_is_forged(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    log = MemLog(log_signer, 5)
    cos6 = cosigned(MemLog(log_signer, 6).note(), keys, ("2029", "1472"))
    moved = format_note(parse_note(log.note()).text, parse_note(cos6).unverified)
    # The log's own line (of size 6) fails first: not signed by the log.
    with pytest.raises(NotSignedByLog):
        accept(moved, log_signer, keys)
    witness_lines = [s for s in parse_note(cos6).unverified if s.name != ORIGIN]
    moved = format_note(
        parse_note(log.note()).text, [*parse_note(log.note()).unverified, *witness_lines]
    )
    with pytest.raises(ForgedCosignature):
        accept(moved, log_signer, keys)


def test_not_signed_by_the_log(log_signer: Ed25519Signer, keys: dict[str, SigningKey]) -> None:
    other = Ed25519Signer.generate(ORIGIN)
    note = cosigned(MemLog(other, 5).note(), keys, ("2029", "1472"))
    with pytest.raises(NotSignedByLog) as info:
        accept(note, log_signer, keys)
    assert info.value.reason == "not_signed_by_log"
    # A note whose log line is tampered.
    good = cosigned(MemLog(log_signer, 5).note(), keys, ("2029", "1472"))
    parsed = parse_note(good)
    sigs = list(parsed.unverified)
    sigs[0] = NoteSignature(sigs[0].name, sigs[0].key_hash, bytes(64))
    with pytest.raises(NotSignedByLog):
        accept(format_note(parsed.text, sigs), log_signer, keys)


def test_cosignatures_too_old(log_signer: Ed25519Signer, keys: dict[str, SigningKey]) -> None:
    log = MemLog(log_signer, 5)
    old = cosigned(log.note(), keys, ("2029", "1472"), at=NOW - int(DAY) - 1)
    with pytest.raises(CheckpointTooOld) as info:
        accept(old, log_signer, keys)
    assert info.value.reason == "checkpoint_too_old"
    # Exactly max_age old still counts; one fresh, one old: too old (quorum 2).
    assert accept(cosigned(log.note(), keys, ("2029", "1472"), at=NOW - int(DAY)), log_signer, keys)
    mixed = cosigned(cosigned(log.note(), keys, ("2029",)), keys, ("1472",), at=NOW - 2 * int(DAY))
    with pytest.raises(CheckpointTooOld):
        accept(mixed, log_signer, keys)
    # Far in the future does not count either (a witness cannot keep it fresh for ever).
    future = cosigned(log.note(), keys, ("2029", "1472"), at=NOW + 3600)
    with pytest.raises(CheckpointTooOld):
        accept(future, log_signer, keys)


def test_replayed_older_checkpoint_is_stale(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    log = MemLog(log_signer, 5)
    first = accept(cosigned(log.note(), keys, ("2029", "1472")), log_signer, keys)
    log.grow(3)
    second = accept(
        cosigned(log.note(), keys, ("2029", "1472")),
        log_signer,
        keys,
        previous_accepted=first.signed,
        consistency_proof=log.proof(5),
    )
    assert second.checkpoint.size == 8
    with pytest.raises(StaleCheckpoint) as info:
        accept(first.signed.note, log_signer, keys, previous_accepted=second.signed)
    assert info.value.reason == "stale_checkpoint"
    # The same checkpoint again (say with a newer cosignature) is fine.
    again = accept(
        cosigned(log.note(), keys, ("2029", "0180")),
        log_signer,
        keys,
        previous_accepted=second.signed,
    )
    assert again.checkpoint == second.checkpoint


def test_inconsistent_with_accepted_gives_evidence(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    log = MemLog(log_signer, 5)
    fork = MemLog(log_signer, 5, salt=b"fork")
    held = accept(cosigned(log.note(), keys, ("2029", "1472")), log_signer, keys)
    # Same size, another root: evidence whatever the cosignatures (none here).
    with pytest.raises(InconsistentCheckpoint) as info:
        accept(fork.note(), log_signer, keys, previous_accepted=held.signed)
    ev = info.value.evidence
    assert info.value.reason == "inconsistent_checkpoint"
    assert ev.kind == SAME_SIZE_DIFFERENT_ROOT
    assert ev.older == held.signed.note and ev.newer == fork.note()
    assert ev.log_key == log_signer.verifier().vkey
    assert check_evidence(ev)
    # Larger, with a proof from the forked tree: the proof fails.
    fork.grow(4)
    with pytest.raises(InconsistentCheckpoint) as info:
        accept(
            cosigned(fork.note(), keys, ("2029", "1472")),
            log_signer,
            keys,
            previous_accepted=held.signed,
            consistency_proof=fork.proof(5),
        )
    assert info.value.evidence.kind == CONSISTENCY_PROOF_FAILED
    assert info.value.evidence.proof == tuple(fork.proof(5))
    assert check_evidence(info.value.evidence)
    # Larger, and the hub gives no proof at all.
    with pytest.raises(InconsistentCheckpoint) as info:
        accept(fork.note(), log_signer, keys, previous_accepted=held.signed, consistency_proof=None)
    assert info.value.evidence.kind == NO_CONSISTENCY_PROOF


def test_evidence_does_not_prove_what_is_not(log_signer: Ed25519Signer) -> None:
    log = MemLog(log_signer, 5)
    a = open_signed(log.note(), log_signer.verifier())
    log.grow(2)
    b = open_signed(log.note(), log_signer.verifier())
    assert conflict(a, b, log.proof(5)) is None
    fake = conflict(a, b, [bytes(32)] * len(log.proof(5)))
    assert fake is not None and fake.kind == CONSISTENCY_PROOF_FAILED
    # Given the right proof, the "evidence" falls apart; a checker recomputes it.
    from dataclasses import replace

    assert not check_evidence(replace(fake, proof=tuple(log.proof(5))))
    # Notes not by the log key prove nothing.
    other = Ed25519Signer.generate(ORIGIN)
    forged = replace(fake, log_key=other.verifier().vkey)
    assert not check_evidence(forged)


# --- cosigning ----------------------------------------------------------------------------


def test_should_cosign_first_sight_growth_and_same(log_signer: Ed25519Signer) -> None:
    log = MemLog(log_signer, 3)
    v = log_signer.verifier()
    first = open_signed(log.note(), v)
    assert should_cosign(None, first, None)
    assert should_cosign(first, open_signed(log.note(), v), None)
    log.grow(10)
    assert should_cosign(first, open_signed(log.note(), v), log.proof(3))


def test_should_cosign_refuses_stale_and_inconsistent(log_signer: Ed25519Signer) -> None:
    v = log_signer.verifier()
    log = MemLog(log_signer, 8)
    held = open_signed(log.note(), v)
    with pytest.raises(StaleCheckpoint):
        should_cosign(held, open_signed(log.note(5), v), log.proof(5, 8))
    fork = MemLog(log_signer, 8, salt=b"x")
    with pytest.raises(InconsistentCheckpoint) as info:
        should_cosign(held, open_signed(fork.note(), v), None)
    assert info.value.evidence.kind == SAME_SIZE_DIFFERENT_ROOT
    fork.grow(1)
    with pytest.raises(InconsistentCheckpoint) as info:
        should_cosign(held, open_signed(fork.note(), v), fork.proof(8))
    assert info.value.evidence.kind == CONSISTENCY_PROOF_FAILED
    with pytest.raises(InconsistentCheckpoint) as info:
        should_cosign(held, open_signed(fork.note(), v), None)
    assert info.value.evidence.kind == NO_CONSISTENCY_PROOF


def test_cosign_adds_one_line_that_others_verify(
    log_signer: Ed25519Signer, keys: dict[str, SigningKey]
) -> None:
    log = MemLog(log_signer, 4)
    v = log_signer.verifier()
    candidate = open_signed(cosigned(log.note(), keys, ("2029",)), v)
    signer = witness_signer("1472", keys["1472"], clock=lambda: NOW)
    out = cosign(candidate, signer)
    assert out.startswith(candidate.note)
    assert len(parse_note(out).unverified) == 3
    # Cosigning again replaces this witness's line instead of adding one.
    assert len(parse_note(cosign(open_signed(out, v), signer)).unverified) == 3
    got = accept(out, log_signer, keys)
    assert got.counted == {"2029", "1472"}


# --- properties ---------------------------------------------------------------------------


@given(
    old=st.integers(min_value=0, max_value=40),
    grow=st.integers(min_value=0, max_value=40),
    forked=st.booleans(),
)
def test_property_consistent_iff_same_log(old: int, grow: int, forked: bool) -> None:
    """Any two checkpoints of one honest log are consistent; a fork at or before the
    older one's size is evidence, whichever is held first."""
    signer = _PROPERTY_SIGNER
    v = signer.verifier()
    a_log = MemLog(signer, old)
    b_log = MemLog(signer, old + grow, salt=b"fork" if forked else b"")
    a, b = open_signed(a_log.note(), v), open_signed(b_log.note(), v)
    proof = b_log.proof(old) if old else []
    found = conflict(a, b, proof)
    assert (found is None) == (not forked or old == 0)
    assert (conflict(b, a, proof) is None) == (found is None)
    if found is not None:
        assert check_evidence(found)


@given(codes=st.lists(st.sampled_from(KOMMUNER), max_size=8), quorum=st.integers(0, 4))
def test_property_quorum_counts_distinct_others(codes: list[str], quorum: int) -> None:
    keys = _PROPERTY_KEYS
    log = MemLog(_PROPERTY_SIGNER, 2)
    note = log.note()
    for code in codes:
        note = sign_note(parse_note(note), witness_signer(code, keys[code], clock=lambda: NOW))
    others = set(codes) - {SELF}
    if len(others) >= quorum:
        assert accept(note, _PROPERTY_SIGNER, keys, quorum=quorum).counted == others
    else:
        with pytest.raises(TooFewCosignatures):
            accept(note, _PROPERTY_SIGNER, keys, quorum=quorum)


_PROPERTY_SIGNER = Ed25519Signer.generate(ORIGIN)
_PROPERTY_KEYS = {code: SigningKey.generate() for code in KOMMUNER}


def test_cosigner_clock_is_the_timestamp(keys: dict[str, SigningKey]) -> None:
    signer: CosignatureV1Signer = witness_signer("2029", keys["2029"], clock=lambda: 1234)
    assert int.from_bytes(signer.sign(b"x\n")[:8], "big") == 1234


def test_a_hub_on_its_previous_log_key_is_a_wait_then_after_the_grace_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Around `hub rotate-keys --log` the hub may hand out one more checkpoint by the
    key this node followed it away from: the round waits (no failure, no back-off). A
    hub still doing so after LOG_KEY_GRACE_SECONDS is astray: the round fails (doctor
    and the log show it) and nothing was cosigned."""
    import asyncio
    from types import SimpleNamespace

    from samverka.membership import witness as agent

    clock = [1000.0]
    monkeypatch.setattr(agent.time, "monotonic", lambda: clock[0])
    rounds = agent.Witness.__new__(agent.Witness)  # the round's logic, no hub or node
    rounds.state = SimpleNamespace(halted=False)  # type: ignore[assignment]
    rounds._pending_since = None
    pending = True

    async def cosign_round() -> int:
        if pending:
            raise agent.LogKeyPending("the hub still hands out its previous log key's")
        return 0

    rounds.cosign_round = cosign_round  # type: ignore[method-assign]
    done = asyncio.run(rounds.round())
    assert done.cosigned == 0 and "previous log key" in done.waiting
    clock[0] += agent.LOG_KEY_GRACE_SECONDS - 1
    assert asyncio.run(rounds.round()).waiting
    clock[0] += 2
    with pytest.raises(NotSignedByLog, match="for 31 s"):
        asyncio.run(rounds.round())
    # Once the hub signs with its new key the clock starts again.
    pending = False
    rounds.acceptor = SimpleNamespace(newer=_none)  # type: ignore[assignment]
    asyncio.run(rounds.round())
    assert rounds._pending_since is None


async def _none() -> None:
    return None
