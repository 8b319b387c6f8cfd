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
from samverka.cli._common import EXIT_CODES_HELP, LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "node": ("samverka.cli.node:node", "Create and run this kommun's node."),
        "usecase": ("samverka.cli.records:usecase", "Author and read AI use cases."),
        "lesson": ("samverka.cli.records:lesson", "Author and read lessons learned."),
        "solution": ("samverka.cli.records:solution", "Author and read reusable solutions."),
        "adopt": ("samverka.cli.records:adopt", "Record that this kommun adopted a solution."),
        "profile": ("samverka.cli.profile:profile", "Kommunens profil och AI-regler."),
        "passar": (
            "samverka.cli.profile:passar",
            "Passar er: det liknande kommuner har i drift, efter era regler.",
        ),
        "import": ("samverka.cli.importing:import_", "Import an inventory (YAML/JSON/CSV/XLSX)."),
        "search": ("samverka.cli.search:search", "Full-text search over all records held."),
        "export": (
            "samverka.cli.exporting:export",
            "Exportera öppna poster till register och dataportaler.",
        ),
        "bundle": ("samverka.cli.bundle:bundle", "Offline signed bundles: export and import."),
        "sync": ("samverka.cli.syncing:sync", "Pull and push entries with the hub."),
        "crosscheck": (
            "samverka.cli.crosscheck:crosscheck",
            "Compare feed heads with the hub and origin nodes.",
        ),
        "doctor": ("samverka.cli.doctor:doctor", "Check a node or hub folder; say how to fix it."),
    },
    plugins=True,
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, "--version", "-V", prog_name="samverka")
def main() -> None:
    """Samverka: share signed AI use cases, lessons and solutions between kommuner.

    \b
    Start with:
      samverka node init --kommun 2029 --dir ./leksand
      export SAMVERKA_DIR=./leksand
      samverka usecase add --title "Språkstöd i hemtjänsten" \\
          --summary "Taligenkänning för dokumentation" --area äldreomsorg --status pilot

    Every command takes --dir (or SAMVERKA_DIR) and --help.
    """
