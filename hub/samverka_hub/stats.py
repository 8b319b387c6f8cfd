"""Coverage across all 290 kommuner: who shares AI experience, where, and who is left
behind (pure: dataclasses in, dataclasses out; no database, no network).

The input is a tally of the hub's current records (:class:`RecordTally`, one row of a
``GROUP BY`` over the current view, see :mod:`samverka_hub.insight`), the kommuner
that are members now, and the reference lists of kommuner and län. The output is a
:class:`Coverage`: every kommun once, every län once, the service areas, the totals.

What counts, decided here and nowhere else:

- **Live records only.** A retired record (a tombstone) is not counted; neither is a
  draft (drafts never reach the hub, and would not count if they did).
- **Visibility.** ``member_view=False`` counts PUBLIC records only (what anyone may
  know); ``member_view=True`` also counts MEMBERS records. The hub serves the first
  on its public port and the second to members (see ``GetStats``).
- **A kommun shares use cases** when it has at least one live use case of any status
  (an ended pilot is shared experience too). Records count for their origin only;
  partner kommuner named in a use case are not credited.
- **Members** are the kommuner the member directory lists as active; revoked ones
  are not members, but the records they signed before revocation still count.
- **Reuse**: a live adoption of another kommun's solution counts for the adopter
  (``adoptions``) and for the solution's origin (``solutions_adopted_by_others``).
- Records of origins that are not kommuner are not kommun coverage; the council's
  own (origin 0000) live recommendations are counted on their own.
- **Size and kommungrupp** come from the kommuner's own profiles (kommunprofil records,
  counted under the same visibility rule): a kommun without a profile held is in no
  band and no group, and ``kommuner_with_profile`` says how many are placed at all.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from samverka.protocol.kommuner import HUB_ORIGIN, County, Kommun, counties, kommuner
from samverka.store.store import visible
from samverka.v1 import records_pb2

USE_CASE = records_pb2.RECORD_KIND_USE_CASE
LESSON = records_pb2.RECORD_KIND_LESSON
SOLUTION = records_pb2.RECORD_KIND_SOLUTION
ADOPTION = records_pb2.RECORD_KIND_ADOPTION
RECOMMENDATION = records_pb2.RECORD_KIND_RECOMMENDATION

#: Use-case statuses in the order they are shown (an unspecified status last).
STATUS_ORDER: tuple[int, ...] = (
    records_pb2.USE_CASE_STATUS_IDEA,
    records_pb2.USE_CASE_STATUS_PILOT,
    records_pb2.USE_CASE_STATUS_PRODUCTION,
    records_pb2.USE_CASE_STATUS_ENDED,
    records_pb2.USE_CASE_STATUS_UNSPECIFIED,
)


@dataclass(frozen=True, slots=True)
class RecordTally:
    """How many current records (newest versions) share these facts."""

    origin: str
    kind: int  # records_pb2.RecordKind
    status: int = 0  # records_pb2.UseCaseStatus (use cases)
    service_area: int = 0  # records_pb2.ServiceArea
    visibility: int = records_pb2.VISIBILITY_PUBLIC
    tombstone: bool = False
    #: For adoptions: the origin of the adopted solution ("" otherwise).
    adopted_from: str = ""
    count: int = 1


@dataclass(frozen=True, slots=True)
class KommunCoverage:
    """Where one kommun stands."""

    code: str
    name: str
    county_code: str
    member: bool
    #: Live use cases by status (only statuses with at least one), in STATUS_ORDER.
    use_cases_by_status: Mapping[int, int] = field(default_factory=dict)
    #: Service areas with at least one live use case, in enum order.
    service_areas: tuple[int, ...] = ()
    lessons: int = 0
    solutions: int = 0
    #: Live adoptions recorded by this kommun (of anyone's solutions).
    adoptions: int = 0
    #: Live adoptions by other kommuner of this kommun's solutions.
    solutions_adopted_by_others: int = 0
    #: From the kommun's profile (0: no profile held).
    population_band: int = 0  # records_pb2.PopulationBand
    kommun_group: int = 0  # records_pb2.KommunGroup

    @property
    def use_cases(self) -> int:
        return sum(self.use_cases_by_status.values())

    @property
    def shares_use_cases(self) -> bool:
        return self.use_cases > 0

    @property
    def records(self) -> int:
        """Every live record of this kommun counted here."""
        return self.use_cases + self.lessons + self.solutions + self.adoptions


@dataclass(frozen=True, slots=True)
class CountyCoverage:
    """One län: how many of its kommuner are members and share use cases."""

    code: str
    name: str
    kommuner: int
    members: int
    kommuner_with_use_cases: int
    use_cases: int
    solutions: int

    @property
    def share(self) -> float:
        """The share of the län's kommuner that share use cases (0.0 to 1.0)."""
        return self.kommuner_with_use_cases / self.kommuner if self.kommuner else 0.0


@dataclass(frozen=True, slots=True)
class GroupCoverage:
    """One population band or SKR kommungrupp: its kommuner (by their profiles), how
    many are members and share use cases."""

    #: records_pb2.PopulationBand or records_pb2.KommunGroup.
    value: int
    kommuner: int
    members: int
    kommuner_with_use_cases: int
    use_cases: int
    solutions: int
    adoptions: int

    @property
    def share(self) -> float:
        return self.kommuner_with_use_cases / self.kommuner if self.kommuner else 0.0


@dataclass(frozen=True, slots=True)
class AreaCoverage:
    """One verksamhetsområde: live use cases in it, and how many kommuner have one."""

    service_area: int
    use_cases: int
    kommuner: int


@dataclass(frozen=True, slots=True)
class Coverage:
    """The picture of who is ahead and who is left behind."""

    #: True when MEMBERS records were counted too (a member asked); else PUBLIC only.
    member_view: bool
    kommuner_total: int
    members: int
    kommuner_with_use_cases: int
    use_cases: int
    lessons: int
    solutions: int
    adoptions: int
    #: The council's live recommendations.
    recommendations: int
    use_cases_by_status: Mapping[int, int]
    #: Areas with at least one live use case, most kommuner first.
    areas: tuple[AreaCoverage, ...]
    #: Every län, by county code.
    counties: tuple[CountyCoverage, ...]
    #: Every kommun, by kommunkod.
    kommuner: tuple[KommunCoverage, ...]
    #: Kommuner with a profile held (placed in a band and a group).
    kommuner_with_profile: int = 0
    #: Every population band and every SKR kommungrupp, in enum order.
    bands: tuple[GroupCoverage, ...] = ()
    groups: tuple[GroupCoverage, ...] = ()

    @property
    def share(self) -> float:
        """The share of all kommuner that share use cases (0.0 to 1.0)."""
        return self.kommuner_with_use_cases / self.kommuner_total if self.kommuner_total else 0.0

    def without_use_cases(self) -> list[KommunCoverage]:
        """Kommuner that share no use case yet, by kommunkod."""
        return [k for k in self.kommuner if not k.shares_use_cases]

    def without_anything(self) -> list[KommunCoverage]:
        """Kommuner with no live record of any kind counted here, by kommunkod."""
        return [k for k in self.kommuner if k.records == 0]

    def county(self, code: str) -> CountyCoverage:
        for c in self.counties:
            if c.code == code:
                return c
        raise KeyError(code)

    def kommun(self, code: str) -> KommunCoverage:
        for k in self.kommuner:
            if k.code == code:
                return k
        raise KeyError(code)


@dataclass
class _Acc:
    """One kommun's counts while tallying."""

    statuses: Counter[int] = field(default_factory=Counter)
    areas: set[int] = field(default_factory=set)
    lessons: int = 0
    solutions: int = 0
    adoptions: int = 0
    adopted_by_others: int = 0


def compute_coverage(
    tallies: Iterable[RecordTally],
    members: Collection[str],
    *,
    member_view: bool,
    kommun_list: Mapping[str, Kommun] | None = None,
    county_list: Mapping[str, County] | None = None,
    profiles: Mapping[str, tuple[int, int]] | None = None,
) -> Coverage:
    """Coverage from a tally of current records and the active members.

    ``profiles`` maps a kommunkod to its profile's (population band, kommungrupp), for
    the kommuner whose profile is held and may be counted in this view.

    ``kommun_list`` and ``county_list`` default to the 290 kommuner and 21 län shipped
    with Samverka (tests may pass smaller ones).
    """
    all_kommuner = kommuner() if kommun_list is None else kommun_list
    all_counties = counties() if county_list is None else county_list
    acc: dict[str, _Acc] = defaultdict(_Acc)
    area_uses: Counter[int] = Counter()
    area_kommuner: defaultdict[int, set[str]] = defaultdict(set)
    recommendations = 0

    for t in tallies:
        if t.count <= 0 or t.tombstone:
            continue
        if not visible(t.visibility, member=member_view, include_drafts=False):
            continue
        if t.origin == HUB_ORIGIN:
            if t.kind == RECOMMENDATION:
                recommendations += t.count
            continue
        if t.origin not in all_kommuner:
            continue
        a = acc[t.origin]
        if t.kind == USE_CASE:
            a.statuses[t.status] += t.count
            a.areas.add(t.service_area)
            area_uses[t.service_area] += t.count
            area_kommuner[t.service_area].add(t.origin)
        elif t.kind == LESSON:
            a.lessons += t.count
        elif t.kind == SOLUTION:
            a.solutions += t.count
        elif t.kind == ADOPTION:
            a.adoptions += t.count
            if t.adopted_from != t.origin and t.adopted_from in all_kommuner:
                acc[t.adopted_from].adopted_by_others += t.count

    member_set = frozenset(members)
    rows: list[KommunCoverage] = []
    for code in sorted(all_kommuner):
        k = all_kommuner[code]
        a = acc.get(code) or _Acc()
        rows.append(
            KommunCoverage(
                code=code,
                name=k.short_name,
                county_code=k.county_code,
                member=code in member_set,
                use_cases_by_status={s: a.statuses[s] for s in _statuses(a.statuses)},
                service_areas=tuple(sorted(a.areas)),
                lessons=a.lessons,
                solutions=a.solutions,
                adoptions=a.adoptions,
                solutions_adopted_by_others=a.adopted_by_others,
                population_band=(profiles or {}).get(code, (0, 0))[0],
                kommun_group=(profiles or {}).get(code, (0, 0))[1],
            )
        )

    by_county: defaultdict[str, list[KommunCoverage]] = defaultdict(list)
    for row in rows:
        by_county[row.county_code].append(row)
    county_rows = tuple(
        CountyCoverage(
            code=code,
            name=all_counties[code].name if code in all_counties else code,
            kommuner=len(in_county),
            members=sum(1 for k in in_county if k.member),
            kommuner_with_use_cases=sum(1 for k in in_county if k.shares_use_cases),
            use_cases=sum(k.use_cases for k in in_county),
            solutions=sum(k.solutions for k in in_county),
        )
        for code in sorted(set(all_counties) | set(by_county))
        for in_county in [by_county.get(code, [])]
    )

    total_statuses: Counter[int] = Counter()
    for row in rows:
        total_statuses.update(row.use_cases_by_status)
    areas = tuple(
        sorted(
            (AreaCoverage(area, area_uses[area], len(area_kommuner[area])) for area in area_uses),
            key=lambda ac: (-ac.kommuner, -ac.use_cases, ac.service_area),
        )
    )
    return Coverage(
        member_view=member_view,
        kommuner_total=len(rows),
        members=sum(1 for r in rows if r.member),
        kommuner_with_use_cases=sum(1 for r in rows if r.shares_use_cases),
        use_cases=sum(r.use_cases for r in rows),
        lessons=sum(r.lessons for r in rows),
        solutions=sum(r.solutions for r in rows),
        adoptions=sum(r.adoptions for r in rows),
        recommendations=recommendations,
        use_cases_by_status={s: total_statuses[s] for s in _statuses(total_statuses)},
        areas=areas,
        counties=county_rows,
        kommuner=tuple(rows),
        kommuner_with_profile=sum(1 for r in rows if r.population_band or r.kommun_group),
        bands=_grouped(rows, records_pb2.PopulationBand.values(), lambda r: r.population_band),
        groups=_grouped(rows, records_pb2.KommunGroup.values(), lambda r: r.kommun_group),
    )


def _grouped(
    rows: Iterable[KommunCoverage], values: Iterable[int], key: Callable[[KommunCoverage], int]
) -> tuple[GroupCoverage, ...]:
    """One row per (specified) value, also for values no kommun is in."""
    by_value: defaultdict[int, list[KommunCoverage]] = defaultdict(list)
    for row in rows:
        by_value[key(row)].append(row)
    return tuple(
        GroupCoverage(
            value=value,
            kommuner=len(group),
            members=sum(1 for k in group if k.member),
            kommuner_with_use_cases=sum(1 for k in group if k.shares_use_cases),
            use_cases=sum(k.use_cases for k in group),
            solutions=sum(k.solutions for k in group),
            adoptions=sum(k.adoptions for k in group),
        )
        for value in sorted(values)
        if value
        for group in [by_value.get(value, [])]
    )


def _statuses(counts: Mapping[int, int]) -> list[int]:
    """The statuses present in ``counts``, in display order (unknown numbers last)."""
    present = [s for s in STATUS_ORDER if counts.get(s)]
    present += sorted(s for s, n in counts.items() if n and s not in STATUS_ORDER)
    return present
