"""Certificate authority, certificate requests and certificate checks (pure, in memory)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from samverka.errors import CertificateInvalid
from samverka.transport import pki


@pytest.fixture(scope="module")
def ca() -> pki.CertKeyPair:
    return pki.create_ca("Samverka test CA")


@pytest.fixture(scope="module")
def other_ca() -> pki.CertKeyPair:
    return pki.create_ca("Another CA")


_SHA256 = hashes.SHA256()


def _csr(
    subject: list[x509.NameAttribute[str]], key: object = None, algorithm: object = _SHA256
) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    csr = builder.sign(key, algorithm)  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.DER)


def test_csr_round_trip_to_a_certificate(ca: pki.CertKeyPair) -> None:
    request = pki.create_csr("2029", name="Leksand", hosts=["node.leksand.se", "10.1.2.3"])
    info = pki.verify_csr(request.csr_der, kommunkod="2029")
    assert info.kommunkod == "2029"
    assert info.hosts == ("node.leksand.se", "10.1.2.3")
    cert_pem = pki.issue_from_csr(ca, request.csr_der, kommunkod="2029", hosts=["node.leksand.se"])
    assert pki.verify_certificate(cert_pem, ca.cert_pem, kommunkod="2029") == "2029"
    assert pki.kommunkod_of(cert_pem) == "2029"
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(request.key_pem, password=None)
    assert cert.public_key() == key.public_key()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["node.leksand.se"]  # the hub decided


def test_csr_in_pem_is_accepted_too() -> None:
    request = pki.create_csr("1472")
    csr = x509.load_der_x509_csr(request.csr_der)
    assert pki.verify_csr(csr.public_bytes(serialization.Encoding.PEM)).kommunkod == "1472"


def test_a_renewal_keeps_the_key() -> None:
    first = pki.create_csr("2029")
    second = pki.create_csr("2029", key_pem=first.key_pem)
    a = pki.verify_csr(first.csr_der).public_key
    b = pki.verify_csr(second.csr_der).public_key
    assert a == b


def test_create_csr_refuses_a_bad_code_and_a_bad_key() -> None:
    with pytest.raises(ValueError):
        pki.create_csr("9999")
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError):
        pki.create_csr("2029", key_pem=p384)


CN = NameOID.COMMON_NAME
OU = NameOID.ORGANIZATIONAL_UNIT_NAME


@pytest.mark.parametrize(
    ("csr", "words"),
    [
        (
            _csr([x509.NameAttribute(CN, "2029")], key=ec.generate_private_key(ec.SECP384R1())),
            "P-256",
        ),
        (
            _csr(
                [x509.NameAttribute(CN, "2029")],
                key=ed25519.Ed25519PrivateKey.generate(),
                algorithm=None,
            ),
            "P-256",
        ),
        (_csr([x509.NameAttribute(CN, "2029")], algorithm=hashes.SHA384()), "SHA-256"),
        (_csr([x509.NameAttribute(CN, "9999")]), "common name"),
        (_csr([x509.NameAttribute(CN, "2029"), x509.NameAttribute(CN, "1472")]), "common name"),
        (_csr([x509.NameAttribute(OU, "kommun:2029")]), "common name"),
        (_csr([x509.NameAttribute(CN, "2029"), x509.NameAttribute(OU, "kommun:1472")]), "names"),
        (_csr([x509.NameAttribute(CN, "1472")]), "expected 2029"),
        (b"not a csr", "not a certificate request"),
        (b"\x00" * (pki.MAX_CSR_BYTES + 1), "at most"),
    ],
)
def test_bad_requests_are_refused(csr: bytes, words: str) -> None:
    with pytest.raises(CertificateInvalid, match=words):
        pki.verify_csr(csr, kommunkod="2029")


def test_a_tampered_request_is_refused() -> None:
    der = bytearray(pki.create_csr("2029").csr_der)
    der[-5] ^= 0x01  # inside the signature
    with pytest.raises(CertificateInvalid):
        pki.verify_csr(bytes(der))
    with pytest.raises(CertificateInvalid):
        pki.issue_from_csr(pki.create_ca("x"), bytes(der), kommunkod="2029", hosts=[])


def test_issue_from_csr_checks_the_kommun(ca: pki.CertKeyPair) -> None:
    request = pki.create_csr("2029")
    with pytest.raises(CertificateInvalid, match="expected 1472"):
        pki.issue_from_csr(ca, request.csr_der, kommunkod="1472", hosts=["localhost"])


def test_a_certificate_from_another_ca_is_refused(
    ca: pki.CertKeyPair, other_ca: pki.CertKeyPair
) -> None:
    cert = pki.issue_certificate(other_ca, kommunkod="2029").cert_pem
    with pytest.raises(CertificateInvalid, match="not issued by this CA"):
        pki.verify_certificate(cert, ca.cert_pem)


def test_a_same_named_impostor_ca_is_refused(ca: pki.CertKeyPair) -> None:
    impostor = pki.create_ca("Samverka test CA")  # same subject, different key
    cert = pki.issue_certificate(impostor, kommunkod="2029").cert_pem
    with pytest.raises(CertificateInvalid, match="not issued by this CA"):
        pki.verify_certificate(cert, ca.cert_pem)


def test_expired_and_not_yet_valid_certificates(ca: pki.CertKeyPair) -> None:
    cert = pki.issue_certificate(ca, kommunkod="2029", days=1).cert_pem
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with pytest.raises(CertificateInvalid, match="expired"):
        pki.verify_certificate(cert, ca.cert_pem, now=later)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with pytest.raises(CertificateInvalid, match="not valid before"):
        pki.verify_certificate(cert, ca.cert_pem, now=earlier)


def test_wrong_kommun_and_ca_as_member(ca: pki.CertKeyPair) -> None:
    cert = pki.issue_certificate(ca, kommunkod="1472").cert_pem
    with pytest.raises(CertificateInvalid, match="expected 2029"):
        pki.verify_certificate(cert, ca.cert_pem, kommunkod="2029")
    with pytest.raises(CertificateInvalid, match="CA certificate cannot"):
        pki.verify_certificate(ca.cert_pem, ca.cert_pem)
    leaf_as_ca = pki.issue_certificate(ca, kommunkod="1472").cert_pem
    with pytest.raises(CertificateInvalid, match="not a CA"):
        pki.verify_certificate(cert, leaf_as_ca)
    with pytest.raises(CertificateInvalid, match="not a PEM"):
        pki.verify_certificate(b"junk", ca.cert_pem)


def test_the_hub_origin_can_hold_a_certificate(ca: pki.CertKeyPair) -> None:
    cert = pki.issue_certificate(ca, kommunkod="0000").cert_pem
    assert pki.verify_certificate(cert, ca.cert_pem) == "0000"


def test_issue_certificate_refuses_a_bad_code(ca: pki.CertKeyPair) -> None:
    with pytest.raises(ValueError):
        pki.issue_certificate(ca, kommunkod="localhost")
