"""The benchmark's target table (tests/bench/targets.py): every target of issue 15 is a
row, measured or not, judged against its limit measured in the same run."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import targets


def fig(key: str, value: float, limit: float | None = None, **parameters: object) -> dict:
    return {
        "name": key,
        "key": key,
        "value": value,
        "unit": "x",
        "limit": limit,
        "parameters": parameters,
    }


def test_every_target_is_a_row_and_missing_figures_say_so() -> None:
    rows = targets.rows([])
    assert [r.goal for r in rows] == [g.key for g in targets.GOALS]
    assert len({r.goal for r in rows}) == len(rows) >= 16
    assert all(r.status == "not measured" and r.meets is None for r in rows)


def test_limits_come_from_the_same_run() -> None:
    by_goal = {
        r.goal: r
        for r in targets.rows(
            [
                fig("ingest", 7_000, 9_000),  # 78 % of raw verify
                fig("nostr-ingest", 800),  # 8.75x: not 10x
                fig("node-rss", 99, None),
                fig("floor-rss", 88),  # +11 MB
                fig("search-pg-2", 9.5),
                fig("propagation-stored-p99", 90, None, follower_processes=9),
                fig("sync", float("nan"), 9_000),  # a failed figure is not a measurement
            ]
        )
    }
    assert by_goal["ingest-verify"].meets is True
    assert by_goal["ingest-verify"].ratio == 7_000 / 9_000
    assert by_goal["ingest-vs-nostr"].limit == 800 and by_goal["ingest-vs-nostr"].meets is False
    assert by_goal["node-idle-rss"].meets is False and by_goal["node-idle-rss"].limit == 88
    assert by_goal["search-pg-2"].meets is True and by_goal["search-pg-2"].limit == 10
    assert by_goal["propagation-p99"].meets is False  # more than 8 subscriber processes
    assert by_goal["sync-verify"].status == "not measured"
    assert targets.as_json([by_goal["ingest-verify"]])[0]["status"] == "met"
