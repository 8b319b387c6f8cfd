"""``samverka hub``: create, run and operate the council's hub.

The operator commands (``members``, ``keys``, ``directory``) work on the hub folder
directly (its SQLite file or the PostgreSQL database in ``[store] url``), so they are
safe while ``hub serve`` runs: every decision is one transaction that also publishes
a new directory version, and the running server picks it up within
``[directory] poll_seconds``.

Other hub features add their commands to :data:`hub`'s ``lazy`` table (name →
``"module:attribute"``), like the root command does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from samverka.cli._common import (
    EXIT_CODES_HELP,
    LazyGroup,
    dir_option,
    help_parts,
    json_option,
    print_json,
)
from samverka.cli.membership import directory_json, echo_directory
from samverka.cli.serve import server_options
from samverka.config import CONFIG_FILE
from samverka.i18n import N_, _
from samverka.protocol.kommuner import kommun_name

from samverka_hub.config import DEFAULT_MEMBER_LISTEN, DEFAULT_PUBLIC_LISTEN


@click.group(
    cls=LazyGroup,
    lazy={
        "recommend": ("samverka_hub.cli_council:recommend", N_("Rådets rekommendationer.")),
        "stats": ("samverka_hub.cli_council:stats", N_("Täckning bland alla 290 kommuner.")),
        "search": ("samverka_hub.cli_council:search", N_("Sök i hela federationen.")),
        "harvest": (
            "samverka_hub.cli_aggregation:harvest",
            N_("Hämta från medlemmarnas noder nu."),
        ),
        "erase": (
            "samverka_hub.cli_erase:erase",
            N_("Radera en kommuns post på dess begäran (signerat av hubben)."),
        ),
        "web": ("samverka_hub.web.cli:web", N_("Kör webbkatalogen för sig (bara läsning).")),
        "rotate-keys": (
            "samverka_hub.cli_keys:rotate_keys",
            N_("Byt hubbens egna nycklar (katalog, logg, CA) under den gamla."),
        ),
        "refusals": (
            "samverka_hub.cli_aggregation:refusals",
            N_("Poster som hubben vägrat, per ursprung och skäl."),
        ),
    },
    help=help_parts(
        N_("Kör och sköt rådets hubb (AI-rådet)."),
        "\n\n\b\n",
        N_("Börja med:"),
        "\n  samverka hub init --dir /var/lib/samverka-hub --host hub.samverka.se\n"
        "  samverka hub serve --dir /var/lib/samverka-hub\n"
        "  samverka hub members pending --dir /var/lib/samverka-hub",
    ),
    epilog=EXIT_CODES_HELP,
)
def hub() -> None:
    """Run and operate the council's hub (the help people read is the group's help)."""


@contextmanager
def _open(hub_dir: Path) -> Iterator[Any]:
    from samverka_hub.folder import open_hub

    opened = open_hub(hub_dir)
    try:
        yield opened
    finally:
        opened.close()


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- init and serve --------------------------------------------------------------------


@hub.command(
    help=N_(
        "Skapa en hubb: signeringsnyckel, certifikatutfärdare, TLS-certifikat, "
        "konfiguration, databas.\n\n"
        "Publicerar medlemskatalogens version 1 (bara hubben). Skriver aldrig över en mapp "
        "som finns. Ge kommunerna CA-certifikatet (tls/ca.pem) och den publika adressen, så "
        "att de kan köra `samverka node enroll`."
    )
)
@dir_option
@click.option(
    "--listen",
    default=DEFAULT_MEMBER_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help=N_("Medlemsporten (ömsesidig TLS)."),
)
@click.option(
    "--public-listen",
    default=DEFAULT_PUBLIC_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help=N_("Den publika porten (bara server-TLS: anslutning, katalogen)."),
)
@click.option(
    "--address",
    default="",
    metavar="HOST:PORT",
    help=N_("Medlemsportens adress som anslutna noder ska använda [standard: --listen]."),
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help=N_(
        "Ett DNS-namn eller en adress som hubbens TLS-certifikat gäller för (upprepas); "
        "loopback-namnen är alltid med."
    ),
)
@click.option(
    "--store-url",
    default="",
    metavar="URL",
    help=N_("Databasen, t.ex. postgresql://samverka@db/samverka [standard: SQLite i MAPP]."),
)
@json_option
def init(
    node_dir: Path,
    listen: str,
    public_listen: str,
    address: str,
    hosts: tuple[str, ...],
    store_url: str,
    as_json: bool,
) -> None:
    """Create a hub: signing key, certificate authority, TLS certificate, config, database.

    Publishes member directory version 1 (the hub alone). Never overwrites an
    existing folder. Give kommuner the CA certificate (tls/ca.pem) and the public
    address, so they can run `samverka node enroll`.
    """
    from samverka_hub.folder import init_hub
    from samverka_hub.tlog import LOG_VKEY_FILE

    with init_hub(
        node_dir,
        member_listen=listen,
        public_listen=public_listen,
        member_address=address,
        hosts=hosts,
        store_url=store_url,
    ) as created:
        directory = created.council.current_directory()
        assert directory is not None
        info = {
            "dir": str(created.dir),
            "key_id": created.signing_key.key_id,
            "member_listen": listen,
            "public_listen": public_listen,
            "ca": str(created.config.ca_cert_path),
            "directory_version": directory.version,
            "log_key": (created.dir / LOG_VKEY_FILE).read_text(encoding="ascii").strip(),
        }
        if as_json:
            print_json(info)
            return
        click.echo(_("Skapade hubben i {dir}").format(dir=created.dir))
        click.echo(_("  konfiguration    {path}").format(path=created.dir / CONFIG_FILE))
        click.echo(
            _("  signeringsnyckel keys/signing.key (nyckel-id {key})").format(key=info["key_id"])
        )
        click.echo(
            _("  CA               tls/ca.pem (ge den till kommunerna), nyckel ca/ca.key (0600)")
        )
        click.echo(_("  medlemsport      {listen} (ömsesidig TLS)").format(listen=listen))
        click.echo(
            _("  publik port      {listen} (anslutning, katalog)").format(listen=public_listen)
        )
        click.echo(_("  katalog          version {version}").format(version=directory.version))
        click.echo(_("  loggnyckel       {key} (keys/log.key, 0600)").format(key=info["log_key"]))
        click.echo(_("Nästa steg: samverka hub serve --dir {dir}").format(dir=created.dir))


@hub.command(
    epilog=help_parts(
        N_("Stannar vid SIGTERM eller Ctrl-C: båda portarna töms, sedan avslutas den med 0."),
        "\n\n",
        EXIT_CODES_HELP,
    ),
    help=N_(
        "Lämna ut medlemsporten (FeedService, HubService) och den publika porten.\n\n"
        "Loggar går till stderr (en JSON-händelse per rad, eller text); Prometheus-mått "
        "lämnas ut på [metrics] listen (hub init sätter 127.0.0.1:9465) eller "
        "--metrics-listen."
    ),
)
@dir_option
@click.option(
    "--listen", metavar="HOST:PORT", help=N_("Medlemsporten [standard: [server] listen].")
)
@click.option(
    "--public-listen", metavar="HOST:PORT", help=N_("Publika porten [standard: [public] listen].")
)
@click.option(
    "--address-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=N_(
        'Skriv {"member": HOST:PORT, "public": HOST:PORT, "web": HOST:PORT} hit när den '
        "kör (för skript)."
    ),
)
@click.option(
    "--web-listen",
    metavar="HOST:PORT",
    default=None,
    help=N_('Webbkatalogen (vanlig HTTP; "" för ingen) [standard: [web] listen].'),
)
@server_options
def serve(
    node_dir: Path,
    listen: str | None,
    public_listen: str | None,
    address_file: Path | None,
    web_listen: str | None,
    log_format: str | None,
    log_level: str | None,
    metrics_listen: str | None,
) -> None:
    """Serve the member port (FeedService, HubService) and the public port.

    Logs go to stderr (one JSON event a line, or console text); Prometheus metrics
    are served on [metrics] listen (hub init sets 127.0.0.1:9465) or --metrics-listen.
    """
    import uvloop
    from samverka.cli.serve import configure_logging, echo_metrics
    from samverka.config import load_config
    from samverka.ops.logs import announce
    from samverka.ops.metrics import serve_metrics
    from samverka.protocol.kommuner import HUB_ORIGIN
    from samverka.transport.server import NodeServer

    from samverka_hub.process import build_hub_server

    configure_logging(load_config(node_dir), log_format, log_level)
    with _open(node_dir) as opened:
        server, runtime = build_hub_server(
            opened, member_listen=listen, public_listen=public_listen, web_listen=web_listen
        )
        endpoint = serve_metrics(
            server,
            opened.config.node.metrics.listen if metrics_listen is None else metrics_listen,
            opened.store,
            HUB_ORIGIN,
            runtime.log_watcher,
        )

        def started(server: NodeServer) -> None:
            bound = {lst.name: lst.bound_address for lst in server.listeners}
            for lst in server.listeners:
                kind = "mutual TLS" if lst.tls.mutual else "server TLS"
                announce(
                    f"hub {lst.name} port on {lst.bound_address} ({kind})",
                    event="serving",
                    listener=lst.name,
                    address=lst.bound_address,
                )
            echo_metrics(endpoint)
            if endpoint is not None and endpoint.serving:
                bound["metrics"] = endpoint.bound_address
            if runtime.web is not None and runtime.web.serving:
                announce(
                    f"hub web catalog on {runtime.web.url}", event="web_serving",
                    url=runtime.web.url,
                )  # fmt: skip
                bound["web"] = runtime.web.bound_address
            if address_file is not None:
                tmp = address_file.with_name(address_file.name + ".tmp")
                tmp.write_text(json.dumps(bound) + "\n", encoding="utf-8")
                os.replace(tmp, address_file)

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(server.run_until_signal(on_started=started))
    announce("stopped", event="stopped")


@hub.command(
    "renew-cert",
    help=N_(
        "Utfärda hubbens eget TLS-certifikat på nytt (en ny nyckel, signerad av hubbens CA)."
        "\n\nSkriver tls/node.pem och tls/node.key (det gamla paret sparas som *.old). Varje "
        "replik visar certifikatet den startade med: kopiera båda filerna till varje repliks "
        "mapp (repliker som delar den här mappen har dem redan) och starta om replikerna en "
        "i taget. Medlemmarna behöver inget: de litar på CA:n, som inte ändras."
    ),
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help=N_(
        "Namnge också den här värden (en ny repliks DNS-namn eller adress); upprepas. "
        "Namnen i det nuvarande certifikatet behålls alltid."
    ),
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help=N_("Livslängd [standard: [ca] member_cert_days]."),
)
@dir_option
@json_option
def renew_cert(hosts: tuple[str, ...], days: int | None, node_dir: Path, as_json: bool) -> None:
    """Issue the hub's own TLS certificate anew (a new key, signed by the hub's CA).

    Writes tls/node.pem and tls/node.key (the old pair kept as *.old). Every replica
    serves the certificate it started with: copy both files into each replica's folder
    (replicas sharing this folder have them already) and restart the replicas one by
    one. Members need nothing: they trust the CA, which does not change.
    """
    from samverka_hub.folder import renew_hub_certificate

    with _open(node_dir) as opened:
        renewed = renew_hub_certificate(opened, add_hosts=hosts, days=days or 0)
        tls = opened.config.node.tls
    info = {
        "serial": renewed.serial,
        "not_after_ms": renewed.not_after_ms,
        "hosts": list(renewed.hosts),
        "cert": tls.cert,
        "key": tls.key,
    }
    if as_json:
        print_json(info)
        return
    click.echo(
        _(
            "förnyade hubbens certifikat (serienummer {serial}), giltigt till {until} för {hosts}"
        ).format(
            serial=renewed.serial, until=_when(renewed.not_after_ms), hosts=", ".join(renewed.hosts)
        )
    )
    click.echo(
        _(
            "nästa steg: kopiera {cert} och {key} till varje repliks mapp som inte delar den "
            "här, och starta sedan om replikerna en i taget"
        ).format(cert=tls.cert, key=tls.key)
    )


# -- members ---------------------------------------------------------------------------


@hub.group(help=N_("Rådets beslut om vilka som är medlemmar."))
def members() -> None:
    """The council's decisions on who is a member."""


def _enrollment_json(row: Any) -> dict[str, Any]:
    from samverka.v1 import directory_pb2

    from samverka_hub.members import STATUS_NAMES

    signed = directory_pb2.SignedEnrollmentRequest.FromString(row.signed_request)
    request = directory_pb2.EnrollmentRequest.FromString(signed.request)
    return {
        "kommunkod": row.kommunkod,
        "name": kommun_name(row.kommunkod),
        "key_id": row.key_id,
        "status": STATUS_NAMES.get(row.status, str(row.status)),
        "contact_role": request.contact_role,
        "address": request.address,
        "received_at_ms": row.received_at_ms,
        "message": row.message,
    }


@members.command(
    help=N_(
        "Ansökningar som väntar på beslut.\n\n"
        "Vem som helst kan ansöka i vilken kommuns namn som helst: bekräfta nyckel-id:t med "
        "kommunen (per telefon, till exempel) innan du godkänner."
    )
)
@dir_option
@json_option
def pending(node_dir: Path, as_json: bool) -> None:
    """Enrollment requests waiting for a decision.

    Anyone can ask in any kommun's name: confirm the key id with the kommun (by
    phone, say) before approving.
    """
    with _open(node_dir) as opened:
        rows = [_enrollment_json(r) for r in opened.council.pending()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(_("inga ansökningar väntar"))
        return
    for r in rows:
        click.echo(
            f"{r['kommunkod']}  {r['name']:<16} "
            + _("nyckel {key}  roll {role}  adress {address}  mottagen {when}").format(
                key=r["key_id"],
                role=r["contact_role"] or "-",
                address=r["address"] or "-",
                when=_when(r["received_at_ms"]),
            )
        )
    click.echo(_("godkänn med: samverka hub members approve KOD [--key-id NYCKELID]"))


@members.command(
    help=N_("Ta in KOD: utfärda dess TLS-certifikat och publicera en ny katalogversion.")
)
@click.argument("kommunkod", metavar="KOD")
@click.option("--key-id", default="", help=N_("Vilken ansökan, när en kommun har flera."))
@dir_option
@json_option
def approve(kommunkod: str, key_id: str, node_dir: Path, as_json: bool) -> None:
    """Admit KOD: issue its TLS certificate and publish a new directory version."""
    with _open(node_dir) as opened:
        admission = opened.council.approve(kommunkod.strip(), key_id=key_id.strip())
    info = {
        "kommunkod": admission.enrollment.kommunkod,
        "name": kommun_name(admission.enrollment.kommunkod),
        "key_id": admission.enrollment.key_id,
        "directory_version": admission.directory.version,
    }
    if as_json:
        print_json(info)
        return
    click.echo(
        _("godkände {code} {name} (nyckel {key}); katalogversion {version}").format(
            code=info["kommunkod"],
            name=info["name"],
            key=info["key_id"],
            version=info["directory_version"],
        )
    )
    click.echo(_("noden hämtar sitt certifikat med `samverka node enroll` (kör det igen)"))


@members.command(help=N_("Avslå KOD:s väntande ansökan."))
@click.argument("kommunkod", metavar="KOD")
@click.option("--reason", required=True, help=N_("Berättas för kommunen när dess nod frågar igen."))
@click.option("--key-id", default="", help=N_("Vilken ansökan, när en kommun har flera."))
@dir_option
def reject(kommunkod: str, reason: str, key_id: str, node_dir: Path) -> None:
    """Refuse KOD's pending enrollment request."""
    with _open(node_dir) as opened:
        row = opened.council.reject(kommunkod.strip(), reason=reason, key_id=key_id.strip())
    click.echo(
        _("avslog ansökan från {code} (nyckel {key}): {reason}").format(
            code=row.kommunkod, key=row.key_id, reason=reason
        )
    )


@members.command(
    help=N_(
        "Återkalla KOD från och med nu: dess nycklar upphör, hubben vägrar dess anrop, och "
        "varje nod vägrar dess senare poster vid nästa hämtning av katalogen."
    )
)
@click.argument("kommunkod", metavar="KOD")
@click.option("--reason", default="", help=N_("Sparas i hubbens handlingar."))
@dir_option
@json_option
def revoke(kommunkod: str, reason: str, node_dir: Path, as_json: bool) -> None:
    """Revoke KOD from now: its keys end, the hub refuses its calls, and every node
    refuses its later entries on its next directory fetch."""
    with _open(node_dir) as opened:
        directory = opened.council.revoke(kommunkod.strip(), reason=reason)
    member = directory.member(kommunkod.strip())
    info = {
        "kommunkod": kommunkod.strip(),
        "revoked_at_ms": member.revoked_at_ms if member is not None else 0,
        "directory_version": directory.version,
    }
    if as_json:
        print_json(info)
        return
    click.echo(
        _("återkallade {code} {name} från {when}; katalogversion {version}").format(
            code=info["kommunkod"],
            name=kommun_name(info["kommunkod"]),
            when=_when(info["revoked_at_ms"]),
            version=info["directory_version"],
        )
    )


def _member_json(member: Any) -> dict[str, Any]:
    from samverka_hub.members import MEMBER_STATUS_NAMES

    r = member.row
    return {
        "kommunkod": r.kommunkod,
        "name": r.name,
        "status": MEMBER_STATUS_NAMES.get(r.status, str(r.status)),
        "contact_role": r.contact_role,
        "address": r.address,
        "joined_at_ms": r.joined_at_ms,
        "revoked_at_ms": r.revoked_at_ms,
        "revoke_reason": r.revoke_reason,
        "keys": [
            {
                "key_id": k.key_id,
                "valid_from_ms": k.valid_from_ms,
                "revoked_at_ms": k.revoked_at_ms,
            }
            for k in member.keys
        ],
    }


@members.command("list", help=N_("Alla medlemmar, aktiva och återkallade, med sina nycklar."))
@dir_option
@json_option
def list_(node_dir: Path, as_json: bool) -> None:
    """Every member, active and revoked, with its keys."""
    with _open(node_dir) as opened:
        rows = [_member_json(m) for m in opened.council.members()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(_("inga medlemmar än"))
        return
    for r in rows:
        keys = ", ".join(k["key_id"][:12] for k in r["keys"])
        click.echo(
            f"{r['kommunkod']}  {r['name']:<16} {r['status']:<8} "
            + _("nycklar {keys}  sedan {when}").format(keys=keys, when=_when(r["joined_at_ms"]))
            + (
                "  " + _("återkallad {when}").format(when=_when(r["revoked_at_ms"]))
                if r["revoked_at_ms"]
                else ""
            )
        )


# -- keys --------------------------------------------------------------------------------


@hub.group(help=N_("Medlemmarnas byten av signeringsnyckel."))
def keys() -> None:
    """Members' signing-key rotations."""


@keys.command("pending", help=N_("Nyckelbyten som väntar på godkännande."))
@dir_option
@json_option
def keys_pending(node_dir: Path, as_json: bool) -> None:
    """Key rotations waiting for approval."""
    with _open(node_dir) as opened:
        rows = [
            {
                "kommunkod": r.kommunkod,
                "old_key_id": r.old_key_id,
                "new_key_id": r.new_key_id,
                "received_at_ms": r.received_at_ms,
            }
            for r in opened.council.pending_rotations()
        ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(_("inga nyckelbyten väntar"))
        return
    for r in rows:
        click.echo(
            f"{r['kommunkod']}  {r['old_key_id']} -> {r['new_key_id']}  "
            + _("mottagen {when}").format(when=_when(r["received_at_ms"]))
        )


@keys.command(
    "approve",
    help=N_("Godkänn KOD:s nya signeringsnyckel; den gamla slutar gälla efter överlappet."),
)
@click.argument("kommunkod", metavar="KOD")
@click.option("--key-id", default="", help=N_("Den nya nyckelns id, när flera väntar."))
@dir_option
@json_option
def keys_approve(kommunkod: str, key_id: str, node_dir: Path, as_json: bool) -> None:
    """Approve KOD's new signing key; its old key ends after the overlap."""
    with _open(node_dir) as opened:
        directory = opened.council.approve_rotation(kommunkod.strip(), key_id=key_id.strip())
        overlap = opened.config.directory.rotation_overlap_hours
    if as_json:
        print_json({"kommunkod": kommunkod.strip(), "directory_version": directory.version})
        return
    click.echo(
        _(
            "godkände den nya nyckeln för {code}; den gamla nyckeln gäller i {hours} h till; "
            "katalogversion {version}"
        ).format(code=kommunkod.strip(), hours=f"{overlap:g}", version=directory.version)
    )


@keys.command("reject", help=N_("Avslå KOD:s väntande nyckelbyte."))
@click.argument("kommunkod", metavar="KOD")
@click.option("--reason", required=True)
@click.option("--key-id", default="", help=N_("Den nya nyckelns id, när flera väntar."))
@dir_option
def keys_reject(kommunkod: str, reason: str, key_id: str, node_dir: Path) -> None:
    """Refuse KOD's pending key rotation."""
    with _open(node_dir) as opened:
        row = opened.council.reject_rotation(kommunkod.strip(), reason=reason, key_id=key_id)
    click.echo(
        _("avslog den nya nyckeln {key} för {code}: {reason}").format(
            key=row.new_key_id, code=row.kommunkod, reason=reason
        )
    )


# -- directory ---------------------------------------------------------------------------


@hub.group(help=N_("Den signerade medlemskatalogen."))
def directory() -> None:
    """The signed member directory."""


@directory.command("show", help=N_("Den nyaste katalogversionen hubben har signerat."))
@dir_option
@json_option
def directory_show(node_dir: Path, as_json: bool) -> None:
    """The newest directory version the hub has signed."""
    with _open(node_dir) as opened:
        d = opened.council.current_directory()
        allowed, database = opened.council.signing_allowed()
    if d is None:
        raise click.ClickException(_("hubben har ingen katalog än"))
    if as_json:
        print_json({**directory_json(d), "signing_allowed": allowed, "database": database})
        return
    echo_directory(d)
    if not allowed:
        click.echo(
            _(
                "den här databasen ({database}) är en kopia av den som signerar katalogen: den "
                "signerar ingen ny version förrän `samverka hub promote` (docs/OPERATIONS.md)"
            ).format(database=database)
        )


@directory.command(
    "reissue", help=N_("Signera en ny katalogversion nu (samma medlemmar, ny livslängd).")
)
@click.option(
    "--min-version",
    type=int,
    default=0,
    help=N_(
        "Signera minst den här versionen (efter återställning av en säkerhetskopia: över "
        "varje version noderna kan ha sett, annars vägrar de den som tillbakarullning)."
    ),
)
@dir_option
def directory_reissue(min_version: int, node_dir: Path) -> None:
    """Sign a new directory version now (same members, new lifetime)."""
    with _open(node_dir) as opened:
        d = opened.council.reissue_directory(min_version=min_version)
    click.echo(
        _("katalogversion {version}, går ut {when}").format(
            version=d.version, when=_when(d.expires_at_ms)
        )
    )


@hub.command(
    "promote",
    help=N_(
        "Förklara den här hubbens databas som produktionsdatabasen: den får signera "
        "katalogversioner.\n\n"
        "En återställd eller klonad kopia av hubbens databas vägrar att signera (en ny "
        "version där och en annan i produktion skulle förgrena katalogen). Kör det här bara "
        "när kopian ersätter produktionen för gott, den gamla databasen stoppad och aldrig "
        "mer ska signera; signera sedan över det noderna har (`hub directory reissue "
        "--min-version`). En återställningsövning kör det aldrig."
    ),
)
@click.option(
    "--reason",
    default="",
    help=N_("Sparas med beslutet (t.ex. 'gamla databasen förlorad 2026-03-02')."),
)
@dir_option
@json_option
def promote(reason: str, node_dir: Path, as_json: bool) -> None:
    """Declare this hub's database the production one: it may sign directory versions.

    A restored or cloned copy of the hub's database refuses to sign (a new version
    there and another one in production would fork the directory). Run this only when
    the copy replaces production for good, the old database stopped and never to sign
    again; then reissue above what nodes hold (`hub directory reissue --min-version`).
    A restore drill never runs it.
    """
    with _open(node_dir) as opened:
        before, here = opened.council.promote(reason=reason)
        version = opened.council.store.directory_version()
    info = {"database": here, "previous": before, "directory_version": version}
    if as_json:
        print_json(info)
        return
    if before == here:
        click.echo(
            _("den här databasen ({here}) signerar redan katalogen; inget ändrades").format(
                here=here
            )
        )
        return
    click.echo(
        _("den här databasen ({here}) signerar nu katalogen (förut {before})").format(
            here=here, before=before or _("ingen")
        )
    )
    click.echo(
        _(
            "nästa steg: samverka hub directory reissue --min-version N+1 (N: den högsta "
            "version noderna har: `samverka node directory --json` på en nod)"
        )
    )
