"""The key search and record routes on a hub whose store is PostgreSQL (``swedish``
full-text configuration, the technique filter as ``rid = ANY(array)``). Visibility on
PostgreSQL is covered by test_visibility.py, which runs on both engines."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from webkit import KUNGSBACKA, LEKSAND, TIBRO, Federation

RESULT_LINK = re.compile(r'class="result-title"><a href="([^"]+)"')


def results(client: TestClient, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return RESULT_LINK.findall(response.text)


def test_swedish_search_and_filters_on_postgresql(pg_client: TestClient) -> None:
    assert f"/post/{KUNGSBACKA}/uc-taligenkanning" in results(pg_client, "/sok?q=äldreomsorg")
    assert f"/post/{KUNGSBACKA}/uc-taligenkanning" in results(pg_client, "/sok?q=hemtjänsten")
    copilot = results(pg_client, "/sok?q=copilot")
    assert f"/post/{TIBRO}/uc-copilot-pilot" in copilot
    assert results(pg_client, "/sok?q=copilot&kind=lesson") == [
        f"/post/{TIBRO}/lesson-behorigheter"
    ]
    assert results(pg_client, "/sok?q=AI&status=pilot") == [f"/post/{TIBRO}/uc-copilot-pilot"]
    assert set(results(pg_client, "/sok?technique=generativ ai")) == {
        f"/post/{LEKSAND}/uc-ai-policy",
        f"/post/{KUNGSBACKA}/uc-delad-assistent",
        f"/post/{TIBRO}/uc-copilot-pilot",
    }
    assert results(pg_client, "/sok?county=13") == [
        f"/post/{KUNGSBACKA}/uc-taligenkanning",
        f"/post/{KUNGSBACKA}/uc-delad-assistent",
    ]


def test_record_page_and_download_on_postgresql(
    pg_client: TestClient, pg_federation: Federation
) -> None:
    html = pg_client.get(f"/post/{TIBRO}/uc-copilot-pilot").text
    assert "Signatur verifierad" in html
    assert pg_federation.members[TIBRO].key.key_id in html
    assert f"/post/{TIBRO}/lesson-behorigheter" in html
    entry = pg_client.get(f"/api/records/{TIBRO}/uc-copilot-pilot/signed-entry")
    assert entry.status_code == 200 and len(entry.content) > 100
    assert "I drift i 3 kommuner" in pg_client.get("/beprovat").text
    assert pg_client.get("/tackning").text.count('class="kommun level-') == 290
