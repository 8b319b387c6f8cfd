"""``samverka import FILE``: a kommun's existing inventory as signed records.

The parsing and checking are pure (:mod:`samverka.records.inventory`); this command reads the
file, shows the problems or the plan, and publishes through the node's Publisher.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from samverka.cli._common import EXIT_CODES_HELP, help_parts, json_option, print_json, with_node
from samverka.errors import ImportFileError, SamverkaError
from samverka.i18n import N_, _
from samverka.protocol.vocab import RECORD_KIND, VISIBILITY
from samverka.records.inventory import (
    FORMATS,
    IMPORTABLE,
    MAX_FILE_BYTES,
    MAX_ROWS,
    ImportPlan,
    detect_format,
    plan_import,
    read_inventory,
)

if TYPE_CHECKING:
    from samverka.node import Node

_KIND_CHOICES = {"usecase": "use_case", "lesson": "lesson", "solution": "solution"}


@click.command(
    "import",
    help=help_parts(
        N_(
            "Importera en inventeringsfil (CSV, XLSX, YAML eller JSON) som signerade poster.\n\n"
            "Kolumnerna har samma namn som flaggorna till `usecase add` (title, summary, area, "
            "status, risk, technique, cost_yearly, benefit, …) eller deras svenska namn "
            "(titel, sammanfattning, verksamhetsområde, status, riskklass, …); en kolumn `kind` "
            "(posttyp) kan blanda användningsfall, lärdomar och lösningar. CSV kan vara "
            "avgränsad med ; eller , och vara UTF-8 med eller utan BOM.\n\n"
            "Varje rad kontrolleras först. Är någon rad ogiltig listas varje problem med sin "
            "rad och sitt fält och inget importeras (om inte --skip-invalid anges). Rader utan "
            "id får ett från sin titel, så att samma fil importerad igen inte skapar dubbletter: "
            "oförändrade rader skriver inget, ändrade rader skriver en ny version.\n\n"
            "`samverka import --columns` listar varje kolumnnamn som godtas. Gränser:"
        ),
        f" {MAX_FILE_BYTES // (1024 * 1024)} MiB, {MAX_ROWS} ",
        N_("poster per fil."),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka import inventering.xlsx --dry-run\n"
        "  samverka import inventering.csv --visibility public",
    ),
    epilog=EXIT_CODES_HELP,
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--columns",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, _param, value: _print_columns(ctx) if value else None,
    help=N_("Lista varje kolumn som godtas (med dess svenska namn) och avsluta."),
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help=N_("[standard: från filnamnet]"))
@click.option(
    "--kind",
    type=click.Choice(list(_KIND_CHOICES)),
    default="usecase",
    show_default=True,
    help=N_("Typ för rader utan kolumnen kind."),
)
@click.option(
    "--visibility",
    metavar="VIS",
    help=N_(
        "Synlighet för nya poster som inte anger någon (public, members, draft) "
        "[standard: members]."
    ),
)
@click.option(
    "--skip-invalid", is_flag=True, help=N_("Importera de giltiga raderna, hoppa över de ogiltiga.")
)
@click.option(
    "--ignore-unknown-columns", is_flag=True, help=N_("Bortse från kolumner som inte är fält.")
)
@click.option(
    "--dry-run", is_flag=True, help=N_("Kontrollera och visa vad som skulle hända; skriv inget.")
)
@json_option
@with_node
def import_(
    node: Node,
    file: Path,
    fmt: str | None,
    kind: str,
    visibility: str | None,
    skip_invalid: bool,
    ignore_unknown_columns: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImportFileError(
            _("{file} är {size} byte; gränsen är {limit} byte (10 MiB)").format(
                file=file, size=size, limit=MAX_FILE_BYTES
            ),
            hint=_("dela upp inventeringen i mindre filer"),
        )
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ImportFileError(
            _("kan inte läsa {file}: {error}").format(file=file, error=exc.strerror)
        ) from exc
    fmt = fmt or detect_format(file.name, data)
    default_visibility = VISIBILITY.parse(visibility) if visibility else None
    inventory = read_inventory(
        data,
        fmt,
        default_body=_KIND_CHOICES[kind],
        ignore_unknown_columns=ignore_unknown_columns,
    )
    plan = plan_import(
        inventory,
        origin=node.origin,
        lookup=lambda record_id: node.store.get_record(node.origin, record_id),
        default_visibility=default_visibility,
    )
    assert set(_KIND_CHOICES.values()) <= set(IMPORTABLE)

    for problem in plan.problems:
        click.echo(f"  {problem}", err=True)
    file_level = [p for p in plan.problems if p.where == "file"]
    if file_level:
        raise SamverkaError(
            _("{file}: {count} okända kolumner; inget importerades").format(
                file=file.name, count=len(file_level)
            ),
            hint=_(
                "byt namn på kolumnerna till fältnamn (se `samverka import --help`) eller ange "
                "--ignore-unknown-columns"
            ),
        )
    if plan.problems and not skip_invalid:
        raise SamverkaError(
            _("{file}: {invalid} ogiltiga rader av {total}; inget importerades").format(
                file=file.name,
                invalid=plan.invalid_rows,
                total=plan.invalid_rows + len(plan.rows),
            ),
            hint=_(
                "rätta raderna ovan, eller ange --skip-invalid för att importera de giltiga raderna"
            ),
        )

    published = 0
    if not dry_run:
        published = _publish(node, plan)
    _report(plan, file.name, dry_run=dry_run, as_json=as_json, published=published)


def _print_columns(ctx: click.Context) -> None:
    """The column reference, generated from the form so it never drifts from the code."""
    from samverka.records.inventory import KIND_COLUMNS
    from samverka.records.recordform import FIELDS

    click.echo(f"{_('kolumn (CLI-flagga)'):<21} {_('typer'):<29} {_('godtas också')}")
    click.echo(f"{'kind':<21} {_('(alla)'):<29} {', '.join(sorted(KIND_COLUMNS - {'kind'}))}")
    for f in FIELDS:
        kinds = _("alla") if "header" in f.where else ", ".join(f.where)
        click.echo(f"{f.name:<21} {kinds:<29} {', '.join(f.aliases)}")
        click.echo(f"{'':<21} {_(f.help)}")
    ctx.exit(0)


def _publish(node: Node, plan: ImportPlan) -> int:
    rows = plan.to_publish()
    publisher = node.publisher()
    if len(rows) > 1 and sys.stderr.isatty():
        with click.progressbar(rows, label="signing", file=sys.stderr, show_pos=True) as bar:
            for row in bar:
                publisher.publish(row.record)
    else:
        for row in rows:
            publisher.publish(row.record)
    return len(rows)


def _report(plan: ImportPlan, name: str, *, dry_run: bool, as_json: bool, published: int) -> None:
    counts = {
        "new": plan.count("new"),
        "updated": plan.count("update"),
        "unchanged": plan.count("unchanged"),
        "retired_left_alone": plan.count("retired"),
        "invalid_skipped": plan.invalid_rows,
    }
    if as_json:
        print_json(
            {
                "file": name,
                "dry_run": dry_run,
                "published": published,
                **counts,
                "rows": [
                    {
                        "where": row.where,
                        "action": row.action,
                        "id": row.record_id,
                        "kind": RECORD_KIND.key(row.record.header.kind),
                    }
                    for row in plan.rows
                ],
                "problems": [
                    {"where": p.where, "field": p.field, "message": p.message}
                    for p in plan.problems
                ],
            }
        )
        return
    verbs = {
        "new": N_("ny"),
        "update": N_("ny version"),
        "unchanged": N_("oförändrad"),
        "retired": N_("indragen"),
    }
    if dry_run:
        for row in plan.rows:
            click.echo(f"  {row.where}: {_(verbs[row.action])}: {row.record_id}")
    summary = (
        _("skulle importera {name}: {new} nya, {updated} ändrade, {unchanged} oförändrade")
        if dry_run
        else _("importerade {name}: {new} nya, {updated} ändrade, {unchanged} oförändrade")
    )
    click.echo(
        summary.format(
            name=name,
            new=counts["new"],
            updated=counts["updated"],
            unchanged=counts["unchanged"],
        )
        + (
            ", "
            + _("{count} indragna lämnade som de är").format(count=counts["retired_left_alone"])
            if counts["retired_left_alone"]
            else ""
        )
        + (
            ", " + _("{count} ogiltiga hoppades över").format(count=counts["invalid_skipped"])
            if counts["invalid_skipped"]
            else ""
        )
    )
