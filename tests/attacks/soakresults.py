"""Results for the ``make soak`` table (``import soakresults``).

Tests of tests/attacks, tests/faults and tests/load call :func:`record`; when
``SAMVERKA_SOAK_RESULTS`` names a file (the soak runner sets it) each call appends one
JSON line there, otherwise it does nothing. ``tests/load/soak.py`` reads the lines and
prints the table.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

RESULTS_ENV = "SAMVERKA_SOAK_RESULTS"


def soak() -> bool:
    """True when the long versions run (``make soak`` sets HYPOTHESIS_PROFILE=soak)."""
    return os.environ.get("HYPOTHESIS_PROFILE") == "soak"


def record(kind: str, name: str, **fields: Any) -> None:
    """Append one result: ``kind`` is attack, fuzz, fault or load."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    line = json.dumps({"kind": kind, "name": name, "time": time.time(), **fields})
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
