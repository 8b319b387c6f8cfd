"""The kommun profile, the AI-rule guard on adopt, and "Passar er" (issue 14, points 1,
3 and 4), through the CLI over real node folders; other kommuners' records arrive in a
signed bundle, as they would from a sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import LEKSAND, TIBRO, Cli, make_node
from samverka.node import Node
from samverka.protocol.aipolicy import AiFacts, breaches, facts_of
from samverka.protocol.validation import PROFILE_ID, record_issues
from samverka.v1 import records_pb2 as R

GAGNEF = "2026"


def ok(result: object) -> str:
    assert getattr(result, "exit_code", None) == 0, getattr(result, "output", result)
    return str(getattr(result, "stdout", ""))


@pytest.fixture
def tibro_with_work(cli: Cli, tibro: Path) -> Path:
    """Tibro (B4, 10k-25k): a minimal-risk solution in production, a high-risk one in
    production, a limited-risk personal-data use case in production, a pilot."""
    steps = [
        ["profile", "set", "--storlek", "10k-25k", "--kommungrupp", "B4",
         "--intresse", "administration", "--kontakt", "digitaliseringskoordinator"],
        ["usecase", "add", "--id", "uc-mallar", "--title", "Textmallar med AI",
         "--summary", "Mallar för kallelser", "--area", "administration",
         "--status", "i drift", "--risk", "minimal", "--visibility", "public"],
        ["solution", "add", "--id", "sol-mallar", "--title", "Mallbibliotek",
         "--summary", "Färdiga promptar för kallelser", "--type", "prompt-library",
         "--area", "administration", "--use-case", "uc-mallar", "--visibility", "public"],
        ["usecase", "add", "--id", "uc-bedomning", "--title", "Automatisk biståndsbedömning",
         "--summary", "Förslag till beslut om bistånd", "--area", "administration",
         "--status", "i drift", "--risk", "hög", "--visibility", "public"],
        ["solution", "add", "--id", "sol-bedomning", "--title", "Beslutsstöd för bistånd",
         "--summary", "Modell och regler", "--type", "code", "--area", "administration",
         "--use-case", "uc-bedomning", "--visibility", "public"],
        ["usecase", "add", "--id", "uc-tal", "--title", "Taligenkänning i journaler",
         "--summary", "Dikterar anteckningar", "--area", "administration",
         "--status", "i drift", "--risk", "minimal", "--personal-data", "--visibility", "public"],
        ["usecase", "add", "--id", "uc-pilot", "--title", "Copilot-pilot",
         "--summary", "Prövar Copilot", "--area", "administration", "--status", "pilot",
         "--risk", "minimal", "--visibility", "public"],
    ]  # fmt: skip
    for args in steps:
        ok(cli(*args, node=tibro))
    return tibro


@pytest.fixture
def leksand_with_tibro(cli: Cli, leksand: Path, tibro_with_work: Path, tmp_path: Path) -> Path:
    out = tmp_path / "tibro.samverka"
    ok(cli("bundle", "export", "--out", out, node=tibro_with_work))
    key = tibro_with_work / "keys" / "signing.pub"
    ok(cli("bundle", "import", out, "--trust-key", f"{TIBRO}={key}", node=leksand))
    return leksand


def test_profile_set_show_and_new_versions_replace_it(cli: Cli, leksand: Path) -> None:
    missing = cli("profile", "set", "--hogsta-risk", "minimal", node=leksand)
    assert missing.exit_code == 1
    assert "profilen saknar --storlek och --kommungrupp" in missing.stderr
    ok(
        cli("profile", "set", "--storlek", "10k-25k", "--kommungrupp", "c9",
            "--intresse", "administration", "--intresse", "äldreomsorg",
            "--kontakt", "administrativ chef", "--hogsta-risk", "minimal",
            "--inga-personuppgifter", node=leksand)
    )  # fmt: skip
    shown = ok(cli("profile", "show", node=leksand))
    assert "Kommunprofil: Leksand (2029)" in shown
    assert "C9 Landsbygdskommun med besöksnäring" in shown
    assert "10 000–24 999 invånare" in shown
    assert "högsta riskklass: minimal risk" in shown
    assert "personuppgifter: får inte behandlas" in shown
    english = ok(cli("--lang", "en", "profile", "show", node=leksand))
    assert "highest risk class: minimal risk" in english
    assert "personal data: must not be processed" in english
    ok(cli("profile", "set", "--dpia-kravs", node=leksand))
    data = json.loads(ok(cli("profile", "show", "--json", node=leksand)))
    assert data["version"] == 2 and data["kommun_group"] == "C9"
    assert data["population_band"] == "from-10k-to-25k"
    assert data["interests"] == ["administration", "elderly-care"]
    assert data["ai_rules"] == {
        "max_risk_class": "minimal", "no_personal_data": True, "dpia_required": True,
    }  # fmt: skip
    assert data["visibility"] == "public" and data["signature_verified"] is True
    unchanged = cli("profile", "set", "--dpia-kravs", node=leksand)
    assert "oförändrad (version 2)" in unchanged.output
    with Node.open(leksand) as node:
        held = node.store.get_record(LEKSAND, PROFILE_ID)
        assert held is not None and held.version == 2 and held.title == "Kommunprofil: Leksand"
        assert len(node.store.list_records(kinds=[R.RECORD_KIND_KOMMUN_PROFILE])) == 1
    none = cli("profile", "show", TIBRO, node=leksand)
    assert none.exit_code == 1 and "ingen kommunprofil från Tibro" in none.stderr


def test_profile_validation() -> None:
    record = R.Record()
    record.header.id = "profil"
    record.header.kind = R.RECORD_KIND_KOMMUN_PROFILE
    record.header.origin = "0000"
    record.header.version = 1
    record.header.visibility = R.VISIBILITY_PUBLIC
    record.kommun_profile.interests.append(R.SERVICE_AREA_IT)
    fields = {i.field: i.message for i in record_issues(record)}
    assert fields["header.id"] == "a kommun profile's id is 'kommunprofil'"
    assert fields["header.kind"] == "only a kommun has a kommun profile"
    assert "kommun_profile.population_band" in fields and "kommun_profile.kommun_group" in fields
    adoption = R.Record()
    adoption.header.id = "a"
    adoption.header.kind = R.RECORD_KIND_ADOPTION
    adoption.header.origin = LEKSAND
    adoption.header.version = 1
    adoption.header.visibility = R.VISIBILITY_PUBLIC
    adoption.adoption.solution.origin, adoption.adoption.solution.id = TIBRO, "s"
    adoption.adoption.policy_override.SetInParent()
    fields = {i.field: i.message for i in record_issues(adoption)}
    assert fields == {
        "adoption.policy_override.rules": "names no rule",
        "adoption.policy_override.reason": "is required",
    }


def test_rules_pure() -> None:
    rules = R.AiRules(max_risk_class=R.RISK_CLASS_MINIMAL, no_personal_data=True)
    high = facts_of([R.UseCase(risk_class=R.RISK_CLASS_HIGH)])
    assert [b.rule for b in breaches(rules, high)] == [R.AI_RULE_RISK_CLASS]
    assert "hög risk" in breaches(rules, high)[0].text
    personal = facts_of([R.UseCase(risk_class=R.RISK_CLASS_MINIMAL, processes_personal_data=True)])
    assert [b.rule for b in breaches(rules, personal)] == [R.AI_RULE_PERSONAL_DATA]
    dpia = R.AiRules(dpia_required=True)
    assert [b.rule for b in breaches(dpia, personal)] == [R.AI_RULE_DPIA]
    assert breaches(R.AiRules(), high) == []  # no limit of its own: high is accepted...
    banned = facts_of([R.UseCase(risk_class=R.RISK_CLASS_UNACCEPTABLE)])
    assert [b.rule for b in breaches(R.AiRules(), banned)] == [R.AI_RULE_RISK_CLASS]  # ...not this
    assert breaches(rules, AiFacts()) == []  # unknown risk breaks no risk rule


def test_adopt_is_guarded_by_the_kommuns_rules(cli: Cli, leksand_with_tibro: Path) -> None:
    leksand = leksand_with_tibro
    # Without a profile there are no rules: nothing is refused.
    ok(cli("profile", "set", "--storlek", "10k-25k", "--kommungrupp", "C9",
           "--hogsta-risk", "minimal", "--inga-personuppgifter", node=leksand))  # fmt: skip
    refused = cli("adopt", f"{TIBRO}/sol-bedomning", node=leksand)
    assert refused.exit_code == 1, refused.output
    assert "1472/sol-bedomning bryter mot kommunens AI-regler: riskklassen är hög risk" in (
        refused.stderr
    )
    assert '--trots-regel "skäl"' in refused.stderr
    english = cli("--lang", "en", "adopt", f"{TIBRO}/sol-bedomning", node=leksand)
    assert "1472/sol-bedomning breaks the kommun's AI rules: the risk class is high" in (
        english.stderr
    )
    with Node.open(leksand) as node:
        assert node.store.list_records(kinds=[R.RECORD_KIND_ADOPTION]) == []
    # The personal-data rule, through a use case adopted directly.
    refused = cli("adopt", f"{TIBRO}/uc-tal", node=leksand)
    assert refused.exit_code == 1 and "behandlar personuppgifter" in refused.stderr
    # An override is recorded, with its reason, in the signed adoption.
    adopted = cli(
        "adopt", f"{TIBRO}/sol-bedomning", "--trots-regel", "Beslut i KS 2025-03-01",
        "--json", node=leksand,
    )  # fmt: skip
    data = json.loads(ok(adopted))
    assert data["record"]["adoption"]["policy_override"] == {
        "rules": ["AI_RULE_RISK_CLASS"],
        "reason": "Beslut i KS 2025-03-01",
    }
    shown = ok(cli("adopt", "--help", node=leksand))
    assert "--trots-regel" in shown
    # What fits is adopted without a word.
    ok(cli("adopt", f"{TIBRO}/sol-mallar", node=leksand))
    with Node.open(leksand) as node:
        adoptions = {
            a.record.adoption.solution.id: a.record.adoption
            for a in node.store.list_records(kinds=[R.RECORD_KIND_ADOPTION], origins=[LEKSAND])
        }
    assert not adoptions["sol-mallar"].HasField("policy_override")
    assert adoptions["sol-bedomning"].policy_override.reason == "Beslut i KS 2025-03-01"


def test_passar_ranks_what_similar_kommuner_run_within_the_rules(
    cli: Cli, leksand_with_tibro: Path, tmp_path: Path
) -> None:
    leksand = leksand_with_tibro
    no_profile = cli("passar", node=leksand)
    assert no_profile.exit_code == 1 and "ingen profil" in no_profile.stderr
    ok(cli("profile", "set", "--storlek", "10k-25k", "--kommungrupp", "C9",
           "--hogsta-risk", "minimal", "--inga-personuppgifter", node=leksand))  # fmt: skip
    found = json.loads(ok(cli("passar", "--json", node=leksand)))
    ids = [(s["origin"], s["id"]) for s in found]
    # In production at Tibro (same size band), minimal risk, no personal data; the pilot,
    # the high-risk pair and the personal-data use case are left out.
    assert sorted(ids) == [(TIBRO, "sol-mallar"), (TIBRO, "uc-mallar")]
    assert found[0]["kommuner"] == [TIBRO]
    assert (
        "liknande kommun(er): Tibro (B4, 10 000–24 999 invånare; samma storlek)"
        in (found[0]["reasons"][0])
    )
    assert "följer era AI-regler" in found[0]["reasons"]
    text = ok(cli("passar", node=leksand))
    assert "Passar er (Leksand): 2 förslag" in text and "Mallbibliotek" in text
    assert "liknande kommun(er): Tibro (B4, 10 000–24 999 invånare; samma storlek)" in text
    english = ok(cli("--lang", "en", "passar", node=leksand))
    assert "similar kommun(er): Tibro (B4, 10,000–24,999 inhabitants; the same size)" in english
    assert "follows your AI rules" in english
    # Adopted: left out. Interests outside administration: nothing left.
    ok(cli("adopt", f"{TIBRO}/sol-mallar", node=leksand))
    after = json.loads(ok(cli("passar", "--json", node=leksand)))
    assert [(s["origin"], s["id"]) for s in after] == [(TIBRO, "uc-mallar")]
    ok(cli("profile", "set", "--intresse", "skola", node=leksand))
    assert json.loads(ok(cli("passar", "--json", node=leksand))) == []
    # A kommun of another size and group is not similar.
    other = make_node(tmp_path / "gagnef", GAGNEF)
    ok(cli("profile", "set", "--storlek", "over-200k", "--kommungrupp", "A1", node=other))
    out = tmp_path / "tibro2.samverka"
    tibro = tmp_path / "tibro"
    ok(cli("bundle", "export", "--out", out, node=tibro))
    key = tibro / "keys" / "signing.pub"
    ok(cli("bundle", "import", out, "--trust-key", f"{TIBRO}={key}", node=other))
    assert json.loads(ok(cli("passar", "--json", node=other))) == []
