"""Fixtures for the fault tests: real hub processes that get killed, starved and skewed.

The hub kit (``arena.py``) and the soak results (``soakresults.py``) live in
tests/attacks; ``make soak`` (HYPOTHESIS_PROFILE=soak) runs the long versions. The
PostgreSQL schema of a module's hub is ``pg_schema`` (tests/conftest.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "attacks"))
