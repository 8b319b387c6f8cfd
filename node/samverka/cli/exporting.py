"""``samverka export``: this kommun's records in the public sector's formats.

The formats are :mod:`samverka.exports`'; this command reads the node's own records,
builds the whole export in memory and only then writes it (each file atomically), so a
record that lacks a field a format needs stops the export with nothing written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from samverka.cli._common import (
    EXIT_CODES_HELP,
    counted,
    help_parts,
    json_option,
    print_json,
    with_node,
)
from samverka.errors import SamverkaError
from samverka.i18n import N_, _

if TYPE_CHECKING:
    from samverka.node import Node

FORMAT_NAMES = (
    "dcat-rdfxml",
    "dcat-ttl",
    "dcat-jsonld",
    "publiccode",
    "atrs",
    "eurocities-csv",
    "eurocities-json",
    "eu-database",
)


_HELP = N_(
    "Exportera kommunens egna poster till offentliga register och kataloger.\n\n"
    "Bara ÖPPNA (PUBLIC) poster som varken dragits tillbaka eller raderats tas med; "
    "MEMBERS-poster och utkast aldrig."
)
_FORMATS_HELP = N_(
    "  dcat-rdfxml            DCAT-AP-SE som RDF/XML, det Sveriges dataportal skördar:\n"
    "                         användningsfall, lärdomar, lösningar\n"
    "  dcat-ttl, dcat-jsonld  samma katalog som Turtle och JSON-LD\n"
    "  publiccode             publiccode.yml för lösningar av typen kod (en fil per\n"
    "                         lösning; --out är en mapp)\n"
    "  atrs                   ATRS, Storbritanniens algoritmregisterstandard (JSON)\n"
    "  eurocities-csv/-json   Eurocities algoritmregister (fälten i standard 0.3.1)\n"
    "  eu-database            utkast till registrering i EU-databasen för användningsfall\n"
    "                         med hög risk (JSON och Markdown per fall; --out är en mapp)"
)
_REFUSAL_HELP = N_(
    "En post som saknar ett fält som formatet kräver stoppar exporten med ett fel som "
    "namnger posten och fältet; då skrivs ingenting."
)


@click.command(
    "export",
    help=help_parts(
        _HELP,
        "\n\n\b\n",
        N_("Format:"),
        "\n",
        _FORMATS_HELP,
        "\n\n",
        _REFUSAL_HELP,
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka export --format dcat-rdfxml --out dcat.rdf \\\n"
        "      --katalog-url https://katalog.samverka.se --kontakt-epost ai@leksand.se\n"
        "  samverka export --format eu-database --out eu-utkast/\n"
        "  samverka export --format eurocities-csv --out register.csv --force --json\n",
    ),
    epilog=EXIT_CODES_HELP,
)
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(FORMAT_NAMES),
    help=N_("Exportformatet (se ovan)."),
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help=N_("Filen att skriva (en mapp för publiccode och eu-database)."),
)
@click.option(
    "--katalog-url",
    "base_url",
    default="",
    metavar="URL",
    help=N_(
        "Webbkatalogens adress (https://…): ger varje post en länk till sin sida. "
        "Utan den namnges posterna med URN."
    ),
)
@click.option(
    "--kontakt-epost",
    "contact_email",
    default="",
    metavar="EPOST",
    help=N_(
        "En funktionsbrevlåda för katalogen, för poster som saknar egen "
        "(DCAT-AP-SE kräver e-post i en kontaktpunkt)."
    ),
)
@click.option("--force", is_flag=True, help=N_("Skriv över filer som redan finns."))
@json_option
@with_node
def export(
    node: Node,
    fmt: str,
    out: Path,
    base_url: str,
    contact_email: str,
    force: bool,
    as_json: bool,
) -> None:
    from samverka.exports import Publisher, write_many
    from samverka.exports.formats import FORMATS, build, selected
    from samverka.v1 import records_pb2

    if base_url and not base_url.startswith(("https://", "http://")):
        raise SamverkaError(
            _("--katalog-url {url!r} är ingen http(s)-adress").format(url=base_url[:80]),
            hint=_("t.ex. --katalog-url https://katalog.samverka.se"),
        )
    spec = FORMATS[fmt]
    if spec.folder and out.exists() and not out.is_dir():
        raise SamverkaError(
            _("{out} finns och är ingen mapp").format(out=out), hint=_("ange en mapp med --out")
        )
    if not spec.folder and out.is_dir():
        raise SamverkaError(_("{out} är en mapp").format(out=out), hint=_("ange en fil med --out"))
    own = [s.record for s in node.store.list_records(origins=[node.origin])]
    # Other kommuners' adoptions of this kommun's solutions (publiccode.yml's usedBy).
    adoptions = [
        s.record
        for s in node.store.list_records(kinds=[records_pb2.RECORD_KIND_ADOPTION])
        if s.origin != node.origin
    ]
    publisher = Publisher(
        node.origin,
        base_url=base_url,
        contact_email=contact_email,
        generated_ms=time.time_ns() // 1_000_000,
    )
    chosen = selected(fmt, own)
    # Built whole first: an ExportError leaves nothing written. Nothing to export
    # writes no file (an empty catalogue is no valid DCAT-AP-SE catalogue).
    files = build(fmt, own + adoptions, publisher, out) if chosen else {}
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        more = _(" (och {count} till)").format(count=len(existing) - 1) if len(existing) > 1 else ""
        raise SamverkaError(
            _("{path} finns redan{more}").format(path=existing[0], more=more),
            hint=_("välj en annan --out, eller lägg till --force"),
        )
    write_many(files)
    if as_json:
        print_json(
            {
                "format": fmt,
                "out": str(out),
                "files": [str(p) for p in files],
                "records": [f"{r.header.origin}/{r.header.id}" for r in chosen],
            }
        )
        return
    what = _(spec.label)
    records = counted(len(chosen), N_("post"), N_("poster"))
    if not chosen:
        click.echo(_("Inga poster att exportera som {what}; ingen fil skrevs.").format(what=what))
    elif spec.folder:
        click.echo(
            _("Exporterade {records} som {what}: {files} i {out}.").format(
                records=records,
                what=what,
                files=counted(len(files), N_("fil"), N_("filer")),
                out=out,
            )
        )
    else:
        click.echo(
            _("Exporterade {records} som {what} till {out}.").format(
                records=records, what=what, out=out
            )
        )
