"""The current view: newest version of each record, listing and filters."""

from __future__ import annotations

import factories
from samverka.protocol.entries import parse_signed
from samverka.store.store import Store
from samverka.v1 import feed_pb2, records_pb2


def append(store: Store, *entries: feed_pb2.SignedEntry) -> list[int]:
    return store.append([parse_signed(e) for e in entries])


def test_the_view_holds_the_newest_version(store: Store, leksand: factories.FeedWriter) -> None:
    append(store, leksand.publish(record_id="uc-1", title="Första"))
    append(
        store,
        leksand.publish(record_id="uc-1", title="Andra"),
        leksand.publish(record_id="uc-1", title="Tredje", tags=["Äldre", "äldre", " AI "]),
    )
    rec = store.get_record(factories.LEKSAND, "uc-1")
    assert rec is not None
    assert (rec.version, rec.title, rec.position) == (3, "Tredje", 3)
    assert rec.record.use_case.title == "Tredje"
    assert rec.key_id == leksand.key.key_id
    assert rec.timestamp_ms == parse_signed(leksand.entries[2]).timestamp_ms
    assert rec.summary.startswith("Schemaläggning")
    assert rec.service_area == records_pb2.SERVICE_AREA_ELDERLY_CARE
    assert rec.status == records_pb2.USE_CASE_STATUS_PILOT
    assert rec.risk_class == records_pb2.RISK_CLASS_LIMITED
    assert store.record_version(factories.LEKSAND, "uc-1") == 3
    assert store.get_record(factories.TIBRO, "uc-1") is None
    assert rec.tags == ("äldre", "ai")  # normalized: lower case, trimmed, once each
    assert [r.record_id for r in store.list_records(tags=["ÄLDRE"])] == ["uc-1"]
    assert [r.record_id for r in store.list_records(tags=["ai"])] == ["uc-1"]


def test_record_versions_and_prefetch(
    store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter
) -> None:
    append(store, leksand.publish(record_id="a"), leksand.publish(record_id="a"))
    append(store, leksand.publish(record_id="b"), tibro.publish(origin=factories.TIBRO))
    assert store.record_versions(factories.LEKSAND, ["a", "b", "c"]) == {"a": 2, "b": 1}
    assert store.record_versions(factories.LEKSAND, []) == {}

    state = store.prefetch(
        [factories.LEKSAND, "0180"], [(factories.LEKSAND, "a"), (factories.LEKSAND, "zz")]
    )
    assert state.head(factories.LEKSAND) == store.head(factories.LEKSAND)
    assert state.head("0180") is None
    assert state.head(factories.TIBRO) == store.head(factories.TIBRO)  # not prefetched: queried
    assert state.record_version(factories.LEKSAND, "a") == 2
    assert state.record_version(factories.LEKSAND, "zz") is None
    assert state.record_version(factories.LEKSAND, "b") == 1
    assert state.entry_hash(factories.LEKSAND, 1) == store.entry_hash(factories.LEKSAND, 1)


def test_tombstones_leave_listing_but_keep_history(
    store: Store, leksand: factories.FeedWriter
) -> None:
    first = leksand.publish(record_id="uc-1")
    append(store, first, leksand.publish(record_id="uc-2"))
    append(store, leksand.append(factories.make_tombstone(parse_signed(first).record)))
    assert [r.record_id for r in store.list_records()] == ["uc-2"]
    everything = store.list_records(include_tombstoned=True)
    assert [(r.record_id, r.tombstone) for r in everything] == [("uc-1", True), ("uc-2", False)]
    assert store.search("äldreomsorgens") and all(
        h.record_id == "uc-2" for h in store.search("äldreomsorgens")
    )
    assert len(store.feed_entries(factories.LEKSAND)) == 3


def test_list_filters(
    store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter
) -> None:
    append(
        store,
        leksand.publish(record_id="uc-1", visibility=records_pb2.VISIBILITY_MEMBERS),
        leksand.publish(
            record_id="uc-2",
            status=records_pb2.USE_CASE_STATUS_PRODUCTION,
            service_area=records_pb2.SERVICE_AREA_SCHOOL,
        ),
        leksand.publish("lesson", record_id="le-1", visibility=records_pb2.VISIBILITY_DRAFT),
        tibro.publish("solution", origin=factories.TIBRO, record_id="so-1"),
    )

    def ids(**kwargs: object) -> list[str]:
        return [r.record_id for r in store.list_records(**kwargs)]  # type: ignore[arg-type]

    assert ids() == ["so-1", "le-1", "uc-2", "uc-1"]  # newest change first
    assert ids(kinds=[records_pb2.RECORD_KIND_USE_CASE]) == ["uc-2", "uc-1"]
    assert ids(origins=[factories.TIBRO]) == ["so-1"]
    assert ids(service_areas=[records_pb2.SERVICE_AREA_SCHOOL]) == ["uc-2"]
    assert ids(statuses=[records_pb2.USE_CASE_STATUS_PRODUCTION]) == ["uc-2"]
    assert ids(include_drafts=False) == ["so-1", "uc-2", "uc-1"]
    assert ids(member=False, include_drafts=False) == ["so-1", "uc-2"]
    assert ids(limit=2) == ["so-1", "le-1"]
    assert ids(limit=2, offset=2) == ["uc-2", "uc-1"]
