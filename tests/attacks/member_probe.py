"""A legitimate member's calls, timed, in a process of its own (so the flood's client
work does not count against it): ``python member_probe.py ADDRESS CA CERT KEY SECONDS``
asks for the directory and its heads every 100 ms and prints one JSON line:
``{"latencies": [...], "failures": [...]}``."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import grpc
from samverka.transport.client import ClientTls, open_channel


async def probe(address: str, tls: ClientTls, seconds: float) -> dict[str, list[object]]:
    latencies: list[float] = []
    failures: list[str] = []
    async with open_channel(address, tls) as channel:
        calls = [
            channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=bytes)
            for path in (
                "/samverka.v1.HubService/GetDirectory",
                "/samverka.v1.FeedService/GetFeedHeads",
            )
        ]
        await calls[0](b"", timeout=10)  # connected before timing starts
        print("ready", flush=True)
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            for call in calls:
                started = time.monotonic()
                try:
                    await call(b"", timeout=5)
                except grpc.aio.AioRpcError as err:
                    failures.append(f"{err.code().name}: {err.details()}")
                latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.1)
    return {"latencies": latencies, "failures": failures}


if __name__ == "__main__":
    address, ca, cert, key, seconds = sys.argv[1:6]
    tls = ClientTls(Path(ca).read_bytes(), Path(cert).read_bytes(), Path(key).read_bytes())
    print(json.dumps(asyncio.run(probe(address, tls, float(seconds)))), flush=True)
