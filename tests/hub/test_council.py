"""Council features on a hub folder, on SQLite and PostgreSQL: recommendations,
coverage statistics from the store, and federation-wide search.

The commands run in-process through click's CliRunner (fast); the RPCs and real
processes are in ``test_council_e2e.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import factories
import pytest
from click.testing import CliRunner, Result
from factories import FeedWriter
from hubkit import Applicant, HubUnderTest
from samverka.cli import main
from samverka.node import init_node
from samverka.protocol.directory import keyring_from_directory
from samverka.protocol.entries import parse_signed
from samverka.protocol.verify import KeyRing
from samverka.replication.ingest import ingest
from samverka.store.store import Store
from samverka.transport.server.status import InvalidRequest
from samverka.v1 import records_pb2 as R
from samverka_hub.cli_council import coverage_json
from samverka_hub.insight import (
    MAX_SEARCH_LIMIT,
    SearchQuery,
    federation_search,
    hub_coverage,
    read_tallies,
)

LEKSAND, GAGNEF, TIBRO, FALUN = "2029", "2026", "1472", "2080"
PUBLIC, MEMBERS, DRAFT = R.VISIBILITY_PUBLIC, R.VISIBILITY_MEMBERS, R.VISIBILITY_DRAFT


def invoke(hub_dir: Path, *args: str) -> Result:
    """``samverka hub ARGS --dir HUB`` in-process."""
    return CliRunner().invoke(main, ["hub", *args, "--dir", str(hub_dir)])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.stderr}"
    return result


def admit(hub: HubUnderTest, *codes: str) -> None:
    for code in codes:
        hub.council.submit_enrollment(Applicant.make(code).request())
        hub.council.approve(code)


def store_entries(store: Store, *writers: FeedWriter) -> None:
    report = ingest(store, KeyRing(w.trusted_key() for w in writers), [
        e for w in writers for e in w.entries
    ])  # fmt: skip
    assert report.ok, report.first_refusal


# -- recommendations -------------------------------------------------------------------


def test_recommendations_are_signed_by_the_hub_and_verify_at_a_node(
    hub: HubUnderTest, tmp_path: Path
) -> None:
    hub_dir = hub.hub.dir
    added = ok(invoke(
        hub_dir, "recommend", "add", "--title", "Generativ AI i äldreomsorgen",
        "--summary", "Börja smått och mät nyttan.", "--body", "Rad ett.\nRad två.",
        "--area", "äldreomsorg", "--reference", "2029/uc-1", "--reference", "1472/sol-1",
        "--link", "https://www.imy.se/ IMY", "--tag", "genai", "--visibility", "public", "--json",
    ))  # fmt: skip
    shown = json.loads(added.stdout)
    rec_id = shown["id"]
    assert rec_id == "rec-generativ-ai-i-aldreomsorgen"
    assert (shown["origin"], shown["kind"], shown["version"]) == ("0000", "recommendation", 1)
    assert shown["key_id"] == hub.hub.signing_key.key_id
    body = shown["record"]["recommendation"]
    assert body["body"] == "Rad ett.\nRad två."
    assert body["service_area"] == "SERVICE_AREA_ELDERLY_CARE"
    assert [r["origin"] + "/" + r["id"] for r in body["references"]] == ["2029/uc-1", "1472/sol-1"]
    assert "publicerade rekommendation" in added.stderr  # stdout stays JSON

    edited = ok(invoke(hub_dir, "recommend", "edit", rec_id, "--clear", "link", "--json"))
    assert json.loads(edited.stdout)["version"] == 2
    same = ok(invoke(hub_dir, "recommend", "edit", rec_id, "--tag", "genai"))
    assert "oförändrad (fortfarande version 2)" in same.stdout
    listing = ok(invoke(hub_dir, "recommend", "list")).stdout
    assert "Offentlig" in listing and "Äldreomsorg" in listing and rec_id in listing
    show = ok(invoke(hub_dir, "recommend", "show", rec_id, "--history")).stdout
    assert "Rad två." in show and "version 1  0000#1" in show and "version 2  0000#2" in show

    ok(invoke(hub_dir, "recommend", "retire", rec_id))
    assert "inga rekommendationer" in ok(invoke(hub_dir, "recommend", "list")).stdout
    assert "(indragen)" in ok(invoke(hub_dir, "recommend", "list", "--include-retired")).stdout
    again = invoke(hub_dir, "recommend", "retire", rec_id)
    assert again.exit_code == 1 and "already retired" in again.stderr

    # A node verifies the council's entries against the hub's key in the directory.
    directory = hub.council.current_directory()
    assert directory is not None
    with init_node(tmp_path / "gagnef", GAGNEF) as node:
        raw = hub.hub.store.feed_entries("0000")
        report = ingest(node.store, keyring_from_directory(directory.directory), raw)
        assert report.ok and report.accepted == 3, report.first_refusal
        held = node.store.get_record("0000", rec_id)
        assert held is not None and held.tombstone and held.version == 3


def test_recommendation_refusals(hub: HubUnderTest, tmp_path: Path) -> None:
    hub_dir = hub.hub.dir
    missing = invoke(hub_dir, "recommend", "add", "--title", "Utan sammanfattning")
    assert missing.exit_code == 1 and "--summary" in missing.stderr
    bad = invoke(hub_dir, "recommend", "add", "--title", "T", "--summary", "S", "--area", "rymden")
    assert bad.exit_code == 1 and "area" in bad.stderr
    bad_link = invoke(
        hub_dir, "recommend", "add", "--title", "T", "--summary", "S", "--link", "ftp://x.se"
    )
    assert bad_link.exit_code == 1 and "link" in bad_link.stderr
    unknown = invoke(hub_dir, "recommend", "show", "rec-finns-inte")
    assert unknown.exit_code == 1 and "no recommendation" in unknown.stderr
    nothing = invoke(hub_dir, "recommend", "edit", "rec-x")
    assert nothing.exit_code == 1
    assert not hub.hub.store.feed_entries("0000")  # nothing was written

    # a node folder is not the hub's
    with init_node(tmp_path / "leksand", LEKSAND):
        pass
    node_folder = invoke(tmp_path / "leksand", "recommend", "list")
    assert node_folder.exit_code == 3 and "not a hub" in node_folder.stderr
    # and a node that is not enrolled cannot search at the hub yet
    lone = CliRunner().invoke(main, ["search", "--hub", "får", "--dir", str(tmp_path / "leksand")])
    assert lone.exit_code == 3 and "enroll" in lone.stderr


def test_body_from_a_file_and_an_explicit_id(hub: HubUnderTest, tmp_path: Path) -> None:
    text = tmp_path / "rek.md"
    text.write_text("# Rubrik\n\nLång text om upphandling.\n", encoding="utf-8")
    result = ok(invoke(
        hub.hub.dir, "recommend", "add", "--id", "rec-upphandling", "--title", "Upphandling",
        "--summary", "Kortfattat.", "--body-file", str(text), "--json",
    ))  # fmt: skip
    assert json.loads(result.stdout)["record"]["recommendation"]["body"].startswith("# Rubrik")
    dup = invoke(hub.hub.dir, "recommend", "add", "--id", "rec-upphandling", "--title", "X",
                 "--summary", "Y")  # fmt: skip
    assert dup.exit_code == 1 and "already has a record" in dup.stderr


# -- coverage from the store -----------------------------------------------------------


def federation(hub: HubUnderTest) -> None:
    """The small federation of test_stats.FIXTURE, as signed entries in the hub's store."""
    leksand, gagnef, tibro = FeedWriter(LEKSAND), FeedWriter(GAGNEF), FeedWriter(TIBRO)
    P = R.USE_CASE_STATUS_PILOT
    leksand.publish("use_case", record_id="uc-a", status=P)
    leksand.publish("use_case", record_id="uc-a2", status=P, title="Robotik i hemtjänsten")
    leksand.publish(
        "use_case", record_id="uc-b", visibility=MEMBERS, status=R.USE_CASE_STATUS_PRODUCTION,
        service_area=R.SERVICE_AREA_SCHOOL,
    )  # fmt: skip
    idea = leksand.publish(
        "use_case", record_id="uc-c", status=R.USE_CASE_STATUS_IDEA,
        service_area=R.SERVICE_AREA_IT,
    )  # fmt: skip
    leksand.append(factories.make_tombstone(parse_signed(idea).record))
    leksand.publish("use_case", record_id="uc-d", visibility=DRAFT, status=P)
    leksand.publish("solution", record_id="sol-l")
    leksand.publish("adoption", record_id="adopt-1")  # of 1472/sol-1
    gagnef.publish(
        "use_case", record_id="uc-g", status=R.USE_CASE_STATUS_ENDED,
        service_area=R.SERVICE_AREA_IT,
    )  # fmt: skip
    tibro.publish("solution", record_id="sol-1", visibility=MEMBERS)
    tibro.publish("lesson", record_id="lesson-1")
    store_entries(hub.hub.store, leksand, gagnef, tibro)
    publisher = hub.hub.node().publisher()
    publisher.publish(factories.make_recommendation(record_id="rec-a"))
    publisher.publish(factories.make_recommendation(record_id="rec-b"))
    publisher.retire("rec-b")
    admit(hub, LEKSAND, TIBRO)


def test_coverage_from_the_store_counts_the_fixture(hub: HubUnderTest) -> None:
    federation(hub)
    directory = hub.council.current_directory()
    full = hub_coverage(hub.hub.store, directory, member_view=True)
    assert (full.members, full.kommuner_with_use_cases, full.use_cases) == (2, 2, 4)
    assert (full.solutions, full.lessons, full.adoptions, full.recommendations) == (2, 1, 1, 1)
    assert dict(full.use_cases_by_status) == {
        R.USE_CASE_STATUS_PILOT: 2,
        R.USE_CASE_STATUS_PRODUCTION: 1,
        R.USE_CASE_STATUS_ENDED: 1,
    }
    assert full.kommun(TIBRO).solutions_adopted_by_others == 1
    assert full.county("20").kommuner_with_use_cases == 2
    public = hub_coverage(hub.hub.store, directory, member_view=False)
    assert (public.use_cases, public.solutions) == (3, 1)
    # the GROUP BY is small: one row per distinct combination, not per record
    assert len(read_tallies(hub.hub.store)) < 14

    data = json.loads(ok(invoke(hub.hub.dir, "stats", "--json")).stdout)
    assert data == coverage_json(full)
    assert data["view"] == "members" and data["use_cases_by_status"] == {
        "pilot": 2, "production": 1, "ended": 1,
    }  # fmt: skip
    assert data["service_areas"][0] == {
        "area": "elderly-care", "label": "Äldreomsorg", "use_cases": 2, "kommuner": 1,
    }  # fmt: skip
    public_json = json.loads(ok(invoke(hub.hub.dir, "stats", "--json", "--public")).stdout)
    assert public_json["view"] == "public" and public_json["use_cases"] == 3

    text = ok(invoke(hub.hub.dir, "stats")).stdout
    for expected in (
        "täckning bland Sveriges 290 kommuner",
        "Medlemmar                           2 av 290",
        "Pilot 2 · I drift 1 · Avslutad 1",
        "20 Dalarnas län",
        "Vanligaste verksamhetsområden",
        "Äldreomsorg",
        "Kommuner som inte delat något ännu (287)",
        "Stockholms län (26): Upplands Väsby, Vallentuna",
        # by size band and SKR kommungrupp: none placed yet, every band and group listed
        "Per storlek och kommungrupp (efter kommunernas profiler: 0 av 290 har en)",
        "C9 Landsbygdskommun med besöksnäring",
        "Under 10 000 invånare",
    ):
        assert expected in text, expected
    assert len(data["kommun_groups"]) == 9 and len(data["population_bands"]) == 6

    dalarna = ok(invoke(hub.hub.dir, "stats", "--county", "dalarna")).stdout
    assert "Kommuner i Dalarnas län" in dalarna and "Leksand" in dalarna
    assert "Stockholms län" not in dalarna
    by_code = json.loads(ok(invoke(hub.hub.dir, "stats", "--county", "20", "--json")).stdout)
    assert {k["county_code"] for k in by_code["kommuner"]} == {"20"}
    assert len(by_code["kommuner"]) == 15 and len(by_code["counties"]) == 1
    every = ok(invoke(hub.hub.dir, "stats", "--kommuner")).stdout
    assert every.count("Kommuner i ") == 21 and "Kommuner i Gotlands län" in every
    assert "2029  Leksand" in every and "Pilot 2 · I drift 1" in every
    wrong = invoke(hub.hub.dir, "stats", "--county", "Atlantis")
    assert wrong.exit_code == 1 and "inget län" in wrong.stderr


# -- search ------------------------------------------------------------------------------


def searchable(hub: HubUnderTest) -> None:
    falun, gagnef = FeedWriter(FALUN), FeedWriter(GAGNEF)
    falun.publish("use_case", record_id="uc-far", title="Får på bete i kommunens hagar",
                  summary="Fårskötsel med sensorer.",
                  service_area=R.SERVICE_AREA_ENVIRONMENT_HEALTH)  # fmt: skip
    falun.publish("use_case", record_id="uc-pappa", title="Far och barn i förskolan",
                  summary="Föräldrastöd.", service_area=R.SERVICE_AREA_PRESCHOOL)  # fmt: skip
    falun.publish("use_case", record_id="uc-members", visibility=MEMBERS,
                  title="Äldreomsorgens nattpatrull", summary="Intern pilot.")  # fmt: skip
    falun.publish("use_case", record_id="uc-draft", visibility=DRAFT,
                  title="Äldreomsorgens utkast", summary="Hemlig.")  # fmt: skip
    gone = falun.publish("use_case", record_id="uc-gone", title="Äldreomsorgens avvecklade bot")
    falun.append(factories.make_tombstone(parse_signed(gone).record))
    for i in range(MAX_SEARCH_LIMIT + 20):
        gagnef.publish("lesson", record_id=f"lesson-{i}", title=f"Gemensam lärdom {i}")
    store_entries(hub.hub.store, falun, gagnef)


def ids(hits: list[Any]) -> list[str]:
    return sorted(f"{h.hit.origin}/{h.hit.record_id}" for h in hits)


def test_search_is_swedish_literal_and_bounded(hub: HubUnderTest) -> None:
    searchable(hub)
    store = hub.hub.store

    def find(text: str, *, member: bool = True, **kw: Any) -> list[str]:
        return ids(federation_search(store, SearchQuery(text, **kw), member=member))

    assert find("får") == ["2080/uc-far"]  # not "Far och barn"
    assert find("far") == ["2080/uc-pappa"]
    assert find("äldre") == ["2080/uc-members"]  # prefix; no draft, no retired record
    assert find("ÄLDREOMSORGENS") == ["2080/uc-members"]
    assert find("aldreomsorg") == []  # ä is a letter of its own
    assert find("äldre", member=False) == []  # MEMBERS records are for members
    assert find("bete hagar") == ["2080/uc-far"]  # every word must match
    assert find("bete förskolan") == []
    assert find("förskola", service_areas=[R.SERVICE_AREA_PRESCHOOL]) == ["2080/uc-pappa"]
    assert find("får", origins=[GAGNEF]) == []
    assert find("får", kinds=[R.RECORD_KIND_LESSON]) == []

    hits = federation_search(store, SearchQuery("får"), member=True)
    assert hits[0].version == 1 and hits[0].hit.kind == R.RECORD_KIND_USE_CASE

    # bounded: 20 by default, never more than MAX_SEARCH_LIMIT
    assert len(find("gemensam")) == 20
    assert len(find("gemensam", limit=1000)) == MAX_SEARCH_LIMIT
    assert len(find("gemensam", limit=5)) == 5

    # hostile input is searched for literally, never run as query syntax
    for text in ('"', "'", "*", "får*", "NEAR(får bete)", "får OR far", "får -bete", "(", ")",
                 "\\", "%", "_", "--", "\x00", "😀", "å" * 5000, "a " * 500, "NOT", "'; DROP",
                 "får:*", "får & far", "får | far", "!får", "<->", ""):  # fmt: skip
        found = find(text)
        assert isinstance(found, list), text
    assert find("får OR far") == []  # "or" is a word that must match too
    assert find("!får") == ["2080/uc-far"] and find("får:*") == ["2080/uc-far"]

    with pytest.raises(InvalidRequest):
        federation_search(store, SearchQuery("x", origins=["20299"]), member=True)
    with pytest.raises(InvalidRequest):
        federation_search(store, SearchQuery("x", kinds=[99]), member=True)
    with pytest.raises(InvalidRequest):
        federation_search(store, SearchQuery("x", service_areas=[0]), member=True)

    cli = json.loads(ok(invoke(hub.hub.dir, "search", "får", "--json")).stdout)
    assert [(h["origin"], h["id"], h["kind"], h["version"]) for h in cli] == [
        ("2080", "uc-far", "use-case", 1)
    ]
    text = ok(invoke(hub.hub.dir, "search", "äldre")).stdout
    assert "2080/uc-members  Användningsfall · Falun · Medlemmar · version 1" in text
    assert "inget hittades" in ok(invoke(hub.hub.dir, "search", "äldre", "--public")).stdout
