"""The catalog's pages in process (ASGI test client) against a real hub on SQLite."""

from __future__ import annotations

import itertools
import re

import pytest
from fastapi.testclient import TestClient
from webkit import FALUN, GAGNEF, KUNGSBACKA, LEKSAND, SKARA, TIBRO, Federation

RESULT_LINK = re.compile(r'class="result-title"><a href="([^"]+)"')


def results(client: TestClient, url: str) -> list[str]:
    """The record paths a result page lists, in order."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    return RESULT_LINK.findall(response.text)


def test_every_page_is_swedish_html_with_landmarks(client: TestClient) -> None:
    for url in ["/", "/sok", "/sok?q=policy", "/tackning", "/beprovat", "/om", "/kommun/2029"]:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.text
        assert html.startswith("<!doctype html>")
        assert '<html lang="sv">' in html
        for landmark in ('<header class="site">', '<main id="innehall"', "<footer", "<nav"):
            assert landmark in html, (url, landmark)
        assert html.count("<h1") == 1, url
        assert 'href="#innehall"' in html  # skip link


def test_headings_never_skip_a_level(client: TestClient) -> None:
    for url in ["/", "/sok?q=AI", "/post/1384/uc-delad-assistent", "/tackning", "/beprovat"]:
        levels = [int(n) for n in re.findall(r"<h([1-6])[ >]", client.get(url).text)]
        assert levels[0] == 1, url
        for before, after in itertools.pairwise(levels):
            assert after <= before + 1, (url, levels)


def test_every_form_control_has_a_label(client: TestClient) -> None:
    for url in ["/", "/sok", "/tackning", "/beprovat"]:
        html = client.get(url).text
        ids = re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', html)
        assert ids, url
        for control in ids:
            assert f'<label for="{control}"' in html, (url, control)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("äldreomsorg", f"/post/{KUNGSBACKA}/uc-taligenkanning"),  # the area's Swedish name
        ("taligenk", f"/post/{KUNGSBACKA}/uc-taligenkanning"),  # a prefix
        ("Copilot", f"/post/{TIBRO}/uc-copilot-pilot"),
        ("behörigheterna", f"/post/{TIBRO}/lesson-behorigheter"),
        ("AI-policy Leksands", f"/post/{LEKSAND}/sol-ai-policy"),
        ("generativ AI rådets", "/post/0000/rec-generativ-ai"),
    ],
)
def test_swedish_search_finds_the_records(client: TestClient, text: str, expected: str) -> None:
    assert expected in results(client, f"/sok?q={text}")


def test_search_keeps_a_o_and_aa_apart(client: TestClient) -> None:
    # "får" is in Leksand's policy; "far" must not find it through it.
    assert f"/post/{LEKSAND}/sol-ai-policy" in results(client, "/sok?q=får")
    assert f"/post/{LEKSAND}/sol-ai-policy" not in results(client, "/sok?q=far")


def test_query_syntax_is_searched_literally(client: TestClient) -> None:
    for text in ['"', "*", "NEAR(", "a OR b", "-x", "'; DROP TABLE records; --", "ä" * 500]:
        assert client.get("/sok", params={"q": text}).status_code == 200


def test_filters_narrow_the_list(client: TestClient) -> None:
    everything = results(client, "/sok?q=AI")
    assert len(everything) >= 4
    narrowed = {
        "area=administration": {f"/post/{TIBRO}/uc-copilot-pilot", f"/post/{LEKSAND}/uc-ai-policy"},
        "status=pilot": {f"/post/{TIBRO}/uc-copilot-pilot"},
        "status=i drift": {
            f"/post/{LEKSAND}/uc-ai-policy",
            f"/post/{KUNGSBACKA}/uc-delad-assistent",
        },
        "risk=limited": {
            f"/post/{TIBRO}/uc-copilot-pilot",
            f"/post/{KUNGSBACKA}/uc-delad-assistent",
        },
        "kind=solution": {f"/post/{LEKSAND}/sol-ai-policy"},
        "kind=recommendation": {"/post/0000/rec-generativ-ai"},
        f"kommun={TIBRO}": {f"/post/{TIBRO}/uc-copilot-pilot"},
        "county=20": {f"/post/{LEKSAND}/uc-ai-policy", f"/post/{LEKSAND}/sol-ai-policy"},
    }
    for query, expected in narrowed.items():
        found = results(client, f"/sok?q=AI&{query}")
        assert set(found) >= expected, query
        assert len(found) < len(everything), query
        assert set(found) <= set(everything), query


def test_filters_fold_away_before_the_results_and_say_what_narrows(client: TestClient) -> None:
    html = client.get(f"/sok?q=AI&status=pilot&kommun={TIBRO}&technique=generativ").text
    form, results_at = html.index('role="search"'), html.index('id="traffar"')
    assert form < html.index('<details class="filters">') < results_at  # folded, not open
    assert "<summary>Filtrera (3 valda)</summary>" in html
    assert "Filtrerat på: Pilot, teknik: generativ, Tibro." in html
    assert html.count('href="/sok?q=AI">Rensa filter</a>') == 2  # keeps the words
    plain = client.get("/sok?q=AI").text
    assert "<summary>Filtrera</summary>" in plain and "Filtrerat på" not in plain


def test_browse_without_words_lists_every_public_record_and_filters(client: TestClient) -> None:
    everything = results(client, "/sok")
    assert f"/post/{FALUN}/uc-hostile" in everything
    assert f"/post/{KUNGSBACKA}/adopt-ai-policy" not in everything  # adoptions: on solutions
    elderly = results(client, "/sok?area=elderly-care")
    assert elderly == [f"/post/{KUNGSBACKA}/uc-taligenkanning"]
    high = results(client, "/sok?risk=hög")  # a Swedish name for the key "high"
    assert high == [f"/post/{KUNGSBACKA}/uc-taligenkanning"]
    both = results(client, "/sok?status=pilot&status=idea")
    assert f"/post/{TIBRO}/uc-copilot-pilot" in both and f"/post/{FALUN}/uc-hostile" in both


def test_technique_filter_matches_however_it_is_written(client: TestClient) -> None:
    found = set(results(client, "/sok?technique=GENERATIV ai"))
    assert found == {
        f"/post/{LEKSAND}/uc-ai-policy",
        f"/post/{KUNGSBACKA}/uc-delad-assistent",
        f"/post/{TIBRO}/uc-copilot-pilot",
    }
    assert results(client, "/sok?technique=taligenkänning&q=hemtjänsten") == [
        f"/post/{KUNGSBACKA}/uc-taligenkanning"
    ]
    assert results(client, "/sok?technique=finns-inte") == []
    html = client.get("/sok").text
    assert '<option value="Generativ AI">' in html  # suggested in the datalist


def test_pages_of_results(client: TestClient, federation: Federation) -> None:
    first = results(client, "/sok")
    html = client.get("/sok").text
    assert f"{len(first)} träffar" in html or "träffar" in html
    per_page = federation.hub.config.web.page_size
    assert len(first) <= per_page
    assert client.get("/sok?page=0").status_code == 422
    assert results(client, "/sok?page=999") == []


def test_unknown_filter_values_are_a_clear_400(client: TestClient) -> None:
    for query in ["area=rymdfart", "status=kanske", "county=99", "kommun=9999", "kind=adoption"]:
        response = client.get(f"/sok?{query}")
        assert response.status_code == 400, query
        assert "Felaktig fråga" in response.text
        assert "okän" in response.text.lower()  # okänt värde, okänt län, okänd kommunkod


def test_record_page_shows_fields_signature_and_download(
    client: TestClient, federation: Federation
) -> None:
    response = client.get(f"/post/{KUNGSBACKA}/uc-delad-assistent")
    assert response.status_code == 200
    html = response.text
    key_id = federation.members[KUNGSBACKA].key.key_id
    assert "Signatur verifierad" in html
    assert key_id in html
    assert f"/api/records/{KUNGSBACKA}/uc-delad-assistent/signed-entry" in html
    for text in [
        "Delad AI-assistent för kommunens medarbetare",
        "IT och digitalisering",  # area label from samverka.protocol.vocab
        "I drift",
        "Begränsad risk",
        "Generativ AI",
        "120\u00a0000\u00a0kr",
        "1\u00a0200 timmar",
        'href="/kommun/1472">Tibro',  # partner kommuner
        "https://www.kungsbacka.se/ai",
        "IT-chef i Kungsbacka",
        "AI-policy för Leksands kommun",  # the solution it reuses
    ]:
        assert text in html, text


def test_use_case_page_lists_its_public_lessons(client: TestClient) -> None:
    html = client.get(f"/post/{TIBRO}/uc-copilot-pilot").text
    assert f"/post/{TIBRO}/lesson-behorigheter" in html
    lesson = client.get(f"/post/{TIBRO}/lesson-behorigheter").text
    assert "Städa behörigheterna" in lesson
    assert f"/post/{TIBRO}/uc-copilot-pilot" in lesson  # the use case it is about


def test_solution_page_lists_adopters_licence_and_where_to_get_it(client: TestClient) -> None:
    html = client.get(f"/post/{LEKSAND}/sol-ai-policy").text
    assert "CC-BY-4.0" in html
    assert 'href="https://www.leksand.se/ai-policy.pdf"' in html
    assert "sha256:" + "ab" * 32 in html
    for code in (KUNGSBACKA, TIBRO, GAGNEF, SKARA):
        assert f'href="/kommun/{code}"' in html, code
    assert f"/post/{KUNGSBACKA}/uc-delad-assistent" in html  # reused by


def test_retracted_record_is_gone_with_an_explanation(client: TestClient) -> None:
    response = client.get(f"/post/{LEKSAND}/uc-retired")
    assert response.status_code == 410
    assert "dragits tillbaka" in response.text
    assert "bildtolkning" not in response.text
    assert f"/post/{LEKSAND}/uc-retired" not in results(client, "/sok?q=bildtolkning")


def test_unknown_record_and_kommun_are_404(client: TestClient) -> None:
    assert client.get("/post/2029/finns-inte").status_code == 404
    assert client.get("/post/9999/x").status_code == 404
    assert client.get("/kommun/9999").status_code == 404
    response = client.get("/ingen-sida")
    assert response.status_code == 404
    assert "Sidan finns inte" in response.text


def test_kommun_page_shows_what_it_shares_and_adopted(client: TestClient) -> None:
    html = client.get(f"/kommun/{KUNGSBACKA}").text
    assert "Kungsbacka" in html and "Hallands län" in html
    assert f"/post/{KUNGSBACKA}/uc-delad-assistent" in html
    assert f"/post/{LEKSAND}/sol-ai-policy" in html  # adopted
    assert "medlem i Samverka" in html
    leksand = client.get(f"/kommun/{LEKSAND}").text
    assert "AI-policy för Leksands kommun" in leksand
    assert "4 kommuner" in leksand  # its solution, adopted by others
    empty = client.get("/kommun/0114").text
    assert "delar inga öppna poster" in empty


def test_coverage_picture_has_all_290_kommuner_by_lan(client: TestClient) -> None:
    html = client.get("/tackning").text
    assert html.count('class="kommun level-') == 290
    assert len(set(re.findall(r'data-kommun="(\d{4})"', html))) == 290
    assert 'role="img"' in html and 'aria-labelledby="chart-title chart-desc"' in html
    assert html.count('<th scope="row"><a href="/sok?county=') == 21
    assert html.count('<th scope="row"><a href="/kommun/') == 290
    assert 'data-kommun="1384" x=' in html
    production = re.findall(r'class="kommun level-3" data-kommun="(\d{4})"', html)
    assert sorted(production) == sorted([LEKSAND, KUNGSBACKA])
    assert "4 av 290" in html  # kommuner sharing PUBLIC use cases
    # The picture is an image only (no link inside role=img: axe's nested-interactive);
    # its names are written out beside it, län by län, with the links.
    picture = html[html.index('<svg class="coverage"') : html.index("</svg>")]
    assert "<a " not in picture and "tabindex" not in picture
    names = html[html.index('id="namn"') : html.index('id="per-lan"')]
    assert '<a href="/kommun/1384">Kungsbacka</a>: 2 användningsfall' in names
    assert 'Dalarnas län <span class="muted">(3 av 15)</span>' in names
    assert "Ingen kommun ännu i Stockholms län, " in names


def test_coverage_by_service_area(client: TestClient) -> None:
    html = client.get("/tackning?area=elderly-care").text
    assert re.findall(r'class="kommun level-2" data-kommun="(\d{4})"', html) == [KUNGSBACKA]
    assert html.count('class="kommun level-') == 290


def test_proven_elsewhere_lists_most_adopted_first(client: TestClient) -> None:
    html = client.get("/beprovat").text
    assert f"/post/{LEKSAND}/sol-ai-policy" in html
    # Kungsbacka, Tibro and Skara run it in production; Gagnef's adoption is a pilot.
    assert "I drift i 3 kommuner" in html
    assert "införd i 4" in html
    assert "Ingen öppen lösning" in client.get("/beprovat?min=4").text
    assert "Ingen öppen lösning" in client.get("/beprovat?area=school&min=1").text


def test_static_assets_are_local_and_cached(client: TestClient) -> None:
    html = client.get("/").text
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    css = re.search(r'href="(/static/style\.css\?v=[0-9a-f]+)"', html)
    assert css is not None
    response = client.get(css.group(1))
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg")
