"""Reading the log for others: redaction by visibility, filters and the cursor."""

from __future__ import annotations

import factories
import pytest
from samverka.protocol.entries import parse_signed
from samverka.store.store import Store
from samverka.v1 import feed_pb2, feed_service_pb2, records_pb2

PUBLIC = records_pb2.VISIBILITY_PUBLIC
MEMBERS = records_pb2.VISIBILITY_MEMBERS
DRAFT = records_pb2.VISIBILITY_DRAFT


def kinds_of(entries: list[feed_pb2.LogEntry]) -> list[str]:
    return [str(e.WhichOneof("item")) for e in entries]


@pytest.fixture
def mixed(store: Store, leksand: factories.FeedWriter) -> list[feed_pb2.SignedEntry]:
    """Leksand's feed: public, members-only, draft, public (positions 1-4)."""
    entries = [
        leksand.publish(record_id="uc-pub", visibility=PUBLIC),
        leksand.publish(record_id="uc-mem", visibility=MEMBERS),
        leksand.publish(record_id="uc-draft", visibility=DRAFT),
        leksand.publish(record_id="uc-pub2", visibility=PUBLIC),
    ]
    store.append([parse_signed(e) for e in entries])
    return entries


def test_drafts_are_redacted_unless_asked_for(
    store: Store, mixed: list[feed_pb2.SignedEntry]
) -> None:
    assert kinds_of(store.read_log(0, 10).entries) == ["signed", "signed", "redacted", "signed"]
    local = store.read_log(0, 10, include_drafts=True).entries
    assert kinds_of(local) == ["signed"] * 4
    hidden = store.read_log(0, 10).entries[2].redacted
    draft = parse_signed(mixed[2])
    assert (hidden.origin, hidden.sequence, hidden.entry_hash) == ("2029", 3, draft.hash)


def test_members_records_are_redacted_for_non_members(
    store: Store, mixed: list[feed_pb2.SignedEntry]
) -> None:
    public = store.read_log(0, 10, member=False).entries
    assert kinds_of(public) == ["signed", "redacted", "redacted", "signed"]
    # the chain stays verifiable: the entry after a redaction names its hash
    after = feed_pb2.Entry.FromString(public[3].signed.entry)
    assert after.previous_hash == public[2].redacted.entry_hash


def test_feed_items_redact_drafts_in_sequence_order(
    store: Store, mixed: list[feed_pb2.SignedEntry], tibro: factories.FeedWriter
) -> None:
    store.append([parse_signed(tibro.publish(origin=factories.TIBRO))])
    items = store.feed_items(factories.LEKSAND)
    assert items[0].signed.entry == mixed[0].entry
    assert kinds_of(items) == ["signed", "signed", "redacted", "signed"]
    assert [i.position for i in items] == [1, 2, 3, 4]
    assert kinds_of(store.feed_items(factories.LEKSAND, member=False)) == [
        "signed",
        "redacted",
        "redacted",
        "signed",
    ]
    assert kinds_of(store.feed_items(factories.LEKSAND, include_drafts=True)) == ["signed"] * 4
    tail = store.feed_items(factories.LEKSAND, after_sequence=1, limit=2)
    assert [i.position for i in tail] == [2, 3]
    assert store.feed_items(factories.LEKSAND, after_sequence=4) == []


def test_origin_filter_keeps_the_chain_whole(
    store: Store, mixed: list[feed_pb2.SignedEntry], tibro: factories.FeedWriter
) -> None:
    store.append([parse_signed(tibro.publish(origin=factories.TIBRO))])  # position 5
    only = feed_service_pb2.EntryFilter(origins=[factories.LEKSAND])
    page = store.read_log(0, 10, entry_filter=only, member=False)
    assert [e.position for e in page.entries] == [1, 2, 3, 4]
    assert kinds_of(page.entries) == ["signed", "redacted", "redacted", "signed"]
    assert page.next_position == 5  # scanned to the end, Tibro's entry filtered out
    tibro_only = feed_service_pb2.EntryFilter(origins=[factories.TIBRO])
    assert [e.position for e in store.read_log(0, 10, entry_filter=tibro_only).entries] == [5]


def test_content_filters_return_only_what_the_caller_may_see(
    store: Store, mixed: list[feed_pb2.SignedEntry]
) -> None:
    use_cases = feed_service_pb2.EntryFilter(kinds=[records_pb2.RECORD_KIND_USE_CASE])
    member_page = store.read_log(0, 10, entry_filter=use_cases)
    assert [e.position for e in member_page.entries] == [1, 2, 4]
    assert kinds_of(member_page.entries) == ["signed"] * 3
    public_page = store.read_log(0, 10, entry_filter=use_cases, member=False)
    assert [e.position for e in public_page.entries] == [1, 4]
    assert public_page.next_position == 4


@pytest.fixture
def varied(store: Store, leksand: factories.FeedWriter) -> None:
    """Different kinds, areas, tags and times (leksand's clock steps 1 s per entry)."""
    leksand.publish(
        record_id="uc-1",
        service_area=records_pb2.SERVICE_AREA_SCHOOL,
        tags=["Chatbot", "skola"],
    )
    leksand.publish("lesson", record_id="le-1", tags=["chatbot"])
    leksand.publish("solution", record_id="so-1", service_area=records_pb2.SERVICE_AREA_IT)
    leksand.publish(record_id="uc-2", tags=["Översättning"])
    store.append([parse_signed(e) for e in leksand.entries])


def positions(store: Store, after: int = 0, limit: int = 50, **filter_args: object) -> list[int]:
    f = feed_service_pb2.EntryFilter(**filter_args)  # type: ignore[arg-type]
    return [e.position for e in store.read_log(after, limit, entry_filter=f).entries]


@pytest.mark.usefixtures("varied")
def test_filter_by_kind_area_tag_and_time(store: Store) -> None:
    assert positions(store, kinds=[records_pb2.RECORD_KIND_LESSON]) == [2]
    assert positions(
        store, kinds=[records_pb2.RECORD_KIND_SOLUTION, records_pb2.RECORD_KIND_USE_CASE]
    ) == [1, 3, 4]
    assert positions(store, service_areas=[records_pb2.SERVICE_AREA_SCHOOL]) == [1]
    # the factory's default area for use cases is elderly care
    assert positions(store, service_areas=[records_pb2.SERVICE_AREA_ELDERLY_CARE]) == [4]
    # tags match case-insensitively, å/ä/ö included
    assert positions(store, tags=["CHATBOT"]) == [1, 2]
    assert positions(store, tags=["översättning"]) == [4]
    assert positions(store, tags=["oversattning"]) == []
    assert positions(store, tags=["skola", "chatbot"]) == [1, 2]
    t0 = factories.T0_MS
    assert positions(store, since_ms=t0 + 1_000) == [2, 3, 4]
    assert positions(store, until_ms=t0 + 2_000) == [1, 2]  # until is exclusive
    assert positions(store, since_ms=t0 + 1_000, until_ms=t0 + 3_000) == [2, 3]
    assert positions(
        store, tags=["chatbot"], kinds=[records_pb2.RECORD_KIND_USE_CASE], since_ms=t0
    ) == [1]
    assert positions(store, origins=[factories.TIBRO]) == []


@pytest.mark.usefixtures("varied")
def test_next_position_is_the_last_scanned_even_when_filtered_out(store: Store) -> None:
    lessons = feed_service_pb2.EntryFilter(kinds=[records_pb2.RECORD_KIND_LESSON])
    page = store.read_log(0, 1, entry_filter=lessons)
    assert [e.position for e in page.entries] == [2]
    assert page.next_position == 2  # a full page: resume after its last entry
    page = store.read_log(2, 1, entry_filter=lessons)
    assert page.entries == []
    assert page.next_position == 4 == page.log_position  # scanned 3 and 4, nothing matched


@pytest.mark.usefixtures("varied")
def test_a_filtered_read_scans_a_bounded_window(store: Store) -> None:
    lessons = feed_service_pb2.EntryFilter(kinds=[records_pb2.RECORD_KIND_SOLUTION])
    page = store.read_log(0, 1, entry_filter=lessons, max_scan=1)
    assert page.entries == []
    assert (page.next_position, page.log_position) == (1, 4)
    pages = []
    cursor = 0
    while cursor < store.log_position():
        page = store.read_log(cursor, 1, entry_filter=lessons, max_scan=1)
        pages += [e.position for e in page.entries]
        assert page.next_position > cursor
        cursor = page.next_position
    assert pages == [3]


def test_an_unfiltered_read_resumes_without_gap_or_duplicate(
    store: Store, leksand: factories.FeedWriter
) -> None:
    for i in range(23):
        leksand.publish(record_id=f"uc-{i}")
    store.append([parse_signed(e) for e in leksand.entries])
    seen: list[int] = []
    cursor = 0
    while True:
        page = store.read_log(cursor, 5)
        if not page.entries:
            break
        seen += [e.position for e in page.entries]
        cursor = page.next_position
    assert seen == list(range(1, 24))
    assert store.read_log(3, 0).next_position == 3


def test_cursors(store: Store) -> None:
    assert store.get_cursor("hub.example:7443") == 0
    store.set_cursor("hub.example:7443", 17)
    store.set_cursor("other", 3)
    store.set_cursor("hub.example:7443", 42)
    assert store.get_cursor("hub.example:7443") == 42
    assert store.get_cursor("other") == 3
    store.set_cursor("other", 2**40)  # positions are 64-bit
    assert store.get_cursor("other") == 2**40
