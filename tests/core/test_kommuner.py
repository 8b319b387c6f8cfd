"""The shipped SCB codes: 290 kommuner, 21 län, and the hub's origin."""

from __future__ import annotations

from samverka.protocol.kommuner import (
    HUB_ORIGIN,
    counties,
    is_kommunkod,
    is_origin,
    kommun_name,
    kommuner,
)


def test_there_are_290_kommuner_in_21_lan() -> None:
    all_kommuner = kommuner()
    assert len(all_kommuner) == 290
    assert len(counties()) == 21
    assert {k.county_code for k in all_kommuner.values()} == set(counties())
    assert all(len(code) == 4 and code.isdigit() for code in all_kommuner)


def test_known_codes_and_names() -> None:
    assert kommun_name("2029") == "Leksand"
    assert kommun_name("0180") == "Stockholm"
    assert kommuner()["1472"].short_name == "Tibro"
    assert "å" in kommuner()["2026"].name or kommuner()["2026"].short_name == "Gagnef"


def test_the_hub_is_an_origin_but_not_a_kommun() -> None:
    assert is_origin(HUB_ORIGIN) and not is_kommunkod(HUB_ORIGIN)
    assert not is_origin("9999") and not is_origin("") and not is_origin("2029 ")
    assert "AI-rådet" in kommun_name(HUB_ORIGIN)
