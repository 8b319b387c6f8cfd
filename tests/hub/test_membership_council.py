"""The council's decisions over a real hub database (SQLite file and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from hubkit import DAY, HOUR, T0, Applicant, HubUnderTest
from samverka.errors import EnrollmentRefused, QuotaExhausted, Reason
from samverka.protocol.directory import verify_directory
from samverka.protocol.signing import SigningKey
from samverka.transport.pki import verify_certificate
from samverka.v1 import directory_pb2
from samverka_hub.ca import certificate_hosts, member_hosts
from samverka_hub.council import MAX_PENDING_PER_KOMMUN, MembershipConflict
from samverka_hub.members import APPROVED, PENDING, REJECTED
from samverka_hub.tables import HubTable

LEKSAND, TIBRO = "2029", "1472"
ACTIVE = directory_pb2.MEMBER_STATUS_ACTIVE
REVOKED = directory_pb2.MEMBER_STATUS_REVOKED


def admit(h: HubUnderTest, code: str = LEKSAND, **kw: str) -> Applicant:
    applicant = Applicant.make(code)
    h.council.submit_enrollment(applicant.request(at=h.clock.now, **kw))
    h.council.approve(code)
    return applicant


def test_init_publishes_the_hub_alone(hub: HubUnderTest) -> None:
    d = hub.council.current_directory()
    assert d is not None and d.version == 1
    assert [m.kommunkod for m in d.directory.members] == ["0000"]
    # it verifies as a node would verify it
    verify_directory(d.signed_bytes(), hub.hub.signing_key.public, now_ms=T0 - DAY)


def test_enroll_approve_issues_certificate_and_lists_member(hub: HubUnderTest) -> None:
    a = Applicant.make(LEKSAND)
    row = hub.council.submit_enrollment(a.request(address="127.0.0.1:7500"))
    assert row.status == PENDING and row.key_id == a.key.key_id
    # the same signed request again is the same row, however late
    hub.clock.now += 30 * DAY
    assert hub.council.submit_enrollment(a.request(address="127.0.0.1:7500")).id == row.id
    admission = hub.council.approve(LEKSAND)
    assert admission.enrollment.status == APPROVED
    assert verify_certificate(admission.certificate_pem, hub.hub.ca.cert_pem) == LEKSAND
    assert set(certificate_hosts(admission.certificate_pem)) == {"127.0.0.1", "localhost"}
    d = admission.directory
    assert d.version == 2
    m = d.member(LEKSAND)
    assert m is not None and m.status == ACTIVE and m.address == "127.0.0.1:7500"
    assert [(k.key_id, k.valid_from_ms, k.revoked_at_ms) for k in m.keys] == [(a.key.key_id, 0, 0)]
    # asking again after approval returns the approved row with its certificate
    again = hub.council.submit_enrollment(a.request(address="127.0.0.1:7500"))
    assert again.status == APPROVED and again.certificate_pem == admission.certificate_pem


def test_a_member_cannot_enroll_again(hub: HubUnderTest) -> None:
    admit(hub)
    with pytest.raises(MembershipConflict) as exc:
        hub.council.submit_enrollment(Applicant.make(LEKSAND).request(at=hub.clock.now))
    assert exc.value.reason == "already_member"
    assert "rotate-key" in exc.value.hint


def test_stale_request_is_refused_when_new(hub: HubUnderTest) -> None:
    a = Applicant.make(LEKSAND)
    with pytest.raises(EnrollmentRefused) as exc:
        hub.council.submit_enrollment(a.request(at=T0 - DAY))
    assert exc.value.reason is Reason.EXPIRED


def test_several_requests_need_a_key_id(hub: HubUnderTest) -> None:
    real, squatter = Applicant.make(LEKSAND), Applicant.make(LEKSAND)
    hub.council.submit_enrollment(squatter.request())
    hub.council.submit_enrollment(real.request())
    with pytest.raises(MembershipConflict) as exc:
        hub.council.approve(LEKSAND)
    assert exc.value.reason == "ambiguous"
    hub.council.approve(LEKSAND, key_id=real.key.key_id[:10])
    assert hub.council.pending() == []
    loser = hub.council.submit_enrollment(squatter.request())
    assert loser.status == REJECTED and "another request" in loser.message


def test_a_newer_request_with_the_same_key_supersedes(hub: HubUnderTest) -> None:
    a = Applicant.make(LEKSAND)
    old = hub.council.submit_enrollment(a.request(address="10.0.0.1:7443"))
    hub.clock.now += 1000
    new = hub.council.submit_enrollment(a.request(at=hub.clock.now, address="10.0.0.2:7443"))
    assert [r.id for r in hub.council.pending()] == [new.id]
    assert hub.council.submit_enrollment(a.request(address="10.0.0.1:7443")).id == old.id
    admission = hub.council.approve(LEKSAND)
    assert admission.directory.member(LEKSAND).address == "10.0.0.2:7443"  # type: ignore[union-attr]


def test_pending_requests_are_bounded(hub: HubUnderTest) -> None:
    for _ in range(MAX_PENDING_PER_KOMMUN):
        hub.council.submit_enrollment(Applicant.make(TIBRO).request())
    with pytest.raises(MembershipConflict) as exc:
        hub.council.submit_enrollment(Applicant.make(TIBRO).request())
    assert exc.value.reason == "too_many_pending"


def test_reject(hub: HubUnderTest) -> None:
    a = Applicant.make(TIBRO)
    hub.council.submit_enrollment(a.request())
    with pytest.raises(MembershipConflict):
        hub.council.reject(TIBRO, reason="  ")
    row = hub.council.reject(TIBRO, reason="ring oss först")
    assert row.status == REJECTED and row.message == "rejected: ring oss först"
    assert hub.council.submit_enrollment(a.request()).status == REJECTED
    with pytest.raises(MembershipConflict) as exc:
        hub.council.approve(TIBRO)
    assert exc.value.reason == "nothing_pending"
    assert hub.council.current_directory().version == 1  # type: ignore[union-attr]


def test_revoke_ends_every_key_and_blocks_re_enrollment(hub: HubUnderTest) -> None:
    a = admit(hub)
    hub.clock.now += HOUR
    d = hub.council.revoke(LEKSAND, reason="lämnat samarbetet")
    m = d.member(LEKSAND)
    assert m is not None and m.status == REVOKED and m.revoked_at_ms == hub.clock.now
    assert m.keys[0].revoked_at_ms == hub.clock.now
    ring = d.keyring()
    assert ring.get(a.key.key_id).revoked_at_ms == hub.clock.now  # type: ignore[union-attr]
    with pytest.raises(MembershipConflict) as exc:
        hub.council.revoke(LEKSAND)
    assert exc.value.reason == "already_revoked"
    with pytest.raises(MembershipConflict) as exc:
        hub.council.submit_enrollment(Applicant.make(LEKSAND).request(at=hub.clock.now))
    assert exc.value.reason == "member_revoked"
    with pytest.raises(MembershipConflict):
        hub.council.revoke(TIBRO)


def test_key_rotation(hub: HubUnderTest) -> None:
    a = admit(hub)
    new = SigningKey.generate()
    announced_at = hub.clock.now + 1000
    hub.clock.now = announced_at
    signed = a.rotation(new, at=announced_at)
    with pytest.raises(MembershipConflict) as exc:
        hub.council.submit_rotation(signed, caller=TIBRO)
    assert exc.value.reason == "not_your_key"
    row = hub.council.submit_rotation(signed, caller=LEKSAND)
    assert row.status == PENDING and row.new_key_id == new.key_id
    assert hub.council.submit_rotation(signed, caller=LEKSAND).id == row.id
    hub.clock.now += HOUR
    d = hub.council.approve_rotation(LEKSAND)
    keys = {k.key_id: k for k in d.member(LEKSAND).keys}  # type: ignore[union-attr]
    overlap = hub.hub.config.directory.rotation_overlap_ms
    assert keys[a.key.key_id].revoked_at_ms == hub.clock.now + overlap
    assert keys[new.key_id].valid_from_ms == announced_at
    assert keys[new.key_id].revoked_at_ms == 0
    assert hub.council.rotation_status(row.digest).status == APPROVED  # type: ignore[union-attr]
    # the same key cannot come back, and a stranger's key cannot announce one
    with pytest.raises(EnrollmentRefused) as refused:
        hub.council.submit_rotation(
            Applicant(LEKSAND, new, b"", b"").rotation(a.key, at=hub.clock.now), caller=LEKSAND
        )
    assert refused.value.reason is Reason.SCHEMA_INVALID
    stranger = Applicant(LEKSAND, SigningKey.generate(), b"", b"")
    with pytest.raises(EnrollmentRefused) as refused:
        hub.council.submit_rotation(
            stranger.rotation(SigningKey.generate(), at=hub.clock.now), caller=LEKSAND
        )
    assert refused.value.reason is Reason.UNKNOWN_KEY


def test_reject_rotation(hub: HubUnderTest) -> None:
    a = admit(hub)
    signed = a.rotation(SigningKey.generate(), at=hub.clock.now)
    hub.council.submit_rotation(signed, caller=LEKSAND)
    hub.council.reject_rotation(LEKSAND, reason="fel nyckel")
    assert hub.council.submit_rotation(signed, caller=LEKSAND).status == REJECTED
    with pytest.raises(MembershipConflict):
        hub.council.approve_rotation(LEKSAND)


def test_renew_certificate(hub: HubUnderTest) -> None:
    a = admit(hub, address="node.leksand.se:7443")
    fresh = Applicant.make(LEKSAND, hosts=("node.leksand.se", "hub.evil.example"))
    pem = hub.council.renew_certificate(LEKSAND, fresh.csr_der)
    assert verify_certificate(pem, hub.hub.ca.cert_pem, kommunkod=LEKSAND) == LEKSAND
    assert certificate_hosts(pem) == ("node.leksand.se",)
    with pytest.raises(EnrollmentRefused):
        hub.council.renew_certificate(LEKSAND, Applicant.make(TIBRO).csr_der)
    with pytest.raises(MembershipConflict):
        hub.council.renew_certificate(TIBRO, Applicant.make(TIBRO).csr_der)
    assert a.kommunkod == LEKSAND


def test_renewals_are_capped_per_period_with_the_time_to_retry(hub: HubUnderTest) -> None:
    """Issue 16: RenewCertificate had no cap. 3 a day by default; the 4th is refused
    until the oldest of the 3 is a day old (a sliding window over issued certificates)."""
    admit(hub)
    first = hub.clock.now
    for step in (0, HOUR, HOUR):
        hub.clock.now += step
        hub.council.renew_certificate(LEKSAND, Applicant.make(LEKSAND).csr_der)
    hub.clock.now += HOUR
    with pytest.raises(QuotaExhausted) as exc:
        hub.council.renew_certificate(LEKSAND, Applicant.make(LEKSAND).csr_der)
    assert exc.value.reason == "renewal_limit" and exc.value.retry_at_ms == first + DAY
    assert "the next renewal is allowed at" in str(exc.value) and "(in 21 h)" in str(exc.value)
    hub.clock.now = first + DAY - 1
    with pytest.raises(QuotaExhausted):
        hub.council.renew_certificate(LEKSAND, Applicant.make(LEKSAND).csr_der)
    hub.clock.now = first + DAY
    hub.council.renew_certificate(LEKSAND, Applicant.make(LEKSAND).csr_der)
    with pytest.raises(QuotaExhausted) as exc:
        hub.council.renew_certificate(LEKSAND, Applicant.make(LEKSAND).csr_der)
    assert exc.value.retry_at_ms == first + HOUR + DAY


def test_directory_is_reissued_after_half_its_life(hub: HubUnderTest) -> None:
    first = hub.council.ensure_fresh_directory()
    assert first.version == 1
    life = hub.hub.config.directory.valid_ms
    hub.clock.now = first.issued_at_ms + life // 2 - 1
    assert hub.council.ensure_fresh_directory().version == 1
    hub.clock.now = first.issued_at_ms + life // 2
    second = hub.council.ensure_fresh_directory()
    assert second.version == 2 and second.expires_at_ms == hub.clock.now + life
    assert hub.council.reissue_directory(min_version=50).version == 50
    assert hub.council.reissue_directory().version == 51


def test_concurrent_publishers_never_share_a_version(hub: HubUnderTest) -> None:
    versions: list[int] = []
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            for _ in range(5):
                versions.append(hub.council.reissue_directory().version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(versions) == list(range(2, 22))


def test_member_hosts_never_include_the_hubs_names() -> None:
    hub_names = ("hub.samverka.se", "localhost", "127.0.0.1")
    assert member_hosts(
        "2029",
        requested=("localhost", "hub.samverka.se", "::1"),
        address="hub.samverka.se:7443",
        hub_hosts=hub_names,
    ) == ("localhost", "::1")
    assert member_hosts("2029", requested=(), address="", hub_hosts=hub_names) == (
        "kommun-2029.samverka.invalid",
    )
    assert member_hosts("2029", requested=(), address="node.leksand.se:1", hub_hosts=hub_names) == (
        "node.leksand.se",
    )


def test_models_match_the_migrated_schema(hub: HubUnderTest) -> None:
    inspector = sa.inspect(hub.hub.store.engine)
    for model in HubTable.__subclasses__():
        table = model.table()
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(columns) == set(table.columns.keys()), table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (
                table.name,
                column.name,
            )


def test_one_key_cannot_make_endless_requests(hub: HubUnderTest) -> None:
    from samverka_hub.council import MAX_REQUESTS_PER_KEY

    a = Applicant.make(TIBRO)
    for i in range(MAX_REQUESTS_PER_KEY):
        hub.council.submit_enrollment(a.request(at=T0 + i))
    assert len(hub.council.pending()) == 1  # each replaced the one before
    with pytest.raises(MembershipConflict) as exc:
        hub.council.submit_enrollment(a.request(at=T0 + MAX_REQUESTS_PER_KEY))
    assert exc.value.reason == "too_many_requests"


def test_directory_watcher_follows_decisions_and_reissues(hub: HubUnderTest) -> None:
    """What `hub serve` sees: versions written by other processes, and timely re-signing."""
    import asyncio

    from samverka_hub.directory_watch import DirectoryWatcher

    async def scenario() -> list[int]:
        watcher = DirectoryWatcher(hub.council, poll_seconds=0.01)
        await watcher.start()
        try:
            seen = [watcher.current.version]
            admit(hub)  # the operator's CLI, in effect: a new version in the database
            seen.append((await watcher.refresh()).version)
            assert watcher.current.is_active(LEKSAND)
            hub.clock.now += hub.hub.config.directory.reissue_after_ms
            seen.append((await watcher.refresh()).version)
            seen.append((await watcher.refresh()).version)  # nothing new: same version
            return seen
        finally:
            await watcher.close()

    assert asyncio.run(scenario()) == [1, 2, 3, 3]
