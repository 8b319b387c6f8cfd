"""The peer comparison: the same ingest and fan-out job against a Nostr relay.

``nostr-relay`` (PyPI, 1.14) is installed with coincurve and websockets into a
throwaway venv under ``.bench-cache/nostr-venv`` — never into the project's venv — and
run on loopback (uvicorn, SQLite storage, its default validators: size, BIP-340
Schnorr signature, age). The load comes from tests/bench/nostr_client.py, run by that
venv's Python.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fed
import procs

VENV = fed.CACHE / "nostr-venv"
PY = VENV / "bin" / "python"
PACKAGES = ["nostr-relay==1.14", "coincurve", "websockets"]
CLIENT = Path(__file__).resolve().parent / "nostr_client.py"

CONFIG = """\
DEBUG: false
relay_name: samverka bench peer
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{db}
  num_concurrent_reqs: 10
  num_concurrent_adds: 2
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
    - nostr_relay.validators.is_recent
verification:
  nip05_verification: disabled
gunicorn:
  bind: 127.0.0.1:{port}
  workers: 1
  loglevel: warning
  # uvicorn's own keepalive (20 s) would drop clients whose pong waits behind their
  # backlog of events while the relay is saturated.
  ws_ping_interval: 600
  ws_ping_timeout: 600
authentication:
  enabled: false
message_timeout: 1800
subscription_limit: 32
max_limit: 6000
"""

RAW_SCHNORR = """
import time
from coincurve import PrivateKey, PublicKeyXOnly
k = PrivateKey(); pub = PublicKeyXOnly(k.public_key_xonly.format())
msg = bytes(32); sig = k.sign_schnorr(msg, None)
rates = []
for _ in range(3):
    t = time.perf_counter()
    for _ in range(3000): pub.verify(sig, msg)
    rates.append(3000 / (time.perf_counter() - t))
print(sorted(rates)[1])
"""


def ensure_venv(say: Callable[[str], None]) -> None:
    if (
        PY.exists()
        and subprocess.run(
            [PY, "-c", "import nostr_relay, coincurve, websockets"], capture_output=True
        ).returncode
        == 0
    ):
        return
    say(f"  installing {', '.join(PACKAGES)} into a throwaway venv ({VENV}) …")
    subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
    subprocess.run([PY, "-m", "pip", "install", "-q", *PACKAGES], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: Any, say: Callable[[str], None]) -> list[Any]:
    from run import Figure

    ensure_venv(say)
    raw = float(
        subprocess.run([PY, "-c", RAW_SCHNORR], capture_output=True, text=True, check=True).stdout
    )
    work = fed.CACHE / "run" / "nostr"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    port = free_port()
    config = work / "config.yaml"
    config.write_text(CONFIG.format(db=work / "nostr.sqlite3", port=port))
    relay_bin = VENV / "bin" / "nostr-relay"
    err = open(work / "relay.err", "wb")  # noqa: SIM115
    relay = subprocess.Popen(
        [relay_bin, "-c", str(config), "serve", "--use-uvicorn"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    url = f"ws://127.0.0.1:{port}"
    try:

        def listening() -> bool:
            if relay.poll() is not None:
                raise RuntimeError(
                    f"nostr-relay exited: {(work / 'relay.err').read_text()[-2000:]}"
                )
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        procs.wait_for(listening, 60, "nostr-relay to listen")
        ingest = _client("ingest", url, "--events", str(args.peer_events), "--authors", "290")
        rate = ingest["accepted"] / ingest["seconds"]
        say(f"  nostr-relay ingest: {rate:,.0f} events/s ({ingest['accepted']} accepted)")
        rss_before = procs.rss_mb(relay.pid)
        fan = _client(
            "fanout",
            url,
            "--subscribers",
            str(args.peer_subscribers),
            "--publishes",
            str(args.publishes),
            "--gap",
            str(args.publish_gap),
            "--processes",
            str(args.follow_procs),
        )
        rss = procs.rss_mb(relay.pid)
    finally:
        procs.stop(relay)
        err.close()
    lat = sorted(fan["latencies_ms"])
    params = {
        "events": args.peer_events,
        "authors": 290,
        "storage": "sqlite (aiosqlite)",
        "server": "uvicorn, 1 worker",
        "accepted": ingest["accepted"],
        "rss_mb_after_ingest": rss_before,
    }
    figures = [
        Figure(
            "Nostr relay ingest (nostr-relay 1.14, Schnorr)",
            rate,
            "events/s",
            raw,
            rate / raw,
            {**params, "limit": "raw BIP-340 Schnorr verify/s, one core (coincurve)"},
            key="nostr-ingest",
        ),
    ]
    if lat:
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        figures += [
            Figure(
                "Nostr relay fan-out, received and verified: p50",
                statistics.median(lat),
                "ms",
                parameters={
                    "subscribers": args.peer_subscribers,
                    "deliveries": len(lat),
                    "expected": fan["expected"],
                },
            ),
            Figure(
                "Nostr relay fan-out: p99",
                p99,
                "ms",
                parameters={
                    "subscribers": args.peer_subscribers,
                    "processes": fan.get("processes", 1),
                },
                key="nostr-fanout-p99",
            ),
            Figure(
                "Nostr relay RSS with subscribers",
                rss,
                "MB",
                parameters={"subscribers": args.peer_subscribers},
            ),
        ]
    return figures


def _client(*args: str) -> dict[str, Any]:
    proc = subprocess.run([PY, str(CLIENT), *args], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"nostr client {args[0]} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
