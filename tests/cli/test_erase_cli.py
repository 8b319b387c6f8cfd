"""``samverka usecase|lesson|solution erase`` (issue 13, point 3), in process (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

from clikit import LEKSAND, Cli
from samverka.node import Node

SECRET = "Zebulonsson7f3a"
ADD = [
    "usecase", "add", "--id", "uc-a", "--title", "Chattbot för bygglov",
    "--summary", f"Kontaktperson {SECRET} svarar på frågor", "--area", "administration",
    "--status", "production", "--risk", "minimal", "--visibility", "public",
]  # fmt: skip


def test_erase_drops_every_version_and_keeps_the_chain(cli: Cli, leksand: Path) -> None:
    assert cli(*ADD, node=leksand).exit_code == 0
    edited = cli("usecase", "edit", "uc-a", "--status", "pilot", node=leksand)
    assert edited.exit_code == 0, edited.output

    done = cli(
        "usecase", "erase", "uc-a", "--reason", "personuppgifter", "--note", "ett namn",
        "--json", node=leksand,
    )  # fmt: skip

    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert [e["sequence"] for e in answer["erased"]] == [1, 2]
    assert answer["reason"] == "personuppgifter" and answer["erasure"] == f"{LEKSAND}#3"
    with Node.open(leksand) as node:
        assert node.store.get_record(LEKSAND, "uc-a") is None
        assert node.store.search(SECRET) == []
        kinds = [e.WhichOneof("item") for e in node.store.feed_items(LEKSAND)]
        assert kinds == ["redacted", "redacted", "signed"]
    again = cli("usecase", "erase", "uc-a", "--reason", "personuppgifter", node=leksand)
    assert again.exit_code != 0 and "uc-a" in again.output
    # show --history still shows the record's place in the feed, each version erased.
    shown = cli("usecase", "show", "uc-a", "--history", node=leksand)
    assert shown.exit_code == 0, shown.output
    erased_lines = [line for line in shown.output.splitlines() if "raderad" in line]
    assert len(erased_lines) == 2 and "skäl: personuppgifter" in erased_lines[0]
    history = json.loads(cli("usecase", "show", "uc-a", "--history", "--json", node=leksand).stdout)
    assert history["erased"] is True
    assert [(v["sequence"], v["erased"]["by"]) for v in history["history"]] == [
        (1, f"{LEKSAND}#3"),
        (2, f"{LEKSAND}#3"),
    ]


def test_erase_only_the_versions_asked_for(cli: Cli, leksand: Path) -> None:
    cli(*ADD, node=leksand)
    cli("usecase", "edit", "uc-a", "--summary", "Utan namn nu", node=leksand)
    done = cli("usecase", "erase", "uc-a", "--reason", "personuppgifter", "--version", "1",
               node=leksand)  # fmt: skip
    assert done.exit_code == 0, done.output
    with Node.open(leksand) as node:
        held = node.store.get_record(LEKSAND, "uc-a")
        assert held is not None and held.version == 2
    shown = cli("usecase", "show", "uc-a", "--history", "--json", node=leksand)
    history = json.loads(shown.stdout)["history"]
    assert [v["erased"] is not None for v in history] == [True, False]
    assert history[0]["erased"]["reason"] == "personuppgifter" and history[1]["version"] == 2
    text = cli("usecase", "show", "uc-a", "--history", node=leksand).output
    assert f"{LEKSAND}#1  raderad " in text and "skäl: personuppgifter" in text
    missing = cli("usecase", "erase", "uc-a", "--reason", "annat", "--version", "9",
                  node=leksand)  # fmt: skip
    assert missing.exit_code != 0 and "9" in missing.output


def test_erase_refuses_a_long_note_an_unknown_reason_and_another_kind(
    cli: Cli, leksand: Path
) -> None:
    cli(*ADD, node=leksand)
    long_note = cli("usecase", "erase", "uc-a", "--reason", "annat", "--note", "x" * 201,
                    node=leksand)  # fmt: skip
    assert long_note.exit_code != 0 and "201" in long_note.output
    assert cli("usecase", "erase", "uc-a", "--reason", "tyckte-inte-om", node=leksand).exit_code
    other_kind = cli("lesson", "erase", "uc-a", "--reason", "annat", node=leksand)
    assert other_kind.exit_code != 0 and "är inte av typen lärdom" in other_kind.output
    english = cli("--lang", "en", "usecase", "erase", "uc-none", "--reason", "annat",
                  node=leksand)  # fmt: skip
    assert english.exit_code != 0 and "no use case 'uc-none' to erase" in english.output
    assert "--note has 201 characters" in cli(
        "--lang", "en", "usecase", "erase", "uc-a", "--reason", "annat", "--note", "x" * 201,
        node=leksand,
    ).output  # fmt: skip
    with Node.open(leksand) as node:
        assert node.store.get_record(LEKSAND, "uc-a") is not None
        assert node.store.erased_entries() == []
