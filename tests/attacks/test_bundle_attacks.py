"""Hostile bundles given to ``samverka bundle import`` (a subprocess, as an operator runs
it), then a real ``samverka sync`` against the arena's running hub.

A bundle item that is a redacted stand-in cannot be checked on its own; before the fix
a stand-in at the end of a feed was taken on the sender's word, so a bundle of one
made-up stand-in for another origin's next sequence imported with exit 0 and every
later sync stopped at a ``fork`` when the real entry came.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from arena import TIBRO, Arena, enroll_node, hub_env
from samverka.node import Node
from samverka.protocol.signing import SigningKey
from samverka.replication.bundle import BUNDLE_DOMAIN, FORMAT_VERSION, MAGIC, write_delimited
from samverka.v1 import bundle_pb2, feed_pb2
from soakresults import record

VANSBRO, LUDVIKA = "2021", "2085"


def samverka(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = hub_env(SAMVERKA_HUB_FOLLOW="false")
    return subprocess.run(
        [sys.executable, "-m", "samverka", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def stand_in_bundle(
    path: Path, *, exporter: str, key: SigningKey, origin: str, sequence: int
) -> None:
    """A bundle whose only item is a made-up stand-in for ``origin``#``sequence``."""
    fake = feed_pb2.RedactedEntry(origin=origin, sequence=sequence, entry_hash=b"\x42" * 32)
    header = bundle_pb2.BundleHeader(
        format_version=FORMAT_VERSION,
        exporter=exporter,
        created_at_ms=1,
        entry_count=1,
        heads=[feed_pb2.FeedHead(origin=origin, sequence=sequence, entry_hash=fake.entry_hash)],
    )
    header_bytes = header.SerializeToString()
    signed = bundle_pb2.SignedBundleHeader(
        header=header_bytes,
        signature=key.sign(header_bytes, domain=BUNDLE_DOMAIN),
        key_id=key.key_id,
    )
    with path.open("wb") as out:
        out.write(MAGIC)
        write_delimited(out, signed.SerializeToString())
        write_delimited(out, feed_pb2.LogEntry(position=1, redacted=fake).SerializeToString())


def head_of(node: Path, origin: str) -> tuple[int, bytes]:
    with Node.open(node) as opened:
        head = opened.store.head(origin)
        return (head.sequence, head.entry_hash) if head is not None else (0, b"")


@pytest.mark.parametrize(
    ("signer", "code"), [("unknown key", VANSBRO), ("a member's key, another origin", LUDVIKA)]
)
def test_a_made_up_stand_in_in_a_bundle_cannot_block_sync(
    hub_arena: Arena, tmp_path: Path, signer: str, code: str
) -> None:
    node = enroll_node(hub_arena.hub, code, tmp_path / "node", quorum=0)
    tibro = hub_arena.writer(TIBRO)
    assert hub_arena.publish(TIBRO, tibro.publish(record_id=f"before-{code}")).accepted == 1
    synced = samverka("sync", "--dir", node, "--no-push", "--quiet")
    assert synced.returncode == 0, synced.stderr
    tibro_head = hub_arena.state().head(TIBRO)
    assert head_of(node, TIBRO)[0] == tibro_head

    if signer == "unknown key":
        exporter, key = code, SigningKey.generate()
    else:  # Leksand's real key, which the node trusts through the directory
        exporter, key = "2029", hub_arena.members["2029"].key
    bundle = tmp_path / "falsk.samverka"
    stand_in_bundle(bundle, exporter=exporter, key=key, origin=TIBRO, sequence=tibro_head + 1)
    imported = samverka("bundle", "import", bundle, "--dir", node, "--json")
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert summary["header_verified"] is (signer != "unknown key")
    assert (summary["accepted"], summary["stand_ins_left_out"]) == (0, 1), summary
    left_out = head_of(node, TIBRO)[0] == tibro_head

    # The real entry at that sequence comes, and a later one: sync takes both.
    real = tibro.publish(record_id=f"real-{code}")
    later = tibro.publish(record_id=f"later-{code}")
    assert hub_arena.publish(TIBRO, real, later).accepted == 2
    synced = samverka("sync", "--dir", node, "--no-push", "--quiet")
    with hub_arena.hub.open_store() as store:
        hub_head = store.head(TIBRO)
    assert hub_head is not None
    unblocked = synced.returncode == 0 and head_of(node, TIBRO) == (
        hub_head.sequence,
        hub_head.entry_hash,
    )
    record("attack", f"bundle of one made-up stand-in ({signer}) blocks sync",
           refused=left_out and unblocked, code=f"exit {imported.returncode}",
           reason="stand-in left out; sync exit " + str(synced.returncode))  # fmt: skip
    assert left_out, "the made-up stand-in was stored"
    assert synced.returncode == 0, synced.stderr
    assert unblocked
