"""``samverka hub rotate-keys``: the hub's own keys replaced, announced under the old key.

Which keys (any of them, at once):

- **the directory key** (``keys/signing.key``): signs the member directory and the
  council's records (origin 0000); nodes pin it at enrollment;
- **the log key** (``keys/log.key``): signs the transparency log's checkpoints; nodes
  pin the one ``Directory.log_key`` names;
- **the CA** (``ca/ca.key``, certificate in ``tls/ca.pem``): certifies every member's
  TLS key; nodes trust it for the hub and for each other.

How (TUF's root rotation): the hub signs a ``HubKeyRotation`` (old directory key id,
new directory key, new log key, new CA certificate) with the current and the new
directory key, and the next directory version, signed by the new key, carries it
(:meth:`samverka_hub.council.Council.publish_rotation`). A node that fetches that
version verifies the rotation with the key it pins and follows it: pins the new keys
and adds the new CA to its trust bundle (:mod:`samverka.membership.hubtrust`). No
kommun enrolls again. A node that missed several rotations follows them one at a time:
``GetDirectory`` answers a node behind a rotation with the version that introduced it.

Files, so that a crash at any point is finished by the next command::

    rotation/             the new keys, written (0600) before the directory version
                          that announces them is committed; moved into place after,
                          then removed (open_hub finishes a move a crash cut short,
                          and drops keys whose announcement never committed)
    keys/retired/<id>.key       directory keys rotated away from (0600)
    keys/retired-log/<hash>.key log keys rotated away from (0600)
    ca/retired/<serial>.pem|key CAs rotated away from
    tls/ca.pem            the old and the new CA while the CA rotation runs
    tls/next/node.pem|key the hub's certificate from the new CA, served from --finish

The CA rotation has two steps. ``rotate-keys --ca``: the new CA issues every new
member certificate (renewals, enrollments) and the member port accepts client
certificates from both CAs (after a restart); the hub keeps presenting its certificate
from the old CA, which every node, followed or not, still trusts. Members renew
(``samverka node renew-cert``). ``rotate-keys --finish``, once every active member holds
a certificate from the new CA (or the old ones have expired; ``--force`` overrides):
the hub presents its certificate from the new CA and trusts only the new CA (after a
restart). A node that never came online between the two steps must be given the new CA
by hand.

A running ``hub serve`` reads the directory key, the log key and the issuing CA from
the folder when they change; the TLS certificate it presents and the client CAs it
accepts need a restart (replicas one at a time). Replicas with folders of their own
need the new files copied; until then they sign nothing (the council refuses a key
the directory rotated away from, the sequencer a log key the directory does not
name).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from samverka.config import read_file
from samverka.errors import ConfigError, DirectoryRefused
from samverka.membership.member import write_file
from samverka.node import load_signing_key
from samverka.protocol.hubrotation import build_hub_rotation, carried_rotation, parse_hub_rotation
from samverka.protocol.kommuner import HUB_ORIGIN, kommun_name
from samverka.protocol.note import Ed25519Signer
from samverka.protocol.signing import SigningKey
from samverka.transport.pki import DEFAULT_HOSTS, CertKeyPair, create_ca, issue_certificate

from samverka_hub.ca import certificate_hosts, describe, issuing_certificate, split_bundle
from samverka_hub.folder import CA_NAME, Hub
from samverka_hub.members import stored_directory
from samverka_hub.tlog import LOG_KEY_FILE, LOG_VKEY_FILE, load_log_key

log = logging.getLogger("samverka_hub.keyrotation")

STAGING_DIR = "rotation"
RETIRED_HUB_KEYS = "keys/retired"
RETIRED_LOG_KEYS = "keys/retired-log"
RETIRED_CA = "ca/retired"
NEXT_TLS = "tls/next"

_STAGED_ROTATION = "rotation.bin"
_STAGED_SIGNING = "signing.key"
_STAGED_LOG = "log.key"
_STAGED_CA_CERT = "ca.pem"
_STAGED_CA_KEY = "ca.key"
_STAGED_HUB_CERT = "node.pem"
_STAGED_HUB_KEY = "node.key"


# -- rotating --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What ``hub rotate-keys`` did."""

    version: int
    old_key_id: str
    new_key_id: str
    old_log_key: str = ""
    new_log_key: str = ""
    old_ca_serial: str = ""
    new_ca_serial: str = ""
    #: The hub's certificate from the new CA, presented from ``--finish`` on.
    next_certificate: str = ""
    what: list[str] = field(default_factory=list)


def rotate_hub_keys(
    hub: Hub,
    *,
    directory: bool,
    log_key: bool,
    ca: bool,
    now: dt.datetime | None = None,
) -> RotationReport:
    """Make the new keys, stage them, announce them in the next directory version
    (signed by the new directory key), then put them in place."""
    if not (directory or log_key or ca):
        raise ConfigError("nothing to rotate", hint="name what: --directory, --log and/or --ca")
    hub_dir = hub.dir
    resume_rotation(hub)
    if ca and (hub_dir / NEXT_TLS).exists():
        raise ConfigError(
            "a CA rotation is still running: the hub's certificate from the newer CA waits "
            f"in {NEXT_TLS}/",
            hint="finish it first: `samverka hub rotate-keys --finish` (once members renewed)",
        )
    council = hub.council
    old_key = council.hub_key
    old_signer = load_log_key(hub_dir)
    new_key = SigningKey.generate() if directory else None
    new_log = (
        Ed25519Signer.generate(old_signer.name if old_signer else "localhost/samverka-log")
        if log_key
        else None
    )
    new_ca: CertKeyPair | None = None
    hub_cert: CertKeyPair | None = None
    if ca:
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H%M%S")
        new_ca = create_ca(f"{CA_NAME} {stamp}")
        node = hub.config.node
        current = certificate_hosts(read_file(node.path(node.tls.cert), "hub TLS certificate"))
        hub_cert = issue_certificate(
            new_ca,
            kommunkod=HUB_ORIGIN,
            name=kommun_name(HUB_ORIGIN),
            hosts=tuple(dict.fromkeys((*DEFAULT_HOSTS, *current))),
            days=hub.config.ca.member_cert_days,
        )
    signed = build_hub_rotation(
        old_key,
        new_key or old_key,
        created_at_ms=council.clock(),
        new_log_key=new_log.verifier().vkey if new_log else "",
        new_ca_pem=new_ca.cert_pem if new_ca else b"",
    )
    # Staged first (0600): once the version announcing them commits, the keys must exist.
    staging = hub_dir / STAGING_DIR
    if new_key is not None:
        write_file(staging / _STAGED_SIGNING, new_key.to_pem(), mode=0o600)
    if new_log is not None:
        write_file(staging / _STAGED_LOG, (new_log.skey + "\n").encode(), mode=0o600)
    if new_ca is not None and hub_cert is not None:
        write_file(staging / _STAGED_CA_KEY, new_ca.key_pem, mode=0o600)
        write_file(staging / _STAGED_CA_CERT, new_ca.cert_pem, mode=0o644)
        write_file(staging / _STAGED_HUB_KEY, hub_cert.key_pem, mode=0o600)
        write_file(staging / _STAGED_HUB_CERT, hub_cert.cert_pem, mode=0o644)
    write_file(staging / _STAGED_ROTATION, signed.SerializeToString(deterministic=True), mode=0o600)
    try:
        published = council.publish_rotation(signed, new_key or old_key)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # never announced: nothing to keep
        raise
    old_ca_serial = describe(hub.ca.cert_pem).serial if ca else ""
    _install(hub)
    found = parse_hub_rotation(signed)
    log.warning(
        "the hub's keys were rotated (%s): directory version %d, signed by key %s, "
        "announces them under key %s",
        ", ".join(found.what()),
        published.version,
        found.new_key.key_id,
        old_key.key_id,
        extra={"event": "hub_keys_rotated", "key_id": found.new_key.key_id},
    )
    return RotationReport(
        version=published.version,
        old_key_id=old_key.key_id,
        new_key_id=found.new_key.key_id,
        old_log_key=old_signer.verifier().vkey if (old_signer and new_log) else "",
        new_log_key=found.new_log_key,
        old_ca_serial=old_ca_serial,
        new_ca_serial=describe(new_ca.cert_pem).serial if new_ca else "",
        next_certificate=f"{NEXT_TLS}/node.pem" if ca else "",
        what=found.what(),
    )


def resume_rotation(hub: Hub) -> str:
    """Finish a rotation a crash cut short: the staged keys go into place if the
    directory version announcing them committed, else they are dropped (never
    announced). Returns "installed", "dropped" or "" (nothing staged)."""
    staging = hub.dir / STAGING_DIR
    staged = staging / _STAGED_ROTATION
    if not staged.exists():
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)  # cut short before the rotation
            return "dropped"
        return ""
    try:
        digest = parse_hub_rotation(staged.read_bytes()).digest
    except DirectoryRefused:
        digest = b""
    if digest and _announced(hub, digest):
        _install(hub)
        log.warning(
            "finished putting the hub's rotated keys in place (a rotation was cut short)",
            extra={"event": "hub_keys_rotation_resumed"},
        )
        return "installed"
    shutil.rmtree(staging, ignore_errors=True)
    return "dropped"


def _announced(hub: Hub, digest: bytes) -> bool:
    """Whether a stored directory version carries the rotation with this digest (the
    newest few: a rotation is carried by the version right after it was made)."""
    with hub.members.read() as tx:
        top = tx.directory_version()
        for version in range(top, max(0, top - 64), -1):
            row = tx.directory(version)
            if row is None:
                continue
            carried = carried_rotation(stored_directory(row).directory)
            if carried is not None and parse_hub_rotation(carried).digest == digest:
                return True
    return False


def _install(hub: Hub) -> None:
    """Move staged keys into place, keeping the old ones (idempotent, file by file)."""
    hub_dir = hub.dir
    staging = hub_dir / STAGING_DIR
    node = hub.config.node
    staged_key = staging / _STAGED_SIGNING
    if staged_key.exists():
        new_key = SigningKey.from_pem(staged_key.read_bytes())
        current = load_signing_key(node.signing_key_path)
        if current.key_id != new_key.key_id:
            write_file(
                hub_dir / RETIRED_HUB_KEYS / f"{current.key_id}.key", current.to_pem(), mode=0o600
            )
            write_file(node.signing_key_path, new_key.to_pem(), mode=0o600)
        write_file(node.public_key_path, new_key.public.to_pem(), mode=0o644)
        hub.signing_key = new_key
    staged_log = staging / _STAGED_LOG
    if staged_log.exists():
        new_log = Ed25519Signer.from_skey(staged_log.read_text(encoding="ascii").strip())
        current_log = load_log_key(hub_dir)
        if current_log is not None and current_log.skey != new_log.skey:
            write_file(
                hub_dir / RETIRED_LOG_KEYS / f"{current_log.key_hash:08x}.key",
                (current_log.skey + "\n").encode(),
                mode=0o600,
            )
        write_file(hub_dir / LOG_KEY_FILE, (new_log.skey + "\n").encode(), mode=0o600)
        write_file(hub_dir / LOG_VKEY_FILE, (new_log.verifier().vkey + "\n").encode(), mode=0o644)
    staged_ca = staging / _STAGED_CA_KEY
    if staged_ca.exists():
        ca_key_path, bundle_path = hub.config.ca_key_path, hub.config.ca_cert_path
        new_ca_key = staged_ca.read_bytes()
        new_ca_cert = (staging / _STAGED_CA_CERT).read_bytes()
        current_key = ca_key_path.read_bytes()
        bundle = bundle_path.read_bytes()
        if current_key != new_ca_key:
            old_cert = issuing_certificate(bundle, current_key)
            serial = describe(old_cert).serial
            write_file(hub_dir / RETIRED_CA / f"{serial}.pem", old_cert, mode=0o644)
            write_file(hub_dir / RETIRED_CA / f"{serial}.key", current_key, mode=0o600)
        certs = split_bundle(bundle)
        if new_ca_cert not in certs:
            write_file(bundle_path, b"".join([*certs, new_ca_cert]), mode=0o644)
        write_file(
            hub_dir / NEXT_TLS / "node.key", (staging / _STAGED_HUB_KEY).read_bytes(), mode=0o600
        )
        hub_cert = (staging / _STAGED_HUB_CERT).read_bytes()
        write_file(hub_dir / NEXT_TLS / "node.pem", hub_cert, mode=0o644)
        # The issuing CA last: from here on the hub issues from the new CA.
        write_file(ca_key_path, new_ca_key, mode=0o600)
        with hub.members.write() as tx:
            if not any(c.serial == describe(hub_cert).serial for c in tx.certificates(HUB_ORIGIN)):
                hub.council.record_certificate(tx, HUB_ORIGIN, hub_cert, "hub", hub.council.clock())
    shutil.rmtree(staging, ignore_errors=True)


# -- finishing a CA rotation ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinishReport:
    ca_serial: str
    dropped_ca_serials: list[str]
    hub_certificate_serial: str
    #: Active members whose newest certificate is still from an old CA (with --force).
    stragglers: list[str]


def ca_stragglers(hub: Hub, *, now_ms: int | None = None) -> list[str]:
    """Active members whose newest certificate (still valid) is not from the issuing CA."""
    from samverka.errors import CertificateInvalid
    from samverka.transport.pki import verify_certificate

    now = hub.council.clock() if now_ms is None else now_ms
    issuing = hub.ca.cert_pem
    out = []
    with hub.members.read() as tx:
        members = [m for m in tx.members() if m.active]
        for member in members:
            certs = [c for c in tx.certificates(member.kommunkod) if c.not_after_ms > now]
            if not certs:
                continue
            newest = max(certs, key=lambda c: c.issued_at_ms)
            try:
                verify_certificate(newest.certificate_pem, issuing)
            except CertificateInvalid:
                out.append(member.kommunkod)
    return sorted(out)


def finish_ca_rotation(hub: Hub, *, force: bool = False) -> FinishReport:
    """Present the hub's certificate from the new CA and trust only the new CA."""
    hub_dir = hub.dir
    resume_rotation(hub)
    next_cert, next_key = hub_dir / NEXT_TLS / "node.pem", hub_dir / NEXT_TLS / "node.key"
    if not next_cert.exists() or not next_key.exists():
        raise ConfigError(
            "no CA rotation to finish",
            hint="start one with `samverka hub rotate-keys --ca`",
        )
    stragglers = ca_stragglers(hub)
    if stragglers and not force:
        raise ConfigError(
            f"{len(stragglers)} active member(s) still hold only a certificate from the old "
            f"CA: {', '.join(stragglers)}; once the hub trusts only the new CA they cannot "
            "reach it",
            hint="ask each to run `samverka node renew-cert` (and restart `node serve`), "
            "then finish; or wait until those certificates expire; --force finishes anyway",
        )
    node = hub.config.node
    cert_path, key_path = node.path(node.tls.cert), node.path(node.tls.key)
    for path in (cert_path, key_path):
        if path.exists():
            write_file(path.with_name(path.name + ".old"), path.read_bytes(), mode=0o600)
    write_file(key_path, next_key.read_bytes(), mode=0o600)
    write_file(cert_path, next_cert.read_bytes(), mode=0o644)
    issuing = hub.ca.cert_pem
    bundle_path = hub.config.ca_cert_path
    dropped = [describe(c).serial for c in split_bundle(bundle_path.read_bytes()) if c != issuing]
    write_file(bundle_path, issuing, mode=0o644)
    with contextlib.suppress(FileNotFoundError):
        next_cert.unlink()
    with contextlib.suppress(FileNotFoundError):
        next_key.unlink()
    with contextlib.suppress(OSError):
        (hub_dir / NEXT_TLS).rmdir()
    log.warning(
        "CA rotation finished: the hub presents its certificate from CA %s and trusts only "
        "it (dropped %s); restart the hub's replicas",
        describe(issuing).serial,
        ", ".join(dropped) or "none",
        extra={"event": "hub_ca_rotation_finished"},
    )
    return FinishReport(
        ca_serial=describe(issuing).serial,
        dropped_ca_serials=dropped,
        hub_certificate_serial=describe(cert_path.read_bytes()).serial,
        stragglers=stragglers if force else [],
    )


def ca_rotation_running(hub_dir: Path) -> bool:
    """Whether a CA rotation waits for ``--finish`` (the hub's next certificate exists)."""
    return (hub_dir / NEXT_TLS / "node.pem").exists()
