"""``samverka hub recommend|stats|search``: the council's own features at the hub folder.

These work on the hub folder directly (its SQLite file or the PostgreSQL database in
``[store] url``), like the membership commands, so they are safe while ``hub serve``
runs: a new recommendation is one transaction, and the running servers hand it to
their subscribers as soon as their log watcher sees it.

- ``recommend add|edit|retire|list|show``: the council's recommendations, signed with
  the hub's key (origin 0000); the options are the flat fields of
  :mod:`samverka.records.recordform`, as for ``samverka usecase``.
- ``stats``: coverage across all 290 kommuner (:mod:`samverka_hub.stats`).
- ``search``: the federation-wide search the hub's ``Search`` RPC answers.

By default the operator sees everything the hub holds (PUBLIC and MEMBERS records,
never drafts); ``--public`` shows what the public port tells anyone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from samverka.cli._common import EXIT_CODES_HELP, dir_option, help_parts, json_option, print_json
from samverka.cli.records import (
    clear_option,
    field_options,
    given_values,
    print_table,
    prompt_missing,
    record_history,
    record_json,
    show_record,
)
from samverka.cli.search import filter_options, parse_filters
from samverka.errors import SamverkaError
from samverka.i18n import N_, _, language
from samverka.protocol.kommuner import HUB_ORIGIN, counties, kommun_name
from samverka.protocol.vocab import (
    KOMMUN_GROUP,
    POPULATION_BAND,
    RECORD_KIND,
    SERVICE_AREA,
    USE_CASE_STATUS,
    VISIBILITY,
    bool_label,
)

if TYPE_CHECKING:
    from samverka.protocol.entries import ParsedEntry

    from samverka_hub.folder import Hub
    from samverka_hub.insight import FederationHit
    from samverka_hub.stats import CountyCoverage, Coverage, GroupCoverage, KommunCoverage

R = TypeVar("R")

BODY = "recommendation"


@contextmanager
def _open_hub(hub_dir: Path) -> Iterator[Hub]:
    from samverka_hub.folder import open_hub

    opened = open_hub(hub_dir)
    try:
        yield opened
    finally:
        opened.close()


def with_hub(f: Callable[..., R]) -> Callable[..., R]:
    """Add ``--dir`` and pass the opened hub as ``hub``; it is closed afterwards."""

    @functools.wraps(f)
    def wrapper(*args: Any, node_dir: Path, **kwargs: Any) -> R:
        with _open_hub(node_dir) as opened:
            return f(*args, hub=opened, **kwargs)

    return dir_option(wrapper)


# -- recommend ---------------------------------------------------------------------------

_EXAMPLE = (
    'samverka hub recommend add --title "Generativ AI i handläggning" '
    '--summary "Börja i liten skala och mät nyttan" '
    "--body-file rekommendation.md --area social-services --reference 1472/uc-chatbot "
    "--link 'https://www.imy.se/ IMY' --visibility public"
)


@click.group(
    help=help_parts(
        N_("Rådets rekommendationer, signerade av hubben."),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  " + _EXAMPLE,
    )
)
def recommend() -> None:
    pass


def _body_option(f: Callable[..., R]) -> Callable[..., R]:
    return click.option(
        "--body-file",
        type=click.File("r", encoding="utf-8"),
        help=N_("Läs --body från den här UTF-8-filen ('-' för stdin)."),
    )(f)


def _values(params: dict[str, Any]) -> dict[str, Any]:
    values = given_values(BODY, params)
    body_file = params.get("body_file")
    if body_file is not None:
        if "body" in values:
            raise SamverkaError(_("ange --body eller --body-file, inte båda"))
        values["body"] = body_file.read()
    return values


def _said(parsed: ParsedEntry, *, err: bool) -> None:
    header = parsed.record.header
    what = (
        _("drog in rekommendation {id} version {version} ({entry}, {visibility})")
        if header.tombstone
        else _("publicerade rekommendation {id} version {version} ({entry}, {visibility})")
    )
    click.echo(
        what.format(
            id=header.id,
            version=header.version,
            entry=f"{parsed.origin}#{parsed.sequence}",
            visibility=VISIBILITY.label(header.visibility, language()),
        )
        + _("; signerad med hubbens nyckel"),
        err=err,
    )


@recommend.command(
    "add",
    help=help_parts(
        N_(
            "Publicera en ny rekommendation som en post i hubbens eget flöde (ursprung 0000)."
            "\n\nObligatoriska fält som saknas bland flaggorna efterfrågas när stdin är en "
            "terminal (eller med --interactive). Nya rekommendationer syns för medlemmar om "
            "inte --visibility säger något annat."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  " + _EXAMPLE,
    ),
    epilog=EXIT_CODES_HELP,
)
@field_options(BODY)
@_body_option
@click.option(
    "--interactive", "-i", is_flag=True, help=N_("Fråga efter obligatoriska fält som saknas.")
)
@json_option
@with_hub
def recommend_add(hub: Hub, interactive: bool, as_json: bool, **params: Any) -> None:
    from samverka_hub import recommendations

    values = _values(params)
    record_id = values.pop("id", None)
    record = recommendations.draft(values, record_id=record_id)
    prompt_missing(record, BODY, interactive=interactive, origin=HUB_ORIGIN)
    node = hub.node()
    parsed = recommendations.add(node, record)
    _said(parsed, err=as_json)
    if as_json:
        print_json(record_json(recommendations.get(hub.store, parsed.record_id)))


@recommend.command(
    "edit",
    help=help_parts(
        N_(
            "Publicera en ny version av en rekommendation med de angivna fälten ändrade.\n\n"
            "Flaggor som upprepas ersätter hela listan; --clear FÄLT tömmer ett fält."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka hub recommend edit rec-generativ-ai --visibility public",
    ),
    epilog=EXIT_CODES_HELP,
)
@click.argument("record_id", metavar="ID")
@field_options(BODY, skip=("id",))
@_body_option
@clear_option(BODY)
@json_option
@with_hub
def recommend_edit(
    hub: Hub, record_id: str, clear: tuple[str, ...], as_json: bool, **params: Any
) -> None:
    from samverka_hub import recommendations

    parsed = recommendations.edit(hub.node(), record_id, _values(params), clear=clear)
    if parsed is None:
        current = recommendations.get(hub.store, record_id)
        click.echo(
            _("rekommendation {id} oförändrad (fortfarande version {version})").format(
                id=record_id, version=current.version
            ),
            err=as_json,
        )
    else:
        _said(parsed, err=as_json)
    if as_json:
        print_json(record_json(recommendations.get(hub.store, record_id)))


@recommend.command(
    "retire",
    help=N_(
        "Dra tillbaka en rekommendation: en signerad gravstensversion. Inget raderas; "
        "noderna behåller dess historik."
    ),
    epilog=EXIT_CODES_HELP,
)
@click.argument("record_id", metavar="ID")
@with_hub
def recommend_retire(hub: Hub, record_id: str) -> None:
    from samverka_hub import recommendations

    _said(recommendations.retire(hub.node(), record_id), err=False)


@recommend.command("list", help=N_("Rådets rekommendationer, den senast ändrade först."))
@click.option("--include-retired", is_flag=True, help=N_("Lista också indragna."))
@json_option
@with_hub
def recommend_list(hub: Hub, include_retired: bool, as_json: bool) -> None:
    from samverka_hub import recommendations

    rows = recommendations.listing(hub.store, include_retired=include_retired)
    if as_json:
        print_json([record_json(r) for r in rows])
        return
    if not rows:
        click.echo(
            _("inga rekommendationer") + ("" if include_retired else " " + _("(indragna döljs)"))
        )
        return
    table = [[_("ID"), _("V"), _("SYNLIGHET"), _("OMRÅDE"), _("TITEL")]]
    for r in rows:
        table.append(
            [
                r.record_id,
                str(r.version),
                VISIBILITY.label(r.visibility),
                SERVICE_AREA.label(r.service_area) or "-",
                ("(indragen) " if r.tombstone else "") + r.title,
            ]
        )
    print_table(table)


@recommend.command("show", help=N_("En rekommendation i sin helhet, med sin signeringsnyckel."))
@click.argument("record_id", metavar="ID")
@click.option("--history", is_flag=True, help=N_("Lista också varje version i flödet."))
@json_option
@with_hub
def recommend_show(hub: Hub, record_id: str, history: bool, as_json: bool) -> None:
    from samverka_hub import recommendations

    stored = recommendations.get(hub.store, record_id)
    versions = record_history(hub.node(), HUB_ORIGIN, record_id) if history else None
    show_record(stored, versions, as_json=as_json)


# -- stats -------------------------------------------------------------------------------


def _county_code(text: str) -> str:
    """A län by code (``20``, ``3`` for 03) or name (``Dalarna``, ``Dalarnas län``)."""
    wanted = text.strip().casefold()
    for code, county in counties().items():
        if wanted in (code, code.lstrip("0"), county.name.casefold(), county.short_name.casefold()):
            return code
    raise SamverkaError(
        _("{text!r} är inget län").format(text=text),
        hint=_("ange en länskod (01-25) eller ett namn, t.ex. 20 eller Dalarna: ")
        + ", ".join(f"{c} {v.short_name}" for c, v in counties().items()),
    )


def _pct(share: float) -> str:
    return f"{round(share * 100)} %"


def _status_line(counts: Mapping[int, int]) -> str:
    """'Pilot 3 · I drift 2': counts by use-case status, with Swedish labels."""
    return " · ".join(
        f"{USE_CASE_STATUS.label(s, language()) or _('Okänd')} {n}" for s, n in counts.items()
    )


def coverage_json(coverage: Coverage, county: str | None = None) -> dict[str, Any]:
    """The stable JSON form: English keys, vocabulary keys as values, Swedish labels beside."""

    def county_json(c: CountyCoverage) -> dict[str, Any]:
        return {
            "county_code": c.code,
            "name": c.name,
            "kommuner": c.kommuner,
            "members": c.members,
            "kommuner_with_use_cases": c.kommuner_with_use_cases,
            "share": round(c.share, 4),
            "use_cases": c.use_cases,
            "solutions": c.solutions,
        }

    def kommun_json(k: KommunCoverage) -> dict[str, Any]:
        return {
            "kommunkod": k.code,
            "name": k.name,
            "county_code": k.county_code,
            "member": k.member,
            "use_cases": k.use_cases,
            "use_cases_by_status": {
                USE_CASE_STATUS.key(s) or "unspecified": n for s, n in k.use_cases_by_status.items()
            },
            "service_areas": [SERVICE_AREA.key(a) or "unspecified" for a in k.service_areas],
            "lessons": k.lessons,
            "solutions": k.solutions,
            "adoptions": k.adoptions,
            "solutions_adopted_by_others": k.solutions_adopted_by_others,
            "population_band": POPULATION_BAND.key(k.population_band) or None,
            "kommun_group": KOMMUN_GROUP.key(k.kommun_group).upper() or None,
        }

    return {
        "view": "members" if coverage.member_view else "public",
        "kommuner_total": coverage.kommuner_total,
        "members": coverage.members,
        "kommuner_with_use_cases": coverage.kommuner_with_use_cases,
        "share": round(coverage.share, 4),
        "use_cases": coverage.use_cases,
        "lessons": coverage.lessons,
        "solutions": coverage.solutions,
        "adoptions": coverage.adoptions,
        "recommendations": coverage.recommendations,
        "use_cases_by_status": {
            USE_CASE_STATUS.key(s) or "unspecified": n
            for s, n in coverage.use_cases_by_status.items()
        },
        "service_areas": [
            {
                "area": SERVICE_AREA.key(a.service_area) or "unspecified",
                "label": SERVICE_AREA.label(a.service_area),
                "use_cases": a.use_cases,
                "kommuner": a.kommuner,
            }
            for a in coverage.areas
        ],
        "counties": [county_json(c) for c in coverage.counties if county in (None, c.code)],
        "kommuner": [kommun_json(k) for k in coverage.kommuner if county in (None, k.county_code)],
        "kommuner_with_profile": coverage.kommuner_with_profile,
        "population_bands": [
            group_json(g, POPULATION_BAND.key(g.value), POPULATION_BAND.label(g.value))
            for g in coverage.bands
        ],
        "kommun_groups": [
            group_json(g, KOMMUN_GROUP.key(g.value).upper(), KOMMUN_GROUP.label(g.value))
            for g in coverage.groups
        ],
    }


def group_json(g: GroupCoverage, key: str, label: str) -> dict[str, Any]:
    """One population band or kommungrupp in the JSON form."""
    return {
        "key": key,
        "label": label,
        "kommuner": g.kommuner,
        "members": g.members,
        "kommuner_with_use_cases": g.kommuner_with_use_cases,
        "share": round(g.share, 4),
        "use_cases": g.use_cases,
        "solutions": g.solutions,
        "adoptions": g.adoptions,
    }


def _echo_groups(coverage: Coverage) -> None:
    """Per storlek and per kommungrupp (from the kommuner's profiles): the A- and B-lag."""
    click.echo("")
    click.echo(
        _(
            "Per storlek och kommungrupp (efter kommunernas profiler: {with_profile} av "
            "{total} har en)"
        ).format(with_profile=coverage.kommuner_with_profile, total=coverage.kommuner_total)
    )
    for title, groups, vocab in (
        (_("STORLEK"), coverage.bands, POPULATION_BAND),
        (_("KOMMUNGRUPP"), coverage.groups, KOMMUN_GROUP),
    ):
        rows = [
            [
                title,
                _("KOMMUNER"),
                _("MEDLEMMAR"),
                _("DELAR"),
                _("ANDEL"),
                _("ANV.FALL"),
                _("INFÖRANDEN"),
            ]
        ]
        for g in groups:
            rows.append(
                [
                    vocab.label(g.value, language()),
                    str(g.kommuner),
                    str(g.members),
                    str(g.kommuner_with_use_cases),
                    _pct(g.share),
                    str(g.use_cases),
                    str(g.adoptions),
                ]
            )
        _print_right(rows, right=range(1, 7))


def echo_coverage(
    coverage: Coverage, *, county: str | None = None, every_kommun: bool = False, top: int = 8
) -> None:
    """Readable coverage in Swedish: totals, a row per län, the top areas, who has nothing
    yet; with ``county`` (or ``every_kommun``) a table of that län's (every län's) kommuner."""
    view = (
        _("offentliga poster och medlemsposter")
        if coverage.member_view
        else _("endast offentliga poster")
    )
    n = coverage.kommuner_total
    click.echo(_("Samverka – täckning bland Sveriges {n} kommuner ({view})").format(n=n, view=view))
    click.echo("")
    of_n = _("{count} av {n}")
    totals = [
        [
            _("Medlemmar"),
            of_n.format(count=coverage.members, n=n),
            _pct(coverage.members / n if n else 0),
        ],
        [
            _("Kommuner som delar användningsfall"),
            of_n.format(count=coverage.kommuner_with_use_cases, n=n),
            _pct(coverage.share),
        ],
        [
            _("Användningsfall"),
            str(coverage.use_cases),
            _status_line(coverage.use_cases_by_status),
        ],
        [_("Lärdomar"), str(coverage.lessons), ""],
        [_("Lösningar"), str(coverage.solutions), ""],
        [_("Införanden (återanvända lösningar)"), str(coverage.adoptions), ""],
        [_("Rådets rekommendationer"), str(coverage.recommendations), ""],
    ]
    print_table(totals)

    click.echo("")
    click.echo(_("Per län"))
    rows = [
        [
            _("LÄN"),
            _("KOMMUNER"),
            _("MEDLEMMAR"),
            _("DELAR"),
            _("ANDEL"),
            _("ANV.FALL"),
            _("LÖSNINGAR"),
        ]
    ]
    for c in coverage.counties:
        if county not in (None, c.code):
            continue
        rows.append(
            [
                f"{c.code} {c.name}",
                str(c.kommuner),
                str(c.members),
                str(c.kommuner_with_use_cases),
                _pct(c.share),
                str(c.use_cases),
                str(c.solutions),
            ]
        )
    _print_right(rows, right=range(1, 7))

    if county is None:
        _echo_groups(coverage)

    if county is not None:
        _echo_county_kommuner(coverage, county)
    elif every_kommun:
        for c in coverage.counties:
            _echo_county_kommuner(coverage, c.code)

    if county is None and coverage.areas:
        click.echo("")
        click.echo(_("Vanligaste verksamhetsområden"))
        arows = [[_("OMRÅDE"), _("KOMMUNER"), _("ANV.FALL")]]
        for a in coverage.areas[:top]:
            label = SERVICE_AREA.label(a.service_area, language()) or _("Okänt område")
            arows.append([label, str(a.kommuner), str(a.use_cases)])
        _print_right(arows, right=range(1, 3))

    nothing = [k for k in coverage.without_anything() if county in (None, k.county_code)]
    click.echo("")
    if not nothing:
        click.echo(_("Alla kommuner har delat något."))
        return
    click.echo(_("Kommuner som inte delat något ännu ({count})").format(count=len(nothing)))
    by_county: dict[str, list[str]] = {}
    for k in nothing:
        by_county.setdefault(k.county_code, []).append(k.name)
    for code, names in by_county.items():
        label = coverage.county(code).name
        click.echo(f"  {label} ({len(names)}): {', '.join(names)}")


def _echo_county_kommuner(coverage: Coverage, county: str) -> None:
    """A table of one län's kommuner: member, use cases by status, solutions, areas."""
    click.echo("")
    click.echo(_("Kommuner i {county}").format(county=coverage.county(county).name))
    rows = [
        [
            _("KOD"),
            _("KOMMUN"),
            _("MEDLEM"),
            _("ANV.FALL"),
            _("STATUS"),
            _("LÖSN."),
            _("INFÖR."),
            _("OMRÅDEN"),
        ]
    ]
    for k in coverage.kommuner:
        if k.county_code != county:
            continue
        rows.append(
            [
                k.code,
                k.name,
                bool_label(k.member, language()),
                str(k.use_cases),
                _status_line(k.use_cases_by_status) or "-",
                str(k.solutions),
                str(k.adoptions),
                ", ".join(SERVICE_AREA.label(a, language()) for a in k.service_areas) or "-",
            ]
        )
    print_table(rows)


def _print_right(rows: list[list[str]], *, right: range) -> None:
    """A table with the columns in ``right`` aligned to the right (numbers)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        click.echo("  ".join(cells).rstrip())


@click.command(
    "stats",
    help=help_parts(
        N_(
            "Täckning bland alla 290 kommuner: medlemmar, vilka som delar användningsfall "
            "(per status och verksamhetsområde), lösningar och införanden, per län, storlek "
            "och kommungrupp: vilka som ligger före och vilka som halkar efter.\n\n"
            "Räknar levande (inte indragna) poster. Operatören ser OFFENTLIGA poster och "
            "MEDLEMS-poster; --public visar det hubbens publika port berättar för vem som "
            "helst (bara offentliga poster). Med --county förblir summorna nationella och "
            "listorna (även i --json) håller bara det länet."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka hub stats\n"
        "  samverka hub stats --county Dalarna\n"
        "  samverka hub stats --kommuner\n"
        "  samverka hub stats --json",
    ),
)
@click.option(
    "--county", metavar="LÄN", help=N_("Ett län (kod eller namn): dess kommuner i sin helhet.")
)
@click.option(
    "--kommuner",
    "every_kommun",
    is_flag=True,
    help=N_("En tabell över varje kommun, en per län."),
)
@click.option("--public", "public_view", is_flag=True, help=N_("Räkna bara offentliga poster."))
@json_option
@with_hub
def stats(
    hub: Hub, county: str | None, every_kommun: bool, public_view: bool, as_json: bool
) -> None:
    from samverka_hub.insight import hub_coverage

    code = _county_code(county) if county else None
    directory = hub.council.current_directory()
    coverage = hub_coverage(hub.store, directory, member_view=not public_view)
    if as_json:
        print_json(coverage_json(coverage, code))
    else:
        echo_coverage(coverage, county=code, every_kommun=every_kommun)


# -- search ------------------------------------------------------------------------------


def hits_json(hits: list[FederationHit]) -> list[dict[str, Any]]:
    return [
        {
            "origin": f.hit.origin,
            "origin_name": kommun_name(f.hit.origin),
            "id": f.hit.record_id,
            "kind": RECORD_KIND.key(f.hit.kind),
            "version": f.version,
            "title": f.hit.title,
            "summary": f.hit.summary,
            "visibility": VISIBILITY.key(f.hit.visibility),
            "rank": f.hit.rank,
        }
        for f in hits
    ]


def echo_hits(text: str, hits: list[FederationHit]) -> None:
    if not hits:
        click.echo(_("inget hittades för {text!r}").format(text=text))
        return
    for f in hits:
        h = f.hit
        click.echo(
            f"{h.origin}/{h.record_id}  {RECORD_KIND.label(h.kind, language())} · "
            f"{kommun_name(h.origin)} · {VISIBILITY.label(h.visibility, language())} · "
            + _("version {version}").format(version=f.version)
        )
        click.echo(f"  {h.title}")
        if h.summary:
            summary = h.summary if len(h.summary) <= 160 else h.summary[:157] + "…"
            click.echo(f"  {summary}")


@click.command(
    "search",
    help=help_parts(
        N_(
            "Sök i hela federationen som hubben har den (varje medlems poster).\n\n"
            'Varje ord måste matcha (som början av ett ord, så "äldre" hittar '
            '"äldreomsorg"); å, ä och ö är egna bokstäver. Indragna poster och utkast hittas '
            "aldrig. --public söker bara i det som hubbens publika port visar vem som helst."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        '\n  samverka hub search "äldreomsorg"\n'
        '  samverka hub search "chatt" --kind usecase --origin 1472 --json',
    ),
)
@click.argument("text")
@filter_options
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.option("--public", "public_view", is_flag=True, help=N_("Bara offentliga poster."))
@json_option
@with_hub
def search(
    hub: Hub,
    text: str,
    kinds: tuple[str, ...],
    origins: tuple[str, ...],
    area: str | None,
    limit: int,
    public_view: bool,
    as_json: bool,
) -> None:
    from samverka_hub.insight import SearchQuery, federation_search

    filters = parse_filters(kinds, origins, area)
    query = SearchQuery(
        text=text,
        kinds=filters.kinds,
        origins=filters.origins,
        service_areas=filters.service_areas,
        limit=limit,
    )
    hits = federation_search(hub.store, query, member=not public_view)
    if as_json:
        print_json(hits_json(hits))
    else:
        echo_hits(text, hits)
