"""``samverka usecase|lesson|solution erase ID --reason …`` (issue 13, point 3).

Unlike ``retire`` (a tombstone: every earlier version stays everywhere), ``erase``
publishes a signed erasure (:mod:`samverka.protocol.erasure`): this node, the hub and
every node that verifies it drop the content of the record's versions and keep only
their hashes, so the feed's chain still verifies. The reason is a category and a
short note that must not repeat what is erased.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from samverka.cli._common import EXIT_CODES_HELP, help_parts, json_option, print_json, with_node
from samverka.errors import SamverkaError
from samverka.i18n import N_, _
from samverka.protocol.erasure import MAX_NOTE_CHARS, MAX_REQUEST_REF_CHARS, REASONS

if TYPE_CHECKING:
    from samverka.node import Node
    from samverka.protocol.entries import ParsedEntry

REASON_HELP = N_(
    "Varför: personuppgifter, sekretess, intrang (upphovsrätt, förtal), beslut (domstol "
    "eller myndighet) eller annat."
)
VERSION_HELP = N_("Radera bara denna version (upprepa för fler); utan: alla versioner.")


def reason_option(f: Any) -> Any:
    return click.option(
        "--reason",
        "reason",
        required=True,
        type=click.Choice(sorted(REASONS)),
        help=REASON_HELP,
    )(f)


def note_option(f: Any) -> Any:
    return click.option(
        "--note",
        default="",
        help=help_parts(
            N_("Kort förklaring (högst"),
            f" {MAX_NOTE_CHARS} ",
            N_("tecken); upprepa aldrig det som raderas."),
        ),
    )(f)


def versions_option(f: Any) -> Any:
    return click.option(
        "--version",
        "versions",
        type=click.IntRange(min=1),
        multiple=True,
        help=VERSION_HELP,
    )(f)


def check_text(note: str, request_ref: str = "") -> None:
    if len(note) > MAX_NOTE_CHARS:
        raise SamverkaError(
            _("{option} har {count} tecken, högst {most}").format(
                option="--note", count=len(note), most=MAX_NOTE_CHARS
            )
        )
    if len(request_ref) > MAX_REQUEST_REF_CHARS:
        raise SamverkaError(
            _("{option} har {count} tecken, högst {most}").format(
                option="--request-ref", count=len(request_ref), most=MAX_REQUEST_REF_CHARS
            )
        )


def erasure_json(parsed: ParsedEntry) -> dict[str, Any]:
    e = parsed.record.erasure
    return {
        "erasure": f"{parsed.origin}#{parsed.sequence}",
        "id": parsed.record_id,
        "origin": e.origin,
        "record_id": e.record_id,
        "erased": [{"sequence": i.sequence, "entry_hash": i.entry_hash.hex()} for i in e.entries],
        "reason": next((k for k, v in REASONS.items() if v == e.reason), str(e.reason)),
        "note": e.note,
        "request_ref": e.request_ref,
    }


def say_erased(parsed: ParsedEntry, *, err: bool = False) -> None:
    e = parsed.record.erasure
    sequences = ", ".join(f"#{i.sequence}" for i in e.entries)
    click.echo(
        _(
            "raderade {record} ({sequences}): innehållet är borta här, hashkedjan kvar; "
            "raderingen {erasure} sprids till hubben och alla noder som hämtar den"
        ).format(
            record=f"{e.origin}:{e.record_id}",
            sequences=sequences,
            erasure=f"{parsed.origin}#{parsed.sequence}",
        ),
        err=err,
    )


def erase_command(record_kind: int, noun: str, name: str) -> click.Command:
    """The ``erase`` subcommand of one record kind's group (``noun`` the msgid of the
    kind's name in messages, records.NOUNS)."""

    @click.command(
        "erase",
        help=help_parts(
            N_(
                "Radera en av kommunens poster av den här typen: en signerad radering.\n\n"
                "Varje innehavare (den här noden, hubben, varje nod som synkar) behåller bara "
                "hasharna av de raderade versionerna: texten är borta, flödets kedja "
                "verifieras fortfarande. Använd den för text som inte får stå kvar publicerad "
                "(t.ex. personuppgifter); `retire` drar bara in."
            ),
            "\n\n\b\n",
            N_("Exempel:"),
            f"\n  samverka {name} erase ID --reason personuppgifter "
            '--note "ett namn i sammanfattningen"',
        ),
        epilog=EXIT_CODES_HELP,
    )
    @click.argument("record_id", metavar="ID")
    @reason_option
    @note_option
    @versions_option
    @json_option
    @with_node
    def erase(
        node: Node,
        record_id: str,
        reason: str,
        note: str,
        versions: tuple[int, ...],
        as_json: bool,
    ) -> None:
        check_text(note)
        held = node.store.record_entries(node.origin, record_id)
        stored = node.store.get_record(node.origin, record_id)
        if stored is not None and stored.kind != record_kind:
            raise SamverkaError(
                _("{id!r} är inte av typen {noun}").format(id=record_id, noun=_(noun))
            )
        if not held:
            raise SamverkaError(
                _("{noun} {id!r} finns inte i {origin}s flöde att radera").format(
                    noun=_(noun), id=record_id, origin=node.origin
                ),
                hint=_("lista med `{command}`").format(
                    command=f"samverka {name} list --include-retired"
                ),
            )
        parsed = node.publisher().erase(
            record_id, versions=versions, reason=REASONS[reason], note=note
        )
        say_erased(parsed, err=as_json)
        if as_json:
            print_json(erasure_json(parsed))

    return erase
