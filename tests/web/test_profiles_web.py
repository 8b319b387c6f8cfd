"""Kommun profiles in the web catalog and the coverage by size and kommungrupp (issue 14,
points 1 and 2): a hub holding the demo federation, profiles published by the members'
nodes and ingested as a push would; the catalog counts PUBLIC profiles only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import webkit
from fastapi.testclient import TestClient
from samverka.v1 import records_pb2 as R
from samverka_hub.insight import hub_coverage
from webkit import GAGNEF, KUNGSBACKA, LEKSAND, client_for


def profile(band: int, group: int, *, visibility: int = R.VISIBILITY_PUBLIC) -> R.Record:
    record = R.Record(
        header=webkit.header("kommunprofil", R.RECORD_KIND_KOMMUN_PROFILE, visibility=visibility)
    )
    record.kommun_profile.CopyFrom(
        R.KommunProfile(
            population_band=band,  # type: ignore[arg-type]
            kommun_group=group,  # type: ignore[arg-type]
            interests=[R.SERVICE_AREA_ADMINISTRATION],
            contact_roles=["administrativ chef"],
            ai_rules=R.AiRules(max_risk_class=R.RISK_CLASS_MINIMAL, no_personal_data=True),
        )
    )
    return record


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webkit.Federation]:
    with webkit.seeded_hub(tmp_path_factory.mktemp("profiles")) as fed:
        fed.publish(LEKSAND, profile(R.POPULATION_BAND_FROM_10K_TO_25K, R.KOMMUN_GROUP_C9))
        fed.publish(KUNGSBACKA, profile(R.POPULATION_BAND_FROM_50K_TO_100K, R.KOMMUN_GROUP_A2))
        # A members-only profile: counted for members, never in the public catalog.
        fed.publish(
            GAGNEF,
            profile(
                R.POPULATION_BAND_FROM_10K_TO_25K,
                R.KOMMUN_GROUP_B4,
                visibility=R.VISIBILITY_MEMBERS,
            ),
        )
        yield fed


@pytest.fixture(scope="module")
def client(federation: webkit.Federation) -> TestClient:
    return client_for(federation)


def test_kommun_page_shows_the_profile(client: TestClient) -> None:
    html = client.get(f"/kommun/{LEKSAND}").text
    assert 'id="profil"' in html
    assert "C9 Landsbygdskommun med besöksnäring" in html
    assert "10 000–24 999 invånare" in html
    assert "Högsta riskklass: minimal risk" in html
    assert "Personuppgifter: får inte behandlas" in html
    assert "administrativ chef" in html
    assert 'id="profil"' not in client.get(f"/kommun/{GAGNEF}").text  # members only


def test_coverage_by_size_and_group_in_page_and_api(client: TestClient) -> None:
    html = client.get("/tackning").text
    section = html[html.index('id="per-grupp"') :]
    assert "2 av 290 kommuner har publicerat en" in section
    assert '<th scope="row">C9 Landsbygdskommun med besöksnäring</th><td>1</td>' in section
    data = client.get("/api/coverage").json()
    assert data["kommuner_with_profile"] == 2
    groups = {g["group"]["key"]: g for g in data["kommun_groups"]}
    assert len(groups) == 9 and groups["c9"]["kommuner"] == 1 and groups["b4"]["kommuner"] == 0
    assert groups["a2"]["kommuner_with_use_cases"] == 1
    bands = {g["group"]["key"]: g["kommuner"] for g in data["population_bands"]}
    assert bands["from-10k-to-25k"] == 1 and bands["from-50k-to-100k"] == 1
    leksand = next(k for k in data["kommuner"] if k["kommunkod"] == LEKSAND)
    assert leksand["kommun_group"] == {"key": "c9", "label": "C9 Landsbygdskommun med besöksnäring"}


def test_members_see_members_profiles_in_hub_stats(federation: webkit.Federation) -> None:
    hub = federation.hub
    members = hub_coverage(hub.store, hub.council.current_directory(), member_view=True)
    public = hub_coverage(hub.store, hub.council.current_directory(), member_view=False)
    assert members.kommuner_with_profile == 3 and public.kommuner_with_profile == 2
    assert {g.value: g.kommuner for g in members.groups}[R.KOMMUN_GROUP_B4] == 1
    assert members.kommun(GAGNEF).kommun_group == R.KOMMUN_GROUP_B4
    assert public.kommun(GAGNEF).kommun_group == 0


def test_a_profile_is_no_search_hit_nor_csv_row(client: TestClient) -> None:
    """A kommun profile belongs on its kommun's page: the search page, the records API
    and the CSV export (everything but adoptions when no kind is chosen) leave it out."""
    assert "kommunprofil" not in client.get("/sok").text
    assert "kommunprofil" not in client.get("/api/records").text
    assert "kommunprofil" not in client.get("/api/records.csv").text
