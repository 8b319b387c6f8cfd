"""Two hub replicas on one PostgreSQL database harvest one member node between them.

Replica A is made with ``hub init --store-url`` on a throwaway database, replica B is a
copy of its folder on other ports (as in test_replicas.py); both run ``hub serve``
with the harvest on (interval 1 s, lease 1.5 s). Leksand's node serves its member port
with push and follow off, so everything the hub gets from it is harvested, and its
metrics count the ReadEntries calls it served: one per harvest.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aggkit import PUBLIC, Member, author, enroll, free_port
from hubkit import Procs, RunningHub, hub_env, start_replicas, wait_for
from pgserver import PgServer
from samverka.store.store import Store
from samverka_hub.harvest_schedule import HarvestSchedule

LEKSAND = "2029"
INTERVAL, LEASE = 1.0, 1.5
READS = re.compile(
    r'^samverka_rpc_duration_seconds_count\{[^}]*method="[^"]*/ReadEntries"[^}]*\} (\S+)$',
    re.MULTILINE,
)


@dataclass
class Setup:
    procs: Procs
    a: RunningHub
    b: RunningHub
    leksand: Member
    node: subprocess.Popen[bytes]
    metrics: str
    store: Store  # the hub's database, read by the test

    def reads(self) -> int:
        """ReadEntries calls Leksand's node has served (each harvest makes one)."""
        with urllib.request.urlopen(self.metrics, timeout=5) as response:
            text = response.read().decode()
        return int(sum(float(v) for v in READS.findall(text)))

    def schedule(self) -> dict[str, object]:
        (row,) = HarvestSchedule(self.store).rows()
        return row

    def held(self) -> int:
        head = self.store.head(LEKSAND)
        return head.sequence if head is not None else 0


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, pg_server: PgServer) -> Iterator[Setup]:
    with pg_server.database("samverka_h") as name:
        url = pg_server.url(name)
        tmp = tmp_path_factory.mktemp("replicas-harvest")
        env = hub_env(
            SAMVERKA_HARVEST_INTERVAL_SECONDS=str(INTERVAL),
            SAMVERKA_HARVEST_MAX_BACKOFF_SECONDS="2",
            SAMVERKA_HARVEST_LEASE_SECONDS=str(LEASE),
        )
        procs = Procs(tmp, env)
        store: Store | None = None
        try:
            a, b = start_replicas(procs, url)
            leksand = enroll(procs, a, LEKSAND, reachable=True)
            author(leksand, "lek-1", PUBLIC)
            metrics_port = free_port()
            quiet = Procs(tmp, {**env, "SAMVERKA_HUB_PUSH": "false", "SAMVERKA_HUB_FOLLOW": "0"})
            node = quiet.start(
                "node", "serve", "--dir", str(leksand.dir),
                "--metrics-listen", f"127.0.0.1:{metrics_port}", name="leksand-serve",
            )  # fmt: skip
            procs.started.append(node)
            host, port = leksand.address.rsplit(":", 1)

            def listening() -> bool:
                if node.poll() is not None:
                    raise AssertionError(quiet.log("leksand-serve"))
                with socket.socket() as s:
                    return s.connect_ex((host, int(port))) == 0

            wait_for(listening, 30, "leksand's node to listen")
            store = Store.open(url, migrate=False)
            yield Setup(
                procs, a, b, leksand, node, f"http://127.0.0.1:{metrics_port}/metrics", store
            )
        finally:
            if store is not None:
                store.close()
            for proc in procs.started:
                if proc.poll() is None:  # a stopped node would not see SIGTERM
                    proc.send_signal(signal.SIGCONT)
            procs.stop_all()


def test_two_replicas_read_the_member_once_per_interval(setup: Setup) -> None:
    """Both replicas harvest on a 1 s interval; between them Leksand's node is read
    about once a second, not twice, and what it writes reaches the hub."""
    wait_for(lambda: setup.held() >= 1, 30, "the first harvest of Leksand")
    before, started = setup.reads(), time.monotonic()
    sequence = author(setup.leksand, "lek-2", PUBLIC)
    time.sleep(5.0)
    reads, elapsed = setup.reads() - before, time.monotonic() - started
    print(f"\ntwo replicas, interval {INTERVAL} s: {reads} reads of the member in {elapsed:.1f} s")
    # One harvest per interval (plus the harvest's own time): 4-5 here. Each replica
    # harvesting on its own schedule would read it 9-10 times.
    assert elapsed / INTERVAL - 2 <= reads <= elapsed / INTERVAL + 1, reads
    assert setup.held() >= sequence
    row = setup.schedule()
    assert row["failures"] == 0 and row["last_error"] == ""


def test_a_replica_killed_mid_harvest_leaves_the_member_to_the_other(setup: Setup) -> None:
    """Leksand's node is paused, so the replica that claims it next hangs in the
    harvest, renewing its claim; that replica is SIGKILLed. Its claim runs out (not
    earlier) and the surviving replica harvests the member."""
    procs = {setup.a.proc.pid: setup.a.proc, setup.b.proc.pid: setup.b.proc}
    setup.node.send_signal(signal.SIGSTOP)
    try:

        def claimed_mid_harvest() -> str:
            row = setup.schedule()
            holder = str(row["claimed_by"])
            due = int(row["next_due_ms"])  # type: ignore[call-overload]
            return holder if holder and due > time.time_ns() // 1_000_000 else ""

        holder = wait_for(claimed_mid_harvest, 15, "a replica to claim the paused member")
        first_end = setup.schedule()["next_due_ms"]
        time.sleep(LEASE / 2)
        row = setup.schedule()
        assert row["claimed_by"] == holder  # still harvesting: it hangs
        assert row["next_due_ms"] > first_end  # type: ignore[operator]  # renewed (every lease/3)
        victim = procs[int(holder.split(":")[-2])]
        survivor = next(p for p in procs.values() if p is not victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = time.time_ns() // 1_000_000
        lease_end = int(setup.schedule()["next_due_ms"])  # type: ignore[call-overload]
        assert setup.schedule()["claimed_by"] == holder
    finally:
        setup.node.send_signal(signal.SIGCONT)
    sequence = author(setup.leksand, "lek-after-kill", PUBLIC)

    def taken_over() -> int:
        still = setup.schedule()["claimed_by"] == holder
        return 0 if still else time.time_ns() // 1_000_000

    took_over_at = wait_for(taken_over, 15, "the surviving replica to take over the member")
    wait_for(lambda: setup.held() >= sequence, 15, "the survivor to harvest the new entry")
    arrived_at = time.time_ns() // 1_000_000
    print(
        f"\nreplica killed {lease_end - killed_at} ms before its lease ended; the other "
        f"took the member {took_over_at - lease_end} ms after it and stored the new "
        f"entry {arrived_at - killed_at} ms after the kill"
    )
    assert took_over_at >= lease_end - 100  # not before the lease ran out
    assert took_over_at - lease_end < 2_000
    assert survivor.poll() is None
    # the survivor goes on harvesting on schedule
    before = setup.reads()
    time.sleep(2.5)
    assert setup.reads() - before >= 1
