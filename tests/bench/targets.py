"""Issue 15's targets, each a row: what was measured, what it is compared with (measured in
the same run), the ratio, the target and whether this run meets it.

A figure answers a target through its ``key`` (``Figure.key`` in run.py). The rows are
worked out from the figures as written to ``bench-results.json`` (plain dicts), so a
partial run (``--only``) that keeps the other figures of an earlier run still shows
every target; a target whose figure is missing shows as "not measured".

Three kinds of comparison:

- the figure's own limit (e.g. ingest against raw Ed25519 verify/s, same run);
- another figure of the same run (``versus``: e.g. ingest against the Nostr relay's);
- a fixed bound (``bound``: e.g. search p95 against 10 ms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: (value, limit, the figure's parameters) -> met
Test = Callable[[float, float, dict[str, Any]], bool]


@dataclass(frozen=True)
class Goal:
    key: str
    #: The issue's target, in words.
    target: str
    #: Key of the figure that measures it.
    figure: str
    #: What the limit is, in words.
    limit_is: str
    test: Test
    #: Key of the figure it is compared with; "" for the figure's own limit or ``bound``.
    versus: str = ""
    bound: float | None = None
    #: Parameters of the figure worth showing beside the row.
    show: tuple[str, ...] = ()


@dataclass
class TargetRow:
    goal: str
    target: str
    figure: str
    value: float | None
    unit: str
    limit: float | None
    limit_is: str
    ratio: float | None
    #: True / False; None when not measured in this run (or the earlier ones kept).
    meets: bool | None
    status: str
    note: str = ""


def _search(place: str, store: str, kind: str, key: str) -> Goal:
    return Goal(
        f"search-{key}",
        f"search p95 < 10 ms at {place} over 100,000 records, {kind}",
        f"search-{key}",
        "10 ms (fixed)",
        lambda v, limit, p: v < limit,
        bound=10.0,
        show=("p50_ms",),
    )


GOALS: tuple[Goal, ...] = (
    Goal(
        "ingest-verify",
        "hub ingest ≥ 70 % of one core's raw verify rate",
        "ingest",
        "raw Ed25519 verify/s, one core, same run",
        lambda v, limit, p: v >= 0.7 * limit,
        show=("entries", "store"),
    ),
    Goal(
        "sync-verify",
        "full sync ≥ 70 % of one core's raw verify rate",
        "sync",
        "raw Ed25519 verify/s, one core, same run",
        lambda v, limit, p: v >= 0.7 * limit,
        show=("entries",),
    ),
    Goal(
        "sync-two-cores",
        "full sync > 100 % of one core's raw verify rate when a second core is idle",
        "sync",
        "raw Ed25519 verify/s, one core, same run",
        lambda v, limit, p: v > limit,
        show=("entries", "load_average"),
    ),
    Goal(
        "sync-flat",
        "full sync cost per entry flat in the federation's size (largest ≤ 1.1× smallest)",
        "sync-flat",
        "cost per entry at the smallest size, same run",
        lambda v, limit, p: v <= 1.1 * limit,
        show=("sizes",),
    ),
    Goal(
        "live-subscriber-cpu",
        "a live subscriber's CPU per entry ≤ 3 raw verifications",
        "live-subscriber-cpu",
        "CPU of one raw Ed25519 verify, same run",
        lambda v, limit, p: v <= 3 * limit,
    ),
    Goal(
        "hub-stream-cpu",
        "hub CPU per entry per live stream ≤ 2× a bare grpc.aio send over mTLS to one stream",
        "hub-stream-cpu",
        "CPU of a bare grpc.aio send of the same message over mTLS, same run",
        lambda v, limit, p: v <= 2 * limit,
        show=("subscribers",),
    ),
    Goal(
        "propagation-vs-nostr",
        "propagation to 290 subscribers ahead of the Nostr relay (same subscriber "
        "processes, each verifying what it receives): p99",
        "propagation-light-p99",
        "the Nostr relay's fan-out p99, same run",
        lambda v, limit, p: v < limit,
        versus="nostr-fanout-p99",
        show=("subscribers", "follower_processes"),
    ),
    Goal(
        "propagation-p99",
        "propagation p99 < 100 ms with 290 subscribers over ≤ 8 processes",
        "propagation-stored-p99",
        "100 ms (fixed)",
        lambda v, limit, p: v < limit and int(p.get("follower_processes", 99)) <= 8,
        bound=100.0,
        show=("subscribers", "follower_processes"),
    ),
    Goal(
        "node-idle-rss",
        "node idle RSS within 10 MB of the design card's stack (bare grpc.aio server on "
        "uvloop with grpcio, protobuf, cryptography, sqlmodel and one table)",
        "node-rss",
        "idle RSS of that floor server, same run",
        lambda v, limit, p: v - limit <= 10,
        versus="floor-rss",
    ),
    Goal(
        "ingest-vs-nostr",
        "hub ingest ≥ 10× the Nostr relay's",
        "ingest",
        "the Nostr relay's ingest (events/s), same run",
        lambda v, limit, p: v >= 10 * limit,
        versus="nostr-ingest",
    ),
    _search("a node (SQLite)", "sqlite", "one word, a very common term", "node-1-common"),
    _search("a node (SQLite)", "sqlite", "one word, rarer terms", "node-1-rare"),
    _search("a node (SQLite)", "sqlite", "two words", "node-2"),
    _search("the hub (PostgreSQL)", "postgresql", "one word, a very common term", "pg-1-common"),
    _search("the hub (PostgreSQL)", "postgresql", "one word, rarer terms", "pg-1-rare"),
    _search("the hub (PostgreSQL)", "postgresql", "two words", "pg-2"),
)


def rows(figures: Sequence[dict[str, Any]], goals: Sequence[Goal] = GOALS) -> list[TargetRow]:
    """One row per goal, from the figures (dicts, as in bench-results.json)."""
    by_key = {f["key"]: f for f in figures if f.get("key") and _number(f.get("value"))}
    out = []
    for goal in goals:
        fig = by_key.get(goal.figure)
        limit: Any
        if goal.versus:
            other = by_key.get(goal.versus)
            limit = other["value"] if other else None
        elif goal.bound is not None:
            limit = goal.bound
        else:
            limit = fig.get("limit") if fig else None
        if fig is None or not _number(limit):
            missing = goal.figure if fig is None else (goal.versus or "its limit")
            out.append(
                TargetRow(
                    goal.key,
                    goal.target,
                    fig["name"] if fig else "",
                    fig["value"] if fig else None,
                    fig["unit"] if fig else "",
                    None,
                    goal.limit_is,
                    None,
                    None,
                    "not measured",
                    f"no figure '{missing}' in this run",
                )
            )
            continue
        value, params = float(fig["value"]), dict(fig.get("parameters") or {})
        met = bool(goal.test(value, float(limit), params))
        note = ", ".join(
            f"{k} {_num(params[k]) if isinstance(params[k], float) else params[k]}"
            for k in goal.show
            if k in params
        )
        out.append(
            TargetRow(
                goal.key,
                goal.target,
                fig["name"],
                value,
                fig["unit"],
                float(limit),
                goal.limit_is,
                value / float(limit) if limit else None,
                met,
                "met" if met else "NOT MET",
                note,
            )
        )
    return out


def as_json(table: Sequence[TargetRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in table]


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and x == x


def _num(x: float | None) -> str:
    if x is None or x != x:
        return "—"
    return f"{x:,.2f}" if abs(x) < 10 else f"{x:,.0f}"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f} %" if x < 10 else f"{x:.1f}×"


def print_table(table: Sequence[TargetRow], *, quick: bool = False) -> None:
    head = "targets of issue 15"
    if quick:
        head += " (quick run: small sizes, not the issue's)"
    print(f"\n{head}")
    cells = [("status", "measured", "limit (same run)", "ratio", "target")]
    for r in table:
        cells.append(
            (
                r.status,
                f"{_num(r.value)} {r.unit}".strip() if r.value is not None else "—",
                _num(r.limit),
                _ratio(r.ratio),
                r.target + (f" [{r.note}]" if r.note else ""),
            )
        )
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    for i, row in enumerate(cells):
        print(
            "  ".join(
                c.ljust(widths[j]) if j in (0, 4) else c.rjust(widths[j]) for j, c in enumerate(row)
            ).rstrip()
        )
        if i == 0:
            print("  ".join("-" * min(w, 60) for w in widths))


def print_markdown(table: Sequence[dict[str, Any]]) -> None:
    print("| target | measured | limit | the limit is | ratio | met |")
    print("| --- | ---: | ---: | --- | ---: | --- |")
    for r in table:
        met = {True: "yes", False: "**no**", None: "not measured"}[r["meets"]]
        value = "—" if r["value"] is None else f"{_num(r['value'])} {r['unit']}".strip()
        note = f" ({r['note']})" if r["note"] else ""
        print(
            f"| {r['target']} | {value} | {_num(r['limit'])} | {r['limit_is']} "
            f"| {_ratio(r['ratio'])} | {met}{note} |"
        )
