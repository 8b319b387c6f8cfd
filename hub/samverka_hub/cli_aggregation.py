"""``samverka hub harvest`` and ``samverka hub refusals``: the council's view of aggregation.

Both work on the hub folder directly, so they are safe while ``hub serve`` runs (a
running hub's subscribers see harvested entries through its log watcher).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import click
from samverka.cli._common import EXIT_CODES_HELP, dir_option, fail, json_option, print_json
from samverka.i18n import N_, _
from samverka.protocol.kommuner import kommun_name


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@click.command(
    epilog=EXIT_CODES_HELP,
    help=N_(
        "Hämta nya poster från medlemmarnas noder en gång, nu.\n\n"
        "Varje aktiv medlem vars post i katalogen har en adress (nodens medlemsport) "
        "tillfrågas om sitt eget flöde efter hubbens markör; varje post verifieras mot "
        "medlemskatalogens nycklar. `hub serve` gör det här själv varje [harvest] "
        "interval_seconds. Avslutas med 1 om någon medlem lämnade en post som hubben vägrar, "
        "4 om någon inte kunde nås."
    ),
)
@dir_option
@click.option(
    "--member", metavar="KOD", default=None, help=N_("Bara den här medlemmen [standard: alla].")
)
@json_option
def harvest(node_dir: Path, member: str | None, as_json: bool) -> None:
    """Pull new entries from members' nodes once, now.

    Every active member whose directory entry has an address (its node's member
    port) is asked for its own feed after the hub's cursor; every entry is verified
    against the member directory's keys. `hub serve` does this on its own every
    [harvest] interval_seconds. Exits 1 if any member served an entry the hub
    refuses, 4 if any could not be reached.
    """
    import uvloop

    from samverka_hub.folder import open_hub
    from samverka_hub.harvest import harvest_once

    with (
        open_hub(node_dir) as hub,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        outcomes = runner.run(
            harvest_once(hub, member=member.strip() if member is not None else None)
        )
    rows: list[dict[str, Any]] = [
        {
            "kommunkod": o.kommunkod,
            "name": kommun_name(o.kommunkod),
            "address": o.address,
            "ok": o.ok,
            "accepted": o.accepted,
            "duplicates": o.report.duplicates if o.report is not None else 0,
            "gaps_filled": o.report.gaps_filled if o.report is not None else 0,
            "cursor": o.report.position if o.report is not None else None,
            "refused": o.refused or None,
            "error": o.error or None,
            "seconds": round(o.seconds, 3),
        }
        for o in outcomes
    ]
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo(_("ingen medlem att skörda: ingen har registrerat en adress"))
    else:
        for r in rows:
            status = (
                _("{accepted} nya, {duplicates} fanns redan").format(
                    accepted=r["accepted"], duplicates=r["duplicates"]
                )
                if r["ok"]
                else _("MISSLYCKADES: {error}").format(error=r["error"])
            )
            click.echo(f"{r['kommunkod']}  {r['name']:<16} {r['address']:<22} {status}")
    refused = [o for o in outcomes if o.refused]
    unreachable = [o for o in outcomes if not o.ok and not o.refused]
    if refused:
        raise fail(
            _("{count} medlemmar lämnade poster som hubben vägrar").format(count=len(refused)),
            hint=_("se `samverka hub refusals`"),
        )
    if unreachable:
        from samverka.errors import TransportError

        raise TransportError(
            _("{count} medlemmar kunde inte skördas").format(count=len(unreachable)),
            hint=_(
                "kontrollera att deras noder kör `samverka node serve` på den registrerade adressen"
            ),
        )


@click.command(
    epilog=EXIT_CODES_HELP,
    help=N_(
        "Poster som hubben vägrat (skickade eller skördade), räknade per ursprung och skäl."
        "\n\nVarje rad är ett ursprung och ett skäl: hur ofta, och det senaste fallet "
        "(nummer, detalj, om posten skickades eller skördades, och av vem). Ett vägrande "
        "betyder att en nod skickade något som inte klarar verifieringen: ett fel, en skadad "
        "databas, en återkallad nyckel som fortfarande används, eller ett angrepp."
    ),
)
@dir_option
@json_option
def refusals(node_dir: Path, as_json: bool) -> None:
    """Entries the hub refused (pushed or harvested), counted by origin and reason.

    Each line is one origin and reason: how often, and the latest case (sequence,
    detail, whether it was pushed or harvested, and by whom). A refusal means a
    node sent something that fails verification: a bug, a damaged database, a
    revoked key still in use, or an attack.
    """
    from samverka_hub.folder import open_hub
    from samverka_hub.refusals import RefusalLog

    with open_hub(node_dir) as hub:
        counts = RefusalLog(hub.store).counts()
    if as_json:
        print_json(
            [
                {
                    "origin": c.origin,
                    "reason": c.reason,
                    "count": c.count,
                    "last_sequence": c.last_sequence,
                    "last_detail": c.last_detail,
                    "last_source": c.last_source,
                    "last_peer": c.last_peer,
                    "first_at_ms": c.first_at_ms,
                    "last_at_ms": c.last_at_ms,
                }
                for c in counts
            ]
        )
        return
    if not counts:
        click.echo(_("inga vägranden: varje skickad eller skördad post har verifierats"))
        return
    for c in counts:
        origin = c.origin or "????"
        click.echo(
            f"{origin}#{c.last_sequence:<6} {c.reason:<18} ×{c.count:<5} "
            + _("senast {when} ({source} av {peer}): {detail}").format(
                when=_when(c.last_at_ms),
                source=c.last_source,
                peer=c.last_peer or "-",
                detail=c.last_detail,
            )
        )
