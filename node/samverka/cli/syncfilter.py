"""``samverka sync --origin/--kind/--area/--all``: selective sync for people (issue 14).

The options override the node's ``[sync]`` section for one run (``--all``: take
everything); :mod:`samverka.replication.selective` does the work and this module says,
in Swedish, what the node left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from samverka.config import SyncSection
from samverka.i18n import N_, NP_, PLURAL, _, plural_word
from samverka.protocol.kommuner import is_origin
from samverka.protocol.vocab import RECORD_KIND, SERVICE_AREA, UnknownTerm, Vocabulary

if TYPE_CHECKING:
    from samverka.replication.selective import LeftOut, SyncFilter

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(command: F) -> F:
    """The four options of a selective sync, in Swedish."""
    options = [
        click.option(
            "--origin",
            "origins",
            multiple=True,
            metavar="KOMMUNKOD",
            help=N_(
                "Ta bara emot den här kommunens poster (kommunkod, 0000 för AI-rådet; "
                "upprepa för fler). Andra kommuners poster skickas inte alls."
            ),
        ),
        click.option(
            "--kind",
            "kinds",
            multiple=True,
            metavar="TYP",
            help=N_(
                "Ta bara emot poster av den här typen (t.ex. lösning, användningsfall, "
                "lärdom; upprepa för fler). Övriga sparas som stubbar (ursprung, nummer, hash) "
                "så att kedjorna ändå kontrolleras."
            ),
        ),
        click.option(
            "--area",
            "areas",
            multiple=True,
            metavar="OMRÅDE",
            help=N_(
                "Ta bara emot poster inom det här verksamhetsområdet (t.ex. äldreomsorg, "
                "skola; upprepa för fler). Poster utan område (införanden) tas emot."
            ),
        ),
        click.option(
            "--all",
            "take_all",
            is_flag=True,
            help=N_("Ta emot allt och bortse från [sync] i samverka.toml denna gång."),
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _checked(vocabulary: Vocabulary, words: tuple[str, ...], option: str, what: str) -> None:
    for word in words:
        try:
            vocabulary.parse(word)
        except UnknownTerm as exc:
            choices = ", ".join(vocabulary.choices())
            raise click.BadParameter(
                _("{word!r} är ingen känd {what}; välj bland: {choices}").format(
                    word=word, what=_(what), choices=choices
                ),
                param_hint=option,
            ) from exc


def chosen_section(
    configured: SyncSection,
    origins: tuple[str, ...],
    kinds: tuple[str, ...],
    areas: tuple[str, ...],
    take_all: bool,
) -> SyncSection:
    """The filter of this run: the options, else ``[sync]``; ``--all``: none."""
    if take_all:
        if origins or kinds or areas:
            raise click.UsageError(
                _("--all tar emot allt: ange inte --origin, --kind eller --area")
            )
        return SyncSection()
    if not (origins or kinds or areas):
        return configured
    for origin in origins:
        if not is_origin(origin):
            raise click.BadParameter(
                _(
                    "{value!r} är ingen kommunkod (fyra siffror, t.ex. 2029; 0000 för AI-rådet)"
                ).format(value=origin),
                param_hint="--origin",
            )
    _checked(RECORD_KIND, kinds, "--kind", N_("posttyp"))
    _checked(SERVICE_AREA, areas, "--area", N_("verksamhetsområde"))
    return SyncSection(origins=origins, kinds=kinds, areas=areas)


@dataclass
class Selection:
    """What a selective sync took and left out, for the output."""

    sync_filter: SyncFilter
    #: The hub's log was read from its start again: the filter now takes more.
    reread: bool = False
    left_out: LeftOut | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "filter": self.sync_filter.as_json() if self.sync_filter.active else None,
            "reread_from_start": self.reread,
            "left_out": self.left_out.as_json() if self.left_out is not None else None,
        }

    def describe(self) -> list[str]:
        lines: list[str] = []
        if self.reread:
            lines.append(
                _(
                    "filtret tar nu emot mer än förra gången: hubbens logg lästes från början "
                    "igen (poster som redan fanns hoppades över, stubbar fylldes i)"
                )
            )
        if not self.sync_filter.active:
            return lines
        lines.append(
            _("selektiv synk: tar bara emot {what}").format(what=self.sync_filter.describe())
        )
        left = self.left_out
        if left is not None and left.stand_ins:
            kinds = ", ".join(
                f"{n} {_kind_word(kind, n)}" for kind, n in left.by_kind.most_common()
            )
            lines.append(
                _(
                    "lämnade utanför {count} poster som inte matchar ({kinds}): sparade som "
                    "stubbar med bara ursprung, nummer och hash, så att kedjorna ändå "
                    "kontrolleras"
                ).format(count=left.stand_ins, kinds=kinds)
            )
        if left is not None and left.not_read:
            lines.append(
                _(
                    "läste inte {count} poster från andra ursprung (hubben skickade dem inte)"
                ).format(count=left.not_read)
            )
        if left is not None and not (left.stand_ins or left.not_read):
            lines.append(_("inget nytt lämnades utanför"))
        lines.append(
            _("`samverka sync --all` tar emot allt (och fyller i det som lämnades utanför)")
        )
        return lines


#: A record kind's word in a count (RECORD_KIND's key: singular, plural).
_KIND_WORDS = {
    "use-case": (N_("användningsfall"), NP_(PLURAL, "användningsfall")),
    "lesson": (N_("lärdom"), N_("lärdomar")),
    "solution": (N_("lösning"), N_("lösningar")),
    "recommendation": (N_("rekommendation"), N_("rekommendationer")),
    "adoption": (N_("införande"), N_("införanden")),
}


def _kind_word(kind: int, n: int) -> str:
    words = _KIND_WORDS.get(RECORD_KIND.key(kind))
    if words is None:
        return _("okänd typ")
    return plural_word(words[0], words[1], n)
