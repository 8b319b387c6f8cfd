"""The agents, live: ``node serve`` pushes and follows, ``hub serve`` harvests.

A hub on PostgreSQL (its log watcher LISTENs there) on fixed loopback ports, so it can
be stopped and started again at the same address; three enrolled nodes run ``node
serve``: Leksand pushes (behind a firewall), Rättvik is harvested (push off), Gagnef
follows the hub. Entries written at one node reach another through the hub alone,
and the push agent catches up after the hub was down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aggkit import Member, author, enroll, free_port
from hubkit import Procs, RunningHub, start_hub, wait_for
from samverka.node import Node
from samverka.store.store import Store
from samverka.v1 import records_pb2

LEKSAND, RATTVIK, GAGNEF = "2029", "2031", "2026"


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procs]:
    tmp = tmp_path_factory.mktemp("agents")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}
    env |= {
        "SAMVERKA_DIRECTORY_POLL_SECONDS": "0.1",
        "SAMVERKA_METRICS_LISTEN": "",
        # the hub harvests every second, and retries a failed member within 2 s
        "SAMVERKA_HARVEST_INTERVAL_SECONDS": "1",
        "SAMVERKA_HARVEST_MAX_BACKOFF_SECONDS": "2",
        # a node's agents retry an unreachable hub within a second
        "SAMVERKA_HUB_MAX_BACKOFF_SECONDS": "1",
        # No node here witnesses the hub's log: take its checkpoints uncosigned (what
        # sync takes from the hub is still proven in its log; witnessing has its tests).
        "SAMVERKA_WITNESS_QUORUM": "0",
    }
    p = Procs(tmp, env)
    try:
        yield p
    finally:
        p.stop_all()


@dataclass
class Hub:
    procs: Procs
    running: RunningHub
    url: str

    def stop(self) -> None:
        self.running.proc.send_signal(signal.SIGTERM)
        assert self.running.proc.wait(timeout=30) == 0, self.procs.log("hub")

    def start(self) -> None:
        self.running = start_hub(self.procs, self.running.dir)


@pytest.fixture(scope="module")
def hub(procs: Procs, pg_schema: str) -> Iterator[Hub]:
    hub_dir = procs.tmp / "hub"
    procs.run(
        "hub", "init", "--dir", str(hub_dir), "--store-url", pg_schema,
        "--listen", f"127.0.0.1:{free_port()}", "--public-listen", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    running = Hub(procs, start_hub(procs, hub_dir), pg_schema)
    yield running
    if running.running.proc.poll() is None:
        running.stop()


def serve(procs: Procs, member: Member, **env: str) -> subprocess.Popen[bytes]:
    """``node serve`` for ``member`` (at its registered address, if any), until the module ends."""
    runner = Procs(procs.tmp, {**procs.env, **env}, procs.started)
    address_file = procs.tmp / f"{member.code}.address"
    name = f"serve-{member.code}"
    proc = runner.start(
        "node", "serve", "--dir", str(member.dir), "--listen", member.address or "127.0.0.1:0",
        "--address-file", str(address_file), name=name,
    )  # fmt: skip

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(procs.log(name))
        return address_file.exists()

    wait_for(ready, 30, f"{member.code}'s node to serve")
    return proc


@dataclass
class Federation:
    hub: Hub
    leksand: Member
    rattvik: Member
    gagnef: Member


@pytest.fixture(scope="module")
def federation(procs: Procs, hub: Hub) -> Federation:
    leksand = enroll(procs, hub.running, LEKSAND)
    rattvik = enroll(procs, hub.running, RATTVIK, reachable=True)
    gagnef = enroll(procs, hub.running, GAGNEF)
    serve(procs, leksand)  # push and follow (the defaults)
    serve(procs, rattvik, SAMVERKA_HUB_PUSH="false")  # harvested only
    serve(procs, gagnef)
    return Federation(hub, leksand, rattvik, gagnef)


def arrived(member: Member, origin: str, record_id: str) -> bool:
    with Store.open(f"sqlite:///{member.dir / 'samverka.db'}", migrate=False) as store:
        return store.get_record(origin, record_id) is not None


def hub_holds(hub: Hub, origin: str, record_id: str) -> bool:
    with Store.open(hub.url, migrate=False) as store:
        return store.get_record(origin, record_id) is not None


def test_a_pushed_entry_reaches_a_following_node_through_the_hub(
    procs: Procs, federation: Federation
) -> None:
    started = time.monotonic()
    author(federation.leksand, "live-1", title="Live via hubben")
    wait_for(lambda: arrived(federation.gagnef, LEKSAND, "live-1"), 30, "Gagnef to receive live-1")
    latency = time.monotonic() - started
    print(f"push → hub → follower: {latency:.2f} s")
    # Leksand follows the hub too and holds its own entry once (a duplicate changes nothing).
    with Node.open(federation.leksand.dir) as node:
        head = node.store.head(LEKSAND)
        assert head is not None
        assert len(node.store.feed_entries(LEKSAND)) == head.sequence


def test_a_harvested_entry_reaches_a_following_node(procs: Procs, federation: Federation) -> None:
    author(federation.rattvik, "harvest-live", title="Skördad av hubben")
    author(
        federation.rattvik,
        "harvest-draft",
        records_pb2.VISIBILITY_DRAFT,
        title="Utkast HARVESTAGENTDRAFT",
    )
    author(federation.rattvik, "harvest-after", title="Efter utkastet")
    wait_for(
        lambda: arrived(federation.gagnef, RATTVIK, "harvest-after"),
        30,
        "Gagnef to receive Rättvik's entries, harvested by the hub",
    )
    assert not arrived(federation.gagnef, RATTVIK, "harvest-draft")
    assert not hub_holds(federation.hub, RATTVIK, "harvest-draft")


def test_the_push_agent_catches_up_after_the_hub_was_down(
    procs: Procs, federation: Federation
) -> None:
    hub = federation.hub
    hub.stop()
    try:
        for i in range(3):
            author(federation.leksand, f"offline-{i}", title=f"Skrivet när hubben var nere {i}")
        time.sleep(1.5)  # the push agent tries, fails and backs off meanwhile
        assert not hub_holds(hub, LEKSAND, "offline-0")
    finally:
        hub.start()
    wait_for(
        lambda: all(arrived(federation.gagnef, LEKSAND, f"offline-{i}") for i in range(3)),
        45,
        "Leksand's offline entries to reach Gagnef after the hub came back",
    )
    log = procs.log(f"serve-{LEKSAND}")
    assert "push to the hub failed" in log, log[-2000:]


def test_drafts_and_order_hold_across_every_copy(procs: Procs, federation: Federation) -> None:
    author(federation.leksand, "draft-agent", records_pb2.VISIBILITY_DRAFT, title="AGENTDRAFT")
    author(federation.leksand, "after-draft", title="Efter ett utkast")
    wait_for(
        lambda: arrived(federation.gagnef, LEKSAND, "after-draft"), 30, "after-draft at Gagnef"
    )
    digests = []
    for member in (federation.leksand, federation.gagnef):
        with Store.open(f"sqlite:///{member.dir / 'samverka.db'}", migrate=False) as store:
            digests.append(store.feed_digest(LEKSAND))
    assert digests[0] == digests[1]
    assert not arrived(federation.gagnef, LEKSAND, "draft-agent")
