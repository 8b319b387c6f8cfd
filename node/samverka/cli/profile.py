"""``samverka profile set|show`` and ``samverka passar``: the kommun's own profile and
what fits it.

The profile is a signed record like any other, under the fixed id ``kommunprofil``:
``set`` writes a new version with the given fields changed (the first needs the size
and the kommungrupp), ``show`` prints this kommun's or another's held profile.
``passar`` ranks what similar kommuner run (:func:`samverka.records.profile.suggestions`),
offline, from what this node holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from google.protobuf.json_format import MessageToDict

from samverka.cli._common import EXIT_CODES_HELP, help_parts, json_option, print_json, with_node
from samverka.errors import SamverkaError
from samverka.i18n import N_, _, language
from samverka.protocol.aipolicy import render, rule_reasons
from samverka.protocol.kommuner import is_kommunkod, kommun_name
from samverka.protocol.validation import PROFILE_ID
from samverka.protocol.vocab import (
    KOMMUN_GROUP,
    POPULATION_BAND,
    RECORD_KIND,
    RISK_CLASS,
    SERVICE_AREA,
    VISIBILITY,
)
from samverka.records.profile import held_profile, say_reasons, suggestions
from samverka.v1 import records_pb2

if TYPE_CHECKING:
    from samverka.node import Node

R = records_pb2


@click.group(
    "profile",
    help=help_parts(
        N_(
            "Kommunens profil: storlek, kommungrupp, intresseområden, kontaktroller och "
            "AI-regler, publicerad som en signerad post (id kommunprofil)."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka profile set --storlek 10k-25k --kommungrupp C9 --intresse administration "
        "--hogsta-risk minimal --inga-personuppgifter\n  samverka profile show 2029",
    ),
)
def profile() -> None:
    pass


@profile.command(
    "set",
    help=help_parts(
        N_(
            "Publicera en ny version av kommunens profil; bara angivna fält ändras. Den "
            "första versionen kräver --storlek och --kommungrupp."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka profile set --storlek 10k-25k --kommungrupp C9 --hogsta-risk minimal",
    ),
    epilog=EXIT_CODES_HELP,
)
@click.option(
    "--storlek",
    "band",
    metavar="KLASS",
    help=help_parts(
        N_("Storleksklass efter invånare:"), f" {', '.join(POPULATION_BAND.choices())}."
    ),
)
@click.option(
    "--kommungrupp", "group", metavar="KOD", help=N_("SKR:s kommungrupp, A1–C9 (t.ex. C9).")
)
@click.option(
    "--intresse",
    "interests",
    multiple=True,
    metavar="OMRÅDE",
    help=N_("Verksamhetsområde ni söker lösningar inom (upprepas; ersätter listan)."),
)
@click.option(
    "--kontakt",
    "contacts",
    multiple=True,
    metavar="ROLL",
    help=N_("Kontaktroll, aldrig ett namn (upprepas; ersätter listan)."),
)
@click.option(
    "--hogsta-risk",
    "max_risk",
    metavar="KLASS",
    help=N_(
        "Högsta riskklass enligt AI-förordningen som kommunen accepterar "
        "(minimal, limited, high; 'ingen' tar bort gränsen)."
    ),
)
@click.option(
    "--inga-personuppgifter/--personuppgifter-tillats",
    "no_personal_data",
    default=None,
    help=N_("Om AI som behandlar personuppgifter är förbjuden."),
)
@click.option(
    "--dpia-kravs/--dpia-kravs-inte",
    "dpia",
    default=None,
    help=N_("Om en konsekvensbedömning (DPIA) krävs för AI som behandlar personuppgifter."),
)
@click.option("--anteckning", "note", metavar="TEXT", help=N_("En fri anteckning om kommunen."))
@click.option(
    "--synlighet",
    "visibility",
    metavar="SYNLIGHET",
    help=N_("public eller members [standard: public, eller den nuvarande]."),
)
@json_option
@with_node
def set_(
    node: Node,
    band: str | None,
    group: str | None,
    interests: tuple[str, ...],
    contacts: tuple[str, ...],
    max_risk: str | None,
    no_personal_data: bool | None,
    dpia: bool | None,
    note: str | None,
    visibility: str | None,
    as_json: bool,
) -> None:
    current = node.store.get_record(node.origin, PROFILE_ID)
    record = R.Record()
    if current is not None and current.kind == R.RECORD_KIND_KOMMUN_PROFILE:
        record.CopyFrom(current.record)
        record.header.tombstone = False
    else:
        record.header.id = PROFILE_ID
        record.header.origin = node.origin
        record.header.kind = R.RECORD_KIND_KOMMUN_PROFILE
        record.header.visibility = R.VISIBILITY_PUBLIC
        record.header.language = "sv"
        record.kommun_profile.SetInParent()
    p = record.kommun_profile
    if band is not None:
        p.population_band = POPULATION_BAND.parse(band)  # type: ignore[assignment]
    if group is not None:
        p.kommun_group = KOMMUN_GROUP.parse(group)  # type: ignore[assignment]
    if interests:
        del p.interests[:]
        for area in dict.fromkeys(SERVICE_AREA.parse(a) for a in interests):
            p.interests.append(area)  # type: ignore[arg-type]
    if contacts:
        del p.contact_roles[:]
        p.contact_roles.extend(dict.fromkeys(contacts))
    if max_risk is not None:
        none = max_risk.strip().casefold() in ("ingen", "none", "")
        p.ai_rules.max_risk_class = 0 if none else RISK_CLASS.parse(max_risk)  # type: ignore[assignment]
    if no_personal_data is not None:
        p.ai_rules.no_personal_data = no_personal_data
    if dpia is not None:
        p.ai_rules.dpia_required = dpia
    if note is not None:
        p.note = note
    if visibility is not None:
        vis = VISIBILITY.parse(visibility)
        if vis == R.VISIBILITY_DRAFT:
            raise SamverkaError(
                _("en kommunprofil kan inte vara ett utkast"),
                hint=_("använd --synlighet public eller members"),
            )
        record.header.visibility = vis  # type: ignore[assignment]
    missing = [
        opt
        for opt, value in (("--storlek", p.population_band), ("--kommungrupp", p.kommun_group))
        if not value
    ]
    if missing:
        raise SamverkaError(
            _("profilen saknar {options}").format(options=_(" och ").join(missing)),
            hint=_("ange dem, t.ex. samverka profile set --storlek 10k-25k --kommungrupp C9"),
        )
    if current is not None and current.record == record:
        click.echo(
            _("profilen är oförändrad (version {version})").format(version=current.version),
            err=as_json,
        )
    else:
        from samverka.cli.records import check_record

        check_record(record, "kommun profile", node.origin)
        parsed = node.publisher().publish(record)
        click.echo(
            _("publicerade kommunprofilen version {version} ({entry}, {visibility})").format(
                version=parsed.version,
                entry=f"{parsed.origin}#{parsed.sequence}",
                visibility=VISIBILITY.label(record.header.visibility, language()),
            ),
            err=as_json,
        )
    if as_json:
        print_json(profile_json(node, node.origin))


def profile_json(node: Node, origin: str) -> dict[str, Any]:
    stored = node.store.get_record(origin, PROFILE_ID)
    prof = held_profile(node.store, origin)
    if stored is None or prof is None:
        return {"origin": origin, "origin_name": kommun_name(origin), "profile": None}
    return {
        "origin": origin,
        "origin_name": kommun_name(origin),
        "id": PROFILE_ID,
        "kind": RECORD_KIND.key(stored.kind),
        "version": stored.version,
        "visibility": VISIBILITY.key(stored.visibility),
        "key_id": stored.key_id,
        "signature_verified": True,
        "population_band": POPULATION_BAND.key(prof.population_band),
        "kommun_group": KOMMUN_GROUP.key(prof.kommun_group).upper(),
        "interests": [SERVICE_AREA.key(a) for a in prof.interests],
        "contact_roles": list(prof.contact_roles),
        "ai_rules": {
            "max_risk_class": RISK_CLASS.key(prof.ai_rules.max_risk_class) or None,
            "no_personal_data": prof.ai_rules.no_personal_data,
            "dpia_required": prof.ai_rules.dpia_required,
        },
        "note": prof.note,
        "profile": MessageToDict(prof, preserving_proto_field_name=True),
    }


def print_profile(node: Node, origin: str) -> None:
    stored = node.store.get_record(origin, PROFILE_ID)
    prof = held_profile(node.store, origin)
    if stored is None or prof is None:
        raise SamverkaError(
            _("ingen kommunprofil från {name} ({origin}) i denna nod").format(
                name=kommun_name(origin), origin=origin
            ),
            hint=_("sätt er egen med `samverka profile set`; andras kommer med `samverka sync`"),
        )
    click.echo(_("Kommunprofil: {name} ({origin})").format(name=kommun_name(origin), origin=origin))
    lang = language()
    rows = [
        (_("storlek"), POPULATION_BAND.label(prof.population_band, lang)),
        (_("kommungrupp"), KOMMUN_GROUP.label(prof.kommun_group, lang)),
        (
            _("intresseområden"),
            "; ".join(SERVICE_AREA.label(a, lang) for a in prof.interests) or "–",
        ),
        (_("kontaktroller"), "; ".join(prof.contact_roles) or "–"),
    ]
    rows += [(_("AI-regler"), render(r, _, lang)) for r in rule_reasons(prof.ai_rules)]
    if prof.note:
        rows.append((_("anteckning"), prof.note))
    rows += [
        (_("version"), str(stored.version)),
        (_("synlighet"), VISIBILITY.label(stored.visibility, lang)),
        (_("signerad med nyckel"), f"{stored.key_id}  " + _("(signaturen verifierad)")),
    ]
    width = max(len(k) for k, _value in rows)
    last = ""
    for key, value in rows:
        click.echo(f"  {(key if key != last else '').ljust(width)}  {value}")
        last = key


@profile.command(
    "show",
    help=help_parts(
        N_("Visa kommunens profil, eller en annan kommuns som noden har."),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka profile show\n  samverka profile show 2029 --json",
    ),
)
@click.argument("kommun", metavar="[KOMMUNKOD]", required=False)
@json_option
@with_node
def show(node: Node, kommun: str | None, as_json: bool) -> None:
    origin = kommun or node.origin
    if not is_kommunkod(origin):
        raise SamverkaError(
            _("{value!r} är ingen kommunkod").format(value=origin),
            hint=_("fyra siffror, t.ex. 2029"),
        )
    if as_json:
        print_json(profile_json(node, origin))
        return
    print_profile(node, origin)


@click.command(
    "passar",
    help=help_parts(
        N_(
            "Passar er: lösningar och användningsfall som liknande kommuner (samma "
            "storlek eller kommungrupp enligt deras profiler) har i drift eller har infört, "
            "som följer era AI-regler och intresseområden och som ni inte redan infört. "
            "Fungerar offline, på det noden har."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka passar\n  samverka passar --json",
    ),
    epilog=EXIT_CODES_HELP,
)
@click.option("--antal", "limit", type=click.IntRange(1, 200), default=20, show_default=True,
              help=N_("Högst så många förslag."))  # fmt: skip
@json_option
@with_node
def passar(node: Node, limit: int, as_json: bool) -> None:
    if held_profile(node.store, node.origin) is None:
        raise SamverkaError(
            _("kommunen har ingen profil, så noden vet inte vilka kommuner som liknar er"),
            hint=_("sätt den med `samverka profile set --storlek … --kommungrupp …`"),
        )
    found = suggestions(node.store, node.origin, limit=limit)
    if as_json:
        print_json(
            [
                {
                    "origin": s.origin,
                    "origin_name": kommun_name(s.origin),
                    "id": s.record_id,
                    "kind": RECORD_KIND.key(s.kind),
                    "title": s.title,
                    "service_area": SERVICE_AREA.key(s.service_area),
                    "kommuner": list(s.kommuner),
                    "reasons": list(s.reasons),
                }
                for s in found
            ]
        )
        return
    if not found:
        click.echo(
            _(
                "inga förslag: inga liknande kommuner med profil har något i drift som följer "
                "era regler (synka med `samverka sync` för att få fler kommuners poster)"
            )
        )
        return
    click.echo(
        _("Passar er ({name}): {count} förslag").format(
            name=kommun_name(node.origin), count=len(found)
        )
    )
    for i, s in enumerate(found, 1):
        kind = RECORD_KIND.label(s.kind, language())
        click.echo(f"{i:>3}. {s.title}  [{kind}, {s.origin}/{s.record_id}]")
        for reason in say_reasons(s, _, language()):
            click.echo(f"       – {reason}")
