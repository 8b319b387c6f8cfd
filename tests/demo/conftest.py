"""Fixtures for the demo's tests; the helpers are in ``demokit.py`` (``import demokit``).

Teardown kills any process that a failing test left naming its ``tmp_path`` (only
the demo's servers do), and fails the test that left them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from demokit import wait_gone  # noqa: E402


@pytest.fixture
def no_leftovers(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``; at teardown, kill (and fail on) any process still naming it."""
    yield tmp_path
    left = wait_gone(tmp_path, timeout=5)
    for pid in left:
        with contextlib.suppress(OSError):  # gone meanwhile
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left running: {left}"
