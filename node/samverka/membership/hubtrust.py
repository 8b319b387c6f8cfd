"""A node follows the hub's own key rotations (``hub rotate-keys``) without enrolling again.

What the node trusts of the hub (:class:`~samverka.protocol.hubrotation.HubTrust`):

- the directory key, pinned at enrollment in ``hub/hub.pub``;
- the log key: the one the held directory (``hub/directory.bin``) names, taken on
  first sight and changed only by a rotation (:func:`follow_directory` refuses any
  other change), so the held directory *is* the log key's pin;
- the CA bundle ``tls/ca.pem``: the council's CA(s), for the hub and for other members;
- the rotations followed so far, ``hub/rotations/<made at ms>-<digest>.bin`` (each a
  SignedHubKeyRotation as the hub signed it): the newest is the mark an older one
  replayed is refused against;
- the log keys pinned before (``hub/earlier-log-keys``): the checkpoints the node
  cosigned and accepted under them stay its reference for consistency
  (:class:`~samverka.replication.logstate.HeldCheckpoint`).

Following a directory that carries a rotation (:func:`adopt`) writes, in this order,
each file replaced atomically: the new CA appended to ``tls/ca.pem`` (a superset: both
CAs trusted, harmless if nothing else follows), the rotation record, the directory,
then ``hub/hub.pub``. A crash before the last step leaves a held directory signed by the
new key and carrying the rotation from the pinned one: :func:`~samverka.node.load_directory`
verifies it through that rotation, and the next directory accepted finishes the pin
(:func:`complete_pins`). Each rotation followed is logged (WARNING, event
``hub_keys_followed``) and shown by ``samverka doctor`` (:func:`doctor_findings`).

The node's own TLS certificate stays the one the old CA issued until it is renewed
(``samverka node renew-cert``): the hub accepts both CAs until the operator finishes
the CA rotation, and ``doctor`` warns until then.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from samverka.config import NodeConfig
from samverka.errors import ConfigError, DirectoryRefused
from samverka.i18n import N_, Text
from samverka.node import (
    DIRECTORY_FILE,
    EARLIER_LOG_KEYS_FILE,
    HUB_KEY_FILE,
    earlier_log_keys,
    pinned_hub_key,
    replace_file,
)
from samverka.protocol.directory import VerifiedDirectory
from samverka.protocol.hubrotation import (
    FollowedDirectory,
    HubRotation,
    HubTrust,
    parse_hub_rotation,
)
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.signing import PublicKey

log = logging.getLogger("samverka.membership.hubtrust")

#: The hub key rotations this node followed, one file each.
ROTATIONS_DIR = "hub/rotations"
_RECORD = re.compile(r"^(?P<at>\d{1,19})-(?P<digest>[0-9a-f]{16})\.bin$")


# -- reading ------------------------------------------------------------------------------


def followed_rotations(config: NodeConfig) -> list[HubRotation]:
    """The rotations this node followed, oldest first."""
    folder = config.dir / ROTATIONS_DIR
    if not folder.is_dir():
        return []
    found: list[HubRotation] = []
    for path in folder.iterdir():
        if _RECORD.match(path.name) is None:
            continue
        try:
            found.append(parse_hub_rotation(path.read_bytes()))
        except (OSError, DirectoryRefused) as exc:
            raise ConfigError(
                f"{path} is not a hub key rotation: {exc}",
                hint="restore hub/rotations/ from a backup of the node folder",
            ) from exc
    return sorted(found, key=lambda r: r.created_at_ms)


def signer_of(directory: VerifiedDirectory) -> PublicKey:
    """The hub key that signed ``directory`` (listed under "0000" in it)."""
    hub = directory.member(HUB_ORIGIN)
    for key in hub.keys if hub is not None else ():
        if key.key_id == directory.directory.hub_key_id:
            return PublicKey(bytes(key.public_key))
    raise ConfigError(f"directory version {directory.version} does not list its signing key")


def hub_trust(config: NodeConfig, held: VerifiedDirectory | None) -> HubTrust:
    """What this node trusts of the hub now. The held directory was verified against the
    pinned key (or through the rotation it carries from it, see the module docstring): the
    key that signed it is the one in force."""
    pinned = pinned_hub_key(config)
    if pinned is None:
        raise ConfigError(
            "this node has not enrolled: no hub key is pinned",
            hint="enroll first: `samverka node enroll --hub HOST:PORT --ca FILE`",
        )
    key = pinned
    if held is not None and held.directory.hub_key_id != pinned.key_id:
        key = signer_of(held)
    rotations = followed_rotations(config)
    return HubTrust(
        hub_key=key,
        log_key=held.directory.log_key if held is not None else "",
        rotation=rotations[-1] if rotations else None,
    )


# -- writing -------------------------------------------------------------------------------


def adopt(config: NodeConfig, followed: FollowedDirectory, *, before: HubTrust) -> None:
    """Keep a directory accepted under ``before`` (:func:`hub_trust`), with what its
    rotation brings."""
    rotation = followed.rotation
    added_ca = False
    if rotation is not None:
        if rotation.new_ca_pem:
            added_ca = add_ca(config, rotation.new_ca_pem)
        if before.log_key and before.log_key != followed.trust.log_key:
            _remember_log_key(config, before.log_key)
        record = f"{rotation.created_at_ms}-{rotation.digest[:8].hex()}.bin"
        replace_file(config.dir / ROTATIONS_DIR / record, rotation.signed_bytes(), mode=0o644)
    replace_file(config.dir / DIRECTORY_FILE, followed.directory.signed_bytes(), mode=0o644)
    complete_pins(config, followed)
    if rotation is not None:
        log.warning(
            "followed the hub's key rotation (%s) in directory version %d, announced under "
            "the pinned key %s: directory key %s, log key %s%s",
            ", ".join(rotation.what()),
            followed.directory.version,
            rotation.old_key_id,
            rotation.new_key.key_id,
            followed.trust.log_key or "-",
            ", the new CA added to the trust bundle" if added_ca else "",
            extra={"event": "hub_keys_followed", "key_id": rotation.new_key.key_id},
        )
    elif followed.log_key_first_seen:
        log.info(
            "pinned the hub's transparency-log key %s (first seen)",
            followed.trust.log_key,
            extra={"event": "log_key_pinned"},
        )


def complete_pins(config: NodeConfig, followed: FollowedDirectory) -> None:
    """``hub/hub.pub`` set to the key in force (a no-op unless a rotation was followed,
    or one was cut short before its last step)."""
    pinned = pinned_hub_key(config)
    if pinned != followed.trust.hub_key:
        replace_file(config.dir / HUB_KEY_FILE, followed.trust.hub_key.to_pem(), mode=0o644)


def _remember_log_key(config: NodeConfig, vkey: str) -> None:
    """Keep a log key rotated away from: checkpoints held under it stay the node's
    reference (:data:`~samverka.node.EARLIER_LOG_KEYS_FILE`)."""
    known = earlier_log_keys(config.dir)
    if vkey not in known:
        text = "".join(f"{k}\n" for k in [*known, vkey])
        replace_file(config.dir / EARLIER_LOG_KEYS_FILE, text.encode("ascii"), mode=0o644)


def add_ca(config: NodeConfig, ca_pem: bytes) -> bool:
    """Append a CA certificate to the node's trust bundle (``[tls] ca``) unless it is in
    it; returns whether it was added."""
    path = config.path(config.tls.ca)
    try:
        bundle = path.read_bytes()
        held = x509.load_pem_x509_certificates(bundle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the CA bundle {path}: {exc}") from exc
    new = x509.load_pem_x509_certificate(ca_pem)
    if any(c == new for c in held):
        return False
    text = bundle if bundle.endswith(b"\n") else bundle + b"\n"
    replace_file(path, text + new.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return True


# -- doctor ----------------------------------------------------------------------------------


def doctor_findings(
    config: NodeConfig, directory: VerifiedDirectory
) -> list[tuple[str, Text, Text | str]]:
    """``(status, message, hint)`` lines for ``samverka doctor``: the hub key rotations
    followed, and a certificate still from a CA the hub rotated away from (texts put in
    words when shown: :class:`samverka.i18n.Text`)."""
    out: list[tuple[str, Text, Text | str]] = []
    rotations = followed_rotations(config)
    if rotations:
        last = rotations[-1]
        out.append(
            (
                "ok",
                Text(
                    N_(
                        "följde {count} nyckelbyte(n) hos hubben; det senaste ({what}) gjort "
                        "{at}; hubbens nyckel {key}"
                    ),
                    count=len(rotations),
                    what=", ".join(last.what()),
                    at=_utc(last.created_at_ms),
                    key=directory.directory.hub_key_id,
                ),
                "",
            )
        )
    ca_path, cert_path = config.path(config.tls.ca), config.path(config.tls.cert)
    try:
        cas = x509.load_pem_x509_certificates(ca_path.read_bytes())
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return out  # the certificates check reports it
    newest = _newest_announced_ca(rotations)
    if newest is not None and len(cas) > 1 and cert.issuer != newest.subject:
        out.append(
            (
                "warn",
                Text(
                    N_(
                        "nodens certifikat {cert} är från ett CA som hubben bytt bort "
                        "({issuer}); hubben godtar det bara tills dess driftansvariga avslutat "
                        "bytet av CA"
                    ),
                    cert=Path(config.tls.cert),
                    issuer=cert.issuer.rfc4514_string(),
                ),
                Text(N_("förnya det nu: samverka node renew-cert (starta sedan om node serve)")),
            )
        )
    return out


def _newest_announced_ca(rotations: list[HubRotation]) -> x509.Certificate | None:
    for rotation in reversed(rotations):
        if rotation.new_ca_pem:
            return x509.load_pem_x509_certificate(rotation.new_ca_pem)
    return None


def _utc(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
