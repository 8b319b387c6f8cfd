"""The ``samverka`` command line: one console script, subcommands loaded on demand.

Subcommands live in their own modules and are imported only when run (a
:class:`LazyGroup`), so ``samverka --help`` and small commands start fast. Packages
built on the node add theirs through entry points (``samverka hub``:
:mod:`samverka.cli.plugins`); the node never imports them.

Exit codes (also in ``samverka --help``) are set in :mod:`samverka.cli._common`.
"""

from __future__ import annotations

import click

from samverka import __version__
from samverka.cli._common import EXIT_CODES_HELP, LazyGroup, lang_option
from samverka.i18n import N_

ROOT_HELP = N_(
    "Samverka: dela signerade AI-användningsfall, lärdomar och lösningar mellan kommuner.\n"
    "\n"
    "\b\n"
    "Börja med:\n"
    "  samverka node init --kommun 2029 --dir ./leksand\n"
    "  export SAMVERKA_DIR=./leksand\n"
    '  samverka usecase add --title "Språkstöd i hemtjänsten" \\\n'
    '      --summary "Taligenkänning för dokumentation" --area äldreomsorg --status pilot\n'
    "\n"
    "Alla kommandon tar --dir (eller SAMVERKA_DIR), --lang (sv, en) och --help."
)


@click.group(
    cls=LazyGroup,
    lazy={
        "node": ("samverka.cli.node:node", N_("Skapa och kör kommunens nod.")),
        "usecase": ("samverka.cli.records:usecase", N_("Skriv och läs AI-användningsfall.")),
        "lesson": ("samverka.cli.records:lesson", N_("Skriv och läs lärdomar.")),
        "solution": (
            "samverka.cli.records:solution",
            N_("Skriv och läs återanvändbara lösningar."),
        ),
        "adopt": ("samverka.cli.records:adopt", N_("Registrera att kommunen infört en lösning.")),
        "profile": ("samverka.cli.profile:profile", N_("Kommunens profil och AI-regler.")),
        "passar": (
            "samverka.cli.profile:passar",
            N_("Passar er: det liknande kommuner har i drift, efter era regler."),
        ),
        "import": (
            "samverka.cli.importing:import_",
            N_("Importera en inventering (YAML/JSON/CSV/XLSX)."),
        ),
        "search": ("samverka.cli.search:search", N_("Fritextsök i alla poster noden håller.")),
        "export": (
            "samverka.cli.exporting:export",
            N_("Exportera öppna poster till register och dataportaler."),
        ),
        "bundle": ("samverka.cli.bundle:bundle", N_("Signerade paket offline: export och import.")),
        "sync": ("samverka.cli.syncing:sync", N_("Hämta och skicka poster med hubben.")),
        "crosscheck": (
            "samverka.cli.crosscheck:crosscheck",
            N_("Jämför flödenas huvuden med hubben och ursprungsnoderna."),
        ),
        "doctor": (
            "samverka.cli.doctor:doctor",
            N_("Kontrollera en nods eller hubbs mapp; säg hur felet rättas."),
        ),
    },
    plugins=True,
    help=ROOT_HELP,
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, "--version", "-V", prog_name="samverka")
@lang_option
def main() -> None:
    """Samverka: share signed AI use cases, lessons and solutions between kommuner
    (the help people read is :data:`ROOT_HELP`, in their language)."""
