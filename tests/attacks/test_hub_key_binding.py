"""A hub that binds a key of its own to a kommun, against real nodes (issue 11, points 5
and 6).

Real processes over mutual TLS on loopback: ``hub serve`` (SQLite) and three enrolled
nodes running ``node serve`` (push, follow, witness; JSON logs): Orsa (the wronged
kommun), Älvdalen and Leksand. The hub misbehaves as its operator could: it lists a key
of its own for Orsa (a row in its key table and a directory version it signs) and
accepts an entry in Orsa's feed signed with it. What is shown (figures printed):

- a legitimate rotation (``samverka node rotate-key``, approved by the council) takes
  effect at once everywhere: the other nodes take the new key and its entries;
- Orsa's node, running with the default directory refresh (60 s), raises the alarm
  within a second of the hub signing the directory (the hub's directory push wakes the
  refresh), objects, and every other member refuses the key soon after;
- while Orsa's node is down, the other nodes refuse an entry forged with a second
  planted key (``key_in_challenge``): the key is in its challenge period, which starts
  only once the directory listing it stands in a checkpoint the witnesses cosigned;
- Orsa's node back: the alarm at once, in every form: ``tlog/alarms``, a JSON log line
  ``monitor_alarm``, the metric ``samverka_monitor_alarms_total``, ``doctor`` FAIL,
  ``samverka sync`` exit 8, and evidence in ``tlog/evidence/`` that tests/tlogcheck.py
  (which imports nothing of ours) checks: the hub's signed directory, Orsa's objection,
  the log's checkpoint and the inclusion proof of the directory's leaf. The forged entry
  of its own feed raises an alarm of its own, with the entry as evidence;
- Orsa's objection reaches the hub (ObjectToKey), which lists it in a new directory
  version, and every member refuses the key from then on (``key_objected``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import factories
import pytest
import tlogcheck
from arena import LEKSAND, HubProcess, build_hub, enroll_node, free_port, hub_env, run, serve_hub
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from samverka.config import load_config
from samverka.errors import SamverkaError
from samverka.membership.monitor import ALARMS_DIR
from samverka.node import KEY_STATE_FILE, Node
from samverka.ops.doctor import run_doctor
from samverka.protocol.directory import directory_digest
from samverka.protocol.logleaf import directory_leaf
from samverka.protocol.signing import SigningKey
from samverka.replication.crosscheck import honour_objections
from samverka.store.store import Store
from samverka.transport.client import ClientTls, FeedClient
from samverka.transport.hubclient import HubClient
from samverka.v1 import directory_pb2, feed_pb2
from samverka_hub.folder import open_hub
from samverka_hub.tables import MemberKeyRow
from soakresults import record

ORSA, ALVDALEN = "2034", "2039"
MEMBERS = (ORSA, ALVDALEN, LEKSAND)
#: The other nodes' directory refresh (seconds), so the test need not wait for theirs.
FOLLOW_INTERVAL = 1.0
#: Orsa's node runs with the default directory refresh (seconds) throughout: what it
#: learns of a new directory version soon, it learns from the hub's push.
ORSA_REFRESH = "60"

pytestmark = pytest.mark.timeout(900)


@dataclass
class KeyFed:
    tmp: Path
    hub: HubProcess
    nodes: dict[str, Path]
    env: dict[str, str]
    serving: dict[str, subprocess.Popen[bytes]]
    metrics: str
    starts: int = 0
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, code: str, **extra: str) -> None:
        self.starts += 1
        env = dict(self.env)
        if code == ORSA:
            env["SAMVERKA_METRICS_LISTEN"] = self.metrics
            env["SAMVERKA_HUB_DIRECTORY_REFRESH_SECONDS"] = ORSA_REFRESH
        env |= extra
        name = f"serve-{code}-{self.starts}"
        with (
            open(self.tmp / f"{name}.err", "wb") as err,
            open(self.tmp / f"{name}.out", "wb") as out,
        ):
            self.serving[code] = subprocess.Popen(
                [sys.executable, "-m", "samverka", "node", "serve", "--dir", str(self.nodes[code])],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=self.tmp,
            )  # fmt: skip
        self.logs[code] = self.tmp / f"{name}.err"

    def stop(self, code: str) -> None:
        proc = self.serving.pop(code)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, self.log(code)[-3000:]

    def log(self, code: str) -> str:
        return self.logs[code].read_text(encoding="utf-8", errors="replace")

    def events(self, code: str, event: str) -> list[dict[str, Any]]:
        lines = []
        for line in self.log(code).splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if data.get("event") == event:
                lines.append(data)
        return lines

    def alive(self) -> bool:
        for code, proc in self.serving.items():
            if proc.poll() is not None:
                raise AssertionError(f"node serve {code} exited:\n{self.log(code)[-3000:]}")
        return True

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "samverka", *args], capture_output=True, text=True,
            env=self.env, cwd=self.tmp, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def wait_for(predicate: Any, timeout: float, what: str, fed: KeyFed | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if fed is not None:
            fed.alive()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyFed]:
    tmp = tmp_path_factory.mktemp("keybinding")
    build_hub(tmp / "hub", ())
    # Three members: a checkpoint cosigned by two of them is the one the hub serves.
    hub = serve_hub(tmp / "hub", tmp / "logs", SAMVERKA_TLOG_WITNESS_TARGET="2")
    nodes = {
        code: enroll_node(hub, code, tmp / f"node-{code}", address=f"127.0.0.1:{free_port()}")
        for code in MEMBERS
    }
    env = hub_env(
        SAMVERKA_LOG_FORMAT="json",
        SAMVERKA_LOG_LEVEL="info",
        SAMVERKA_HUB_DIRECTORY_REFRESH_SECONDS=str(FOLLOW_INTERVAL),
        SAMVERKA_HUB_PUSH_INTERVAL_SECONDS="1",
        # One other kommun's cosignature suffices here (three members, one of them
        # stopped for a while); the default, two, is for a federation of more.
        SAMVERKA_WITNESS_QUORUM="1",
        SAMVERKA_WITNESS_PROOF_WAIT_SECONDS="10",
        # A refused entry is tried again within 2 s (the default backs off to 300 s).
        SAMVERKA_HUB_MAX_BACKOFF_SECONDS="2",
    )
    keyfed = KeyFed(tmp, hub, nodes, env, {}, f"127.0.0.1:{free_port()}")
    for code in MEMBERS:
        keyfed.start(code)
    try:
        for code in MEMBERS:
            wait_for(
                lambda code=code: (nodes[code] / "tlog" / "accepted").exists(),
                90,
                f"{code} to accept a checkpoint",
                keyfed,
            )
        yield keyfed
    finally:
        # SIGTERM to every node at once, then wait for each (they drain side by side).
        stopping = [keyfed.serving.pop(code) for code in list(keyfed.serving)]
        for proc in stopping:
            proc.send_signal(signal.SIGTERM)
        for proc in stopping:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        assert hub.stop() == 0, hub.log()[-3000:]


def author(node_dir: Path, record_id: str) -> int:
    with Node.open(node_dir) as node:
        record_ = factories.make_record("use_case", record_id=record_id, origin=node.origin)
        return node.publisher().publish(record_).sequence


def held(node_dir: Path, origin: str) -> int:
    with Store.open(f"sqlite:///{node_dir / 'samverka.db'}", migrate=False) as store:
        head = store.head(origin)
    return head.sequence if head is not None else 0


def binding(node_dir: Path, origin: str, key_id: str) -> dict[str, Any] | None:
    path = node_dir / KEY_STATE_FILE
    if not path.exists():
        return None
    for b in json.loads(path.read_text())["bindings"]:
        if (b["kommunkod"], b["key_id"]) == (origin, key_id):
            return dict(b)
    return None


def plant_key(hub_dir: Path, code: str) -> tuple[SigningKey, int]:
    """The hub's operator lists a key of the hub's for ``code`` and signs a directory
    version; the key and the version."""
    key = SigningKey.generate()
    with open_hub(hub_dir) as hub:
        with hub.council.store.write() as tx:
            tx.add_key(
                MemberKeyRow(
                    key_id=key.key_id,
                    kommunkod=code,
                    public_key=key.public.raw,
                    valid_from_ms=0,
                    revoked_at_ms=None,
                    added_at_ms=time.time_ns() // 1_000_000,
                )
            )
        version = hub.council.reissue_directory().version
    return key, version


def hub_directory(hub_dir: Path) -> directory_pb2.Directory:
    with open_hub(hub_dir) as hub:
        current = hub.council.current_directory()
    assert current is not None
    return current.directory


def forge(fed: KeyFed, key: SigningKey, origin: str) -> feed_pb2.SignedEntry:
    """The next entry of ``origin``'s feed at the hub, signed with ``key``, accepted by
    the hub (its directory lists the key) through Publish."""
    with fed.hub.open_store() as store:
        head = store.head(origin)
    assert head is not None
    writer = factories.FeedWriter(origin, key, start_ms=time.time_ns() // 1_000_000)
    writer.sequence, writer.head_hash = head.sequence, head.entry_hash
    forged = writer.publish(record_id=f"forged-{head.sequence + 1}", origin=origin)

    async def publish() -> int:
        async with HubClient.member(load_config(fed.nodes[ALVDALEN])) as link:
            for _ in range(50):  # the hub's keyring follows its directory within 0.1 s
                try:
                    return (await link.publish([feed_pb2.LogEntry(signed=forged)])).accepted
                except SamverkaError:  # unknown_key until the hub reads the new directory
                    await asyncio.sleep(0.1)
        raise AssertionError("the hub never took the forged entry")

    assert run(publish()) == 1
    return forged


def test_rotation_at_once_challenge_alarm_objection(fed: KeyFed) -> None:
    orsa, leksand = fed.nodes[ORSA], fed.nodes[LEKSAND]
    others = (ALVDALEN, LEKSAND)

    # -- a legitimate rotation takes effect at once everywhere ------------------------------
    fed.stop(LEKSAND)  # a running node serve keeps the key it started with
    rotating = subprocess.Popen(
        [sys.executable, "-m", "samverka", "node", "rotate-key", "--dir", str(leksand),
         "--wait", "60", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=fed.env, cwd=fed.tmp,
    )  # fmt: skip

    def pending() -> bool:
        with open_hub(fed.hub.dir) as hub:
            return bool(hub.council.pending_rotations())

    wait_for(pending, 60, "Leksand's rotation to reach the hub")
    with open_hub(fed.hub.dir) as hub:
        hub.council.approve_rotation(LEKSAND)
    approved_at = time.monotonic()
    out, err = rotating.communicate(timeout=90)
    assert rotating.returncode == 0, err
    new_key_id = json.loads(out)["new_key_id"]
    fed.start(LEKSAND)
    # Orsa's node (directory refresh every 60 s) takes it from the hub's directory push.
    for code in (ORSA, ALVDALEN):
        wait_for(
            lambda code=code: (
                (binding(fed.nodes[code], LEKSAND, new_key_id) or {}).get("standing") == "effective"
            ),
            30,
            f"{code} to take Leksand's new key",
            fed,
        )
    rotation_seconds = time.monotonic() - approved_at
    for code in (ORSA, ALVDALEN):
        assert binding(fed.nodes[code], LEKSAND, new_key_id)["via"] == "rotation"  # type: ignore[index]
    sequence = author(leksand, "after-rotation")
    for code in (ORSA, ALVDALEN):
        wait_for(
            lambda code=code: held(fed.nodes[code], LEKSAND) >= sequence,
            60,
            f"{code} to hold Leksand's entry signed with the new key",
            fed,
        )
    assert not list((leksand / ALARMS_DIR).glob("*.json"))  # its own new key: no alarm
    record("attack", "legitimate key rotation takes effect at once at every node",
           refused=True, code="effective", reason="rotation")  # fmt: skip

    # -- Orsa's node running (refresh every 60 s, the default, since the fixture started
    # it): the hub binds a key of its own to Orsa; the alarm comes with the hub's
    # directory push, within one interval -----------------------------------------------
    sequence = author(leksand, "orsa-follows")
    wait_for(lambda: held(orsa, LEKSAND) >= sequence, 60, "Orsa's node following", fed)
    first, _ = plant_key(fed.hub.dir, ORSA)
    planted_at = time.monotonic()
    first_file = orsa / ALARMS_DIR / f"key_not_held-{first.key_id}.json"
    wait_for(first_file.exists, 30, "Orsa's alarm", fed)
    to_alarm = time.monotonic() - planted_at
    assert to_alarm <= 5.0, to_alarm  # far within one refresh interval (60 s)
    record("attack", "hub binds a key of its own to a kommun: that kommun's alarm",
           refused=True, code=f"alarm in {to_alarm:.1f} s", reason="key_not_held")  # fmt: skip
    for code in others:
        wait_for(
            lambda code=code: (
                (binding(fed.nodes[code], ORSA, first.key_id) or {}).get("via") == "objection"
            ),
            30,
            f"{code} to honour Orsa's objection",
            fed,
        )
    objected_at = time.monotonic() - planted_at

    # -- while Orsa's node is down, the hub binds another key and forges an entry with it --
    for i in (1, 2):
        author(orsa, f"orsa-{i}")
    for code in others:
        wait_for(lambda code=code: held(fed.nodes[code], ORSA) >= 2, 60, f"{code} has Orsa#2", fed)
    fed.stop(ORSA)
    planted, version = plant_key(fed.hub.dir, ORSA)
    forged = forge(fed, planted, ORSA)
    forged_sequence = held(fed.nodes[ALVDALEN], ORSA) + 1
    for code in others:
        node = fed.nodes[code]
        b = wait_for(
            lambda node=node: binding(node, ORSA, planted.key_id), 30, f"{code} to see the key"
        )
        assert b["standing"] == "pending" and b["via"] == "listed", b
        # The challenge period starts once a cosigned checkpoint holds the directory.
        wait_for(
            lambda node=node: (binding(node, ORSA, planted.key_id) or {}).get("proven_ms"),
            60,
            f"{code} to see directory version {version} in an accepted checkpoint",
            fed,
        )
        wait_for(
            lambda code=code: "key_in_challenge" in fed.log(code),
            60,
            f"{code} to refuse the forged entry",
            fed,
        )
        assert held(node, ORSA) == forged_sequence - 1  # nothing stored from it on
    # Älvdalen's key state as it is now, for a member the hub keeps the objection from.
    unaware = fed.tmp / "unaware"
    shutil.copytree(fed.nodes[ALVDALEN], unaware)
    record("attack", "hub binds a key of its own to a kommun: other nodes refuse its entries",
           refused=True, code="sync stopped", reason="key_in_challenge")  # fmt: skip

    # -- Orsa's node comes back: the alarm at once ------------------------------------------
    started = time.monotonic()
    fed.start(ORSA)  # directory refresh every 60 s (ORSA_REFRESH)
    alarm_file = orsa / ALARMS_DIR / f"key_not_held-{planted.key_id}.json"
    wait_for(alarm_file.exists, 60, "Orsa's alarm", fed)
    after_start = time.monotonic() - started
    print(
        f"\ntime to alarm: {to_alarm:.2f} s after the hub signed the directory (node "
        f"running, directory refresh every 60 s: the hub's push); every other member "
        f"refused the key {objected_at:.2f} s after it was signed; {after_start:.2f} s after "
        f"the start of a node that was down; a rotation took effect at the others "
        f"{rotation_seconds:.2f} s after the council's approval"
    )

    # The JSON log line, the metric, doctor, samverka sync.
    alarms = wait_for(lambda: fed.events(ORSA, "monitor_alarm"), 10, "a monitor_alarm line")
    assert any(planted.key_id in a["message"] for a in alarms), alarms
    assert {a["level"] for a in alarms} == {"error"} and alarms[0]["origin"] == ORSA

    def metric() -> float:
        with urllib.request.urlopen(f"http://{fed.metrics}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        for line in text.splitlines():
            if line.startswith('samverka_monitor_alarms_total{kind="key_not_held"}'):
                return float(line.split()[-1])
        return 0.0

    wait_for(lambda: metric() >= 1, 10, "the alarm metric")
    report = run_doctor(orsa, only=["directory"])
    [finding] = report.findings
    said = finding.as_json()  # the English of --json
    assert finding.status.value == "FAIL" and "monitor alarm" in said["message"], finding
    assert planted.key_id in said["message"] and "tlog/alarms/handled" in said["hint"]
    sync = fed.cli("sync", "--dir", str(orsa), "--no-push")
    assert sync.returncode == 8, sync.stdout + sync.stderr
    assert "monitor alarm" in sync.stderr and planted.key_id in sync.stderr

    # The forged entry of Orsa's own feed: an alarm of its own, with the entry.
    entry_alarm = orsa / ALARMS_DIR / f"entry_not_signed-{planted.key_id}.json"
    wait_for(entry_alarm.exists, 30, "Orsa's alarm on the forged entry", fed)
    entry_evidence = orsa / json.loads(entry_alarm.read_text())["evidence"]
    assert (entry_evidence / "entry.bin").read_bytes() == forged.SerializeToString(
        deterministic=True
    )

    # -- the evidence, checked by a verifier that imports nothing of ours ---------------------
    alarm = wait_for(
        lambda: (data := json.loads(alarm_file.read_text()))["log_proof"] and data,
        60,
        "the log's proof in the evidence",
        fed,
    )
    assert alarm["objection_sent"] is True
    evidence = orsa / alarm["evidence"]
    assert sorted(p.name for p in evidence.iterdir()) == sorted(
        [
            "README.txt", "checkpoint.txt", "directory.bin", "directory.bytes",
            "directory.sig", "facts.json", "hub.pub", "inclusion-proof.json", "log.key",
            "objection.bin",
        ]
    )  # fmt: skip
    directory_bytes = (evidence / "directory.bytes").read_bytes()
    listed = directory_pb2.Directory.FromString(directory_bytes)
    orsa_member = next(m for m in listed.members if m.kommunkod == ORSA)
    assert planted.key_id in {k.key_id for k in orsa_member.keys}
    # The hub's signature over the directory, with its key (hub.pub).
    hub_public = load_pem_public_key((evidence / "hub.pub").read_bytes())
    hub_public.verify(  # type: ignore[union-attr, call-arg]
        (evidence / "directory.sig").read_bytes(), b"samverka/v1/directory\x00" + directory_bytes
    )
    log_key = tlogcheck.parse_vkey((evidence / "log.key").read_text().strip())
    checkpoint = tlogcheck.verify_checkpoint(
        (evidence / "checkpoint.txt").read_bytes(), log_key, []
    )
    proof = json.loads((evidence / "inclusion-proof.json").read_text())
    leaf = directory_leaf(listed.version, directory_digest(directory_bytes))
    assert bytes.fromhex(proof["leaf"]) == leaf
    assert proof["tree_size"] == checkpoint.size
    assert tlogcheck.rfc_inclusion_ok(
        proof["leaf_index"],
        checkpoint.size,
        tlogcheck._h_leaf(leaf),
        [bytes.fromhex(h) for h in proof["hashes"]],
        checkpoint.root,
    )
    objection = directory_pb2.SignedKeyObjection.FromString(
        (evidence / "objection.bin").read_bytes()
    )
    statement = directory_pb2.KeyObjection.FromString(objection.objection)
    assert bytes(statement.objected_public_key) == planted.public.raw
    assert statement.kommunkod == ORSA
    signer = next(k for k in orsa_member.keys if k.key_id == statement.key_id)
    Ed25519PublicKey.from_public_bytes(bytes(signer.public_key)).verify(
        objection.signature, b"samverka/v1/key-objection\x00" + objection.objection
    )

    # -- the objection reaches the hub, and every member refuses the key ---------------------
    def objected_at_hub() -> bool:
        member = next(m for m in hub_directory(fed.hub.dir).members if m.kommunkod == ORSA)
        objected = {
            base64.b64encode(
                directory_pb2.KeyObjection.FromString(o.objection).objected_public_key
            ).decode()
            for o in member.objections
        }
        return base64.b64encode(planted.public.raw).decode() in objected

    wait_for(objected_at_hub, 30, "the hub to list Orsa's objection")
    for code in others:
        node = fed.nodes[code]
        b = wait_for(
            lambda node=node: (
                ((found := binding(node, ORSA, planted.key_id)) and found["standing"] == "refused")
                and found
            ),
            30,
            f"{code} to refuse the planted key",
            fed,
        )
        assert b["via"] == "objection" and b["objected_by"] == statement.key_id, b
        wait_for(
            lambda code=code: "key_objected" in fed.log(code), 60, f"{code}: key_objected", fed
        )
        assert held(node, ORSA) == forged_sequence - 1

    # Orsa's node serves its objection to its peers (GetLogView): a member the hub kept it
    # from takes it from there (``samverka crosscheck`` asks every peer).
    async def log_view() -> list[bytes]:
        tls = ClientTls.from_config(load_config(fed.nodes[ALVDALEN]))
        async with FeedClient.connect(load_config(orsa).server.listen, tls) as client:
            reply = await client.get_log_view()
        return [o.SerializeToString(deterministic=True) for o in reply.objections]

    served = run(log_view())
    assert objection.SerializeToString(deterministic=True) in served
    assert (binding(unaware, ORSA, planted.key_id) or {}).get("standing") == "pending"
    assert honour_objections(load_config(unaware), served) == [f"{ORSA}:{planted.key_id}"]
    assert binding(unaware, ORSA, planted.key_id)["standing"] == "refused"  # type: ignore[index]
    record("attack", "hub binds a key of its own to a kommun: the objection, honoured by all",
           refused=True, code="refused", reason="key_objected")  # fmt: skip
