"""RenewCertificate is capped per member and period, across hub replicas (issue 16).

Two hub replicas on one PostgreSQL database (the ``replicas`` fixture of
test_replicas.py, real processes on loopback over mutual TLS): a member renews at A, B
and A again, the default ``[ca] max_renewals`` (3 a day); its fourth renewal is refused
at either replica with RESOURCE_EXHAUSTED ``renewal_limit`` and the time to try again,
because the count is kept in the shared database (the issued certificates), not in a
replica's memory.
"""

from __future__ import annotations

import time

import grpc
import pytest
import test_replicas
from hubkit import run_async
from samverka.transport.hubclient import HubClient
from samverka.transport.pki import create_csr
from samverka.transport.server.status import PeerError
from test_replicas import Replicas

#: Two replicas on a database of their own (test_replicas.py's fixture, set up again here).
replicas = test_replicas.replicas
KUNGSBACKA = "1384"
DAY_MS = 24 * 3_600_000


def renew(address: str, replicas: Replicas) -> bytes:
    member = replicas.member(KUNGSBACKA)

    async def call() -> bytes:
        async with HubClient(address, member.tls) as link:
            return await link.renew_certificate(create_csr(KUNGSBACKA).csr_der)

    return run_async(call())


def test_renewals_are_capped_per_member_across_replicas(replicas: Replicas) -> None:
    member = replicas.member(KUNGSBACKA)
    replicas.wait_admitted(member)
    started = time.time_ns() // 1_000_000
    for address in (replicas.a.member, replicas.b.member, replicas.a.member):
        assert b"BEGIN CERTIFICATE" in renew(address, replicas)
    refusals = []
    for address in (replicas.b.member, replicas.a.member):
        with pytest.raises(PeerError) as exc:
            renew(address, replicas)
        refusals.append(exc.value)
    for refused in refusals:
        assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED, refused
        assert refused.reason == "renewal_limit", refused
        assert "3 times in the last 24 h (the limit is 3)" in str(refused), refused
        assert "the next renewal is allowed at" in str(refused), refused
        retry_at = int(refused.metadata["retry_at_ms"])
        assert started + DAY_MS <= retry_at <= time.time_ns() // 1_000_000 + DAY_MS
    with replicas.hub.members.read() as tx:
        renewals = [c for c in tx.certificates(KUNGSBACKA) if c.purpose == "renewal"]
    assert len(renewals) == 3  # the refused calls issued nothing
