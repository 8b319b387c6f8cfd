"""The erasure record (samverka.protocol.erasure): who may erase what, and its limits."""

from __future__ import annotations

import pytest
from samverka.errors import RecordInvalid
from samverka.protocol.erasure import (
    MAX_NOTE_CHARS,
    HeldEntry,
    build_erasure,
    erasure_id,
    erasure_targets,
)
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.validation import record_issues, validate_record
from samverka.v1 import erasure_pb2, records_pb2

PUBLIC, MEMBERS, DRAFT = (
    records_pb2.VISIBILITY_PUBLIC,
    records_pb2.VISIBILITY_MEMBERS,
    records_pb2.VISIBILITY_DRAFT,
)
HASH = bytes(range(32))


def erasure(eraser: str = "2029", origin: str = "2029", **kw: object) -> records_pb2.Record:
    args: dict[str, object] = {
        "eraser": eraser,
        "origin": origin,
        "record_id": "uc-x",
        "entries": [HeldEntry(3, HASH, PUBLIC)],
        "reason": erasure_pb2.ERASURE_REASON_PERSONAL_DATA,
        "now_ms": 1_750_000_000_000,
    }
    args.update(kw)
    return build_erasure(**args)  # type: ignore[arg-type]


def fields(record: records_pb2.Record, origin: str) -> list[str]:
    return [issue.field for issue in record_issues(record, origin=origin)]


def test_a_kommun_erases_its_own_entries_and_names_them() -> None:
    record = erasure()
    validate_record(record, origin="2029")
    assert [(t.origin, t.sequence, t.entry_hash) for t in erasure_targets(record)] == [
        ("2029", 3, HASH)
    ]
    assert record.header.id == erasure_id("2029", "uc-x", [3])
    assert "uc-x" not in record.header.id  # the id never repeats what is erased


def test_only_the_council_erases_another_feeds_entries() -> None:
    assert fields(erasure(eraser="1472"), "1472") == ["erasure.origin"]
    validate_record(erasure(eraser=HUB_ORIGIN, request_ref="KS 2026/1"), origin=HUB_ORIGIN)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"entries": []}, "erasure.entries"),
        ({"entries": [HeldEntry(3, b"short", PUBLIC)]}, "erasure.entries[0].entry_hash"),
        ({"entries": [HeldEntry(3, HASH, PUBLIC)] * 2}, "erasure.entries[1].sequence"),
        ({"reason": erasure_pb2.ERASURE_REASON_UNSPECIFIED}, "erasure.reason"),
        ({"note": "x" * (MAX_NOTE_CHARS + 1)}, "erasure.note"),
        ({"record_id": "not an id"}, "erasure.record_id"),
    ],
)
def test_a_malformed_erasure_is_refused(change: dict[str, object], field: str) -> None:
    with pytest.raises(RecordInvalid):
        validate_record(erasure(**change), origin="2029")
    assert field in fields(erasure(**change), "2029")


def test_an_erasure_is_as_visible_as_the_widest_entry_it_erases() -> None:
    def visibility(*seen: int) -> int:
        held = [HeldEntry(i + 1, HASH, v) for i, v in enumerate(seen)]
        return erasure(entries=held).header.visibility

    assert visibility(MEMBERS, PUBLIC) == PUBLIC
    assert visibility(MEMBERS, DRAFT) == MEMBERS
    assert visibility(DRAFT) == DRAFT


def test_other_records_erase_nothing() -> None:
    assert erasure_targets(records_pb2.Record()) == []
