"""Coverage statistics, pure: a known fixture, and invariants over arbitrary tallies."""

from __future__ import annotations

import dataclasses
import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samverka.protocol.kommuner import counties, kommuner
from samverka.v1 import records_pb2 as R
from samverka_hub.stats import (
    ADOPTION,
    LESSON,
    RECOMMENDATION,
    SOLUTION,
    USE_CASE,
    Coverage,
    RecordTally,
    compute_coverage,
)

LEKSAND, GAGNEF, TIBRO, HUB = "2029", "2026", "1472", "0000"
PUBLIC, MEMBERS, DRAFT = R.VISIBILITY_PUBLIC, R.VISIBILITY_MEMBERS, R.VISIBILITY_DRAFT
PILOT, PRODUCTION, ENDED, IDEA = (
    R.USE_CASE_STATUS_PILOT,
    R.USE_CASE_STATUS_PRODUCTION,
    R.USE_CASE_STATUS_ENDED,
    R.USE_CASE_STATUS_IDEA,
)
ELDERLY, SCHOOL, IT = R.SERVICE_AREA_ELDERLY_CARE, R.SERVICE_AREA_SCHOOL, R.SERVICE_AREA_IT


def uc(
    origin: str,
    status: int,
    area: int,
    *,
    visibility: int = PUBLIC,
    tombstone: bool = False,
    count: int = 1,
) -> RecordTally:
    """A tally of use cases."""
    return RecordTally(
        origin,
        USE_CASE,
        status=status,
        service_area=area,
        visibility=visibility,
        tombstone=tombstone,
        count=count,
    )


#: A small federation, counted by hand in the tests below.
FIXTURE: list[RecordTally] = [
    uc(LEKSAND, PILOT, ELDERLY, count=2),
    uc(LEKSAND, PRODUCTION, SCHOOL, visibility=MEMBERS),
    uc(LEKSAND, IDEA, IT, tombstone=True),  # retired: not counted
    uc(LEKSAND, PILOT, IT, visibility=DRAFT, count=3),  # drafts never count
    RecordTally(LEKSAND, SOLUTION),
    RecordTally(LEKSAND, ADOPTION, status=PRODUCTION, adopted_from=TIBRO),
    uc(GAGNEF, ENDED, IT),
    RecordTally(TIBRO, SOLUTION, visibility=MEMBERS),
    RecordTally(TIBRO, LESSON),
    RecordTally(HUB, RECOMMENDATION),
    RecordTally(HUB, RECOMMENDATION, tombstone=True),
    uc("9999", PILOT, IT, count=5),  # not a kommun
]
MEMBER_CODES = {LEKSAND, TIBRO, HUB, "9999"}


def test_known_fixture_as_members_see_it() -> None:
    cov = compute_coverage(FIXTURE, MEMBER_CODES, member_view=True)
    assert cov.member_view
    assert (cov.kommuner_total, cov.members, cov.kommuner_with_use_cases) == (290, 2, 2)
    assert cov.use_cases == 4
    assert dict(cov.use_cases_by_status) == {PILOT: 2, PRODUCTION: 1, ENDED: 1}
    assert list(cov.use_cases_by_status) == [PILOT, PRODUCTION, ENDED]  # display order
    assert (cov.lessons, cov.solutions, cov.adoptions, cov.recommendations) == (1, 2, 1, 1)
    assert [(a.service_area, a.kommuner, a.use_cases) for a in cov.areas] == [
        (ELDERLY, 1, 2),
        (SCHOOL, 1, 1),
        (IT, 1, 1),
    ]

    leksand = cov.kommun(LEKSAND)
    assert leksand.member and leksand.name == "Leksand" and leksand.county_code == "20"
    assert dict(leksand.use_cases_by_status) == {PILOT: 2, PRODUCTION: 1}
    assert leksand.service_areas == (ELDERLY, SCHOOL)
    assert (leksand.solutions, leksand.adoptions, leksand.records) == (1, 1, 5)
    tibro = cov.kommun(TIBRO)
    assert tibro.member and not tibro.shares_use_cases
    assert (tibro.solutions, tibro.lessons, tibro.solutions_adopted_by_others) == (1, 1, 1)
    gagnef = cov.kommun(GAGNEF)
    assert not gagnef.member and dict(gagnef.use_cases_by_status) == {ENDED: 1}

    dalarna = cov.county("20")
    assert (dalarna.name, dalarna.kommuner, dalarna.members) == ("Dalarnas län", 15, 1)
    assert (dalarna.kommuner_with_use_cases, dalarna.use_cases, dalarna.solutions) == (2, 4, 1)
    assert abs(dalarna.share - 2 / 15) < 1e-9
    vg = cov.county("14")
    assert (vg.kommuner, vg.members, vg.kommuner_with_use_cases, vg.solutions) == (49, 1, 0, 1)
    assert len(cov.without_use_cases()) == 288
    assert len(cov.without_anything()) == 287  # all but Leksand, Gagnef, Tibro


def test_known_fixture_as_the_public_sees_it() -> None:
    cov = compute_coverage(FIXTURE, MEMBER_CODES, member_view=False)
    assert not cov.member_view
    assert cov.use_cases == 3 and dict(cov.use_cases_by_status) == {PILOT: 2, ENDED: 1}
    assert cov.kommun(LEKSAND).service_areas == (ELDERLY,)
    assert (cov.solutions, cov.adoptions) == (1, 1)  # Tibro's MEMBERS solution hidden
    # the public adoption still names whose solution was reused
    assert cov.kommun(TIBRO).solutions_adopted_by_others == 1
    assert cov.members == 2  # membership is public (the directory is)


def test_a_smaller_reference_list() -> None:
    few = {code: kommuner()[code] for code in (LEKSAND, GAGNEF, TIBRO)}
    cov = compute_coverage(FIXTURE, MEMBER_CODES, member_view=True, kommun_list=few)
    assert cov.kommuner_total == 3
    assert [c.code for c in cov.counties] == sorted(counties())  # every län, even empty
    assert sum(c.kommuner for c in cov.counties) == 3


# -- invariants --------------------------------------------------------------------------

ORIGINS = [LEKSAND, GAGNEF, TIBRO, "0114", "2584", "1280", HUB, "9999"]
KINDS = [0, USE_CASE, LESSON, SOLUTION, RECOMMENDATION, ADOPTION, 9]
tallies_strategy = st.lists(
    st.builds(
        RecordTally,
        origin=st.sampled_from(ORIGINS),
        kind=st.sampled_from(KINDS),
        status=st.integers(0, 5),
        service_area=st.integers(0, 19),
        visibility=st.integers(0, 4),
        tombstone=st.booleans(),
        adopted_from=st.sampled_from(["", *ORIGINS]),
        count=st.integers(-1, 5),
    ),
    max_size=40,
)
members_strategy = st.sets(st.sampled_from([*ORIGINS, "0180", "2580"]))


def _counted(t: RecordTally, member_view: bool) -> bool:
    """Independent statement of what counts: live, a kommun's, and visible to the viewer."""
    shown = t.visibility == PUBLIC or (member_view and t.visibility != DRAFT)
    return t.count > 0 and not t.tombstone and t.origin in kommuner() and shown


def _check(cov: Coverage, tallies: list[RecordTally], members: set[str], view: bool) -> None:
    codes = [k.code for k in cov.kommuner]
    assert codes == sorted(kommuner()) and len(set(codes)) == cov.kommuner_total == 290
    assert [c.code for c in cov.counties] == sorted(counties()) and len(cov.counties) == 21
    assert sum(c.kommuner for c in cov.counties) == 290
    assert sum(c.members for c in cov.counties) == cov.members
    assert cov.members == len(members & set(kommuner()))
    assert sum(c.kommuner_with_use_cases for c in cov.counties) == cov.kommuner_with_use_cases
    assert sum(c.use_cases for c in cov.counties) == cov.use_cases

    expected_uc = sum(t.count for t in tallies if t.kind == USE_CASE and _counted(t, view))
    assert cov.use_cases == expected_uc
    assert sum(k.use_cases for k in cov.kommuner) == expected_uc
    assert sum(cov.use_cases_by_status.values()) == expected_uc
    assert sum(a.use_cases for a in cov.areas) == expected_uc
    kinds = ((SOLUTION, cov.solutions), (LESSON, cov.lessons), (ADOPTION, cov.adoptions))
    for kind, total in kinds:
        assert total == sum(t.count for t in tallies if t.kind == kind and _counted(t, view))
    assert cov.kommuner_with_use_cases == sum(1 for k in cov.kommuner if k.use_cases > 0)
    for area in cov.areas:
        assert 0 < area.kommuner <= cov.kommuner_with_use_cases
    assert all(n > 0 for n in cov.use_cases_by_status.values())
    reused = sum(k.solutions_adopted_by_others for k in cov.kommuner)
    assert reused <= cov.adoptions
    assert cov.recommendations == sum(
        t.count
        for t in tallies
        if t.origin == HUB
        and t.kind == RECOMMENDATION
        and t.count > 0
        and not t.tombstone
        and (t.visibility == PUBLIC or (view and t.visibility != DRAFT))
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tallies=tallies_strategy, members=members_strategy, view=st.booleans())
def test_totals_add_up_and_every_kommun_is_counted_once(
    tallies: list[RecordTally], members: set[str], view: bool
) -> None:
    _check(compute_coverage(tallies, members, member_view=view), tallies, members, view)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tallies=tallies_strategy, retired=tallies_strategy, members=members_strategy)
def test_retired_records_change_nothing(
    tallies: list[RecordTally], retired: list[RecordTally], members: set[str]
) -> None:
    tombstones = [dataclasses.replace(t, tombstone=True) for t in retired]
    for view in (True, False):
        plain = compute_coverage(tallies, members, member_view=view)
        assert compute_coverage(tallies + tombstones, members, member_view=view) == plain


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tallies=tallies_strategy, members=members_strategy, seed=st.integers(0, 1000))
def test_rows_can_be_split_merged_and_reordered(
    tallies: list[RecordTally], members: set[str], seed: int
) -> None:
    """A tally is a sum: how the database groups and orders its rows does not matter."""
    split: list[RecordTally] = []
    for t in tallies:
        if t.count > 1:
            split += [dataclasses.replace(t, count=1), dataclasses.replace(t, count=t.count - 1)]
        else:
            split.append(t)
    random.Random(seed).shuffle(split)
    assert compute_coverage(split, members, member_view=True) == compute_coverage(
        tallies, members, member_view=True
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tallies=tallies_strategy, members=members_strategy)
def test_the_public_sees_no_more_than_members(
    tallies: list[RecordTally], members: set[str]
) -> None:
    public = compute_coverage(tallies, members, member_view=False)
    full = compute_coverage(tallies, members, member_view=True)
    for p, m in zip(public.kommuner, full.kommuner, strict=True):
        assert p.use_cases <= m.use_cases and p.solutions <= m.solutions
        assert set(p.service_areas) <= set(m.service_areas)
    # the public view is the members' view of the public records alone
    only_public = [t for t in tallies if t.visibility == PUBLIC]
    assert dataclasses.replace(public, member_view=True) == compute_coverage(
        only_public, members, member_view=True
    )


def test_290_kommuner_are_counted_fast() -> None:
    """A federation where every kommun shares: ~6,000 tally rows (the GROUP BY's worst
    realistic size) are turned into coverage in well under a second."""
    rng = random.Random(7)
    tallies = [
        RecordTally(
            code,
            rng.choice([USE_CASE, USE_CASE, USE_CASE, SOLUTION, LESSON, ADOPTION]),
            status=rng.randint(1, 4),
            service_area=rng.randint(1, 18),
            visibility=rng.choice([PUBLIC, MEMBERS]),
            adopted_from=rng.choice(sorted(kommuner())),
            count=rng.randint(1, 9),
        )
        for code in sorted(kommuner())
        for _ in range(20)
    ]
    started = time.perf_counter()
    cov = compute_coverage(tallies, set(kommuner()), member_view=True)
    elapsed = time.perf_counter() - started
    assert cov.kommuner_with_use_cases == 290 and cov.members == 290
    assert elapsed < 1.0, f"coverage of 290 kommuner took {elapsed:.3f} s"
