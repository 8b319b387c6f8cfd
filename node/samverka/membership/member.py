"""The node's side of membership: enrolling, the member directory it keeps, key rotation
and certificate renewal. The pure rules are in :mod:`samverka.membership.enrollment` and
:mod:`samverka.protocol.directory`; this module does the files and the calls to the hub
(through :class:`samverka.transport.hubclient.HubClient`).

Files this module adds to a node folder (see :mod:`samverka.config` for the rest)::

    hub/hub.pub             the hub's directory-signing key, pinned at enrollment
    hub/directory.bin       the newest verified SignedDirectory (its version is the
                            highest this node has seen; an older one is refused)
    enrollment/request.bin  a pending signed enrollment request, sent again (the very
    enrollment/tls.key      same bytes) until the council decides; the TLS key its CSR
                            is for (0600). Removed once the node is enrolled.
    rotation/next.key       a pending key rotation: the new signing key (0600) and the
    rotation/rotation.bin   signed announcement. Removed once the switch is made.
    keys/retired/<id>.key   signing keys this node used before a rotation (0600)

Trust: the operator hands ``node enroll`` the hub's CA certificate (``--ca``), which
authenticates the hub's public port. Over that channel the node learns the hub's
signing key and pins it; from then on every directory must be signed by it, and
nothing the hub says about keys counts unless it is in a signed directory.

Key rotation and entries around the switch: ``rotate-key`` announces a new key signed
by the old one (and by the new one). When the council approves, the directory lists
the new key valid from the announcement's time and the old key valid until the
approval time plus ``[directory] rotation_overlap_hours`` (24 h by default) at the
hub. The node switches to the new key as soon as it sees the approval. So entries
signed with the old key before its end verify everywhere, forever; entries signed
with the new key verify from the announcement on; an entry signed with the old key
after the overlap is refused (``key_revoked``). A running ``node serve`` keeps the key
it started with: restart it after a rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from samverka.config import CONFIG_FILE, NodeConfig
from samverka.errors import (
    ConfigError,
    EnrollmentRefused,
    SamverkaError,
    TransportError,
)
from samverka.membership.directory_proof import prove_directory
from samverka.membership.enrollment import (
    build_enrollment_request,
    build_key_rotation,
    check_address,
)
from samverka.membership.hubtrust import adopt, complete_pins, hub_trust
from samverka.membership.monitor import (
    Alarm,
    complete_alarms,
    start_challenges,
    watch_directory,
)
from samverka.node import (
    DIRECTORY_FILE,
    HUB_KEY_FILE,
    RETIRED_KEYS_DIR,
    ROTATION_KEY,
    load_directory,
    pinned_hub_key,
    replace_file,
    update_key_state,
)
from samverka.protocol.directory import VerifiedDirectory, verify_directory
from samverka.protocol.hubrotation import HubRotation, follow_directory
from samverka.protocol.kommuner import kommun_name
from samverka.protocol.signing import PublicKey, SigningKey
from samverka.transport.hubclient import HubClient
from samverka.transport.server.policy import Audience, Caller
from samverka.transport.server.status import AccessDenied
from samverka.v1 import directory_pb2, hub_service_pb2

if TYPE_CHECKING:
    from samverka.node import Node

# samverka.transport.pki and cryptography.x509 are imported inside the functions that handle
# certificates (enrollment, renewal): a serving node never loads them.

ENROLLMENT_REQUEST = "enrollment/request.bin"
ENROLLMENT_TLS_KEY = "enrollment/tls.key"
ROTATION_FILE = "rotation/rotation.bin"

PENDING = hub_service_pb2.ENROLLMENT_STATUS_PENDING
APPROVED = hub_service_pb2.ENROLLMENT_STATUS_APPROVED
REJECTED = hub_service_pb2.ENROLLMENT_STATUS_REJECTED
STATUS_NAMES: dict[int, str] = {PENDING: "pending", APPROVED: "approved", REJECTED: "rejected"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- the directory this node keeps ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirectoryUpdate:
    directory: VerifiedDirectory
    #: False when the node already held exactly this directory.
    changed: bool
    previous_version: int
    #: Alarms the monitor raised on this directory (keys bound to this kommun that this
    #: node never held; samverka.membership.monitor).
    alarms: tuple[Alarm, ...] = ()
    #: Hub key rotations followed on the way (samverka.membership.hubtrust).
    rotations: tuple[HubRotation, ...] = ()


def accept_directory(
    config: NodeConfig,
    signed: directory_pb2.SignedDirectory | bytes,
    *,
    now: int | None = None,
    expired_step_ok: bool = False,
) -> DirectoryUpdate:
    """Verify a directory from the hub and keep it if it is newer than the one held.

    Signed by the pinned hub key, or by a new one the hub announced under it (a hub key
    rotation it carries, followed: :mod:`samverka.membership.hubtrust`).
    ``expired_step_ok``: an expired version that brings a rotation is taken (a step of a
    chain the caller walks on at once). Raises DirectoryRefused (rollback, expired, bad
    signature, unknown key, …); the directory held before stays.
    """
    held = load_directory(config)
    trust = hub_trust(config, held)
    followed = follow_directory(
        signed,
        trust,
        now_ms=now_ms() if now is None else now,
        seen=held.checkpoint if held is not None else None,
        expired_step_ok=expired_step_ok,
    )
    verified = followed.directory
    previous = held.version if held is not None else 0
    if held is not None and held.digest == verified.digest:
        complete_pins(config, followed)  # a rotation cut short before its last step
        return DirectoryUpdate(held, changed=False, previous_version=previous)
    adopt(config, followed, before=trust)
    return DirectoryUpdate(
        verified,
        changed=True,
        previous_version=previous,
        alarms=tuple(adopted_directory(config, verified)),
        rotations=(followed.rotation,) if followed.rotation is not None else (),
    )


def adopted_directory(config: NodeConfig, directory: VerifiedDirectory) -> list[Alarm]:
    """What follows adopting a directory version: the keys it binds are taken per the
    key-binding rules (tlog/keys.json), and the monitor checks this kommun's own
    listing (new alarms are returned)."""
    at = now_ms()
    update_key_state(config, directory, now_ms=at)
    return watch_directory(config, directory, now_ms=at)


class MemberRevoked(AccessDenied):
    """The caller's kommun is revoked in the member directory."""

    reason = "member_revoked"


class DirectoryStale(AccessDenied):
    """This node's member directory was last confirmed with the hub too long ago to
    say who is revoked: member calls are refused until it is refreshed."""

    reason = "directory_stale"


class DirectoryPolicy:
    """A CallerPolicy by the member directory: a revoked kommun's certificate is refused.

    gRPC has already checked the certificate against the CA; this adds what a CA
    cannot say. ``require_listed`` (the hub, whose directory is authoritative) also
    refuses a certificate whose kommun the directory does not list; a node leaves it
    off, so a member admitted after the node's last directory fetch is not refused.

    ``max_age_ms`` (a node's ``[hub] directory_max_age_seconds``): a member caller is
    refused (:class:`DirectoryStale`) once ``checked_at()`` (when the hub last
    confirmed the directory as its newest, in ms; None: never) is older than that, as
    a revocation the node has not learned of may be in force. ``revision()`` changes
    with the directory's version and when it grows stale, so open streams re-check.
    """

    def __init__(
        self,
        current: Callable[[], VerifiedDirectory | None],
        *,
        require_listed: bool = False,
        allow: frozenset[str] = frozenset(),
        max_age_ms: int | None = None,
        checked_at: Callable[[], int | None] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._current = current
        self.require_listed = require_listed
        self.allow = allow
        self.max_age_ms = max_age_ms
        self._checked_at = checked_at
        self._clock = clock or now_ms

    def _age_ms(self) -> int | None:
        """How long ago the directory was confirmed, when a maximum age applies."""
        if self.max_age_ms is None or self._checked_at is None:
            return None
        checked = self._checked_at()
        return None if checked is None else max(0, self._clock() - checked)

    def _stale(self) -> bool:
        age = self._age_ms()
        return age is not None and self.max_age_ms is not None and age > self.max_age_ms

    def revision(self) -> object:
        directory = self._current()
        return (directory.version if directory is not None else 0, self._stale())

    async def audience(self, caller: Caller) -> Audience:
        if caller.common_name is None:
            return Audience.PUBLIC
        code = caller.kommunkod
        if code is None:
            raise AccessDenied(
                f"certificate common name {caller.common_name!r} is not a kommunkod",
                hint="use a certificate issued by the council's CA to a kommun",
            )
        if code in self.allow:
            return Audience.MEMBERS
        age = self._age_ms()
        if age is not None and self.max_age_ms is not None and age > self.max_age_ms:
            raise DirectoryStale(
                f"this node's member directory was last confirmed with the hub "
                f"{age // 1000} s ago, more than [hub] directory_max_age_seconds "
                f"({self.max_age_ms // 1000} s): member calls are refused until it is "
                "refreshed (a revocation may not have reached this node)",
                hint="try again later; the node's operator: `samverka node directory "
                "--refresh`, and check that the node reaches the hub",
            )
        directory = self._current()
        member = directory.member(code) if directory is not None else None
        if member is not None and member.status == directory_pb2.MEMBER_STATUS_REVOKED:
            raise MemberRevoked(
                f"kommun {code}'s membership is revoked",
                hint="a revoked member is refused everywhere; contact AI-rådet",
            )
        if member is None and self.require_listed:
            raise AccessDenied(
                f"kommun {code} is not in the member directory",
                hint="enroll first: `samverka node enroll`",
            )
        return Audience.MEMBERS


class CachedDirectory:
    """The node folder's directory, re-read when the file changes (for a server's policy)."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self._stamp: tuple[int, int, int] | None = None
        self._directory: VerifiedDirectory | None = None

    def __call__(self) -> VerifiedDirectory | None:
        path = self.config.dir / DIRECTORY_FILE
        try:
            st = path.stat()
            # Files are replaced atomically (a new inode each time), so this changes.
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._directory = load_directory(self.config) if stamp is not None else None
            self._stamp = stamp
        return self._directory

    def checked_at(self) -> int | None:
        """When the hub last confirmed the held directory as its newest (ms): the file's
        modification time, which :func:`refresh_directory` sets on every answer."""
        try:
            return (self.config.dir / DIRECTORY_FILE).stat().st_mtime_ns // 1_000_000
        except FileNotFoundError:
            return None


# -- fetching the directory -------------------------------------------------------------


async def refresh_directory(config: NodeConfig) -> DirectoryUpdate:
    """Fetch the hub's newest directory over the member port and keep it if newer."""
    held = load_directory(config)
    known = held.version if held is not None else 0
    update: DirectoryUpdate | None = None
    async with HubClient.member(config) as client:
        reply = await client.get_directory(known)
        # A node behind a hub key rotation is handed the version that carries it first
        # (GetDirectory): follow each, then ask again, up to the newest.
        for _ in range(MAX_ROTATION_STEPS):
            if reply.not_modified:
                break
            # A new version is kept only once proven in the hub's transparency log.
            await prove_directory(config, client, reply.directory)
            step = accept_directory(config, reply.directory, expired_step_ok=True)
            update = step if update is None else _walked(update, step)
            if not (step.changed and step.rotations):
                break
            reply = await client.get_directory(step.directory.version)
    if update is None:
        if held is None:
            raise TransportError(f"the hub at {config.hub.address} sent no directory")
        # The hub confirmed it is still the newest: its age starts again (CachedDirectory).
        os.utime(config.dir / DIRECTORY_FILE)
        await after_refresh(config)
        return DirectoryUpdate(held, changed=False, previous_version=known)
    if not update.changed or reply.not_modified:
        os.utime(config.dir / DIRECTORY_FILE)
    await after_refresh(config)
    return update


async def after_refresh(config: NodeConfig) -> None:
    """After each refresh, whether the directory changed or not: the monitor's
    objections and the log's proof for its evidence are sent (again) until the hub takes
    them, and the challenge period of keys listed without an announcement starts once
    the log proves a directory listing them (samverka.membership.monitor)."""
    await complete_alarms(config)
    await start_challenges(config)


#: Most hub key rotations one refresh follows (each is one more call to the hub).
MAX_ROTATION_STEPS = 64


def _walked(before: DirectoryUpdate, step: DirectoryUpdate) -> DirectoryUpdate:
    """Two updates of one refresh as one: from the first version held to the last."""
    return DirectoryUpdate(
        step.directory,
        changed=before.changed or step.changed,
        previous_version=before.previous_version,
        alarms=before.alarms + step.alarms,
        rotations=before.rotations + step.rotations,
    )


# -- enrollment ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnrollOutcome:
    status: int  # hub_service_pb2.EnrollmentStatus
    message: str
    key_id: str
    hub: str
    #: After approval: the member-port address written to samverka.toml, and the directory.
    member_address: str = ""
    directory: VerifiedDirectory | None = None

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, "unknown")


def enrolled(node: Node) -> bool:
    """Whether the node holds a directory listing it, active, with its current key."""
    directory = load_directory(node.config)
    member = directory.member(node.origin) if directory is not None else None
    return (
        member is not None
        and member.status == directory_pb2.MEMBER_STATUS_ACTIVE
        and any(k.key_id == node.signing_key.key_id for k in member.keys)
    )


async def enroll(
    node: Node,
    *,
    hub: str,
    ca_pem: bytes,
    address: str = "",
    contact_role: str = "",
    wait_seconds: float = 0.0,
    poll_seconds: float = 1.0,
    on_pending: Callable[[EnrollOutcome], None] | None = None,
) -> EnrollOutcome:
    """Ask the hub at ``hub`` (its public port) to admit this node; wait up to
    ``wait_seconds`` for the decision. On approval the certificate, the hub CA, the
    pinned hub key, the directory and the hub's member address are written."""
    if address:
        check_address(address)
    _check_ca(ca_pem)
    signed = _pending_request(node, address=address, contact_role=contact_role)
    deadline = time.monotonic() + wait_seconds
    delay = poll_seconds
    announced = False
    async with HubClient.public(hub, ca_pem) as client:
        while True:
            try:
                reply = await client.enroll(signed)
            except EnrollmentRefused as exc:
                if exc.reason.value in ("expired", "clock_skew") and not announced:
                    # The stored request waited too long before reaching the hub: make
                    # a new one (the hub never saw the old one).
                    _discard(node.dir, ENROLLMENT_REQUEST, ENROLLMENT_TLS_KEY)
                    signed = _pending_request(node, address=address, contact_role=contact_role)
                    announced = True
                    continue
                raise
            announced = True
            outcome = EnrollOutcome(reply.status, reply.message, node.signing_key.key_id, hub)
            if reply.status == APPROVED:
                return _complete_enrollment(node, reply, ca_pem=ca_pem, hub=hub)
            if reply.status == REJECTED:
                _discard(node.dir, ENROLLMENT_REQUEST, ENROLLMENT_TLS_KEY)
                return outcome
            if reply.status != PENDING:
                raise TransportError(f"the hub answered with an unknown status {reply.status}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return outcome
            if on_pending is not None:
                on_pending(outcome)
                on_pending = None  # say it once
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 10.0)


def _pending_request(
    node: Node, *, address: str, contact_role: str
) -> directory_pb2.SignedEnrollmentRequest:
    """The stored pending request, or a new one (with a new TLS key) stored first."""
    request_path = node.dir / ENROLLMENT_REQUEST
    key_path = node.dir / ENROLLMENT_TLS_KEY
    if request_path.exists() and key_path.exists():
        signed = directory_pb2.SignedEnrollmentRequest.FromString(request_path.read_bytes())
        request = directory_pb2.EnrollmentRequest.FromString(signed.request)
        if (
            bytes(request.signing_public_key) == node.signing_key.public.raw
            and request.address == address
            and (request.contact_role == contact_role or not contact_role)
        ):
            return signed
    from samverka.transport.pki import DEFAULT_HOSTS, create_csr

    hosts = [*DEFAULT_HOSTS]
    if address:
        host, _ = check_address(address)
        if host not in hosts:
            hosts.append(host)
    csr = create_csr(node.origin, name=kommun_name(node.origin), hosts=hosts)
    signed = build_enrollment_request(
        node.signing_key,
        kommunkod=node.origin,
        csr_der=csr.csr_der,
        created_at_ms=now_ms(),
        contact_role=contact_role,
        address=address,
    )
    write_file(key_path, csr.key_pem, mode=0o600)
    write_file(request_path, signed.SerializeToString(deterministic=True), mode=0o600)
    return signed


def _complete_enrollment(
    node: Node, reply: hub_service_pb2.EnrollResponse, *, ca_pem: bytes, hub: str
) -> EnrollOutcome:
    """Check everything the hub sent, then write it into the node folder."""
    from samverka.transport.pki import verify_certificate

    config = node.config
    # While the hub rotates its CA it answers with the old and the new one: each CA
    # given with --ca must be among them (they authenticated this answer), and the node
    # keeps the hub's whole bundle.
    answered = _cert_ders(bytes(reply.ca_pem))
    if not answered or not _cert_ders(ca_pem) <= answered:
        raise TransportError(
            "the hub's answer names a different CA than the one given with --ca",
            hint="check that --ca is the council's CA certificate (the hub's tls/ca.pem)",
        )
    ca_pem = bytes(reply.ca_pem)
    key_pem = (node.dir / ENROLLMENT_TLS_KEY).read_bytes()
    cert_pem = bytes(reply.certificate_pem)
    try:
        verify_certificate(cert_pem, ca_pem, kommunkod=node.origin)
    except SamverkaError as exc:
        raise TransportError(f"the certificate the hub issued does not check out: {exc}") from exc
    if _public_der_of_cert(cert_pem) != _public_der_of_key(key_pem):
        raise TransportError("the hub's certificate is not for this node's TLS key")
    try:
        hub_key = PublicKey(bytes(reply.hub_public_key))
    except ValueError as exc:
        raise TransportError("the hub sent a malformed signing key") from exc
    held_key = pinned_hub_key(config)
    if held_key is not None and held_key != hub_key:
        raise TransportError(
            "the hub's signing key differs from the one this node pinned before",
            hint="a node enrolls at one hub; ask the council if the hub's key changed",
        )
    directory = verify_directory(reply.directory, hub_key, now_ms=now_ms())
    member = directory.member(node.origin)
    if (
        member is None
        or member.status != directory_pb2.MEMBER_STATUS_ACTIVE
        or not any(k.key_id == node.signing_key.key_id for k in member.keys)
    ):
        raise TransportError(
            f"the hub's directory does not list {node.origin} with this node's signing key"
        )
    member_address = reply.member_address or hub

    # Writes: the hub's key and directory, then TLS, then the config; the pending
    # request goes last, so a crash half-way is finished by running enroll again.
    write_file(config.dir / HUB_KEY_FILE, hub_key.to_pem(), mode=0o644)
    held = load_directory(config)
    if held is None or held.version <= directory.version:
        write_file(config.dir / DIRECTORY_FILE, directory.signed_bytes(), mode=0o644)
        update_key_state(config, directory)
    tls = config.tls
    _keep_local_tls(config)
    write_file(config.path(tls.key), key_pem, mode=0o600)
    write_file(config.path(tls.cert), cert_pem, mode=0o644)
    write_file(config.path(tls.ca), ca_pem, mode=0o644)
    set_hub_address(config.dir / CONFIG_FILE, member_address)
    _discard(node.dir, ENROLLMENT_REQUEST, ENROLLMENT_TLS_KEY)
    return EnrollOutcome(
        APPROVED,
        reply.message,
        node.signing_key.key_id,
        hub,
        member_address=member_address,
        directory=directory,
    )


def _keep_local_tls(config: NodeConfig) -> None:
    """Move the pre-enrollment TLS files (from the local CA) to tls/local/, once."""
    backup = config.dir / "tls" / "local"
    if backup.exists():
        return
    backup.mkdir(mode=0o700, parents=True)
    for relative in (config.tls.ca, config.tls.cert, config.tls.key):
        source = config.path(relative)
        if source.exists():
            data = source.read_bytes()
            write_file(backup / source.name, data, mode=source.stat().st_mode & 0o777)


def _check_ca(ca_pem: bytes) -> None:
    try:
        _cert_der(ca_pem)
    except ValueError as exc:
        raise ConfigError(
            f"the --ca file is not a PEM certificate: {exc}",
            hint="use the council's CA certificate (the hub's tls/ca.pem)",
        ) from exc


def _cert_der(pem: bytes) -> bytes:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _cert_ders(pem: bytes) -> set[bytes]:
    """Each certificate of a PEM bundle (DER); empty when it holds none."""
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return set()
    return {c.public_bytes(serialization.Encoding.DER) for c in certs}


def _public_der_of_cert(cert_pem: bytes) -> bytes:
    from cryptography import x509

    return (
        x509.load_pem_x509_certificate(cert_pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _public_der_of_key(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- key rotation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RotationOutcome:
    status: int
    message: str
    old_key_id: str
    new_key_id: str
    #: True once the node signs with the new key.
    switched: bool = False

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, "unknown")


async def rotate_key(
    node: Node,
    *,
    wait_seconds: float = 0.0,
    poll_seconds: float = 1.0,
    on_pending: Callable[[RotationOutcome], None] | None = None,
) -> RotationOutcome:
    """Announce a new signing key (or the pending one again); switch once approved."""
    config = node.config
    if pinned_hub_key(config) is None:
        raise ConfigError("this node has not enrolled", hint="enroll first: `samverka node enroll`")
    new_key, signed = _pending_rotation(node)
    rotation = directory_pb2.KeyRotation.FromString(signed.rotation)
    deadline = time.monotonic() + wait_seconds
    delay = poll_seconds
    async with HubClient.member(config) as client:
        while True:
            reply = await client.rotate_key(signed)
            outcome = RotationOutcome(
                reply.status, reply.message, rotation.old_key_id, new_key.key_id
            )
            if reply.status == REJECTED:
                _discard(node.dir, ROTATION_KEY, ROTATION_FILE)
                return outcome
            if reply.status == APPROVED:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return outcome
            if on_pending is not None:
                on_pending(outcome)
                on_pending = None
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 10.0)
        reply_directory = await client.get_directory(0)
    update = accept_directory(config, reply_directory.directory)
    member = update.directory.member(node.origin)
    if member is None or not any(k.key_id == new_key.key_id for k in member.keys):
        raise TransportError(
            "the hub approved the rotation but its directory does not list the new key yet",
            hint="run `samverka node rotate-key` again in a moment",
        )
    _switch_signing_key(node, new_key)
    return RotationOutcome(
        APPROVED, reply.message, rotation.old_key_id, new_key.key_id, switched=True
    )


def _pending_rotation(node: Node) -> tuple[SigningKey, directory_pb2.SignedKeyRotation]:
    key_path = node.dir / ROTATION_KEY
    rotation_path = node.dir / ROTATION_FILE
    if key_path.exists() and rotation_path.exists():
        new_key = SigningKey.from_pem(key_path.read_bytes())
        signed = directory_pb2.SignedKeyRotation.FromString(rotation_path.read_bytes())
        rotation = directory_pb2.KeyRotation.FromString(signed.rotation)
        if rotation.old_key_id == node.signing_key.key_id:
            return new_key, signed
    new_key = SigningKey.generate()
    signed = build_key_rotation(
        node.signing_key, new_key, kommunkod=node.origin, created_at_ms=now_ms()
    )
    write_file(key_path, new_key.to_pem(), mode=0o600)
    write_file(rotation_path, signed.SerializeToString(deterministic=True), mode=0o600)
    return new_key, signed


def _switch_signing_key(node: Node, new_key: SigningKey) -> None:
    config = node.config
    old = node.signing_key
    write_file(config.dir / RETIRED_KEYS_DIR / f"{old.key_id}.key", old.to_pem(), mode=0o600)
    write_file(config.signing_key_path, new_key.to_pem(), mode=0o600)
    write_file(config.public_key_path, new_key.public.to_pem(), mode=0o644)
    _discard(node.dir, ROTATION_KEY, ROTATION_FILE)
    node.signing_key = new_key
    node._publisher = None


# -- certificate renewal ---------------------------------------------------------------


async def renew_certificate(node: Node) -> bytes:
    """A new TLS key and certificate for this node, from the hub's member port."""
    from samverka.transport.pki import DEFAULT_HOSTS, create_csr, verify_certificate

    config = node.config
    directory = load_directory(config)
    member = directory.member(node.origin) if directory is not None else None
    hosts = [*DEFAULT_HOSTS]
    if member is not None and member.address:
        host, _ = check_address(member.address)
        if host not in hosts:
            hosts.append(host)
    csr = create_csr(node.origin, name=kommun_name(node.origin), hosts=hosts)
    async with HubClient.member(config) as client:
        cert_pem = await client.renew_certificate(csr.csr_der)
    ca_pem = config.path(config.tls.ca).read_bytes()
    try:
        verify_certificate(cert_pem, ca_pem, kommunkod=node.origin)
    except SamverkaError as exc:
        raise TransportError(f"the renewed certificate does not check out: {exc}") from exc
    if _public_der_of_cert(cert_pem) != _public_der_of_key(csr.key_pem):
        raise TransportError("the hub's certificate is not for the new TLS key")
    cert_path, key_path = config.path(config.tls.cert), config.path(config.tls.key)
    for path in (cert_path, key_path):
        if path.exists():
            write_file(path.with_name(path.name + ".old"), path.read_bytes(), mode=0o600)
    write_file(key_path, csr.key_pem, mode=0o600)
    write_file(cert_path, cert_pem, mode=0o644)
    return cert_pem


# -- files ---------------------------------------------------------------------------------


def write_file(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` atomically; a missing folder is made private (0700: keys, TLS)."""
    replace_file(path, data, mode=mode, dir_mode=0o700)


def _discard(node_dir: Path, *relatives: str) -> None:
    for relative in relatives:
        with contextlib.suppress(FileNotFoundError):
            (node_dir / relative).unlink()


_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*(#.*)?$")
_ADDRESS = re.compile(r"^\s*address\s*=")


def set_hub_address(config_path: Path, address: str) -> None:
    """Set ``[hub] address`` in samverka.toml, keeping every comment and other line."""
    lines = config_path.read_text(encoding="utf-8").splitlines(keepends=True)
    new_line = f"address = {_toml_string(address)}\n"
    section = None
    hub_header: int | None = None
    for i, line in enumerate(lines):
        match = _SECTION.match(line)
        if match:
            section = match.group(1).strip()
            if section == "hub":
                hub_header = i
            continue
        if section == "hub" and _ADDRESS.match(line):
            lines[i] = new_line
            break
    else:
        if hub_header is not None:
            lines.insert(hub_header + 1, new_line)
        else:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines += ["\n", "[hub]\n", new_line]
    text = "".join(lines)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - we only write strings
        raise ConfigError(f"could not update {config_path}: {exc}") from exc
    if parsed.get("hub", {}).get("address") != address:
        raise ConfigError(f"could not set [hub] address in {config_path}")
    write_file(config_path, text.encode("utf-8"), mode=0o644)


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
