"""Selective sync's pure parts: the ``[sync]`` section, the filter, what goes on the wire,
and when a widened filter reads the hub's log again (the e2e flow is in
tests/hub/test_selective_sync_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import MagicMock

import factories
import pytest
from samverka.config import CONFIG_FILE, SyncSection, load_config, render_config
from samverka.errors import ConfigError
from samverka.protocol.entries import parse_signed
from samverka.protocol.erasure import HeldEntry, build_erasure
from samverka.protocol.signing import SigningKey
from samverka.protocol.verify import KeyRing
from samverka.replication.selective import FILTER_FILE, SelectiveFeed, SyncFilter, remember
from samverka.v1 import feed_pb2, feed_service_pb2
from samverka.v1 import records_pb2 as R


def section(**words: tuple[str, ...] | str) -> SyncFilter:
    return SyncFilter.from_section(SyncSection(**words))  # type: ignore[arg-type]


def test_the_sync_section_reads_lists_swedish_words_and_the_environment(tmp_path: Path) -> None:
    text = render_config("2029") + '\n[sync]\nareas = ["äldreomsorg", "IT"]\nkinds = ["lösning"]\n'
    (tmp_path / CONFIG_FILE).write_text(text, encoding="utf-8")
    config = load_config(tmp_path, env={})
    assert config.sync.areas == ("äldreomsorg", "IT") and config.sync.kinds == ("lösning",)
    chosen = SyncFilter.from_section(config.sync)
    assert chosen.areas == {R.SERVICE_AREA_ELDERLY_CARE, R.SERVICE_AREA_IT}
    assert chosen.kinds == {R.RECORD_KIND_SOLUTION}
    env = {"SAMVERKA_SYNC_ORIGINS": "1472, 2026", "SAMVERKA_SYNC_AREAS": ""}
    overridden = load_config(tmp_path, env=env).sync
    assert overridden.origins == ("1472", "2026") and overridden.areas == ()
    assert SyncSection() == load_config(_plain(tmp_path), env={}).sync


def _plain(tmp_path: Path) -> Path:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / CONFIG_FILE).write_text(render_config("2029"), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("words", "says"),
    [
        ({"origins": ("99",)}, "is not a kommunkod"),
        ({"kinds": ("dikt",)}, "[sync] kinds"),
        ({"areas": ("rymden",)}, "[sync] areas"),
        ({"areas": 7}, "must be a list of words"),
    ],
)
def test_bad_sync_sections_are_named(words: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        SyncSection(**words)  # type: ignore[arg-type]
    assert says in str(caught.value)


def test_only_origins_go_on_the_wire_with_the_nodes_own() -> None:
    chosen = section(origins=("1472",), areas=("skola",))
    wire = chosen.wire(None, "2026")
    assert list(wire.origins) == ["0000", "1472", "2026"]  # the hub's: for its erasures
    assert not (wire.kinds or wire.service_areas)  # a content filter would break chains
    gap_fill = feed_service_pb2.EntryFilter(origins=["2029"])
    assert chosen.wire(gap_fill, "2026") is gap_fill  # a gap fill asks for its origin
    assert list(section(areas=("skola",)).wire(None, "2026").origins) == []


def test_a_record_is_taken_when_it_matches_kind_and_area() -> None:
    writer = factories.FeedWriter("2029")
    elderly_uc = parse_signed(writer.publish("use_case", record_id="a"))
    school_uc = parse_signed(
        writer.publish("use_case", record_id="b", service_area=R.SERVICE_AREA_SCHOOL)
    )
    adoption = parse_signed(writer.publish("adoption"))  # names no area
    chosen = section(areas=("äldreomsorg",))
    assert chosen.takes(elderly_uc) and not chosen.takes(school_uc) and chosen.takes(adoption)
    solutions = section(kinds=("lösning",))
    assert not solutions.takes(elderly_uc) and not solutions.takes(adoption)


def test_every_erasure_is_taken_and_the_hubs_other_entries_only_when_chosen() -> None:
    hub = factories.FeedWriter("0000")
    uc = factories.FeedWriter("2029").publish("use_case", record_id="a")
    erased = build_erasure(
        eraser="0000", origin="2029", record_id="a",
        entries=[HeldEntry(1, parse_signed(uc).hash, R.VISIBILITY_PUBLIC)],
        reason=1, request_ref="KS 1", now_ms=factories.T0_MS,
    )  # fmt: skip
    erasure = parse_signed(hub.append(erased))
    advice = parse_signed(hub.publish("recommendation", record_id="r"))
    for chosen in (section(kinds=("lösning",)), section(origins=("2029",), areas=("skola",))):
        assert chosen.takes(erasure)
    assert not section(origins=("2029",)).takes(advice)
    assert section(origins=("2029", "0000")).takes(advice)


def test_a_filter_is_within_another_when_it_takes_nothing_more() -> None:
    everything = SyncFilter()
    elderly = section(areas=("äldreomsorg",))
    elderly_uc = section(areas=("äldreomsorg",), kinds=("användningsfall",))
    tibro = section(origins=("1472",))
    assert elderly.within(everything) and elderly_uc.within(elderly)
    assert not elderly.within(elderly_uc)  # takes lessons the other left out
    assert not everything.within(elderly)
    assert not tibro.within(elderly_uc) and not elderly_uc.within(tibro)
    assert section(areas=("skola", "it")).within(section(areas=("it", "skola", "hr")))


def test_a_wider_filter_reads_the_hubs_log_again(tmp_path: Path) -> None:
    elderly = section(areas=("äldreomsorg",))
    assert remember(tmp_path, elderly, cursor=50) is False  # narrower than the full syncs
    saved = json.loads((tmp_path / FILTER_FILE).read_text(encoding="utf-8"))
    assert saved == {"origins": [], "kinds": [], "areas": ["elderly-care"]}
    assert remember(tmp_path, elderly, cursor=60) is False
    assert remember(tmp_path, SyncFilter(), cursor=70) is True  # --all: fill in
    assert remember(tmp_path, SyncFilter(), cursor=0) is False
    (tmp_path / FILTER_FILE).write_text("{not json", encoding="utf-8")
    assert remember(tmp_path, elderly, cursor=5) is True  # unreadable: read again, safe


def test_what_is_left_out_becomes_a_verified_stand_in() -> None:
    leksand, tibro, gagnef = (factories.FeedWriter(c) for c in ("2029", "1472", "2026"))
    keys = KeyRing([w.trusted_key() for w in (leksand, tibro, gagnef)])
    signed = [
        leksand.publish("use_case", record_id="elderly"),  # matches
        leksand.publish("use_case", record_id="school", service_area=R.SERVICE_AREA_SCHOOL),
        leksand.publish("use_case", record_id="held", service_area=R.SERVICE_AREA_SCHOOL),
        gagnef.publish("use_case", record_id="own", service_area=R.SERVICE_AREA_SCHOOL),
        leksand.publish("use_case", record_id="elderly", service_area=R.SERVICE_AREA_SCHOOL),
        tibro.build(factories.make_use_case(record_id="forged", origin="1472",
                    service_area=R.SERVICE_AREA_SCHOOL), key=SigningKey.generate()),
    ]  # fmt: skip
    entries = [feed_pb2.LogEntry(position=i + 1, signed=s) for i, s in enumerate(signed)]
    feed = SelectiveFeed(
        MagicMock(),  # _cut never calls the peer
        sync_filter=section(areas=("äldreomsorg",)),
        own_origin="2026",
        keys=lambda: keys,
        held=lambda origin, ids: [i for i in ids if (origin, i) == ("2029", "held")],
    )
    out = feed._cut(entries)
    cut = [i for i, e in enumerate(out) if e.HasField("redacted")]
    # Only "school" is left out: "held" is a record the node holds, "own" is its own,
    # version 2 of "elderly" follows version 1 taken before, and the forged entry goes
    # on whole for ingest to refuse with the reason.
    assert cut == [1]
    stand_in = out[1].redacted
    assert (stand_in.origin, stand_in.sequence) == ("2029", 2)
    assert stand_in.entry_hash == parse_signed(signed[1]).hash and out[1].position == 2
    assert feed.left_out.as_json() == {
        "stand_ins": 1,
        "by_kind": {"use-case": 1},
        "by_origin": {"2029": 1},
        "not_read": 0,
    }
