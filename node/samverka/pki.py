"""X.509 for mutual TLS: a certificate authority and the certificates it issues.

ECDSA P-256 with SHA-256 throughout (Ed25519 TLS certificates failed the handshake
with grpcio here; Ed25519 stays for record signatures). A member's kommunkod is
the certificate's common name and also sits in its organizational unit, so a
server can tell which kommun is calling.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class CertKeyPair:
    cert_pem: bytes
    key_pem: bytes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_ca(common_name: str, *, days: int = 3650) -> CertKeyPair:
    """A self-signed CA certificate that may sign end-entity certificates only."""
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Samverka"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_certificate(
    ca: CertKeyPair,
    *,
    kommunkod: str,
    name: str = "",
    hosts: tuple[str, ...] | list[str] = DEFAULT_HOSTS,
    days: int = 397,
    not_before: dt.datetime | None = None,
    public_key: ec.EllipticCurvePublicKey | None = None,
) -> CertKeyPair:
    """A certificate for one participant, good as TLS server and as TLS client.

    ``public_key`` signs a key from a certificate request; otherwise a new key pair
    is made and returned (its ``key_pem`` is then empty only in the former case).
    """
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be ECDSA P-256")
    key = None
    if public_key is None:
        key = _new_key()
        public_key = key.public_key()
    subject_attrs = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Samverka"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"kommun:{kommunkod}"),
        x509.NameAttribute(NameOID.COMMON_NAME, kommunkod),
    ]
    if name:
        subject_attrs.insert(1, x509.NameAttribute(NameOID.LOCALITY_NAME, name))
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    start = not_before or (_now() - dt.timedelta(minutes=5))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject_attrs))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return CertKeyPair(
        cert.public_bytes(serialization.Encoding.PEM), _key_pem(key) if key is not None else b""
    )


def kommunkod_of(cert_pem: bytes) -> str | None:
    """The kommunkod a Samverka certificate was issued to, or None."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    for attr in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        value = attr.value if isinstance(attr.value, str) else attr.value.decode()
        if value.startswith("kommun:"):
            return value.removeprefix("kommun:")
    return None


def not_valid_after(cert_pem: bytes) -> dt.datetime:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
