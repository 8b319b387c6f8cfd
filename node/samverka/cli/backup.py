"""``samverka node backup | restore``: an online backup of the folder and its SQLite store."""

from __future__ import annotations

from pathlib import Path

import click

from samverka.cli._common import EXIT_CODES_HELP, dir_option, help_parts, json_option, print_json
from samverka.i18n import N_, _


@click.command(
    epilog=EXIT_CODES_HELP,
    help=help_parts(
        N_(
            "Säkerhetskopiera mappen medan servern kör: en konsistent kopia av "
            "SQLite-databasen (SQLites API för säkerhetskopiering under drift) och varje fil "
            "i mappen (konfiguration, nycklar, certifikat, medlemskatalog) i ett arkiv.\n\n"
            "Håll arkivet lika hemligt som keys/signing.key: det innehåller den. En "
            "PostgreSQL-lagring säkerhetskopieras med pg_dump i stället (docs/OPERATIONS.md)."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka node backup --out /var/backups/samverka/node-$(date +%F).tar.gz",
    ),
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=N_("Arkivet som ska skrivas (.tar.gz, läge 0600: det innehåller de privata nycklarna)."),
)
@dir_option
@json_option
def backup(out: Path, node_dir: Path, as_json: bool) -> None:
    """Back up this folder while the server runs: a consistent copy of the SQLite
    database (SQLite's online backup API) and every file of the folder (config, keys,
    certificates, member directory) in one archive.

    \b
    Example:
      samverka node backup --out /var/backups/samverka/node-$(date +%F).tar.gz

    Keep the archive as secret as keys/signing.key: it contains it. A PostgreSQL
    store is backed up with pg_dump instead (docs/OPERATIONS.md).
    """
    from samverka.config import load_config
    from samverka.ops.backup import backup_folder

    manifest = backup_folder(load_config(node_dir), out)
    if as_json:
        print_json({"archive": str(out), **_summary(manifest.heads, manifest.log_position)})
        return
    click.echo(
        _(
            "säkerhetskopierade {kommun} till {out}: loggposition {position}, {feeds} flöden, "
            "{files} filer"
        ).format(
            kommun=manifest.kommun,
            out=out,
            position=manifest.log_position,
            feeds=len(manifest.heads),
            files=len(manifest.files) + 1,
        )
    )


@click.command(
    epilog=EXIT_CODES_HELP,
    help=N_(
        "Återställ ARCHIVE (från `samverka node backup`) i en ny mapp --dir.\n\n"
        "Vägrar en mapp som redan har en nod. Kontrollerar databasen mot säkerhetskopians "
        "manifest och med PRAGMA quick_check, kör nyare migreringar och skriver ut flödenas "
        "huvuden den har.\n\n"
        "\b\n"
        "Efter att ha återställt en äldre säkerhetskopia av en nod som har publicerat sedan\n"
        "dess: publicera inget förrän dess egna poster är tillbaka från hubben (samverka\n"
        "doctor varnar): en ny post på ett nummer som redan publicerats skulle förgrena\n"
        'flödet. Se docs/OPERATIONS.md, "Restoring a node".'
    ),
)
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@dir_option
@json_option
def restore(archive: Path, node_dir: Path, as_json: bool) -> None:
    """Restore ARCHIVE (from `samverka node backup`) into a new folder --dir.

    Refuses a folder that already holds a node. Checks the database against the
    backup's manifest and with PRAGMA quick_check, applies newer migrations, and
    prints the feed heads it holds.

    \b
    After restoring an older backup of a node that has published since, do not
    publish until its own entries are back from the hub (samverka doctor warns):
    a new entry at a sequence already published would fork the feed. See
    docs/OPERATIONS.md, "Restoring a node".
    """
    from samverka.ops.backup import restore_folder

    result = restore_folder(archive, node_dir)
    if as_json:
        print_json(
            {
                "dir": str(result.dir),
                "backup_created_at": result.manifest.created_at,
                "matches_backup": result.matches_backup,
                "migrated": result.migrated,
                **_summary(result.heads, result.log_position),
            }
        )
        return
    click.echo(
        _(
            "återställde {kommun} (säkerhetskopia från {created}) i {dir}: loggposition "
            "{position}, {feeds} flöden"
        ).format(
            kommun=result.manifest.kommun,
            created=result.manifest.created_at,
            dir=result.dir,
            position=result.log_position,
            feeds=len(result.heads),
        )
    )
    if result.migrated:
        click.echo(
            _("körde migreringarna {migrations} (kopian kom från äldre programvara)").format(
                migrations=result.migrated
            )
        )
    click.echo(_("nästa steg: samverka doctor --dir {dir}").format(dir=result.dir))


def _summary(heads: dict[str, int], position: int) -> dict[str, object]:
    return {"log_position": position, "heads": dict(sorted(heads.items()))}
