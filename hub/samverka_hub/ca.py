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

While the CA is being rotated (``hub rotate-keys --ca``, :mod:`samverka_hub.keyrotation`)
``tls/ca.pem`` is a bundle of the old and the new CA certificate: the member port
accepts client certificates from both, and the CA that issues is the one whose key is
``ca/ca.key`` (:func:`issuing_certificate`). A running hub re-reads both files when
they change, so it issues from the new CA at once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from samverka.config import read_file
from samverka.errors import ConfigError
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


def split_bundle(pem: bytes) -> list[bytes]:
    """Each certificate of a PEM bundle, as PEM."""
    return [
        c.public_bytes(serialization.Encoding.PEM) for c in x509.load_pem_x509_certificates(pem)
    ]


def issuing_certificate(bundle_pem: bytes, key_pem: bytes) -> bytes:
    """The certificate in ``bundle_pem`` whose public key is that of ``key_pem``."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    want = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for cert in x509.load_pem_x509_certificates(bundle_pem):
        have = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if have == want:
            return cert.public_bytes(serialization.Encoding.PEM)
    raise ConfigError(
        "no certificate in the CA bundle (tls/ca.pem) belongs to the CA key (ca/ca.key)",
        hint="restore tls/ca.pem and ca/ca.key from the hub's backup, as one pair",
    )


class HubCA:
    """The CA's certificate and key, and the hub's own names (never given to a member).

    Loaded from files (:meth:`load`), it re-reads them when they change: ``hub
    rotate-keys --ca`` run beside a serving hub makes it issue from the new CA."""

    def __init__(
        self,
        pair: CertKeyPair,
        *,
        hub_hosts: tuple[str, ...] = (),
        source: tuple[Path, Path] | None = None,
    ) -> None:
        self._pair = pair
        self.hub_hosts = hub_hosts
        self._source = source
        self._stamp = _stamp(source) if source is not None else None

    @property
    def pair(self) -> CertKeyPair:
        """The issuing CA's certificate (alone, not the bundle) and key."""
        if self._source is not None:
            stamp = _stamp(self._source)
            if stamp != self._stamp:
                self._pair = _read_pair(*self._source)
                self._stamp = stamp
        return self._pair

    @property
    def cert_pem(self) -> bytes:
        return self.pair.cert_pem

    def bundle_pem(self) -> bytes:
        """Every CA certificate members must trust now (tls/ca.pem): the issuing CA's
        alone, or the old and the new one while the CA is being rotated."""
        if self._source is None:
            return self.pair.cert_pem
        return read_file(self._source[0], "CA certificate")

    @classmethod
    def load(cls, cert_path: Path, key_path: Path, hub_cert_path: Path) -> HubCA:
        hub_hosts = certificate_hosts(_read(hub_cert_path, "hub TLS certificate"))
        source = (cert_path, key_path)
        return cls(_read_pair(*source), hub_hosts=hub_hosts, source=source)

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


def _read(path: Path, what: str) -> bytes:
    return read_file(path, what, hint="the hub folder is incomplete; `samverka hub init` writes it")


def _read_pair(cert_path: Path, key_path: Path) -> CertKeyPair:
    key_pem = _read(key_path, "CA key")
    return CertKeyPair(issuing_certificate(_read(cert_path, "CA certificate"), key_pem), key_pem)


def _stamp(paths: tuple[Path, ...]) -> tuple[tuple[int, int, int], ...]:
    """Changes when a file is replaced (a new inode) or rewritten."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            out.append((0, 0, 0))
            continue
        out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)
