"""The catalog's pure parts: chart layout, signature re-check, query parsing, CSV cells."""

from __future__ import annotations

import pytest
from factories import T0_MS, FeedWriter, make_use_case
from hypothesis import given
from hypothesis import strategies as st
from samverka.protocol.directory import VerifiedDirectory, build_directory, hub_member
from samverka.protocol.kommuner import counties, kommuner
from samverka.protocol.signing import SigningKey
from samverka.v1 import directory_pb2, feed_pb2
from samverka.v1 import records_pb2 as R
from samverka_hub.stats import RecordTally, compute_coverage
from samverka_hub.web.catalog import BadFilter, Filters
from samverka_hub.web.chart import layout, level
from samverka_hub.web.export import cell, to_csv
from samverka_hub.web.present import number, sek
from samverka_hub.web.query import parse_filters, query_string
from samverka_hub.web.signature import SignatureStatus, check_signature

LEKSAND = "2029"


def coverage_with(*tallies: RecordTally):  # type: ignore[no-untyped-def]
    return compute_coverage(tallies, {LEKSAND}, member_view=False)


def test_chart_places_every_kommun_once_in_its_lan() -> None:
    chart = layout(
        coverage_with(
            RecordTally(LEKSAND, R.RECORD_KIND_USE_CASE, status=R.USE_CASE_STATUS_PRODUCTION),
            RecordTally("1472", R.RECORD_KIND_USE_CASE, status=R.USE_CASE_STATUS_PILOT),
            RecordTally("2026", R.RECORD_KIND_SOLUTION),
        )
    )
    assert len(chart.cells) == 290 == len({c.code for c in chart.cells})
    assert len({(c.x, c.y) for c in chart.cells}) == 290
    assert len(chart.rows) == 21
    levels = {c.code: c.level for c in chart.cells}
    assert (levels[LEKSAND], levels["1472"], levels["2026"], levels["0114"]) == (3, 2, 1, 0)
    assert sum(item.count for item in chart.legend) == 290
    for c in chart.cells:
        assert 0 <= c.x <= chart.width - chart.cell and 0 <= c.y <= chart.height - chart.cell
    rows = {r.code: r for r in chart.rows}
    for c in chart.cells:  # a kommun sits at or below its län's label, above the next
        county = kommuner()[c.code].county_code
        assert c.y >= rows[county].label_y - chart.cell
    assert [r.code for r in chart.rows] == sorted(counties())
    # the names beside the picture: each sharing kommun once, under its own län
    listed = [(r.code, c.code) for r in chart.rows for c in r.sharing_cells]
    assert sorted(c for _, c in listed) == sorted(c.code for c in chart.cells if c.level)
    assert all(kommuner()[c].county_code == county for county, c in listed)


def test_chart_by_service_area() -> None:
    cov = coverage_with(
        RecordTally(LEKSAND, R.RECORD_KIND_USE_CASE, service_area=R.SERVICE_AREA_SCHOOL),
    )
    chart = layout(cov, area=R.SERVICE_AREA_SCHOOL)
    assert [c.code for c in chart.cells if c.level == 2] == [LEKSAND]
    assert [i.count for i in chart.legend] == [289, 1]
    assert level(cov.kommun(LEKSAND), R.SERVICE_AREA_ELDERLY_CARE) == 0


def directory_for(*writers: FeedWriter) -> VerifiedDirectory:
    hub_key = SigningKey.generate()
    members = [hub_member(hub_key.public)]
    for w in writers:
        members.append(
            directory_pb2.Member(
                kommunkod=w.origin,
                name=w.origin,
                status=directory_pb2.MEMBER_STATUS_ACTIVE,
                keys=[directory_pb2.MemberKey(key_id=w.key.key_id, public_key=w.key.public.raw)],
            )
        )
    return build_directory(hub_key, version=3, members=members, issued_at_ms=T0_MS)


def test_signature_check_verifies_and_catches_tampering() -> None:
    leksand, tibro = FeedWriter(LEKSAND), FeedWriter("1472")
    signed = leksand.publish("use_case", title="AI-policy")
    raw = signed.SerializeToString()
    directory = directory_for(leksand, tibro)
    good = check_signature(raw, directory)
    assert good.status is SignatureStatus.VERIFIED and good.verified
    assert (good.key_id, good.origin, good.sequence, good.directory_version) == (
        leksand.key.key_id,
        LEKSAND,
        1,
        3,
    )
    flipped = feed_pb2.SignedEntry()
    flipped.CopyFrom(signed)
    flipped.entry = signed.entry[:-1] + bytes([signed.entry[-1] ^ 1])
    bad = check_signature(flipped.SerializeToString(), directory)
    assert bad.status is SignatureStatus.INVALID
    # Signed by Tibro's key but claiming Leksand's feed: the key is not of that origin.
    forged = leksand.build(make_use_case(record_id="uc-forged", origin=LEKSAND), key=tibro.key)
    assert check_signature(forged.SerializeToString(), directory).status is (
        SignatureStatus.INVALID
    )
    stranger = directory_for(tibro)
    assert check_signature(raw, stranger).status is SignatureStatus.UNKNOWN_KEY
    assert check_signature(raw, None).status is SignatureStatus.UNKNOWN_KEY
    assert check_signature(b"not an entry", directory).status is SignatureStatus.INVALID


def test_query_parameters_accept_keys_and_swedish_names() -> None:
    f = parse_filters(
        q="äldreomsorg",
        kind=["use-case", "Lärdom"],
        area=["äldreomsorg", "elderly-care"],
        status=["i drift"],
        risk=["HÖG"],
        county="20",
        kommun="2029",
    )
    assert f.kinds == (R.RECORD_KIND_USE_CASE, R.RECORD_KIND_LESSON)
    assert f.areas == (R.SERVICE_AREA_ELDERLY_CARE,)
    assert f.statuses == (R.USE_CASE_STATUS_PRODUCTION,)
    assert f.risks == (R.RISK_CLASS_HIGH,)
    assert f.origins() == ["2029"]
    assert parse_filters(county="20", kommun="1472").origins() == []  # Tibro is not in Dalarna
    assert query_string(f).startswith("?q=%C3%A4ldreomsorg&kind=use-case&kind=lesson")
    assert parse_filters(**dict(parse_query(query_string(f)))) == f
    for bad in ({"area": ["rymden"]}, {"county": "99"}, {"kommun": "12"}, {"kind": ["adoption"]}):
        with pytest.raises(BadFilter):
            parse_filters(**bad)  # type: ignore[arg-type]


def parse_query(qs: str) -> dict[str, object]:
    from urllib.parse import parse_qs

    raw = parse_qs(qs.lstrip("?"))
    single = {"q", "technique", "county", "kommun"}
    return {k: (v[0] if k in single else v) for k, v in raw.items()}


@given(st.text(max_size=300), st.text(max_size=50))
def test_any_text_is_a_valid_search(text: str, technique: str) -> None:
    f = parse_filters(q=text, technique=technique)
    assert isinstance(f, Filters) and len(f.text) <= 200


def test_csv_cells_and_numbers() -> None:
    for dangerous in ("=1+1", "+46", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert cell(dangerous) == "'" + dangerous
    assert cell("Äldreomsorg = bra") == "Äldreomsorg = bra"
    assert to_csv([], base_url="http://x/").startswith("\ufeffTyp;Titel;")
    assert sek(120000) == "120\u00a0000\u00a0kr"
    assert number(1200.0) == "1\u00a0200" and number(2.5) == "2,5"
