"""Quick performance figures for the store (a script, not a timed test).

    .venv/bin/python tests/store/perf_store.py [--pg URL] [--records 100000]

Prints, for SQLite (a WAL file in a temporary folder) and optionally PostgreSQL:

- append: 10,000 entries in batches of 500 (µs per entry, one transaction per batch);
- FeedState lookups (head, entry_hash, record_version): µs per call;
- read_log: pages of 500 entries after random cursors (ms, median and p95);
- search: one- and two-word Swedish queries over N current records (ms, p50/p95).

Entries are real signed entries (samverka.protocol.entries), 290 origins, Swedish text.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from samverka.protocol.entries import ParsedEntry, build_entry, parse_signed, sign_entry
from samverka.protocol.kommuner import kommuner
from samverka.protocol.signing import GENESIS_HASH, SigningKey, entry_hash
from samverka.store.store import Store
from samverka.v1 import records_pb2

WORDS = [
    "äldreomsorg",
    "hemtjänst",
    "schemaläggning",
    "skola",
    "förskola",
    "bygglov",
    "ekonomi",
    "fakturor",
    "chattbot",
    "språkmodell",
    "översättning",
    "tolkning",
    "socialtjänst",
    "försörjningsstöd",
    "handläggning",
    "beslutsstöd",
    "journalföring",
    "dokumentation",
    "upphandling",
    "avtal",
    "kontaktcenter",
    "medborgare",
    "felanmälan",
    "gatubelysning",
    "vatten",
    "avlopp",
    "avfall",
    "rekrytering",
    "lönehantering",
    "sjukfrånvaro",
    "prognos",
    "kommunikation",
    "sociala",
    "medier",
    "digitalisering",
    "automatisering",
    "robot",
    "bildanalys",
    "taligenkänning",
    "transkribering",
    "sammanfattning",
    "protokoll",
    "nämnd",
    "fullmäktige",
    "diarium",
    "arkiv",
    "informationssäkerhet",
    "personuppgifter",
    "konsekvensbedömning",
    "riskbedömning",
    "pilot",
    "utvärdering",
    "nytta",
    "timmar",
    "besparing",
    "kvalitet",
    "tillgänglighet",
    "klarspråk",
    "elever",
    "lärare",
    "betyg",
    "frånvaro",
    "matsedel",
    "skolskjuts",
    "räddningstjänst",
    "larm",
    "brandskydd",
    "miljötillsyn",
    "livsmedel",
    "kontroll",
    "inspektion",
    "detaljplan",
    "karta",
    "geodata",
    "lantmäteri",
    "fastighet",
    "energi",
    "uppvärmning",
    "lokaler",
    "städning",
    "parkering",
    "trafik",
    "kollektivtrafik",
]

ORIGINS = sorted(kommuner())


def _vocabulary(seed: int = 7, size: int = 5_000) -> tuple[list[str], list[float]]:
    """WORDS among `size` made-up Swedish-looking words, with Zipf frequencies.

    Real text is Zipfian: a few words are everywhere, most are rare. The real words
    sit at ranks spread over the whole range, so queries meet both kinds.
    """
    rng = random.Random(seed)
    syllables = [
        "sk",
        "ka",
        "lä",
        "ök",
        "nin",
        "gar",
        "för",
        "vål",
        "tjä",
        "ber",
        "ord",
        "mål",
        "sam",
        "häl",
        "rå",
        "ström",
    ]
    made_up = {
        "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size)
    }
    words = sorted(made_up - set(WORDS))
    rng.shuffle(words)
    step = len(words) // len(WORDS)
    for i, word in enumerate(WORDS):
        words.insert(i * step, word)
    return words, [1 / (rank + 1) for rank in range(len(words))]


VOCABULARY, WEIGHTS = _vocabulary()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(VOCABULARY, WEIGHTS, k=n)).capitalize()


class Feeds:
    """Signed entries of many origins with Swedish use cases."""

    def __init__(self, origins: Sequence[str], seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.keys = {o: SigningKey.generate() for o in origins}
        self.heads = {o: (0, GENESIS_HASH) for o in origins}
        self.origins = list(origins)
        self.t = 1_750_000_000_000

    def entry(self, origin: str, record_id: str, version: int = 1) -> ParsedEntry:
        rng = self.rng
        seq, prev = self.heads[origin]
        self.t += 1
        record = records_pb2.Record(
            header=records_pb2.RecordHeader(
                id=record_id,
                kind=records_pb2.RECORD_KIND_USE_CASE,
                origin=origin,
                version=version,
                created_at_ms=self.t,
                updated_at_ms=self.t,
                visibility=rng.choice(
                    [records_pb2.VISIBILITY_PUBLIC] * 4 + [records_pb2.VISIBILITY_MEMBERS]
                ),
                language="sv",
                tags=rng.choices(VOCABULARY[:200], k=2),
            ),
            use_case=records_pb2.UseCase(
                title=sentence(rng, 5),
                summary=sentence(rng, 20),
                description=sentence(rng, 60),
                service_area=rng.randint(1, 18),  # type: ignore[arg-type]
                status=rng.randint(1, 4),  # type: ignore[arg-type]
                techniques=rng.choices(VOCABULARY[:100], k=1),
                products=["Copilot"],
            ),
        )
        raw = build_entry(
            origin=origin, sequence=seq + 1, previous_hash=prev, timestamp_ms=self.t, record=record
        )
        self.heads[origin] = (seq + 1, entry_hash(raw))
        return parse_signed(sign_entry(self.keys[origin], raw))

    def batch(self, n: int, prefix: str) -> list[ParsedEntry]:
        out = []
        for i in range(n):
            origin = self.origins[i % len(self.origins)]
            out.append(self.entry(origin, f"{prefix}-{i}"))
        return out


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def run(url: str, label: str, n_records: int) -> None:
    print(f"\n== {label} ==")
    store = Store.open(url)
    feeds = Feeds(ORIGINS)

    # 1. append 10,000 entries in batches of 500
    batches = [feeds.batch(500, f"a{b}") for b in range(20)]
    start = time.perf_counter()
    for batch in batches:
        store.append(batch)
    elapsed = time.perf_counter() - start
    print(f"append 10,000 entries in batches of 500: {elapsed * 1e6 / 10_000:.1f} µs/entry")

    # 2. FeedState lookups, one indexed query each
    rng = random.Random(2)
    for name, fn in (
        ("head", lambda: store.head(rng.choice(ORIGINS))),
        ("entry_hash", lambda: store.entry_hash(rng.choice(ORIGINS), rng.randint(1, 30))),
        ("record_version", lambda: store.record_version(rng.choice(ORIGINS), "a3-7")),
    ):
        t = timed(fn, 2000)
        print(f"{name}: {statistics.median(t) * 1e6:.1f} µs median")

    # 3. fill to n_records current records, then read_log and search
    have = 10_000
    while have < n_records:
        n = min(5_000, n_records - have)
        for start_i in range(0, n, 500):
            store.append(feeds.batch(min(500, n - start_i), f"f{have + start_i}"))
        have += n
    if store.is_postgres:
        # What autovacuum does after a bulk load; without statistics the planner
        # guesses how many records a word matches and picks slow plans.
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    end = store.log_position()
    t = timed(lambda: store.read_log(rng.randint(0, end - 500), 500, member=False), 200)
    print(
        f"read_log 500 entries: median {statistics.median(t) * 1e3:.2f} ms, "
        f"p95 {pct(t, 95) * 1e3:.2f} ms"
    )
    one = [rng.choice(WORDS) for _ in range(200)]
    prefixes = [w[: max(3, len(w) // 2)] for w in one]
    two = [f"{rng.choice(WORDS)} {rng.choice(WORDS)}" for _ in range(200)]
    broad = [rng.choice(VOCABULARY[:10]) for _ in range(100)]  # in most records
    cases = (("1 word", one), ("1 prefix", prefixes), ("2 words", two), ("broad word", broad))
    for name, queries in cases:
        it = iter(queries)
        t = timed(lambda it=it: store.search(next(it), member=False), len(queries))  # type: ignore[misc]
        print(
            f"search {name} over {have:,} records: p50 {statistics.median(t) * 1e3:.2f} ms, "
            f"p95 {pct(t, 95) * 1e3:.2f} ms"
        )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", help="a PostgreSQL URL of an EMPTY database to measure too")
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'perf.db'}", "SQLite (WAL file)", args.records)
    if args.pg:
        run(args.pg, "PostgreSQL", args.records)


if __name__ == "__main__":
    main()
