"""A node folder opened for use: its configuration, store, signing key and trusted keys.

:func:`init_node` creates a node folder (what ``samverka node init`` runs);
:meth:`Node.open` opens an existing one (what every other command runs). The folder
layout is described in :mod:`samverka.config`; this module adds one folder to it::

    keys/trusted/<kommunkod>-<key id>.pub   Ed25519 public keys of other origins pinned
                                            by hand (``bundle import --trust-key``)

A node also writes a small local certificate authority at ``init`` (``tls/ca.pem`` and
its key ``tls/local-ca.key``) and a TLS certificate issued by it, so ``node serve`` works
before the node is enrolled at the hub. Enrolling replaces ``tls/ca.pem`` and
``tls/node.pem`` with the council's CA and a certificate it issued.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from samverka.closing import Closing
from samverka.config import CONFIG_FILE, DEFAULT_LISTEN, NodeConfig, load_config, render_config
from samverka.errors import ConfigError, DirectoryRefused, Reason
from samverka.i18n import _
from samverka.protocol import keybinding
from samverka.protocol.directory import VerifiedDirectory, verify_directory
from samverka.protocol.hubrotation import HubTrust, follow_directory
from samverka.protocol.keybinding import KeyState
from samverka.protocol.kommuner import is_kommunkod, kommun_name
from samverka.protocol.signing import PublicKey, SigningKey
from samverka.protocol.verify import KeyRing, TrustedKey
from samverka.records.publisher import Publisher
from samverka.store.store import Store

#: Folder (inside the node folder) of public keys pinned by hand, one PEM file per key.
TRUSTED_KEYS_DIR = "keys/trusted"
#: The local CA's private key, written by ``init`` so test readers can be issued certificates.
LOCAL_CA_KEY = "tls/local-ca.key"

#: The hub's directory-signing key, pinned at enrollment, and the newest verified
#: SignedDirectory this node holds (written by :mod:`samverka.membership.member`).
HUB_KEY_FILE = "hub/hub.pub"
DIRECTORY_FILE = "hub/directory.bin"
#: The hub's transparency-log keys this node pinned before a hub key rotation moved the
#: log key (one verifier key a line, oldest first; samverka.membership.hubtrust writes
#: it): the checkpoints it cosigned and accepted under them stay its reference.
EARLIER_LOG_KEYS_FILE = "hub/earlier-log-keys"

#: A pending key rotation's new signing key (written by ``node rotate-key``, removed
#: once the node switched to it) and the signing keys it used before (0600).
ROTATION_KEY = "rotation/next.key"
RETIRED_KEYS_DIR = "keys/retired"

#: Which key this node takes for which kommun (samverka.protocol.keybinding), kept
#: across directory versions: the hub alone cannot bind a new key to a known kommun.
KEY_STATE_FILE = "tlog/keys.json"

_PIN_NAME = re.compile(r"^(?P<origin>\d{4})(?:[-.][^/]*)?\.pub$")


@dataclass
class Node(Closing):
    """An open node folder. Close it (or use ``with``) to release the database."""

    config: NodeConfig
    store: Store
    signing_key: SigningKey
    _publisher: Publisher | None = field(default=None, repr=False)

    @classmethod
    def open(cls, node_dir: Path) -> Node:
        """Open the node in ``node_dir``: config, signing key, then the store (migrated)."""
        config = load_config(node_dir)
        signing_key = load_signing_key(config.signing_key_path)
        store = Store.open(config.store_url)
        return cls(config=config, store=store, signing_key=signing_key)

    @property
    def origin(self) -> str:
        """This node's kommunkod: the origin of every entry it signs."""
        return self.config.node.kommun

    @property
    def name(self) -> str:
        return kommun_name(self.origin)

    @property
    def dir(self) -> Path:
        return self.config.dir

    def publisher(self) -> Publisher:
        """The one Publisher of this node's own feed (created on first use)."""
        if self._publisher is None:
            self._publisher = Publisher(self.store, self.signing_key, self.origin)
        return self._publisher

    def keyring(self) -> KeyRing:
        """Keys this node trusts: its own signing key, the keys pinned in the folder, and
        the member directory's keys with their validity windows (once enrolled)."""
        ring = KeyRing([TrustedKey(self.origin, self.signing_key.public)])
        for key in pinned_keys(self.dir):
            ring.add(key)
        try:
            for key in directory_keys(self.config):
                ring.add(key)  # the directory's word (windows, revocation) wins
        except ValueError as exc:
            raise ConfigError(
                f"a key pinned in {TRUSTED_KEYS_DIR} belongs to another kommun in the "
                f"member directory: {exc}",
                hint="remove the pinned key file; the directory lists every member's keys",
            ) from exc
        return ring

    def pin_key(self, origin: str, public_key: PublicKey) -> Path:
        """Trust ``public_key`` for ``origin`` from now on (see :func:`pin_key`)."""
        return pin_key(self.dir, origin, public_key)

    def close(self) -> None:
        self.store.close()


def load_signing_key(path: Path) -> SigningKey:
    try:
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no signing key at {path}",
            hint="the node folder is incomplete; create one with `samverka node init`",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc.strerror}") from exc
    try:
        return SigningKey.from_pem(pem)
    except ValueError as exc:
        raise ConfigError(f"{path} is not an Ed25519 private key in PEM: {exc}") from exc


def pinned_keys(node_dir: Path) -> list[TrustedKey]:
    """The keys in ``keys/trusted/``; the origin is the file name's leading kommunkod."""
    folder = node_dir / TRUSTED_KEYS_DIR
    if not folder.is_dir():
        return []
    keys: list[TrustedKey] = []
    for path in sorted(folder.glob("*.pub")):
        match = _PIN_NAME.match(path.name)
        if match is None:
            raise ConfigError(
                f"{path}: a pinned key's file name must start with its kommunkod",
                hint="name pinned keys <kommunkod>-<anything>.pub, e.g. 1472-tibro.pub",
            )
        try:
            public = PublicKey.from_pem(path.read_bytes())
        except ValueError as exc:
            raise ConfigError(f"{path} is not an Ed25519 public key in PEM: {exc}") from exc
        keys.append(TrustedKey(match["origin"], public))
    return keys


def pin_key(node_dir: Path, origin: str, public_key: PublicKey) -> Path:
    """Save ``public_key`` as trusted for ``origin``; returns the file (idempotent)."""
    folder = node_dir / TRUSTED_KEYS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{origin}-{public_key.key_id}.pub"
    if not path.exists():
        write_new(path, public_key.to_pem(), mode=0o644)
    return path


def init_node(node_dir: Path, kommun: str, *, listen: str = DEFAULT_LISTEN) -> Node:
    """Create a node folder for ``kommun`` and return it opened.

    Writes the commented configuration, a new Ed25519 signing key (0600) and its
    public key, a local CA with a TLS certificate for this node, and the database.
    Refuses an unknown kommunkod and an existing node (nothing is overwritten).
    """
    if not is_kommunkod(kommun):
        raise ConfigError(
            _("{value!r} är ingen kommunkod").format(value=kommun),
            hint=_(
                "ange kommunens fyrsiffriga SCB-kod, t.ex. 2029 för Leksand (alla 290 finns i "
                "samverka/data/municipalities.csv)"
            ),
        )
    config_path = node_dir / CONFIG_FILE
    key_path = node_dir / "keys" / "signing.key"
    for existing in (config_path, key_path):
        if existing.exists():
            raise ConfigError(
                f"{node_dir} already holds a node ({existing.name} exists)",
                hint="choose an empty folder; an existing node is never overwritten",
            )
    node_dir.mkdir(parents=True, exist_ok=True)
    (node_dir / "keys").mkdir(mode=0o700, exist_ok=True)
    (node_dir / "tls").mkdir(mode=0o700, exist_ok=True)

    signing_key = SigningKey.generate()
    write_new(key_path, signing_key.to_pem(), mode=0o600)
    write_new(node_dir / "keys" / "signing.pub", signing_key.public.to_pem(), mode=0o644)

    # Here, not at the top: samverka.transport.pki loads cryptography.x509, which a node that only
    # opens its folder (serve, sync, search) never needs.
    from samverka.transport.pki import create_ca, issue_certificate

    name = kommun_name(kommun)
    ca = create_ca(f"Samverka local CA {kommun} {name}")
    cert = issue_certificate(ca, kommunkod=kommun, name=name, hosts=_tls_hosts(listen))
    write_new(node_dir / "tls" / "ca.pem", ca.cert_pem, mode=0o644)
    write_new(node_dir / LOCAL_CA_KEY, ca.key_pem, mode=0o600)
    write_new(node_dir / "tls" / "node.pem", cert.cert_pem, mode=0o644)
    write_new(node_dir / "tls" / "node.key", cert.key_pem, mode=0o600)

    # The config goes last: a folder without samverka.toml is not yet a node, so an
    # init that failed half-way is retried after removing the folder, never "opened".
    write_new(config_path, render_config(kommun, listen=listen).encode("utf-8"), mode=0o644)
    return Node.open(node_dir)


def listen_host(listen: str) -> str | None:
    """The host a listen address (``host:port``, ``[::1]:port``) names; None for a
    wildcard (``0.0.0.0``, ``[::]``), which no certificate can name."""
    host = listen.rsplit(":", 1)[0].strip("[]") if ":" in listen else listen
    return host if host and host not in ("0.0.0.0", "::") else None


def _tls_hosts(listen: str) -> tuple[str, ...]:
    """Names for the node certificate: loopback, plus the listen host when it is specific."""
    from samverka.transport.pki import DEFAULT_HOSTS

    host = listen_host(listen)
    if host is not None and host not in DEFAULT_HOSTS:
        return (*DEFAULT_HOSTS, host)
    return DEFAULT_HOSTS


def write_new(path: Path, data: bytes, *, mode: int) -> None:
    """Write a file that must not exist yet, created with ``mode`` (no umask race)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with contextlib.closing(os.fdopen(fd, "wb")) as f:
        f.write(data)
    os.chmod(path, mode)


# -- the member directory this node holds -----------------------------------------------
# Read here, below membership and replication, because every reader of the folder needs
# the keys it lists; fetching and accepting a newer one is membership's job.


def pinned_hub_key(config: NodeConfig) -> PublicKey | None:
    """The hub key pinned at enrollment, or None for a node that has not enrolled."""
    path = config.dir / HUB_KEY_FILE
    if not path.exists():
        return None
    try:
        return PublicKey.from_pem(path.read_bytes())
    except ValueError as exc:
        raise ConfigError(f"{path} is not an Ed25519 public key in PEM: {exc}") from exc


def load_directory(config: NodeConfig) -> VerifiedDirectory | None:
    """The directory this node holds, re-verified against the pinned key (not for expiry:
    an expired directory still says which keys signed the entries already held), or
    through the hub key rotation it carries from the pinned key (a rotation followed
    up to the directory but not yet to hub/hub.pub: samverka.membership.hubtrust)."""
    path = config.dir / DIRECTORY_FILE
    hub_key = pinned_hub_key(config)
    if hub_key is None or not path.exists():
        return None
    raw = path.read_bytes()
    try:
        try:
            return verify_directory(raw, hub_key, now_ms=None)
        except DirectoryRefused as exc:
            if exc.reason is not Reason.UNKNOWN_KEY:
                raise
            return follow_directory(raw, HubTrust(hub_key), now_ms=None).directory
    except DirectoryRefused as exc:
        raise ConfigError(
            f"{path} does not verify with the pinned hub key: {exc}",
            hint="fetch the directory again (`samverka node directory --refresh`)",
        ) from exc


def earlier_log_keys(node_dir: Path) -> list[str]:
    """The log keys this node pinned before the held directory's (oldest first)."""
    try:
        text = (node_dir / EARLIER_LOG_KEYS_FILE).read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {node_dir / EARLIER_LOG_KEYS_FILE}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def directory_keys(config: NodeConfig, *, now_ms: int | None = None) -> list[TrustedKey]:
    """The signing keys the held directory lists, with their windows and their standing
    at this node (for Node.keyring): a key the hub listed on its own for a kommun this
    node knew is in challenge, one its kommun objected to is refused
    (:mod:`samverka.protocol.keybinding`)."""
    directory = load_directory(config)
    if directory is None:
        return []
    now = _now_ms() if now_ms is None else now_ms
    # The held state, brought up to the held directory in memory (the membership layer
    # writes it when it adopts a directory; this only reads). Kept while neither file
    # nor the keys held change: the witness asks every second.
    path = config.dir / KEY_STATE_FILE
    stamp = (str(config.dir), _stamp(path), directory.digest, frozenset(held_key_ids(config)))
    cached = _STATE_CACHE.get(stamp[0])
    if cached is not None and cached[0] == stamp:
        state = cached[1]
    else:
        state = key_state_for(config, load_key_state(config), directory, now_ms=now)
        _STATE_CACHE[stamp[0]] = (stamp, state)
    return keybinding.trusted_keys(
        state,
        directory.directory,
        now_ms=now,
        challenge_period_ms=challenge_period_ms(config),
    )


# -- which key this node takes for which kommun -------------------------------------------

#: directory_keys' last state per node folder, with what it was made from.
_STATE_CACHE: dict[str, tuple[tuple[object, ...], KeyState]] = {}


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """A file's identity now (replaced atomically: a new inode each time)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def challenge_period_ms(config: NodeConfig) -> int:
    return round(config.witness.challenge_period_seconds * 1000)


def held_key_ids(config: NodeConfig) -> set[str]:
    """The ids of the signing keys this folder holds for its own kommun: its signing
    key, a pending rotation's new key, and the keys it rotated away from."""
    held = {path.stem for path in (config.dir / RETIRED_KEYS_DIR).glob("*.key")}
    for path in (config.signing_key_path, config.dir / ROTATION_KEY):
        try:
            held.add(SigningKey.from_pem(path.read_bytes()).key_id)
        except (OSError, ValueError):
            continue
    return held


def load_key_state(config: NodeConfig) -> KeyState:
    """The bindings held in ``tlog/keys.json`` (empty before the first directory)."""
    path = config.dir / KEY_STATE_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return keybinding.EMPTY
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return KeyState.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path} is damaged: {exc}",
            hint="restore it from a backup of the node folder; without it this node "
            "binds every kommun's keys anew on first sight (trust on first use) and "
            "forgets the objections it learnt",
        ) from exc


def save_key_state(config: NodeConfig, state: KeyState) -> None:
    data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode("utf-8") + b"\n"
    replace_file(config.dir / KEY_STATE_FILE, data, mode=0o644)


def key_state_for(
    config: NodeConfig,
    state: KeyState,
    directory: VerifiedDirectory | None,
    *,
    now_ms: int,
    objections: Iterable[bytes] = (),
    proven: bool = False,
) -> KeyState:
    """``state`` moved forward with ``directory`` (pure but for reading the keys held)."""
    return keybinding.update(
        state,
        directory.directory if directory is not None else None,
        now_ms=now_ms,
        challenge_period_ms=challenge_period_ms(config),
        objections=objections,
        proven=proven,
        own=config.node.kommun,
        held=held_key_ids(config),
    )


def update_key_state(
    config: NodeConfig,
    directory: VerifiedDirectory | None = None,
    *,
    objections: Iterable[bytes] = (),
    proven: bool = False,
    now_ms: int | None = None,
) -> KeyState:
    """Move ``tlog/keys.json`` forward and keep it: with a directory version this node
    adopted (None: the held one), objections learnt (from peers, or its own), and
    ``proven`` when that version is proven in a checkpoint this node accepted (the
    challenge period of each pending key it lists starts then)."""
    if directory is None:
        directory = load_directory(config)
    before = load_key_state(config)
    after = key_state_for(
        config,
        before,
        directory,
        now_ms=_now_ms() if now_ms is None else now_ms,
        objections=objections,
        proven=proven,
    )
    if after != before:
        save_key_state(config, after)
    return after


def known_objections(config: NodeConfig) -> list[bytes]:
    """The key objections this node honours (serialized SignedKeyObjection): for peers."""
    return load_key_state(config).known_objections()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def replace_file(path: Path, data: bytes, *, mode: int, dir_mode: int = 0o755) -> None:
    """Replace ``path`` atomically (temporary file, fsync, rename): a reader sees the old
    file or the new, never half. A missing parent folder is made with ``dir_mode``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with contextlib.closing(os.fdopen(fd, "wb")) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


# -- who may call a member port --------------------------------------------------------


def hub_address(config: NodeConfig) -> str:
    """The hub's member port (``[hub] address``); ConfigError when not enrolled."""
    if not config.hub.address:
        raise ConfigError(
            "this node is not enrolled: no [hub] address in samverka.toml",
            hint="enroll first: `samverka node enroll --hub HOST:PORT --ca FILE`",
        )
    return config.hub.address
