"""Coverage of a whole federation read from a real store (SQLite and PostgreSQL): every
one of the 290 kommuner shares records; the counts match what was written, and
counting takes well under a second."""

from __future__ import annotations

import random
import time
from collections import Counter

from factories import FeedWriter
from hubkit import HubUnderTest
from samverka.protocol.entries import parse_signed
from samverka.protocol.kommuner import kommuner
from samverka.protocol.verify import KeyRing
from samverka.replication.ingest import ingest
from samverka.v1 import records_pb2 as R
from samverka_hub.insight import hub_coverage, read_tallies

PER_KOMMUN = 8


def test_coverage_of_290_kommuner_from_the_store(hub: HubUnderTest) -> None:
    rng = random.Random(290)
    writers: list[FeedWriter] = []
    statuses: Counter[int] = Counter()
    for code in sorted(kommuner()):
        writer = FeedWriter(code)
        for i in range(PER_KOMMUN):
            if i % 4 == 3:
                writer.publish("solution", record_id=f"sol-{i}")
                continue
            status = rng.randint(1, 4)
            visibility = rng.choice([R.VISIBILITY_PUBLIC, R.VISIBILITY_MEMBERS])
            statuses[status] += 1
            writer.publish(
                "use_case",
                record_id=f"uc-{i}",
                status=status,
                service_area=rng.randint(1, 18),
                visibility=visibility,
            )
        writers.append(writer)
    # one retired use case: counted before, not after
    gone = writers[0].entries[0]
    retired = parse_signed(gone).record
    retired.header.tombstone = True
    retired.header.version = 2
    writers[0].append(retired)
    statuses[parse_signed(gone).record.use_case.status] -= 1

    keys = KeyRing(w.trusted_key() for w in writers)
    report = ingest(hub.hub.store, keys, [e for w in writers for e in w.entries])
    assert report.ok, report.first_refusal
    directory = hub.council.current_directory()

    started = time.perf_counter()
    tallies = read_tallies(hub.hub.store)
    counted = time.perf_counter()
    coverage = hub_coverage(hub.hub.store, directory, member_view=True)
    finished = time.perf_counter()

    use_cases = 290 * (PER_KOMMUN - PER_KOMMUN // 4) - 1
    assert coverage.use_cases == use_cases == sum(statuses.values())
    assert dict(coverage.use_cases_by_status) == {s: n for s, n in statuses.items() if n}
    assert coverage.solutions == 290 * (PER_KOMMUN // 4)
    assert coverage.kommuner_with_use_cases == 290 and coverage.share == 1.0
    assert all(c.share == 1.0 for c in coverage.counties)
    public = hub_coverage(hub.hub.store, directory, member_view=False)
    assert 0 < public.use_cases < coverage.use_cases
    print(
        f"\n{hub.hub.store.url.split(':')[0]}: GROUP BY over {len(hub.hub.store.heads())} "
        f"feeds → {len(tallies)} tally rows in {(counted - started) * 1000:.1f} ms; "
        f"coverage of 290 kommuner in {(finished - counted) * 1000:.1f} ms"
    )
    assert finished - counted < 2.0
