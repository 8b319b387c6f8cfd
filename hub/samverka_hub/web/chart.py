"""The coverage picture's layout: one square per kommun, grouped by län (pure).

A council member should read it at a glance: each of the 21 län is a row of small
squares, one per kommun (290 in all), coloured by how far the kommun shares its AI
experience. The template draws the squares as server-side SVG (no script, no
library). The picture is an image and nothing more: no link or other control sits
inside it (axe-core's nested-interactive), and the kommun names it holds only as
hover titles are written out beside it, län by län (:attr:`CountyRow.sharing_cells`),
with the same numbers in tables, for phones (no hover) and for people who cannot
see the picture.

Levels, without a service area chosen:

0. shares nothing yet;
1. shares lessons, solutions or adoptions, but no use case;
2. shares use cases, none in production (ideas, pilots, ended ones);
3. shares at least one use case in production.

With a service area chosen: 0 = no use case in that area, 2 = at least one.
"""

from __future__ import annotations

from dataclasses import dataclass

from samverka.protocol.kommuner import counties
from samverka.protocol.vocab import USE_CASE_STATUS
from samverka.v1 import records_pb2

from samverka_hub.stats import Coverage, KommunCoverage

PRODUCTION = records_pb2.USE_CASE_STATUS_PRODUCTION

#: Fill colours by level: a light-to-dark blue scale that stays ordered in grey
#: scale and for the common colour-vision deficiencies; level 0 gets an outline.
FILLS = ("#f3f3f3", "#b8d4ea", "#4c8dc4", "#0b3a6e")
OUTLINE = "#6b6b6b"

LEVEL_LABELS = (
    "Delar inget ännu",
    "Delar lärdomar eller lösningar, inga användningsfall",
    "Delar användningsfall (idé, pilot eller avslutat)",
    "Delar användningsfall i drift",
)
AREA_LEVEL_LABELS = ("Inget användningsfall inom området", "", "Användningsfall inom området", "")


@dataclass(frozen=True, slots=True)
class Cell:
    code: str
    name: str
    x: int
    y: int
    level: int
    #: What the square says when pointed at: "Leksand: 1 användningsfall (1 i drift)".
    description: str
    #: The same without the name, written after the name in the list beside the picture.
    detail: str = ""

    @property
    def fill(self) -> str:
        return FILLS[self.level]


@dataclass(frozen=True, slots=True)
class CountyRow:
    code: str
    name: str
    #: Baseline of the row's label.
    label_y: int
    kommuner: int
    sharing: int
    #: The län's kommuner that share anything (level > 0), in the picture's order.
    sharing_cells: tuple[Cell, ...] = ()


@dataclass(frozen=True, slots=True)
class LegendItem:
    level: int
    label: str
    count: int

    @property
    def fill(self) -> str:
        return FILLS[self.level]


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    cell: int
    cells: tuple[Cell, ...]
    rows: tuple[CountyRow, ...]
    legend: tuple[LegendItem, ...]
    #: The service area the colours are about (0: all areas).
    area: int
    outline: str = OUTLINE


def level(k: KommunCoverage, area: int = 0) -> int:
    if area:
        return 2 if area in k.service_areas else 0
    if k.use_cases_by_status.get(PRODUCTION):
        return 3
    if k.shares_use_cases:
        return 2
    return 1 if k.records else 0


def describe(k: KommunCoverage) -> str:
    """ "Leksand: 3 användningsfall (2 i drift, 1 pilot), 1 lösning" (Swedish)."""
    return f"{k.name}: {detail(k)}"


def detail(k: KommunCoverage) -> str:
    """ "3 användningsfall (2 i drift, 1 pilot), 1 lösning" (Swedish)."""
    parts: list[str] = []
    if k.use_cases:
        by_status = ", ".join(
            f"{n} {USE_CASE_STATUS.label(s).lower() or 'utan status'}"
            for s, n in k.use_cases_by_status.items()
        )
        parts.append(f"{k.use_cases} användningsfall ({by_status})")
    if k.lessons:
        parts.append(f"{k.lessons} {'lärdom' if k.lessons == 1 else 'lärdomar'}")
    if k.solutions:
        parts.append(f"{k.solutions} {'lösning' if k.solutions == 1 else 'lösningar'}")
    if k.adoptions:
        parts.append(f"{k.adoptions} {'införande' if k.adoptions == 1 else 'införanden'}")
    return ", ".join(parts) if parts else "delar inget ännu"


def layout(
    coverage: Coverage,
    *,
    area: int = 0,
    per_row: int = 17,
    cell: int = 16,
    gap: int = 4,
    label_width: int = 118,
    row_gap: int = 8,
) -> Chart:
    """Place every kommun of ``coverage`` in its län's rows, län by län (county code order)."""
    short_names = {code: c.short_name for code, c in counties().items()}
    by_county: dict[str, list[KommunCoverage]] = {}
    for k in coverage.kommuner:
        by_county.setdefault(k.county_code, []).append(k)
    cells: list[Cell] = []
    rows: list[CountyRow] = []
    y = 0
    step = cell + gap
    for county in coverage.counties:
        members = by_county.get(county.code, [])
        lines = max(1, -(-len(members) // per_row))
        row_cells = [
            Cell(
                code=k.code,
                name=k.name,
                x=label_width + (i % per_row) * step,
                y=y + (i // per_row) * step,
                level=level(k, area),
                description=describe(k),
                detail=detail(k),
            )
            for i, k in enumerate(members)
        ]
        rows.append(
            CountyRow(
                code=county.code,
                name=short_names.get(county.code, county.name),
                label_y=y + cell - 3,
                kommuner=county.kommuner,
                sharing=county.kommuner_with_use_cases,
                sharing_cells=tuple(c for c in row_cells if c.level),
            )
        )
        cells.extend(row_cells)
        y += lines * step + row_gap
    labels = AREA_LEVEL_LABELS if area else LEVEL_LABELS
    counts = [0, 0, 0, 0]
    for c in cells:
        counts[c.level] += 1
    legend = tuple(LegendItem(i, labels[i], counts[i]) for i in range(len(labels)) if labels[i])
    return Chart(
        width=label_width + per_row * step - gap,
        height=max(0, y - row_gap - gap),
        cell=cell,
        cells=tuple(cells),
        rows=tuple(rows),
        legend=legend,
        area=area,
    )
