"""Selective sync (issue 14, point 5) end to end: ``samverka sync --origin/--kind/--area``
and ``[sync]`` against a real hub over mutual TLS, with every entry still verified and
proven, every feed's chain whole (stand-ins for what is left out), and a later full sync
filling in what was left out.

Leksand and Tibro publish; Gagnef reads selectively. Commands run as subprocesses.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import factories
import pytest
from aggkit import Member, enroll, open_store
from hubkit import Procs, RunningHub, hub_env, start_hub
from samverka.config import CONFIG_FILE
from samverka.node import Node
from samverka.v1 import records_pb2 as R

LEKSAND, TIBRO, GAGNEF = "2029", "1472", "2026"


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procs]:
    p = Procs(tmp_path_factory.mktemp("selective"), hub_env(SAMVERKA_HARVEST_ENABLED="false"))
    try:
        yield p
    finally:
        p.stop_all()


@pytest.fixture(scope="module")
def hub(procs: Procs) -> Iterator[RunningHub]:
    running = start_hub(procs, procs.tmp / "hub")
    yield running
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0, procs.log("hub")


def publish(member: Member, kind: str, record_id: str, **fields: object) -> None:
    with Node.open(member.dir) as node:
        record = factories.make_record(kind, record_id=record_id, origin=node.origin, **fields)
        node.publisher().publish(record)


def same_chain(a: Path, b: Path, origin: str) -> bool:
    with open_store(a) as x, open_store(b) as y:
        return x.feed_digest(origin) == y.feed_digest(origin)


def held(member: Member, origin: str, record_id: str) -> R.Record | None:
    with open_store(member.dir) as store:
        found = store.get_record(origin, record_id)
    return found.record if found is not None else None


@pytest.fixture(scope="module")
def federation(procs: Procs, hub: RunningHub) -> dict[str, Member]:
    leksand, tibro, gagnef = (enroll(procs, hub, code) for code in (LEKSAND, TIBRO, GAGNEF))
    elderly, it = R.SERVICE_AREA_ELDERLY_CARE, R.SERVICE_AREA_IT
    publish(leksand, "use_case", "lek-hemtjanst", title="Hemtjänstplanering", service_area=elderly)
    publish(leksand, "use_case", "lek-it", title="IT-servicedesk med AI", service_area=it)
    publish(leksand, "solution", "lek-mall", title="DPIA-mall", service_area=elderly)
    publish(leksand, "use_case", "lek-sist", title="Chattbot för IT-stöd", service_area=it)
    publish(tibro, "use_case", "tib-larm", title="Trygghetslarm med AI", service_area=elderly)
    publish(tibro, "lesson", "tib-lardom", title="Lärdom om larm", service_area=elderly)
    for member in (leksand, tibro):
        procs.json("node", "push", "--dir", str(member.dir))
    return {LEKSAND: leksand, TIBRO: tibro, GAGNEF: gagnef}


def test_a_selective_sync_takes_what_matches_and_keeps_the_chains_whole(
    procs: Procs, hub: RunningHub, federation: dict[str, Member]
) -> None:
    gagnef = federation[GAGNEF]
    synced = procs.json(
        "sync", "--dir", str(gagnef.dir), "--area", "äldreomsorg", "--kind", "användningsfall"
    )
    assert synced["filter"] == {"origins": [], "kinds": ["use-case"], "areas": ["elderly-care"]}
    assert synced["reread_from_start"] is False
    left = synced["left_out"]
    # Leksand's two IT use cases and solution, Tibro's lesson: kept as stand-ins only.
    assert left["by_kind"] == {"use-case": 2, "lesson": 1, "solution": 1}, left
    assert left["by_origin"] == {LEKSAND: 3, TIBRO: 1}
    assert left["stand_ins"] == 4 and left["not_read"] == 0
    assert synced["proven"] >= 6  # stand-ins are proven in the hub's log like any entry

    assert held(gagnef, LEKSAND, "lek-hemtjanst") is not None
    assert held(gagnef, TIBRO, "tib-larm") is not None
    for origin, record_id in ((LEKSAND, "lek-it"), (LEKSAND, "lek-mall"), (TIBRO, "tib-lardom")):
        assert held(gagnef, origin, record_id) is None, record_id
    # Every chain whole: the same feed digests as the hub's, heads included.
    for origin in (LEKSAND, TIBRO):
        assert same_chain(gagnef.dir, hub.dir, origin), origin
    with open_store(gagnef.dir) as store:
        hits = {(h.origin, h.record_id) for h in store.search("IT-servicedesk")}
    assert hits == set()


def test_a_held_record_that_moves_out_of_the_filter_still_arrives(
    procs: Procs, hub: RunningHub, federation: dict[str, Member]
) -> None:
    leksand, gagnef = federation[LEKSAND], federation[GAGNEF]
    # Version 2 of a held record moves to IT: it no longer matches, but the node holds
    # version 1, so it learns of the change (and would of a retraction).
    publish(
        leksand,
        "use_case",
        "lek-hemtjanst",
        title="Hemtjänst, nu IT",
        service_area=R.SERVICE_AREA_IT,
    )
    publish(leksand, "use_case", "lek-ny-it", title="Ny IT-tjänst", service_area=R.SERVICE_AREA_IT)
    procs.json("node", "push", "--dir", str(leksand.dir))
    result = procs.run(
        "sync", "--dir", str(gagnef.dir), "--area", "äldreomsorg", "--kind", "användningsfall"
    )
    out = result.stdout
    assert "selektiv synk: tar bara emot typ användningsfall; område äldreomsorg" in out, out
    assert "lämnade utanför 1 poster som inte matchar (1 användningsfall)" in out, out
    assert "`samverka sync --all`" in out
    moved = held(gagnef, LEKSAND, "lek-hemtjanst")
    assert moved is not None and moved.header.version == 2
    assert moved.use_case.service_area == R.SERVICE_AREA_IT
    assert held(gagnef, LEKSAND, "lek-ny-it") is None
    assert same_chain(gagnef.dir, hub.dir, LEKSAND)


def test_an_origin_filter_reads_only_those_feeds_and_a_full_sync_fills_in(
    procs: Procs, hub: RunningHub, federation: dict[str, Member]
) -> None:
    leksand, tibro, gagnef = federation[LEKSAND], federation[TIBRO], federation[GAGNEF]
    publish(leksand, "use_case", "lek-tre", title="Tredje", service_area=R.SERVICE_AREA_SCHOOL)
    publish(tibro, "use_case", "tib-tva", title="Andra", service_area=R.SERVICE_AREA_SCHOOL)
    for member in (leksand, tibro):
        procs.json("node", "push", "--dir", str(member.dir))
    with open_store(gagnef.dir) as store:
        leksand_head = store.head(LEKSAND)
    # Takes Tibro's lesson, which the last filter left out: the log is read again.
    synced = procs.json("sync", "--dir", str(gagnef.dir), "--origin", TIBRO)
    assert synced["filter"]["origins"] == [TIBRO]
    assert synced["reread_from_start"] is True
    assert synced["stand_ins_filled"] == 1  # Tibro's lesson, held as a stand-in until now
    assert synced["left_out"]["not_read"] > 0 and synced["left_out"]["stand_ins"] == 0
    assert held(gagnef, TIBRO, "tib-tva") is not None
    assert held(gagnef, TIBRO, "tib-lardom") is not None
    with open_store(gagnef.dir) as store:
        assert store.head(LEKSAND) == leksand_head  # nothing of Leksand was read
    assert same_chain(gagnef.dir, hub.dir, TIBRO)

    everything = procs.json("sync", "--dir", str(gagnef.dir), "--all")
    assert everything["filter"] is None and everything["reread_from_start"] is True
    assert everything["stand_ins_filled"] == 4  # lek-it, lek-mall, lek-sist, lek-ny-it
    for origin, record_id in ((LEKSAND, "lek-it"), (LEKSAND, "lek-mall"), (LEKSAND, "lek-tre")):
        assert held(gagnef, origin, record_id) is not None, record_id
    for origin in (LEKSAND, TIBRO):
        assert same_chain(gagnef.dir, hub.dir, origin), origin


def test_the_sync_section_of_the_config_is_the_default(
    procs: Procs, federation: dict[str, Member]
) -> None:
    gagnef = federation[GAGNEF]
    config = gagnef.dir / CONFIG_FILE
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[sync]\nareas = ["skola"]\nkinds = ["lösning"]\n',
        encoding="utf-8",
    )
    synced = procs.json("sync", "--dir", str(gagnef.dir))
    assert synced["filter"] == {"origins": [], "kinds": ["solution"], "areas": ["school"]}
    assert synced["reread_from_start"] is False  # narrower than --all: what is held stays
    assert procs.json("sync", "--dir", str(gagnef.dir), "--all")["filter"] is None
    bad = procs.run("sync", "--dir", str(gagnef.dir), "--area", "rymden", check=False)
    assert bad.returncode == 2 and "ingen känd verksamhetsområde" in bad.stderr, bad.stderr
