"""``samverka search "text"``: full-text search over own and mirrored records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from samverka.cli._common import help_parts, json_option, print_json, with_node
from samverka.errors import SamverkaError
from samverka.i18n import N_, _, language
from samverka.protocol.kommuner import is_origin, kommun_name
from samverka.protocol.vocab import RECORD_KIND, SERVICE_AREA, VISIBILITY

if TYPE_CHECKING:
    from samverka.node import Node

#: --kind's choices -> the record kinds' vocabulary keys.
KINDS = {"usecase": "use-case", "lesson": "lesson", "solution": "solution",
         "recommendation": "recommendation", "adoption": "adoption"}  # fmt: skip


def filter_options(f: Any) -> Any:
    """--kind, --origin and --area, as this command and ``hub search`` take them."""
    f = click.option("--area", help=N_("Bara det här verksamhetsområdet (t.ex. äldreomsorg)."))(f)
    f = click.option(
        "--origin", "origins", multiple=True, metavar="KOD", help=N_("Bara den här kommunen.")
    )(f)
    return click.option(
        "--kind",
        "kinds",
        multiple=True,
        type=click.Choice(list(KINDS)),
        help=N_("Bara den här typen."),
    )(f)


@dataclass(frozen=True)
class Filters:
    """What :func:`filter_options` took, checked and in the vocabularies' values."""

    kinds: list[int]
    origins: list[str]
    service_areas: list[int]


def parse_filters(kinds: tuple[str, ...], origins: tuple[str, ...], area: str | None) -> Filters:
    for origin in origins:
        if not is_origin(origin):
            raise SamverkaError(_("{value!r} är ingen kommunkod").format(value=origin))
    return Filters(
        kinds=[RECORD_KIND.parse(KINDS[k]) for k in kinds],
        origins=list(origins),
        service_areas=[SERVICE_AREA.parse(area)] if area else [],
    )


@click.command(
    "search",
    help=help_parts(
        N_(
            "Sök i alla poster noden har: sina egna och de som speglats från andra.\n\n"
            'Varje ord måste matcha (som början av ett ord, så "äldre" hittar '
            '"äldreomsorg"); å, ä och ö är egna bokstäver. Indragna poster visas inte.'
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        '\n  samverka search "äldreomsorg"\n'
        '  samverka search "chatt bygglov" --kind usecase --json\n'
        '  samverka search --hub "äldreomsorg"     ',
        N_("(hela federationen, hos hubben)"),
    ),
)
@click.argument("text")
@filter_options
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--hub",
    "at_hub",
    is_flag=True,
    help=N_("Sök i hela federationen hos hubben (medlemsporten) i stället för i noden."),
)
@json_option
@with_node
def search(
    node: Node,
    text: str,
    kinds: tuple[str, ...],
    origins: tuple[str, ...],
    area: str | None,
    limit: int,
    at_hub: bool,
    as_json: bool,
) -> None:
    filters = parse_filters(kinds, origins, area)
    if at_hub:
        from samverka.cli.hubsearch import search_hub

        hits = search_hub(
            node.config,
            text,
            kinds=filters.kinds,
            origins=origins,
            service_areas=filters.service_areas,
            limit=limit,
        )
    else:
        hits = node.store.search(
            text,
            limit=limit,
            kinds=filters.kinds,
            origins=filters.origins,
            service_areas=filters.service_areas,
        )
    if as_json:
        print_json(
            [
                {
                    "origin": h.origin,
                    "origin_name": kommun_name(h.origin),
                    "id": h.record_id,
                    "kind": RECORD_KIND.key(h.kind),
                    "title": h.title,
                    "summary": h.summary,
                    "visibility": VISIBILITY.key(h.visibility),
                    "rank": h.rank,
                }
                for h in hits
            ]
        )
        return
    if not hits:
        click.echo(_("inget hittades för {text!r}").format(text=text))
        return
    for h in hits:
        click.echo(
            f"{h.origin}/{h.record_id}  {RECORD_KIND.label(h.kind, language())} · "
            f"{kommun_name(h.origin)} · {VISIBILITY.label(h.visibility, language())}"
        )
        click.echo(f"  {h.title}")
        if h.summary:
            summary = h.summary if len(h.summary) <= 160 else h.summary[:157] + "…"
            click.echo(f"  {summary}")
