"""The hub's certificate authority: member certificates from requests, and their names.

Every member certificate is trusted by every participant, so the names in it matter:
a node that could get a certificate for the hub's host name could pose as the hub to
other members. The hub therefore decides the names itself (:func:`member_hosts`):

- the host of the address the member registered (the operator saw it when approving),
  unless it is one of the hub's own names;
- loopback names the request asks for (``localhost``, ``127.0.0.1``, ``::1``): only a
  process on the same machine can answer there, so they grant nothing to an outsider
  and let a pilot run a node and the hub on one host;
- and, when that leaves nothing, ``kommun-<kod>.samverka.invalid`` (RFC 6761: never
  resolves) so the certificate has a subject alternative name at all.

Names a request asks for beyond those are ignored.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from samverka.config import read_file
from samverka.membership.enrollment import check_address
from samverka.transport.pki import CertKeyPair, issue_from_csr, verify_csr


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    pem: bytes
    serial: str
    not_before_ms: int
    not_after_ms: int


def describe(pem: bytes) -> IssuedCertificate:
    cert = x509.load_pem_x509_certificate(pem)
    return IssuedCertificate(
        pem=pem,
        serial=format(cert.serial_number, "x"),
        not_before_ms=int(cert.not_valid_before_utc.timestamp() * 1000),
        not_after_ms=int(cert.not_valid_after_utc.timestamp() * 1000),
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def certificate_hosts(pem: bytes) -> tuple[str, ...]:
    """The DNS names and IP addresses a certificate is valid for."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return (
        *san.get_values_for_type(x509.DNSName),
        *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
    )


def member_hosts(
    kommunkod: str, *, requested: tuple[str, ...], address: str, hub_hosts: tuple[str, ...]
) -> tuple[str, ...]:
    """The names a member's certificate gets (see the module docstring)."""
    reserved = {h.lower() for h in hub_hosts if not is_loopback(h)}
    granted: list[str] = []
    if address:
        host, _port = check_address(address)
        if host.lower() not in reserved:
            granted.append(host)
    for host in requested:
        if is_loopback(host) and host not in granted:
            granted.append(host)
    return tuple(granted) or (f"kommun-{kommunkod}.samverka.invalid",)


class HubCA:
    """The CA's certificate and key, and the hub's own names (never given to a member)."""

    def __init__(self, pair: CertKeyPair, *, hub_hosts: tuple[str, ...] = ()) -> None:
        self.pair = pair
        self.hub_hosts = hub_hosts

    @property
    def cert_pem(self) -> bytes:
        return self.pair.cert_pem

    @classmethod
    def load(cls, cert_path: Path, key_path: Path, hub_cert_path: Path) -> HubCA:
        def read(path: Path, what: str) -> bytes:
            return read_file(
                path, what, hint="the hub folder is incomplete; `samverka hub init` writes it"
            )

        pair = CertKeyPair(read(cert_path, "CA certificate"), read(key_path, "CA key"))
        hub_hosts = certificate_hosts(read(hub_cert_path, "hub TLS certificate"))
        return cls(pair, hub_hosts=hub_hosts)

    def issue_member(
        self,
        csr_der: bytes,
        *,
        kommunkod: str,
        name: str,
        address: str,
        days: int,
        now: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """A TLS certificate for ``kommunkod``'s key in ``csr_der`` (checked again here)."""
        info = verify_csr(csr_der, kommunkod=kommunkod)
        hosts = member_hosts(
            kommunkod, requested=info.hosts, address=address, hub_hosts=self.hub_hosts
        )
        not_before = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
        pem = issue_from_csr(
            self.pair,
            csr_der,
            kommunkod=kommunkod,
            hosts=hosts,
            name=name,
            days=days,
            not_before=not_before,
        )
        return describe(pem)
