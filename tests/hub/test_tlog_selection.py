"""Which checkpoint the hub hands out (samverka_hub.cosigned), pure: the cosigned one
for everyone, the one in progress for a witness. Over real processes:
tests/hub/test_tlog_witnesses.py."""

from __future__ import annotations

from samverka_hub.cosigned import Held, Snapshot, Witnesses, cosigned_size, in_progress_size

A, B, C, D, REVOKED = "2029", "1472", "2026", "2080", "2031"
ACTIVE = Witnesses({code: (bytes(32),) for code in (A, B, C, D)})
NOW = 1_000_000


def held(size: int, *codes: str) -> list[Held]:
    return [Held(size, code, 1, b"s" * 72) for code in codes]


def snapshot(cosignatures: list[Held], signed: dict[int, int]) -> Snapshot:
    recent = tuple(sorted(signed.items(), reverse=True))
    return Snapshot(0.0, recent[0][0] if recent else None, recent, tuple(cosignatures))


def test_the_cosigned_checkpoint_is_the_newest_with_the_target_by_active_members() -> None:
    rows = held(10, A, B, C) + held(12, A, B, REVOKED) + held(14, A)
    assert cosigned_size(rows, ACTIVE, 3) == 10  # the revoked member's does not count
    assert cosigned_size(rows, ACTIVE, 2) == 12
    assert cosigned_size(rows, ACTIVE, 4) is None
    # The target is capped at the active members: two members cosigning is everyone.
    two = Witnesses({A: (bytes(32),), B: (bytes(32),)})
    assert cosigned_size(held(7, A, B), two, 3) == 7
    assert cosigned_size([], ACTIVE, 3) is None


def test_a_witness_is_steered_to_the_checkpoint_in_progress() -> None:
    signed = {10: NOW - 9000, 12: NOW - 3000, 13: NOW - 2000, 14: NOW - 1000, 15: NOW - 100}
    since = NOW - 5000
    rows = held(10, A, B, C) + held(13, A)
    snap = snapshot(rows, signed)
    # 13 has a cosignature and is young: B and C are sent there, not to the newest (15).
    assert in_progress_size(snap, ACTIVE, 3, B, since) == 13
    # A witness that cosigned something newer is never sent back.
    snap = snapshot([*rows, *held(14, D)], signed)
    assert in_progress_size(snap, ACTIVE, 3, D, since) == 14
    assert in_progress_size(snap, ACTIVE, 3, B, since) == 14  # the newest in progress
    # Too old to be in progress: the newest is handed out (None here).
    assert in_progress_size(snapshot(rows, signed), ACTIVE, 3, B, NOW - 1500) is None
    # Nothing newer than the fully cosigned one has a cosignature.
    assert in_progress_size(snapshot(held(10, A, B, C), signed), ACTIVE, 3, B, since) is None
    # A cosignature by a revoked member starts nothing.
    assert in_progress_size(snapshot(held(13, REVOKED), signed), ACTIVE, 3, B, since) is None
    # Once 13 is fully cosigned, it is no longer in progress.
    done = snapshot(held(10, A, B, C) + held(13, A, B, C), signed)
    assert cosigned_size(done.cosignatures, ACTIVE, 3) == 13
    assert in_progress_size(done, ACTIVE, 3, D, since) is None


def test_checkpoints_signed_by_a_rotated_away_log_key_are_never_chosen() -> None:
    """After `hub rotate-keys --log`: members that followed hold only the new key, so a
    checkpoint the old key signed is neither the cosigned one nor the one in progress."""
    signed = {10: NOW - 4000, 13: NOW - 2000, 14: NOW - 1000, 15: NOW - 100}
    since = NOW - 5000
    new_key_from = 14  # the sequencer signed 14 and 15 with the new key

    def current(size: int) -> bool:
        return size >= new_key_from

    rows = held(10, A, B, C) + held(13, A)
    snap = snapshot(rows, signed)
    # Without the rule: 10 is the cosigned one, 13 (started, young) the one in progress.
    assert cosigned_size(rows, ACTIVE, 3) == 10
    assert in_progress_size(snap, ACTIVE, 3, B, since) == 13
    # With it: nothing the new key signed is cosigned or started, so the newest (15,
    # by the new key) is handed to everyone and to every witness.
    assert cosigned_size(rows, ACTIVE, 3, current) is None
    assert in_progress_size(snap, ACTIVE, 3, B, since, current) is None
    # The first cosignature on 15 makes it the one in progress; fully cosigned, it is
    # served to everyone.
    started = snapshot([*rows, *held(15, D)], signed)
    assert in_progress_size(started, ACTIVE, 3, B, since, current) == 15
    assert cosigned_size([*rows, *held(15, A, B, D)], ACTIVE, 3, current) == 15
