"""Exports to the public sector's registers and catalogues (pure, but for :func:`write`).

Samverka's records map onto the standards other public bodies read, so a kommun (its
node: ``samverka export``) or AI-rådet (the hub's catalog, ``/export/...``) can hand
them on without retyping anything:

=====================  ==========================================  ====================
format                 what                                        records
=====================  ==========================================  ====================
``dcat-rdfxml``,       DCAT-AP-SE (DCAT-AP 3) catalogue, RDF/XML   use cases, lessons,
``dcat-ttl``,          (what Sveriges dataportal harvests),        solutions,
``dcat-jsonld``        Turtle or JSON-LD (:mod:`.dcat`)            recommendations
``publiccode``         publiccode.yml 0.4 (:mod:`.publiccode`)     solutions of type code
``atrs``               UK Algorithmic Transparency Recording       use cases
                       Standard, tier 1 and 2 (:mod:`.atrs`)
``eurocities-csv``,    the Eurocities algorithm-register fields    use cases
``eurocities-json``    (standard 0.3.1, :mod:`.eurocities`)
``eu-database``        a draft of the deployer's entry in the EU   HIGH-risk use cases
                       database (AI Act Annex VIII section C,
                       :mod:`.eudatabase`), marked as a draft
=====================  ==========================================  ====================

Every format is a pure function from decoded records (:class:`samverka.v1.records_pb2.Record`)
and a :class:`Publisher` to bytes. Only PUBLIC records that are neither retracted nor
erased are exported (:func:`exportable`); the formats pick their kinds from those.

A record that lacks a field a format needs raises :class:`ExportError` naming the record
(origin/id) and the field. The whole export is built in memory first, and :func:`write`
replaces the output file atomically: an export that fails writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from samverka.errors import SamverkaError
from samverka.node import replace_file
from samverka.protocol.kommuner import HUB_ORIGIN, kommuner
from samverka.v1 import records_pb2

R = records_pb2
T = TypeVar("T")

#: The council's name as a publisher.
COUNCIL_NAME = "AI-rådet"
#: The catalogue metadata's licence unless the publisher says otherwise (DIGG's advice
#: for metadata on Sveriges dataportal: CC0).
CC0 = "http://creativecommons.org/publicdomain/zero/1.0/"


class ExportError(SamverkaError):
    """A record cannot be exported in a format: it lacks a field the format needs."""

    def __init__(self, fmt: str, origin: str, record_id: str, field: str, why: str = "") -> None:
        detail = f" ({why})" if why else ""
        super().__init__(
            f"{origin}/{record_id}: {fmt} kräver fältet {field}{detail}",
            hint=f"fyll i {field} i posten och publicera en ny version, eller exportera "
            "ett annat format",
        )
        self.fmt = fmt
        self.origin = origin
        self.record_id = record_id
        self.field = field


@dataclass(frozen=True, slots=True)
class Publisher:
    """Who publishes an export and where its records can be read.

    ``origin`` is a kommunkod (a node's own export) or ``"0000"`` (the hub: AI-rådet).
    ``base_url`` is the web catalog's public address (``[web] public_url``); with it, each
    record gets its catalog page as landing page, and without it URNs
    (``urn:samverka:post:2029:uc-1``) name the records.
    """

    origin: str
    base_url: str = ""
    #: A contact address for the catalogue (DCAT-AP-SE's contact point needs an e-mail).
    contact_email: str = ""
    #: The catalogue metadata's licence (a URI).
    licence: str = CC0
    #: When the export is made (Unix ms); the catalogue's dct:modified.
    generated_ms: int = 0

    @property
    def name(self) -> str:
        return organisation_name(self.origin)

    def record_url(self, origin: str, record_id: str) -> str:
        """The record's page in the web catalog ("" without a base URL)."""
        if not self.base_url:
            return ""
        return self.base_url.rstrip("/") + record_path(origin, record_id)


def organisation_name(origin: str) -> str:
    """The full name of an origin: "Leksands kommun", or AI-rådet for the hub."""
    if origin == HUB_ORIGIN:
        return COUNCIL_NAME
    k = kommuner().get(origin)
    return k.name if k else origin


def record_path(origin: str, record_id: str) -> str:
    """A record's page in the web catalog (the same path the catalog serves)."""
    return f"/post/{quote(origin, safe='')}/{quote(record_id, safe='')}"


def exportable(records: Iterable[R.Record], kinds: Sequence[int] = ()) -> list[R.Record]:
    """The records an export may carry: PUBLIC, not retracted (tombstone), of ``kinds``
    (any kind when empty), in the order given. An erased record is never among them:
    the store takes it out of its current view when it applies the erasure, and
    erasure records themselves are of no exported kind."""
    return [
        r
        for r in records
        if r.header.visibility == R.VISIBILITY_PUBLIC
        and not r.header.tombstone
        and (not kinds or r.header.kind in kinds)
    ]


def each(
    records: Iterable[R.Record],
    build: Callable[[R.Record], T],
    skipped: list[ExportError] | None = None,
) -> list[T]:
    """``build(record)`` for every record. A record that raises ExportError stops the
    export, or, when ``skipped`` is a list, is left out and its error appended there (the
    hub's collections leave out what one kommun left incomplete; a node's export stops)."""
    out: list[T] = []
    for record in records:
        try:
            out.append(build(record))
        except ExportError as e:
            if skipped is None:
                raise
            skipped.append(e)
    return out


def iso_date(ms: int) -> str:
    """A Unix-ms time as an ISO date (UTC), "" for 0."""
    if ms <= 0:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


def iso_datetime(ms: int) -> str:
    """A Unix-ms time as an ISO date-time in UTC with a Z, "" for 0."""
    if ms <= 0:
        return ""
    moment = dt.datetime.fromtimestamp(ms // 1000, dt.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def require(fmt: str, record: R.Record, field: str, value: str, why: str = "") -> str:
    """``value`` stripped, or ExportError when it is empty."""
    text = value.strip()
    if not text:
        raise ExportError(fmt, record.header.origin, record.header.id, field, why)
    return text


def write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (a reader sees the old file or the new)."""
    replace_file(path, data, mode=0o644)


def write_many(files: dict[Path, bytes]) -> None:
    """Write several files, each atomically, once all of them are built (an export that
    fails while building writes nothing)."""
    for path, data in files.items():
        write(path, data)
