"""Checking a batch's signatures ahead, on several threads, decides exactly as checking
each entry in turn: same accepted count, same first refusal, same index."""

from __future__ import annotations

from collections.abc import Iterator

import factories
import pytest
import samverka.replication.ingest as ingest_module
from samverka.protocol.signing import SigningKey, entry_hash
from samverka.replication.ingest import ingest
from samverka.store.store import Store
from samverka.v1 import feed_pb2

BATCH = 100  # above PARALLEL_MIN, so the thread pool takes it


def _batch(kind: str) -> tuple[factories.FeedWriter, list[feed_pb2.SignedEntry | bytes]]:
    writer = factories.FeedWriter(factories.LEKSAND)
    items: list[feed_pb2.SignedEntry | bytes] = [
        writer.publish(record_id=f"r{i}") for i in range(BATCH)
    ]
    if kind == "bad_signature":
        bad = feed_pb2.SignedEntry()
        bad.CopyFrom(writer.entries[70])
        bad.signature = bytes(64)
        items[70] = bad
    elif kind == "unknown_key":
        bad = feed_pb2.SignedEntry()
        bad.CopyFrom(writer.entries[60])
        bad.key_id = SigningKey.generate().key_id
        items[60] = bad
    elif kind == "schema":
        # A validly signed entry 80 whose record is invalid (a blank title).
        twin = factories.FeedWriter(factories.LEKSAND, writer.key)
        twin.sequence, twin.head_hash = 79, entry_hash(writer.entries[78].entry)
        twin.next_timestamp_ms = factories.T0_MS + 79 * 1000
        record = factories.make_use_case(record_id="bad", title="   ")
        items[79] = twin.build(record)
    elif kind == "malformed":
        items = [factories.serialize(e) for e in writer.entries]
        items[50] = b"\xff\x00 not a SignedEntry"
    return writer, items


def _outcome(mode: str, kind: str) -> tuple[int, int | None, str]:
    writer, items = _batch(kind)
    ingest_module.PARALLEL_MIN = 32 if mode == "threads" else 10**9
    with Store.open("sqlite://") as store:
        report = ingest(store, writer.keyring(), items, now_ms=factories.FIXED_NOW_MS)
    refusal = report.first_refusal
    # Key ids differ between batches (new keys); compare reason, place and origin.
    summary = (
        "" if refusal is None else f"{refusal.reason.value} {refusal.origin}#{refusal.sequence}"
    )
    return report.accepted, report.refused_index, summary


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    saved = ingest_module.PARALLEL_MIN
    yield
    ingest_module.PARALLEL_MIN = saved


@pytest.mark.parametrize("kind", ["valid", "bad_signature", "unknown_key", "schema", "malformed"])
def test_checking_ahead_decides_as_checking_in_turn(kind: str) -> None:
    inline = _outcome("inline", kind)
    assert _outcome("threads", kind) == inline
    expected_index = {"valid": None, "bad_signature": 70, "unknown_key": 60, "schema": 79}
    assert inline[1] == expected_index.get(kind, 50)
