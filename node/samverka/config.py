"""A node's folder and its TOML configuration.

Layout of a node folder (``--dir`` or ``SAMVERKA_DIR``)::

    samverka.toml         the configuration, commented
    keys/signing.key      Ed25519 private key that signs this kommun's entries (0600)
    keys/signing.pub      its public key (PEM), safe to hand out
    tls/ca.pem            the CA whose certificates this node trusts
    tls/node.pem          this node's TLS certificate (ECDSA P-256)
    tls/node.key          its private key (0600)
    samverka.db           the SQLite store

Every key can be overridden from the environment: ``SAMVERKA_<SECTION>_<KEY>``,
e.g. ``SAMVERKA_SERVER_LISTEN=0.0.0.0:7443``.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from samverka.errors import ConfigError
from samverka.i18n import _
from samverka.protocol.kommuner import is_origin, kommun_name
from samverka.protocol.vocab import RECORD_KIND, SERVICE_AREA, UnknownTerm

CONFIG_FILE = "samverka.toml"
#: A samverka.toml is a few KiB: a larger file is no configuration (and is not read whole).
MAX_CONFIG_BYTES = 1024 * 1024
#: The largest number a setting may hold: a whole number fits SQL's signed 64 bits; a
#: number of seconds (or a rate) at most 10^12 (31,700 years: timers overflow beyond).
MAX_CONFIG_INT = 2**63 - 1
MAX_CONFIG_FLOAT = 1e12
DEFAULT_LISTEN = "127.0.0.1:7443"
#: Where a node's /metrics listens once enabled (the hub's own default: 9465).
DEFAULT_METRICS_LISTEN = "127.0.0.1:9464"
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class NodeSection:
    #: The SCB kommunkod this node publishes as (4 digits; the hub is 0000).
    kommun: str
    #: The kommun's name, for people; the kommunkod decides.
    name: str = ""


@dataclass(frozen=True, slots=True)
class ServerSection:
    #: host:port the gRPC server listens on (the hub's member port); port 0 picks one.
    listen: str = DEFAULT_LISTEN
    #: Largest gRPC message accepted or sent.
    max_message_bytes: int = 4 * 1024 * 1024
    #: Entries per streamed ReadEntries/Subscribe message (upper bound).
    batch_size: int = 500
    #: Seconds SIGTERM waits for open streams before closing them.
    grace_seconds: float = 5.0
    #: Largest number of concurrent streams per connection.
    max_concurrent_streams: int = 100


@dataclass(frozen=True, slots=True)
class TlsSection:
    #: The CA certificate that every participant's certificate must chain to.
    ca: str = "tls/ca.pem"
    #: This server's TLS certificate (ECDSA P-256, CN = kommunkod).
    cert: str = "tls/node.pem"
    #: Its private key (0600).
    key: str = "tls/node.key"


@dataclass(frozen=True, slots=True)
class StoreSection:
    #: SQLAlchemy URL; a relative sqlite path is taken relative to the node folder.
    #: Without a password: that comes from `password_file` (never put one here).
    url: str = "sqlite:///samverka.db"
    #: A file holding the database password (its first line), added to `url`: e.g.
    #: /run/secrets/store_password (compose secrets). Empty: the systemd credential
    #: `store-password` ($CREDENTIALS_DIRECTORY, `LoadCredential=`) when there is one.
    #: Must not be readable by others (doctor FAILs otherwise).
    password_file: str = ""


@dataclass(frozen=True, slots=True)
class HubSection:
    #: host:port of the council's hub; empty when not enrolled.
    address: str = ""
    #: While ``node serve`` runs on an enrolled node: push its new entries to the hub ...
    push: bool = True
    #: ... and follow the hub's log live into the local mirror.
    follow: bool = True
    #: The push agent also checks with the hub this often (seconds), appends or not.
    push_interval_seconds: float = 60.0
    #: Longest wait between attempts while the hub is unreachable (seconds).
    max_backoff_seconds: float = 300.0
    #: While ``node serve`` runs on an enrolled node: ask the hub for a newer member
    #: directory this often (seconds), so a revocation reaches this node's server.
    directory_refresh_seconds: float = 60.0
    #: Refuse member calls (PERMISSION_DENIED ``directory_stale``) once the hub last
    #: confirmed the held directory longer ago than this (seconds); 0: never refuse.
    directory_max_age_seconds: float = 900.0


@dataclass(frozen=True, slots=True)
class LimitsSection:
    #: How far ahead of this node's clock an entry's timestamp may be (seconds).
    max_clock_skew_seconds: float = 600.0


@dataclass(frozen=True, slots=True)
class MetricsSection:
    #: host:port of the Prometheus /metrics endpoint; empty: no endpoint. Plain HTTP,
    #: so keep it on loopback or a monitoring network.
    listen: str = ""


@dataclass(frozen=True, slots=True)
class LogSection:
    #: "json" (one event a line), "console" (for people), or "auto": console when
    #: stderr is a terminal, else JSON.
    format: str = "auto"
    #: Lowest level logged: debug, info, warning or error.
    level: str = "info"

    def __post_init__(self) -> None:
        if self.format not in LOG_FORMATS:
            raise ConfigError(
                f"[log] format {self.format!r} is unknown", hint=f"use one of {LOG_FORMATS}"
            )
        if self.level not in LOG_LEVELS:
            raise ConfigError(
                f"[log] level {self.level!r} is unknown", hint=f"use one of {LOG_LEVELS}"
            )


@dataclass(frozen=True, slots=True)
class WitnessSection:
    """The node as a witness and monitor of the hub's transparency log (issue 11;
    docs/SECURITY.md "The transparency log")."""

    #: Cosignatures by other kommuner a hub checkpoint needs before this node accepts it
    #: (capped at the number of other active members). Two: to show one member a split
    #: view, the hub must fool or collude with two other kommuner as well.
    quorum: int = 2
    #: A cosignature older than this does not count (a frozen or replayed log shows).
    max_age_seconds: float = 24 * 3600.0
    #: How long sync waits for a cosigned checkpoint that covers what it received,
    #: before it refuses the entries as not proven in the log.
    proof_wait_seconds: float = 30.0
    #: A key listed for a kommun without an announcement under its old key takes effect
    #: only after standing this long in an accepted checkpoint, unobjected.
    challenge_period_seconds: float = 24 * 3600.0
    #: Cosign the hub's checkpoints (a member that follows the hub witnesses its log).
    cosign: bool = True

    def __post_init__(self) -> None:
        if self.quorum < 0:
            raise ConfigError("[witness] quorum cannot be negative", hint="use 0 or more")
        for name in ("max_age_seconds", "proof_wait_seconds", "challenge_period_seconds"):
            if getattr(self, name) < 0:
                raise ConfigError(f"[witness] {name} cannot be negative")


def _words(value: object, where: str) -> tuple[str, ...]:
    """A list from TOML, or comma-separated text from the environment, as a tuple."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(
            f"{where} must be a list of words, not {value!r}", hint='e.g. ["äldreomsorg", "it"]'
        )
    return tuple(i.strip() for i in items if i.strip())


@dataclass(frozen=True, slots=True)
class SyncSection:
    """What this node takes from the hub (issue 14, selective sync): `samverka sync` and
    the follow agent of `samverka node serve`. Empty lists take everything. Entries of
    the kinds or areas left out are kept as stand-ins (origin, sequence, hash), so every
    feed's hash chain is still verified; `samverka sync --origin/--kind/--area/--all`
    overrides this section for one run."""

    #: Only these origins' feeds (kommunkoder; "0000" is the council). The hub sends no
    #: other origin's entries. Environment: comma-separated.
    origins: tuple[str, ...] = ()
    #: Only these record kinds (use-case, lesson, solution, recommendation, adoption;
    #: Swedish words too: lösning, lärdom).
    kinds: tuple[str, ...] = ()
    #: Only records of these service areas (e.g. elderly-care or äldreomsorg, it,
    #: school); records that name no area (adoptions) are kept.
    areas: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("origins", "kinds", "areas"):
            object.__setattr__(self, name, _words(getattr(self, name), f"[sync] {name}"))
        for origin in self.origins:
            if not is_origin(origin):
                raise ConfigError(
                    f"[sync] origins: {origin!r} is not a kommunkod",
                    hint="four digits, e.g. 2029 for Leksand; 0000 for the council",
                )
        for name, vocabulary in (("kinds", RECORD_KIND), ("areas", SERVICE_AREA)):
            for word in getattr(self, name):
                try:
                    vocabulary.parse(word)
                except UnknownTerm as exc:
                    raise ConfigError(f"[sync] {name}: {exc}", hint=exc.hint) from exc


@dataclass(frozen=True, slots=True)
class NodeConfig:
    dir: Path
    node: NodeSection
    server: ServerSection = field(default_factory=ServerSection)
    tls: TlsSection = field(default_factory=TlsSection)
    store: StoreSection = field(default_factory=StoreSection)
    hub: HubSection = field(default_factory=HubSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    log: LogSection = field(default_factory=LogSection)
    witness: WitnessSection = field(default_factory=WitnessSection)
    sync: SyncSection = field(default_factory=SyncSection)

    @property
    def signing_key_path(self) -> Path:
        return self.dir / "keys" / "signing.key"

    @property
    def public_key_path(self) -> Path:
        return self.dir / "keys" / "signing.pub"

    def path(self, relative: str) -> Path:
        """A configured path, relative to the node folder unless absolute."""
        p = Path(relative)
        return p if p.is_absolute() else self.dir / p

    @property
    def max_clock_skew_ms(self) -> int:
        """``limits.max_clock_skew_seconds`` as verify_entry's ``max_clock_skew_ms``."""
        return round(self.limits.max_clock_skew_seconds * 1000)

    @property
    def store_url(self) -> str:
        """``[store] url`` to connect with: a SQLite path made absolute, the password of
        ``[store] password_file`` added (ConfigError when that file cannot be read)."""
        url = self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            return prefix + str(self.path(url[len(prefix) :]))
        secret = self.store_password_path
        if secret is not None and not split_password(url)[1]:
            return with_password(url, read_secret(secret, "database password"))
        return url

    @property
    def store_password_path(self) -> Path | None:
        """The file ``[store] password_file`` names, if any."""
        return self.path(self.store.password_file) if self.store.password_file else None


_SECTIONS: dict[str, type[Any]] = {
    "node": NodeSection,
    "server": ServerSection,
    "tls": TlsSection,
    "store": StoreSection,
    "hub": HubSection,
    "limits": LimitsSection,
    "metrics": MetricsSection,
    "log": LogSection,
    "witness": WitnessSection,
    "sync": SyncSection,
}


def read_file(path: Path, what: str = "", *, hint: str = "") -> bytes:
    """A file the configuration names (a key, a certificate); ConfigError when unreadable."""
    try:
        return path.read_bytes()
    except OSError as exc:
        the = f"the {what} " if what else ""
        raise ConfigError(f"cannot read {the}{path}: {exc.strerror}", hint=hint) from exc


#: The systemd credential (``LoadCredential=store-password:…``) read as the database
#: password when ``[store] password_file`` is empty.
STORE_PASSWORD_CREDENTIAL = "store-password"


def split_password(url: str) -> tuple[str, str]:
    """``(url without its password, the password)``; ``""`` when the URL carries none."""
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url, ""
    user, _sep, password = userinfo.partition(":")
    return f"{scheme}://{user}@{host}{slash}{tail}", unquote(password)


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` for its user (percent-encoded); ConfigError without a user."""
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    user, at, host = authority.rpartition("@")
    if not sep or not at or not user:
        raise ConfigError(
            "[store] url names no user, so a password file cannot be used with it",
            hint="write the user into the URL: postgresql://samverka@db.example.se/samverka",
        )
    user = user.partition(":")[0]
    return f"{scheme}://{user}:{quote(password, safe='')}@{host}{slash}{tail}"


#: A secret file holds one line (a password): anything larger is not one.
MAX_SECRET_BYTES = 64 * 1024


def read_secret(path: Path, what: str) -> str:
    """The first line of a secret file (a password), without its line ending."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    if len(data) > MAX_SECRET_BYTES:
        raise ConfigError(f"the {what} file {path} is larger than 64 KiB: not a password")
    try:
        text = data.decode("utf-8", errors="strict").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the {what} file {path} is not UTF-8 text") from exc
    if not text or not text[0]:
        raise ConfigError(f"the {what} file {path} is empty")
    return text[0]


def credential_path(env: dict[str, str], name: str) -> Path | None:
    """``$CREDENTIALS_DIRECTORY/name`` when systemd passed that credential, else None."""
    folder = env.get("CREDENTIALS_DIRECTORY")
    if folder and (Path(folder) / name).is_file():
        return Path(folder) / name
    return None


def resolve_dir(dir_option: str | os.PathLike[str] | None) -> Path:
    """The node folder from ``--dir``, else ``SAMVERKA_DIR``, else the current folder."""
    if dir_option:
        return Path(dir_option)
    env = os.environ.get("SAMVERKA_DIR")
    return Path(env) if env else Path.cwd()


def load_config(node_dir: Path, env: dict[str, str] | None = None) -> NodeConfig:
    """Read ``samverka.toml`` from the node folder and apply environment overrides."""
    env = dict(os.environ) if env is None else env
    path = node_dir / CONFIG_FILE
    if not path.exists():
        raise ConfigError(
            _("ingen {file} i {dir}").format(file=CONFIG_FILE, dir=node_dir),
            hint=_(
                "skapa en nod med `samverka node init --kommun KOD --dir MAPP`, eller låt "
                "--dir / SAMVERKA_DIR peka på en som finns"
            ),
        )
    sections = load_sections(path, _SECTIONS, env)
    store: StoreSection = sections["store"]
    credential = credential_path(env, STORE_PASSWORD_CREDENTIAL)
    if not store.password_file and credential is not None:
        sections["store"] = replace(store, password_file=str(credential))
    node: NodeSection = sections["node"]
    if not is_origin(node.kommun):
        raise ConfigError(f"{path}: [node] kommun {node.kommun!r} is not a kommunkod")
    return NodeConfig(dir=node_dir, **sections)


def load_sections(
    path: Path, sections: dict[str, type[Any]], env: dict[str, str]
) -> dict[str, Any]:
    """Read the named TOML sections of ``path`` into their dataclasses, env overrides applied.

    Sections not named are ignored, so a program that extends the node configuration
    (the hub) reads its own sections from the same file with this function.
    """
    raw = read_toml(path)
    result: dict[str, Any] = {}
    for name, cls in sections.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{name}] must be a table (a [{name}] section)")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(
                    f"{path}: unknown key [{name}] {key}",
                    hint=f"known keys of [{name}]: {', '.join(known)}",
                )
            values[key] = _checked(value, known[key].type, f"{path}: [{name}] {key}")
        for key, f in known.items():
            var = f"SAMVERKA_{name.upper()}_{key.upper()}"
            override = env.get(var)
            if override is not None:
                values[key] = _checked(_coerce(override, f.type, var), f.type, var)
        missing = [
            f.name
            for f in known.values()
            if f.name not in values and f.default is MISSING and f.default_factory is MISSING
        ]
        if missing:
            raise ConfigError(f"{path}: missing key [{name}] {missing[0]}")
        result[name] = cls(**values)
    return result


def read_toml(path: Path) -> dict[str, Any]:
    """``path`` parsed as TOML; anything wrong with it is a ConfigError naming the file
    (never a traceback): larger than MAX_CONFIG_BYTES, not UTF-8, not TOML, arrays or
    tables nested deeper than tomllib's recursion allows, a number over 4,300 digits."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: not a Samverka configuration",
            hint="samverka.toml holds a few sections of settings; restore it from the "
            "folder's backup or write it anew (samverka node init writes one)",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path} is not valid TOML: arrays or tables nested too deep") from exc
    except ValueError as exc:  # Python's limit on digits in an integer literal
        raise ConfigError(f"{path} is not valid TOML: a number with too many digits") from exc


def _kind(type_name: Any) -> str:
    # Field types are strings here (``from __future__ import annotations``).
    return type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "")


def _coerce(text: str, type_name: Any, var: str) -> Any:
    """An environment variable's text as the field's type (bool, int, float or str)."""
    kind = _kind(type_name)
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{var}={text!r} is not a boolean", hint="use true or false")
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError as exc:
        raise ConfigError(f"{var}={text!r} is not {_KIND_NAMES[kind]}") from exc
    return text


_KIND_NAMES = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "text"}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _checked(value: Any, type_name: Any, where: str) -> Any:
    """``value`` if it has the field's type (an int is a fine float); else ConfigError.

    Numbers must be finite and not negative: every number in the configuration is a
    size, a count or a duration.
    """
    kind = _kind(type_name)
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
    }.get(kind, True)
    if not ok:
        raise ConfigError(f"{where} must be {_KIND_NAMES[kind]}, not {value!r}")
    if kind in ("int", "float"):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{where} must be a finite number, 0 or more, not {value!r}")
        largest, named = (
            (MAX_CONFIG_INT, "2^63 - 1") if kind == "int" else (MAX_CONFIG_FLOAT, "10^12")
        )
        if value > largest:
            shown = repr(value) if len(repr(value)) <= 40 else f"{len(str(value))} digits"
            raise ConfigError(f"{where} must be at most {named}, not {shown}")
        return float(value) if kind == "float" else value
    return value


#: The [hub] lines about a node's push and follow agents (a hub's config leaves them out).
NODE_HUB_AGENTS = """# While `samverka node serve` runs on an enrolled node: push this node's new
# entries to the hub (for nodes the hub cannot reach), and follow the hub's log
# live into the local mirror, so `samverka search` covers the whole federation.
push = true
follow = true
# The push agent also checks with the hub this often (seconds); while the hub is
# unreachable it retries with exponential back-off up to max_backoff_seconds.
push_interval_seconds = 60.0
max_backoff_seconds = 300.0
# The member directory is fetched from the hub this often (seconds); member calls
# to this node are refused once the hub has not confirmed it for max_age (0: never).
directory_refresh_seconds = 60.0
directory_max_age_seconds = 900.0
"""


def render_config(kommun: str, *, listen: str = DEFAULT_LISTEN, metrics_listen: str = "") -> str:
    """The commented samverka.toml written by ``samverka node init``.

    ``metrics_listen`` turns the /metrics endpoint on (the hub's init does); without
    it the ``[metrics]`` section shows the address commented out.
    """
    metrics_line = (
        f'listen = "{metrics_listen}"'
        if metrics_listen
        else f'# listen = "{DEFAULT_METRICS_LISTEN}"'
    )
    return f'''# Samverka node configuration for {kommun_name(kommun)} ({kommun}).
# Every key can be overridden from the environment as SAMVERKA_<SECTION>_<KEY>,
# e.g. SAMVERKA_SERVER_LISTEN=0.0.0.0:7443. Paths are relative to this folder.

[node]
# The SCB kommunkod this node publishes as. Changing it invalidates every signature.
kommun = "{kommun}"
name = "{kommun_name(kommun)}"

[server]
# Address `samverka node serve` listens on (host:port; [::1]:7443 for IPv6).
listen = "{listen}"
# Largest gRPC message accepted or sent, in bytes.
max_message_bytes = 4194304
# Entries per streamed message (the server never sends more).
batch_size = 500
# Seconds SIGTERM waits for open streams to finish before closing them.
grace_seconds = 5.0
# Concurrent streams allowed on one connection.
max_concurrent_streams = 100

[tls]
# Mutual TLS: the CA that signs every participant's certificate, and ours.
# `node init` writes a local CA for trying things out; enrolling at the hub
# replaces these with the council's CA and a certificate it issued.
ca = "tls/ca.pem"
cert = "tls/node.pem"
key = "tls/node.key"

[store]
# SQLAlchemy URL. sqlite:///samverka.db is a file in this folder;
# postgresql+psycopg://user@host/db runs the same store on PostgreSQL.
url = "sqlite:///samverka.db"
# The database password, never in the URL: a file (mode 0600) holding it. Empty: the
# systemd credential store-password ($CREDENTIALS_DIRECTORY) when there is one.
password_file = ""

[hub]
# host:port of the council's hub; empty until the node is enrolled.
address = ""
{NODE_HUB_AGENTS}
[limits]
# Entries dated further ahead of this node's clock than this are refused
# (reason clock_skew) and fetched again later. Keep the node's clock on NTP.
max_clock_skew_seconds = 600.0

[metrics]
# The Prometheus endpoint (http://HOST:PORT/metrics): entries ingested and refused,
# sync lag, live subscribers, RPC latency. Off while listen is empty. Plain HTTP:
# keep it on loopback or a monitoring network.
{metrics_line}

[log]
# format: "json" (one event a line, for journald and log shippers), "console"
# (for people), or "auto" (console on a terminal, JSON otherwise).
# level: debug, info, warning or error. `serve --log-format/--log-level` win.
format = "auto"
level = "info"
'''
