"""``samverka usecase|lesson|solution add|edit|retire|list|show`` and ``samverka adopt``.

Each kind's group is made by :func:`kind_group` from the flat fields in
:mod:`samverka.records.recordform`, so every field has exactly one option, named like the
inventory column (``--area``, ``--cost-yearly``). Every change is a new signed entry
through the node's :class:`~samverka.records.publisher.Publisher`: ``edit`` writes a new
version with only the given fields changed, ``retire`` a tombstone; nothing is erased.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click
from google.protobuf.json_format import MessageToDict

from samverka.cli._common import (
    EXIT_CODES_HELP,
    help_parts,
    json_option,
    print_json,
    stdin_is_terminal,
    with_node,
)
from samverka.cli.erase import erase_command
from samverka.errors import FieldIssue, SamverkaError
from samverka.i18n import N_, _, language
from samverka.protocol.kommuner import is_origin, kommun_name
from samverka.protocol.validation import record_issues
from samverka.protocol.vocab import (
    AI_RULE,
    LESSON_CATEGORY,
    RECORD_KIND,
    SERVICE_AREA,
    SOLUTION_TYPE,
    USE_CASE_STATUS,
    VISIBILITY,
    bool_label,
)
from samverka.records.recordform import (
    FIELDS_BY_NAME,
    FormField,
    apply_form,
    derive_id,
    fields_for,
    flat_issues,
    new_record,
    read_form,
    required_fields,
    same_content,
)
from samverka.records.transparency import SECTION_FIELDS, section_text, sections
from samverka.v1 import records_pb2

if TYPE_CHECKING:
    from samverka.node import Node
    from samverka.store.store import StoredRecord

#: Per body: the CLI group name, the noun in messages, and an example for --help.
KINDS: dict[str, tuple[str, str, str]] = {
    "use_case": (
        "usecase",
        "use case",
        'samverka usecase add --title "Språkstöd i hemtjänsten" '
        '--summary "Personalen dikterar journalanteckningar" '
        "--area äldreomsorg --status pilot --risk minimal --technique 'taligenkänning' "
        "--benefit 'sparade timmar per år=1200 timmar' --visibility public",
    ),
    "lesson": (
        "lesson",
        "lesson",
        'samverka lesson add --title "Ställ krav på loggning" --category upphandling '
        "--use-case 1472/uc-chatbot --what-worked 'Loggarna visade felen' "
        "--advice 'Skriv in loggning i avtalet'",
    ),
    "solution": (
        "solution",
        "solution",
        'samverka solution add --title "AI-policy" --summary "Policy antagen av KF" '
        "--type policy --licence CC-BY-4.0 --url https://example.se/ai-policy.pdf",
    ),
}


#: Per body: the noun people read in messages (a msgid).
NOUNS: dict[str, str] = {
    "use_case": N_("användningsfall"),
    "lesson": N_("lärdom"),
    "solution": N_("lösning"),
    "adoption": N_("införande"),
    "recommendation": N_("rekommendation"),
}

#: What ``show`` calls each flat field (msgids); a field not named here shows its name.
FIELD_LABELS: dict[str, str] = {
    "summary": N_("sammanfattning"),
    "description": N_("beskrivning"),
    "area": N_("verksamhetsområde"),
    "status": N_("status"),
    "risk": N_("riskklass"),
    "technique": N_("teknik"),
    "product": N_("produkt"),
    "vendor": N_("leverantör"),
    "personal_data": N_("personuppgifter"),
    "dpia": N_("konsekvensbedömning"),
    "dpia_link": N_("länk till konsekvensbedömning"),
    "human_oversight": N_("mänsklig kontroll"),
    "data_source": N_("datakälla"),
    "cost_one_off": N_("engångskostnad"),
    "cost_yearly": N_("årlig kostnad"),
    "cost_note": N_("kostnadskommentar"),
    "benefit": N_("nytta"),
    "partner": N_("partner"),
    "national_project": N_("nationellt projekt"),
    "contact_role": N_("kontaktroll"),
    "link": N_("länk"),
    "reuses": N_("återanvänder"),
    "started": N_("startdatum"),
    "ended": N_("slutdatum"),
    "use_case": N_("användningsfall"),
    "category": N_("kategori"),
    "what_worked": N_("vad fungerade"),
    "what_did_not": N_("vad fungerade inte"),
    "advice": N_("råd"),
    "type": N_("lösningstyp"),
    "licence": N_("licens"),
    "url": N_("webbadress"),
    "content_hash": N_("kontrollsumma"),
    "how_to_adopt": N_("så inför du"),
    "solution": N_("lösning"),
    "note": N_("anteckning"),
    "adopted": N_("infört"),
    "body": N_("brödtext"),
    "reference": N_("referens"),
    "tag": N_("tagg"),
    "language": N_("språk"),
}


#: Per body: its group's help (the same msgids as ``samverka --help`` lists).
GROUP_HELP: dict[str, str] = {
    "use_case": N_("Skriv och läs AI-användningsfall."),
    "lesson": N_("Skriv och läs lärdomar."),
    "solution": N_("Skriv och läs återanvändbara lösningar."),
}
EXAMPLE = N_("Exempel:")


def field_label(name: str) -> str:
    """A flat field's name as people read it, in their language."""
    label = FIELD_LABELS.get(name)
    return _(label) if label else name.replace("_", " ")


def noun_of(noun: str) -> str:
    """The translated noun for a body's English noun (``use case`` -> användningsfall)."""
    body = noun.replace(" ", "_")
    return _(NOUNS[body]) if body in NOUNS else noun


class RecordRefused(SamverkaError):
    """A record the user wrote breaks the schema; the message lists each field."""

    def __init__(self, noun: str, issues: Sequence[FieldIssue]) -> None:
        lines = "\n".join(f"  {i.field}: {i.message}" for i in issues)
        super().__init__(
            _("{noun}: posten är ogiltig:\n{lines}").format(noun=noun_of(noun), lines=lines),
            hint=_("rätta fälten som nämns ovan; varje flagga beskrivs i --help"),
        )
        self.issues = list(issues)


# -- options from the form -------------------------------------------------------------


def option_name(f: FormField) -> str:
    return "--" + f.name.replace("_", "-")


def field_options(body: str, *, skip: Sequence[str] = ()) -> Callable[[Any], Any]:
    """Decorate a command with one option per flat field of ``body``."""

    def decorate(cmd: Any) -> Any:
        for f in reversed(fields_for(body)):
            if f.name in skip:
                continue
            if f.type == "bool":
                decl = f"{option_name(f)}/--no-{f.name.replace('_', '-')}"
                cmd = click.option(decl, f.name, default=None, help=f.help)(cmd)
            else:
                cmd = click.option(
                    option_name(f),
                    f.name,
                    multiple=f.multiple(body),
                    default=None,
                    metavar=f.metavar or "TEXT",
                    help=f.help,
                )(cmd)
        return cmd

    return decorate


def given_values(body: str, params: dict[str, Any]) -> dict[str, Any]:
    """The form values actually given on the command line (None/() mean "not given")."""
    values: dict[str, Any] = {}
    for f in fields_for(body):
        value = params.get(f.name)
        if value is None or (isinstance(value, tuple) and not value):
            continue
        values[f.name] = list(value) if isinstance(value, tuple) else value
    return values


def clear_option(body: str) -> Callable[[Any], Any]:
    """``--clear FIELD`` for an ``edit`` command: empties any flat field but the id."""
    return click.option(
        "--clear",
        "clear",
        multiple=True,
        type=click.Choice([f.name for f in fields_for(body) if f.name != "id"]),
        metavar="FIELD",
        help=N_("Töm det här fältet (upprepas)."),
    )


# -- building and publishing ---------------------------------------------------------------


class _TakenIds:
    """``id in taken`` asks the store whether the origin already has that id."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def __contains__(self, record_id: object) -> bool:
        return self.node.store.get_record(self.node.origin, str(record_id)) is not None


def check_record(record: records_pb2.Record, noun: str, origin: str) -> None:
    """Validate as receivers will (the publisher sets the version) and name flat fields."""
    probe = records_pb2.Record()
    probe.CopyFrom(record)
    probe.header.version = probe.header.version or 1
    issues = record_issues(probe, origin=origin)
    if issues:
        raise RecordRefused(noun, flat_issues(issues, body_of_record(record)))


def body_of_record(record: records_pb2.Record) -> str:
    return record.WhichOneof("body") or ""


def prompt_missing(
    record: records_pb2.Record, body: str, *, interactive: bool, origin: str
) -> None:
    """Ask for missing required fields on a terminal; otherwise name them all at once."""
    form = read_form(record)
    missing = [name for name in required_fields(body) if not form.get(name)]
    if not missing:
        return
    if not (interactive or stdin_is_terminal()):
        options = ", ".join(option_name(FIELDS_BY_NAME[n]) for n in missing)
        raise SamverkaError(
            _("obligatoriska flaggor saknas: {options}").format(options=options),
            hint=_(
                "stdin är ingen terminal, så samverka frågar inte; ge dem som flaggor "
                "(eller ange --interactive för att bli tillfrågad)"
            ),
        )
    for name in missing:
        f = FIELDS_BY_NAME[name]
        label = name.replace("_", " ")
        if f.vocab is not None:
            label += f" ({', '.join(f.vocab.choices())})"
        while True:
            text = click.prompt(label, type=str)
            issues = apply_form(record, {name: text}, own_origin=origin)
            if not issues:
                break
            for issue in issues:
                click.echo(f"  {issue.message}", err=True)


def publish(node: Node, record: records_pb2.Record, noun: str, *, as_json: bool = False) -> None:
    """Check, sign and append, then say what was written (on stderr when stdout carries
    JSON)."""
    check_record(record, noun, node.origin)
    parsed = node.publisher().publish(record)
    header = parsed.record.header
    what = (
        _("drog in {noun} {id} version {version} ({origin}#{sequence}, {visibility})")
        if header.tombstone
        else _("publicerade {noun} {id} version {version} ({origin}#{sequence}, {visibility})")
    )
    click.echo(
        what.format(
            noun=noun_of(noun),
            id=header.id,
            version=header.version,
            origin=parsed.origin,
            sequence=parsed.sequence,
            visibility=VISIBILITY.label(header.visibility, language()),
        ),
        err=as_json,
    )


# -- reading ----------------------------------------------------------------------------


def split_ref(record_id: str, origin: str | None, own: str) -> tuple[str, str]:
    """``ID`` with ``--origin``, or ``ORIGIN/ID``; defaults to the node's own origin."""
    if "/" in record_id:
        ref_origin, _sep, record_id = record_id.rpartition("/")
        if origin and origin != ref_origin:
            raise SamverkaError(
                _("{ref} motsäger --origin {origin}").format(
                    ref=f"{ref_origin}/{record_id}", origin=origin
                )
            )
        origin = ref_origin
    origin = origin or own
    if not is_origin(origin):
        raise SamverkaError(_("{value!r} är ingen kommunkod").format(value=origin))
    return origin, record_id


def get_stored(node: Node, origin: str, record_id: str, noun: str) -> StoredRecord:
    stored = node.store.get_record(origin, record_id)
    if stored is None:
        raise SamverkaError(
            _("{noun} {id!r} från {name} ({origin}) finns inte i den här noden").format(
                noun=noun_of(noun), id=record_id, name=kommun_name(origin), origin=origin
            ),
            hint=_(
                "lista det noden har med `samverka usecase list --all-origins` eller sök med "
                "`samverka search`"
            ),
        )
    return stored


def record_json(stored: StoredRecord) -> dict[str, Any]:
    """The stable JSON form of a stored record (header fields + the record itself)."""
    return {
        "origin": stored.origin,
        "origin_name": kommun_name(stored.origin),
        "id": stored.record_id,
        "kind": RECORD_KIND.key(stored.kind),
        "version": stored.version,
        "visibility": VISIBILITY.key(stored.visibility),
        "tombstone": stored.tombstone,
        "title": stored.title,
        "key_id": stored.key_id,
        "signature_verified": True,
        "log_position": stored.position,
        "entry_timestamp_ms": stored.timestamp_ms,
        "record": MessageToDict(stored.record, preserving_proto_field_name=True),
    }


def _when(ms: int) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def describe_value(f: FormField, value: Any) -> str:
    """A form value as a person reads it: Swedish labels for enums, ja/nej."""
    if f.type == "bool":
        return bool_label(bool(value), language())
    if isinstance(value, list):
        return "; ".join(describe_value(f, v) for v in value)
    if f.vocab is not None and value:
        return f.vocab.label(f.vocab.parse(value), language())
    if f.type == "sek" and value:
        return f"{int(value):,} kr".replace(",", "\u00a0")
    return str(value)


def print_record(stored: StoredRecord) -> None:
    rec = stored.record
    body = body_of_record(rec)
    click.echo(stored.title or stored.record_id)
    lang = language()
    retired = "  " + _("(indragen)") if stored.tombstone else ""
    rows: list[tuple[str, str]] = [
        (_("id"), stored.record_id),
        (_("ursprung"), f"{kommun_name(stored.origin)} ({stored.origin})"),
        (_("typ"), RECORD_KIND.label(stored.kind, lang)),
        (_("version"), str(stored.version) + retired),
        (_("synlighet"), VISIBILITY.label(stored.visibility, lang)),
        (_("skapad"), _when(rec.header.created_at_ms)),
        (_("ändrad"), _when(rec.header.updated_at_ms)),
        (_("signerad med nyckel"), f"{stored.key_id}  " + _("(signaturen verifierad)")),
    ]
    if body:
        form = read_form(rec)
        for f in fields_for(body):
            if f.name in ("id", "title", "visibility") or f.name in SECTION_FIELDS:
                continue  # the ATRS and AI Act fields follow in their groups
            value = form.get(f.name)
            if value in ("", [], None) or (f.type == "bool" and value is False):
                continue
            rows.append((field_label(f.name), describe_value(f, value)))
    if body == "adoption" and rec.adoption.HasField("policy_override"):
        override = rec.adoption.policy_override
        rules = ", ".join(AI_RULE.label(r, lang) for r in override.rules)
        rows.append((_("trots AI-regler"), f"{rules}: {override.reason}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        lines = value.splitlines() or [""]
        click.echo(f"  {key.ljust(width)}  {lines[0]}")
        for line in lines[1:]:
            click.echo(f"  {' ' * width}  {line}")
    for line in section_text(sections(rec, lang)):
        click.echo(line)


def show_record(
    stored: StoredRecord, versions: list[dict[str, Any]] | None, *, as_json: bool
) -> None:
    """What ``show`` prints: the record in full (or its JSON form), then, when
    ``versions`` is given (``--history``), every version from :func:`record_history`."""
    if as_json:
        data = record_json(stored)
        if versions is not None:
            data["history"] = versions
        print_json(data)
        return
    print_record(stored)
    if versions is None:
        return
    print_history(stored.origin, versions)


def print_history(origin: str, versions: list[dict[str, Any]]) -> None:
    """The ``historik`` lines of ``show --history``: an erased version is marked so."""
    click.echo("  " + _("historik"))
    for v in versions:
        erased = v.get("erased")
        if erased is not None:
            click.echo(
                f"    {origin}#{v['sequence']}  "
                + _("raderad {date}, skäl: {reason}").format(
                    date=_when(erased["at_ms"]), reason=erased["reason"]
                )
            )
            continue
        mark = "  " + _("indragen") if v["tombstone"] else ""
        click.echo(
            "    "
            + _("version {version}  {entry}  {when}  nyckel {key}").format(
                version=v["version"],
                entry=f"{origin}#{v['sequence']}",
                when=_when(v["timestamp_ms"]),
                key=v["key_id"],
            )
            + mark
        )


def show_erased(
    origin: str, record_id: str, versions: list[dict[str, Any]], *, as_json: bool
) -> None:
    """``show --history`` of a record every version of which is erased."""
    if as_json:
        print_json({"origin": origin, "id": record_id, "erased": True, "history": versions})
        return
    click.echo(f"{origin}/{record_id}")
    print_history(origin, versions)


def list_columns(body: str) -> list[tuple[str, Callable[[records_pb2.Record], str]]]:
    """Kind-specific columns for ``list``, labelled and valued in Swedish."""
    lang = language()
    if body == "use_case":
        return [
            (_("STATUS"), lambda r: USE_CASE_STATUS.label(r.use_case.status, lang)),
            (_("OMRÅDE"), lambda r: SERVICE_AREA.label(r.use_case.service_area, lang)),
        ]
    if body == "lesson":
        return [(_("KATEGORI"), lambda r: LESSON_CATEGORY.label(r.lesson.category, lang))]
    if body == "solution":
        return [
            (_("TYP"), lambda r: SOLUTION_TYPE.label(r.solution.solution_type, lang)),
            (_("OMRÅDE"), lambda r: SERVICE_AREA.label(r.solution.service_area, lang)),
        ]
    if body == "adoption":
        return [
            (_("LÖSNING"), lambda r: f"{r.adoption.solution.origin}/{r.adoption.solution.id}"),
            (_("STATUS"), lambda r: USE_CASE_STATUS.label(r.adoption.status, lang)),
        ]
    return []


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths[:-1], strict=True)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


# -- the commands ------------------------------------------------------------------------


def kind_group(body: str) -> click.Group:
    """The ``add/edit/retire/list/show`` group for one record body."""
    name, noun, example = KINDS[body]
    record_kind = {
        "use_case": records_pb2.RECORD_KIND_USE_CASE,
        "lesson": records_pb2.RECORD_KIND_LESSON,
        "solution": records_pb2.RECORD_KIND_SOLUTION,
    }[body]

    @click.group(
        name=name, help=help_parts(GROUP_HELP[body], "\n\n\b\n", EXAMPLE, "\n  " + example)
    )
    def group() -> None:
        pass

    @group.command(
        "add",
        help=help_parts(
            N_(
                "Publicera en ny post av den här typen, signerad, i kommunens flöde.\n\n"
                "Obligatoriska fält som saknas bland flaggorna efterfrågas när stdin är en "
                "terminal (eller med --interactive); annars namnger kommandot dem och ändrar "
                "inget. Nya poster syns för medlemmar om inte --visibility säger något annat."
            ),
            "\n\n\b\n",
            EXAMPLE,
            "\n  " + example,
        ),
        epilog=EXIT_CODES_HELP,
    )
    @field_options(body)
    @click.option(
        "--interactive", "-i", is_flag=True, help=N_("Fråga efter obligatoriska fält som saknas.")
    )
    @json_option
    @with_node
    def add(node: Node, interactive: bool, as_json: bool, **params: Any) -> None:
        values = given_values(body, params)
        record_id = values.pop("id", None)
        record = new_record(body, node.origin)
        issues = apply_form(record, values, own_origin=node.origin)
        if issues:
            raise RecordRefused(noun, issues)
        prompt_missing(record, body, interactive=interactive, origin=node.origin)
        if record_id:
            if node.store.get_record(node.origin, record_id) is not None:
                raise SamverkaError(
                    _("{origin} har redan en post {id!r}").format(origin=node.origin, id=record_id),
                    hint=_("ändra den med `samverka {name} edit {id} …`").format(
                        name=name, id=record_id
                    ),
                )
        else:
            title = read_form(record).get("title") or noun
            record_id = derive_id(str(title), body, _TakenIds(node))
        record.header.id = record_id
        publish(node, record, noun, as_json=as_json)
        if as_json:
            print_json(record_json(get_stored(node, node.origin, record_id, noun)))

    @group.command(
        "edit",
        help=help_parts(
            N_(
                "Publicera en ny version av en av kommunens poster av den här typen.\n\n"
                "Bara de angivna fälten ändras; flaggor som upprepas ersätter hela listan. "
                "Töm ett fält med --clear FÄLT."
            ),
            "\n\n\b\n",
            EXAMPLE,
            f"\n  samverka {name} edit ID --status production --cost-yearly 24000",
        ),
        epilog=EXIT_CODES_HELP,
    )
    @click.argument("record_id", metavar="ID")
    @field_options(body, skip=("id",))
    @clear_option(body)
    @json_option
    @with_node
    def edit(
        node: Node, record_id: str, clear: tuple[str, ...], as_json: bool, **params: Any
    ) -> None:
        stored = get_stored(node, node.origin, record_id, noun)
        if stored.kind != record_kind:
            raise SamverkaError(
                _("{id!r} är av typen {kind}, inte {noun}").format(
                    id=record_id,
                    kind=RECORD_KIND.label(stored.kind, language()).lower(),
                    noun=noun_of(noun),
                )
            )
        if stored.tombstone:
            raise SamverkaError(
                _("{noun} {id!r} är indragen; dess historik står kvar som den är").format(
                    noun=noun_of(noun), id=record_id
                )
            )
        values = given_values(body, params)
        for field_name in clear:
            values[field_name] = [] if FIELDS_BY_NAME[field_name].multiple(body) else ""
        if not values:
            raise SamverkaError(
                _("inget att ändra"),
                hint=_("ange fälten som ska ändras, se `samverka {name} edit --help`").format(
                    name=name
                ),
            )
        record = records_pb2.Record()
        record.CopyFrom(stored.record)
        issues = apply_form(record, values, own_origin=node.origin)
        if issues:
            raise RecordRefused(noun, issues)
        if same_content(record, stored.record):
            click.echo(
                _("{noun} {id} oförändrad (fortfarande version {version})").format(
                    noun=noun_of(noun), id=record_id, version=stored.version
                ),
                err=as_json,
            )
        else:
            publish(node, record, noun, as_json=as_json)
        if as_json:
            print_json(record_json(get_stored(node, node.origin, record_id, noun)))

    @group.command(
        "retire",
        help=help_parts(
            N_(
                "Dra in en av kommunens poster av den här typen: en signerad gravstensversion."
                "\n\nInget raderas: tidigare versioner finns kvar i flödet och hos andra noder."
            ),
            "\n\n\b\n",
            EXAMPLE,
            f"\n  samverka {name} retire ID",
        ),
        epilog=EXIT_CODES_HELP,
    )
    @click.argument("record_id", metavar="ID")
    @with_node
    def retire(node: Node, record_id: str) -> None:
        stored = get_stored(node, node.origin, record_id, noun)
        if stored.kind != record_kind:
            raise SamverkaError(
                _("{id!r} är inte av typen {noun}").format(id=record_id, noun=noun_of(noun))
            )
        parsed = node.publisher().retire(record_id)
        click.echo(
            _("drog in {noun} {id}: gravstensversion {version} ({entry})").format(
                noun=noun_of(noun),
                id=record_id,
                version=parsed.version,
                entry=f"{parsed.origin}#{parsed.sequence}",
            )
        )

    group.add_command(list_command(body, record_kind, noun, name))
    group.add_command(show_command(noun, name))
    group.add_command(erase_command(record_kind, NOUNS[body], name))
    return group


def list_command(body: str, record_kind: int, noun: str, name: str) -> click.Command:
    @click.command(
        "list",
        help=help_parts(
            N_(
                "Lista poster av den här typen: kommunens egna, eller speglade med "
                "--origin/--all-origins."
            ),
            "\n\n\b\n",
            EXAMPLE,
            f"\n  samverka {name} list --area äldreomsorg --status pilot\n"
            f"  samverka {name} list --origin 1472 --json",
        ),
    )
    @click.option("--area", help=N_("Bara det här verksamhetsområdet (t.ex. äldreomsorg)."))
    @click.option("--status", help=N_("Bara den här statusen (idé, pilot, i drift, avslutad)."))
    @click.option(
        "--origin",
        "origins",
        multiple=True,
        metavar="KOD",
        help=N_("Den här kommunens poster (upprepas) [standard: nodens egna]."),
    )
    @click.option("--all-origins", is_flag=True, help=N_("Poster från alla ursprung noden har."))
    @click.option("--include-retired", is_flag=True, help=N_("Lista också indragna poster."))
    @json_option
    @with_node
    def list_(
        node: Node,
        area: str | None,
        status: str | None,
        origins: tuple[str, ...],
        all_origins: bool,
        include_retired: bool,
        as_json: bool,
    ) -> None:
        for origin in origins:
            if not is_origin(origin):
                raise SamverkaError(_("{value!r} är ingen kommunkod").format(value=origin))
        wanted_area = SERVICE_AREA.parse(area) if area else None
        wanted_status = USE_CASE_STATUS.parse(status) if status else None
        selected = [] if all_origins else list(origins or [node.origin])
        records = node.store.list_records(
            kinds=[record_kind],
            origins=selected,
            include_tombstoned=include_retired,
            service_areas=[wanted_area] if wanted_area else [],
            statuses=[wanted_status] if wanted_status else [],
        )
        if as_json:
            print_json([record_json(s) for s in records])
            return
        if not records:
            click.echo(
                _("inga poster av typen {noun}").format(noun=noun_of(noun))
                + ("" if include_retired else " " + _("(indragna döljs)"))
            )
            return
        columns = list_columns(body)
        many = len({s.origin for s in records}) > 1 or selected != [node.origin]
        header = ([_("URSPRUNG")] if many else []) + [_("ID"), _("V"), _("SYNLIGHET")]
        header += [c[0] for c in columns] + [_("TITEL")]
        rows = [header]
        for s in records:
            row = ([s.origin] if many else []) + [
                s.record_id,
                str(s.version),
                VISIBILITY.label(s.visibility, language()),
            ]
            row += [c[1](s.record) for c in columns]
            row.append((_("(indragen)") + " " if s.tombstone else "") + s.title)
            rows.append(row)
        print_table(rows)

    return list_


def show_command(noun: str, name: str) -> click.Command:
    @click.command(
        "show",
        help=help_parts(
            N_("Visa en post i sin helhet: ursprung, version, signeringsnyckel, varje fält."),
            "\n\n\b\n",
            EXAMPLE,
            f"\n  samverka {name} show uc-copilot-pilot\n"
            f"  samverka {name} show 1472/uc-chatbot --json",
        ),
    )
    @click.argument("record_id", metavar="[ORIGIN/]ID")
    @click.option("--origin", metavar="KOD", help=N_("Postens kommun [standard: den här noden]."))
    @click.option("--history", is_flag=True, help=N_("Lista också varje version i flödet."))
    @json_option
    @with_node
    def show(node: Node, record_id: str, origin: str | None, history: bool, as_json: bool) -> None:
        origin, record_id = split_ref(record_id, origin, node.origin)
        versions = record_history(node, origin, record_id) if history else None
        if versions and node.store.get_record(origin, record_id) is None:
            # Every version erased: the history says so instead of "not held".
            show_erased(origin, record_id, versions, as_json=as_json)
            return
        stored = get_stored(node, origin, record_id, noun)
        show_record(stored, versions, as_json=as_json)

    return show


def record_history(node: Node, origin: str, record_id: str) -> list[dict[str, Any]]:
    """Every version of one record held in the origin's feed, oldest first; an erased
    one (its content gone, samverka.protocol.erasure) with ``erased``: when, the reason
    category and the erasure entry (``version`` is not known any more)."""
    from samverka.protocol.entries import parse_signed

    versions: list[dict[str, Any]] = []
    for raw in node.store.feed_entries(origin):
        parsed = parse_signed(raw)
        if parsed.record_id != record_id:
            continue
        versions.append(
            {
                "version": parsed.version,
                "sequence": parsed.sequence,
                "timestamp_ms": parsed.entry.timestamp_ms,
                "key_id": parsed.signed.key_id,
                "tombstone": parsed.record.header.tombstone,
                "erased": None,
            }
        )
    for row in node.store.erased_entries(origin):
        if row.record_id != record_id:
            continue
        erasure = node.store.signed_entry(row.by_origin, row.by_sequence)
        by = parse_signed(erasure) if erasure is not None else None
        versions.append(
            {
                "version": None,
                "sequence": row.sequence,
                "timestamp_ms": None,
                "key_id": None,
                "tombstone": False,
                "erased": {
                    "at_ms": by.entry.timestamp_ms if by is not None else row.erased_at_ms,
                    "reason": reason_name(by.record.erasure.reason) if by is not None else "",
                    "by": f"{row.by_origin}#{row.by_sequence}",
                },
            }
        )
    return sorted(versions, key=lambda v: int(v["sequence"]))


def reason_name(reason: int) -> str:
    """An erasure's reason category as ``--reason`` names it (its number if unknown)."""
    from samverka.protocol.erasure import REASONS

    return next((name for name, value in REASONS.items() if value == reason), str(reason))


usecase = kind_group("use_case")
lesson = kind_group("lesson")
solution = kind_group("solution")


@click.command(
    "adopt",
    help=help_parts(
        N_(
            "Registrera att kommunen har tagit en annan kommuns lösning i bruk.\n\n"
            "Ett införande är en signerad post för sig, så att återanvändning kan räknas.\n\n"
            "Det som bryter mot kommunens AI-regler (dess profil: högsta riskklass, "
            'personuppgifter, DPIA) införs bara med --trots-regel "skäl"; reglerna och skälet '
            "skrivs in i den signerade införandeposten."
        ),
        "\n\n\b\n",
        EXAMPLE,
        "\n  samverka adopt 1472/sol-ai-policy --status production --note 'Antagen av KS'",
    ),
    epilog=EXIT_CODES_HELP,
)
@click.argument("solution_ref", metavar="ORIGIN/ID")
@field_options("adoption", skip=("solution",))
@click.option(
    "--trots-regel",
    "override",
    metavar="SKÄL",
    help=N_(
        "Inför trots att lösningen bryter mot kommunens AI-regler, med detta skäl "
        "(skrivs in i införandeposten)."
    ),
)
@json_option
@with_node
def adopt(
    node: Node, solution_ref: str, override: str | None, as_json: bool, **params: Any
) -> None:
    from samverka.records.profile import guard_adoption

    origin, solution_id = split_ref(solution_ref, None, node.origin)
    values = given_values("adoption", params)
    record_id = values.pop("id", None) or derive_id(
        f"{origin}-{solution_id}", "adoption", _TakenIds(node)
    )
    if node.store.get_record(node.origin, record_id) is not None:
        raise SamverkaError(
            _("{origin} har redan en post {id!r}").format(origin=node.origin, id=record_id)
        )
    target = node.store.get_record(origin, solution_id)
    if target is None:
        click.echo(
            _("obs: noden har inte {ref} (ännu); registrerar ändå").format(
                ref=f"{origin}/{solution_id}"
            ),
            err=True,
        )
    check, recorded = guard_adoption(
        node.store, node.origin, target, override, f"{origin}/{solution_id}"
    )
    if check is not None and check.has_rules and not check.facts.risk_known:
        click.echo(
            _("obs: {ref} anger ingen riskklass; pröva den mot era AI-regler").format(
                ref=f"{origin}/{solution_id}"
            ),
            err=True,
        )
    if recorded is not None:
        click.echo(
            _("obs: införs trots kommunens AI-regler ({reason}); det skrivs in i posten").format(
                reason=override
            ),
            err=True,
        )
    values["solution"] = f"{origin}/{solution_id}"
    values.setdefault("status", "production")
    record = new_record("adoption", node.origin)
    issues = apply_form(record, values, own_origin=node.origin)
    if issues:
        raise RecordRefused("adoption", issues)
    record.header.id = record_id
    if recorded is not None:
        record.adoption.policy_override.CopyFrom(recorded)
    publish(node, record, "adoption", as_json=as_json)
    if as_json:
        print_json(record_json(get_stored(node, node.origin, record_id, "adoption")))
