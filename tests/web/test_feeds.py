"""The catalog's Atom feeds, read as a feed reader reads them (feedparser) and as XML.

Every feed is well-formed Atom 1.0 (feedparser: ``bozo == 0``, version ``atom10``),
carries the demo's PUBLIC records with the verified-signature mark, and nothing else:
no MEMBERS record, draft or retracted record, in any feed. Links come from ``[web]
public_url``, never the Host header. Readers that poll get 304 while nothing changed.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
import webkit
from fastapi.testclient import TestClient
from samverka.v1 import records_pb2 as R
from samverka_hub.config import WebSection
from samverka_hub.web import atom
from samverka_hub.web.app import create_app
from samverka_hub.web.catalog import Catalog, FeedItem, Summary
from samverka_hub.web.signature import SignatureCheck, SignatureStatus
from webkit import FALUN, KUNGSBACKA, LEKSAND, SECRET, TIBRO, Federation

A = "{http://www.w3.org/2005/Atom}"

#: Each stable feed, and the (origin, record id) of the demo's records it must carry,
#: newest first.
FEEDS: dict[str, list[tuple[str, str]]] = {
    "/flode.atom": [
        ("0000", "rec-generativ-ai"),
        (FALUN, "uc-formel"),
        (FALUN, "uc-hostile"),
        (TIBRO, "lesson-behorigheter"),
        (TIBRO, "uc-copilot-pilot"),
        (KUNGSBACKA, "uc-taligenkanning"),
        (KUNGSBACKA, "uc-delad-assistent"),
        (LEKSAND, "uc-ai-policy"),
        (LEKSAND, "sol-ai-policy"),
    ],
    f"/flode/kommun/{LEKSAND}.atom": [(LEKSAND, "uc-ai-policy"), (LEKSAND, "sol-ai-policy")],
    "/flode/kommun/0000.atom": [("0000", "rec-generativ-ai")],
    "/flode/omrade/elderly-care.atom": [(KUNGSBACKA, "uc-taligenkanning")],
    "/flode/omrade/administration.atom": [
        ("0000", "rec-generativ-ai"),
        (TIBRO, "uc-copilot-pilot"),
        (LEKSAND, "uc-ai-policy"),
        (LEKSAND, "sol-ai-policy"),
    ],
    "/flode/typ/use-case.atom": [
        (FALUN, "uc-formel"),
        (FALUN, "uc-hostile"),
        (TIBRO, "uc-copilot-pilot"),
        (KUNGSBACKA, "uc-taligenkanning"),
        (KUNGSBACKA, "uc-delad-assistent"),
        (LEKSAND, "uc-ai-policy"),
    ],
    "/flode/typ/lesson.atom": [(TIBRO, "lesson-behorigheter")],
    "/flode/typ/solution.atom": [(LEKSAND, "sol-ai-policy")],
    "/flode/typ/recommendation.atom": [("0000", "rec-generativ-ai")],
    "/flode/rekommendationer.atom": [("0000", "rec-generativ-ai")],
    # The search filters, as the search page links them.
    "/flode.atom?kind=solution&county=20": [(LEKSAND, "sol-ai-policy")],
    "/flode.atom?area=it&status=production": [(KUNGSBACKA, "uc-delad-assistent")],
}

#: Records a feed must never carry: MEMBERS, drafts, a retracted one, adoptions.
NEVER = [
    (LEKSAND, "uc-members-only"),
    (KUNGSBACKA, "lesson-members"),
    (TIBRO, "sol-members"),
    ("0000", "rec-members"),
    ("0000", "rec-draft"),
    (LEKSAND, "uc-draft"),
    (LEKSAND, "uc-retired"),
    (KUNGSBACKA, "adopt-ai-policy"),
]


def parse(response_body: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(response_body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def keys_of(parsed: feedparser.FeedParserDict) -> list[tuple[str, str]]:
    """(origin, record id) of each entry, from its link to the record page."""
    keys = []
    for entry in parsed.entries:
        page = next(link.href for link in entry.links if link.type == "text/html")
        _, _, origin, record_id = page.rsplit("/", 3)
        keys.append((origin, record_id))
    return keys


@pytest.mark.parametrize("path", list(FEEDS))
def test_each_feed_is_valid_atom_with_the_demo_records(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = parse(response.content)
    assert keys_of(parsed) == FEEDS[path]
    assert parsed.feed.id.startswith("tag:localhost,2025:flode")
    assert parsed.feed.language == "sv"
    assert any(link.rel == "self" and link.href.endswith(path) for link in parsed.feed.links)
    for entry in parsed.entries:
        origin, record_id = keys_of(feedparser.FeedParserDict(entries=[entry]))[0]
        assert entry.id == f"tag:localhost,2025:post/{origin}/{record_id}/v1"
        assert entry.summary.startswith("✓ Signatur verifierad: signerad av ")
        assert entry.author == ("AI-rådet" if origin == "0000" else webkit_name(origin))
        assert entry.updated_parsed is not None
        assert "Läs hela posten i Samverka" in entry.content[0].value
    # The machine-readable mark: every entry verified, with its chain hash.
    root = ET.fromstring(response.content)
    marks = root.findall(f"{A}entry/{{{atom.SAMVERKA_NS}}}signature")
    assert len(marks) == len(FEEDS[path])
    assert all(m.get("status") == "verified" and len(m.get("entry-hash", "")) == 64 for m in marks)


def webkit_name(code: str) -> str:
    from samverka_hub.web.present import kommun_name

    return kommun_name(code)


def test_no_feed_carries_what_is_not_public(client: TestClient) -> None:
    paths = [
        *FEEDS,
        "/flode/omrade/social-services.atom",  # the MEMBERS use case's area: empty
        f"/flode/kommun/{TIBRO}.atom",
        "/flode.atom?risk=high",
        f"/flode.atom?technique={SECRET}teknik",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode("utf-8")
        assert SECRET.lower() not in body.replace(SECRET + "teknik", "").lower(), path
        for origin, record_id in NEVER:
            assert f"/post/{origin}/{record_id}" not in body, (path, record_id)
        parse(response.content)
    assert parse(client.get("/flode/omrade/social-services.atom").content).entries == []


def test_record_text_is_escaped_twice_in_html_content(client: TestClient) -> None:
    body = client.get(f"/flode/kommun/{FALUN}.atom").content
    root = ET.fromstring(body)  # well-formed XML whatever the record says
    entry = next(
        e for e in root.findall(f"{A}entry") if e.findtext(f"{A}title") == webkit.HOSTILE_TITLE
    )
    content = entry.findtext(f"{A}content") or ""
    # Once unescaped as XML, the HTML still shows the markup as text: never as tags.
    assert "&lt;b&gt;fet&lt;/b&gt;" in content
    assert "&quot;&gt;&lt;svg onload=alert(2)&gt;" in content
    assert "<svg" not in content and "<script" not in content
    parsed = parse(body)
    hostile = next(e for e in parsed.entries if "Chattbot" in e.title)
    assert "<svg" not in hostile.content[0].value


def test_unknown_feeds_are_404_and_words_are_refused(client: TestClient) -> None:
    for path in (
        "/flode/omrade/ingenting.atom",
        "/flode/typ/adoption.atom",
        "/flode/typ/ingenting.atom",
        "/flode/kommun/9999.atom",
        "/flode/kommun/abcd.atom",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get("/flode.atom?q=copilot").status_code == 400
    # Swedish words name the same feed as the stable keys.
    assert (
        client.get("/flode/omrade/äldreomsorg.atom").content
        == client.get("/flode/omrade/elderly-care.atom").content
    )
    assert client.get("/flode/typ/lärdom.atom").status_code == 200


def test_pages_link_their_feeds(client: TestClient) -> None:
    expected = {
        "/": ["/flode.atom", "/flode/rekommendationer.atom"],
        "/om": ["/flode.atom", "/flode/rekommendationer.atom"],
        "/sok?area=elderly-care": [
            "/flode.atom?area=elderly-care",
            "/flode.atom",
            "/flode/rekommendationer.atom",
        ],
        "/sok?q=copilot": ["/flode.atom", "/flode/rekommendationer.atom"],
        f"/kommun/{LEKSAND}": [
            f"/flode/kommun/{LEKSAND}.atom",
            "/flode.atom",
            "/flode/rekommendationer.atom",
        ],
        f"/post/{TIBRO}/uc-copilot-pilot": [
            f"/flode/kommun/{TIBRO}.atom",
            "/flode.atom",
            "/flode/rekommendationer.atom",
        ],
        "/tackning?area=it": [
            "/flode/omrade/it.atom",
            "/flode.atom",
            "/flode/rekommendationer.atom",
        ],
    }
    for page, feeds in expected.items():
        html = client.get(page).text
        head = html.split("</head>", 1)[0]
        linked = [
            line.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            for line in head.splitlines()
            if 'rel="alternate" type="application/atom+xml"' in line
        ]
        assert linked == feeds, page
        for href in linked:
            assert parse(client.get(href).content).feed.title, href
    # Visible links for people, too.
    assert f'href="/flode/kommun/{LEKSAND}.atom"' in client.get(f"/kommun/{LEKSAND}").text
    assert 'href="/flode.atom?area=elderly-care"' in client.get("/sok?area=elderly-care").text


def test_links_and_ids_come_from_public_url_never_the_host_header(
    federation: Federation,
) -> None:
    hub = federation.hub
    settings = WebSection(public_url="https://katalog.example.se/samverka/")
    client = TestClient(create_app(Catalog(hub.store, hub.council.current_directory), settings))
    response = client.get(f"/flode/kommun/{LEKSAND}.atom", headers={"Host": "evil.example"})
    assert b"evil.example" not in response.content
    parsed = parse(response.content)
    base = "https://katalog.example.se/samverka"
    assert parsed.feed.id == f"tag:katalog.example.se,2025:flode/kommun/{LEKSAND}"
    assert {link.href for link in parsed.feed.links} == {
        f"{base}/flode/kommun/{LEKSAND}.atom",
        f"{base}/kommun/{LEKSAND}",
    }
    first = parsed.entries[0]
    assert first.id == f"tag:katalog.example.se,2025:post/{LEKSAND}/uc-ai-policy/v1"
    assert first.link == f"{base}/post/{LEKSAND}/uc-ai-policy"
    assert first.author_detail.href == f"{base}/kommun/{LEKSAND}"


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Federation]:
    """A federation of its own, for tests that publish."""
    with webkit.seeded_hub(tmp_path) as seeded:
        yield seeded


def fresh_client(federation: Federation, **settings: object) -> TestClient:
    hub = federation.hub
    catalog = Catalog(hub.store, hub.council.current_directory)
    return TestClient(create_app(catalog, WebSection(**settings)))  # type: ignore[arg-type]


def test_readers_polling_get_304_until_something_new_is_published(fresh: Federation) -> None:
    client = fresh_client(fresh, feed_size=3)
    first = client.get("/flode.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.headers["cache-control"] == "public, max-age=300"
    assert len(parse(first.content).entries) == 3  # bounded by [web] feed_size
    assert client.get("/flode.atom", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/flode.atom", headers={"If-Modified-Since": modified}).status_code == 304
    # A new version of Leksand's policy: first in the feed, as its own entry (v2).
    time.sleep(0.01)
    fresh.publish(
        LEKSAND,
        webkit.solution(
            "sol-ai-policy",
            title="AI-policy för Leksands kommun, andra upplagan",
            summary="Nu med regler för bildgenerering.",
            solution_type=R.SOLUTION_TYPE_POLICY,
            service_area=R.SERVICE_AREA_ADMINISTRATION,
            licence="CC-BY-4.0",
        ),
    )
    again = client.get("/flode.atom", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["etag"] != etag
    entries = parse(again.content).entries
    assert entries[0].id == f"tag:localhost,2025:post/{LEKSAND}/sol-ai-policy/v2"
    assert entries[0].title == "AI-policy för Leksands kommun, andra upplagan"
    assert all("sol-ai-policy/v1" not in e.id for e in entries)


def test_a_kommun_profile_is_in_no_feed(fresh: Federation) -> None:
    """Profiles (kind 6) describe a kommun; they are not news (nor browsable)."""
    profile = R.Record(
        header=webkit.header("kommunprofil", R.RECORD_KIND_KOMMUN_PROFILE),
        kommun_profile=R.KommunProfile(
            population_band=R.POPULATION_BAND_FROM_10K_TO_25K,
            kommun_group=R.KOMMUN_GROUP_C9,
            interests=[R.SERVICE_AREA_ADMINISTRATION],
        ),
    )
    fresh.publish(LEKSAND, profile)
    client = fresh_client(fresh)
    for path in ("/flode.atom", f"/flode/kommun/{LEKSAND}.atom"):
        body = client.get(path).content
        assert b"kommunprofil" not in body, path
        assert keys_of(parse(body)) == FEEDS[path]


def test_a_record_made_members_only_leaves_every_feed(fresh: Federation) -> None:
    client = fresh_client(fresh)
    assert (TIBRO, "uc-copilot-pilot") in keys_of(parse(client.get("/flode.atom").content))
    fresh.publish(
        TIBRO,
        webkit.use_case(
            "uc-copilot-pilot",
            visibility=R.VISIBILITY_MEMBERS,
            title=f"{SECRET}: piloten stängd för andra",
            summary=f"{SECRET}.",
            service_area=R.SERVICE_AREA_ADMINISTRATION,
            status=R.USE_CASE_STATUS_PILOT,
        ),
    )
    for path in ("/flode.atom", f"/flode/kommun/{TIBRO}.atom", "/flode/typ/use-case.atom"):
        body = client.get(path).content
        assert b"uc-copilot-pilot" not in body and SECRET.encode() not in body, path


def test_characters_xml_cannot_carry_are_dropped_not_fatal() -> None:
    summary = Summary(
        origin=LEKSAND,
        record_id="uc-styrtecken",
        kind=R.RECORD_KIND_USE_CASE,
        title="Titel\x00 med\x0b styrtecken\ufffe och \U0001f916",
        summary="Rad ett\nrad två\x1b[31m",
        service_area=R.SERVICE_AREA_IT,
        status=R.USE_CASE_STATUS_IDEA,
        risk_class=0,
        version=2,
        timestamp_ms=1_750_000_000_000,
    )
    sig = SignatureCheck(SignatureStatus.INVALID, "k1", LEKSAND, 7, "00" * 32, 3)
    meta = atom.FeedMeta("/flode.atom", "flode", "T", "S", "/sok")
    body = atom.render(meta, [FeedItem(summary, sig)], base_url="")
    parsed = parse(body)
    entry = parsed.entries[0]
    assert entry.title == "Titel med styrtecken och \U0001f916"
    assert entry.updated == "2025-06-15T15:06:40Z"
    assert entry.summary.startswith("⚠ Signaturen kunde inte verifieras")
    assert entry.id == f"tag:localhost,2025:post/{LEKSAND}/uc-styrtecken/v2"
