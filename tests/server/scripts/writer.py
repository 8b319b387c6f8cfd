"""Another process authoring into a node's store while its server runs.

Publishes one use case through the node's own publisher and prints the wall-clock
time right after the append committed, so a test can measure delivery latency.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from samverka.node import Node
from samverka.v1 import records_pb2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--id", required=True)
    args = parser.parse_args()
    with Node.open(Path(args.dir)) as node:
        record = records_pb2.Record(
            header=records_pb2.RecordHeader(
                id=args.id,
                kind=records_pb2.RECORD_KIND_USE_CASE,
                visibility=records_pb2.VISIBILITY_PUBLIC,
            ),
            use_case=records_pb2.UseCase(
                title="Chattbot för bygglov",
                summary="Svarar på frågor om bygglov dygnet runt.",
                service_area=records_pb2.SERVICE_AREA_ADMINISTRATION,
                status=records_pb2.USE_CASE_STATUS_PILOT,
            ),
        )
        entry = node.publisher().publish(record)
        print(f"written {entry.sequence} {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
