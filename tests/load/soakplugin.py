"""A pytest plugin for the soak runner (``-p soakplugin``): counts Hypothesis test cases.

Hypothesis reports each test case it runs to its observability callbacks; this one
counts them per property and status and, when the session ends, appends one
``fuzz-count`` line per property to the soak results file (see soakresults).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "attacks"))

from soakresults import record

_COUNTS: Counter[tuple[str, str]] = Counter()


def _observe(observation: Any) -> None:
    if getattr(observation, "type", "") == "test_case":
        _COUNTS[(observation.property, str(observation.status))] += 1


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis.internal.observability import add_observability_callback

    add_observability_callback(_observe)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    properties = sorted({prop for prop, _ in _COUNTS})
    for prop in properties:
        by_status = {status: n for (p, status), n in _COUNTS.items() if p == prop}
        record("fuzz-count", prop, cases=sum(by_status.values()), **by_status)
