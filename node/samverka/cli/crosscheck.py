"""``samverka crosscheck``: does the hub hand this node every feed whole?

Signatures and hash chains stop a hub from altering, reordering or dropping an
entry inside a feed, but not from withholding a feed's newest entries (or a whole
origin): what it hands out is then a valid, shorter prefix. This command compares
the heads this node holds (its own feed and its mirror, what ``samverka sync``
stored) with the hub's announced heads and with each origin's own node where the
signed member directory lists an address for it (:mod:`samverka.replication.crosscheck`).
Scheduled (e.g. daily, ``deploy/systemd/samverka-crosscheck.timer``), it is the
node operator's check that nothing is withheld.
"""

from __future__ import annotations

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
from samverka.errors import ConfigError, SamverkaError, TransportError
from samverka.i18n import N_, _
from samverka.protocol.kommuner import is_origin
from samverka.replication.crosscheck import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    Agreement,
    ViewStatus,
)

if TYPE_CHECKING:
    from samverka.replication.crosscheck import CrossCheck, OriginCheck


def _origins(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    for code in value:
        if not is_origin(code):
            raise click.BadParameter(_("{value!r} är ingen kommunkod").format(value=code))
    return list(dict.fromkeys(value))


def _peers(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    from samverka.transport.server.app import split_address

    for address in value:
        try:
            _host, port = split_address(address)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from exc
        if port == 0:
            raise click.BadParameter(
                _("{address!r}: port 0 är ingens port").format(address=address)
            )
    return list(dict.fromkeys(value))


CROSSCHECK_HELP = N_(
    "Jämför flödenas huvuden som noden har med hubbens och med varje ursprungs egen nod, "
    "för att upptäcka en hubb som undanhåller de nyaste posterna i ett flöde.\n\n"
    "Frågar hubben (GetFeedHeads över dess medlemsport) och varje medlemsnod som den "
    "signerade medlemskatalogen anger en adress för, över ömsesidig TLS med nodens "
    "certifikat; läser katalogen noden har (`samverka sync` håller den aktuell) och ändrar "
    "inget. Per ursprung: stämmer, efter (en källa har poster vi saknar: kör `samverka "
    "sync`; står det kvar undanhåller hubben dem), förgrening (två historiker av flödet) "
    "eller kan inte nås."
)


@click.command(
    "crosscheck",
    help=help_parts(
        CROSSCHECK_HELP,
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka crosscheck\n"
        "  samverka crosscheck --origin 2034 --peer orsa.example.se:7443\n"
        "  samverka crosscheck --quiet --json",
    ),
    epilog=help_parts(
        N_(
            "\b\n"
            "Slutstatus: 0 när varje flöde stämmer (en ursprungsnod som inte kan nås är\n"
            "normalt: många kommuner har ingen), 1 när en källa har mer av ett flöde än noden\n"
            "(efter) eller en annan post på ett nummer noden har (förgrening), 4 när bara\n"
            "hubben eller en --peer inte kunde tillfrågas.\n"
        ),
        EXIT_CODES_HELP,
    ),
)
@dir_option
@click.option(
    "--origin",
    "origins",
    multiple=True,
    callback=_origins,
    metavar="KOMMUN",
    help=N_("Kontrollera bara det här ursprungets flöde (upprepas) [standard: alla flöden]."),
)
@click.option(
    "--peer",
    "peers",
    multiple=True,
    callback=_peers,
    metavar="HOST:PORT",
    help=N_(
        "Fråga också den här medlemsnoden (ömsesidig TLS) om dess huvuden: dess eget flöde "
        "och dess spegel av de andra (upprepas)."
    ),
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 300),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help=N_("Sekunder varje källa får ta på sig att svara."),
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help=N_("Hur många källor som tillfrågas samtidigt."),
)
@click.option("--quiet", "-q", is_flag=True, help=N_("Skriv bara avvikelser och sammanfattningen."))
@json_option
def crosscheck(
    node_dir: Path,
    origins: list[str],
    peers: list[str],
    timeout: float,
    concurrency: int,
    quiet: bool,
    as_json: bool,
) -> None:
    """Compare feed heads with the hub and origin nodes (the help people read is
    CROSSCHECK_HELP)."""
    import asyncio

    import uvloop

    from samverka.replication.crosscheck import check_federation

    with (
        open_node(node_dir) as node,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        result = runner.run(
            check_federation(
                node, origins=origins, peers=peers, concurrency=concurrency, timeout=timeout
            )
        )
    error = _verdict(result)
    if as_json:
        print_json(_as_json(result, error))
    else:
        for line in _lines(result, quiet=quiet):
            click.echo(line)
    if error is not None:
        raise error


def _verdict(result: CrossCheck) -> SamverkaError | None:
    """The error deciding the exit code: a split view of the hub's log or a mismatch (1)
    before a transport problem (4)."""
    split = result.split_views
    if split:
        names = "; ".join(f"{v.source.label}: {v.detail}" for v in split)
        return SamverkaError(
            f"split view of the hub's transparency log: {names}",
            hint=f"both signed checkpoints are kept in {split[0].evidence} (its README.txt "
            "says how anyone can check them); this node cosigns nothing more until "
            "tlog/halted is removed. Send the folder to the council",
        )
    mismatched = result.mismatched
    if mismatched:
        names = ", ".join(f"{o.origin} ({o.status.value})" for o in mismatched)
        return SamverkaError(
            _("{feeds} skiljer sig från det den här noden har: {names}").format(
                feeds=counted(len(mismatched), N_("flöde"), N_("flöden")), names=names
            ),
            hint=mismatched[0].hint()
            if len(mismatched) == 1
            else _(
                "se pilraden under varje ursprung ovan; kör `samverka sync` först, sedan "
                "`samverka crosscheck` igen: det som står kvar är undanhållet (efter) eller "
                "förgrenat"
            ),
        )
    failed = result.failed_sources
    if failed:
        names = "; ".join(f"{a.source.label} at {a.source.address}: {a.error}" for a in failed)
        return TransportError(
            f"could not ask {names}",
            hint="check the network towards it and that it runs "
            "(`samverka doctor` checks the way to the hub)",
        )
    return None


_MARK = {
    Agreement.AGREE: "ok",
    Agreement.BEHIND: "BEHIND",
    Agreement.FORK: "FORK",
    Agreement.UNREACHABLE: "?",
}


def _lines(result: CrossCheck, *, quiet: bool) -> list[str]:
    lines = []
    for check in result.origins:
        if quiet and not check.mismatches:
            continue
        lines.append(f"{_MARK[check.status]:<6}  {_origin_name(check)}  {check.describe()}")
        if check.mismatches:
            lines.append(f"{'':<6}  {'':<20}  → {check.hint()}")
    for answer in result.failed_sources:
        lines.append(
            _("{source} på {address}: {error}").format(
                source=answer.source.label, address=answer.source.address, error=answer.error
            )
        )
    for view in result.views:
        if view.status is ViewStatus.SPLIT_VIEW:
            lines.append(
                "SPLIT   "
                + _("hubbens logg som {source} har den: {detail}").format(
                    source=view.source.label, detail=view.detail
                )
            )
            lines.append(f"{'':<6}  " + _("bevisen sparade i {path}").format(path=view.evidence))
        elif not quiet and view.status is ViewStatus.UNCHECKED:
            lines.append(
                "?       "
                + _("hubbens logg som {source} har den: {detail}").format(
                    source=view.source.label, detail=view.detail
                )
            )
    lines.append(_summary(result))
    return lines


def _origin_name(check: OriginCheck) -> str:
    return f"{check.origin} {check.name}"[:20].ljust(20)


def _summary(result: CrossCheck) -> str:
    agree = result.count(Agreement.AGREE)
    confirmed = sum(
        1 for o in result.origins if o.status is Agreement.AGREE and o.confirmed_by_origin
    )
    parts = [
        _("{feeds}: {agree} stämmer ({confirmed} bekräftade av ursprunget självt)").format(
            feeds=counted(len(result.origins), N_("flöde"), N_("flöden")),
            agree=agree,
            confirmed=confirmed,
        ),
        _("{count} efter").format(count=result.count(Agreement.BEHIND)),
        _("{count} förgrenade").format(count=result.count(Agreement.FORK)),
    ]
    if unknown := result.count(Agreement.UNREACHABLE):
        parts.append(_("{count} utan svar").format(count=unknown))
    text = ", ".join(parts)
    if result.views:
        same = sum(1 for v in result.views if v.status in (ViewStatus.AGREE, ViewStatus.CONSISTENT))
        text += "; " + _(
            "hubbens logg: {same} av {views} stämmer med kontrollpunkten vi godtog"
        ).format(same=same, views=counted(len(result.views), N_("vy"), N_("vyer")))
    if nodes := result.unreachable_nodes:
        text += "; " + _(
            "{nodes} kan inte nås härifrån (normalt: många kommuner har ingen; där gäller "
            "hubbens ord)"
        ).format(nodes=counted(len(nodes), N_("ursprungsnod"), N_("ursprungsnoder")))
    return text


def _as_json(result: CrossCheck, error: SamverkaError | None) -> dict[str, Any]:
    if error is None:
        status = "agree"
    elif result.split_views:
        status = "split_view"
    else:
        status = "transport" if isinstance(error, TransportError) else "mismatch"
    return {
        "ok": error is None,
        "status": status,
        "sources": [
            {
                "kind": a.source.kind.value,
                "source": a.source.label,
                "address": a.source.address,
                "origin": a.source.origin or None,
                "reachable": a.reachable,
                "error": a.error or None,
            }
            for a in result.answers
        ],
        "origins": [o.as_json() for o in result.origins],
        "counts": {s.value: result.count(s) for s in Agreement},
        "log_views": [v.as_json() for v in result.views],
    }
