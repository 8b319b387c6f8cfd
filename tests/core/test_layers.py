"""The layers hold: imports run downward, no loops, and the node stands without the hub.

`make lint` runs the same contracts; running them here too means CI (`make test`)
fails when a change breaks them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


def test_the_node_cli_and_server_load_no_module_of_the_hub() -> None:
    # A fresh interpreter: what this test process imported does not count.
    script = """
import json, sys
from click.testing import CliRunner
import samverka.cli, samverka.cli.serve, samverka.cli.syncing, samverka.cli.doctor
import samverka.membership.serving, samverka.membership.mirror, samverka.ops.metrics
for args in (["node", "--help"], ["sync", "--help"], ["search", "--help"]):
    result = CliRunner().invoke(samverka.cli.main, args)
    assert result.exit_code == 0, result.output
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "samverka_hub")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_hub_adds_its_commands_through_the_registration() -> None:
    from samverka.cli.plugins import plugin_commands

    assert plugin_commands()["hub"][0] == "samverka_hub.cli:hub"
