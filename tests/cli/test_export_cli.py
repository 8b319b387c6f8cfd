"""``samverka export``: a node's own PUBLIC records in each format, validated by the
standards' schemas and shapes; a record missing a required field writes nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import factories
import pytest
from clikit import LEKSAND, Cli, Run
from samverka.node import Node
from samverka.v1 import erasure_pb2
from samverka.v1 import records_pb2 as R

sys.path.insert(0, str(Path(__file__).parents[1] / "exports"))
sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
import exportkit
import standards


def publish(node_dir: Path, *records: R.Record) -> None:
    with Node.open(node_dir) as node:
        publisher = node.publisher()
        for record in records:
            publisher.publish(record)


@pytest.fixture
def published(leksand: Path) -> Path:
    """Leksand with a full HIGH-risk use case, a code solution, a MEMBERS use case and
    a retired one."""
    publish(
        leksand,
        exportkit.full_use_case(),
        exportkit.full_code_solution(),
        factories.make_use_case(
            record_id="uc-intern", visibility=R.VISIBILITY_MEMBERS, title="Internt försök"
        ),
        factories.make_use_case(record_id="uc-gammal", title="Tillbakadraget"),
    )
    with Node.open(leksand) as node:
        node.publisher().retire("uc-gammal")
    return leksand


def test_every_format_writes_its_standard(cli: Cli, published: Path, tmp_path: Path) -> None:
    out = tmp_path / "ut"
    base = ["--katalog-url", "https://katalog.example.se", "--kontakt-epost", "ai@leksand.se"]
    for fmt, name in [
        ("dcat-rdfxml", "dcat.rdf"),
        ("dcat-ttl", "katalog.ttl"),
        ("dcat-jsonld", "katalog.jsonld"),
        ("atrs", "atrs.json"),
        ("eurocities-csv", "register.csv"),
        ("eurocities-json", "register.json"),
        ("publiccode", "publiccode"),
        ("eu-database", "eu"),
    ]:
        result = cli("export", "--format", fmt, "--out", out / name, *base, node=published)
        assert result.exit_code == 0, result.output
        assert "Exporterade" in result.output
    ttl = (out / "katalog.ttl").read_bytes()
    assert standards.shacl(ttl, "turtle")[0]
    assert standards.dcat_ap_se_missing(ttl, "turtle") == []
    assert b"uc-intern" not in ttl and b"uc-gammal" not in ttl  # MEMBERS, retired
    assert standards.shacl((out / "katalog.jsonld").read_bytes(), "json-ld")[0]
    rdf = (out / "dcat.rdf").read_bytes()
    assert standards.shacl(rdf, "xml")[0] and standards.dcat_ap_se_missing(rdf, "xml") == []
    atrs = json.loads((out / "atrs.json").read_text("utf-8"))
    assert standards.errors("atrs", "atrs-collection.schema.json", atrs) == []
    assert [r["samverka"]["id"] for r in atrs["records"]] == ["uc-full"]
    rows = json.loads((out / "register.json").read_text("utf-8"))
    assert standards.errors("eurocities", "eurocities-collection.schema.json", rows) == []
    yml = out / "publiccode" / f"{LEKSAND}-sol-full.publiccode.yml"
    assert standards.publiccode_errors(yml.read_bytes()) == []
    draft = json.loads((out / "eu" / f"{LEKSAND}-uc-full.eu-databas.json").read_text("utf-8"))
    assert draft["utkast"] is True
    assert (
        (out / "eu" / f"{LEKSAND}-uc-full.eu-databas.md").read_text("utf-8").startswith("# UTKAST")
    )


def test_json_summary_and_no_overwrite_without_force(
    cli: Cli, published: Path, tmp_path: Path
) -> None:
    out = tmp_path / "atrs.json"
    result = cli("export", "--format", "atrs", "--out", out, "--json", node=published)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "format": "atrs",
        "out": str(out),
        "files": [str(out)],
        "records": [f"{LEKSAND}/uc-full"],
    }
    again = cli("export", "--format", "atrs", "--out", out, node=published)
    assert again.exit_code != 0 and "finns redan" in again.output
    assert cli("export", "--format", "atrs", "--out", out, "--force", node=published).exit_code == 0


def test_a_missing_field_names_the_record_and_writes_nothing(
    run: Run, published: Path, tmp_path: Path
) -> None:
    # A second code solution without a licence: the whole export stops.
    publish(published, exportkit.full_code_solution(record_id="sol-utan-licens", licence=""))
    out = tmp_path / "publiccode"
    result = run("export", "--format", "publiccode", "--out", out, node=published)
    assert result.returncode != 0
    assert f"{LEKSAND}/sol-utan-licens" in result.stderr and "licence" in result.stderr
    assert not out.exists()  # not even the valid solution's file


def test_nothing_to_export_writes_no_file(cli: Cli, leksand: Path, tmp_path: Path) -> None:
    out = tmp_path / "katalog.ttl"
    result = cli("export", "--format", "dcat-ttl", "--out", out, node=leksand)
    assert result.exit_code == 0, result.output
    assert "Inga poster att exportera" in result.output
    english = cli("--lang", "en", "export", "--format", "dcat-ttl", "--out", out, node=leksand)
    assert "No records to export as DCAT-AP-SE as Turtle" in english.output
    assert not out.exists()


def test_an_erased_record_is_in_no_export(cli: Cli, published: Path, tmp_path: Path) -> None:
    publish(published, factories.make_use_case(record_id="uc-personuppgifter", title="Raderas"))
    with Node.open(published) as node:
        node.publisher().erase(
            "uc-personuppgifter", reason=erasure_pb2.ERASURE_REASON_PERSONAL_DATA
        )
    for fmt, name in [("atrs", "atrs.json"), ("dcat-ttl", "k.ttl"), ("eurocities-csv", "r.csv")]:
        out = tmp_path / name
        assert cli("export", "--format", fmt, "--out", out, node=published).exit_code == 0
        text = out.read_text("utf-8")
        assert "Prioritering av ansökningar" in text  # the full use case is there
        assert "uc-personuppgifter" not in text and "Raderas" not in text
