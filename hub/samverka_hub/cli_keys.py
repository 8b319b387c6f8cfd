"""``samverka hub rotate-keys``: replace the hub's own keys under the old one (Swedish
text for the operator, ``--json`` for scripts); the work is
:mod:`samverka_hub.keyrotation`'s."""

from __future__ import annotations

from pathlib import Path

import click
from samverka.cli._common import EXIT_CODES_HELP, dir_option, help_parts, json_option, print_json
from samverka.i18n import N_, _


@click.command(
    "rotate-keys",
    epilog=EXIT_CODES_HELP,
    help=help_parts(
        N_(
            "Byt hubbens egna nycklar utan att kommunerna behöver ansluta sig på nytt.\n\n"
            "Den nya nyckeln (eller nycklarna) meddelas under den gamla: rotationen signeras "
            "av både den gamla och den nya katalognyckeln, och nästa katalogversion, signerad "
            "med den nya nyckeln, bär den. Noderna följer den när de hämtar katalogen. De "
            "gamla nycklarna sparas (keys/retired/, keys/retired-log/, ca/retired/).\n\n"
            "En körande hubb läser den nya katalog- och loggnyckeln själv. Efter --ca och "
            "--finish: starta om hubbens repliker en i taget. Repliker med egen mapp behöver "
            'keys/, ca/ och tls/ kopierade (docs/OPERATIONS.md, "Rotating the hub\'s keys").'
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka hub rotate-keys --directory --log --dir /var/lib/samverka/hub\n"
        "  samverka hub rotate-keys --ca --dir /var/lib/samverka/hub\n"
        "  samverka hub rotate-keys --finish --dir /var/lib/samverka/hub",
    ),
)
@click.option(
    "--directory", "directory", is_flag=True, help=N_("Ny katalognyckel (keys/signing.key).")
)
@click.option("--log", "log_key", is_flag=True, help=N_("Ny nyckel för transparensloggen."))
@click.option(
    "--ca",
    is_flag=True,
    help=N_(
        "Ny CA: nya certifikat utfärdas av den, hubben godtar klientcertifikat från "
        "båda tills --finish."
    ),
)
@click.option(
    "--finish",
    is_flag=True,
    help=N_(
        "Avsluta en CA-rotation: hubben visar sitt certifikat från den nya CA:n och "
        "litar bara på den."
    ),
)
@click.option(
    "--force",
    is_flag=True,
    help=N_(
        "Med --finish: avsluta även om medlemmar ännu bara har certifikat från den gamla CA:n."
    ),
)
@dir_option
@json_option
def rotate_keys(
    directory: bool,
    log_key: bool,
    ca: bool,
    finish: bool,
    force: bool,
    node_dir: Path,
    as_json: bool,
) -> None:
    """Byt hubbens egna nycklar utan att kommunerna behöver ansluta sig på nytt.

    Den nya nyckeln (eller nycklarna) meddelas under den gamla: rotationen signeras av
    både den gamla och den nya katalognyckeln, och nästa katalogversion, signerad med
    den nya nyckeln, bär den. Noderna följer den när de hämtar katalogen. De gamla
    nycklarna sparas (keys/retired/, keys/retired-log/, ca/retired/).

    \b
    Exempel:
      samverka hub rotate-keys --directory --log --dir /var/lib/samverka/hub
      samverka hub rotate-keys --ca --dir /var/lib/samverka/hub
      samverka hub rotate-keys --finish --dir /var/lib/samverka/hub

    En körande hub läser den nya katalog- och loggnyckeln själv. Efter --ca och
    --finish: starta om hubbens repliker en i taget. Repliker med egen mapp behöver
    keys/, ca/ och tls/ kopierade (docs/OPERATIONS.md, "Rotating the hub's keys").
    """
    from samverka_hub.folder import open_hub
    from samverka_hub.keyrotation import finish_ca_rotation, rotate_hub_keys

    if finish and (directory or log_key or ca):
        raise click.UsageError(_("--finish går inte att kombinera med --directory/--log/--ca"))
    if force and not finish:
        raise click.UsageError(_("--force hör till --finish"))
    if not (finish or directory or log_key or ca):
        raise click.UsageError(_("ange vad som ska bytas: --directory, --log och/eller --ca"))
    hub = open_hub(node_dir)
    try:
        if finish:
            done = finish_ca_rotation(hub, force=force)
            if as_json:
                print_json(
                    {
                        "finished": True,
                        "ca_serial": done.ca_serial,
                        "dropped_ca_serials": done.dropped_ca_serials,
                        "hub_certificate_serial": done.hub_certificate_serial,
                        "stragglers": done.stragglers,
                    }
                )
                return
            click.echo(
                _(
                    "CA-rotationen är avslutad: hubben visar sitt certifikat ({serial}) från CA "
                    "{ca} och litar bara på den (borttagna: {dropped})."
                ).format(
                    serial=done.hub_certificate_serial,
                    ca=done.ca_serial,
                    dropped=", ".join(done.dropped_ca_serials) or _("inga"),
                )
            )
            if done.stragglers:
                click.echo(
                    _(
                        "Dessa medlemmar har bara certifikat från den gamla CA:n och når inte "
                        "längre hubben: {members}"
                    ).format(members=", ".join(done.stragglers))
                )
            click.echo(_("Nästa steg: starta om hubbens repliker en i taget."))
            return
        report = rotate_hub_keys(hub, directory=directory, log_key=log_key, ca=ca)
    finally:
        hub.close()
    if as_json:
        print_json(
            {
                "version": report.version,
                "rotated": report.what,
                "old_key_id": report.old_key_id,
                "new_key_id": report.new_key_id,
                "old_log_key": report.old_log_key,
                "new_log_key": report.new_log_key,
                "old_ca_serial": report.old_ca_serial,
                "new_ca_serial": report.new_ca_serial,
                "next_certificate": report.next_certificate,
            }
        )
        return
    names = {"directory key": N_("katalognyckeln"), "log key": N_("loggnyckeln"), "CA": N_("CA:n")}
    click.echo(
        _(
            "Bytt: {what}. Katalogversion {version} är signerad med nyckel {new} och bär "
            "rotationen, signerad av {old} och {new}."
        ).format(
            what=", ".join(_(names[w]) for w in report.what),
            version=report.version,
            new=report.new_key_id,
            old=report.old_key_id,
        )
    )
    if report.new_log_key:
        click.echo(_("  ny loggnyckel   {key}").format(key=report.new_log_key))
    if report.new_ca_serial:
        click.echo(
            _(
                "  ny CA           {serial} (tls/ca.pem har nu både den gamla och den nya); "
                "hubbens certifikat från den nya CA:n väntar i {path}"
            ).format(serial=report.new_ca_serial, path=report.next_certificate)
        )
    click.echo(
        _("Noderna följer rotationen när de hämtar katalogen; ingen behöver ansluta på nytt.")
    )
    if report.new_ca_serial:
        click.echo(
            _(
                "Nästa steg: starta om hubbens repliker en i taget; be medlemmarna köra "
                "`samverka node renew-cert`; sedan `samverka hub rotate-keys --finish`."
            )
        )
