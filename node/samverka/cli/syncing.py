"""``samverka sync``: bring this node and the hub up to date with each other.

Pulls everything new in the hub's log into this node's mirror, verifying every entry
against its origin's key from the (freshly fetched) member directory and proving it in
the hub's transparency log, then pushes this node's own new entries to the hub.
``--repair`` then fetches what the hub withholds from the origins' own nodes;
``--follow`` keeps following the hub live.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
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
from samverka.cli.crosscheck import _peers
from samverka.cli.syncfilter import Selection, chosen_section, filter_options
from samverka.errors import SamverkaError
from samverka.i18n import N_, NP_, PLURAL, _, language

if TYPE_CHECKING:
    from samverka.errors import EntryRefused
    from samverka.node import Node
    from samverka.protocol.inclusion import InclusionRefused
    from samverka.replication.push import PushReport
    from samverka.replication.repair import RepairReport
    from samverka.replication.sync import SyncReport, SyncStopped
    from samverka.store.store import Store


class CursorBeyondHub(SamverkaError):
    """This node's cursor lies past the end of the hub's log (exit 1, refused): reset it."""

    reason = "cursor_ahead"

    @classmethod
    def at(cls, cursor: int, log_end: int) -> CursorBeyondHub:
        ends = _("slutar vid {end}").format(end=log_end) if log_end >= 0 else _("slutar före den")
        return cls(
            _(
                "noden har läst hubbens logg till position {cursor}, men hubbens logg {ends} "
                "(cursor_ahead): hubben återställdes från en äldre säkerhetskopia, eller så "
                "svarar en annan server på dess adress"
            ).format(cursor=cursor, ends=ends),
            hint=_(
                "när hubben är den rätta: `samverka sync --reset-cursor` läser dess logg "
                "från början igen (poster som redan finns hoppas över som dubbletter)"
            ),
        )


class HubCannotProve(SamverkaError):
    """The hub served an entry (or a member-directory version) it cannot prove is in its
    transparency log (exit 7): ``not_in_log`` or ``bad_proof``. Everything before it
    was stored; a directory version is not kept."""

    def __init__(self, stopped: SyncStopped | InclusionRefused) -> None:
        from samverka.protocol.inclusion import NotInLog
        from samverka.replication.sync import SyncStopped

        self.reason = stopped.reason.value
        self.origin, self.sequence = stopped.origin, stopped.sequence
        what = (
            _("posten {entry}").format(entry=f"{stopped.origin}#{stopped.sequence}")
            if stopped.origin
            else _("katalogversion {version}").format(version=stopped.sequence)
        )
        if isinstance(stopped, SyncStopped):
            refusal: EntryRefused = stopped.refusal
            stored = _(
                "Allt före den är lagrat (hubbens logg läst till position {position}), inget "
                "från den och framåt."
            ).format(position=stopped.report.position)
        else:
            refusal = stopped
            stored = _("Den här noden behåller katalogversionen den hade.")
        if isinstance(refusal, NotInLog):
            if refusal.checkpoint_size is None:
                held = _("den här noden har inte godtagit någon kontrollpunkt av hubbens logg")
            else:
                held = _(
                    "ingen kontrollpunkt som den här noden har godtagit innehåller den (den "
                    "nyaste har {size} löv)"
                ).format(size=refusal.checkpoint_size)
            waited = (
                f"{refusal.waited:g}".replace(".", ",")
                if language() == "sv"
                else (f"{refusal.waited:g}")
            )
            text = _(
                "hubben kan inte bevisa att {what} finns i dess transparenslogg (not_in_log): "
                "{held}, inte heller efter {waited} s väntan på en nyare."
            ).format(what=what, held=held, waited=waited)
            if refusal.refused_checkpoint:
                text += " " + _("Hubbens nyaste kontrollpunkt godtogs inte: {why}.").format(
                    why=refusal.refused_checkpoint
                )
            hint = _(
                "hubben undanhåller posten från vittnena (kommunerna som kontrasignerar "
                "loggen) eller visar den här noden en annan historik än de andra. Kör "
                "`samverka sync` igen om en stund; kvarstår felet, spara raden och meddela "
                "AI-rådet. `samverka sync --repair` hämtar posten från ursprungets nod; "
                "den behöver sedan inget bevis från hubben"
            )
        else:
            text = _(
                "hubbens bevis för att {what} finns i dess transparenslogg håller inte "
                "(bad_proof): {detail}."
            ).format(what=what, detail=stopped.detail)
            hint = _(
                "hubben svarade med ett inklusionsbevis som inte leder till den godtagna "
                "kontrollpunktens rot: spara felmeddelandet och meddela AI-rådet"
            )
        super().__init__(f"{text} {stored}", hint=hint)

    @classmethod
    def wrap(cls, exc: SamverkaError) -> SamverkaError:
        """``exc`` as this error when it is such a refusal, else ``exc`` itself."""
        from samverka.protocol.inclusion import InclusionRefused
        from samverka.replication.sync import SyncStopped

        if isinstance(exc, SyncStopped | InclusionRefused) and exc.reason.value in (
            "not_in_log",
            "bad_proof",
        ):
            return cls(exc)
        return exc


SYNC_HELP = N_(
    "Hämta federationens nya poster från hubben, verifierade, till nodens spegel; skicka "
    "sedan nodens egna nya poster till hubben.\n"
    "\n"
    "Medlemskatalogen hämtas först, så att nycklarna för kommuner som anslutits sedan är "
    "kända. Efteråt täcker `samverka search` både egna och speglade poster.\n"
    "\n"
    "\b\n"
    "Exempel:\n"
    "  samverka sync\n"
    "  samverka sync --follow --quiet\n"
    "  samverka sync --reset-cursor      # hubben återställdes: läs dess logg igen\n"
    "  samverka sync --repair            # hämta också det hubben håller inne\n"
    "  samverka sync --area äldreomsorg --kind lösning   # selektivt: se [sync]"
)

#: Redraw the progress line at most this often (seconds).
REDRAW_SECONDS = 0.2


@click.command(
    "sync",
    epilog=help_parts(
        N_(
            "\b\n"
            "Tillit: hubben vidarebefordrar poster men kan inte ändra dem obemärkt. En post vars\n"
            "signatur inte stämmer med ursprungets (eller som bryter flödets hashkedja) stoppar\n"
            "synken med slutkod 1 och namnger ursprung och nummer; allt före den behålls, inget\n"
            "efter. Varje post från hubben måste också bevisas i en kontrollpunkt av hubbens\n"
            "transparenslogg som noden har godtagit (kontrasignerad av [witness] quorum andra\n"
            "kommuner); en som hubben inte kan bevisa stoppar synken med slutkod 7 (not_in_log,\n"
            "efter att ha väntat [witness] proof_wait_seconds på en nyare kontrollpunkt;\n"
            "bad_proof).\n"
            "\b\n"
            "Undanhållande: en hubb kan ändå lämna ut ett kortare flöde än den har. --repair\n"
            "frågar varje ursprungs egen nod (adressen i medlemskatalogen) och varje --peer om\n"
            "deras huvuden, och hämtar det de har utöver noden från dem, verifierat som alltid\n"
            "(det finns inte i hubbens logg, och det sägs). Den kontaktar varje medlemsnod med\n"
            "en adress, var och en inom 10 s.\n"
            "\n"
        ),
        EXIT_CODES_HELP,
    ),
    help=SYNC_HELP,
)
@dir_option
@click.option(
    "--follow",
    is_flag=True,
    help=N_("Fortsätt följa hubben live efter att ha kommit ikapp, tills Ctrl-C eller SIGTERM."),
)
@click.option(
    "--no-push",
    is_flag=True,
    help=N_("Hämta bara; lämna nodens nya poster till senare."),
)
@click.option(
    "--reset-cursor",
    is_flag=True,
    help=N_(
        "Läs hubbens logg från början igen (efter att hubben återställts från en äldre "
        "säkerhetskopia: felet cursor_ahead). Poster som redan finns hoppas över som dubbletter."
    ),
)
@click.option(
    "--repair",
    is_flag=True,
    help=N_(
        "Hämta efter synken det som hubben håller inne (en kommuns egen nod eller en "
        "--peer har mer av dess flöde) direkt från de noderna, verifierat som vanligt."
    ),
)
@click.option(
    "--peer",
    "peers",
    multiple=True,
    callback=_peers,
    metavar="HOST:PORT",
    help=N_(
        "Med --repair: fråga också den här medlemsnoden (ömsesidig TLS) och hämta från "
        "den (upprepa för fler)."
    ),
)
@filter_options
@click.option("--quiet", "-q", is_flag=True, help=N_("Skriv inget utom fel."))
@json_option
def sync(
    node_dir: Path,
    follow: bool,
    no_push: bool,
    reset_cursor: bool,
    repair: bool,
    peers: list[str],
    origins: tuple[str, ...],
    kinds: tuple[str, ...],
    areas: tuple[str, ...],
    take_all: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Pull from the hub, then push (the help people read is SYNC_HELP)."""
    import uvloop

    from samverka.membership.mirror import HUB_PEER
    from samverka.membership.monitor import raise_open_alarms

    if peers and not repair:
        raise click.UsageError(_("--peer hör till --repair"))
    from samverka.replication.selective import SyncFilter, reread_if_wider

    with open_node(node_dir) as node:
        # Selective sync: the options win over [sync] for this run (and its --follow).
        section = chosen_section(node.config.sync, origins, kinds, areas, take_all)
        node.config = replace(node.config, sync=section)
        selection = Selection(SyncFilter.from_section(section))
        selection.reread = reread_if_wider(node)
        if reset_cursor:
            was = node.store.get_cursor(HUB_PEER)
            node.store.set_cursor(HUB_PEER, 0)
            if not (quiet or as_json):
                click.echo(
                    _("hubbens markör flyttad från {was} till 0: läser hubbens logg igen").format(
                        was=was
                    )
                )
        show = _Display(node.store, quiet=quiet or as_json)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            try:
                outcome = runner.run(
                    _sync(
                        node,
                        show,
                        push=not no_push,
                        follow=follow,
                        repair=repair,
                        peers=peers,
                        selection=selection,
                    )
                )
            except SamverkaError as exc:
                # What the monitor found outranks why the sync stopped (often the same
                # thing: an entry of this kommun signed with a key it never held).
                raise_open_alarms(node.config, cause=exc)
                raise
    if as_json:
        print_json(outcome.as_json())
    elif not quiet:
        click.echo(outcome.describe())
    # The monitor's alarms (this run's or earlier, not yet handled) decide the exit code.
    raise_open_alarms(node.config, cause=outcome.push_error)
    if outcome.push_error is not None:
        # The pull is done and reported; the push's failure decides the exit code.
        raise outcome.push_error


@dataclass
class _Outcome:
    pulled: SyncReport
    seconds: float
    origins: list[str]
    directory_version: int
    pushed: PushReport | None = None
    push_error: SamverkaError | None = None
    followed: SyncReport | None = None
    repaired: RepairReport | None = None
    selection: Selection | None = None

    @property
    def rate(self) -> float:
        return self.pulled.received / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "peer": self.pulled.peer,
            "accepted": self.pulled.accepted,
            "duplicates": self.pulled.duplicates,
            "stand_ins_filled": self.pulled.stand_ins_filled,
            "start_position": self.pulled.start_position,
            "position": self.pulled.position,
            "gaps_filled": self.pulled.gaps_filled,
            "origins": self.origins,
            "seconds": round(self.seconds, 3),
            "entries_per_second": round(self.rate, 1),
            "directory_version": self.directory_version,
            "proven": self.pulled.proven,
            "checkpoint_size": self.pulled.checkpoint_size or None,
            "repaired": None
            if self.repaired is None
            else [r.as_json() for r in self.repaired.repairs],
            "pushed": None,
            "push_error": str(self.push_error) if self.push_error is not None else None,
        }
        if self.selection is not None:
            data.update(self.selection.as_json())
        if self.pushed is not None:
            data["pushed"] = {
                "accepted": self.pushed.accepted,
                "duplicates": self.pushed.duplicates,
                "hub_sequence": self.pushed.hub_sequence,
                "seconds": round(self.pushed.seconds, 3),
            }
        if self.followed is not None:
            data["followed"] = {
                "accepted": self.followed.accepted,
                "position": self.followed.position,
            }
        return data

    def describe(self) -> str:
        p = self.pulled
        lines = [
            _(
                "hämtade {entries} ({duplicates} fanns redan) från {origins} på {seconds} s "
                "({rate} poster/s); hubbens markör {position}, katalogversion {version}"
            ).format(
                entries=counted(p.accepted, N_("ny post"), N_("nya poster")),
                duplicates=p.duplicates,
                origins=counted(len(self.origins), N_("ursprung"), NP_(PLURAL, "ursprung")),
                seconds=f"{self.seconds:.1f}",
                rate=f"{self.rate:.0f}",
                position=p.position,
                version=self.directory_version,
            )
        ]
        if p.gaps_filled:
            lines.append(
                _("fyllde {gaps} genom att be om posterna som saknades").format(
                    gaps=counted(p.gaps_filled, N_("lucka"), N_("luckor"))
                )
            )
        if p.stand_ins_filled:
            lines.append(
                _("fyllde i {entries} som hittills bara fanns som maskade ersättare").format(
                    entries=counted(p.stand_ins_filled, N_("post"), N_("poster"))
                )
            )
        if self.selection is not None:
            lines.extend(self.selection.describe())
        if self.pushed is not None:
            lines.append(
                _(
                    "skickade {entries} av våra egna ({duplicates} fanns redan); hubben har "
                    "vårt flöde till #{sequence}"
                ).format(
                    entries=counted(self.pushed.accepted, N_("ny post"), N_("nya poster")),
                    duplicates=self.pushed.duplicates,
                    sequence=self.pushed.hub_sequence,
                )
            )
        if self.push_error is not None:
            lines.append(_("att skicka till hubben misslyckades (se nedan)"))
        if p.proven:
            lines.append(
                _(
                    "bevisade {proven} poster i hubbens transparenslogg (godtagen "
                    "kontrollpunkt: {size} löv)"
                ).format(proven=p.proven, size=p.checkpoint_size)
            )
        if self.repaired is not None:
            lines.extend(r.describe() for r in self.repaired.repairs)
            if not self.repaired.repairs:
                lines.append(
                    _(
                        "reparation: inget att hämta; ingen ursprungsnod eller --peer har mer "
                        "än hubben lämnat ut"
                    )
                )
        if self.followed is not None:
            lines.append(
                _("följde hubben: {entries}").format(
                    entries=counted(self.followed.accepted, N_("post till"), N_("poster till"))
                )
            )
        return "\n".join(lines)


async def _sync(
    node: Node,
    show: _Display,
    *,
    push: bool,
    follow: bool,
    repair: bool = False,
    peers: list[str] | None = None,
    selection: Selection | None = None,
) -> _Outcome:
    from samverka.membership.mirror import hub_client, refresh, sync_from_hub
    from samverka.replication.selective import SelectiveFeed

    try:
        update = await refresh(node)
    except SamverkaError as exc:
        wrapped = HubCannotProve.wrap(exc)
        if wrapped is exc:
            raise
        raise wrapped from exc
    started = time.monotonic()
    client = hub_client(node)
    try:
        heads = await client.get_heads([node.origin])
        cursor = await asyncio.to_thread(node.store.get_cursor, "hub")
        if cursor > heads.log_position:
            raise CursorBeyondHub.at(cursor, heads.log_position)
        show.begin(total=max(0, heads.log_position - cursor))
        with show.active():
            try:
                result = await sync_from_hub(node, progress=show.pulled, client=client)
            except SamverkaError as exc:
                if getattr(exc, "reason", "") == CursorBeyondHub.reason:
                    raise CursorBeyondHub.at(cursor, -1) from exc
                wrapped = HubCannotProve.wrap(exc)
                if wrapped is not exc:
                    if repair:
                        # What the hub cannot prove may be had from its origin's node;
                        # held, it needs no proof from the hub on the next sync.
                        await _repair_before_failing(node, show, peers or [])
                    raise wrapped from exc
                raise
    finally:
        await client.close()
    outcome = _Outcome(
        pulled=result.report,
        seconds=time.monotonic() - started,
        origins=await asyncio.to_thread(show.origins_changed),
        directory_version=update.directory.version,
        selection=selection,
    )
    if selection is not None and isinstance(client, SelectiveFeed):
        selection.left_out = client.left_out
    if push:
        try:
            outcome.pushed = await _push(node)
        except SamverkaError as err:
            outcome.push_error = err
    if repair:
        from samverka.replication.repair import repair_withheld

        show.say("letar efter poster som hubben håller inne (ursprungens noder, --peer)")
        outcome.repaired = await repair_withheld(node, peers=peers or ())
        outcome.origins = await asyncio.to_thread(show.origins_changed)
    if follow:
        outcome.followed = await _follow(node, show)
    return outcome


async def _repair_before_failing(node: Node, show: _Display, peers: list[str]) -> None:
    from samverka.replication.repair import repair_withheld

    show.say("hämtar det hubben inte kan bevisa från ursprungens noder (--repair)")
    repaired = await repair_withheld(node, peers=peers)
    for done in repaired.repairs:
        show.say(done.describe())


async def _push(node: Node) -> PushReport:
    from samverka.replication.push import push_feed
    from samverka.transport.hubclient import HubClient

    async with HubClient.member(node.config) as link:
        return await push_feed(node.store, node.origin, link)


async def _follow(node: Node, show: _Display) -> SyncReport:
    from samverka.membership.mirror import follow_hub

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    show.say("following the hub (Ctrl-C to stop)")
    try:
        return await follow_hub(node, stop=stop, on_entries=show.followed)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@dataclass
class _Display:
    """Progress on stderr: a bar on a terminal (entries, origins, rate), else nothing."""

    store: Store
    quiet: bool
    total: int = 0
    _before: dict[str, int] = field(default_factory=dict)
    _bar: Any = None
    _shown: int = 0
    _started: float = 0.0
    _drawn: float = 0.0
    _origins: int = 0

    def begin(self, total: int) -> None:
        self.total = total
        self._before = {h.origin: h.sequence for h in self.store.heads()}
        self._started = time.monotonic()

    @property
    def terminal(self) -> bool:
        return not self.quiet and sys.stderr.isatty()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        if not self.terminal or self.total == 0:
            yield
            return
        bar: Any = click.progressbar(
            length=self.total,
            label=_("synkar från hubben"),
            file=sys.stderr,
            item_show_func=lambda _: self._status(),
        )
        with bar:
            self._bar = bar
            try:
                yield
            finally:
                self._bar = None

    def _status(self) -> str:
        seconds = max(time.monotonic() - self._started, 1e-6)
        return _("{entries} poster, {origins} ursprung, {rate}/s").format(
            entries=self._shown, origins=self._origins, rate=f"{self._shown / seconds:.0f}"
        )

    def pulled(self, report: SyncReport) -> None:
        if self._bar is None:
            return
        now = time.monotonic()
        moved = report.position - report.start_position
        if now - self._drawn < REDRAW_SECONDS and moved < self.total:
            return
        self._drawn = now
        self._origins = len(self.origins_changed())
        step = min(moved, self.total) - self._shown
        self._shown += step
        self._bar.update(step, None)

    def origins_changed(self) -> list[str]:
        """Origins whose feed moved since the sync began."""
        return sorted(
            h.origin for h in self.store.heads() if h.sequence != self._before.get(h.origin, 0)
        )

    def followed(self, positions: list[int]) -> None:
        if not self.quiet and positions:
            click.echo(
                _("+{entries} från hubben (loggposition {position})").format(
                    entries=counted(len(positions), N_("post"), N_("poster")),
                    position=positions[-1],
                )
            )

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)
