"""Query parameters of the pages and the API ↔ :class:`~samverka_hub.web.catalog.Filters`.

One set of parameter names for both (``q``, ``kind``, ``area``, ``status``, ``risk``,
``technique``, ``county``, ``kommun``, ``page``); enum values are the vocabularies'
stable keys (``elderly-care``, ``production``), and any name
:meth:`samverka.protocol.vocab.Vocabulary.parse` accepts works too (``äldreomsorg``, ``i drift``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query
from samverka.protocol.vocab import (
    RECORD_KIND,
    RISK_CLASS,
    SERVICE_AREA,
    USE_CASE_STATUS,
    UnknownTerm,
    Vocabulary,
)

from samverka_hub.web.catalog import BadFilter, Filters

#: Longest text accepted in a text parameter (the search itself reads fewer words).
MAX_PARAM_CHARS = 200
#: Most values of one repeated parameter.
MAX_VALUES = 32


def _terms(vocabulary: Vocabulary, values: Sequence[str], what: str) -> tuple[int, ...]:
    parsed: list[int] = []
    for text in list(values)[:MAX_VALUES]:
        if not text.strip():
            continue
        try:
            parsed.append(vocabulary.parse(text[:MAX_PARAM_CHARS]))
        except UnknownTerm as exc:
            raise BadFilter(
                f"okänt värde för {what}: {text[:40]!r} (använd t.ex. "
                f"{', '.join(vocabulary.choices()[:4])})"
            ) from exc
    return tuple(dict.fromkeys(parsed))


def parse_filters(
    *,
    q: str = "",
    kind: Sequence[str] = (),
    area: Sequence[str] = (),
    status: Sequence[str] = (),
    risk: Sequence[str] = (),
    technique: str = "",
    county: str = "",
    kommun: str = "",
) -> Filters:
    """Filters from query parameters; raises BadFilter (with a Swedish message)."""
    filters = Filters(
        text=q[:MAX_PARAM_CHARS],
        kinds=_terms(RECORD_KIND, kind, "typ"),
        areas=_terms(SERVICE_AREA, area, "verksamhetsområde"),
        statuses=_terms(USE_CASE_STATUS, status, "status"),
        risks=_terms(RISK_CLASS, risk, "riskklass"),
        technique=technique.strip()[:MAX_PARAM_CHARS],
        county=county.strip()[:8],
        kommun=kommun.strip()[:8],
    )
    filters.check()
    return filters


#: A repeatable query parameter (``?kind=lesson&kind=solution``).
Many = Annotated[list[str], Query()]


def filter_query(
    q: str = Query("", description="Words to find (each a prefix; å, ä, ö are letters)."),
    kind: Many = [],  # noqa: B006 (FastAPI reads the default; it is never mutated)
    area: Many = [],  # noqa: B006
    status: Many = [],  # noqa: B006
    risk: Many = [],  # noqa: B006
    technique: str = "",
    county: str = Query("", description="Län code, e.g. 20 (Dalarna)."),
    kommun: str = Query("", description="Kommunkod of the origin, e.g. 2029."),
) -> Filters:
    """The filter parameters of a page or API request, parsed (a FastAPI dependency)."""
    return parse_filters(
        q=q,
        kind=kind,
        area=area,
        status=status,
        risk=risk,
        technique=technique,
        county=county,
        kommun=kommun,
    )


#: A route parameter that takes the filters from the query string.
FilterQuery = Annotated[Filters, Depends(filter_query)]


def query_pairs(f: Filters) -> list[tuple[str, str]]:
    """``f`` as query parameters (the stable keys), for links and exports."""
    pairs: list[tuple[str, str]] = []
    if f.text:
        pairs.append(("q", f.text))
    pairs += [("kind", RECORD_KIND.key(v)) for v in f.kinds]
    pairs += [("area", SERVICE_AREA.key(v)) for v in f.areas]
    pairs += [("status", USE_CASE_STATUS.key(v)) for v in f.statuses]
    pairs += [("risk", RISK_CLASS.key(v)) for v in f.risks]
    if f.technique:
        pairs.append(("technique", f.technique))
    if f.county:
        pairs.append(("county", f.county))
    if f.kommun:
        pairs.append(("kommun", f.kommun))
    return pairs


def query_string(f: Filters, **extra: int | str) -> str:
    """``?…`` for ``f`` plus ``extra`` (e.g. ``page=2``); "" when there is nothing."""
    pairs = query_pairs(f) + [(k, str(v)) for k, v in extra.items()]
    return "?" + urlencode(pairs) if pairs else ""
