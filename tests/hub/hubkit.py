"""Helpers for the hub's membership tests (``import hubkit``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from samverka.enrollment import build_enrollment_request, build_key_rotation
from samverka.pki import create_csr
from samverka.signing import SigningKey
from samverka.v1 import directory_pb2
from samverka_hub.folder import Hub, init_hub

#: "Now" for the council's clock when a test starts (the real time at import, so that
#: init_hub's first directory fits); tests move the clock from there.
T0 = time.time_ns() // 1_000_000
HOUR = 3600 * 1000
DAY = 24 * HOUR


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now


@dataclass
class HubUnderTest:
    hub: Hub
    clock: Clock

    @property
    def council(self):  # type: ignore[no-untyped-def]
        return self.hub.council


@contextlib.contextmanager
def make_hub(path: Path, *, store_url: str = "") -> Iterator[HubUnderTest]:
    hub = init_hub(path, store_url=store_url)
    clock = Clock()
    hub.council.clock = clock
    try:
        yield HubUnderTest(hub, clock)
    finally:
        hub.close()


@dataclass
class Applicant:
    """A kommun's keys as its node would make them."""

    kommunkod: str
    key: SigningKey
    tls_key_pem: bytes
    csr_der: bytes

    @classmethod
    def make(cls, kommunkod: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Applicant:
        csr = create_csr(kommunkod, hosts=hosts)
        return cls(kommunkod, SigningKey.generate(), csr.key_pem, csr.csr_der)

    def request(
        self, *, at: int = T0, address: str = "", contact_role: str = "IT-chef"
    ) -> directory_pb2.SignedEnrollmentRequest:
        return build_enrollment_request(
            self.key,
            kommunkod=self.kommunkod,
            csr_der=self.csr_der,
            created_at_ms=at,
            contact_role=contact_role,
            address=address,
        )

    def rotation(self, new: SigningKey, *, at: int = T0) -> directory_pb2.SignedKeyRotation:
        return build_key_rotation(self.key, new, kommunkod=self.kommunkod, created_at_ms=at)
