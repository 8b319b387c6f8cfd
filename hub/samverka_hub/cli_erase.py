"""``samverka hub erase ORIGIN ID --reason … --request-ref …``: the council erases on a
kommun's request (issue 13, point 3).

The erasure is a record in the hub's own feed (origin 0000), signed with the hub's key
by the same publisher as the council's recommendations: it is verified before it is
stored, applied to the hub's database at once (all replicas share it), logged in the
transparency log like any entry, and every node that syncs verifies it against the
hub's key in the signed member directory and applies it. Nodes accept from the hub
erasures only: the hub still cannot change a word of a kommun's records.

Audit: the erasure entry itself (who, what, why, the request's reference, when) stays
in the hub's feed and log for good; the command also writes one log line (event
``council_erasure``), and ``samverka hub erase list`` shows every erased entry.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click
from samverka.cli._common import EXIT_CODES_HELP, help_parts, json_option, print_json
from samverka.cli.erase import (
    check_text,
    erasure_json,
    note_option,
    reason_option,
    say_erased,
    versions_option,
)
from samverka.errors import SamverkaError
from samverka.i18n import N_, _
from samverka.ops.logs import JsonFormatter
from samverka.protocol.erasure import REASONS
from samverka.protocol.kommuner import is_origin

from samverka_hub.cli_council import with_hub

if TYPE_CHECKING:
    from samverka_hub.folder import Hub

log = logging.getLogger("samverka_hub.erasure")

_EXAMPLE = (
    "samverka hub erase 2029 uc-chatbot --reason personuppgifter "
    '--request-ref "KS 2026/114" --note "Leksand begärde radering: namn i sammanfattningen"'
)


class _EraseGroup(click.Group):
    """``hub erase ORIGIN ID …`` erases; ``hub erase list`` lists what is erased."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["record", *args]
        return super().parse_args(ctx, args)


@click.group(
    cls=_EraseGroup,
    help=help_parts(
        N_(
            "Radera en kommuns post på dess begäran: en signerad radering av hubben.\n\n"
            "Varje innehavare (hubbens databas, varje nod som synkar, buntar som görs "
            "efteråt) behåller bara hasharna av de raderade versionerna; texten försvinner, "
            "kedjan verifieras fortfarande."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        f"\n  {_EXAMPLE}\n  samverka hub erase list",
    ),
)
def erase() -> None:
    pass


@erase.command(
    "record",
    help=help_parts(
        N_("Radera ursprunget ORIGINs post ID."), "\n\n\b\n", N_("Exempel:"), f"\n  {_EXAMPLE}"
    ),
    epilog=EXIT_CODES_HELP,
)
@click.argument("origin", metavar="ORIGIN")
@click.argument("record_id", metavar="ID")
@reason_option
@click.option(
    "--request-ref",
    required=True,
    help=N_("Kommunens begäran (t.ex. diarienummer); sparas i den signerade raderingen."),
)
@note_option
@versions_option
@json_option
@with_hub
def erase_record(
    hub: Hub,
    origin: str,
    record_id: str,
    reason: str,
    request_ref: str,
    note: str,
    versions: tuple[int, ...],
    as_json: bool,
) -> None:
    if not is_origin(origin):
        raise SamverkaError(_("{value!r} är ingen kommunkod").format(value=origin[:8]))
    if not request_ref.strip():
        raise SamverkaError(_("--request-ref: ange kommunens begäran (t.ex. diarienummer)"))
    check_text(note, request_ref)
    parsed = (
        hub.node()
        .publisher()
        .erase(
            record_id,
            origin=origin,
            versions=versions,
            reason=REASONS[reason],
            note=note,
            request_ref=request_ref,
        )
    )
    _audit_to_stderr()
    log.info(
        "council erased %s:%s (%s) on request %s",
        origin,
        record_id,
        ", ".join(f"#{e.sequence}" for e in parsed.record.erasure.entries),
        request_ref,
        extra={
            "event": "council_erasure",
            "origin": origin,
            "record_id": record_id,
            "erasure": f"{parsed.origin}#{parsed.sequence}",
            "reason": reason,
            "request_ref": request_ref,
        },
    )
    say_erased(parsed, err=as_json)
    if as_json:
        print_json(erasure_json(parsed))


def _audit_to_stderr() -> None:
    """One JSON line on stderr for the council's erasure (an operator command has no log
    set up; under hub serve's the root logger's handler takes it)."""
    if logging.getLogger().handlers or log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


@erase.command("list", help=N_("Varje raderad post som hubben har, och raderingen bakom den."))
@json_option
@with_hub
def erase_list(hub: Hub, as_json: bool) -> None:
    rows = hub.store.erased_entries()
    if as_json:
        print_json(
            [
                {
                    "origin": r.origin,
                    "sequence": r.sequence,
                    "entry_hash": r.entry_hash.hex(),
                    "record_id": r.record_id,
                    "erasure": f"{r.by_origin}#{r.by_sequence}",
                    "erased_at_ms": r.erased_at_ms,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        click.echo(_("inget är raderat"))
    for r in rows:
        click.echo(
            f"{r.origin}#{r.sequence}  {r.record_id}  "
            + _("raderad av {erasure}").format(erasure=f"{r.by_origin}#{r.by_sequence}")
        )
