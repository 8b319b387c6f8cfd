"""`samverka crosscheck` without a federation: what a node that cannot cross-check is
told, and the exit codes (the flows with a hub and an origin's node are in
tests/attacks/test_crosscheck.py)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from clikit import Cli, Run
from samverka.cli._common import EXIT_CONFIG, EXIT_TRANSPORT, EXIT_USAGE
from samverka.config import CONFIG_FILE
from samverka.membership.member import set_hub_address


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_node_that_has_not_enrolled_is_told_to_enroll(run: Run, leksand: Path) -> None:
    result = run("crosscheck", node=leksand)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "samverka node enroll" in result.stderr and "Traceback" not in result.stderr


def test_bad_origins_and_peers_are_usage_errors(cli: Cli, leksand: Path) -> None:
    for args in (("--origin", "9999"), ("--peer", "no-port"), ("--peer", "host:0")):
        result = cli("crosscheck", *args, node=leksand)
        assert result.exit_code == EXIT_USAGE, (args, result.output)


def test_only_unreachable_sources_are_a_transport_error_with_the_report_printed(
    run: Run, leksand: Path
) -> None:
    """The hub and a --peer not answering: exit 4, and --json still prints the report."""
    hub, peer = f"127.0.0.1:{closed_port()}", f"127.0.0.1:{closed_port()}"
    set_hub_address(leksand / CONFIG_FILE, hub)
    result = run("crosscheck", "--json", "--peer", peer, "--timeout", "5", node=leksand, timeout=90)
    assert result.returncode == EXIT_TRANSPORT, result.stderr
    report = json.loads(result.stdout)
    assert (report["ok"], report["status"]) == (False, "transport")
    assert [(s["kind"], s["address"], s["reachable"]) for s in report["sources"]] == [
        ("hub", hub, False),
        ("peer", peer, False),
    ]
    assert all(s["error"] for s in report["sources"])
    assert f"fel: kunde inte fråga hubben på {hub}" in result.stderr
    assert peer in result.stderr and "tips:" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_names_the_options_and_the_exit_codes(cli: Cli) -> None:
    text = cli("crosscheck", "--help").output
    for option in ("--origin", "--peer", "--timeout", "--concurrency", "--quiet", "--json"):
        assert option in text
    assert "undanhåller" in text and "1 när en källa har mer" in text
    english = cli("--lang", "en", "crosscheck", "--help").output
    assert "withholds" in english and "1 when a source holds more" in english
    assert "crosscheck" in cli("--help").output


def test_per_origin_lines_follow_the_language_and_json_keeps_the_labels() -> None:
    """The lines name the sources in the reader's language; the JSON keeps the core's
    labels ("the hub", "Mora's node") whatever the language."""
    from samverka.cli.crosscheck import _describe, _hint
    from samverka.i18n import set_language
    from samverka.replication.crosscheck import (
        Agreement,
        HeadMismatch,
        MismatchKind,
        OriginCheck,
        Source,
        SourceKind,
        SourceVerdict,
    )

    hub = Source(SourceKind.HUB, "hub:1", "the hub")
    mora = Source(SourceKind.ORIGIN, "mora:1", "Mora's node", "2062")
    agree = OriginCheck("2062", 8, (SourceVerdict(hub, Agreement.AGREE, 8),
                                    SourceVerdict(mora, Agreement.AGREE, 8)), ())  # fmt: skip
    behind = OriginCheck(
        "2062",
        5,
        (SourceVerdict(hub, Agreement.AGREE, 5), SourceVerdict(mora, Agreement.BEHIND, 8)),
        (HeadMismatch("2062", MismatchKind.BEHIND, 5, 8, "Mora's node"),),
    )
    try:
        set_language("sv")
        assert _describe(agree) == "vi har #8, i samstämmighet med hubben och Moras nod"
        assert _describe(behind).startswith("2062#6: Moras nod har flödet till #8")
        assert _hint(behind).startswith("hubben visar inte #6..#8: Mora")
        set_language("en")
        assert (
            _describe(agree)
            == agree.describe()
            == ("we hold #8, in agreement with the hub and Mora's node")
        )
        assert _describe(behind) == behind.describe()
        assert _hint(behind) == behind.hint()
        assert agree.as_json()["sources"][1]["source"] == "Mora's node"  # type: ignore[index]
    finally:
        set_language("sv")
