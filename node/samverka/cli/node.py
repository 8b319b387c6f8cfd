"""``samverka node``: create this kommun's node; ``serve`` and ``enroll`` load on demand."""

from __future__ import annotations

from pathlib import Path

import click

from samverka.cli._common import LazyGroup, dir_option, help_parts, json_option, print_json
from samverka.config import CONFIG_FILE, DEFAULT_LISTEN
from samverka.i18n import N_, _


@click.group(
    cls=LazyGroup,
    lazy={
        "serve": ("samverka.cli.serve:serve", N_("Lämna ut nodens flöde över ömsesidig TLS.")),
        "enroll": (
            "samverka.cli.membership:enroll",
            N_("Be rådets hubb att ta in noden som medlem."),
        ),
        "directory": (
            "samverka.cli.membership:directory",
            N_("Visa medlemskatalogen noden har."),
        ),
        "rotate-key": ("samverka.cli.membership:rotate_key", N_("Anmäl en ny signeringsnyckel.")),
        "renew-cert": ("samverka.cli.membership:renew_cert", N_("Hämta ett nytt TLS-certifikat.")),
        "backup": (
            "samverka.cli.backup:backup",
            N_("Säkerhetskopiera mappen under drift (SQLite)."),
        ),
        "restore": ("samverka.cli.backup:restore", N_("Återställ en säkerhetskopia i en ny mapp.")),
        "push": ("samverka.cli.push:push", N_("Skicka nodens nya poster till hubben.")),
    },
    help=help_parts(
        N_("Skapa och kör kommunens nod."),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka node init --kommun 2029 --dir /var/lib/samverka",
    ),
)
def node() -> None:
    """Create and run this kommun's node (the help people read is in the group's help)."""


@node.command(
    help=help_parts(
        N_(
            "Skapa en nod: signeringsnyckel, TLS-certifikat, kommenterad konfiguration, "
            "databas.\n\n"
            "Vägrar en okänd kommunkod och skriver aldrig över en nod som finns. "
            "TLS-certifikatet kommer från en lokal CA så att `samverka node serve` fungerar "
            "direkt; när noden ansluts till hubben ersätts det av ett som rådet utfärdat."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka node init --kommun 2029 --dir /var/lib/samverka\n"
        "  export SAMVERKA_DIR=/var/lib/samverka",
    )
)
@click.option(
    "--kommun",
    required=True,
    metavar="KOD",
    help=N_("Kommunens fyrsiffriga SCB-kommunkod, t.ex. 2029 (Leksand)."),
)
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    help=N_("värd:port som `node serve` lyssnar på (skrivs i samverka.toml)."),
)
@dir_option
@json_option
def init(kommun: str, listen: str, node_dir: Path, as_json: bool) -> None:
    """Create a node (the help people read is the command's help)."""
    from samverka.node import init_node

    with init_node(node_dir, kommun.strip(), listen=listen) as created:
        key_id = created.signing_key.key_id
        if as_json:
            print_json(
                {
                    "dir": str(created.dir),
                    "kommun": created.origin,
                    "name": created.name,
                    "key_id": key_id,
                    "listen": listen,
                }
            )
            return
        click.echo(
            _("Skapade en nod för {name} ({origin}) i {dir}").format(
                name=created.name, origin=created.origin, dir=created.dir
            )
        )
        click.echo(_("  konfiguration     {path}").format(path=created.dir / CONFIG_FILE))
        click.echo(_("  signeringsnyckel  keys/signing.key (nyckel-id {key})").format(key=key_id))
        click.echo(
            _("  publik nyckel     keys/signing.pub  (ge den till kommuner som importerar paket)")
        )
        click.echo(_("  TLS               tls/ca.pem, tls/node.pem (lokal CA tills ni ansluter)"))
        click.echo(
            _(
                "Nästa steg: export SAMVERKA_DIR={dir} och lägg till en post med "
                "`samverka usecase add --help`."
            ).format(dir=created.dir)
        )
