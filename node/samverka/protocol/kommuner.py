"""The 290 Swedish kommuner and 21 län, shipped with the package (SCB codes)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

#: The origin code the council's hub signs with; it is not a kommun.
HUB_ORIGIN = "0000"


@dataclass(frozen=True, slots=True)
class Kommun:
    code: str
    name: str
    short_name: str
    county_code: str


@dataclass(frozen=True, slots=True)
class County:
    code: str
    name: str
    short_name: str


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("samverka.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def kommuner() -> dict[str, Kommun]:
    """All 290 kommuner keyed by kommunkod."""
    return {
        row["municipality_code"]: Kommun(
            code=row["municipality_code"],
            name=row["municipality_name"],
            short_name=row["municipality_name_short"],
            county_code=row["county_code"],
        )
        for row in _read_csv("municipalities.csv")
    }


@cache
def counties() -> dict[str, County]:
    """All 21 län keyed by county code."""
    return {
        row["county_code"]: County(
            code=row["county_code"], name=row["county_name"], short_name=row["county_name_short"]
        )
        for row in _read_csv("counties.csv")
    }


def is_kommunkod(code: str) -> bool:
    return code in kommuner()


def is_origin(code: str) -> bool:
    """A valid feed origin: a kommun, or the council's hub."""
    return code == HUB_ORIGIN or is_kommunkod(code)


def kommun_name(code: str) -> str:
    if code == HUB_ORIGIN:
        return "AI-rådet (hub)"
    k = kommuner().get(code)
    return k.short_name if k else code
