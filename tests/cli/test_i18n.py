"""One language for people (issue 14, point 6): the CLI speaks Swedish by default,
English with ``--lang en``, ``SAMVERKA_LANG`` or an English locale, from the gettext
catalogs in samverka/locale; ``--json`` is the same in both.

The catalog tests (``-k catalog``, run by ``make lint``) fail when ``make i18n`` was not
run after a change: a marked message missing from messages.pot, one without a
translation in sv or en, or a compiled .mo that differs from its .po.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner, Result
from samverka.cli import main
from samverka.i18n import LOCALE_DIR, language_from_env

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "N_": None, "Text": None, "NP_": ((1, "c"), 2), "pgettext": ((1, "c"), 2)}


def _invoke(*args: str, node: Path | None = None, env: dict[str, str] | None = None) -> Result:
    environ: dict[str, str | None] = {"SAMVERKA_DIR": str(node) if node else None}
    environ.update(env or {})
    return CliRunner().invoke(main, list(args), env=environ)


@pytest.fixture(scope="module")
def leksand_with_solution(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from clikit import LEKSAND, make_node

    node = make_node(tmp_path_factory.mktemp("i18n") / "leksand", LEKSAND)
    done = _invoke(
        "solution",
        "add",
        "--id",
        "sol-ai-policy",
        "--title",
        "AI-policy för Leksand",
        "--summary",
        "Policy antagen av kommunfullmäktige",
        "--type",
        "policy",
        "--how-to-adopt",
        "Ta policyn till KS",
        "--visibility",
        "public",
        node=node,
    )
    assert done.exit_code == 0, done.output
    return node


def test_solution_show_speaks_swedish_by_default(leksand_with_solution: Path) -> None:
    shown = _invoke("solution", "show", "sol-ai-policy", node=leksand_with_solution)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    for label in ("ursprung", "typ", "synlighet", "signerad med nyckel", "så inför du"):
        assert f"  {label} " in out, out
    assert "Offentlig" in out and "Lösning" in out
    for english in ("origin", "kind", "visibility", "how to adopt", "signed by key"):
        assert f"  {english} " not in out, out


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--lang", "en"), {}),
        ((), {"LANG": "en_US.UTF-8"}),
        ((), {"SAMVERKA_LANG": "en"}),
        (("--lang", "en"), {"LANG": "sv_SE.UTF-8"}),
    ],
    ids=["--lang", "LANG", "SAMVERKA_LANG", "--lang-wins"],
)
def test_english_on_request(
    leksand_with_solution: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    shown = _invoke(*args, "solution", "show", "sol-ai-policy", node=leksand_with_solution, env=env)
    assert shown.exit_code == 0, shown.output
    for label in ("origin", "kind", "visibility", "signed by key", "how to adopt"):
        assert f"  {label} " in shown.output, shown.output
    assert "Public" in shown.output and "Solution" in shown.output
    assert "  ursprung " not in shown.output


def test_swedish_again_after_english(leksand_with_solution: Path) -> None:
    """The language is chosen anew on every invocation (no English left behind)."""
    assert _invoke("--lang", "en", "solution", "list", node=leksand_with_solution).exit_code == 0
    listed = _invoke("solution", "list", node=leksand_with_solution)
    assert "SYNLIGHET" in listed.output and "TITEL" in listed.output, listed.output


def test_errors_and_help_follow_the_language(leksand_with_solution: Path) -> None:
    missing = _invoke("solution", "show", "sol-nope", node=leksand_with_solution)
    assert missing.exit_code == 1
    assert "fel: lösning 'sol-nope' från Leksand (2029) finns inte" in missing.output
    assert "tips: " in missing.output
    english = _invoke("--lang", "en", "solution", "show", "sol-nope", node=leksand_with_solution)
    assert "error: no solution 'sol-nope' from Leksand (2029) in this node" in english.output
    assert "hint: " in english.output
    assert "Kommandon:" in _invoke("--help").output
    help_en = _invoke("--lang", "en", "--help").output
    assert "Commands:" in help_en and "Full-text search over all records held." in help_en
    # A subcommand's help, click's own words and the exit codes follow too, whichever
    # language its module was first imported in.
    listed = _invoke("usecase", "list", "--help").output
    assert "Användning:" in listed and "Flaggor:" in listed and "Exempel:" in listed
    assert "Lista poster av den här typen" in listed and "[miljövariabel:" in listed
    listed_en = _invoke("--lang", "en", "usecase", "list", "--help").output
    assert "Usage:" in listed_en and "Options:" in listed_en and "Example:" in listed_en
    assert "List records of this kind" in listed_en and "[env var:" in listed_en
    assert "Slutkoder:" in _invoke("sync", "--help").output
    assert "Exit codes:" in _invoke("--lang", "en", "sync", "--help").output
    assert "Rådets rekommendationer." in _invoke("hub", "--help").output
    assert "The council's recommendations." in _invoke("--lang", "en", "hub", "--help").output
    # The record fields' option help (recordform.FIELDS) is translated where shown.
    add = " ".join(_invoke("usecase", "add", "--help").output.split())
    assert "Riskklass enligt EU:s AI-förordning: minimal, limited, high, unacceptable." in add
    add_en = " ".join(_invoke("--lang", "en", "usecase", "add", "--help").output.split())
    assert "EU AI Act risk class: minimal, limited, high, unacceptable." in add_en


def test_json_is_the_same_in_both_languages(leksand_with_solution: Path) -> None:
    for args in (("solution", "show", "sol-ai-policy"), ("solution", "list")):
        sv = _invoke(*args, "--json", node=leksand_with_solution)
        en = _invoke("--lang", "en", *args, "--json", node=leksand_with_solution)
        assert sv.exit_code == en.exit_code == 0
        assert sv.stdout_bytes == en.stdout_bytes


@pytest.mark.parametrize(
    ("env", "lang"),
    [
        ({}, "sv"),
        ({"LANG": "C.UTF-8"}, "sv"),
        ({"LANG": "sv_SE.UTF-8"}, "sv"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({"LC_ALL": "en_US.UTF-8", "LANG": "sv_SE.UTF-8"}, "en"),
        ({"LANGUAGE": "sv:en", "LANG": "en_US.UTF-8"}, "sv"),
        ({"LC_MESSAGES": "en_US.UTF-8"}, "en"),
        ({"SAMVERKA_LANG": "sv", "LANG": "en_US.UTF-8"}, "sv"),
        ({"LANG": "de_DE.UTF-8"}, "sv"),
    ],
)
def test_language_from_the_environment(env: dict[str, str], lang: str) -> None:
    assert language_from_env(env) == lang


# -- the catalogs (make i18n; make lint runs these) ---------------------------------------


def _po(lang: str) -> Catalog:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "samverka.po").open("rb") as f:
        return read_po(f)


def _key(message_id: object, context: str | None) -> tuple[str | None, str]:
    text = message_id if isinstance(message_id, str) else str(message_id[0])  # type: ignore[index]
    return (context, text)


def test_catalog_pot_holds_every_marked_message() -> None:
    in_code: set[tuple[str | None, str]] = set()
    for package in ("node/samverka", "hub/samverka_hub"):
        for _name, _line, message, _comments, context in extract_from_dir(
            ROOT / package, keywords=KEYWORDS, comment_tags=()
        ):
            in_code.add(_key(message, context))
    with (LOCALE_DIR / "messages.pot").open("rb") as f:
        pot = {_key(m.id, m.context) for m in read_po(f) if m.id}
    # (A message the code no longer has is harmless: the next `make i18n` drops it.)
    assert in_code - pot == set(), "run `make i18n`: messages missing from messages.pot"


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_catalog_translates_every_message(lang: str) -> None:
    with (LOCALE_DIR / "messages.pot").open("rb") as f:
        pot = {_key(m.id, m.context) for m in read_po(f) if m.id}
    catalog = _po(lang)
    translated = {
        _key(m.id, m.context)
        for m in catalog
        if m.id and m.string and (isinstance(m.string, str) or all(m.string))
    }
    assert pot - translated == set(), f"untranslated in {lang}/LC_MESSAGES/samverka.po"


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_catalog_mo_is_compiled_from_the_po(lang: str) -> None:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "samverka.mo").open("rb") as f:
        mo = {(m.context, str(m.id)): m.string for m in read_mo(f) if m.id}
    po = {(m.context, str(m.id)): m.string for m in _po(lang) if m.id and not m.fuzzy}
    assert mo == po, f"stale {lang}/LC_MESSAGES/samverka.mo: run `make i18n`"
