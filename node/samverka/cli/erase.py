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

from samverka.cli._common import EXIT_CODES_HELP, json_option, print_json, with_node
from samverka.errors import SamverkaError
from samverka.protocol.erasure import MAX_NOTE_CHARS, MAX_REQUEST_REF_CHARS, REASONS

if TYPE_CHECKING:
    from samverka.node import Node
    from samverka.protocol.entries import ParsedEntry

REASON_HELP = (
    "Varför: personuppgifter, sekretess, intrang (upphovsrätt, förtal), beslut (domstol "
    "eller myndighet) eller annat."
)


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
        help=f"Kort förklaring (högst {MAX_NOTE_CHARS} tecken); upprepa aldrig det som raderas.",
    )(f)


def check_text(note: str, request_ref: str = "") -> None:
    if len(note) > MAX_NOTE_CHARS:
        raise SamverkaError(f"--note har {len(note)} tecken, högst {MAX_NOTE_CHARS}")
    if len(request_ref) > MAX_REQUEST_REF_CHARS:
        raise SamverkaError(
            f"--request-ref har {len(request_ref)} tecken, högst {MAX_REQUEST_REF_CHARS}"
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
        f"raderade {e.origin}:{e.record_id} ({sequences}): innehållet är borta här, "
        f"hashkedjan kvar; raderingen {parsed.origin}#{parsed.sequence} sprids till hubben "
        "och alla noder som hämtar den",
        err=err,
    )


def erase_command(record_kind: int, noun: str, name: str) -> click.Command:
    """The ``erase`` subcommand of one record kind's group."""

    @click.command(
        "erase",
        help=f"Erase one of this kommun's {noun}s: a signed erasure entry.\n\n"
        "Every holder (this node, the hub, every node that syncs) keeps only the hashes of "
        "the erased versions: the text is gone, the feed's chain still verifies. Use it for "
        "text that must not stay published (e.g. personal data); `retire` only withdraws.\n\n"
        f"\b\nExample:\n  samverka {name} erase ID --reason personuppgifter "
        '--note "ett namn i sammanfattningen"',
        epilog=EXIT_CODES_HELP,
    )
    @click.argument("record_id", metavar="ID")
    @reason_option
    @note_option
    @click.option(
        "--version",
        "versions",
        type=click.IntRange(min=1),
        multiple=True,
        help="Radera bara denna version (upprepa för fler); utan: alla versioner.",
    )
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
            raise SamverkaError(f"{record_id!r} är inte av typen {noun}")
        if not held:
            raise SamverkaError(
                f"ingen {noun} {record_id!r} att radera i {node.origin}s flöde",
                hint=f"lista med `samverka {name} list --include-retired`",
            )
        parsed = node.publisher().erase(
            record_id, versions=versions, reason=REASONS[reason], note=note
        )
        say_erased(parsed, err=as_json)
        if as_json:
            print_json(erasure_json(parsed))

    return erase
