"""`samverka sync` and `samverka node push` without a hub: what a node that cannot sync
is told (the flows with a hub are in tests/hub/test_aggregation_e2e.py)."""

from __future__ import annotations

import socket
from pathlib import Path

from clikit import Cli, Run
from samverka.cli._common import EXIT_CONFIG, EXIT_TRANSPORT
from samverka.config import CONFIG_FILE, load_config
from samverka.membership.member import set_hub_address


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_node_that_has_not_enrolled_is_told_to_enroll(run: Run, leksand: Path) -> None:
    for args in (("sync",), ("sync", "--follow"), ("node", "push")):
        result = run(*args, node=leksand)
        assert result.returncode == EXIT_CONFIG, (args, result.stderr)
        assert "fel:" in result.stderr and "samverka node enroll" in result.stderr
        assert "Traceback" not in result.stderr


def test_an_unreachable_hub_is_a_transport_error(run: Run, leksand: Path) -> None:
    set_hub_address(leksand / CONFIG_FILE, f"127.0.0.1:{closed_port()}")
    assert load_config(leksand).hub.address.startswith("127.0.0.1:")
    for args in (("sync",), ("node", "push", "--json")):
        result = run(*args, node=leksand, timeout=90)
        assert result.returncode == EXIT_TRANSPORT, (args, result.stderr)
        assert "tips:" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""  # nothing half-printed for a script to misread


def test_help_describes_the_options_and_the_trust(cli: Cli) -> None:
    text = cli("sync", "--help").output
    for option in ("--follow", "--no-push", "--quiet", "--json", "--dir"):
        assert option in text
    assert "signatur inte stämmer med ursprungets" in text
    english = cli("--lang", "en", "sync", "--help").output
    assert "origin's signature" in english and "Exit codes" in english
    push_help = cli("node", "push", "--help").output
    assert "Utkast lämnar aldrig noden" in push_help
    assert "[hub] push" in push_help
