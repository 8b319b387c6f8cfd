"""The hub rotates its own keys and its members follow, end to end (issue 11, point 8).

Real processes over mutual TLS on loopback: ``hub serve`` and two nodes running ``node
serve`` (push, follow, witness, directory refresh), a third node enrolled and then
offline. ``[witness] quorum`` is 1, so every checkpoint a node takes carries another
kommun's cosignature: the witnesses must have followed the log key's rotation to cosign
what the hub signs with the new key. What is shown:

- ``hub rotate-keys --directory --log --ca``: both nodes follow (new directory key and
  log key pinned, the new CA in their trust bundle, a JSON log line), keep publishing and
  following each other through the hub, without enrolling again;
- a second rotation (directory and log key); the node that was offline during both
  syncs on return: the hub hands it each rotation in turn and it takes everything
  published meanwhile, proven in checkpoints signed by the newest log key;
- the CA rotation finished (``node renew-cert`` at every node, ``hub rotate-keys
  --finish``): the hub presents its certificate from the new CA, trusts only that CA, and
  the nodes go on;
- a rotation forged by a key the nodes do not pin, and a directory signed by such a key
  without any, are refused with the precise reason; nothing the node holds changes.

The servers are processes; the one-shot commands (``hub rotate-keys``, ``sync``,
``doctor``, ``node renew-cert``) run in this process through the root command with the
processes' environment (:meth:`Federation.run`).
"""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import factories
import pytest
from cryptography import x509
from hubkit import Completed, Procs, wait_for
from samverka.config import load_config
from samverka.errors import DirectoryRefused, Reason, SamverkaError
from samverka.membership.member import accept_directory
from samverka.node import Node, load_directory, pinned_hub_key
from samverka.protocol.directory import build_directory, hub_member
from samverka.protocol.note import Ed25519Verifier
from samverka.protocol.signing import HUB_KEY_ROTATION_DOMAIN, SigningKey
from samverka.protocol.witness import open_signed
from samverka.replication.logstate import LogState
from samverka.store.store import Store
from samverka.v1 import directory_pb2

sys.path.insert(0, str(Path(__file__).parent.parent / "attacks"))

import arena

LEKSAND, TIBRO, GAGNEF = "2029", "1472", "2026"
SERVING = (LEKSAND, TIBRO)
NODE_ENV = {
    "SAMVERKA_WITNESS_QUORUM": "1",
    "SAMVERKA_HUB_DIRECTORY_REFRESH_SECONDS": "0.5",
    "SAMVERKA_LOG_FORMAT": "json",
    "SAMVERKA_LOG_LEVEL": "info",
}


#: ``[tlog] witness_target`` 2: the two kommuner whose nodes run (and witness) make a
#: checkpoint fully cosigned, and witnesses go on to the next one at once. With the
#: default 3, never reached while Gagnef is offline, the hub steers witnesses to each
#: checkpoint "in progress" for 5 s (cosigned.IN_PROGRESS_MS) before the next, so every
#: push waited up to that long to be cosigned and followed.
HUB_ENV = {"SAMVERKA_WITNESS_QUORUM": "1", "SAMVERKA_TLOG_WITNESS_TARGET": "2"}


@dataclass
class Federation:
    procs: Procs
    hub: arena.HubProcess
    members: dict[str, Path]
    serving: dict[str, subprocess.Popen[bytes]]
    starts: int = 0

    def serve(self, code: str) -> None:
        self.starts += 1
        self.serving[code] = self.procs.start(
            "node", "serve", "--dir", str(self.members[code]), name=f"serve-{code}-{self.starts}"
        )

    def stop(self, code: str) -> None:
        proc = self.serving.pop(code)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    def restart_hub(self) -> None:
        assert self.hub.stop() == 0, self.hub.log()[-3000:]
        self.hub.start()

    def run(self, *args: str, check: bool = True) -> Completed:
        """``samverka ARGS`` in this process as the processes run it
        (:meth:`hubkit.Procs.run_here`); what it does to the folders and the hub is the
        same as a ``samverka`` process's."""
        return self.procs.run_here(*args, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def log(self, code: str) -> str:
        return "".join(
            self.procs.log(f"serve-{code}-{n}")
            for n in range(1, self.starts + 1)
            if (self.procs.tmp / f"serve-{code}-{n}.err").exists()
        )


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    tmp = tmp_path_factory.mktemp("hubkeys")
    arena.build_hub(tmp / "hub", ())
    hub = arena.serve_hub(tmp / "hub", tmp / "logs", **HUB_ENV)
    procs = Procs(tmp, arena.hub_env(**NODE_ENV))
    members = {
        code: arena.enroll_node(
            hub, code, tmp / f"node-{code}", address=f"127.0.0.1:{arena.free_port()}"
        )
        for code in (LEKSAND, TIBRO, GAGNEF)
    }
    federation = Federation(procs, hub, members, {})
    try:
        for code in SERVING:
            federation.serve(code)
        yield federation
    finally:
        procs.stop_all()
        assert hub.stop() == 0, hub.log()[-3000:]


def author(node_dir: Path, record_id: str) -> int:
    """Publish a record through the node's own publisher (as the CLI does); its sequence."""
    with Node.open(node_dir) as node:
        record = factories.make_record("use_case", record_id=record_id, origin=node.origin)
        return node.publisher().publish(record).sequence


def head(node_dir: Path, origin: str) -> int:
    with Store.open(load_config(node_dir).store_url, migrate=False) as store:
        found = store.head(origin)
    return found.sequence if found is not None else 0


def trust_of(node_dir: Path) -> tuple[str, str, int]:
    """(pinned hub key id, pinned log key, CA certificates trusted) of a node folder."""
    config = load_config(node_dir)
    key = pinned_hub_key(config)
    held = load_directory(config)
    cas = x509.load_pem_x509_certificates(config.path(config.tls.ca).read_bytes())
    return (
        key.key_id if key else "",
        held.directory.log_key if held else "",
        len(cas),
    )


def served_certificate(address: str) -> x509.Certificate:
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def followed_by_serving(fed: Federation, key_id: str, log_key: str) -> None:
    for code in SERVING:
        wait_for(
            lambda code=code: (
                trust_of(fed.members[code])[:2] == (key_id, log_key) or _dead(fed, code)
            ),
            30,
            f"{code} to follow the hub's rotation to {key_id}",
        )


def cosigned_under(node_dir: Path, log_key: str) -> bool:
    """The node's witness has cosigned a checkpoint the log signed with ``log_key``."""
    held = LogState(node_dir).cosigned()
    if held is None:
        return False
    try:
        open_signed(held.note, Ed25519Verifier.from_vkey(log_key))
    except SamverkaError:  # NoteError too
        return False
    return True


def witnessed_by_serving(fed: Federation, log_key: str) -> None:
    """Both nodes' witnesses cosign what the hub signs with its new log key (the next
    rotation starts from a federation that has taken this one)."""
    for code in SERVING:
        wait_for(
            lambda code=code: cosigned_under(fed.members[code], log_key) or _dead(fed, code),
            60,
            f"{code}'s witness to cosign a checkpoint signed by the log key {log_key}",
        )


def log_key_refusals(fed: Federation, code: str) -> list[str]:
    """The node's witness rounds that failed on a checkpoint's log key: none, though
    the hub and the node each switch keys at their own moment (the hub serves only
    checkpoints its key in force signed; a witness that meets one by a key it does not
    know fetches the directory, one by the key it followed away from waits)."""
    return [
        line
        for line in fed.log(code).splitlines()
        if '"task_failed"' in line and '"witness"' in line and "log key" in line
    ]


def _dead(fed: Federation, code: str) -> bool:
    proc = fed.serving.get(code)
    if proc is not None and proc.poll() is not None:
        raise AssertionError(f"node serve {code} exited:\n{fed.log(code)[-4000:]}")
    return False


def published_and_followed(fed: Federation, record_id: str) -> int:
    """Leksand publishes (its node serve pushes); Tibro's follows it from the hub."""
    sequence = author(fed.members[LEKSAND], record_id)
    wait_for(
        lambda: head(fed.members[TIBRO], LEKSAND) >= sequence or _dead(fed, TIBRO),
        60,
        f"Tibro to follow Leksand #{sequence} through the hub",
    )
    return sequence


@pytest.mark.timeout(600)  # 17-25 s here: the hub restarts twice, the nodes once
def test_members_follow_the_hubs_rotations_without_enrolling_again(fed: Federation) -> None:
    hub_dir = fed.hub.dir
    gagnef = fed.members[GAGNEF]
    key0, log0, cas0 = trust_of(fed.members[LEKSAND])
    assert log0 and cas0 == 1
    first = published_and_followed(fed, "before-rotation")
    # Gagnef syncs once (cosigned by a witness), then goes offline.
    assert fed.json("sync", "--dir", str(gagnef))["accepted"] >= first
    assert trust_of(gagnef) == (key0, log0, 1)

    # -- rotation 1: directory key, log key and CA ------------------------------------
    one = fed.json("hub", "rotate-keys", "--directory", "--log", "--ca", "--dir", str(hub_dir))
    assert one["rotated"] == ["directory key", "log key", "CA"], one
    assert one["old_key_id"] == key0 and one["new_key_id"] != key0
    fed.restart_hub()  # the member port trusts client certificates from both CAs
    followed_by_serving(fed, one["new_key_id"], one["new_log_key"])
    for code in SERVING:
        assert trust_of(fed.members[code])[2] == 2  # old and new CA
    second = published_and_followed(fed, "after-rotation-1")
    lines = [json.loads(x) for x in fed.log(LEKSAND).splitlines() if x.startswith("{")]
    followed = [x for x in lines if x.get("event") == "hub_keys_followed"]
    assert followed and followed[0]["key_id"] == one["new_key_id"], followed
    witnessed_by_serving(fed, one["new_log_key"])

    # -- rotation 2: directory and log key (no restart needed) -------------------------
    two = fed.json("hub", "rotate-keys", "--directory", "--log", "--dir", str(hub_dir))
    assert two["old_key_id"] == one["new_key_id"]
    followed_by_serving(fed, two["new_key_id"], two["new_log_key"])
    third = published_and_followed(fed, "after-rotation-2")
    witnessed_by_serving(fed, two["new_log_key"])
    assert third > second > first
    for code in SERVING:
        assert log_key_refusals(fed, code) == [], fed.log(code)[-4000:]

    # -- Gagnef returns: both rotations followed, everything proven and taken -----------
    synced = fed.json("sync", "--dir", str(gagnef))
    assert head(gagnef, LEKSAND) == third, synced
    assert trust_of(gagnef) == (two["new_key_id"], two["new_log_key"], 2)
    records = sorted(p.name for p in (gagnef / "hub" / "rotations").iterdir())
    assert len(records) == 2, records
    doctor = fed.json("doctor", "--dir", str(gagnef), "--offline")
    said = [f for f in doctor["findings"] if f["check"] == "directory"]
    assert any("followed 2 hub key rotation(s)" in f["message"] for f in said), said
    assert any(f["status"] == "warn" and "renew-cert" in f["hint"] for f in said), said
    # ... and publishes: its entry reaches Tibro through the hub.
    mine = author(gagnef, "gagnef-back")
    fed.json("sync", "--dir", str(gagnef))
    wait_for(lambda: head(fed.members[TIBRO], GAGNEF) >= mine, 60, "Tibro to get Gagnef's entry")

    # -- the CA rotation finished -------------------------------------------------------
    refused = fed.run("hub", "rotate-keys", "--finish", "--dir", str(hub_dir), check=False)
    assert refused.returncode == 3 and "renew-cert" in refused.stderr, refused
    for code in (LEKSAND, TIBRO, GAGNEF):
        fed.run("node", "renew-cert", "--dir", str(fed.members[code]))
    done = fed.json("hub", "rotate-keys", "--finish", "--dir", str(hub_dir))
    assert done["finished"] and len(done["dropped_ca_serials"]) == 1, done
    fed.restart_hub()
    for code in SERVING:
        fed.stop(code)
        fed.serve(code)
    issuer = served_certificate(fed.hub.member).issuer.rfc4514_string()
    assert "Samverka CA (AI-r" in issuer and issuer.count(" ") >= 3, issuer  # the dated one
    published_and_followed(fed, "after-finish")
    fed.json("sync", "--dir", str(gagnef))
    assert head(gagnef, LEKSAND) == head(fed.members[LEKSAND], LEKSAND)
    doctor = fed.json("doctor", "--dir", str(gagnef), "--offline")
    assert not [f for f in doctor["findings"] if f["status"] == "fail"], doctor


def forged_directory(
    signer: SigningKey, version: int, rotation: directory_pb2.SignedHubKeyRotation | None
) -> directory_pb2.SignedDirectory:
    return build_directory(
        signer,
        version=version,
        members=[hub_member(signer.public)],
        issued_at_ms=time.time_ns() // 1_000_000,
        hub_rotation=rotation,
    ).signed


def rotation_records(node_dir: Path) -> list[str]:
    folder = node_dir / "hub" / "rotations"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_forged_rotation_is_refused_and_changes_nothing(fed: Federation) -> None:
    node_dir = fed.members[GAGNEF]
    config = load_config(node_dir)
    pinned = pinned_hub_key(config)
    held = load_directory(config)
    assert pinned is not None and held is not None
    ca_path = config.path(config.tls.ca)
    files = (node_dir / "hub" / "hub.pub", node_dir / "hub" / "directory.bin", ca_path)
    before = ({p: p.read_bytes() for p in files}, rotation_records(node_dir))
    mallory = SigningKey.generate()
    version = held.version + 100
    # Mallory announces her key "under" the pinned one: she cannot sign as it.
    raw = directory_pb2.HubKeyRotation(
        old_key_id=pinned.key_id,
        new_public_key=mallory.public.raw,
        created_at_ms=time.time_ns() // 1_000_000,
    ).SerializeToString()
    forged = directory_pb2.SignedHubKeyRotation(
        rotation=raw,
        old_signature=mallory.sign(raw, domain=HUB_KEY_ROTATION_DOMAIN),
        new_signature=mallory.sign(raw, domain=HUB_KEY_ROTATION_DOMAIN),
    )
    with pytest.raises(DirectoryRefused) as refused:
        accept_directory(config, forged_directory(mallory, version, forged))
    assert refused.value.reason is Reason.BAD_SIGNATURE
    assert f"signature by the pinned hub key {pinned.key_id} does not verify" in str(refused.value)
    # Signed by a key nobody announced, with no rotation at all.
    with pytest.raises(DirectoryRefused) as refused:
        accept_directory(config, forged_directory(mallory, version, None))
    assert refused.value.reason is Reason.UNKNOWN_KEY
    assert "carries no rotation announced under the pinned key" in str(refused.value)
    assert ({p: p.read_bytes() for p in files}, rotation_records(node_dir)) == before
