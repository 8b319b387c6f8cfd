"""``samverka doctor``: check a node or hub folder; one line per finding, how to fix it."""

from __future__ import annotations

from pathlib import Path

import click

from samverka.cli._common import EXIT_CODES_HELP, dir_option, help_parts, json_option, print_json
from samverka.cli.plugins import doctor_profilers
from samverka.config import CONFIG_FILE, read_toml
from samverka.errors import ConfigError
from samverka.i18n import N_
from samverka.ops.doctor import ALL_CHECKS, Profile, format_findings, run_doctor


@click.command(
    "doctor",
    epilog=help_parts(
        N_(
            "Slutstatus: 0 när inget ger FAIL (varningar inräknade), 1 när en kontroll ger "
            "FAIL, 3 när mappen inte har någon konfiguration alls."
        ),
        "\n\n",
        EXIT_CODES_HELP,
    ),
    help=help_parts(
        N_(
            "Kontrollera den här nodens eller hubbens mapp: konfiguration, nycklar och deras "
            "behörigheter, certifikat (varning när de går ut inom 30 dagar), databasen, "
            "medlemskatalogen, kontakten med hubben över ömsesidig TLS och klockans avvikelse "
            "mot hubben."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka doctor --dir /var/lib/samverka/node\n"
        "  samverka doctor --offline\n"
        "  samverka doctor --only server",
    ),
)
@dir_option
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(ALL_CHECKS),
    help=N_(
        "Kör bara den här kontrollen (upprepas). `--only server` provar mappens egen "
        "körande server: en hälsokontroll för containrar."
    ),
)
@click.option(
    "--offline", is_flag=True, help=N_("Hoppa över kontrollerna som behöver nätet (hubb, klocka).")
)
@json_option
def doctor(node_dir: Path, only: tuple[str, ...], offline: bool, as_json: bool) -> None:
    """Check this node or hub folder: config, keys and their permissions, certificates
    (expiry within 30 days warns), the database, the member directory, reaching the
    hub over mutual TLS, and clock skew against the hub.

    \b
    Examples:
      samverka doctor --dir /var/lib/samverka/node
      samverka doctor --offline             # before starting the service
      samverka doctor --only server         # is the running server healthy?
    """
    report = run_doctor(node_dir, profile=profile_for(node_dir), only=only, offline=offline)
    if as_json:
        print_json(
            {
                "dir": str(node_dir),
                "ok": not report.failed,
                "findings": [f.as_json() for f in report.findings],
            }
        )
    else:
        for line in format_findings(report.findings):
            click.echo(line)
    if report.failed:
        missing = not (node_dir / CONFIG_FILE).exists()
        raise SystemExit(3 if missing else 1)


def profile_for(folder: Path) -> Profile:
    """The profile a registered package claims ``folder`` for (the hub's: kommun 0000),
    else the node's."""
    try:
        raw = read_toml(folder / CONFIG_FILE)
    except ConfigError:
        return Profile()  # the config check reports it
    for profiler in doctor_profilers():
        profile = profiler(folder, raw)
        if profile is not None:
            return profile
    return Profile()
