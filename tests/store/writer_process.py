"""A writer in a process of its own, for the store's concurrency tests.

    python writer_process.py URL ORIGIN KEY_PEM COUNT BARRIER_DIR NAME

Opens the store, publishes COUNT use cases (ids NAME-0, NAME-1, …) through the real
Publisher, retrying when another writer got to the feed first (StoreConflict), and
prints how many conflicts it met. Starts writing only when BARRIER_DIR/go exists, so
that the writers under test really overlap.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from samverka.errors import StoreConflict
from samverka.protocol.signing import SigningKey
from samverka.records.publisher import Publisher
from samverka.store.store import Store
from samverka.v1 import records_pb2


def main(url: str, origin: str, key_pem: str, count: int, barrier: Path, name: str) -> int:
    key = SigningKey.from_pem(Path(key_pem).read_bytes())
    with Store.open(url) as store:
        publisher = Publisher(store, key, origin)
        (barrier / f"ready-{name}").touch()
        deadline = time.monotonic() + 60
        while not (barrier / "go").exists():
            if time.monotonic() > deadline:
                print("no go signal", file=sys.stderr)
                return 2
            time.sleep(0.002)
        conflicts = 0
        for i in range(count):
            record = records_pb2.Record(
                header=records_pb2.RecordHeader(
                    id=f"{name}-{i}",
                    kind=records_pb2.RECORD_KIND_USE_CASE,
                    visibility=records_pb2.VISIBILITY_PUBLIC,
                ),
                use_case=records_pb2.UseCase(
                    title=f"Fall {i} från {name}",
                    summary="Samtidiga skrivare i två processer.",
                    service_area=records_pb2.SERVICE_AREA_IT,
                    status=records_pb2.USE_CASE_STATUS_IDEA,
                ),
            )
            while True:
                try:
                    publisher.publish(record)
                    break
                except StoreConflict:
                    conflicts += 1
                    if time.monotonic() > deadline:
                        raise
        print(conflicts)
    return 0


if __name__ == "__main__":
    url, origin, key_pem, count, barrier, name = sys.argv[1:7]
    sys.exit(main(url, origin, key_pem, int(count), Path(barrier), name))
