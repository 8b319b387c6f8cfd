"""What the store derives from a record to list, filter and search it (pure).

The signed entry is the truth; everything here is a projection of it that can be
rebuilt from the log at any time: the columns of the current view
(:class:`RecordFacts`), normalized tags, and the text the full-text index holds
(:class:`SearchDocument`, three weighted parts: title, keywords, body).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from samverka.protocol.kommuner import kommun_name
from samverka.protocol.vocab import SERVICE_AREA
from samverka.v1 import records_pb2

#: Longest summary kept in the current view (lessons have none; one is derived).
SUMMARY_CHARS = 500


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """The current view's columns for one record version."""

    title: str
    summary: str
    service_area: int
    status: int
    risk_class: int
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """The text the full-text index holds for a record, by weight (A, B, C)."""

    title: str
    keywords: str
    body: str


def becomes_current(version: int, held_version: int | None) -> bool:
    """Does a record version replace the one the current view holds (None: none)?

    Only a newer version does, whatever order the versions arrive in: a stand-in
    filled long after later versions (or a tombstone) of its record never takes
    the current view back to itself.
    """
    return held_version is None or version > held_version


def normalize_text(text: str) -> str:
    """NFC, so a decomposed "a + ring" and a composed "å" are the same letters."""
    return unicodedata.normalize("NFC", text)


def normalize_tag(tag: str) -> str:
    # (the separator never survives: packed tags stay unambiguous whatever arrives)
    return normalize_text(tag).replace("\x1f", " ").strip().casefold()


def record_tags(record: records_pb2.Record) -> tuple[str, ...]:
    """The header's tags, normalized, without duplicates, in first-seen order."""
    seen: dict[str, None] = {}
    for tag in record.header.tags:
        norm = normalize_tag(tag)
        if norm:
            seen.setdefault(norm, None)
    return tuple(seen)


#: Separates packed tags. A control character, which validation refuses inside a tag.
TAG_SEPARATOR = "\x1f"


def pack_tags(tags: tuple[str, ...]) -> str:
    """Normalized tags as one column value: a tag filter is one substring test."""
    return TAG_SEPARATOR + TAG_SEPARATOR.join(tags) + TAG_SEPARATOR if tags else ""


def unpack_tags(packed: str) -> tuple[str, ...]:
    return tuple(packed.strip(TAG_SEPARATOR).split(TAG_SEPARATOR)) if packed else ()


def tag_needle(tag: str) -> str:
    """What a packed tags value contains exactly when it holds ``tag`` (normalized here)."""
    return TAG_SEPARATOR + normalize_tag(tag) + TAG_SEPARATOR


def record_facts(record: records_pb2.Record) -> RecordFacts:
    body = record.WhichOneof("body")
    title = summary = ""
    service_area = status = risk_class = 0
    if body == "use_case":
        uc = record.use_case
        title, summary, service_area = uc.title, uc.summary, uc.service_area
        status, risk_class = uc.status, uc.risk_class
    elif body == "lesson":
        le = record.lesson
        title, service_area = le.title, le.service_area
        summary = next((t for t in (le.advice, le.what_worked, le.what_did_not) if t), "")
    elif body == "solution":
        so = record.solution
        title, summary, service_area = so.title, so.summary, so.service_area
    elif body == "recommendation":
        rec = record.recommendation
        title, summary, service_area = rec.title, rec.summary, rec.service_area
    elif body == "adoption":
        ad = record.adoption
        title = f"{ad.solution.origin}/{ad.solution.id}"
        summary, status = ad.note, ad.status
    elif body == "kommun_profile":
        title = f"Kommunprofil: {kommun_name(record.header.origin)}"
        summary = record.kommun_profile.note
    return RecordFacts(
        title=title,
        summary=_clip(summary, SUMMARY_CHARS),
        service_area=service_area,
        status=status,
        risk_class=risk_class,
        tags=record_tags(record),
    )


def search_document(record: records_pb2.Record) -> SearchDocument:
    """Title (weight A); summary, tags, techniques, products, vendors, area (B); long text (C)."""
    body = record.WhichOneof("body")
    title = ""
    keywords: list[str] = list(record.header.tags)
    long: list[str] = []
    area = 0
    if body == "use_case":
        uc = record.use_case
        title, area = uc.title, uc.service_area
        keywords += [uc.summary, *uc.techniques, *uc.products, *uc.vendors]
        long += [uc.description, uc.human_oversight, *uc.data_sources, *uc.national_projects]
        long += [uc.contact_role, uc.cost.note]
        long += [f"{b.metric} {b.unit} {b.method}" for b in uc.benefits]
        long += [link.title for link in uc.links]
        long += _register_text(uc.provider, uc.models)
        long += [uc.intended_purpose, uc.rationale.scope, uc.rationale.expected_benefits]
        long += [uc.accountability.organisation, *(s.name for s in uc.accountability.suppliers)]
        long += [r.name for r in uc.risks]
    elif body == "lesson":
        le = record.lesson
        title, area = le.title, le.service_area
        long += [le.what_worked, le.what_did_not, le.advice]
    elif body == "solution":
        so = record.solution
        title, area = so.title, so.service_area
        keywords += [so.summary, so.licence]
        long += [so.how_to_adopt, so.contact_role, so.cost.note]
        long += [link.title for link in so.links]
        long += [*_register_text(so.provider, so.models), so.intended_purpose]
    elif body == "recommendation":
        rec = record.recommendation
        title, area = rec.title, rec.service_area
        keywords += [rec.summary]
        long += [rec.body, *(link.title for link in rec.links)]
    elif body == "adoption":
        long += [record.adoption.note]
    if area:
        # The area's Swedish name, so that "äldreomsorg" also finds elderly-care
        # records that never use the word.
        keywords.append(SERVICE_AREA.label(area))
    return SearchDocument(
        title=normalize_text(title),
        keywords=normalize_text(_join(keywords)),
        body=normalize_text(_join(long)),
    )


def _register_text(
    provider: records_pb2.AiSystemProvider, models: Iterable[records_pb2.AiModel]
) -> list[str]:
    """The AI system's provider and models, so a search for "Mistral" or a product's
    trade name finds who runs it (ATRS and AI Act fields, issue 13)."""
    return [provider.name, provider.trade_name, *(f"{m.name} {m.provider}" for m in models)]


def _join(parts: list[str]) -> str:
    return "\n".join(p for p in parts if p and p.strip())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
