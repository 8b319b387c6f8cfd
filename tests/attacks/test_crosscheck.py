"""``samverka crosscheck`` (a subprocess, as an operator or a systemd timer runs it)
against the session's real hub process and a misbehaving one, over mutual TLS on
loopback.

Mora (2062) enrolls with the address of its node, so the signed member directory
lists it, publishes 8 entries and pushes them to the hub; its node serves its feed on
that address (in this process, as ``node serve`` would). A reader, Malung-Sälen
(2023), enrolled after it, syncs and then cross-checks:

- from the honest hub: every feed agrees, Mora's head is confirmed by Mora's own
  node: exit 0;
- Mora's node down: reported as not reachable, still exit 0 (many kommuner expose no
  node: the hub's word stands for them);
- from a hub that withholds Mora's entries from #6 on and announces heads that match
  what it serves (:class:`simhub.SimHub`, undetectable from the hub alone: see
  test_hub_misbehaviour.py): Mora's node holds #8, the reader #5: exit 1, naming
  2062, #6 and #8 and what to do.

The pure comparison: tests/core/test_crosscheck.py.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import factories
import grpc
import pytest
from arena import Arena, enroll_node, free_port, hub_env, run
from samverka.membership.serving import build_node_server
from samverka.node import DIRECTORY_FILE, Node
from samverka.protocol.directory import build_directory
from samverka.protocol.signing import SigningKey
from samverka.replication.push import push_feed
from samverka.transport.client import ClientTls
from samverka.transport.hubclient import HubClient
from samverka.transport.server.status import PeerError
from samverka.v1 import directory_pb2
from simhub import RogueLog, SimHub, log_vkey
from soakresults import record

MORA, MALUNG = "2062", "2023"
FEED_LENGTH = 8
WITHHELD_FROM = 6


@dataclass(frozen=True)
class Scene:
    arena: Arena
    mora: Path
    mora_address: str
    #: The reader enrolled and never synced; each scenario syncs a copy of it.
    reader: Path
    tmp: Path


@pytest.fixture(scope="module")
def scene(hub_arena: Arena, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    tmp = tmp_path_factory.mktemp("crosscheck")
    address = f"127.0.0.1:{free_port()}"
    # [witness] quorum 0: the arena has no witnessing nodes (the log is still proven).
    mora = enroll_node(hub_arena.hub, MORA, tmp / "mora", address=address, quorum=0)
    reader = enroll_node(hub_arena.hub, MALUNG, tmp / "malung", quorum=0)
    with Node.open(mora) as node:
        for i in range(1, FEED_LENGTH + 1):
            node.publisher().publish(
                factories.make_record("use_case", record_id=f"mora-{i}", origin=MORA)
            )

        async def push() -> int:
            # The running hub learns of the admission at its next directory poll.
            for _ in range(100):
                async with HubClient(
                    hub_arena.hub.member, ClientTls.from_config(node.config)
                ) as link:
                    try:
                        return (await push_feed(node.store, MORA, link)).hub_sequence
                    except PeerError as err:
                        if err.code is not grpc.StatusCode.PERMISSION_DENIED:
                            raise
                await asyncio.sleep(0.05)
            raise AssertionError("the hub never took Mora as a member")

        assert run(push()) == FEED_LENGTH
    listed = directory_pb2.Directory.FromString(
        directory_pb2.SignedDirectory.FromString((reader / DIRECTORY_FILE).read_bytes()).directory
    )
    assert {m.kommunkod: m.address for m in listed.members}[MORA] == address
    return Scene(hub_arena, mora, address, reader, tmp)


def reader_copy(scene: Scene, name: str) -> Path:
    copy = scene.tmp / name
    shutil.copytree(scene.reader, copy)
    return copy


def samverka(*args: str | Path, hub: str = "") -> subprocess.CompletedProcess[str]:
    env = hub_env(SAMVERKA_HUB_FOLLOW="false", **({"SAMVERKA_HUB_ADDRESS": hub} if hub else {}))
    return subprocess.run(
        [sys.executable, "-m", "samverka", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


async def samverka_async(
    *args: str | Path, hub: str = "", **environment: str
) -> tuple[int, str, str]:
    """The same, while this process's loop keeps serving (Mora's node, a SimHub)."""
    env = hub_env(
        SAMVERKA_HUB_FOLLOW="false",
        **({"SAMVERKA_HUB_ADDRESS": hub} if hub else {}),
        **environment,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "samverka", *map(str, args), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@asynccontextmanager
async def mora_node(scene: Scene) -> AsyncIterator[None]:
    """Mora's node serving its feed at the address the directory lists."""
    with Node.open(scene.mora) as mora:
        server = build_node_server(
            mora.config, mora.store, mora.signing_key.public, listen=scene.mora_address
        )
        await server.start()
        try:
            yield
        finally:
            await server.stop(grace=0)


@pytest.fixture(scope="module")
def synced(scene: Scene) -> Path:
    """A reader that synced from the honest hub."""
    reader = reader_copy(scene, "honest")
    result = samverka("sync", "--dir", reader, "--no-push", "--quiet")
    assert result.returncode == 0, result.stderr
    return reader


def test_an_honest_federation_agrees_and_exits_0(scene: Scene, synced: Path) -> None:
    async def check() -> tuple[tuple[int, str, str], tuple[int, str, str]]:
        async with mora_node(scene):
            text = await samverka_async("crosscheck", "--dir", synced)
            as_json = await samverka_async("crosscheck", "--dir", synced, "--json")
        return text, as_json

    (code, out, err), (json_code, json_out, _) = run(check())
    assert code == 0, out + err
    mora_line = next(line for line in out.splitlines() if f"{MORA} Mora" in line)
    assert mora_line.startswith("ok") and "#8" in mora_line, out
    assert "i samstämmighet med hubben och Moras nod" in mora_line, out
    assert "0 efter, 0 förgrenade" in out.splitlines()[-1], out

    assert json_code == 0
    report = json.loads(json_out)
    assert (report["ok"], report["status"]) == (True, "agree")
    assert set(report) == {"ok", "status", "sources", "origins", "counts", "log_views"}
    kinds = {(s["kind"], s["origin"], s["reachable"]) for s in report["sources"]}
    assert kinds == {("hub", None, True), ("origin", MORA, True)}, report["sources"]
    mora = next(o for o in report["origins"] if o["origin"] == MORA)
    assert set(mora) == {
        "origin", "name", "status", "ours", "own", "confirmed_by_origin", "sources",
        "mismatches", "hint",
    }  # fmt: skip
    assert (mora["status"], mora["ours"], mora["confirmed_by_origin"]) == ("agree", 8, True)
    assert {(s["kind"], s["status"], s["theirs"]) for s in mora["sources"]} == {
        ("hub", "agree", 8),
        ("origin", "agree", 8),
    }
    assert report["counts"]["behind"] == report["counts"]["fork"] == 0
    assert report["counts"]["agree"] == len(report["origins"])


def test_an_unreachable_origin_node_is_reported_and_exits_0(scene: Scene, synced: Path) -> None:
    result = samverka("crosscheck", "--dir", synced, "--origin", MORA, "--timeout", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    [mora_line, summary] = result.stdout.splitlines()
    assert mora_line.startswith("ok") and "i samstämmighet med hubben" in mora_line
    assert f"Moras nod ({scene.mora_address}) kan inte nås" in mora_line
    assert "1 ursprungsnod kan inte nås härifrån" in summary
    assert result.stderr == ""


def test_a_hub_withholding_an_origins_tail_is_caught_and_exits_1(scene: Scene) -> None:
    reader = reader_copy(scene, "withheld")
    with scene.arena.hub.open_store() as store:
        log = RogueLog.of(store).withheld(MORA, WITHHELD_FROM)
    directory = directory_pb2.SignedDirectory.FromString((reader / DIRECTORY_FILE).read_bytes())

    async def scenario() -> tuple[tuple[int, str, str], ...]:
        async with SimHub(scene.arena.hub.dir, log, directory) as sim, mora_node(scene):
            synced = await samverka_async("sync", "--dir", reader, "--no-push", hub=sim.address)
            text = await samverka_async("crosscheck", "--dir", reader, hub=sim.address)
            as_json = await samverka_async(
                "crosscheck", "--dir", reader, "--json", "--quiet", hub=sim.address
            )
        return synced, text, as_json

    (sync_code, _, sync_err), (code, out, err), (json_code, json_out, json_err) = run(scenario())
    # The sync finds nothing wrong: a shorter prefix is a valid feed.
    assert sync_code == 0, sync_err
    with Node.open(reader) as node:
        head = node.store.head(MORA)
        assert head is not None and head.sequence == WITHHELD_FROM - 1
    record("attack", "hub withholds a feed's tail (samverka crosscheck)", refused=code == 1,
           code=f"exit {code}", reason="behind")  # fmt: skip
    assert code == 1, out + err
    lines = out.splitlines()
    index = next(i for i, line in enumerate(lines) if f"{MORA} Mora" in line)
    assert lines[index].startswith("BEHIND"), out
    assert f"{MORA}#6: Moras nod har flödet till #8, vi bara till #5" in lines[index]
    assert "→" in lines[index + 1] and "hubben visar inte #6..#8" in lines[index + 1]
    assert "1 efter" in lines[-1]
    assert f"fel: 1 flöde skiljer sig från det den här noden har: {MORA} (behind)" in err
    assert "tips:" in err and "samverka sync" in err

    assert json_code == 1 and "fel:" in json_err
    report = json.loads(json_out)
    assert (report["ok"], report["status"]) == (False, "mismatch")
    [mora] = [o for o in report["origins"] if o["origin"] == MORA]
    assert (mora["status"], mora["ours"]) == ("behind", WITHHELD_FROM - 1)
    [mismatch] = mora["mismatches"]
    assert (mismatch["kind"], mismatch["source"], mismatch["sequence"], mismatch["theirs"]) == (
        "behind", "Mora's node", WITHHELD_FROM, FEED_LENGTH,
    )  # fmt: skip
    assert "withholds" in mora["hint"]


def test_a_withheld_tail_is_repaired_from_the_origins_node(scene: Scene) -> None:
    """The hub withholds Mora's #6..#8 (and announces only what it serves).
    ``samverka sync --repair`` pulls #1..#5 from the hub, proven in its log, then asks
    Mora's node (the address the directory lists, mutual TLS) and fetches #6..#8 from
    it, verified as always; it says so (text and JSON), and a cross-check afterwards
    agrees with Mora's node."""
    reader = reader_copy(scene, "repaired")
    with scene.arena.hub.open_store() as store:
        log = RogueLog.of(store).withheld(MORA, WITHHELD_FROM)
    directory = directory_pb2.SignedDirectory.FromString((reader / DIRECTORY_FILE).read_bytes())

    async def scenario() -> tuple[tuple[int, str, str], ...]:
        async with SimHub(scene.arena.hub.dir, log, directory) as sim, mora_node(scene):
            synced = await samverka_async(
                "sync", "--dir", reader, "--no-push", "--repair", "--json", hub=sim.address
            )
            again = await samverka_async(
                "sync", "--dir", reader, "--no-push", "--repair", hub=sim.address
            )
            checked = await samverka_async("crosscheck", "--dir", reader, hub=sim.address)
        return synced, again, checked

    (code, out, err), (again_code, again_out, again_err), (check_code, check_out, _) = run(
        scenario()
    )
    assert code == 0, out + err
    report = json.loads(out)
    [repair] = report["repaired"]
    assert (repair["origin"], repair["before"], repair["after"], repair["theirs"]) == (
        MORA, WITHHELD_FROM - 1, FEED_LENGTH, FEED_LENGTH,
    )  # fmt: skip
    assert repair["complete"] and repair["accepted"] == FEED_LENGTH - WITHHELD_FROM + 1
    assert repair["source"] == {"kind": "origin", "kommunkod": MORA, "address": scene.mora_address}
    assert (
        "reparerat Moras flöde (2062) #6..#8: 3 poster hämtade från Moras nod"
        in (repair["message"])
    )
    # And in a log line (WARNING: on stderr for a CLI run).
    assert f"the hub had not handed out {MORA}#6..#8" in err, err
    with Node.open(reader) as node:
        head = node.store.head(MORA)
        assert head is not None and head.sequence == FEED_LENGTH
        assert node.store.get_record(MORA, "mora-8") is not None
    record("attack", "hub withholds a feed's tail (repaired from the origin's node)",
           refused=repair["complete"], code="repaired", reason="behind")  # fmt: skip
    # Again: nothing more to fetch, and it says so.
    assert again_code == 0, again_out + again_err
    assert "reparation: inget att hämta" in again_out, again_out
    # The cross-check now agrees with Mora's node.
    assert check_code == 0, check_out
    mora_line = next(line for line in check_out.splitlines() if f"{MORA} Mora" in line)
    assert "Moras nod" in mora_line and "#8" in mora_line, check_out


def test_entries_the_hub_cannot_prove_are_fetched_from_the_origins_node(scene: Scene) -> None:
    """The hub serves Mora's #6..#8 but keeps them out of its transparency log (the
    witnesses never see them). ``samverka sync --repair`` stops at #6 (exit 7,
    not_in_log) after fetching #6..#8 from Mora's node; the next ``samverka sync`` finds
    them held and goes on past them (they are not taken from the hub: no proof needed),
    exit 0."""
    reader = reader_copy(scene, "unlogged")
    with scene.arena.hub.open_store() as store:
        log = RogueLog.of(store).unlogged(MORA, WITHHELD_FROM)
    held = directory_pb2.Directory.FromString(
        directory_pb2.SignedDirectory.FromString((reader / DIRECTORY_FILE).read_bytes()).directory
    )
    hub_key = SigningKey.from_pem((scene.arena.hub.dir / "keys" / "signing.key").read_bytes())
    directory = build_directory(
        hub_key,
        version=held.version + 1,
        members=list(held.members),
        issued_at_ms=int(time.time() * 1000),
        log_key=log_vkey(scene.arena.hub.dir),
    ).signed
    witness = {"SAMVERKA_WITNESS_QUORUM": "0", "SAMVERKA_WITNESS_PROOF_WAIT_SECONDS": "0.3"}

    async def scenario() -> tuple[tuple[int, str, str], tuple[int, str, str]]:
        async with SimHub(scene.arena.hub.dir, log, directory) as sim, mora_node(scene):
            first = await samverka_async(
                "sync", "--dir", reader, "--no-push", "--repair", hub=sim.address, **witness
            )
            second = await samverka_async("sync", "--dir", reader, "--no-push", "--json",
                                          hub=sim.address, **witness)  # fmt: skip
        return first, second

    (code, out, err), (again, again_out, again_err) = run(scenario())
    assert code == 7, out + err
    assert f"posten {MORA}#6" in err and "(not_in_log)" in err, err
    assert "reparerat Moras flöde (2062) #6..#8: 3 poster hämtade från Moras nod" in err, err
    with Node.open(reader) as node:
        head = node.store.head(MORA)
        assert head is not None and head.sequence == FEED_LENGTH
    assert again == 0, again_out + again_err
    assert json.loads(again_out)["duplicates"] >= FEED_LENGTH - WITHHELD_FROM + 1
    assert f"{MORA}#6 is not in the hub's log, but this node holds it already" in again_err
    caught = code == 7 and again == 0
    record("attack", "hub serves entries kept out of its log (repaired from the origin's node)",
           refused=caught, code="exit 7, then repaired", reason="not_in_log")  # fmt: skip
