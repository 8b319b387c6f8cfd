"""The hub folder: create it (``hub init``) and open it (every other ``hub`` command).

A hub folder is a node folder for origin "0000" (see :mod:`samverka.config`) with a
certificate authority added::

    samverka.toml        node configuration + [public], [directory], [ca]
    keys/signing.key     the hub's Ed25519 key (0600): signs the member directory and
                         the council's own records (origin 0000)
    keys/signing.pub     its public key; enrolled nodes pin it
    keys/log.key         the transparency log's note key (0600, samverka_hub.tlog);
    keys/log.vkey        its verifier key (``<name>+<hash>+<base64>``), served at /log/key
    tls/ca.pem           the hub's CA certificate: give it to kommuner (`enroll --ca`);
                         the member port accepts client certificates it issued (during
                         a CA rotation, the old and the new CA: samverka_hub.keyrotation)
    ca/ca.key            the CA's private key (0600, folder 0700)
    tls/node.pem         the hub's own TLS certificate (CN 0000), issued by its CA,
    tls/node.key         served on both ports
    samverka.db          the node store plus the hub's tables (track "hub")
    store-password       the database password (0600), when `hub init --store-url` held one

:func:`open_hub` returns a :class:`Hub`: configuration, signing key, the node store,
the member store (same database), CA
and the :class:`~samverka_hub.council.Council` that makes decisions with them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from samverka.closing import Closing
from samverka.config import (
    CONFIG_FILE,
    STORE_PASSWORD_CREDENTIAL,
    credential_path,
    read_file,
    read_secret,
    split_password,
    with_password,
)
from samverka.errors import ConfigError
from samverka.node import Node, listen_host, load_signing_key, write_new
from samverka.protocol.kommuner import HUB_ORIGIN, kommun_name
from samverka.protocol.signing import SigningKey
from samverka.store.migrations import STORE_TRACK
from samverka.store.store import Store
from samverka.transport.pki import DEFAULT_HOSTS, create_ca, issue_certificate

from samverka_hub.ca import HubCA
from samverka_hub.config import (
    DEFAULT_MEMBER_LISTEN,
    DEFAULT_PUBLIC_LISTEN,
    HubConfig,
    load_hub_config,
    render_hub_config,
)
from samverka_hub.council import Council
from samverka_hub.keyfiles import directory_key_source, log_vkey_source
from samverka_hub.members import MemberStore
from samverka_hub.migrations import HUB_TRACK
from samverka_hub.tlog import create_log_key, log_key_name

CA_NAME = "Samverka CA (AI-rådet)"


@dataclass
class Hub(Closing):
    """An open hub folder. Close it (or use ``with``) to release the database."""

    config: HubConfig
    signing_key: SigningKey
    #: The node store (entries, log, records) with the hub's tables in the same database.
    store: Store
    members: MemberStore
    ca: HubCA
    council: Council

    @property
    def dir(self) -> Path:
        return self.config.dir

    def node(self) -> Node:
        """The hub as a node (origin 0000): its publisher signs the council's records."""
        return Node(config=self.config.node, store=self.store, signing_key=self.signing_key)

    def close(self) -> None:
        self.store.close()


def open_hub(hub_dir: Path, *, env: dict[str, str] | None = None) -> Hub:
    """Open the hub in ``hub_dir``: config, keys, CA, and the database (migrated)."""
    config = load_hub_config(hub_dir, env)
    node = config.node
    signing_key = load_signing_key(node.signing_key_path)
    ca = HubCA.load(config.ca_cert_path, config.ca_key_path, node.path(node.tls.cert))
    # One database: the node store's tables and the hub's track.
    store = Store.open(node.store_url, tracks=(STORE_TRACK, HUB_TRACK))
    members = MemberStore(store.engine)
    council = Council(
        members,
        signing_key,
        ca,
        config.directory,
        member_cert_days=config.ca.member_cert_days,
        max_renewals=config.ca.max_renewals,
        renewal_period_ms=round(config.ca.renewal_period_hours * 3_600_000),
        # Read as they are now: a running hub follows `hub rotate-keys`.
        key_source=directory_key_source(node.signing_key_path),
        log_key=log_vkey_source(hub_dir),
    )
    return Hub(
        config=config,
        signing_key=signing_key,
        store=store,
        members=members,
        ca=ca,
        council=council,
    )


def init_hub(
    hub_dir: Path,
    *,
    member_listen: str = DEFAULT_MEMBER_LISTEN,
    public_listen: str = DEFAULT_PUBLIC_LISTEN,
    member_address: str = "",
    hosts: tuple[str, ...] = (),
    store_url: str = "",
) -> Hub:
    """Create a hub folder and return it opened, with directory version 1 published.

    ``hosts`` are the names the hub's TLS certificate is valid for (its DNS names and
    addresses); loopback names are always included. ``store_url`` puts the database
    elsewhere than the SQLite file in the folder (PostgreSQL for production hubs).
    Refuses an existing folder, and a database that already holds a hub: a second
    hub with its own keys on it would re-sign the directory with a key no node
    trusts. A replica is a copy of the existing folder (docs/ARCHITECTURE.md).
    """
    config_path = hub_dir / CONFIG_FILE
    key_path = hub_dir / "keys" / "signing.key"
    for existing in (config_path, key_path, hub_dir / "ca" / "ca.key"):
        if existing.exists():
            raise ConfigError(
                f"{hub_dir} already holds a node or hub ({existing.name} exists)",
                hint="choose an empty folder; an existing hub is never overwritten",
            )
    # A password never goes into samverka.toml: into a 0600 file beside it instead.
    store_url, password = split_password(store_url)
    if store_url:
        _refuse_database_of_another_hub(
            with_password(store_url, password) if password else _with_env_password(store_url)
        )
    hub_dir.mkdir(parents=True, exist_ok=True)
    if password:
        write_new(hub_dir / STORE_PASSWORD_FILE, (password + "\n").encode(), mode=0o600)
    for sub in ("keys", "tls", "ca"):
        (hub_dir / sub).mkdir(mode=0o700, exist_ok=True)

    signing_key = SigningKey.generate()
    write_new(key_path, signing_key.to_pem(), mode=0o600)
    write_new(hub_dir / "keys" / "signing.pub", signing_key.public.to_pem(), mode=0o644)
    # The transparency log's note key (samverka_hub.tlog), named after the hub's host.
    create_log_key(hub_dir, log_key_name(log_host(member_address, hosts)))

    ca = create_ca(CA_NAME)
    names = tuple(
        dict.fromkeys((*DEFAULT_HOSTS, *hosts, *_listen_hosts(member_listen, public_listen)))
    )
    cert = issue_certificate(ca, kommunkod=HUB_ORIGIN, name=kommun_name(HUB_ORIGIN), hosts=names)
    write_new(hub_dir / "tls" / "ca.pem", ca.cert_pem, mode=0o644)
    write_new(hub_dir / "ca" / "ca.key", ca.key_pem, mode=0o600)
    write_new(hub_dir / "tls" / "node.pem", cert.cert_pem, mode=0o644)
    write_new(hub_dir / "tls" / "node.key", cert.key_pem, mode=0o600)

    text = render_hub_config(
        member_listen=member_listen,
        public_listen=public_listen,
        member_address=member_address,
        store_url=store_url,
        password_file=STORE_PASSWORD_FILE if password else "",
    )
    # The config goes last: a folder without samverka.toml is not yet a hub.
    write_new(config_path, text.encode("utf-8"), mode=0o644)
    hub = open_hub(hub_dir)
    try:
        with hub.members.write() as tx:
            hub.council.record_certificate(
                tx, HUB_ORIGIN, cert.cert_pem, "hub", hub.council.clock()
            )
        hub.council.ensure_fresh_directory()
    except BaseException:
        hub.close()
        raise
    return hub


#: Where ``hub init --store-url postgresql://user:PASSWORD@…`` puts the password (0600).
STORE_PASSWORD_FILE = "store-password"


def _with_env_password(url: str) -> str:
    """``url`` with the password the environment provides (``SAMVERKA_STORE_PASSWORD_FILE``
    or the systemd credential), as the hub will connect once its folder exists."""
    env = dict(os.environ)
    named = env.get("SAMVERKA_STORE_PASSWORD_FILE") or ""
    path = Path(named) if named else credential_path(env, STORE_PASSWORD_CREDENTIAL)
    if path is None or url.startswith("sqlite"):
        return url
    return with_password(url, read_secret(path, "database password"))


def _refuse_database_of_another_hub(store_url: str) -> None:
    """ConfigError if the database at ``store_url`` already holds a hub's directory."""
    store = Store.open(store_url, tracks=(STORE_TRACK, HUB_TRACK))
    try:
        version = MemberStore(store.engine).directory_version()
        safe_url = store.engine.url.render_as_string(hide_password=True)
    finally:
        store.close()
    if version:
        raise ConfigError(
            f"the database {safe_url} already holds a hub (member directory version "
            f"{version}); `hub init` makes a new hub with new keys and would take it over",
            hint="to run another replica of that hub, copy its folder (keys, CA, "
            "samverka.toml) to this host and run `samverka hub serve` with other ports; "
            "for a new hub, use an empty database",
        )


def log_host(member_address: str, hosts: Sequence[str] = ()) -> str:
    """The host that names the hub's log key: that of ``[hub] address``, else the first
    name given to ``hub init --host``, else "localhost"."""
    host = listen_host(member_address) if member_address else None
    return host or (hosts[0] if hosts else "localhost")


def _listen_hosts(*listens: str) -> list[str]:
    return [host for listen in listens if (host := listen_host(listen)) is not None]


# -- the hub's own TLS certificate ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenewedCertificate:
    serial: str
    not_after_ms: int
    hosts: tuple[str, ...]


def renew_hub_certificate(
    hub: Hub, *, add_hosts: tuple[str, ...] = (), days: int = 0
) -> RenewedCertificate:
    """A new TLS key and certificate for the hub itself (CN 0000), issued by its CA.

    Valid for every name the current certificate names plus ``add_hosts`` (a replica's
    host); ``days`` defaults to ``[ca] member_cert_days``. The old pair stays beside
    the new one as ``*.old``; the files are replaced atomically, so a replica that
    reads the folder meanwhile sees either pair whole. Running servers keep the
    certificate they started with until restarted.
    """
    from samverka.membership.member import write_file

    from samverka_hub.ca import certificate_hosts, describe

    node = hub.config.node
    cert_path, key_path = node.path(node.tls.cert), node.path(node.tls.key)
    current = certificate_hosts(read_file(cert_path, "hub TLS certificate"))
    for host in add_hosts:
        if not _is_host(host):
            raise ConfigError(
                f"--host {host!r} is not a host name or address a certificate can name",
                hint="give a DNS name (hub2.example.se) or an IP address, no port",
            )
    names = tuple(dict.fromkeys((*DEFAULT_HOSTS, *current, *add_hosts)))
    pair = issue_certificate(
        hub.ca.pair,
        kommunkod=HUB_ORIGIN,
        name=kommun_name(HUB_ORIGIN),
        hosts=names,
        days=days or hub.config.ca.member_cert_days,
    )
    for path in (cert_path, key_path):
        if path.exists():
            write_file(path.with_name(path.name + ".old"), path.read_bytes(), mode=0o600)
    write_file(key_path, pair.key_pem, mode=0o600)
    write_file(cert_path, pair.cert_pem, mode=0o644)
    with hub.members.write() as tx:
        hub.council.record_certificate(tx, HUB_ORIGIN, pair.cert_pem, "hub", hub.council.clock())
    info = describe(pair.cert_pem)
    hub.ca.hub_hosts = names
    return RenewedCertificate(serial=info.serial, not_after_ms=info.not_after_ms, hosts=names)


def _is_host(text: str) -> bool:
    """A DNS name or an IP address (what a certificate's subject alternative name holds)."""
    try:
        return not ipaddress.ip_address(text).is_unspecified
    except ValueError:
        return bool(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", text))
