"""``samverka node push``: send this node's own feed to the hub, from the hub's head on."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from samverka.cli._common import (
    EXIT_CODES_HELP,
    counted,
    dir_option,
    help_parts,
    json_option,
    open_node,
    print_json,
)
from samverka.i18n import N_, _

if TYPE_CHECKING:
    from samverka.node import Node
    from samverka.replication.push import PushReport


PUSH_HELP = N_(
    "Skicka nodens nya poster till hubben (för noder som hubben inte når).\n\n"
    "Frågar hubben hur mycket av kommunens flöde den har och skickar resten i ordning. "
    "Utkast lämnar aldrig noden: en maskad ersättare (bara nummer och hash) tar varje "
    "utkasts plats. Att skicka igen är ofarligt (hubben räknar dubbletter)."
)


@click.command(
    "push",
    help=help_parts(PUSH_HELP, "\n\n\b\n", N_("Exempel:"), "\n  samverka node push"),
    epilog=help_parts(
        """\b
While `samverka node serve` runs on an enrolled node, a push agent does this by itself
after every change and every [hub] push_interval_seconds ([hub] push = false: off).
""",
        EXIT_CODES_HELP,
    ),
)
@dir_option
@click.option(
    "--batch-size",
    type=click.IntRange(1, 2000),
    default=500,
    show_default=True,
    help=N_("Poster per anrop till hubben."),
)
@click.option("--quiet", "-q", is_flag=True, help=N_("Skriv inget utom fel."))
@json_option
def push(node_dir: Path, batch_size: int, quiet: bool, as_json: bool) -> None:
    """Send this node's new entries to the hub (the help people read is PUSH_HELP)."""
    import uvloop

    with (
        open_node(node_dir) as node,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        report = runner.run(_push(node, batch_size, show=not (quiet or as_json)))
    if as_json:
        print_json(
            {
                "origin": report.origin,
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "batches": report.batches,
                "hub_sequence_before": report.hub_sequence_before,
                "hub_sequence": report.hub_sequence,
                "local_sequence": report.local_sequence,
                "gap_restarts": report.gap_restarts,
                "seconds": round(report.seconds, 3),
                "entries_per_second": round(report.entries_per_second, 1),
            }
        )
    elif not quiet:
        if report.sent == 0:
            click.echo(
                _("hubben är à jour: den har {origin} till #{sequence}").format(
                    origin=report.origin, sequence=report.hub_sequence
                )
            )
        else:
            click.echo(
                _(
                    "skickade {entries} ({accepted} nya) i {batches}, {seconds} s "
                    "({rate} poster/s); hubben har {origin} till #{sequence}"
                ).format(
                    entries=counted(report.sent, N_("post"), N_("poster")),
                    accepted=report.accepted,
                    batches=counted(report.batches, N_("omgång"), N_("omgångar")),
                    seconds=f"{report.seconds:.1f}",
                    rate=f"{report.entries_per_second:.0f}",
                    origin=report.origin,
                    sequence=report.hub_sequence,
                )
            )


async def _push(node: Node, batch_size: int, *, show: bool) -> PushReport:
    from samverka.replication.push import push_feed
    from samverka.transport.hubclient import HubClient

    bar: Any = None
    shown = 0

    def progress(report: PushReport) -> None:
        nonlocal bar, shown
        if not show or not sys.stderr.isatty():
            return
        if bar is None:
            total = report.local_sequence - report.hub_sequence_before
            if total <= 0:
                return
            bar = click.progressbar(length=total, label=_("skickar till hubben"), file=sys.stderr)
            bar.__enter__()
        step = report.hub_sequence - report.hub_sequence_before - shown
        shown += step
        bar.update(step)

    try:
        async with HubClient.member(node.config) as link:
            return await push_feed(
                node.store, node.origin, link, batch_size=batch_size, progress=progress
            )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
