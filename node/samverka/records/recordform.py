"""A record as a flat form: the field names people type (pure, no I/O).

The CLI options (``--area``, ``--cost-yearly``, ``--benefit``) and the columns of an
inventory file (``area`` or ``verksamhetsområde``) are the same flat fields, defined
once here. :func:`apply_form` turns their text into a protobuf record (converting
friendly enum names, amounts, dates, benefits, links and references) and reports
what it cannot convert as :class:`~samverka.errors.FieldIssue` under the flat name;
:func:`flat_issues` renames schema problems from :mod:`samverka.protocol.validation` the same
way, so a person always reads the name they typed (``area: is required``, never
``use_case.service_area``).

Text forms of the compound fields:

- benefit: ``"metric=value unit"``, e.g. ``"sparade timmar per år=1 200 timmar"``;
- link: ``"URL"`` or ``"URL title words"``;
- a record reference: ``"ORIGIN/ID"`` (e.g. ``1472/uc-chatbot``) or ``"ID"`` for one's own;
- dates: ``YYYY-MM-DD`` (UTC midnight) or an ISO 8601 date-time;
- amounts in kronor: ``12000``, ``12 000``, ``12 000 kr``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from samverka.errors import FieldIssue
from samverka.protocol.validation import RECORD_ID, REQUIRED
from samverka.protocol.vocab import (
    LESSON_CATEGORY,
    RISK_CLASS,
    SERVICE_AREA,
    SOLUTION_TYPE,
    USE_CASE_STATUS,
    VISIBILITY,
    UnknownTerm,
    Vocabulary,
    fold_diacritics,
    normalize,
    parse_bool,
)
from samverka.v1 import records_pb2

#: The bodies a person authors, with their record kinds (recommendations come from the hub).
BODY_KINDS: dict[str, int] = {
    "use_case": records_pb2.RECORD_KIND_USE_CASE,
    "lesson": records_pb2.RECORD_KIND_LESSON,
    "solution": records_pb2.RECORD_KIND_SOLUTION,
    "adoption": records_pb2.RECORD_KIND_ADOPTION,
    "recommendation": records_pb2.RECORD_KIND_RECOMMENDATION,
}
KIND_BODIES: dict[int, str] = {kind: body for body, kind in BODY_KINDS.items()}

#: Prefix of ids derived from titles, per body (``uc-copilot-pilot``).
ID_PREFIX = {
    "use_case": "uc",
    "lesson": "lesson",
    "solution": "sol",
    "adoption": "adopt",
    "recommendation": "rec",
}

HEADER = "header"


@dataclass(frozen=True, slots=True)
class FormField:
    """One flat field: its name, how its text converts, and where it goes per body.

    ``where`` maps a body name (or ``"header"`` for every body) to the protobuf path
    inside that body, e.g. ``{"use_case": "cost.yearly_sek"}``.
    """

    name: str
    type: str  # text | enum | bool | sek | date | benefit | link | ref | kommun
    where: Mapping[str, str]
    help: str
    vocab: Vocabulary | None = None
    #: Other column names accepted in inventory files (Swedish first).
    aliases: tuple[str, ...] = ()
    #: Shown as the option's metavar.
    metavar: str = ""

    def path(self, body: str) -> str | None:
        if HEADER in self.where:
            return f"header.{self.where[HEADER]}"
        inner = self.where.get(body)
        return f"{body}.{inner}" if inner else None

    def applies_to(self, body: str) -> bool:
        return HEADER in self.where or body in self.where

    def multiple(self, body: str) -> bool:
        path = self.path(body)
        if path is None:
            return False
        return bool(_descriptor_field(path).is_repeated)


UC, LS, SO, AD = "use_case", "lesson", "solution", "adoption"
#: Recommendations are authored at the hub (`samverka hub recommend`), origin 0000 only.
RC = "recommendation"


def _f(
    name: str,
    type_: str,
    where: Mapping[str, str],
    help_: str,
    *aliases: str,
    vocab: Vocabulary | None = None,
    metavar: str = "",
) -> FormField:
    return FormField(name, type_, where, help_, vocab, aliases, metavar)


# fmt: off
FIELDS: tuple[FormField, ...] = (
    _f("id", "text", {HEADER: "id"}, "Record id, unique in this kommun's feed "
       "[default: derived from the title].", "postid", "post-id", metavar="ID"),
    _f("title", "text", {UC: "title", LS: "title", SO: "title", RC: "title"}, "Title.",
       "titel", "rubrik", "namn", "benämning"),
    _f("summary", "text", {UC: "summary", SO: "summary", RC: "summary"},
       "One-paragraph summary.",
       "sammanfattning", "kort beskrivning", "kortbeskrivning"),
    _f("description", "text", {UC: "description"}, "Longer description.", "beskrivning"),
    _f("area", "enum", {UC: "service_area", LS: "service_area", SO: "service_area",
                        RC: "service_area"},
       "Verksamhetsområde, e.g. äldreomsorg / elderly-care.", "verksamhetsområde",
       "service area", "område", "verksamhet", vocab=SERVICE_AREA, metavar="AREA"),
    _f("status", "enum", {UC: "status", AD: "status"}, "idea, pilot, production or ended "
       "(idé, pilot, i drift, avslutad).", "fas", "läge", vocab=USE_CASE_STATUS,
       metavar="STATUS"),
    _f("risk", "enum", {UC: "risk_class"}, "EU AI Act risk class: minimal, limited, high, "
       "unacceptable.", "risk class", "riskklass", "risknivå", vocab=RISK_CLASS,
       metavar="CLASS"),
    _f("technique", "text", {UC: "techniques"}, "AI technique, e.g. 'generativ AI' "
       "(repeatable).", "techniques", "teknik", "tekniker", "ai-teknik"),
    _f("product", "text", {UC: "products"}, "Product used, e.g. 'Microsoft 365 Copilot' "
       "(repeatable).", "products", "produkt", "produkter"),
    _f("vendor", "text", {UC: "vendors"}, "Vendor (repeatable).", "vendors", "leverantör",
       "leverantörer"),
    _f("personal_data", "bool", {UC: "processes_personal_data"},
       "Whether personal data is processed.", "personuppgifter",
       "behandlar personuppgifter", "processes personal data"),
    _f("dpia", "bool", {UC: "impact_assessment_done"},
       "Whether a data protection impact assessment was made.", "konsekvensbedömning",
       "konsekvensbedömning gjord", "impact assessment done"),
    _f("dpia_link", "link", {UC: "impact_assessment"}, "Link to the impact assessment.",
       "länk till konsekvensbedömning", "impact assessment", metavar="URL"),
    _f("human_oversight", "text", {UC: "human_oversight"},
       "Who decides, and how people oversee the system.", "mänsklig kontroll",
       "mänsklig tillsyn", "beslutsprocess"),
    _f("data_source", "text", {UC: "data_sources"}, "Data source used (repeatable).",
       "data sources", "datakälla", "datakällor"),
    _f("cost_one_off", "sek", {UC: "cost.one_off_sek", SO: "cost.one_off_sek"},
       "One-off cost in kronor.", "engångskostnad", "kostnad engång", "one off cost",
       metavar="SEK"),
    _f("cost_yearly", "sek", {UC: "cost.yearly_sek", SO: "cost.yearly_sek"},
       "Yearly cost in kronor.", "årlig kostnad", "årskostnad", "kostnad per år",
       "yearly cost", metavar="SEK"),
    _f("cost_note", "text", {UC: "cost.note", SO: "cost.note"}, "What the costs cover.",
       "kostnadskommentar", "kommentar kostnad"),
    _f("benefit", "benefit", {UC: "benefits"}, "Measured benefit 'metric=value unit', "
       "e.g. 'sparade timmar per år=1200 timmar' (repeatable).", "benefits", "nytta",
       "effekt", "mätt nytta", metavar="METRIC=VALUE UNIT"),
    _f("partner", "kommun", {UC: "partner_kommuner"}, "Partner kommun's kommunkod, "
       "e.g. 2026 (repeatable).", "partners", "partner kommuner", "partnerkommun",
       "partnerkommuner", "samarbetskommuner", metavar="KOD"),
    _f("national_project", "text", {UC: "national_projects"},
       "National or regional project (repeatable).", "national projects",
       "nationellt projekt", "nationella projekt"),
    _f("contact_role", "text", {UC: "contact_role", SO: "contact_role"},
       "A contact role, never a person's name, e.g. 'digitaliseringsstrateg'.",
       "kontaktroll", "kontakt", "roll"),
    _f("link", "link", {UC: "links", SO: "links", RC: "links"},
       "A link 'URL [title]' (repeatable).",
       "links", "länk", "länkar", metavar="URL"),
    _f("reuses", "ref", {UC: "reuses"}, "A solution this use case reuses, ORIGIN/ID "
       "(repeatable).", "återanvänder", metavar="ORIGIN/ID"),
    _f("started", "date", {UC: "started_at_ms"}, "Start date, YYYY-MM-DD.", "startdatum",
       "start", "started at", "påbörjad", metavar="DATE"),
    _f("ended", "date", {UC: "ended_at_ms"}, "End date, YYYY-MM-DD.", "slutdatum",
       "ended at", "avslutad datum", metavar="DATE"),
    _f("use_case", "ref", {LS: "use_case", SO: "use_cases"}, "The use case, ORIGIN/ID or "
       "an own ID.", "use cases", "användningsfall", metavar="ORIGIN/ID"),
    _f("category", "enum", {LS: "category"}, "procurement, law-and-gdpr, data, "
       "competence-and-change, technology or ethics.", "kategori", vocab=LESSON_CATEGORY,
       metavar="CATEGORY"),
    _f("what_worked", "text", {LS: "what_worked"}, "What worked.", "vad fungerade",
       "det här fungerade", "fungerade"),
    _f("what_did_not", "text", {LS: "what_did_not"}, "What did not work.",
       "vad fungerade inte", "fungerade inte", "what did not work"),
    _f("advice", "text", {LS: "advice"}, "Advice to other kommuner.", "råd"),
    _f("type", "enum", {SO: "solution_type"}, "policy, guideline, procurement-template, "
       "impact-assessment-template, code, prompt-library or training-material.",
       "solution type", "lösningstyp", "typ", vocab=SOLUTION_TYPE, metavar="TYPE"),
    _f("licence", "text", {SO: "licence"}, "SPDX licence id, e.g. EUPL-1.2 or CC-BY-4.0.",
       "license", "licens"),
    _f("url", "text", {SO: "url"}, "Where to get it (http or https).", "webbadress",
       metavar="URL"),
    _f("content_hash", "text", {SO: "content_hash"}, "sha256:<hex> of the artifact at --url.",
       "hash", "kontrollsumma", metavar="sha256:HEX"),
    _f("how_to_adopt", "text", {SO: "how_to_adopt"}, "How another kommun adopts it.",
       "så inför du", "hur man inför", "införande"),
    _f("solution", "ref", {AD: "solution"}, "The adopted solution, ORIGIN/ID.", "lösning",
       metavar="ORIGIN/ID"),
    _f("note", "text", {AD: "note"}, "A note.", "anteckning", "kommentar"),
    _f("adopted", "date", {AD: "adopted_at_ms"}, "Date of adoption, YYYY-MM-DD.", "infört",
       "införd", "adopted at", "införandedatum", metavar="DATE"),
    _f("body", "text", {RC: "body"}, "The recommendation in full (line breaks kept).",
       "brödtext"),
    _f("reference", "ref", {RC: "references"}, "A record the recommendation builds on, "
       "ORIGIN/ID (repeatable).", "references", "referens", "referenser", metavar="ORIGIN/ID"),
    _f("visibility", "enum", {HEADER: "visibility"}, "public, members or draft "
       "(offentlig, medlemmar, utkast).", "synlighet", vocab=VISIBILITY, metavar="VIS"),
    _f("tag", "text", {HEADER: "tags"}, "A tag (repeatable).", "tags", "tagg", "taggar",
       "etikett", "etiketter", "nyckelord"),
    _f("language", "text", {HEADER: "language"}, "BCP 47 language of the text [default: sv].",
       "språk", metavar="LANG"),
)
# fmt: on

FIELDS_BY_NAME: dict[str, FormField] = {f.name: f for f in FIELDS}

#: Visibility of a new record when none is given: shared with members, not the public.
DEFAULT_VISIBILITY = records_pb2.VISIBILITY_MEMBERS


def fields_for(body: str) -> list[FormField]:
    """The flat fields a body has, in form order."""
    return [f for f in FIELDS if f.applies_to(body)]


def required_fields(body: str) -> list[str]:
    """Flat names of the fields a live record of ``body`` must fill."""
    names: list[str] = []
    for proto_name in REQUIRED[body]:
        for f in fields_for(body):
            path = f.path(body)
            if path == f"{body}.{proto_name}":
                names.append(f.name)
    return names


def column_key(text: str) -> str:
    """A column or key name as looked up: 'Kort beskrivning' -> 'kort_beskrivning'."""
    return normalize(text).replace("-", "_")


def _column_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for f in FIELDS:
        for word in (f.name, *f.aliases):
            for form in {column_key(word), fold_diacritics(column_key(word))}:
                other = table.setdefault(form, f.name)
                if other != f.name:
                    raise ValueError(f"column name {form!r} names {other} and {f.name}")
    return table


#: Every accepted column name (normalized) -> flat field name.
COLUMNS: dict[str, str] = _column_table()


def field_for_column(name: str) -> str | None:
    """The flat field a column / key name means, or None."""
    key = column_key(name)
    return COLUMNS.get(key) or COLUMNS.get(fold_diacritics(key))


# -- converting text ----------------------------------------------------------------

_AMOUNT = re.compile(r"^([0-9][0-9 \u00a0\u202f]*)(?:[.,]0+)?\s*(?:kr|sek|:-)?\.?$", re.I)
_BENEFIT_VALUE = re.compile(r"^\s*([+-]?\d(?:[\d \u00a0\u202f]*\d)?(?:[.,]\d+)?)\s*(.*)$", re.S)


class _Bad(ValueError):
    """A value that does not convert; the message is shown under the field's name."""


#: Larger than any kommun's whole budget; also keeps amounts inside protobuf's int64.
MAX_AMOUNT_SEK = 10**12


def shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short (with its length) when long."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def parse_amount(text: str) -> int:
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise _Bad(f"{shown(text)} is not an amount in whole kronor")
    digits = re.sub(r"\D", "", match[1]).lstrip("0")
    # Counted before int(): Python refuses to convert more than 4,300 digits (ValueError).
    if len(digits) > len(str(MAX_AMOUNT_SEK)) or int(digits or "0") > MAX_AMOUNT_SEK:
        raise _Bad(f"{shown(text)} is more than {MAX_AMOUNT_SEK:,} kronor".replace(",", " "))
    return int(digits or "0")


def parse_date_ms(text: str) -> int:
    text = text.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise _Bad(f"{text!r} is not a date (YYYY-MM-DD)") from exc
    return int(moment.timestamp() * 1000)


def format_date_ms(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    if moment.time() == dt.time(0, 0):
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds")


def parse_benefit(text: str) -> records_pb2.Benefit:
    metric, sep, rest = text.partition("=")
    match = _BENEFIT_VALUE.match(rest) if sep else None
    if not metric.strip() or match is None:
        raise _Bad(f"{text!r} is not 'metric=value unit', e.g. 'sparade timmar=1200 timmar'")
    number = re.sub(r"[ \u00a0\u202f]", "", match[1]).replace(",", ".")
    return records_pb2.Benefit(metric=metric.strip(), value=float(number), unit=match[2].strip())


def format_benefit(b: records_pb2.Benefit) -> str:
    value = f"{b.value:g}" if b.value != int(b.value) else str(int(b.value))
    return f"{b.metric}={value} {b.unit}".rstrip()


def parse_link(text: str) -> records_pb2.Link:
    url, _, title = text.strip().partition(" ")
    return records_pb2.Link(url=url, title=title.strip())


def format_link(link: records_pb2.Link) -> str:
    return f"{link.url} {link.title}".rstrip()


def parse_ref(text: str, own_origin: str) -> records_pb2.RecordRef:
    origin, sep, record_id = text.strip().rpartition("/")
    if not sep:
        origin = own_origin
    if not record_id:
        raise _Bad(f"{text!r} is not ORIGIN/ID, e.g. 1472/uc-chatbot")
    return records_pb2.RecordRef(origin=origin.strip(), id=record_id.strip())


def format_ref(ref: records_pb2.RecordRef) -> str:
    return f"{ref.origin}/{ref.id}"


def as_text(value: Any) -> str:
    """A cell or YAML value as text: numbers without '.0', dates ISO, booleans ja/nej."""
    if isinstance(value, bool):
        return "ja" if value else "nej"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _convert(f: FormField, value: Any, own_origin: str) -> Any:
    """One item's protobuf value; raises _Bad."""
    if isinstance(value, Mapping):
        return _convert_mapping(f, value, own_origin)
    if f.type == "bool":
        if isinstance(value, bool):
            return value
        try:
            return parse_bool(as_text(value))
        except ValueError as exc:
            raise _Bad(str(exc)) from exc
    text = as_text(value).strip()
    if f.type == "text":
        return text
    if f.type == "kommun":
        return text.zfill(4) if text.isdigit() and len(text) == 3 else text
    if f.type == "enum":
        assert f.vocab is not None
        try:
            return f.vocab.parse(text)
        except UnknownTerm as exc:
            raise _Bad(f"{exc}; use one of: {', '.join(f.vocab.choices())}") from exc
    if f.type == "sek":
        return parse_amount(text)
    if f.type == "date":
        return parse_date_ms(text)
    if f.type == "benefit":
        return parse_benefit(text)
    if f.type == "link":
        return parse_link(text)
    if f.type == "ref":
        return parse_ref(text, own_origin)
    raise AssertionError(f"unknown form type {f.type}")


def _convert_mapping(f: FormField, value: Mapping[str, Any], own_origin: str) -> Message:
    """YAML/JSON may give a benefit, link or reference as a mapping of its parts."""
    parts = {str(k): as_text(v).strip() for k, v in value.items() if v is not None}
    try:
        if f.type == "benefit":
            return records_pb2.Benefit(
                metric=parts.get("metric", ""),
                value=float(parts.get("value", "0").replace(",", ".").replace(" ", "")),
                unit=parts.get("unit", ""),
                method=parts.get("method", ""),
            )
        if f.type == "link":
            return records_pb2.Link(url=parts.get("url", ""), title=parts.get("title", ""))
        if f.type == "ref":
            return records_pb2.RecordRef(
                origin=parts.get("origin", own_origin), id=parts.get("id", "")
            )
    except ValueError as exc:
        raise _Bad(f"{value!r}: {exc}") from exc
    raise _Bad(f"a {f.type} is written as text here, not as a mapping")


# -- applying a form to a record -----------------------------------------------------


def new_record(body: str, origin: str) -> records_pb2.Record:
    """An empty record of ``body`` for ``origin`` (version, times: set by the publisher)."""
    rec = records_pb2.Record()
    rec.header.kind = BODY_KINDS[body]  # type: ignore[assignment]
    rec.header.origin = origin
    rec.header.visibility = DEFAULT_VISIBILITY
    getattr(rec, body).SetInParent()
    return rec


def body_of(record: records_pb2.Record) -> str:
    body = record.WhichOneof("body")
    return body or KIND_BODIES.get(record.header.kind, "")


def apply_form(
    record: records_pb2.Record, values: Mapping[str, Any], *, own_origin: str
) -> list[FieldIssue]:
    """Set the given flat fields on ``record`` in place; return what did not convert.

    A value of None means "not given" (the field is left as it is); "" or an empty
    list clears the field. Repeated fields take a list (or one value); their whole
    content is replaced.
    """
    body = body_of(record)
    issues: list[FieldIssue] = []
    for name, value in values.items():
        if value is None:
            continue
        f = FIELDS_BY_NAME.get(name)
        if f is None:
            issues.append(FieldIssue(name, "is not a field"))
            continue
        path = f.path(body)
        if path is None:
            issues.append(FieldIssue(name, f"does not apply to a {body.replace('_', ' ')}"))
            continue
        parent, leaf = _resolve(record, path)
        descriptor = parent.DESCRIPTOR.fields_by_name[leaf]
        items = list(value) if isinstance(value, list | tuple) else [value]
        items = [v for v in items if not (isinstance(v, str) and not v.strip())]
        if not descriptor.is_repeated and len(items) > 1:
            issues.append(FieldIssue(name, f"takes one value, got {len(items)}"))
            continue
        converted: list[Any] = []
        for i, item in enumerate(items):
            try:
                converted.append(_convert(f, item, own_origin))
            except _Bad as exc:
                where = f"{name}[{i}]" if descriptor.is_repeated and len(items) > 1 else name
                issues.append(FieldIssue(where, str(exc)))
        if len(converted) != len(items):
            continue
        _set(parent, leaf, descriptor.is_repeated, converted)
    return issues


def _resolve(record: Message, path: str) -> tuple[Message, str]:
    """The message holding the last part of a dotted path, and that part's name."""
    *parents, leaf = path.split(".")
    msg = record
    for part in parents:
        msg = getattr(msg, part)
    return msg, leaf


def _set(parent: Message, leaf: str, repeated: bool, values: list[Any]) -> None:
    if repeated:
        target = getattr(parent, leaf)
        if not values and not target:
            return
        del target[:]
        for v in values:
            if isinstance(v, Message):
                target.add().CopyFrom(v)
            else:
                target.append(v)
        return
    if not values:
        # Clear only what is set: touching an unset sub-message would make it present.
        descriptor = parent.DESCRIPTOR.fields_by_name[leaf]
        present = parent.HasField(leaf) if descriptor.message_type else bool(getattr(parent, leaf))
        if present:
            parent.ClearField(leaf)
    elif isinstance(values[0], Message):
        getattr(parent, leaf).CopyFrom(values[0])
    else:
        setattr(parent, leaf, values[0])


def read_form(record: records_pb2.Record) -> dict[str, Any]:
    """The record as flat fields (text, lists of text, booleans), for display and diffs."""
    body = body_of(record)
    out: dict[str, Any] = {}
    for f in fields_for(body):
        path = f.path(body)
        assert path is not None
        parent, leaf = _resolve(record, path)
        descriptor = parent.DESCRIPTOR.fields_by_name[leaf]
        raw = getattr(parent, leaf)
        items = list(raw) if descriptor.is_repeated else [raw]
        if not descriptor.is_repeated and descriptor.message_type is not None:
            items = [raw] if parent.HasField(leaf) else []
        texts = [_format(f, v) for v in items]
        if descriptor.is_repeated:
            out[f.name] = texts
        elif f.type == "bool":
            out[f.name] = bool(raw)
        else:
            out[f.name] = texts[0] if texts else ""
    return out


def _format(f: FormField, value: Any) -> str:
    if f.type == "enum":
        assert f.vocab is not None
        return f.vocab.key(value) if value else ""
    if f.type == "sek":
        return str(value) if value else ""
    if f.type == "date":
        return format_date_ms(value) if value else ""
    if f.type == "benefit":
        return format_benefit(value)
    if f.type == "link":
        return format_link(value)
    if f.type == "ref":
        return format_ref(value)
    return str(value)


# -- naming problems the way people typed them ----------------------------------------


def flat_issues(issues: Sequence[FieldIssue], body: str) -> list[FieldIssue]:
    """Rename validation paths (``use_case.service_area``) to flat names (``area``)."""
    table = sorted(
        ((p, f.name) for f in fields_for(body) if (p := f.path(body)) is not None),
        key=lambda item: -len(item[0]),
    )
    renamed: list[FieldIssue] = []
    for issue in issues:
        name = issue.field
        for path, flat in table:
            if name == path or name.startswith((path + ".", path + "[")):
                name = flat + name[len(path) :]
                break
        renamed.append(FieldIssue(name, issue.message))
    return renamed


def derive_id(title: str, body: str, taken: Any = frozenset()) -> str:
    """A record id from a title: ``uc-`` + a lower-case slug, unique among ``taken``.

    ``taken`` is anything supporting ``in`` (a set of ids, or an object asking the store).
    """
    folded = fold_diacritics(unicodedata.normalize("NFKC", title)).casefold()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:60].strip("-") or "record"
    base = f"{ID_PREFIX[body]}-{slug}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    assert RECORD_ID.match(candidate)
    return candidate


def _descriptor_field(path: str) -> Any:
    """The protobuf field descriptor for a dotted path from Record."""
    descriptor: Any = records_pb2.Record.DESCRIPTOR
    *parents, leaf = path.split(".")
    for part in parents:
        descriptor = descriptor.fields_by_name[part].message_type
    return descriptor.fields_by_name[leaf]


def same_content(a: records_pb2.Record, b: records_pb2.Record) -> bool:
    """Whether two records say the same, ignoring version and timestamps."""
    left, right = records_pb2.Record(), records_pb2.Record()
    left.CopyFrom(a)
    right.CopyFrom(b)
    for rec in (left, right):
        rec.header.version = 0
        rec.header.created_at_ms = 0
        rec.header.updated_at_ms = 0
        if not rec.header.language:
            rec.header.language = "sv"
    return left == right
