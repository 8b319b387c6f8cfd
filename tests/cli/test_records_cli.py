"""Authoring and reading records: usecase/lesson/solution add|edit|retire|list|show, adopt."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from clikit import LEKSAND, Cli, Run
from samverka.node import Node
from samverka.protocol.entries import parse_signed
from samverka.v1 import records_pb2

UC_OPTIONS = [
    "--title", "Språkstöd i hemtjänsten", "--summary", "Taligenkänning för dokumentation",
    "--description", "Personalen dikterar; texten granskas före signering.",
    "--area", "äldreomsorg", "--status", "pilot", "--risk", "begränsad",
    "--technique", "taligenkänning", "--technique", "generativ AI", "--product", "Whisper",
    "--vendor", "Leverantör AB", "--personal-data", "--dpia", "--cost-one-off", "50 000",
    "--cost-yearly", "12000", "--benefit", "sparade timmar per år=1 200 timmar",
    "--partner", "2026", "--contact-role", "digitaliseringsstrateg",
    "--link", "https://example.se/sprakstod Projektsida", "--tag", "hemtjänst",
    "--visibility", "public",
]  # fmt: skip


def feed_versions(node_dir: Path, record_id: str) -> list[tuple[int, bool]]:
    """(version, tombstone) of every entry of one record in the node's own feed."""
    with Node.open(node_dir) as node:
        raws = node.store.feed_entries(node.origin)
    out = []
    for raw in raws:
        parsed = parse_signed(raw)
        if parsed.record_id == record_id:
            out.append((parsed.version, parsed.record.header.tombstone))
    return out


def test_author_edit_retire_in_subprocesses(run: Run, leksand: Path) -> None:
    added = run("usecase", "add", *UC_OPTIONS, node=leksand)
    assert added.returncode == 0, added.stderr
    published = "publicerade användningsfall uc-sprakstod-i-hemtjansten version 1 (2029#1"
    assert published in added.stdout

    shown = run("usecase", "show", "uc-sprakstod-i-hemtjansten", "--json", node=leksand)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["origin"] == LEKSAND and data["origin_name"] == "Leksand"
    assert data["version"] == 1 and data["kind"] == "use-case"
    assert data["signature_verified"] is True and len(data["key_id"]) == 32
    uc = data["record"]["use_case"]
    assert uc["title"] == "Språkstöd i hemtjänsten"
    assert uc["service_area"] == "SERVICE_AREA_ELDERLY_CARE"
    assert uc["risk_class"] == "RISK_CLASS_LIMITED"
    assert uc["techniques"] == ["taligenkänning", "generativ AI"]
    assert uc["processes_personal_data"] is True and uc["impact_assessment_done"] is True
    assert uc["cost"] == {"one_off_sek": "50000", "yearly_sek": "12000"}
    assert uc["benefits"] == [
        {"metric": "sparade timmar per år", "value": 1200.0, "unit": "timmar"}
    ]
    assert uc["partner_kommuner"] == ["2026"]
    assert uc["links"] == [{"url": "https://example.se/sprakstod", "title": "Projektsida"}]
    assert data["record"]["header"]["visibility"] == "VISIBILITY_PUBLIC"

    edited = run("usecase", "edit", "uc-sprakstod-i-hemtjansten", "--status", "i drift",
                 node=leksand)  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert "version 2" in edited.stdout
    human = run("usecase", "show", "uc-sprakstod-i-hemtjansten", "--history", node=leksand)
    assert "I drift" in human.stdout and "Äldreomsorg" in human.stdout  # Swedish labels
    assert "Begränsad risk" in human.stdout and "signaturen verifierad" in human.stdout
    assert "Leksand (2029)" in human.stdout
    assert "version 1" in human.stdout and "version 2" in human.stdout

    retired = run("usecase", "retire", "uc-sprakstod-i-hemtjansten", node=leksand)
    assert retired.returncode == 0, retired.stderr
    assert "gravstensversion 3" in retired.stdout
    assert feed_versions(leksand, "uc-sprakstod-i-hemtjansten") == [
        (1, False), (2, False), (3, True),
    ]  # fmt: skip
    listed = run("usecase", "list", node=leksand)
    assert "inga poster av typen användningsfall" in listed.stdout
    listed = run("usecase", "list", "--include-retired", "--json", node=leksand)
    [item] = json.loads(listed.stdout)
    assert item["tombstone"] is True and item["version"] == 3
    # Title and body survive the tombstone: nothing is erased.
    assert item["record"]["use_case"]["title"] == "Språkstöd i hemtjänsten"


def test_missing_required_fields_without_a_terminal(run: Run, leksand: Path) -> None:
    result = run("usecase", "add", "--title", "Bara en titel", node=leksand)
    assert result.returncode == 1
    assert "--summary" in result.stderr and "--area" in result.stderr
    assert "--status" in result.stderr and "ingen terminal" in result.stderr
    assert feed_versions(leksand, "uc-bara-en-titel") == []


def test_interactive_prompts_with_cliruner_input(cli: Cli, leksand: Path) -> None:
    answers = "Kort sammanfattning\nrymden\nskola\nidé\n"  # 'rymden' is asked again
    result = cli("usecase", "add", "--title", "Läxhjälp med AI", "--interactive",
                 node=leksand, input=answers)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "is not a verksamhetsområde" in result.output
    shown = cli("usecase", "show", "uc-laxhjalp-med-ai", "--json", node=leksand)
    uc = json.loads(shown.stdout)["record"]["use_case"]
    assert uc["summary"] == "Kort sammanfattning"
    assert uc["service_area"] == "SERVICE_AREA_SCHOOL" and uc["status"] == "USE_CASE_STATUS_IDEA"


def test_interactive_prompts_on_a_real_terminal(leksand: Path) -> None:
    """On a pty (a person at a terminal) missing fields are asked for without a flag."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "SAMVERKA_DIR": str(leksand), "TERM": "dumb"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "samverka", "lesson", "add", "--title", "Ställ krav på loggning"],
        stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + 60
    try:
        answered = False
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(controller, 4096)
                except OSError:
                    break
            if not answered and b"category" in screen:
                os.write(controller, b"upphandling\n")
                answered = True
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        while True:  # drain what is left
            ready, _, _ = select.select([controller], [], [], 0.2)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)
    text = screen.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "publicerade lärdom lesson-stall-krav-pa-loggning version 1" in text


def test_edit_changes_only_given_fields_and_an_unchanged_edit_writes_nothing(
    cli: Cli, leksand: Path
) -> None:
    assert cli("usecase", "add", *UC_OPTIONS, node=leksand).exit_code == 0
    rid = "uc-sprakstod-i-hemtjansten"
    result = cli("usecase", "edit", rid, "--tag", "omsorg", "--tag", "tal", "--clear", "vendor",
                 node=leksand)  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(cli("usecase", "show", rid, "--json", node=leksand).stdout)
    assert data["version"] == 2
    assert data["record"]["header"]["tags"] == ["omsorg", "tal"]
    assert "vendors" not in data["record"]["use_case"]
    assert data["record"]["use_case"]["products"] == ["Whisper"]  # untouched
    same = cli("usecase", "edit", rid, "--status", "pilot", node=leksand)
    assert same.exit_code == 0 and "oförändrad" in same.stdout
    assert [v for v, _ in feed_versions(leksand, rid)] == [1, 2]
    nothing = cli("usecase", "edit", rid, node=leksand)
    assert nothing.exit_code == 1 and "inget att ändra" in nothing.stderr
    bad = cli("usecase", "edit", rid, "--area", "rymden", "--cost-yearly", "mycket", node=leksand)
    assert bad.exit_code == 1
    assert "area:" in bad.stderr and "cost_yearly:" in bad.stderr
    assert cli("usecase", "retire", rid, node=leksand).exit_code == 0
    again = cli("usecase", "edit", rid, "--status", "ended", node=leksand)
    assert again.exit_code == 1 and "indragen" in again.stderr
    twice = cli("usecase", "retire", rid, node=leksand)
    assert twice.exit_code == 1 and "already retired" in twice.stderr


def test_ids_are_derived_unique_and_explicit_ids_are_checked(cli: Cli, leksand: Path) -> None:
    args = ["--summary", "s", "--area", "it", "--status", "idea"]
    assert cli("usecase", "add", "--title", "Öppna data", *args, node=leksand).exit_code == 0
    second = cli("usecase", "add", "--title", "Öppna data", *args, node=leksand)
    assert "uc-oppna-data-2 " in second.stdout
    own = cli("usecase", "add", "--id", "uc-eget", "--title", "Eget", *args, node=leksand)
    assert own.exit_code == 0 and "uc-eget" in own.stdout
    dup = cli("usecase", "add", "--id", "uc-eget", "--title", "Igen", *args, node=leksand)
    assert dup.exit_code == 1 and "har redan en post 'uc-eget'" in dup.stderr
    bad = cli("usecase", "add", "--id", "har mellanslag", "--title", "x", *args, node=leksand)
    assert bad.exit_code == 1 and "id:" in bad.stderr


def test_enum_names_in_swedish_and_english(cli: Cli, leksand: Path) -> None:
    spellings = [
        ("Äldreomsorg", "I drift"),
        ("elderly-care", "production"),
        ("aldreomsorg", "PRODUCTION"),
        ("SERVICE_AREA_ELDERLY_CARE", "drift"),
    ]
    for area, status in spellings:
        result = cli("usecase", "add", "--title", f"T {area}", "--summary", "s", "--area", area,
                     "--status", status, node=leksand)  # fmt: skip
        assert result.exit_code == 0, result.output
    listed = json.loads(
        cli("usecase", "list", "--area", "äldreomsorg", "--json", node=leksand).stdout
    )
    assert len(listed) == 4
    assert {r["record"]["use_case"]["status"] for r in listed} == {"USE_CASE_STATUS_PRODUCTION"}
    none = cli("usecase", "list", "--area", "skola", node=leksand)
    assert "inga poster av typen användningsfall" in none.stdout
    table = cli("usecase", "list", "--status", "i drift", node=leksand).stdout
    assert "Äldreomsorg" in table and "I drift" in table


def test_lessons_solutions_and_adoptions(cli: Cli, leksand: Path) -> None:
    lesson = cli("lesson", "add", "--title", "Logga från dag ett", "--category", "juridik",
                 "--use-case", "1472/uc-chatbot", "--what-worked", "Tydliga loggar",
                 "--what-did-not", "Manuell granskning", "--advice", "Börja smått",
                 "--area", "it", node=leksand)  # fmt: skip
    assert lesson.exit_code == 0, lesson.output
    data = json.loads(cli("lesson", "show", "lesson-logga-fran-dag-ett", "--json",
                          node=leksand).stdout)  # fmt: skip
    assert data["record"]["lesson"]["use_case"] == {"origin": "1472", "id": "uc-chatbot"}
    assert data["record"]["lesson"]["category"] == "LESSON_CATEGORY_LAW_AND_GDPR"

    bad = cli("solution", "add", "--title", "AI-policy", "--summary", "s", "--type", "policy",
              "--content-hash", "md5:abc", "--url", "ftp://example.se/x", node=leksand)  # fmt: skip
    assert bad.exit_code == 1
    assert "content_hash:" in bad.stderr and "url:" in bad.stderr
    good = cli("solution", "add", "--title", "AI-policy", "--summary", "Antagen av KF",
               "--type", "policy", "--licence", "CC-BY-4.0",
               "--url", "https://example.se/ai-policy.pdf",
               "--content-hash", "sha256:" + "ab" * 32, "--how-to-adopt", "Byt kommunnamn",
               "--use-case", "uc-x", node=leksand)  # fmt: skip
    assert good.exit_code == 0, good.output
    sol = json.loads(cli("solution", "show", "sol-ai-policy", "--json", node=leksand).stdout)
    assert sol["record"]["solution"]["use_cases"] == [{"origin": LEKSAND, "id": "uc-x"}]
    assert sol["record"]["solution"]["licence"] == "CC-BY-4.0"

    adopted = cli("adopt", "1472/sol-mall", "--note", "Antagen av KS", node=leksand)
    assert adopted.exit_code == 0, adopted.output
    assert "noden har inte 1472/sol-mall" in adopted.stderr
    with Node.open(leksand) as node:
        [record] = node.store.list_records(kinds=[records_pb2.RECORD_KIND_ADOPTION])
    assert record.record.adoption.solution.origin == "1472"
    assert record.record.adoption.status == records_pb2.USE_CASE_STATUS_PRODUCTION
    wrong_kind = cli("usecase", "edit", "sol-ai-policy", "--status", "pilot", node=leksand)
    assert wrong_kind.exit_code == 1 and "inte användningsfall" in wrong_kind.stderr


def test_show_unknown_record_and_bad_origin(cli: Cli, leksand: Path) -> None:
    missing = cli("usecase", "show", "uc-finns-inte", node=leksand)
    assert missing.exit_code == 1
    assert "användningsfall 'uc-finns-inte' från Leksand (2029) finns inte" in missing.stderr
    assert "tips:" in missing.stderr
    bad = cli("usecase", "show", "9999/uc-x", node=leksand)
    assert bad.exit_code == 1 and "ingen kommunkod" in bad.stderr


def test_json_output_of_add_and_edit_is_pure_json(cli: Cli, leksand: Path) -> None:
    added = cli("usecase", "add", *UC_OPTIONS, "--json", node=leksand)
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["version"] == 1
    assert "publicerade användningsfall" in added.stderr
    rid = "uc-sprakstod-i-hemtjansten"
    edited = cli("usecase", "edit", rid, "--status", "ended", "--json", node=leksand)
    assert json.loads(edited.stdout)["record"]["use_case"]["status"] == "USE_CASE_STATUS_ENDED"
    same = cli("usecase", "edit", rid, "--status", "ended", "--json", node=leksand)
    assert json.loads(same.stdout)["version"] == 2 and "oförändrad" in same.stderr
