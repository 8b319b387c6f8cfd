"""X.509 for mutual TLS: a certificate authority and the certificates it issues.

ECDSA P-256 with SHA-256 throughout (Ed25519 TLS certificates failed the handshake
with grpcio here; Ed25519 stays for record signatures). A member's kommunkod is
the certificate's common name and also sits in its organizational unit, so a
server can tell which kommun is calling.

Enrollment without moving private keys: the node makes a key and a certificate
request (:func:`create_csr`, PKCS#10 DER, CN = kommunkod), the hub checks it
(:func:`verify_csr`) and signs the requested public key (:func:`issue_from_csr`).
:func:`verify_certificate` checks that a certificate was issued by a given CA, is
in its validity window and names the expected kommun. Everything here is pure:
bytes in, bytes out; callers own the files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from samverka.errors import CertificateInvalid, Reason
from samverka.protocol.kommuner import is_origin

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Largest certificate request accepted (one is about 500 bytes).
MAX_CSR_BYTES = 4 * 1024


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
    hosts: Sequence[str] = DEFAULT_HOSTS,
    days: int = 397,
    not_before: dt.datetime | None = None,
    public_key: ec.EllipticCurvePublicKey | None = None,
) -> CertKeyPair:
    """A certificate for one participant, good as TLS server and as TLS client.

    With ``public_key`` (from a certificate request) that key is certified and the
    returned ``key_pem`` is empty; otherwise a new key pair is made and returned.
    """
    key = None
    if public_key is None:
        key = _new_key()
        public_key = key.public_key()
    cert = _sign_end_entity(
        ca,
        kommunkod=kommunkod,
        name=name,
        hosts=hosts,
        days=days,
        not_before=not_before,
        public_key=public_key,
    )
    return CertKeyPair(
        cert.public_bytes(serialization.Encoding.PEM), _key_pem(key) if key is not None else b""
    )


def _subject(kommunkod: str, name: str) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Samverka"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"kommun:{kommunkod}"),
        x509.NameAttribute(NameOID.COMMON_NAME, kommunkod),
    ]
    if name:
        attrs.insert(1, x509.NameAttribute(NameOID.LOCALITY_NAME, name))
    return x509.Name(attrs)


def _general_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return sans


def _sign_end_entity(
    ca: CertKeyPair,
    *,
    kommunkod: str,
    name: str,
    hosts: Sequence[str],
    days: int,
    not_before: dt.datetime | None,
    public_key: ec.EllipticCurvePublicKey,
) -> x509.Certificate:
    if not is_origin(kommunkod):
        raise ValueError(f"{kommunkod!r} is not a kommunkod")
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise ValueError("TLS keys must be ECDSA P-256")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be ECDSA P-256")
    start = not_before or (_now() - dt.timedelta(minutes=5))
    return (
        x509.CertificateBuilder()
        .subject_name(_subject(kommunkod, name))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_general_names(hosts)), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


# -- certificate requests -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsrKeyPair:
    """A PKCS#10 request (DER, as EnrollmentRequest.csr_der carries it) and its key."""

    csr_der: bytes
    key_pem: bytes


@dataclass(frozen=True, slots=True)
class CsrInfo:
    """What a checked certificate request asks for."""

    kommunkod: str
    public_key: ec.EllipticCurvePublicKey
    #: Host names and addresses requested as subject alternative names. The hub
    #: decides which to certify: any member certificate is trusted by every peer,
    #: so a name like the hub's own must never be granted to a node.
    hosts: tuple[str, ...]


def create_csr(
    kommunkod: str,
    *,
    name: str = "",
    hosts: Sequence[str] = DEFAULT_HOSTS,
    key_pem: bytes | None = None,
) -> CsrKeyPair:
    """A certificate request for ``kommunkod`` (CN and OU ``kommun:<code>``).

    A new ECDSA P-256 key is made unless ``key_pem`` is given (renewal keeps the key).
    """
    if not is_origin(kommunkod):
        raise ValueError(f"{kommunkod!r} is not a kommunkod")
    if key_pem is None:
        key = _new_key()
    else:
        loaded = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or not isinstance(
            loaded.curve, ec.SECP256R1
        ):
            raise ValueError("TLS keys must be ECDSA P-256")
        key = loaded
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(kommunkod, name))
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_general_names(hosts)), critical=False
        )
    csr = builder.sign(key, hashes.SHA256())
    return CsrKeyPair(csr.public_bytes(serialization.Encoding.DER), _key_pem(key))


def _text_values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [
        a.value if isinstance(a.value, str) else a.value.decode("utf-8", "replace")
        for a in name.get_attributes_for_oid(oid)
    ]


def _kommunkod_of_name(name: x509.Name, what: str) -> str:
    """The kommunkod a subject names: exactly one CN, a valid code, OU consistent."""
    common_names = _text_values(name, NameOID.COMMON_NAME)
    if len(common_names) != 1 or not is_origin(common_names[0]):
        raise CertificateInvalid(
            f"the {what}'s common name is {common_names!r}; it must be one kommunkod"
        )
    code = common_names[0]
    for unit in _text_values(name, NameOID.ORGANIZATIONAL_UNIT_NAME):
        if unit.startswith("kommun:") and unit != f"kommun:{code}":
            raise CertificateInvalid(f"the {what} names {unit!r} but its common name is {code}")
    return code


def verify_csr(csr: bytes, *, kommunkod: str | None = None) -> CsrInfo:
    """Check a certificate request (DER or PEM) and say what it asks for.

    Refused (CertificateInvalid): oversize or unparsable input, a self-signature
    that does not verify, a key other than ECDSA P-256, a hash other than SHA-256,
    a common name that is not one kommunkod (or not ``kommunkod`` when given), an
    OU ``kommun:<code>`` naming another kommun.
    """
    if len(csr) > MAX_CSR_BYTES:
        raise CertificateInvalid(
            f"the request is {len(csr)} bytes, at most {MAX_CSR_BYTES}", reason=Reason.TOO_LARGE
        )
    try:
        if csr.lstrip().startswith(b"-----BEGIN"):
            request = x509.load_pem_x509_csr(csr)
        else:
            request = x509.load_der_x509_csr(csr)
        signature_ok = request.is_signature_valid
        key = request.public_key()
        hash_algorithm = request.signature_hash_algorithm
        subject = request.subject
        try:
            san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = None
    except (ValueError, UnsupportedAlgorithm, InvalidSignature) as exc:
        raise CertificateInvalid(f"not a certificate request: {exc}") from exc
    if not signature_ok:
        raise CertificateInvalid("the request's own signature does not verify")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertificateInvalid(
            "the request's key must be ECDSA P-256 (Ed25519 TLS keys fail with grpcio)"
        )
    if not isinstance(hash_algorithm, hashes.SHA256):
        raise CertificateInvalid("the request must be signed with SHA-256")
    code = _kommunkod_of_name(subject, "request")
    if kommunkod is not None and code != kommunkod:
        raise CertificateInvalid(f"the request is for {code}, expected {kommunkod}")
    hosts: list[str] = []
    if san is not None:
        hosts.extend(san.get_values_for_type(x509.DNSName))
        hosts.extend(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return CsrInfo(kommunkod=code, public_key=key, hosts=tuple(hosts))


def issue_from_csr(
    ca: CertKeyPair,
    csr: bytes,
    *,
    kommunkod: str,
    hosts: Sequence[str],
    name: str = "",
    days: int = 397,
    not_before: dt.datetime | None = None,
) -> bytes:
    """Check ``csr`` is ``kommunkod``'s and return a certificate (PEM) for its key.

    ``hosts`` is the hub's decision, not the request's (see :class:`CsrInfo`).
    """
    info = verify_csr(csr, kommunkod=kommunkod)
    cert = _sign_end_entity(
        ca,
        kommunkod=info.kommunkod,
        name=name,
        hosts=hosts,
        days=days,
        not_before=not_before,
        public_key=info.public_key,
    )
    return cert.public_bytes(serialization.Encoding.PEM)


# -- checking certificates ------------------------------------------------------------


def verify_certificate(
    cert_pem: bytes,
    ca_cert_pem: bytes,
    *,
    kommunkod: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """Check that ``cert_pem`` was issued by the CA and return its kommunkod.

    ``ca_cert_pem`` may be a bundle (while the hub rotates its CA, tls/ca.pem holds the
    old and the new CA): the certificate must be issued by one of them.

    Refused (CertificateInvalid): not issued and signed by this CA, outside its (or
    the CA's) validity window at ``now`` (default: the current time), itself a CA,
    a key other than ECDSA P-256, a subject that is not one kommunkod with a
    matching OU, or another kommun than ``kommunkod`` when given.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca_certs = x509.load_pem_x509_certificates(ca_cert_pem)
    except ValueError as exc:
        raise CertificateInvalid(f"not a PEM certificate: {exc}") from exc
    ca_cert = _issuer_in(cert, ca_certs)
    at = now or _now()
    for label, c in (("certificate", cert), ("CA certificate", ca_cert)):
        if at < c.not_valid_before_utc:
            raise CertificateInvalid(f"the {label} is not valid before {c.not_valid_before_utc}")
        if at > c.not_valid_after_utc:
            raise CertificateInvalid(
                f"the {label} expired at {c.not_valid_after_utc}",
                hint="renew it: make a new certificate request for the hub",
            )
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            raise CertificateInvalid("a CA certificate cannot be a member certificate")
    except x509.ExtensionNotFound:
        pass
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertificateInvalid("the certificate's key must be ECDSA P-256")
    code = _kommunkod_of_name(cert.subject, "certificate")
    if kommunkod is not None and code != kommunkod:
        raise CertificateInvalid(f"the certificate is {code}'s, expected {kommunkod}")
    return code


def _issuer_in(cert: x509.Certificate, ca_certs: Sequence[x509.Certificate]) -> x509.Certificate:
    """The CA certificate among ``ca_certs`` that issued and signed ``cert``."""
    cas = [c for c in ca_certs if _is_ca(c)]
    if not cas:
        raise CertificateInvalid("the issuer given is not a CA certificate")
    for ca_cert in cas:
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca_cert
    raise CertificateInvalid(
        "the certificate was not issued by this CA",
        hint="use the CA of the network you enrolled in (tls/ca.pem)",
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


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
