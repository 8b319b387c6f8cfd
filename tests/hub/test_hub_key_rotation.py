"""``hub rotate-keys`` in a real hub folder and database (samverka_hub.keyrotation).

The processes-and-nodes side (nodes following the rotation over mTLS) is
tests/hub/test_hub_key_rotation_e2e.py.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubkit import HOUR, Applicant, HubUnderTest, make_hub
from samverka.config import load_config
from samverka.errors import ConfigError
from samverka.membership.hubtrust import followed_rotations
from samverka.membership.member import accept_directory
from samverka.node import (
    DIRECTORY_FILE,
    HUB_KEY_FILE,
    earlier_log_keys,
    init_node,
    load_directory,
    pinned_hub_key,
)
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.hubrotation import HubTrust, follow_directory
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.merkle import EMPTY_ROOT
from samverka.protocol.note import Ed25519Signer, Ed25519Verifier, sign_note
from samverka.replication.logstate import LogState
from samverka.transport.pki import verify_certificate
from samverka_hub import keyrotation
from samverka_hub.ca import split_bundle
from samverka_hub.council import Council
from samverka_hub.keyrotation import (
    NEXT_TLS,
    STAGING_DIR,
    ca_stragglers,
    finish_ca_rotation,
    resume_rotation,
    rotate_hub_keys,
)
from samverka_hub.tlog import LogKeyRotated, Sequencer, load_log_key

LEKSAND, TIBRO = "2029", "1472"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[HubUnderTest]:
    with make_hub(tmp_path / "hub") as made:
        yield made


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def admit(h: HubUnderTest, code: str) -> tuple[Applicant, bytes]:
    applicant = Applicant.make(code)
    h.council.submit_enrollment(applicant.request(at=h.clock.now))
    return applicant, h.council.approve(code).certificate_pem


def test_rotating_every_key_announces_them_under_the_old_one(h: HubUnderTest) -> None:
    hub = h.hub
    before = hub.council.current_directory()
    assert before is not None and before.directory.log_key  # named since hub init
    old_key, old_log = hub.signing_key, load_log_key(hub.dir)
    assert old_log is not None
    trust = HubTrust(old_key.public, log_key=before.directory.log_key)
    h.clock.now += HOUR
    report = rotate_hub_keys(hub, directory=True, log_key=True, ca=True)
    assert report.what == ["directory key", "log key", "CA"]
    after = hub.council.current_directory()
    assert after is not None and after.version == before.version + 1 == report.version
    # A node pinning the old key follows the version that carries the rotation.
    followed = follow_directory(after.signed, trust, now_ms=h.clock.now)
    assert followed.rotation is not None
    assert followed.trust.hub_key.key_id == report.new_key_id != old_key.key_id
    assert followed.trust.log_key == report.new_log_key == after.directory.log_key
    # The hub's member lists the old key until the overlap ends, the new one from now.
    listed = {k.key_id: k for k in after.member(HUB_ORIGIN).keys}  # type: ignore[union-attr]
    assert listed[old_key.key_id].revoked_at_ms == h.clock.now + 24 * HOUR
    assert listed[report.new_key_id].valid_from_ms == h.clock.now
    assert listed[report.new_key_id].revoked_at_ms == 0
    # The folder holds the new keys, the old ones retired, nothing staged.
    assert hub.signing_key.key_id == report.new_key_id
    assert (hub.dir / "keys/retired" / f"{old_key.key_id}.key").exists()
    assert mode(hub.dir / "keys/retired" / f"{old_key.key_id}.key") == 0o600
    assert mode(hub.dir / "keys/signing.key") == 0o600
    assert load_log_key(hub.dir).verifier().vkey == report.new_log_key  # type: ignore[union-attr]
    assert (hub.dir / "keys/retired-log" / f"{old_log.key_hash:08x}.key").exists()
    assert not (hub.dir / STAGING_DIR).exists()
    bundle = split_bundle((hub.dir / "tls/ca.pem").read_bytes())
    assert len(bundle) == 2 and bundle[1] == hub.ca.cert_pem  # old + new; new issues
    assert (hub.dir / NEXT_TLS / "node.pem").exists()
    assert mode(hub.dir / NEXT_TLS / "node.key") == 0o600
    verify_certificate((hub.dir / NEXT_TLS / "node.pem").read_bytes(), hub.ca.cert_pem)
    # Later versions are signed by the new key, keep the new log key, carry no rotation.
    h.clock.now += HOUR
    later = hub.council.reissue_directory()
    assert later.directory.hub_key_id == report.new_key_id
    assert later.directory.log_key == report.new_log_key
    assert not later.directory.HasField("hub_rotation")
    assert follow_directory(later.signed, followed.trust, now_ms=h.clock.now).rotation is None


def test_a_node_behind_is_handed_each_rotation_in_turn(h: HubUnderTest) -> None:
    council = h.hub.council
    h.clock.now += HOUR
    first = rotate_hub_keys(h.hub, directory=True, log_key=False, ca=False)
    council.reissue_directory()
    h.clock.now += HOUR
    second = rotate_hub_keys(h.hub, directory=False, log_key=True, ca=False)
    newest = council.reissue_directory()
    step = council.rotation_step(1)
    assert step is not None and step.version == first.version
    step = council.rotation_step(first.version)
    assert step is not None and step.version == second.version
    assert council.rotation_step(second.version) is None
    assert council.rotation_step(newest.version) is None


def test_a_folder_with_the_old_keys_signs_nothing(h: HubUnderTest) -> None:
    hub = h.hub
    old_key = hub.signing_key
    old_log = load_log_key(hub.dir)
    assert old_log is not None
    h.clock.now += HOUR
    rotate_hub_keys(hub, directory=True, log_key=True, ca=False)
    # A replica whose folder was not updated: its council holds the old key ...
    stale = Council(hub.members, old_key, hub.ca, hub.council.settings, clock=h.clock)
    with pytest.raises(ConfigError, match="was rotated away from"):
        stale.reissue_directory()
    # ... and its sequencer the old log key.
    sequencer = Sequencer(hub.store.engine, old_log, watcher=None)  # type: ignore[arg-type]
    with pytest.raises(LogKeyRotated, match="the log key was rotated"):
        sequencer.current_signer()
    current = load_log_key(hub.dir)
    assert current is not None
    fresh = Sequencer(hub.store.engine, current, watcher=None)  # type: ignore[arg-type]
    assert fresh.current_signer() is current


def test_a_rotation_cut_short_is_finished_or_dropped(
    h: HubUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = h.hub
    staging = hub.dir / STAGING_DIR
    # Staged keys whose announcement never committed are dropped.
    staging.mkdir()
    (staging / "signing.key").write_bytes(b"junk")
    assert resume_rotation(hub) == "dropped" and not staging.exists()
    # Committed but not moved into place (the process died in between): finished.
    h.clock.now += HOUR
    with monkeypatch.context() as m:
        m.setattr(keyrotation, "_install", lambda hub: None)
        report = rotate_hub_keys(hub, directory=True, log_key=True, ca=False)
    assert staging.exists() and hub.signing_key.key_id != report.new_key_id
    assert resume_rotation(hub) == "installed"
    assert hub.signing_key.key_id == report.new_key_id and not staging.exists()
    signer = Ed25519Signer.from_skey((hub.dir / "keys/log.key").read_text().strip())
    assert signer.verifier().vkey == report.new_log_key


def test_finishing_a_ca_rotation_waits_for_the_members(h: HubUnderTest) -> None:
    hub = h.hub
    _, old_cert = admit(h, LEKSAND)
    with pytest.raises(ConfigError, match="no CA rotation to finish"):
        finish_ca_rotation(hub)
    h.clock.now += HOUR
    rotate_hub_keys(hub, directory=False, log_key=False, ca=True)
    with pytest.raises(ConfigError, match="still running"):
        rotate_hub_keys(hub, directory=False, log_key=False, ca=True)
    # A member admitted now gets a certificate from the new CA; the old one's does not
    # chain to it, but to the bundle the hub trusts.
    _, new_cert = admit(h, TIBRO)
    bundle = (hub.dir / "tls/ca.pem").read_bytes()
    verify_certificate(new_cert, hub.ca.cert_pem)
    verify_certificate(old_cert, bundle)
    assert ca_stragglers(hub) == [LEKSAND]
    with pytest.raises(ConfigError, match="2029"):
        finish_ca_rotation(hub)
    # Leksand renews: issued by the new CA, nothing holds the finish back.
    leksand = Applicant.make(LEKSAND)
    verify_certificate(hub.council.renew_certificate(LEKSAND, leksand.csr_der), hub.ca.cert_pem)
    assert ca_stragglers(hub) == []
    next_cert = (hub.dir / NEXT_TLS / "node.pem").read_bytes()
    done = finish_ca_rotation(hub)
    assert (hub.dir / "tls/node.pem").read_bytes() == next_cert
    assert (hub.dir / "tls/ca.pem").read_bytes() == hub.ca.cert_pem
    assert len(done.dropped_ca_serials) == 1 and not (hub.dir / NEXT_TLS).exists()


def test_finish_force_leaves_stragglers_behind(h: HubUnderTest) -> None:
    admit(h, LEKSAND)
    h.clock.now += HOUR
    rotate_hub_keys(h.hub, directory=False, log_key=False, ca=True)
    done = finish_ca_rotation(h.hub, force=True)
    assert done.stragglers == [LEKSAND]


def test_nothing_to_rotate_is_refused(h: HubUnderTest) -> None:
    with pytest.raises(ConfigError, match="nothing to rotate"):
        rotate_hub_keys(h.hub, directory=False, log_key=False, ca=False)


# -- a node folder following (in-process; over real processes: ..._e2e.py) ---------------


def test_a_node_follows_a_rotation_and_finishes_one_cut_short(
    h: HubUnderTest, tmp_path: Path
) -> None:
    hub = h.hub
    init_node(tmp_path / "node", LEKSAND).close()
    config = load_config(tmp_path / "node")
    # Enrolled, as `node enroll` leaves it: the hub's key, directory and CA pinned.
    v1 = hub.council.current_directory()
    assert v1 is not None
    (tmp_path / "node" / "hub").mkdir()
    (tmp_path / "node" / HUB_KEY_FILE).write_bytes(hub.signing_key.public.to_pem())
    (tmp_path / "node" / DIRECTORY_FILE).write_bytes(v1.signed_bytes())
    config.path(config.tls.ca).write_bytes((hub.dir / "tls/ca.pem").read_bytes())
    old_log = load_log_key(hub.dir)
    assert old_log is not None
    held_note = sign_note(Checkpoint(old_log.name, 0, EMPTY_ROOT).to_text(), old_log)
    LogState(tmp_path / "node").record_cosigned(held_note)

    h.clock.now += HOUR
    one = rotate_hub_keys(hub, directory=True, log_key=True, ca=True)
    v2 = hub.council.current_directory()
    assert v2 is not None
    update = accept_directory(config, v2.signed)
    assert update.changed and [r.new_key.key_id for r in update.rotations] == [one.new_key_id]
    assert pinned_hub_key(config).key_id == one.new_key_id  # type: ignore[union-attr]
    assert len(split_bundle(config.path(config.tls.ca).read_bytes())) == 2
    assert earlier_log_keys(config.dir) == [old_log.verifier().vkey]
    assert [r.digest for r in followed_rotations(config)] == [update.rotations[0].digest]
    # The checkpoint cosigned under the old log key stays the witness's reference.
    new_log = Ed25519Verifier.from_vkey(one.new_log_key)
    held = LogState(tmp_path / "node").cosigned()
    assert held is not None and held.signed(new_log).size == 0

    # A second rotation, followed only up to the directory (the node stopped there).
    h.clock.now += HOUR
    two = rotate_hub_keys(hub, directory=True, log_key=False, ca=False)
    v3 = hub.council.current_directory()
    assert v3 is not None
    (tmp_path / "node" / DIRECTORY_FILE).write_bytes(v3.signed_bytes())
    held_dir = load_directory(config)  # verified through the rotation it carries
    assert held_dir is not None and held_dir.version == v3.version
    assert pinned_hub_key(config).key_id == one.new_key_id  # type: ignore[union-attr]
    again = accept_directory(config, v3.signed)
    assert not again.changed
    assert pinned_hub_key(config).key_id == two.new_key_id  # type: ignore[union-attr]
