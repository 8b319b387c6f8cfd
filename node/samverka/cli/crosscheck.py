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
from samverka.protocol.kommuner import is_origin, kommun_name
from samverka.replication.crosscheck import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    Agreement,
    MismatchKind,
    SourceKind,
    ViewStatus,
)

if TYPE_CHECKING:
    from samverka.replication.crosscheck import (
        CrossCheck,
        HeadMismatch,
        OriginCheck,
        Source,
    )


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
        names = "; ".join(f"{_label(v.source)}: {v.detail}" for v in split)
        return SamverkaError(
            _("delad vy av hubbens transparenslogg: {names}").format(names=names),
            hint=_(
                "båda signerade kontrollpunkterna sparas i {path} (dess README.txt säger "
                "hur vem som helst kan kontrollera dem); den här noden kontrasignerar inget "
                "mer förrän tlog/halted tas bort. Skicka mappen till rådet"
            ).format(path=split[0].evidence),
        )
    mismatched = result.mismatched
    if mismatched:
        names = ", ".join(f"{o.origin} ({o.status.value})" for o in mismatched)
        return SamverkaError(
            _("{feeds} skiljer sig från det den här noden har: {names}").format(
                feeds=counted(len(mismatched), N_("flöde"), N_("flöden")), names=names
            ),
            hint=_hint(mismatched[0])
            if len(mismatched) == 1
            else _(
                "se pilraden under varje ursprung ovan; kör `samverka sync` först, sedan "
                "`samverka crosscheck` igen: det som står kvar är undanhållet (efter) eller "
                "förgrenat"
            ),
        )
    failed = result.failed_sources
    if failed:
        names = "; ".join(
            _("{source} på {address}: {error}").format(
                source=_label(a.source), address=a.source.address, error=a.error
            )
            for a in failed
        )
        return TransportError(
            _("kunde inte fråga {names}").format(names=names),
            hint=_(
                "kontrollera nätet dit och att den är igång (`samverka doctor` kontrollerar "
                "vägen till hubben)"
            ),
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
        lines.append(f"{_MARK[check.status]:<6}  {_origin_name(check)}  {_describe(check)}")
        if check.mismatches:
            lines.append(f"{'':<6}  {'':<20}  → {_hint(check)}")
    for answer in result.failed_sources:
        lines.append(
            _("{source} på {address}: {error}").format(
                source=_label(answer.source), address=answer.source.address, error=answer.error
            )
        )
    for view in result.views:
        if view.status is ViewStatus.SPLIT_VIEW:
            lines.append(
                "SPLIT   "
                + _("hubbens logg som {source} har den: {detail}").format(
                    source=_label(view.source), detail=view.detail
                )
            )
            lines.append(f"{'':<6}  " + _("bevisen sparade i {path}").format(path=view.evidence))
        elif not quiet and view.status is ViewStatus.UNCHECKED:
            lines.append(
                "?       "
                + _("hubbens logg som {source} har den: {detail}").format(
                    source=_label(view.source), detail=view.detail
                )
            )
    lines.append(_summary(result))
    return lines


# -- the per-origin lines in the reader's language (--json keeps the core's labels) --------


def _genitive(name: str) -> str:
    """A kommun's name as owner: "Moras", "Västerås"."""
    return name if name[-1:].lower() in ("s", "x", "z") else f"{name}s"


def _label(source: Source) -> str:
    """How the lines name ``source`` (the JSON's ``source`` is the core's label)."""
    if source.kind is SourceKind.HUB:
        return _("hubben")
    if not source.origin:
        return _("noden på {address}").format(address=source.address)
    name = kommun_name(source.origin)
    if source.kind is SourceKind.ORIGIN:
        return _("{owner} nod").format(owner=_genitive(name), name=name)
    return _("{owner} nod ({address})").format(
        owner=_genitive(name), name=name, address=source.address
    )


def _and(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return _("{items} och {last}").format(items=", ".join(items[:-1]), last=items[-1])


def _mismatch(check: OriginCheck, mismatch: HeadMismatch) -> str:
    labels = {v.source.label: _label(v.source) for v in check.verdicts}
    source = labels.get(mismatch.source, mismatch.source)
    if mismatch.kind is MismatchKind.BEHIND:
        return _(
            "{origin}#{sequence}: {source} har flödet till #{theirs}, vi bara till #{ours}: "
            "posterna #{sequence}..#{theirs} har undanhållits oss eller inte nått oss än"
        ).format(
            origin=mismatch.origin,
            sequence=mismatch.sequence,
            source=source,
            theirs=mismatch.theirs,
            ours=mismatch.ours,
        )
    return _(
        "{origin}#{theirs}: {source} har en annan post på det här numret än vi: flödet har "
        "två historier"
    ).format(origin=mismatch.origin, theirs=mismatch.theirs, source=source)


def _describe(check: OriginCheck) -> str:
    """One line: the head and who agrees, or each mismatch (OriginCheck.describe, in
    the reader's language)."""
    if check.mismatches:
        return "; ".join(_mismatch(check, m) for m in check.mismatches)
    agreeing = [_label(v.source) for v in check.verdicts if v.status is Agreement.AGREE]
    if check.ours:
        text = _("vi har #{sequence}").format(sequence=check.ours)
    else:
        text = _("vi har inget av flödet")
    if agreeing:
        text += _(", i samstämmighet med {sources}").format(sources=_and(agreeing))
    if check.own:
        text += _(" (vårt eget flöde)")
        behind_us = [
            _("{source} har #{sequence}").format(source=_label(v.source), sequence=v.theirs)
            for v in check.verdicts
            if v.status is Agreement.AGREE and v.theirs < check.ours
        ]
        if behind_us:
            text += "; " + _("{sources}: inte skickat än").format(sources=_and(behind_us))
    missing = [
        _("{source} ({address}) kan inte nås: {error}").format(
            source=_label(v.source), address=v.source.address, error=v.error
        )
        for v in check.verdicts
        if v.status is Agreement.UNREACHABLE
    ]
    if missing:
        text += "; " + "; ".join(missing)
    return text


def _hint(check: OriginCheck) -> str:
    """What to do about a mismatch (OriginCheck.hint, in the reader's language)."""
    forks = [m for m in check.mismatches if m.kind is MismatchKind.FORK]
    behind = [m for m in check.mismatches if m.kind is MismatchKind.BEHIND]
    name = check.name
    if forks and check.own:
        return _(
            "vårt eget flöde har två historier: publicera inget från den här noden förrän "
            "det är utrett; en annan kopia av nodmappen (en gammal säkerhetskopia, en klon) "
            "publicerade, eller signeringsnyckeln är i andra händer; säg till rådet "
            "(AI-rådet), se docs/OPERATIONS.md, 'Restoring a node'"
        )
    if forks:
        return _(
            "två historier av {name}s flöde finns, och bara dess signeringsnyckel kan ha "
            "signerat båda: säg till {name}s driftansvariga (en nodmapp återställd eller "
            "kopierad och publicerad från två gånger, eller en stulen nyckel) och rådet "
            "(AI-rådet)"
        ).format(name=name)
    if not behind:
        return ""
    if check.own:
        return _(
            "källan har mer av vårt eget flöde än den här noden (återställd från en äldre "
            "säkerhetskopia?): publicera inget; kör `samverka sync` för att ta tillbaka "
            "posterna"
        )
    first = min(m.sequence for m in behind)
    last = max(m.theirs for m in behind)
    entries = f"#{first}..#{last}" if first < last else f"#{first}"
    if any(
        v.source.kind is SourceKind.HUB and v.status is Agreement.BEHIND for v in check.verdicts
    ):
        return _(
            "hubben annonserar {entries}: kör `samverka sync`; om noden fortfarande ligger "
            "efter sedan, annonserar hubben poster den inte lämnar ut (undanhållande): säg "
            "till rådet (AI-rådet)"
        ).format(entries=entries)
    return _(
        "hubben visar inte {entries}: {name} har kanske inte skickat dem än; kör "
        "`samverka sync` och `samverka crosscheck` igen senare; om det står kvar "
        "undanhåller hubben dem: säg till rådet (AI-rådet) och {name}"
    ).format(entries=entries, name=name)


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
