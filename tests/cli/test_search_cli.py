"""`samverka search` over own records (mirrored ones: see test_bundle_cli)."""

from __future__ import annotations

import json
from pathlib import Path

from clikit import LEKSAND, Cli


def add(cli: Cli, node: Path, *args: str) -> None:
    result = cli(*args, node=node)
    assert result.exit_code == 0, result.output


def test_search_handles_swedish_and_filters(cli: Cli, leksand: Path) -> None:
    add(cli, leksand, "usecase", "add", "--title", "Får i hagen", "--summary",
        "Betesdjur räknas med kamera", "--area", "miljö", "--status", "pilot")  # fmt: skip
    add(cli, leksand, "usecase", "add", "--title", "Far och son", "--summary",
        "Föräldraledighet planeras", "--area", "hr", "--status", "idea")  # fmt: skip
    add(cli, leksand, "lesson", "add", "--title", "Får man använda kameror?",
        "--category", "gdpr")  # fmt: skip

    hits = json.loads(cli("search", "får", "--json", node=leksand).stdout)
    assert sorted(h["id"] for h in hits) == ["lesson-far-man-anvanda-kameror", "uc-far-i-hagen"]
    assert all(h["origin"] == LEKSAND and h["origin_name"] == "Leksand" for h in hits)
    only_lessons = json.loads(
        cli("search", "får", "--kind", "lesson", "--json", node=leksand).stdout
    )
    assert [h["kind"] for h in only_lessons] == ["lesson"]
    far = json.loads(cli("search", "far", "--json", node=leksand).stdout)
    assert [h["id"] for h in far] == ["uc-far-och-son"]
    prefix = cli("search", "föräld", node=leksand)
    assert "uc-far-och-son" in prefix.stdout and "Användningsfall · Leksand" in prefix.stdout
    assert "inget hittades" in cli("search", "*:(", node=leksand).stdout
    other = json.loads(cli("search", "får", "--origin", "1472", "--json", node=leksand).stdout)
    assert other == []
    area = json.loads(cli("search", "får", "--area", "miljö", "--json", node=leksand).stdout)
    assert [h["id"] for h in area] == ["uc-far-i-hagen"]
    bad = cli("search", "x", "--origin", "12", node=leksand)
    assert bad.exit_code == 1 and "ingen kommunkod" in bad.stderr
