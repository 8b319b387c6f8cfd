"""A reader in its own process: sync a peer's feed into a SQLite store, verifying it.

Prints one line per applied page (``page <cursor> accepted=<n>``) and, at the end,
the SyncReport as JSON. ``--page-delay`` slows it down so a test can kill it mid-way.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from pathlib import Path

import uvloop
from samverka.protocol.signing import PublicKey
from samverka.protocol.verify import KeyRing, TrustedKey
from samverka.replication.sync import SyncReport, sync_from_peer
from samverka.store.store import Store
from samverka.transport.client import ClientTls, FeedClient


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--tls", required=True, help="folder with ca.pem, member.pem, member.key")
    parser.add_argument("--store", required=True)
    parser.add_argument("--trust", action="append", default=[], help="ORIGIN=PUBKEY.pem")
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--page-delay", type=float, default=0.0)
    args = parser.parse_args()

    tls_dir = Path(args.tls)
    tls = ClientTls.from_files(tls_dir / "ca.pem", tls_dir / "member.pem", tls_dir / "member.key")
    keys = KeyRing()
    for item in args.trust:
        origin, pem = item.split("=", 1)
        keys.add(TrustedKey(origin, PublicKey.from_pem(Path(pem).read_bytes())))
    store = Store.open(f"sqlite:///{args.store}")

    def progress(report: SyncReport) -> None:
        print(f"page {report.position} accepted={report.accepted}", flush=True)
        if args.page_delay:
            time.sleep(args.page_delay)  # blocks this reader only: that is the point

    async def sync() -> SyncReport:
        async with FeedClient.connect(args.address, tls) as client:
            return await sync_from_peer(
                store,
                keys,
                client,
                peer=args.address,
                progress=progress,
                batch_size=args.batch_size,
            )

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        report = runner.run(sync())
    print(json.dumps(dataclasses.asdict(report)), flush=True)
    store.close()


if __name__ == "__main__":
    main()
