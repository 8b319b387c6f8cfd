"""``samverka search "text"``: full-text search over own and mirrored records."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from samverka.cli._common import json_option, print_json, with_node
from samverka.errors import SamverkaError
from samverka.i18n import _, language
from samverka.protocol.kommuner import is_origin, kommun_name
from samverka.protocol.vocab import RECORD_KIND, SERVICE_AREA, VISIBILITY

if TYPE_CHECKING:
    from samverka.node import Node

_KINDS = {"usecase": "use-case", "lesson": "lesson", "solution": "solution",
          "recommendation": "recommendation", "adoption": "adoption"}  # fmt: skip


@click.command(
    "search",
    help="""Search every record this node holds: its own and those mirrored from others.

Every word must match (as a prefix, so "äldre" finds "äldreomsorg"); å, ä and ö
are distinct letters. Retired records are not shown.

\b
Example:
  samverka search "äldreomsorg"
  samverka search "chatt bygglov" --kind usecase --json
  samverka search --hub "äldreomsorg"     (the whole federation, at the hub)
""",
)
@click.argument("text")
@click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(list(_KINDS)), help="Only this kind."
)
@click.option("--origin", "origins", multiple=True, metavar="KOD", help="Only this kommun.")
@click.option("--area", help="Only this verksamhetsområde (e.g. äldreomsorg).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--hub",
    "at_hub",
    is_flag=True,
    help="Search the whole federation at the hub (member port) instead of this node.",
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
    for origin in origins:
        if not is_origin(origin):
            raise SamverkaError(_("{value!r} är ingen kommunkod").format(value=origin))
    kind_values = [RECORD_KIND.parse(_KINDS[k]) for k in kinds]
    areas = [SERVICE_AREA.parse(area)] if area else []
    if at_hub:
        from samverka.cli.hubsearch import search_hub

        hits = search_hub(
            node.config, text, kinds=kind_values, origins=origins, service_areas=areas, limit=limit
        )
    else:
        hits = node.store.search(
            text, limit=limit, kinds=kind_values, origins=list(origins), service_areas=areas
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
