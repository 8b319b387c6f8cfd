"""Helpers shared by the CLI tests (``import clikit``; conftest puts this folder on the path)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from samverka.node import init_node

LEKSAND = "2029"
TIBRO = "1472"

#: ``run(*args, node=DIR, input=TEXT)``: the console script in a subprocess.
Run = Callable[..., subprocess.CompletedProcess[str]]
#: ``cli(*args, node=DIR, input=TEXT)``: the root command through CliRunner.
Cli = Callable[..., Result]


def make_node(path: Path, kommun: str) -> Path:
    """A node folder, made as `samverka node init` makes it."""
    with init_node(path, kommun):
        pass
    return path
