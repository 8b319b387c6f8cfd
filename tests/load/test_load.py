"""Load: simulated nodes push to a real hub while as many subscribers stream from it.

``make test``: 29 nodes and 29 subscribers; ``make soak``: all 290 kommuner, both
ways, bounded to 60 s. Every kommun is admitted in-process through the council's own
API (a signing key and a TLS certificate from the hub's CA each), then:

- one process runs every pushing node as an asyncio task with its own identity and
  mutual-TLS channel (tests/load/swarm.py): each signs its entries first, then
  publishes them (one Publish call, all nodes within half a second); a call the hub
  does not answer within its 10 s limit is retried from the hub's head, as the push
  agent does (counted and reported, not an error: on PostgreSQL a burst of 290 queues
  past that limit here);
- subscribing processes run one live subscription (Subscribe) per kommun, each
  collecting every entry after the hub's warm-up entry;
- this test samples the hub process's resident memory (``/proc/PID/status``) from
  before the first subscriber connects to the end.

Expected: zero errors anywhere, every subscriber ends with every entry (counted by
origin, sequence and entry hash), the hub holds each node's feed exactly, within the
time bound, and the hub's memory stays bounded (reported: peak and growth).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import factories
import pytest
from arena import HubProcess, MemberKeys, build_hub, serve_hub
from samverka.protocol.kommuner import kommuner
from samverka_hub.folder import open_hub
from soakresults import record, soak

SOAK = soak()
NODES = 290 if SOAK else 29
ENTRIES_PER_NODE = 4
PUBLISHES_PER_NODE = 1
#: Subscribing processes (each runs NODES / SUBSCRIBER_PROCESSES streams).
SUBSCRIBER_PROCESSES = 2 if SOAK else 1
#: From "go" until every subscriber holds every entry.
TIME_BOUND_SECONDS = 60 if SOAK else 30
#: The hub's database: SQLite for a pilot hub, PostgreSQL in production (soak runs both).
ENGINES = ["sqlite", "postgresql"] if SOAK else ["sqlite"]
SWARM = Path(__file__).parent / "swarm.py"
MIB = 1024 * 1024


@dataclass
class MemorySampler:
    """The hub's resident memory, sampled every 0.2 s in a thread."""

    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def start(self) -> None:
        def run() -> None:
            while not self._stop.is_set():
                self.samples.append((time.monotonic(), self.rss()))
                self._stop.wait(0.2)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def since(self, t: float) -> list[int]:
        return [rss for at, rss in self.samples if at >= t]


@pytest.fixture(scope="module", params=ENGINES)
def loaded_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubProcess, dict[str, MemberKeys]]]:
    tmp = tmp_path_factory.mktemp(f"load-{request.param}")
    store_url = "" if request.param == "sqlite" else str(request.getfixturevalue("pg_schema"))
    codes = sorted(kommuner())[:NODES]
    started = time.monotonic()
    members = build_hub(tmp / "hub", codes, store_url=store_url)
    with open_hub(tmp / "hub") as hub:  # the warm-up entry every subscriber gets first
        hub.node().publisher().publish(factories.make_recommendation(record_id="warm-up"))
    print(f"\nadmitted {len(members)} kommuner in {time.monotonic() - started:.1f} s")
    hub = serve_hub(tmp / "hub", tmp / "logs", store_url=store_url)
    try:
        yield hub, members
    finally:
        hub.stop()


def spec_file(hub: HubProcess, members: dict[str, MemberKeys], path: Path) -> Path:
    spec = {
        "member": hub.member,
        "ca_pem": hub.ca_pem.decode(),
        "go": str(path.parent / "go"),
        "entries_per_node": ENTRIES_PER_NODE,
        "publishes_per_node": PUBLISHES_PER_NODE,
        "jitter_seconds": 0.5,
        "start_position": 0,
        "expected": 1 + NODES * ENTRIES_PER_NODE,
        "deadline_seconds": TIME_BOUND_SECONDS + 120,
        "members": [
            {
                "code": m.code,
                "key_pem": m.key.to_pem().decode(),
                "cert_pem": m.cert_pem.decode(),
                "tls_key_pem": m.tls_key_pem.decode(),
            }
            for m in members.values()
        ],
    }
    path.write_text(json.dumps(spec))
    return path


def wait_for_files(paths: list[Path], procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"a swarm process exited {proc.returncode} early")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {[str(p) for p in paths]}")
        time.sleep(0.02)


def test_nodes_push_while_subscribers_stream_and_nothing_is_lost(
    loaded_hub: tuple[HubProcess, dict[str, MemberKeys]], tmp_path: Path
) -> None:
    hub, members = loaded_hub
    spec = spec_file(hub, members, tmp_path / "spec.json")
    sampler = MemorySampler(hub.pid)
    sampler.start()
    procs: list[subprocess.Popen[bytes]] = []
    outs: list[Path] = []
    try:
        share = NODES // SUBSCRIBER_PROCESSES
        for i in range(SUBSCRIBER_PROCESSES):
            count = share if i < SUBSCRIBER_PROCESSES - 1 else NODES - share * i
            outs.append(tmp_path / f"subscribe-{i}.json")
            procs.append(swarm("subscribe", spec, share * i, count, outs[-1], tmp_path))
        outs.append(tmp_path / "push.json")
        procs.append(swarm("push", spec, 0, NODES, outs[-1], tmp_path))
        wait_for_files([o.with_suffix(".ready") for o in outs], procs, timeout=120)
        connected_rss = sampler.rss()
        go = time.monotonic()
        (tmp_path / "go").write_text("go")
        for proc in procs:
            assert proc.wait(timeout=TIME_BOUND_SECONDS + 180) == 0, log(tmp_path)
        finished = time.monotonic() - go
        time.sleep(1.0)  # one more second of samples after the load
    finally:
        sampler.stop()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    results = [r for out in outs for r in json.loads(out.read_text())]
    pushed = json.loads(outs[-1].read_text())
    subscribed = [r for out in outs[:-1] for r in json.loads(out.read_text())]
    errors = [e for r in results for e in r["errors"]]
    retries = sum(r["retries"] for r in results)
    expected = 1 + NODES * ENTRIES_PER_NODE
    lost = sum(expected - r["received"] for r in subscribed)
    slowest = max(r["done_after"] for r in results)
    with hub.open_store() as store:
        held = {h.origin: h.sequence for h in store.heads()}
    hub_lost = sum(ENTRIES_PER_NODE - held.get(code, 0) for code in members)
    after_go = sampler.since(go)
    peak = max(rss for _, rss in sampler.samples)
    final = after_go[-1]
    growth = final - connected_rss
    engine = "PostgreSQL" if hub.store_url else "SQLite"
    record(
        "load", f"{NODES} nodes push while {NODES} subscribers stream ({engine})",
        nodes=NODES, subscribers=len(subscribed), entries=NODES * ENTRIES_PER_NODE,
        deliveries=sum(r["received"] for r in subscribed), errors=len(errors), retries=retries,
        lost=lost + hub_lost, seconds=round(finished, 1), slowest=round(slowest, 1),
        peak_rss_mib=round(peak / MIB, 1), connected_rss_mib=round(connected_rss / MIB, 1),
        growth_mib=round(growth / MIB, 1),
    )  # fmt: skip
    print(
        f"\n{engine}: {NODES} nodes pushed {NODES * ENTRIES_PER_NODE} entries while "
        f"{len(subscribed)} subscribers streamed: all delivered after {finished:.1f} s "
        f"(slowest node {slowest:.1f} s, {retries} calls retried); hub RSS "
        f"{connected_rss / MIB:.0f} MiB connected, peak {peak / MIB:.0f} MiB, "
        f"{final / MIB:.0f} MiB after"
    )
    assert errors == [], errors[:10]
    assert len(pushed) == NODES and all(r["published"] == ENTRIES_PER_NODE for r in pushed)
    assert len(subscribed) == NODES
    assert lost == 0 and hub_lost == 0
    assert finished <= TIME_BOUND_SECONDS
    # Memory stays bounded: subscribers' buffers and batches in flight, not the log; and
    # what the load leaves behind once the streams close is small (no leak per entry).
    assert peak < connected_rss + 256 * MIB, (peak, connected_rss)
    assert growth < 128 * MIB, (final, connected_rss)


def swarm(
    role: str, spec: Path, first: int, count: int, out: Path, tmp: Path
) -> subprocess.Popen[bytes]:
    with open(tmp / f"{out.stem}.err", "wb") as err:
        return subprocess.Popen(
            [sys.executable, str(SWARM), role, "--spec", str(spec), "--first", str(first),
             "--count", str(count), "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def log(tmp: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-2000:] for p in tmp.glob("*.err"))
