"""``samverka node``: create this kommun's node; ``serve`` and ``enroll`` load on demand."""

from __future__ import annotations

from pathlib import Path

import click

from samverka.cli._common import LazyGroup, dir_option, json_option, print_json
from samverka.config import CONFIG_FILE, DEFAULT_LISTEN
from samverka.i18n import _


@click.group(
    cls=LazyGroup,
    lazy={
        "serve": ("samverka.cli.serve:serve", "Serve this node's feed over mutual TLS."),
        "enroll": ("samverka.cli.membership:enroll", "Ask the council's hub to admit this node."),
        "directory": ("samverka.cli.membership:directory", "Show the member directory held."),
        "rotate-key": ("samverka.cli.membership:rotate_key", "Announce a new signing key."),
        "renew-cert": ("samverka.cli.membership:renew_cert", "Get a new TLS certificate."),
        "backup": ("samverka.cli.backup:backup", "Back up this folder online (SQLite)."),
        "restore": ("samverka.cli.backup:restore", "Restore a backup into a new folder."),
        "push": ("samverka.cli.push:push", "Send this node's new entries to the hub."),
    },
)
def node() -> None:
    """Create and run this kommun's node.

    \b
    Example:
      samverka node init --kommun 2029 --dir /var/lib/samverka
    """


@node.command()
@click.option(
    "--kommun",
    required=True,
    metavar="KOD",
    help="The kommun's 4-digit SCB kommunkod, e.g. 2029 (Leksand).",
)
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    help="host:port `node serve` listens on (written to samverka.toml).",
)
@dir_option
@json_option
def init(kommun: str, listen: str, node_dir: Path, as_json: bool) -> None:
    """Create a node: signing key, TLS certificates, commented config, database.

    Refuses an unknown kommunkod and never overwrites an existing node. The TLS
    certificate comes from a local CA so `samverka node serve` works at once;
    enrolling at the hub replaces it with one the council issued.

    \b
    Example:
      samverka node init --kommun 2029 --dir /var/lib/samverka
      export SAMVERKA_DIR=/var/lib/samverka
    """
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
