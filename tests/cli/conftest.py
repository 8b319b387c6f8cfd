"""Fixtures for the command-line tests.

Two ways to drive the CLI, both real:

- ``run(...)``: the console script in a subprocess (``python -m samverka``), for the
  main flows, exactly as a person or a script runs it;
- ``cli(...)``: click's CliRunner in this process, for breadth (fast).

Node folders are made with :func:`samverka.node.init_node` (what ``node init`` runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `import clikit`

import pytest
from click.testing import CliRunner, Result
from clikit import LEKSAND, TIBRO, Cli, Run, make_node
from samverka.cli import main


@pytest.fixture
def leksand(tmp_path: Path) -> Path:
    """A fresh node folder for Leksand (2029)."""
    return make_node(tmp_path / "leksand", LEKSAND)


@pytest.fixture
def tibro(tmp_path: Path) -> Path:
    """A fresh node folder for Tibro (1472)."""
    return make_node(tmp_path / "tibro", TIBRO)


@pytest.fixture
def run() -> Run:
    """Run ``python -m samverka ARGS`` in a subprocess; returns the CompletedProcess."""

    def _run(
        *args: str | Path, node: Path | None = None, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}
        if node is not None:
            env["SAMVERKA_DIR"] = str(node)
        return subprocess.run(
            [sys.executable, "-m", "samverka", *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=env,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    return _run


@pytest.fixture
def cli() -> Cli:
    """Invoke the root command in-process; ``node`` sets SAMVERKA_DIR."""
    runner = CliRunner()

    def _cli(*args: str | Path, node: Path | None = None, input: str | None = None) -> Result:
        env = {"SAMVERKA_DIR": str(node) if node is not None else None}
        return runner.invoke(main, [str(a) for a in args], input=input, env=env)

    return _cli
