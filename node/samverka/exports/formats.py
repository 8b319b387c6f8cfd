"""The export formats by name, each built whole before anything is written.

:func:`build` returns the files an export consists of (path -> bytes): one file for the
catalogue and register formats, one per record (in a folder) for publiccode.yml and the
EU database drafts. The caller writes them with :func:`samverka.exports.write_many`
only when every record passed, so a failed export leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from samverka.exports import Publisher, atrs, dcat, eudatabase, eurocities, exportable, publiccode
from samverka.i18n import N_
from samverka.v1 import records_pb2

R = records_pb2


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    #: What it is, in Swedish (for --help and the catalog's export page); a msgid the
    #: CLI translates when it shows it.
    label: str
    #: True when --out names a folder (one file per record).
    folder: bool
    media_type: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "dcat-rdfxml",
            N_("DCAT-AP-SE som RDF/XML (det Sveriges dataportal skördar)"),
            False,
            "application/rdf+xml",
        ),
        Format("dcat-ttl", N_("DCAT-AP-SE som Turtle (Sveriges dataportal)"), False, "text/turtle"),
        Format("dcat-jsonld", N_("DCAT-AP-SE som JSON-LD"), False, "application/ld+json"),
        Format(
            "publiccode",
            N_("publiccode.yml för lösningar som är kod (en fil per lösning)"),
            True,
            "application/yaml",
        ),
        Format(
            "atrs",
            N_("ATRS (Storbritanniens algoritmregisterstandard), JSON"),
            False,
            "application/json",
        ),
        Format("eurocities-csv", N_("Eurocities algoritmregister, CSV"), False, "text/csv"),
        Format(
            "eurocities-json", N_("Eurocities algoritmregister, JSON"), False, "application/json"
        ),
        Format(
            "eu-database",
            N_(
                "utkast till EU-databasen för AI-system med hög risk (JSON och Markdown per "
                "användningsfall)"
            ),
            True,
            "application/json",
        ),
    )
}


def selected(name: str, records: Sequence[R.Record]) -> list[R.Record]:
    """The records export ``name`` carries (PUBLIC, live, of its kinds)."""
    if name in ("dcat-rdfxml", "dcat-ttl", "dcat-jsonld"):
        return exportable(records, dcat.KINDS)
    if name == "publiccode":
        return publiccode.software(records)
    if name == "eu-database":
        return eudatabase.high_risk(records)
    return exportable(records, (R.RECORD_KIND_USE_CASE,))


def build(
    name: str, records: Sequence[R.Record], publisher: Publisher, out: Path
) -> dict[Path, bytes]:
    """The files of export ``name`` of ``records`` at ``out`` (a file, or a folder for
    the per-record formats); ExportError when a record lacks a field."""
    if name == "dcat-rdfxml":
        return {out: dcat.rdfxml(records, publisher)}
    if name == "dcat-ttl":
        return {out: dcat.turtle(records, publisher)}
    if name == "dcat-jsonld":
        return {out: dcat.jsonld(records, publisher)}
    if name == "atrs":
        return {out: atrs.render(records, publisher)}
    if name == "eurocities-csv":
        return {out: eurocities.render_csv(records, publisher)}
    if name == "eurocities-json":
        return {out: eurocities.render_json(records, publisher)}
    if name == "publiccode":
        return {
            out / publiccode.file_name(r): publiccode.render(r, publisher, records)
            for r in publiccode.software(records)
        }
    if name == "eu-database":
        files: dict[Path, bytes] = {}
        for r in eudatabase.high_risk(records):
            files[out / eudatabase.file_name(r)] = eudatabase.render(r, publisher)
            files[out / eudatabase.file_name(r, "md")] = eudatabase.markdown(r, publisher).encode(
                "utf-8"
            )
        return files
    raise ValueError(f"unknown export format {name!r}")
