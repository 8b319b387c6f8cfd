"""Page-load figures for the web catalog over a large federation (a script, not a timed test).

    .venv/bin/python tests/web/perf_web.py [--records 100000] [--pg URL] [--repeat 30]

Builds a hub (``init_hub``) whose directory lists all 290 kommuner (enrolled through
the council), fills its store with ``--records`` signed records of every kind (use
cases, lessons about them, solutions, adoptions; Zipfian Swedish text; a fifth of
them MEMBERS), serves the catalog with the real server (:class:`WebEndpoint`, uvicorn
in its own asyncio loop) and times each page over loopback HTTP: median and p95 in
ms, after one warm-up request per URL (the first request builds the in-memory
projection; its time is printed too).

For ``make bench``: :func:`build_federation` fills a hub folder, :func:`page_urls`
names the pages to time (the set a visitor's session touches: start page, search,
search with filters, browsing with filters, a record, a kommun, coverage, proven
elsewhere, the JSON API and a CSV export), :func:`serve` runs the catalog and
:func:`time_pages` measures them.

Measured here (2 cores shared with other work, load average about 4; 100,000 records,
30 requests per page, median / p95 in ms): SQLite — start 13 / 92, search one word
51 / 137, search + filters 57 / 83, browse with filters 32 / 41, technique 25 / 42,
record 7 / 26, kommun 18 / 25, coverage 12 / 15, proven 14 / 32, API search 20 / 24,
CSV 74 / 112. PostgreSQL — start 9 / 28, search one word 41 / 98, search + filters
28 / 84, browse with filters 22 / 94, technique 56 / 121, record 15 / 52, kommun
35 / 54, coverage 10 / 21, proven 15 / 24, API search 30 / 49, CSV 123 / 247.
The first request after start waits for the in-memory projection when it needs it
(a technique filter, a use case's lessons): several seconds at 100,000 records,
once per process; ``hub serve`` builds it in the background at start.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvloop
from samverka.membership.enrollment import build_enrollment_request
from samverka.protocol.entries import ParsedEntry, build_entry, parse_signed, sign_entry
from samverka.protocol.kommuner import kommuner
from samverka.protocol.signing import GENESIS_HASH, SigningKey, entry_hash
from samverka.store.store import Store
from samverka.transport.pki import create_csr
from samverka.v1 import records_pb2 as R
from samverka_hub.folder import Hub, init_hub
from samverka_hub.web.server import WebEndpoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "store"))
from perf_store import VOCABULARY, WORDS, pct, sentence

ORIGINS = sorted(kommuner())
TECHNIQUES = ["Generativ AI", "Taligenkänning", "Bildanalys", "Klassificering", "Prognos"]


@dataclass
class Built:
    hub: Hub
    #: (origin, record id) of PUBLIC live use cases and solutions, to open record pages.
    public: list[tuple[str, str]]


class _Writer:
    """Signed entries of the 290 kommuner, every kind, with the keys the directory lists."""

    def __init__(self, keys: dict[str, SigningKey], seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.keys = keys
        self.heads = {o: (0, GENESIS_HASH) for o in keys}
        self.t = 1_750_000_000_000
        self.solutions: list[tuple[str, str]] = []
        self.use_cases: list[tuple[str, str]] = []
        self.public: list[tuple[str, str]] = []

    def _record(self, origin: str, i: int) -> R.Record:
        rng = self.rng
        visibility = R.VISIBILITY_MEMBERS if rng.random() < 0.2 else R.VISIBILITY_PUBLIC
        roll = rng.random()
        target: tuple[str, str] | None = None
        if roll >= 0.9 and self.solutions:
            # Adoptions favour the first solutions (a few are adopted widely).
            target = self.solutions[min(int(rng.expovariate(0.05)), len(self.solutions) - 1)]
            if target[0] == origin:  # a kommun cannot adopt its own solution
                target = None
                roll = 0.0
        rid: str
        if roll < 0.55 or not self.use_cases:
            rid = f"uc-{i}"
            kind, body = R.RECORD_KIND_USE_CASE, "use_case"
            value: object = R.UseCase(
                title=sentence(rng, 5),
                summary=sentence(rng, 20),
                description=sentence(rng, 60),
                service_area=rng.randint(1, 18),  # type: ignore[arg-type]
                status=rng.randint(1, 4),  # type: ignore[arg-type]
                techniques=[rng.choice(TECHNIQUES)],
                risk_class=rng.randint(1, 3),  # type: ignore[arg-type]
                products=["Copilot"],
            )
            self.use_cases.append((origin, rid))
        elif roll < 0.75:
            rid = f"lesson-{i}"
            kind, body = R.RECORD_KIND_LESSON, "lesson"
            about = rng.choice(self.use_cases)
            value = R.Lesson(
                title=sentence(rng, 5),
                use_case=R.RecordRef(origin=about[0], id=about[1]),
                category=rng.randint(1, 6),  # type: ignore[arg-type]
                advice=sentence(rng, 30),
            )
        elif roll < 0.9 or not self.solutions:
            rid = f"sol-{i}"
            kind, body = R.RECORD_KIND_SOLUTION, "solution"
            value = R.Solution(
                title=sentence(rng, 5),
                summary=sentence(rng, 20),
                solution_type=rng.randint(1, 7),  # type: ignore[arg-type]
                service_area=rng.randint(1, 18),  # type: ignore[arg-type]
                licence="CC-BY-4.0",
                url="https://example.se/losning",
            )
            self.solutions.append((origin, rid))
        else:
            assert target is not None
            rid = f"adopt-{i}"
            kind, body = R.RECORD_KIND_ADOPTION, "adoption"
            value = R.Adoption(
                solution=R.RecordRef(origin=target[0], id=target[1]),
                status=rng.choice([2, 3, 3]),  # type: ignore[arg-type]
            )
        record = R.Record(
            header=R.RecordHeader(
                id=rid,
                kind=kind,
                origin=origin,
                version=1,
                created_at_ms=self.t,
                updated_at_ms=self.t,
                visibility=visibility,  # type: ignore[arg-type]
                language="sv",
                tags=rng.choices(VOCABULARY[:200], k=2),
            )
        )
        getattr(record, body).CopyFrom(value)
        if visibility == R.VISIBILITY_PUBLIC and body in ("use_case", "solution"):
            self.public.append((origin, rid))
        return record

    def entry(self, origin: str, i: int) -> ParsedEntry:
        seq, prev = self.heads[origin]
        self.t += 1
        record = self._record(origin, i)
        raw = build_entry(
            origin=origin, sequence=seq + 1, previous_hash=prev, timestamp_ms=self.t, record=record
        )
        self.heads[origin] = (seq + 1, entry_hash(raw))
        return parse_signed(sign_entry(self.keys[origin], raw))


def build_federation(folder: Path, records: int, *, store_url: str = "") -> Built:
    """A hub in ``folder`` with all 290 kommuner enrolled and ``records`` records."""
    hub = init_hub(folder / "hub", store_url=store_url)
    keys: dict[str, SigningKey] = {}
    for code in ORIGINS:
        key = SigningKey.generate()
        csr = create_csr(code, hosts=("localhost",))
        hub.council.submit_enrollment(
            build_enrollment_request(
                key, kommunkod=code, csr_der=csr.csr_der, created_at_ms=time.time_ns() // 10**6
            )
        )
        keys[code] = key
    for code in ORIGINS:
        hub.council.approve(code)
    writer = _Writer(keys)
    store: Store = hub.store
    for start in range(0, records, 500):
        batch = [
            writer.entry(ORIGINS[i % len(ORIGINS)], i)
            for i in range(start, min(records, start + 500))
        ]
        store.append(batch)
    if store.is_postgres:
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return Built(hub, writer.public)


def page_urls(built: Built, *, seed: int = 3, count: int = 30) -> list[tuple[str, list[str]]]:
    """The pages to time, by name: each a list of ``count`` URLs (varied where it matters)."""
    rng = random.Random(seed)
    pick = [rng.choice(built.public) for _ in range(count)]
    words = [rng.choice(WORDS) for _ in range(count)]
    areas = ["elderly-care", "school", "administration", "it", "social-services"]
    counties = sorted({k.county_code for k in kommuner().values()})

    def many(fn: object) -> list[str]:
        return [fn(i) for i in range(count)]  # type: ignore[operator]

    q = urllib.parse.quote
    return [
        ("start page", ["/"] * count),
        ("search 1 word", many(lambda i: f"/sok?q={q(words[i])}")),
        ("search prefix", many(lambda i: f"/sok?q={q(words[i][:4])}")),
        (
            "search + filters",
            many(lambda i: f"/sok?q={q(words[i])}&area={areas[i % 5]}&status=production"),
        ),
        (
            "browse filters",
            many(lambda i: f"/sok?kind=use-case&area={areas[i % 5]}&county={counties[i % 21]}"),
        ),
        ("browse page 20", many(lambda i: f"/sok?kind=use-case&page={20 + i}")),
        ("technique", many(lambda i: f"/sok?technique={q(TECHNIQUES[i % 5])}&area={areas[i % 5]}")),
        ("record", many(lambda i: f"/post/{pick[i][0]}/{pick[i][1]}")),
        ("kommun", many(lambda i: f"/kommun/{pick[i][0]}")),
        ("coverage", ["/tackning"] * count),
        ("proven", ["/beprovat"] * count),
        ("api search", many(lambda i: f"/api/records?q={q(words[i])}")),
        ("api record", many(lambda i: f"/api/records/{pick[i][0]}/{pick[i][1]}")),
        ("csv 1 word", many(lambda i: f"/api/records.csv?q={q(words[i])}")),
    ]


@contextmanager
def serve(built: Built) -> Iterator[str]:
    """The catalog over loopback HTTP, in a thread with its own uvloop loop; its base URL."""
    hub = built.hub
    endpoint = WebEndpoint(
        hub.store, hub.council.current_directory, hub.config.web, listen="127.0.0.1:0"
    )
    loop = uvloop.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(endpoint.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(30)
    try:
        yield f"http://{endpoint.bound_address}"
    finally:
        asyncio.run_coroutine_threadsafe(endpoint.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def fetch(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        assert response.status == 200, url
    return time.perf_counter() - start


def time_pages(base: str, pages: list[tuple[str, list[str]]]) -> dict[str, list[float]]:
    """Seconds per request for each page (after one warm-up request each)."""
    results: dict[str, list[float]] = {}
    for name, urls in pages:
        first = fetch(base + urls[0])
        print(f"  (first {name}: {first * 1e3:.0f} ms)", flush=True)
        results[name] = [fetch(base + u) for u in urls]
    return results


def report(label: str, results: dict[str, list[float]]) -> None:
    print(f"\n== {label}: page load over loopback HTTP (ms) ==")
    print(f"{'page':<18}{'median':>9}{'p95':>9}{'max':>9}")
    for name, times in results.items():
        print(
            f"{name:<18}{statistics.median(times) * 1e3:>9.1f}"
            f"{pct(times, 95) * 1e3:>9.1f}{max(times) * 1e3:>9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--pg", help="a PostgreSQL URL of an EMPTY database to measure too")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    targets = [("sqlite", "")] + ([("postgresql", args.pg)] if args.pg else [])
    for label, url in targets:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            built = build_federation(Path(tmp), args.records, store_url=url)
            took = time.perf_counter() - started
            print(f"{label}: built {args.records:,} records in {took:.0f} s")
            try:
                with serve(built) as base:
                    results = time_pages(base, page_urls(built, count=args.repeat))
                report(f"{label}, {args.records:,} records", results)
            finally:
                built.hub.close()


if __name__ == "__main__":
    main()
