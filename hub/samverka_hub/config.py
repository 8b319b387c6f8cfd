"""The hub's configuration: the node's ``samverka.toml`` plus the hub's own sections.

A hub folder is a node folder whose ``[node] kommun`` is the council's origin "0000".
Everything a node configures ([server] = the member port, [tls], [store]) means the
same at the hub; the node's ``[hub] address`` means, at the hub, the member-port
address the hub tells enrolled nodes to use. The hub adds:

``[public]``     the public port (server TLS only): enrollment and the directory.
``[directory]``  how long a signed directory is valid and when it is re-issued.
``[ca]``         the certificate authority's key and member certificate lifetime.
``[harvest]``    pulling members' feeds on a schedule (:mod:`samverka_hub.harvest`).
``[web]``        the read-only web catalog of PUBLIC records (:mod:`samverka_hub.web`).
``[tlog]``       the transparency log's witnesses (:mod:`samverka_hub.cosigned`); not
                 ``[log]``, which is the logging section every node has.
``[webhooks]``   messages about new PUBLIC records to chat channels (:mod:`samverka_hub.webhooks`).

Sections are read with :func:`samverka.config.load_sections`, so environment
overrides work the same way (``SAMVERKA_PUBLIC_LISTEN=0.0.0.0:7444``). Another hub
feature adds its section by adding a dataclass to :data:`HUB_SECTIONS` and a field
to :class:`HubConfig`.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from samverka.config import (
    CONFIG_FILE,
    NODE_HUB_AGENTS,
    NodeConfig,
    load_config,
    load_sections,
    render_config,
)
from samverka.errors import ConfigError
from samverka.protocol.kommuner import HUB_ORIGIN

DEFAULT_MEMBER_LISTEN = "127.0.0.1:7443"
DEFAULT_PUBLIC_LISTEN = "127.0.0.1:7444"
#: The hub serves /metrics by default (a node only when configured).
DEFAULT_HUB_METRICS_LISTEN = "127.0.0.1:9465"
#: The web catalog (plain HTTP: put a TLS-terminating reverse proxy in front of it).
DEFAULT_WEB_LISTEN = "127.0.0.1:7480"
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class PublicSection:
    #: host:port of the public port: server TLS only, no client certificate asked.
    listen: str = DEFAULT_PUBLIC_LISTEN


@dataclass(frozen=True, slots=True)
class DirectorySection:
    #: A signed directory is valid this many days after it is issued.
    valid_days: float = 7.0
    #: A new version is issued once this fraction of its lifetime has passed.
    reissue_fraction: float = 0.5
    #: After a key rotation is approved, the old key stays valid this long, so
    #: entries the node signs before it switches keys still verify.
    rotation_overlap_hours: float = 24.0
    #: How often ``hub serve`` looks for a directory written by another process
    #: (the operator's CLI, another hub replica).
    poll_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.valid_days <= 0:
            raise ConfigError("[directory] valid_days must be positive")
        if not 0 < self.reissue_fraction < 1:
            raise ConfigError("[directory] reissue_fraction must be between 0 and 1")
        if self.rotation_overlap_hours < 0:
            raise ConfigError("[directory] rotation_overlap_hours must not be negative")
        if self.poll_seconds <= 0:
            raise ConfigError("[directory] poll_seconds must be positive")

    @property
    def valid_ms(self) -> int:
        return int(self.valid_days * DAY_MS)

    @property
    def reissue_after_ms(self) -> int:
        return int(self.valid_ms * self.reissue_fraction)

    @property
    def rotation_overlap_ms(self) -> int:
        return int(self.rotation_overlap_hours * 3600 * 1000)


@dataclass(frozen=True, slots=True)
class CaSection:
    #: The CA's private key (ECDSA P-256, 0600). Its certificate is [tls] ca.
    key: str = "ca/ca.key"
    #: Lifetime of a member's TLS certificate, in days.
    member_cert_days: int = 397
    #: Most certificates one member may renew itself (RenewCertificate) within
    #: ``renewal_period_hours``; beyond it the hub answers RESOURCE_EXHAUSTED
    #: (``renewal_limit``) with the time the next renewal is allowed. Counted in the
    #: database, so the limit holds across replicas.
    max_renewals: int = 3
    #: The period ``max_renewals`` counts over, in hours.
    renewal_period_hours: float = 24.0

    def __post_init__(self) -> None:
        if self.member_cert_days < 1:
            raise ConfigError("[ca] member_cert_days must be at least 1")
        if not 1 <= self.max_renewals <= 1000:
            raise ConfigError("[ca] max_renewals must be between 1 and 1000")
        if not 0 < self.renewal_period_hours <= 24 * 366:
            raise ConfigError("[ca] renewal_period_hours must be more than 0 and at most 8784")


@dataclass(frozen=True, slots=True)
class HarvestSection:
    #: Pull from members whose directory entry has an address (their member port).
    enabled: bool = True
    #: How often each reachable member is harvested (seconds).
    interval_seconds: float = 300.0
    #: Longest wait before trying a member that failed again (seconds).
    max_backoff_seconds: float = 3600.0
    #: Members harvested at the same time (by this replica).
    concurrency: int = 8
    #: How long a replica's claim on a member lasts unless renewed (seconds); a running
    #: harvest renews it every third of this. A member whose replica died is harvested
    #: by another replica once its claim runs out.
    lease_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.interval_seconds <= 0:
            raise ConfigError("[harvest] interval_seconds must be positive")
        if self.lease_seconds <= 0:
            raise ConfigError("[harvest] lease_seconds must be positive")
        if self.max_backoff_seconds < self.interval_seconds:
            raise ConfigError("[harvest] max_backoff_seconds must be at least interval_seconds")
        if self.concurrency < 1:
            raise ConfigError("[harvest] concurrency must be at least 1")


@dataclass(frozen=True, slots=True)
class WebSection:
    #: Serve the web catalog from ``hub serve`` (``samverka hub web`` serves it alone).
    enabled: bool = True
    #: host:port of the catalog (plain HTTP; port 0 picks a free port).
    listen: str = DEFAULT_WEB_LISTEN
    #: Records on one page of search results.
    page_size: int = 20
    #: Most rows one CSV export holds.
    max_export_rows: int = 5000
    #: The catalog's public address (``https://katalog.example.se``, with a path prefix
    #: if it is served under one), from which the links in CSV exports, Atom feeds and
    #: webhook messages are built (and the host of the feeds' tag: ids). Empty: the links
    #: are paths (``/post/2029/uc-x``). Never taken from the request's Host header, which
    #: whoever sends the request chooses.
    public_url: str = ""
    #: Entries in one Atom feed (``/flode.atom`` and the others, docs/FEEDS.md): the
    #: records whose current version was stored last.
    feed_size: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.feed_size <= 500:
            raise ConfigError("[web] feed_size must be between 1 and 500")
        if not 1 <= self.page_size <= 200:
            raise ConfigError("[web] page_size must be between 1 and 200")
        if not 1 <= self.max_export_rows <= 100_000:
            raise ConfigError("[web] max_export_rows must be between 1 and 100000")
        if self.public_url:
            _check_public_url(self.public_url)


def _check_public_url(url: str) -> None:
    """A public_url is http(s)://host[:port][/path], nothing else."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, or out of range
        port_ok = False
    if (
        not port_ok
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or url != url.strip()
        or any(c in url for c in "\\\"<>' \t\r\n")
    ):
        raise ConfigError(
            f"[web] public_url {url!r} is not an http(s) address such as "
            "https://katalog.example.se",
            hint="give the scheme, the host and an optional path, without query or "
            "fragment, or leave it empty for links without a host",
        )


@dataclass(frozen=True, slots=True)
class TlogSection:
    #: Cosignatures (by distinct active members) that make a checkpoint "cosigned": the
    #: log serves everyone the newest checkpoint with this many (or with as many as there
    #: are active members, if fewer), else its newest. Nodes need ``[witness] quorum``
    #: (default 2) cosignatures by kommuner other than themselves; 3 gives each of them
    #: two others.
    witness_target: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.witness_target <= 63:
            raise ConfigError("[tlog] witness_target must be between 1 and 63")


@dataclass(frozen=True, slots=True)
class WebhooksSection:
    """Messages about new PUBLIC records, posted as JSON to chat channels' incoming
    webhooks (Teams, Mattermost, Slack: a ``text`` field), by ``hub serve``
    (:mod:`samverka_hub.webhooks`, docs/FEEDS.md)."""

    #: Incoming-webhook URLs that get a message for each new PUBLIC record: https only
    #: (http only to a loopback address). Environment: comma-separated. Such a URL is a
    #: secret (whoever has it can post to the channel): prefer ``urls_file``.
    urls: tuple[str, ...] = ()
    #: A file with more such URLs, one a line (``#`` starts a comment), relative to the
    #: hub folder; keep it readable by the hub's user only (chmod 600).
    urls_file: str = ""
    #: Seconds one try may take (connect, send, answer) before it counts as failed.
    timeout_seconds: float = 10.0
    #: Tries of one message before it is given up (logged, counted in /metrics) and the
    #: next record's message is sent.
    max_attempts: int = 8
    #: The wait after the first failed try; it doubles with each failure (with jitter),
    #: up to ``max_backoff_seconds``.
    initial_backoff_seconds: float = 2.0
    #: The longest wait between two tries of one message.
    max_backoff_seconds: float = 300.0
    #: How often to look for records another replica (or process) stored; records this
    #: process stores wake the delivery at once.
    poll_seconds: float = 5.0

    def __post_init__(self) -> None:
        raw: object = self.urls  # a list from TOML, comma-separated text from the environment
        urls = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
            raise ConfigError(
                "[webhooks] urls must be a list of addresses",
                hint='e.g. urls = ["https://example.webhook.office.com/…"]',
            )
        cleaned = tuple(dict.fromkeys(u.strip() for u in urls if u.strip()))
        for url in cleaned:
            check_webhook_url(url, "[webhooks] urls")
        object.__setattr__(self, "urls", cleaned)
        if not 0 < self.timeout_seconds <= 300:
            raise ConfigError("[webhooks] timeout_seconds must be more than 0 and at most 300")
        if not 1 <= self.max_attempts <= 100:
            raise ConfigError("[webhooks] max_attempts must be between 1 and 100")
        if not 0 < self.initial_backoff_seconds <= self.max_backoff_seconds:
            raise ConfigError(
                "[webhooks] initial_backoff_seconds must be more than 0 and at most "
                "max_backoff_seconds"
            )
        if self.poll_seconds <= 0:
            raise ConfigError("[webhooks] poll_seconds must be positive")


def check_webhook_url(url: str, where: str) -> None:
    """An incoming-webhook URL: https://host[:port]/…, or http:// to a loopback address
    (a receiver on the hub's own machine); no user name or password in it."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, or out of range
        parts, port_ok = None, False
    host = (parts.hostname or "") if parts is not None else ""
    shown = _redacted(url)
    if (
        parts is None
        or not port_ok
        or not host
        or parts.username is not None
        or parts.fragment
        or any(c in url for c in "\\\"<>' \t\r\n")
        or parts.scheme not in ("https", "http")
    ):
        raise ConfigError(
            f"{where}: {shown!r} is not an https address",
            hint="give the whole URL the chat service showed, e.g. https://… (no user or "
            "password in it)",
        )
    if parts.scheme == "http" and not _loopback(host):
        raise ConfigError(
            f"{where}: {shown!r} is plain http: a message (and the URL's secret) would "
            "cross the network unencrypted",
            hint="use the https address; http is allowed only to a loopback address "
            "(127.0.0.1, ::1, localhost)",
        )


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redacted(url: str) -> str:
    """A webhook URL as errors show it: scheme and host only (its path is a secret)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if not parts.scheme or not parts.netloc:
        return url[:40]
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


HUB_SECTIONS: dict[str, type[Any]] = {
    "public": PublicSection,
    "directory": DirectorySection,
    "ca": CaSection,
    "harvest": HarvestSection,
    "web": WebSection,
    "tlog": TlogSection,
    "webhooks": WebhooksSection,
}


@dataclass(frozen=True, slots=True)
class HubConfig:
    """The node configuration of the hub folder and the hub's own sections."""

    node: NodeConfig
    public: PublicSection = field(default_factory=PublicSection)
    directory: DirectorySection = field(default_factory=DirectorySection)
    ca: CaSection = field(default_factory=CaSection)
    harvest: HarvestSection = field(default_factory=HarvestSection)
    web: WebSection = field(default_factory=WebSection)
    tlog: TlogSection = field(default_factory=TlogSection)
    webhooks: WebhooksSection = field(default_factory=WebhooksSection)

    @property
    def dir(self) -> Path:
        return self.node.dir

    @property
    def member_listen(self) -> str:
        """Where the member port (mutual TLS) listens: the node's [server] listen."""
        return self.node.server.listen

    @property
    def member_address(self) -> str:
        """The member-port address enrolled nodes are told: [hub] address, else listen."""
        return self.node.hub.address or self.node.server.listen

    @property
    def ca_key_path(self) -> Path:
        return self.node.path(self.ca.key)

    @property
    def ca_cert_path(self) -> Path:
        return self.node.path(self.node.tls.ca)


def load_hub_config(hub_dir: Path, env: dict[str, str] | None = None) -> HubConfig:
    """Read a hub folder's configuration; refuses a node folder that is not a hub's."""
    env = dict(os.environ) if env is None else env
    node = load_config(hub_dir, env)
    if node.node.kommun != HUB_ORIGIN:
        raise ConfigError(
            f"{hub_dir} is the node of kommun {node.node.kommun}, not a hub",
            hint="create a hub with `samverka hub init --dir DIR` and point --dir at it",
        )
    sections = load_sections(hub_dir / CONFIG_FILE, HUB_SECTIONS, env)
    return HubConfig(node=node, **sections)


_NODE_TLS_COMMENT = """# Mutual TLS: the CA that signs every participant's certificate, and ours.
# `node init` writes a local CA for trying things out; enrolling at the hub
# replaces these with the council's CA and a certificate it issued.
"""

_HUB_TLS_COMMENT = """# The hub's own certificate authority (ca: members' client certificates are
# checked against it; its key is [ca] key below) and the hub's TLS certificate,
# issued by that CA and served on both ports.
"""

_NODE_HUB_COMMENT = """[hub]
# host:port of the council's hub; empty until the node is enrolled.
"""

_HUB_HUB_COMMENT = """[hub]
# The member-port address (host:port) enrolled nodes are told to use for the hub,
# e.g. hub.samverka.se:7443. Empty: the [server] listen address above.
"""


def render_hub_config(
    *,
    member_listen: str = DEFAULT_MEMBER_LISTEN,
    public_listen: str = DEFAULT_PUBLIC_LISTEN,
    member_address: str = "",
    store_url: str = "",
    password_file: str = "",
) -> str:
    """The commented samverka.toml written by ``samverka hub init`` (``store_url`` holds
    no password: ``password_file`` names the file that does)."""
    text = render_config(
        HUB_ORIGIN, listen=member_listen, metrics_listen=DEFAULT_HUB_METRICS_LISTEN
    )
    if store_url:
        default_url = 'url = "sqlite:///samverka.db"'
        if default_url not in text:
            raise AssertionError("the node configuration template changed; update this")
        text = text.replace(default_url, f"url = {json.dumps(store_url)}", 1)
    if password_file:
        default_file = 'password_file = ""'
        if default_file not in text:
            raise AssertionError("the node configuration template changed; update this")
        text = text.replace(default_file, f"password_file = {json.dumps(password_file)}", 1)
    text = text.replace(
        "# Samverka node configuration for",
        "# Samverka hub configuration (a node with a member directory) for",
        1,
    )
    text = text.replace(
        "# Address `samverka node serve` listens on",
        "# The member port (mutual TLS, members only): where `samverka hub serve` listens\n#",
        1,
    )
    text = text.replace(_NODE_TLS_COMMENT, _HUB_TLS_COMMENT, 1)
    if _NODE_HUB_COMMENT not in text:
        raise AssertionError("the node configuration template changed; update render_hub_config")
    text = text.replace(_NODE_HUB_COMMENT, _HUB_HUB_COMMENT, 1)
    text = text.replace(NODE_HUB_AGENTS, "", 1)  # the hub neither pushes nor follows
    text = text.replace('address = ""', f"address = {json.dumps(member_address)}", 1)
    return (
        text
        + f'''
[public]
# The public port: server TLS only (no client certificate). Serves enrollment,
# the signed member directory, and PUBLIC records only. Nodes enroll here:
#   samverka node enroll --hub HOST:PORT --ca tls/ca.pem
listen = "{public_listen}"

[directory]
# A signed member directory is valid this many days after it is issued; nodes
# refuse an expired one. `hub serve` issues a new version once reissue_fraction
# of the lifetime has passed (with 7 days and 0.5: every 3.5 days), and every
# membership decision issues one at once; a node that fetches at least every few
# days never holds an expired directory.
valid_days = 7.0
reissue_fraction = 0.5
# After a key rotation is approved the old key stays valid this many hours, so
# entries the node signs before it switches to the new key still verify.
rotation_overlap_hours = 24.0
# How often `hub serve` looks for a directory another process wrote (seconds).
poll_seconds = 0.5

[ca]
# The certificate authority's private key. Its certificate is [tls] ca above;
# give that file to kommuner so they can enroll (`--ca`). Keep the key offline
# in a backup: losing it means re-enrolling every member.
key = "ca/ca.key"
# Lifetime of a member's TLS certificate (days); renew with `samverka node renew-cert`.
member_cert_days = 397
# Renewals one member may make within renewal_period_hours (counted in the database).
max_renewals = 3
renewal_period_hours = 24.0

[harvest]
# `hub serve` pulls new entries from every member whose directory entry has an
# address (its node's member port, given at enrollment), with the hub's own
# certificate; members behind a firewall push instead (`samverka node push`).
enabled = true
# Each member is harvested this often (seconds); one that fails is retried with
# exponential back-off (with jitter) up to max_backoff_seconds.
interval_seconds = 300.0
max_backoff_seconds = 3600.0
# Members harvested at the same time (by this replica).
concurrency = 8
# Replicas on one database share the schedule: each due member is claimed by one
# replica for this long (renewed while it harvests); if that replica dies, another
# takes the member over once the claim runs out.
lease_seconds = 60.0

[web]
# The read-only web catalog of PUBLIC records (search, records, kommuner, the
# coverage picture, a JSON API at /api). Plain HTTP: put a TLS-terminating reverse
# proxy in front of it; `hub serve` prints its address. Port 0 picks a free port.
enabled = true
listen = "127.0.0.1:7480"
page_size = 20
max_export_rows = 5000
# The catalog's public address, for the links in CSV exports and Atom feeds
# (empty: paths only; feeds need it for readers that do not resolve paths).
# public_url = "https://katalog.example.se"
# Entries in each Atom feed (/flode.atom, /flode/kommun/2029.atom, …; docs/FEEDS.md).
feed_size = 50

[tlog]
# The transparency log (served under /log/ on the web port, and over gRPC): members'
# nodes witness it by cosigning its checkpoints. A checkpoint with witness_target
# cosignatures (or one by every active member, if there are fewer) is the one served
# to everyone; nodes accept one only with cosignatures by [witness] quorum others.
witness_target = 3

[webhooks]
# A message for each new PUBLIC record, posted to chat channels' incoming webhooks
# (Teams, Mattermost, Slack), retried with back-off; docs/FEEDS.md. A webhook URL is a
# secret: list them in a file only the hub's user can read (one a line).
urls = []
# urls_file = "webhooks.txt"
timeout_seconds = 10.0
max_attempts = 8
'''
    )
