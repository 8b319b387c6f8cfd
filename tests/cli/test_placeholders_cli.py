"""Placeholder text is refused where records are written (issue 14, point 7): a title or
summary of "…" or "TODO" says nothing to the kommuner that find it. Drafts may hold
it; receivers still accept such entries signed elsewhere (it is no schema rule)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clikit import Cli
from samverka.node import Node
from samverka.protocol.validation import is_placeholder, placeholder_issues
from samverka.v1 import records_pb2 as R
from test_import_cli import GOOD, write_csv

ADD = ["--area", "it", "--status", "idé"]


def head(node_dir: Path) -> int:
    with Node.open(node_dir) as node:
        found = node.store.head(node.origin)
    return found.sequence if found is not None else 0


@pytest.mark.parametrize(
    "text", ["…", "...", " - ", "?", "TODO", "todo: skriv mer", "TBD", "FIXME", "Lorem ipsum",
             "Titel", "Sammanfattning:", "xxx", "N/A", "kommer senare"],
)  # fmt: skip
def test_placeholders_are_recognised(text: str) -> None:
    assert is_placeholder(text)


@pytest.mark.parametrize(
    "text", ["AI-policy …", "Test av taligenkänning", "TODO-listor med AI", "x-ray", "AI",
             "Chattbot för bygglov", "Titel på svenska: AI i skolan"],
)  # fmt: skip
def test_real_text_is_not_a_placeholder(text: str) -> None:
    assert not is_placeholder(text)


def test_a_public_use_case_titled_ellipsis_is_refused_in_swedish(cli: Cli, leksand: Path) -> None:
    result = cli(
        "usecase", "add", "--title", "…", "--summary", "…", *ADD, "--visibility", "public",
        node=leksand,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "posten publiceras inte: titeln är bara platshållartext: '…'" in result.stderr
    assert "sammanfattningen är bara platshållartext" in result.stderr
    assert "tips: skriv vad posten handlar om" in result.stderr
    assert "Traceback" not in result.output
    assert head(leksand) == 0  # nothing signed
    for summary in ("TODO", "TODO: fyll i"):
        refused = cli(
            "solution", "add", "--title", "Mall för DPIA", "--summary", summary,
            "--type", "impact-assessment-template", "--visibility", "members", node=leksand,
        )  # fmt: skip
        assert refused.exit_code == 1 and "platshållartext" in refused.stderr, refused.output


def test_a_draft_may_hold_a_placeholder(cli: Cli, leksand: Path) -> None:
    result = cli(
        "usecase", "add", "--title", "…", "--summary", "TODO", *ADD, "--visibility", "draft",
        node=leksand,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert head(leksand) == 1


def test_an_import_with_a_placeholder_row_is_refused_whole(
    cli: Cli, leksand: Path, tmp_path: Path
) -> None:
    row = dict(GOOD[1], titel="TODO", sammanfattning="...")
    path = write_csv(tmp_path / "inventering.csv", [GOOD[0], row])
    result = cli("import", path, "--visibility", "public", node=leksand)
    assert result.exit_code == 1, result.output
    assert "inget importerades" in result.stderr
    assert "line 3" in result.stderr and "platshållartext" in result.stderr, result.stderr
    assert head(leksand) == 0


def test_tombstones_and_receivers_are_not_affected() -> None:
    record = R.Record(
        header=R.RecordHeader(
            id="uc-1", kind=R.RECORD_KIND_USE_CASE, visibility=R.VISIBILITY_PUBLIC, tombstone=True
        ),
        use_case=R.UseCase(title="…", summary="…"),
    )
    assert placeholder_issues(record) == []  # a retraction keeps the body it had
    record.header.tombstone = False
    assert [i.field for i in placeholder_issues(record)] == ["use_case.title", "use_case.summary"]
