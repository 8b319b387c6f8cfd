"""Council features with real processes on loopback, on a SQLite and a PostgreSQL hub.

One ``hub serve`` per engine serves the module. The test process opens the same hub
folder to add federation data (as a push would) and to admit members; it then calls
the member port (mutual TLS, a certificate the hub's CA issued) and the public port
(server TLS only) like any client, and runs the ``samverka`` console in subprocesses.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from factories import FeedWriter
from hubkit import Applicant, Procs, RunningHub, run_async, start_hub, wait_for
from samverka.node import Node
from samverka.protocol.directory import keyring_from_directory
from samverka.replication.ingest import ingest
from samverka.transport.client import ClientTls, FeedClient, open_channel
from samverka.transport.hubclient import hub_error
from samverka.transport.server.status import PeerError
from samverka.v1 import feed_service_pb2, hub_service_pb2, hub_service_pb2_grpc
from samverka.v1 import records_pb2 as R
from samverka_hub.folder import Hub, open_hub

FALUN, GAGNEF, LEKSAND, TIBRO, MORA = "2080", "2026", "2029", "1472", "2062"
PUBLIC, MEMBERS, DRAFT = R.VISIBILITY_PUBLIC, R.VISIBILITY_MEMBERS, R.VISIBILITY_DRAFT


@dataclass
class Served:
    engine: str
    procs: Procs
    running: RunningHub
    hub: Hub
    member: ClientTls  # Leksand, an admitted member

    @property
    def public(self) -> ClientTls:
        return ClientTls(ca=self.running.ca.read_bytes())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest) -> Served:
    """Each hub in turn: the tests of the hub's own answers run on both engines."""
    hub: Served = request.getfixturevalue(f"served_{request.param}")
    return hub


@pytest.fixture(scope="module")
def served_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve("sqlite", tmp_path_factory, None)


@pytest.fixture(scope="module")
def served_postgresql(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str
) -> Iterator[Served]:
    """The production engine; the node-side tests (whose commands do not depend on the
    hub's engine) run against this one only."""
    yield from _serve("postgresql", tmp_path_factory, pg_database)


def _serve(
    engine: str, tmp_path_factory: pytest.TempPathFactory, database: str | None
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(f"council-{engine}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}
    env["SAMVERKA_DIRECTORY_POLL_SECONDS"] = "0.1"
    env["SAMVERKA_METRICS_LISTEN"] = ""  # no fixed port (other tests' hubs may run)
    # No node here witnesses the hub's log: take its checkpoints uncosigned (what sync takes
    # from the hub is still proven in its log; witnessing has tests of its own).
    env["SAMVERKA_WITNESS_QUORUM"] = "0"
    procs = Procs(tmp, env)
    schema = f"council_{secrets.token_hex(4)}"
    store_url = ""
    admin_dsn = ""
    if database is not None:
        admin_dsn = database.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        store_url = f"{database}?options=-csearch_path%3D{schema}"
    hub_dir = tmp / "hub"
    init = ["hub", "init", "--dir", str(hub_dir), "--listen", "127.0.0.1:0"]
    init += ["--public-listen", "127.0.0.1:0"]
    procs.run(*init, *(["--store-url", store_url] if store_url else []))
    hub = open_hub(hub_dir)
    try:
        running = start_hub(procs, hub_dir, name=f"hub-{engine}")
        member = admit(hub, LEKSAND)
        add_federation(hub)
        # The running hub learns of the admissions on its next directory poll.
        wait_for(lambda: admitted(running.member, member), 10, "the hub to admit 2029")
        yield Served(engine, procs, running, hub, member)
    finally:
        procs.stop_all()
        hub.close()
        if admin_dsn:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def admit(hub: Hub, code: str) -> ClientTls:
    """Admit ``code`` at the hub (as `hub members approve` does); its client TLS."""
    return admit_writer(hub, code)[0]


def admit_writer(hub: Hub, code: str) -> tuple[ClientTls, FeedWriter]:
    """Admit ``code``; its client TLS and a writer of its feed with the admitted key."""
    applicant = Applicant.make(code)
    hub.council.submit_enrollment(applicant.request(at=time.time_ns() // 1_000_000))
    admission = hub.council.approve(code)
    tls = ClientTls(ca=hub.ca.cert_pem, cert=admission.certificate_pem, key=applicant.tls_key_pem)
    return tls, FeedWriter(code, applicant.key)


def store_feeds(hub: Hub, *writers: FeedWriter) -> None:
    """Into the hub's store as pushes leave them: verified against the directory's keys."""
    directory = hub.council.current_directory()
    assert directory is not None
    entries = [e for w in writers for e in w.entries]
    report = ingest(hub.store, keyring_from_directory(directory.directory), entries)
    assert report.ok, report.first_refusal


def add_federation(hub: Hub) -> None:
    """Records of three kommuner in the hub's store, as pushes would leave them."""
    falun, gagnef = admit_writer(hub, FALUN)[1], admit_writer(hub, GAGNEF)[1]
    falun.publish("use_case", record_id="uc-far", title="Får på bete i kommunens hagar",
                  service_area=R.SERVICE_AREA_ENVIRONMENT_HEALTH)  # fmt: skip
    falun.publish("use_case", record_id="uc-pappa", title="Far och barn i förskolan",
                  service_area=R.SERVICE_AREA_PRESCHOOL)  # fmt: skip
    falun.publish("use_case", record_id="uc-intern", visibility=MEMBERS,
                  title="Äldreomsorgens nattpatrull")  # fmt: skip
    falun.publish("use_case", record_id="uc-utkast", visibility=DRAFT,
                  title="Äldreomsorgens utkast")  # fmt: skip
    for i in range(120):
        gagnef.publish("lesson", record_id=f"lesson-{i}", title=f"Gemensam lärdom {i}")
    gagnef.publish("solution", record_id="sol-1", visibility=MEMBERS)
    store_feeds(hub, falun, gagnef)


def stub(address: str, tls: ClientTls) -> tuple[grpc.aio.Channel, Any]:
    channel = open_channel(address, tls)
    return channel, hub_service_pb2_grpc.HubServiceStub(channel)


async def search(address: str, tls: ClientTls, query: str, **kw: Any) -> list[Any]:
    channel, hub = stub(address, tls)
    async with channel:
        try:
            reply = await hub.Search(hub_service_pb2.SearchRequest(query=query, **kw), timeout=10)
        except grpc.RpcError as err:
            raise hub_error(err, address) from err
    return list(reply.hits)


def admitted(address: str, tls: ClientTls) -> bool:
    """Whether the member port already answers ``tls``'s kommun (directory polled)."""
    try:
        run_async(stats(address, tls))
    except PeerError as err:
        if err.code is grpc.StatusCode.PERMISSION_DENIED:
            return False
        raise
    return True


async def stats(address: str, tls: ClientTls) -> hub_service_pb2.GetStatsResponse:
    channel, hub = stub(address, tls)
    async with channel:
        try:
            reply: hub_service_pb2.GetStatsResponse = await hub.GetStats(
                hub_service_pb2.GetStatsRequest(), timeout=10
            )
        except grpc.RpcError as err:
            raise hub_error(err, address) from err
    return reply


def refs(hits: list[Any]) -> list[str]:
    return sorted(f"{h.origin}/{h.record_id}" for h in hits)


def test_search_answers_each_port_with_what_it_may_show(served: Served) -> None:
    member, public = served.running.member, served.running.public

    async def scenario() -> dict[str, Any]:
        return {
            "får": await search(member, served.member, "får"),
            "äldre member": await search(member, served.member, "äldre"),
            "äldre public": await search(public, served.public, "äldre"),
            "default limit": await search(public, served.public, "gemensam"),
            "capped": await search(public, served.public, "gemensam", limit=5000),
            "filtered": await search(
                member, served.member, "far", kinds=[R.RECORD_KIND_USE_CASE], origins=[FALUN]
            ),
            "hostile": await search(public, served.public, '"får" OR * NEAR( \\ \x00 😀 ' * 50),
        }

    found = run_async(scenario())
    assert refs(found["får"]) == ["2080/uc-far"]
    hit = found["får"][0]
    assert (hit.kind, hit.version, hit.visibility) == (R.RECORD_KIND_USE_CASE, 1, PUBLIC)
    assert hit.title == "Får på bete i kommunens hagar"
    assert refs(found["äldre member"]) == ["2080/uc-intern"]  # the draft never
    assert found["äldre public"] == []
    assert len(found["default limit"]) == 20 and len(found["capped"]) == 100
    assert refs(found["filtered"]) == ["2080/uc-pappa"]
    assert found["hostile"] == []

    with pytest.raises(PeerError) as refused:
        run_async(search(public, served.public, "x", origins=["99999"]))
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.reason == "invalid_request"


def test_stats_count_members_records_for_members_only(served: Served) -> None:
    full = run_async(stats(served.running.member, served.member))
    anyone = run_async(stats(served.running.public, served.public))
    assert full.kommuner_total == anyone.kommuner_total == 290
    assert len(full.kommuner) == 290 and len(full.counties) == 21
    assert full.members >= 1 and full.members == anyone.members
    falun = next(k for k in full.kommuner if k.kommunkod == FALUN)
    assert {c.key: c.value for c in falun.use_cases_by_status} == {"pilot": 3}
    falun_public = next(k for k in anyone.kommuner if k.kommunkod == FALUN)
    assert {c.key: c.value for c in falun_public.use_cases_by_status} == {"pilot": 2}
    assert list(falun.service_areas) == sorted(
        [R.SERVICE_AREA_ELDERLY_CARE, R.SERVICE_AREA_PRESCHOOL, R.SERVICE_AREA_ENVIRONMENT_HEALTH]
    )
    gagnef = next(k for k in full.kommuner if k.kommunkod == GAGNEF)
    assert gagnef.solutions == 1
    assert next(k for k in anyone.kommuner if k.kommunkod == GAGNEF).solutions == 0
    leksand = next(k for k in full.kommuner if k.kommunkod == LEKSAND)
    assert leksand.member and leksand.county_code == "20" and leksand.name == "Leksand"
    dalarna = next(c for c in full.counties if c.county_code == "20")
    assert (dalarna.name, dalarna.kommuner) == ("Dalarnas län", 15)
    assert dalarna.kommuner_with_use_cases == 1  # Falun
    assert {c.key for c in full.use_cases_by_service_area} >= {"elderly-care", "preschool"}
    # asked again with nothing changed: the same answer (from the cache)
    assert run_async(stats(served.running.member, served.member)) == full

    # a new record (written by another process than the server): counted at once
    stockholm = admit_writer(served.hub, "0180")[1]
    stockholm.publish("use_case", record_id="uc-sthlm", status=R.USE_CASE_STATUS_PRODUCTION,
                      title="Stadens tolktjänst", summary="Tolkning i kontaktcenter.",
                      service_area=R.SERVICE_AREA_CITIZEN_SERVICE)  # fmt: skip
    store_feeds(served.hub, stockholm)
    again = run_async(stats(served.running.member, served.member))
    assert again.kommuner_with_use_cases == full.kommuner_with_use_cases + 1
    row = next(k for k in again.kommuner if k.kommunkod == "0180")
    assert {c.key: c.value for c in row.use_cases_by_status} == {"production": 1}


def test_a_revoked_member_is_refused(served: Served) -> None:
    tls = admit(served.hub, MORA)

    def answered() -> bool:
        try:
            return bool(run_async(search(served.running.member, tls, "får")))
        except PeerError as err:
            assert err.code is grpc.StatusCode.PERMISSION_DENIED  # not listed yet
            return False

    wait_for(answered, 10, "the running hub to admit Mora")
    served.hub.council.revoke(MORA, reason="test")

    def refused() -> bool:
        try:
            run_async(stats(served.running.member, tls))
        except PeerError as err:
            assert err.code is grpc.StatusCode.PERMISSION_DENIED and err.reason == "member_revoked"
            return True
        return False

    wait_for(refused, 10, "the running hub to refuse the revoked member")


@pytest.fixture(scope="module")
def tibro(served_postgresql: Served) -> Path:
    """Tibro's node, enrolled with the real commands (node init, node enroll twice)."""
    served = served_postgresql
    procs, running = served.procs, served.running
    node_dir = procs.tmp / "node-tibro"
    procs.run("node", "init", "--kommun", TIBRO, "--dir", str(node_dir))
    enroll = ["node", "enroll", "--dir", str(node_dir), "--hub", running.public]
    enroll += ["--ca", str(running.ca)]
    procs.run(*enroll)
    served.hub.council.approve(TIBRO)
    procs.run(*enroll)
    return node_dir


def test_a_node_searches_the_federation_at_the_hub(served_postgresql: Served, tibro: Path) -> None:
    procs = served_postgresql.procs
    hits = procs.json("search", "--hub", "äldre", "--dir", str(tibro))
    assert [(h["origin"], h["id"], h["visibility"]) for h in hits] == [
        (FALUN, "uc-intern", "members")
    ]
    text = procs.run("search", "--hub", "får", "--dir", str(tibro)).stdout
    assert "2080/uc-far  Användningsfall · Falun · Offentlig" in text


def test_a_recommendation_reaches_a_node_through_sync(
    served_postgresql: Served, tibro: Path
) -> None:
    """The council's recommendation is an entry like any other: `samverka sync` brings
    it into the node's mirror, verified against the hub's key, and the node's own
    search finds it offline."""
    from samverka_hub import recommendations

    record = recommendations.draft(
        {"title": "Synkad vägledning om AI-förordningen", "summary": "Läs detta först.",
         "visibility": "members"},
        record_id="rec-synk",
    )  # fmt: skip
    recommendations.add(served_postgresql.hub.node(), record)
    served_postgresql.procs.run("sync", "--dir", str(tibro), "--quiet")
    hits = served_postgresql.procs.json("search", "vägledning", "--dir", str(tibro))
    assert [(h["origin"], h["id"], h["kind"]) for h in hits] == [
        ("0000", "rec-synk", "recommendation")
    ]
    with Node.open(tibro) as node:
        held = node.store.get_record("0000", "rec-synk")
        assert held is not None and held.key_id == served_postgresql.hub.signing_key.key_id


def test_a_recommendation_reaches_a_live_subscriber_verified(served: Served) -> None:
    """``hub recommend add`` in another process while the hub serves: a member following
    the hub's feed of origin 0000 receives it within a second, and a node verifies it
    against the hub's key in the signed directory."""
    running = served.running
    directory = served.hub.council.current_directory()
    assert directory is not None
    keys = keyring_from_directory(directory.directory)
    only_hub = feed_service_pb2.EntryFilter(origins=["0000"])

    async def scenario(node: Node) -> float:
        async with FeedClient.connect(running.member, served.member) as feed:
            pages = feed.subscribe(0, only_hub)
            # what the hub's feed already holds comes first; the node mirrors it
            writer = served.procs.start(
                "hub", "recommend", "add", "--dir", str(running.dir), "--id", "rec-live",
                "--title", "Rådets råd om språkmodeller", "--summary", "Pröva, mät, dela.",
                "--visibility", "public", name=f"recommend-{served.engine}",
            )  # fmt: skip
            while True:
                page = await anext(pages)
                arrived = time.time()
                if page.heartbeat:
                    assert writer.poll() in (None, 0), served.procs.log(
                        f"recommend-{served.engine}"
                    )
                    continue
                report = await asyncio.to_thread(ingest, node.store, keys, page.entries)
                assert report.ok, report.first_refusal
                held = node.store.get_record("0000", "rec-live")
                if held is not None:
                    await pages.aclose()
                    assert await asyncio.to_thread(writer.wait, 30) == 0
                    return arrived - held.timestamp_ms / 1000

    with Node.open(init_reader(served)) as node:
        latency = run_async(asyncio.wait_for(scenario(node), 60))
        held = node.store.get_record("0000", "rec-live")
        assert held is not None and held.key_id == served.hub.signing_key.key_id
    print(f"\n{served.engine} hub: recommendation at a live subscriber {latency * 1000:.0f} ms")
    assert latency < 1.0, f"the recommendation took {latency:.3f} s"


def init_reader(served: Served) -> Path:
    """A node folder for the reading side (its store is what matters here)."""
    from samverka.node import init_node

    folder = served.procs.tmp / f"reader-{secrets.token_hex(3)}"
    with init_node(folder, GAGNEF):
        pass
    return folder
