"""``samverka doctor``: check a node or hub folder and say how to fix what is wrong.

Each check returns :class:`Finding` lines (ok, warn or FAIL, a message, and for
anything not ok a hint saying what to do). Checks, in order:

``config``        samverka.toml parses, every key is known, values are valid
``keys``          private keys exist, parse, and no one but the owner can read them
``certificates``  the TLS certificate chains to the CA, names this kommun, matches its
                  key, and is not expired (FAIL) or about to expire (warn, 30 days)
``database``      opens; schema at the newest Alembic revision; SQLite: ``PRAGMA quick_check``
                  and WAL mode; the profile's own database checks (the hub: FAIL on a
                  restored or cloned copy that may not sign until ``samverka hub promote``)
``directory``     (enrolled nodes) the member directory held is valid, lists us, and
                  lists no signing key for us that this folder never held
``hub``           (enrolled nodes) the hub's member port answers a health check over
                  mutual TLS with this node's certificate, and holds our own feed as
                  we do: not more of it, not another entry at a sequence we hold
                  (the comparison ``samverka crosscheck`` makes for every feed)
``witness``       (enrolled nodes) FAIL after a split view of the hub's transparency log
                  (``tlog/halted``: evidence kept, cosigning stopped); the checkpoint
                  accepted last, warn when its newest cosignature is past ``[witness]
                  max_age_seconds``
``clock``         (enrolled nodes) our clock against the hub's (``server_time_ms``):
                  warn beyond :data:`WARN_SKEW_MS`, FAIL beyond ``[limits]
                  max_clock_skew_seconds`` (entries would be refused)
``server``        (only on request: a container health probe) this folder's own
                  server answers a health check on its listen address

Nothing here changes the folder. The hub's extra sections, tracks and keys come in
through a :class:`Profile` (the node package does not import the hub's).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import stat
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samverka.config import CONFIG_FILE, NodeConfig, load_config
from samverka.errors import SamverkaError
from samverka.i18n import N_, Text, in_language

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from samverka.protocol.verify import FeedHead
    from samverka.v1 import directory_pb2

#: Checks run unless ``only`` names others; ``server`` is asked for explicitly.
DEFAULT_CHECKS = (
    "config",
    "keys",
    "certificates",
    "database",
    "directory",
    "witness",
    "hub",
    "clock",
)
ALL_CHECKS = (*DEFAULT_CHECKS, "server")
#: Checks that need the network (skipped with ``offline``).
NETWORK_CHECKS = frozenset({"hub", "clock", "server"})
#: A certificate expiring within this many days is a warning.
EXPIRY_WARN_DAYS = 30
#: Clock skew against the hub beyond this is a warning (the refusal limit is far higher,
#: but a clock this far off is already drifting: NTP is not working).
WARN_SKEW_MS = 5_000
#: How long a network check waits for an answer.
NETWORK_TIMEOUT_S = 5.0


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report. ``message`` and ``hint`` are a :class:`Text` (a Swedish
    msgid and its values: the human report is in the reader's language, ``--json`` in
    English as it always was) or, for an error's own words, a plain string."""

    check: str
    status: Status
    message: str | Text
    hint: str | Text = ""

    @property
    def text(self) -> str:
        """The message in the reader's language."""
        return in_language(self.message)

    def as_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "status": self.status.value.lower(),
            "message": in_language(self.message, "en"),
            "hint": in_language(self.hint, "en"),
        }


@dataclass(frozen=True)
class Profile:
    """What kind of folder is checked. The default is a node; the hub's CLI passes its own."""

    kind: str = "node"
    #: Config sections besides the node's (so an unknown section can be told apart).
    extra_sections: Mapping[str, type[Any]] = field(default_factory=dict)
    #: Migration tracks the database should hold.
    tracks: tuple[str, ...] = ("store",)
    #: Loads the whole configuration (raising ConfigError) and returns further private
    #: key files to check (the hub's CA key).
    load_extra: Callable[[Path], Sequence[Path]] | None = None
    #: Further findings of the ``database`` check, given the database (opened without
    #: migrating) once its schema is at the newest revision: the hub's signing seat.
    database_checks: Sequence[Callable[[Engine], Iterable[Finding]]] = ()


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(f.status is Status.FAIL for f in self.findings)

    @property
    def warned(self) -> bool:
        return any(f.status is Status.WARN for f in self.findings)

    def add(self, check: str, status: Status, message: str | Text, hint: str | Text = "") -> None:
        self.findings.append(Finding(check, status, message, hint))


def run_doctor(
    folder: Path,
    *,
    profile: Profile | None = None,
    only: Iterable[str] = (),
    offline: bool = False,
    now: dt.datetime | None = None,
) -> Report:
    """Run the checks on ``folder``; see the module docstring. Never raises for a finding."""
    profile = profile or Profile()
    wanted = list(only) or list(DEFAULT_CHECKS)
    unknown = [c for c in wanted if c not in ALL_CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r}: choose from {', '.join(ALL_CHECKS)}")
    if offline:
        wanted = [c for c in wanted if c not in NETWORK_CHECKS]
    report = Report()
    config, extra_keys = _check_config(folder, profile, report, record="config" in wanted)
    if config is None:
        return report  # nothing else can be checked without a configuration
    at = now or dt.datetime.now(dt.UTC)
    if "keys" in wanted:
        _check_keys(config, extra_keys, report)
        _check_secrets(config, report)
    if "certificates" in wanted:
        _check_certificates(config, profile, report, at)
    if "database" in wanted:
        _check_database(config, profile, report)
    if "directory" in wanted and profile.kind == "node":
        _check_directory(config, report, at)
    if "witness" in wanted and profile.kind == "node":
        _check_witness(config, report, at)
    network: list[str] = [c for c in ("hub", "clock", "server") if c in wanted]
    if network:
        _run(_network_checks(config, profile, network, report))
    return report


# -- config ---------------------------------------------------------------------------


def _check_config(
    folder: Path, profile: Profile, report: Report, *, record: bool
) -> tuple[NodeConfig | None, list[Path]]:
    path = folder / CONFIG_FILE
    try:
        config = load_config(folder)
        extra = list(profile.load_extra(folder)) if profile.load_extra else []
    except SamverkaError as exc:
        report.add("config", Status.FAIL, str(exc), exc.hint or Text(N_("rätta {path}"), path=path))
        return None, []
    if not record:
        return config, extra
    from samverka.config import _SECTIONS

    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    known = {*_SECTIONS, *profile.extra_sections}
    strays = sorted(set(raw) - known)
    if strays:
        report.add(
            "config",
            Status.WARN,
            Text(
                N_("{path}: okända avsnitt {sections} bortses från"),
                path=path,
                sections=", ".join(f"[{s}]" for s in strays),
            ),
            Text(
                N_("kända avsnitt: {known}; rätta stavningen eller ta bort dem"),
                known=", ".join(sorted(known)),
            ),
        )
    else:
        report.add(
            "config",
            Status.OK,
            Text(N_("{file} går att läsa; varje nyckel är känd"), file=CONFIG_FILE),
        )
    return config, extra


# -- keys -----------------------------------------------------------------------------


def private_key_files(config: NodeConfig) -> list[Path]:
    """Every private key a node folder may hold (those that exist are checked)."""
    d = config.dir
    files = [config.signing_key_path, config.path(config.tls.key), d / "tls" / "local-ca.key"]
    files += [d / "enrollment" / "tls.key", d / "rotation" / "next.key"]
    retired = d / "keys" / "retired"
    if retired.is_dir():
        files += sorted(retired.glob("*.key"))
    return files


def _check_keys(config: NodeConfig, extra: list[Path], report: Report) -> None:
    from samverka.node import load_signing_key

    required = {config.signing_key_path, config.path(config.tls.key), *extra}
    bad = False
    for path in dict.fromkeys([*private_key_files(config), *extra]):
        if not path.exists():
            if path in required:
                report.add(
                    "keys", Status.FAIL, Text(N_("{path} saknas"), path=path), _restore_hint(config)
                )
                bad = True
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            report.add(
                "keys",
                Status.FAIL,
                Text(
                    N_("{path} kan läsas av andra (läge {mode:04o}); det är en privat nyckel"),
                    path=path,
                    mode=mode,
                ),
                f"chmod 600 {path}",
            )
            bad = True
        owner = path.stat().st_uid
        if owner != os.geteuid():
            report.add(
                "keys",
                Status.WARN,
                Text(
                    N_("{path} tillhör uid {owner}, inte användaren som kör detta ({uid})"),
                    path=path,
                    owner=owner,
                    uid=os.geteuid(),
                ),
                Text(
                    N_(
                        "kör som tjänstens användare, eller ge den till den användaren: "
                        "chown samverka {path}"
                    ),
                    path=path,
                ),
            )
    try:
        key = load_signing_key(config.signing_key_path)
    except SamverkaError as exc:
        if config.signing_key_path.exists():
            report.add("keys", Status.FAIL, str(exc), _restore_hint(config))
        return
    public = config.public_key_path
    if public.exists() and public.read_bytes() != key.public.to_pem():
        report.add(
            "keys",
            Status.WARN,
            Text(N_("{public} är inte den publika halvan av keys/signing.key"), public=public),
            Text(N_("skriv om den: lämna ut nyckeln med id {key_id}"), key_id=key.key_id),
        )
    elif not bad:
        report.add(
            "keys",
            Status.OK,
            Text(
                N_("privata nycklar har läge 0600; signeringsnyckelns id {key_id}"),
                key_id=key.key_id,
            ),
        )


#: Where a container runtime or systemd puts secrets: managed by them, not by the folder's
#: owner, so their modes are not ours to judge (systemd's credentials are 0400 anyway).
MANAGED_SECRET_DIRS = ("/run/secrets/",)


def _check_secrets(config: NodeConfig, report: Report) -> None:
    """The database password: never in a samverka.toml others can read; a password file
    readable by its owner only (the runtime's /run/secrets and $CREDENTIALS_DIRECTORY
    excepted). Reported under "keys", with the other private files."""
    from samverka.config import split_password

    path = config.dir / CONFIG_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8")).get("store", {})
    except (OSError, tomllib.TOMLDecodeError):
        return  # the config check reports it
    url = raw.get("url", "") if isinstance(raw, dict) else ""
    if isinstance(url, str) and split_password(url)[1]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            report.add(
                "keys",
                Status.FAIL,
                Text(
                    N_(
                        "{path} har databasens lösenord ([store] url) och andra kan läsa det "
                        "(läge {mode:04o})"
                    ),
                    path=path,
                    mode=mode,
                ),
                Text(
                    N_(
                        "flytta lösenordet ur URL:en till en fil som bara tjänsten läser: "
                        '[store] password_file = "store-password" (chmod 600), eller en '
                        "systemd-credential store-password (docs/OPERATIONS.md)"
                    )
                ),
            )
        else:
            report.add(
                "keys",
                Status.WARN,
                Text(N_("{path} har databasens lösenord ([store] url)"), path=path),
                Text(
                    N_(
                        '[store] password_file = "store-password" (chmod 600) håller det utanför '
                        "konfigurationen, som kopieras och visas oftare än en nyckel"
                    )
                ),
            )
    secret = config.store_password_path
    if secret is None:
        return
    if not secret.exists():
        report.add(
            "keys",
            Status.FAIL,
            Text(
                N_("databasens lösenordsfil {secret} ([store] password_file) saknas"), secret=secret
            ),
            Text(
                N_("skapa den (en rad, chmod 600) eller låt [store] password_file peka på en annan")
            ),
        )
        return
    managed = [*MANAGED_SECRET_DIRS, os.environ.get("CREDENTIALS_DIRECTORY", "") or "\0"]
    if any(str(secret).startswith(d.rstrip("/") + "/") for d in managed):
        return
    mode = stat.S_IMODE(secret.stat().st_mode)
    if mode & 0o077:
        report.add(
            "keys",
            Status.FAIL,
            Text(
                N_("databasens lösenordsfil {secret} kan läsas av andra (läge {mode:04o})"),
                secret=secret,
                mode=mode,
            ),
            f"chmod 600 {secret}",
        )


def _restore_hint(config: NodeConfig) -> Text:
    return Text(
        N_(
            "återställ mappen från en säkerhetskopia (samverka node restore); en förlorad "
            "signeringsnyckel kräver en ny anslutning, se docs/OPERATIONS.md"
        )
    )


# -- certificates ---------------------------------------------------------------------


def _check_certificates(
    config: NodeConfig, profile: Profile, report: Report, at: dt.datetime
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from samverka.transport.pki import verify_certificate

    ca_path, cert_path = config.path(config.tls.ca), config.path(config.tls.cert)
    key_path = config.path(config.tls.key)
    try:
        ca_pem, cert_pem = ca_path.read_bytes(), cert_path.read_bytes()
        ca = x509.load_pem_x509_certificate(ca_pem)
        cert = x509.load_pem_x509_certificate(cert_pem)
    except (OSError, ValueError) as exc:
        report.add(
            "certificates",
            Status.FAIL,
            Text(N_("kan inte läsa CA:t eller certifikatet ([tls] ca/cert): {error}"), error=exc),
            _renew_hint(config, profile),
        )
        return
    problems = 0
    for label, path, c in (
        (N_("CA-certifikatet"), ca_path, ca),
        (N_("certifikatet"), cert_path, cert),
    ):
        problems += _expiry(report, label, path, c, at, _renew_hint(config, profile, ca=c is ca))
    # Chain and names, judged inside the validity window (expiry was reported above).
    inside = max(cert.not_valid_before_utc, ca.not_valid_before_utc) + dt.timedelta(seconds=1)
    try:
        verify_certificate(cert_pem, ca_pem, kommunkod=config.node.kommun, now=inside)
    except SamverkaError as exc:
        report.add(
            "certificates",
            Status.FAIL,
            f"{cert_path}: {exc}",
            exc.hint or _renew_hint(config, profile),
        )
        problems += 1
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        same = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (OSError, ValueError, TypeError) as exc:
        report.add(
            "certificates",
            Status.FAIL,
            Text(N_("kan inte läsa TLS-nyckeln {path}: {error}"), path=key_path, error=exc),
        )
        return
    if not same:
        report.add(
            "certificates",
            Status.FAIL,
            Text(N_("{cert} hör inte till nyckeln {key}"), cert=cert_path, key=key_path),
            Text(
                N_(
                    "en förnyelse som stannade halvvägs? lägg tillbaka paret som hör ihop "
                    "(.old-filerna) eller förnya"
                )
            ),
        )
        problems += 1
    if not problems:
        days = (cert.not_valid_after_utc - at).days
        report.add(
            "certificates",
            Status.OK,
            Text(
                N_(
                    "certifikatet för {kommun} kedjar till CA:t, hör till sin nyckel, "
                    "giltigt {days} dagar till"
                ),
                kommun=config.node.kommun,
                days=days,
            ),
        )


def _expiry(report: Report, label: str, path: Path, cert: Any, at: dt.datetime, hint: Text) -> int:
    """``label`` a msgid (the certificate), shown in the reader's language."""
    after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
    what = {"label": Text(label), "path": path}
    if at > after:
        report.add(
            "certificates",
            Status.FAIL,
            Text(N_("{label} {path} gick ut {after:%Y-%m-%d}"), after=after, **what),
            hint,
        )
        return 1
    if at < before:
        report.add(
            "certificates",
            Status.FAIL,
            Text(
                N_("{label} {path} gäller inte före {before:%Y-%m-%d %H:%M} UTC"),
                before=before,
                **what,
            ),
            Text(N_("kontrollera maskinens klocka (NTP)")),
        )
        return 1
    left = after - at
    if left < dt.timedelta(days=EXPIRY_WARN_DAYS):
        report.add(
            "certificates",
            Status.WARN,
            Text(
                N_("{label} {path} går ut om {days} dagar ({after:%Y-%m-%d})"),
                days=left.days,
                after=after,
                **what,
            ),
            hint,
        )
        return 1
    return 0


def _renew_hint(config: NodeConfig, profile: Profile, *, ca: bool = False) -> Text:
    if profile.kind == "hub":
        return Text(
            N_(
                "hubbens CA eller certifikat: se docs/OPERATIONS.md, PKI, 'Certificate "
                "renewal' (hubbens eget certifikat) och 'The CA'"
            )
        )
    if ca:
        return Text(N_("CA:t är rådets: hämta det nya CA-certifikatet från hubbens driftansvariga"))
    if config.hub.address:
        return Text(
            N_("förnya det: samverka node renew-cert (hubben utfärdar ett nytt certifikat)")
        )
    return Text(
        N_("noden är inte ansluten: anslut (samverka node enroll) för ett certifikat från rådet")
    )


# -- database -------------------------------------------------------------------------


def _check_database(config: NodeConfig, profile: Profile, report: Report) -> None:
    from samverka.store.db import sqlite_path

    url = config.store_url
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            report.add(
                "database",
                Status.FAIL,
                Text(N_("ingen databas på {path}"), path=path),
                Text(
                    N_(
                        "återställ den från en säkerhetskopia (samverka node restore), eller "
                        "kontrollera [store] url"
                    )
                ),
            )
            return
        if not _sqlite_healthy(path, report):
            return
    _check_schema(url, profile, report, sqlite=path is not None)


def _sqlite_healthy(path: Path, report: Report) -> bool:
    hint = Text(
        N_(
            "stoppa servern och återställ den senaste säkerhetskopian: "
            "samverka node restore FILE --dir NEW"
        )
    )
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=10)
    except sqlite3.Error as exc:
        report.add(
            "database",
            Status.FAIL,
            Text(N_("kan inte öppna {path}: {error}"), path=path, error=exc),
            hint,
        )
        return False
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    except sqlite3.Error as exc:
        report.add(
            "database",
            Status.FAIL,
            Text(N_("{path} är skadad: {error}"), path=path, error=exc),
            hint,
        )
        return False
    finally:
        conn.close()
    if rows != ["ok"]:
        report.add(
            "database",
            Status.FAIL,
            Text(N_("{path} klarar inte quick_check: {rows}"), path=path, rows="; ".join(rows[:3])),
            hint,
        )
        return False
    if mode.lower() != "wal":
        report.add(
            "database",
            Status.WARN,
            Text(
                N_("{path} har journalläget {mode}, inte WAL (läsare skulle blockera skrivaren)"),
                path=path,
                mode=mode,
            ),
            Text(N_("den går över till WAL nästa gång samverka öppnar den")),
        )
    return True


def _check_schema(url: str, profile: Profile, report: Report, *, sqlite: bool) -> None:
    from samverka.store import migrations
    from samverka.store.store import Store

    try:
        store = Store(url, tracks=profile.tracks)
    except SamverkaError as exc:
        report.add("database", Status.FAIL, str(exc), exc.hint)
        return
    try:
        applied = migrations.applied_versions(store.engine, profile.tracks)
        takeover = migrations.awaiting_takeover(store.engine, profile.tracks)
    except Exception as exc:  # a database that cannot be reached or read
        report.add(
            "database",
            Status.FAIL,
            _unreadable(url, exc),
            _DB_HINT,
        )
        return
    finally:
        store.close()
    behind: list[str] = []
    ahead: list[Text] = []
    for track in profile.tracks:
        have, newest = applied.get(track, 0), migrations.latest_version(track)
        if have < 0 or have > newest:
            ahead.append(
                Text(
                    N_(
                        "{track} på en revision som den här programvaran inte känner "
                        "(nyaste {newest})"
                    ),
                    track=track,
                    newest=newest,
                )
            )
        elif have < newest:
            behind.append(f"{track} {have}→{newest}")
    if ahead:
        report.add(
            "database",
            Status.FAIL,
            Text(
                N_("schemat är nyare än den här programvaran: {tracks}"),
                tracks=_Joined(tuple(ahead)),
            ),
            Text(
                N_(
                    "kör den Samverka-version som skrev det (eller nyare); nedgradera aldrig en "
                    "databas"
                )
            ),
        )
    elif behind or takeover:
        moved = [f"{t} (schema_migrations → Alembic)" for t in takeover]
        report.add(
            "database",
            Status.WARN,
            Text(N_("migreringar väntar: {tracks}"), tracks=", ".join(behind + moved)),
            Text(
                N_(
                    "de körs framåt nästa gång samverka öppnar databasen; ta en säkerhetskopia "
                    "först (samverka node backup, eller pg_dump för PostgreSQL)"
                )
            ),
        )
    else:
        versions = ", ".join(f"{t} {applied.get(t, 0)}" for t in profile.tracks)
        kind = "SQLite quick_check ok, WAL" if sqlite else "PostgreSQL"
        report.add(
            "database",
            Status.OK,
            Text(
                N_("{kind}; schemat på nyaste Alembic-revisionen ({versions})"),
                kind=kind,
                versions=versions,
            ),
        )
        if profile.database_checks:
            _run_database_checks(url, profile, report)


class _Joined(Text):
    """Texts joined (with ", "), each in the language shown."""

    __slots__ = ("items", "separator")

    def __init__(self, items: tuple[Text, ...], separator: str = ", ") -> None:
        super().__init__("")
        self.items = items
        self.separator = separator

    def in_language(self, lang: str | None = None) -> str:
        return self.separator.join(i.in_language(lang) for i in self.items)


_DB_HINT = Text(
    N_("kontrollera [store] url, att databasservern är igång och godtar den här användaren")
)


def _unreadable(url: str, exc: Exception) -> Text:
    return Text(
        N_("kan inte läsa databasen {url}: {error}"), url=_safe_url(url), error=_first_line(exc)
    )


def _run_database_checks(url: str, profile: Profile, report: Report) -> None:
    from samverka.store.store import Store

    store = Store(url, tracks=profile.tracks)
    try:
        for check in profile.database_checks:
            report.findings.extend(check(store.engine))
    except Exception as exc:  # a database that went away between the checks
        report.add(
            "database",
            Status.FAIL,
            _unreadable(url, exc),
            _DB_HINT,
        )
    finally:
        store.close()


def _safe_url(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparsable URL)"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# -- the member directory -----------------------------------------------------------------


def _check_directory(config: NodeConfig, report: Report, at: dt.datetime) -> None:
    from samverka.node import load_directory, pinned_hub_key

    if pinned_hub_key(config) is None:
        report.add(
            "directory", Status.OK, Text(N_("inte ansluten (ingen medlemskatalog att kontrollera)"))
        )
        return
    try:
        directory = load_directory(config)
    except SamverkaError as exc:
        report.add("directory", Status.FAIL, str(exc), exc.hint)
        return
    if directory is None:
        report.add(
            "directory",
            Status.WARN,
            Text(N_("ansluten, men ingen medlemskatalog finns här")),
            Text(N_("hämta den: samverka node directory --refresh")),
        )
        return
    now_ms = int(at.timestamp() * 1000)
    member = directory.member(config.node.kommun)
    if member is None or directory.is_revoked(config.node.kommun):
        report.add(
            "directory",
            Status.FAIL,
            Text(
                N_("katalogens version {version} listar inte {kommun} som aktiv medlem"),
                version=directory.version,
                kommun=config.node.kommun,
            ),
            Text(N_("fråga rådet (AI-rådet) om medlemskapet; återkallade medlemmar nekas")),
        )
    elif alarms := _open_alarms(config):
        # The monitor found this kommun's name misused in the hub's log (a key bound to
        # it, or an entry of its feed, it never held or signed): FAIL until handled.
        report.add(
            "directory",
            Status.FAIL,
            Text(
                N_("larm från övervakningen: {alarms}"),
                alarms=_Joined(
                    tuple(
                        Text(
                            N_("{detail} (bevis: {evidence})"), detail=a.detail, evidence=a.evidence
                        )
                        for a in alarms
                    ),
                    "; ",
                ),
            ),
            # samverka.membership.monitor.WHAT_TO_DO in the reader's language.
            Text(
                N_(
                    "hubben band en nyckel till den här kommunen som noden aldrig haft: säg "
                    "genast till AI-rådet och de andra kommunerna och lämna dem bevismappen; "
                    "noden har invänt (varje medlem vägrar nyckeln när invändningen når den). "
                    "När det är hanterat, flytta larmfilen till tlog/alarms/handled/"
                )
            ),
        )
    elif foreign := _keys_not_held(config, member, objected=False):
        # Whoever holds such a key could publish in this kommun's name: other nodes take it
        # once it has stood its challenge period unobjected (samverka.protocol.keybinding).
        report.add(
            "directory",
            Status.FAIL,
            Text(
                N_(
                    "katalogens version {version} listar signeringsnyckel/-nycklar {keys} för "
                    "{kommun} som den här noden aldrig haft"
                ),
                version=directory.version,
                keys=", ".join(foreign),
                kommun=config.node.kommun,
            ),
            Text(
                N_(
                    "säg till rådet (AI-rådet) genast: har det inte godkänt någon sådan nyckel "
                    "band hubben den på egen hand; `samverka node directory --refresh` (eller "
                    "node serve) larmar, sparar bevisen och invänder, så att varje medlem "
                    "vägrar den"
                )
            ),
        )
    elif objected := _keys_not_held(config, member, objected=True):
        report.add(
            "directory",
            Status.WARN,
            Text(
                N_(
                    "katalogens version {version} listar nyckel/nycklar {keys} för {kommun} som "
                    "den här noden aldrig haft; den har invänt (larmet hanterat): varje medlem "
                    "vägrar dem"
                ),
                version=directory.version,
                keys=", ".join(objected),
                kommun=config.node.kommun,
            ),
            Text(N_("be AI-rådet ta bort nyckeln/nycklarna ur katalogen")),
        )
    elif directory.expired(now_ms):
        report.add(
            "directory",
            Status.WARN,
            Text(N_("katalogens version {version} har gått ut"), version=directory.version),
            Text(N_("hämta den gällande: samverka node directory --refresh")),
        )
    else:
        report.add(
            "directory",
            Status.OK,
            Text(N_("medlemskatalogens version {version}"), version=directory.version),
        )
    # The hub's own key rotations this node followed, and a certificate from a CA the hub
    # rotated away from (samverka.membership.hubtrust).
    from samverka.membership.hubtrust import doctor_findings

    for status, message, hint in doctor_findings(config, directory):
        report.add("directory", Status.WARN if status == "warn" else Status.OK, message, hint)


def _check_witness(config: NodeConfig, report: Report, at: dt.datetime) -> None:
    """The node as witness of the hub's log: halted after a split view (FAIL), or the
    checkpoint it accepted last (docs/OPERATIONS.md "The node as witness")."""
    from samverka.protocol.note import parse_note
    from samverka.protocol.witness import witness_kommun
    from samverka.replication.logstate import LogState

    state = LogState(config.dir)
    try:
        halt = state.halt()
        accepted = state.accepted()
    except SamverkaError as exc:
        report.add("witness", Status.FAIL, str(exc), exc.hint)
        return
    if halt is not None:
        where = Text(N_("; bevis i {path}"), path=halt.evidence) if halt.evidence else ""
        report.add(
            "witness",
            Status.FAIL,
            Text(
                N_(
                    "hubbens logg visade två kontrollpunkter som inte båda kan vara sanna "
                    "({why}){where}; den här noden kontrasignerar inget sedan {since}"
                ),
                why=halt.why,
                where=where,
                since=halt.at or Text(N_("dess")),
            ),
            Text(
                N_(
                    "skicka bevismappen till rådet (dess README.txt säger hur vem som helst kan "
                    "kontrollera den); ta bort tlog/halted för att kontrasignera igen när hubben "
                    "är utredd"
                )
            ),
        )
        return
    if accepted is None:
        enrolled = bool(config.hub.address)
        report.add(
            "witness",
            Status.OK,
            Text(N_("ingen kontrollpunkt av hubbens logg godtagen än"))
            if enrolled
            else Text(N_("inte ansluten (ingen hubblogg att bevittna)")),
        )
        return
    stamps = [
        s.cosignature_timestamp()
        for s in parse_note(accepted.note).unverified
        if witness_kommun(s.name) not in (None, config.node.kommun) and len(s.signature) == 72
    ]
    newest = max(stamps, default=0)
    age = at.timestamp() - newest
    cosign = (
        Text(N_("kontrasignerar"))
        if config.witness.cosign
        else Text(N_("kontrasignerar inte ([witness] cosign = false)"))
    )
    if stamps and age > config.witness.max_age_seconds:
        report.add(
            "witness",
            Status.WARN,
            Text(
                N_(
                    "kontrollpunkten som godtogs senast ({size} löv) kontrasignerades för "
                    "{hours:.1f} h sedan"
                ),
                size=accepted.size,
                hours=age / 3600,
            ),
            Text(
                N_(
                    "kör node serve (den bevittnar och godtar nya kontrollpunkter)? samlar "
                    "hubbens logg fortfarande kontrasignaturer (doctor hos de andra medlemmarna)?"
                )
            ),
        )
        return
    report.add(
        "witness",
        Status.OK,
        Text(
            N_("godtagen kontrollpunkt med {size} löv; {cosign}"), size=accepted.size, cosign=cosign
        ),
    )


def _keys_not_held(
    config: NodeConfig, member: directory_pb2.Member, *, objected: bool | None = None
) -> list[str]:
    """Key ids the directory lists for this kommun that this folder never held: not its
    signing key, not a pending rotation's new key, not a retired key. ``objected``:
    only those this node objected to (True) or not (False); None: all."""
    from samverka.node import held_key_ids, load_key_state

    held = held_key_ids(config)
    foreign = [key.key_id for key in member.keys if key.key_id not in held]
    if objected is None:
        return foreign
    state = load_key_state(config)
    mine = {b.key_id for b in state.refused() if b.kommunkod == config.node.kommun and b.objection}
    return [k for k in foreign if (k in mine) is objected]


def _open_alarms(config: NodeConfig) -> list[Any]:
    from samverka.membership.monitor import open_alarms

    return open_alarms(config)


# -- network ------------------------------------------------------------------------------


def _run(coro: Any) -> Any:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def _network_checks(
    config: NodeConfig, profile: Profile, checks: list[str], report: Report
) -> None:
    if "server" in checks:
        await _check_own_server(config, report)
    wants_hub = [c for c in checks if c in ("hub", "clock")]
    if not wants_hub:
        return
    if profile.kind == "hub":
        for check in wants_hub:
            report.add(check, Status.OK, Text(N_("det här är hubben (inget längre bort att nå)")))
        return
    if not config.hub.address:
        for check in wants_hub:
            report.add(check, Status.OK, Text(N_("inte ansluten: ingen hubbadress att nå")))
        return
    await _check_hub(config, wants_hub, report)


async def health_probe(address: str, config: NodeConfig) -> str:
    """The grpc.health.v1 status of ``address`` (overall), over mutual TLS as this folder."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from samverka.transport.client import ClientTls, open_channel

    channel = open_channel(address, ClientTls.from_config(config))
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=NETWORK_TIMEOUT_S)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    except grpc.RpcError as err:
        raise _transport(err, address) from err
    finally:
        await channel.close()


def _transport(err: Any, address: str) -> SamverkaError:
    from samverka.errors import TransportError

    code = err.code().name if hasattr(err, "code") else "UNKNOWN"
    details = err.details() if hasattr(err, "details") else str(err)
    return TransportError(f"{address}: {code}: {details}")


async def _check_hub(config: NodeConfig, checks: list[str], report: Report) -> None:
    from samverka.transport.client import ClientTls, FeedClient

    address = config.hub.address
    try:
        status = await health_probe(address, config)
    except SamverkaError as exc:
        for check in checks:
            report.add(
                check,
                Status.FAIL,
                Text(N_("kan inte nå hubben på {address}: {error}"), address=address, error=exc),
                Text(
                    N_(
                        "kontrollera nätet och brandväggen mot hubben, att [hub] address är rätt "
                        "och att nodens certifikat gäller (samverka doctor --only certificates)"
                    )
                ),
            )
        return
    if "hub" in checks:
        if status == "SERVING":
            report.add(
                "hub",
                Status.OK,
                Text(N_("hubben på {address} svarar SERVING över ömsesidig TLS"), address=address),
            )
        else:
            report.add(
                "hub",
                Status.WARN,
                Text(N_("hubben på {address} svarar {status}"), address=address, status=status),
                Text(N_("hubben startar eller stannar; försök igen om en minut")),
            )
    if await _refused_membership(config, checks, report):
        return
    try:
        async with FeedClient.connect(address, ClientTls.from_config(config)) as client:
            before = time.time_ns() // 1_000_000
            info = await client.get_node_info()
            after = time.time_ns() // 1_000_000
            heads = await client.get_heads([config.node.kommun])
    except SamverkaError as exc:
        report.add(
            "hub",
            Status.FAIL,
            Text(
                N_("hubben på {address} vägrade FeedService-anrop: {error}"),
                address=address,
                error=exc,
            ),
            exc.hint
            or Text(N_("är noden fortfarande medlem? (samverka node directory --refresh)")),
        )
        if "clock" in checks:
            report.add("clock", Status.WARN, Text(N_("inte jämförd: hubben vägrade anropet")))
        return
    if "hub" in checks:
        _check_own_feed_at_hub(config, heads.heads, report)
    if "clock" in checks:
        report.findings.append(clock_finding(info.server_time_ms, before, after, config))


async def _refused_membership(config: NodeConfig, checks: list[str], report: Report) -> bool:
    """Ask the hub's member port what only members may ask (the directory): a revoked
    node is refused there. True (and a FAIL under "hub") when it is."""
    from samverka.transport.hubclient import HubClient

    try:
        async with HubClient.member(config) as client:
            await client.get_directory(0)
    except SamverkaError as exc:
        code = getattr(getattr(exc, "code", None), "name", "")
        if code not in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            return False  # the FeedService calls after this report it
        reason = getattr(exc, "reason", "")
        revoked = reason == "member_revoked"
        report.add(
            "hub",
            Status.FAIL,
            f"the hub at {config.hub.address} refuses this node ({code}"
            + (f", {reason}" if reason else "")
            + ")"
            + (": the council revoked this kommun's membership" if revoked else ""),
            "a revoked kommun cannot enroll again: talk to the council (AI-rådet); "
            "if it was not revoked, check the certificate (samverka doctor --only certificates)",
        )
        if "clock" in checks:
            report.add("clock", Status.WARN, Text(N_("inte jämförd: hubben vägrar den här noden")))
        return True
    return False


def _check_own_feed_at_hub(
    config: NodeConfig, hub_heads: Sequence[FeedHead], report: Report
) -> None:
    """Our own feed as the hub holds it, compared as ``samverka crosscheck`` compares
    every feed (:func:`samverka.replication.crosscheck.compare_heads`). The hub must not hold more
    of it than we do (a restored old backup: publishing then would reuse sequences
    already signed, a fork every node refuses), nor another entry at a sequence we hold
    (two histories of our feed: a copy of this folder published, or the key is out)."""
    from samverka.replication.crosscheck import MismatchKind, compare_heads
    from samverka.store.store import Store

    own = config.node.kommun
    try:
        store = Store(config.store_url)
        try:
            found = compare_heads(
                store, [h for h in hub_heads if h.origin == own], source="the hub"
            )
        finally:
            store.close()
    except Exception:  # the database check reports an unreadable store
        return
    for mismatch in found:
        if mismatch.kind is MismatchKind.BEHIND:
            report.add(
                "hub",
                Status.FAIL,
                Text(
                    N_(
                        "hubben har kommunens flöde till nummer {theirs}, den här noden bara "
                        "till {ours} (återställd från en äldre säkerhetskopia?)"
                    ),
                    theirs=mismatch.theirs,
                    ours=mismatch.ours,
                ),
                Text(
                    N_(
                        "publicera inget: hämta de saknade posterna först med `samverka sync` "
                        "(en ny post på ett nummer som redan publicerats skulle förgrena flödet)"
                    )
                ),
            )
        else:
            report.add(
                "hub",
                Status.FAIL,
                Text(
                    N_(
                        "hubben har en annan post på nummer {sequence} i kommunens flöde än den "
                        "här noden: flödet har två historier"
                    ),
                    sequence=mismatch.sequence,
                ),
                Text(
                    N_(
                        "publicera inget från den här noden: en annan kopia av mappen (en gammal "
                        "säkerhetskopia, en klon) publicerade, eller signeringsnyckeln är i andra "
                        "händer; säg till rådet (AI-rådet), se docs/OPERATIONS.md, "
                        "'Restoring a node'"
                    )
                ),
            )


def clock_finding(server_ms: int, before_ms: int, after_ms: int, config: NodeConfig) -> Finding:
    """Judge our clock against a server's answer taken between ``before_ms`` and ``after_ms``."""
    if server_ms <= 0:
        return Finding(
            "clock",
            Status.WARN,
            Text(N_("hubben uppger inte sin tid (en äldre Samverka)")),
            Text(N_("jämför klockorna för hand; håll NTP igång")),
        )
    skew = server_ms - (before_ms + after_ms) // 2
    limit = config.max_clock_skew_ms
    text = Text(
        N_("den här klockan går {seconds:.1f} s efter hubbens")
        if skew > 0
        else N_("den här klockan går {seconds:.1f} s före hubbens"),
        seconds=abs(skew) / 1000,
    )
    if abs(skew) > limit:
        return Finding(
            "clock",
            Status.FAIL,
            Text(
                N_(
                    "{skew}: utanför verifieringens tolerans på {limit:g} s, så poster vägras "
                    "som clock_skew"
                ),
                skew=text,
                limit=limit / 1000,
            ),
            Text(N_("ställ klockan: timedatectl set-ntp true (och kontrollera chronyd/timesyncd)")),
        )
    if abs(skew) > WARN_SKEW_MS:
        return Finding(
            "clock",
            Status.WARN,
            text,
            Text(N_("slå på NTP: timedatectl set-ntp true")),
        )
    return Finding(
        "clock",
        Status.OK,
        Text(N_("{skew} (inom {limit:g} s)"), skew=text, limit=WARN_SKEW_MS / 1000),
    )


async def _check_own_server(config: NodeConfig, report: Report) -> None:
    from samverka.transport.server.app import split_address

    host, port = split_address(config.server.listen)
    if port == 0:
        report.add(
            "server",
            Status.FAIL,
            Text(N_("[server] listen har port 0 (väljs när servern startar): inget att pröva")),
            Text(N_("ge servern en fast port: [server] listen eller SAMVERKA_SERVER_LISTEN")),
        )
        return
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        status = await health_probe(address, config)
    except SamverkaError as exc:
        report.add(
            "server",
            Status.FAIL,
            Text(
                N_("mappens server svarar inte på {address}: {error}"), address=address, error=exc
            ),
            Text(N_("är den igång? (systemctl status samverka-node, eller containerns loggar)")),
        )
        return
    if status == "SERVING":
        report.add("server", Status.OK, Text(N_("{address} svarar SERVING"), address=address))
    else:
        report.add(
            "server",
            Status.FAIL,
            Text(N_("{address} svarar {status}"), address=address, status=status),
            Text(N_("den startar eller töms")),
        )


# -- output -------------------------------------------------------------------------------


def format_findings(findings: Iterable[Finding]) -> list[str]:
    """One line per finding (``ok   config  …``), a hint line under anything not ok."""
    lines = []
    for f in findings:
        lines.append(f"{f.status.value:<4}  {f.check:<12}  {in_language(f.message)}")
        if f.hint and f.status is not Status.OK:
            lines.append(f"{'':<4}  {'':<12}  → {in_language(f.hint)}")
    return lines
