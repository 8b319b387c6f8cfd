"""Fixtures for the operations tests: metrics, logs, doctor, backup, deploy files.

Everything runs for real on loopback: ``samverka`` subprocesses (``hub serve``,
``node serve``, ``node enroll``), the Prometheus endpoint scraped over HTTP, the local
PostgreSQL for the hub's pg_dump/pg_restore and the compose configuration.
``opskit.py`` holds the helpers (``import opskit``); the process helpers come from
``tests/hub/hubkit.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "hub"))

from hubkit import Procs  # noqa: E402
from opskit import clean_env  # noqa: E402


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Run ``samverka`` in subprocesses; long-running ones stop at teardown."""
    p = Procs(tmp_path, clean_env())
    try:
        yield p
    finally:
        p.stop_all()
