"""The pure parts of ``samverka crosscheck`` (``samverka.replication.crosscheck``): who is asked
(:func:`plan_sources`) and what the answers mean (:func:`judge`), with heads made up
here. The same against real processes over mutual TLS:
tests/attacks/test_crosscheck.py."""

from __future__ import annotations

import hashlib

import pytest
from samverka.protocol.directory import ACTIVE, REVOKED, build_directory, hub_member
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.signing import SigningKey
from samverka.protocol.verify import FeedHead, StandIn
from samverka.replication.crosscheck import (
    Agreement,
    Answer,
    MismatchKind,
    Source,
    SourceKind,
    judge,
    plan_sources,
)
from samverka.v1 import directory_pb2

MORA, ORSA, LEKSAND, TIBRO = "2062", "2034", "2029", "1472"
HUB = Source(SourceKind.HUB, "hub.example:7443", "the hub")
MORA_NODE = Source(SourceKind.ORIGIN, "mora.example:7443", "Mora's node", MORA)
ORSA_NODE = Source(SourceKind.ORIGIN, "orsa.example:7443", "Orsa's node", ORSA)


def digest(origin: str, sequence: int, history: str = "") -> bytes:
    return hashlib.sha256(f"{origin}#{sequence}{history}".encode()).digest()


class Held:
    """A receiver's feeds: origin → head sequence (entries hashed by :func:`digest`)."""

    def __init__(self, **heads: int) -> None:
        self.heads = {origin.removeprefix("k"): n for origin, n in heads.items()}

    def head(self, origin: str) -> FeedHead | None:
        n = self.heads.get(origin, 0)
        return FeedHead(origin, n, digest(origin, n)) if n else None

    def entry_hash(self, origin: str, sequence: int) -> bytes | None:
        return digest(origin, sequence) if 1 <= sequence <= self.heads.get(origin, 0) else None

    def record_version(self, origin: str, record_id: str) -> int | None:
        return None

    def stand_in(self, origin: str, sequence: int) -> StandIn | None:
        return None


def heads(*pairs: tuple[str, int], history: str = "") -> tuple[FeedHead, ...]:
    return tuple(FeedHead(o, n, digest(o, n, history)) for o, n in pairs)


def test_an_honest_federation_agrees_and_the_origins_node_confirms() -> None:
    held = Held(k2062=8, k1472=3)
    result = judge(
        held,
        [Answer(HUB, heads((MORA, 8), (TIBRO, 3))), Answer(MORA_NODE, heads((MORA, 8)))],
        own=LEKSAND,
        held=[MORA, TIBRO],
    )
    assert [o.origin for o in result.origins] == [TIBRO, MORA]
    assert all(o.status is Agreement.AGREE for o in result.origins)
    assert result.mismatched == [] and result.failed_sources == []
    tibro, mora = result.origins
    assert mora.confirmed_by_origin and not tibro.confirmed_by_origin
    assert mora.describe() == "we hold #8, in agreement with the hub and Mora's node"
    assert mora.hint() == ""


def test_a_tail_withheld_consistently_is_caught_by_the_origins_node() -> None:
    """The hub says #5 and serves #5; Mora's node holds #8."""
    result = judge(
        Held(k2062=5),
        [Answer(HUB, heads((MORA, 5))), Answer(MORA_NODE, heads((MORA, 8)))],
        own=LEKSAND,
        held=[MORA],
    )
    [mora] = result.mismatched
    assert mora.status is Agreement.BEHIND
    [m] = mora.mismatches
    assert (m.origin, m.kind, m.ours, m.theirs, m.sequence) == (
        MORA, MismatchKind.BEHIND, 5, 8, 6
    )  # fmt: skip
    by_source = {v.source.label: (v.status, v.theirs) for v in mora.verdicts}
    assert by_source == {"the hub": (Agreement.AGREE, 5), "Mora's node": (Agreement.BEHIND, 8)}
    assert mora.describe().startswith("2062#6: Mora's node holds the feed up to #8")
    hint = mora.hint()
    assert "the hub does not show #6..#8" in hint and "not have pushed" in hint
    assert "withholds" in hint and "samverka sync" in hint


def test_a_hub_that_announces_more_than_it_served_says_run_sync() -> None:
    result = judge(Held(k2062=5), [Answer(HUB, heads((MORA, 7)))], own=LEKSAND, held=[MORA])
    [mora] = result.mismatched
    assert mora.hint().startswith("the hub announces #6..#7: run `samverka sync`")


def test_another_entry_at_a_held_sequence_is_a_fork() -> None:
    forked = heads((MORA, 3), history="other")
    result = judge(Held(k2062=5), [Answer(MORA_NODE, forked)], own=LEKSAND, held=[MORA])
    [mora] = result.mismatched
    assert mora.status is Agreement.FORK
    assert mora.mismatches[0].sequence == 3
    assert "two histories" in mora.describe() and "stolen key" in mora.hint()
    # A fork outranks a source that is merely ahead.
    both = judge(
        Held(k2062=5),
        [Answer(HUB, heads((MORA, 9))), Answer(MORA_NODE, forked)],
        own=LEKSAND,
        held=[MORA],
    )
    assert both.origins[0].status is Agreement.FORK and len(both.origins[0].mismatches) == 2


def test_our_own_feed_ahead_at_the_hub_is_a_restored_backup_behind_is_a_pending_push() -> None:
    ahead = judge(Held(k2029=4), [Answer(HUB, heads((LEKSAND, 6)))], own=LEKSAND, held=[LEKSAND])
    [own] = ahead.mismatched
    assert own.own and "older backup" in own.hint() and "do not publish" in own.hint()
    behind = judge(Held(k2029=4), [Answer(HUB, heads((LEKSAND, 2)))], own=LEKSAND, held=[LEKSAND])
    [own] = behind.origins
    assert own.status is Agreement.AGREE and own.confirmed_by_origin
    assert "the hub holds #2: not pushed yet" in own.describe()
    forked = judge(
        Held(k2029=4), [Answer(HUB, heads((LEKSAND, 4), history="x"))], own=LEKSAND
    ).origins[0]
    assert forked.status is Agreement.FORK and "our own feed has two histories" in forked.hint()


def test_an_unreachable_origin_node_is_noted_not_failed() -> None:
    result = judge(
        Held(k2062=8),
        [Answer(HUB, heads((MORA, 8))), Answer(MORA_NODE, None, "UNAVAILABLE: refused")],
        own=LEKSAND,
        held=[MORA],
    )
    [mora] = result.origins
    assert mora.status is Agreement.AGREE and not mora.confirmed_by_origin
    assert result.failed_sources == [] and [a.source for a in result.unreachable_nodes] == [
        MORA_NODE
    ]
    assert "Mora's node (mora.example:7443) not reachable: UNAVAILABLE" in mora.describe()
    assert mora.as_json()["sources"][1]["status"] == "unreachable"


def test_an_unreachable_hub_is_a_transport_failure_and_leaves_origins_unanswered() -> None:
    result = judge(
        Held(k2062=8, k1472=3),
        [Answer(HUB, None, "UNAVAILABLE"), Answer(MORA_NODE, heads((MORA, 8)))],
        own=LEKSAND,
        held=[MORA, TIBRO],
    )
    assert [a.source for a in result.failed_sources] == [HUB]
    status = {o.origin: o.status for o in result.origins}
    assert status == {MORA: Agreement.AGREE, TIBRO: Agreement.UNREACHABLE}
    assert result.count(Agreement.UNREACHABLE) == 1


def test_an_origins_node_speaks_only_for_its_own_feed_and_scope_limits_origins() -> None:
    """Orsa's node's mirror of Mora is not Mora's truth; --origin narrows the check."""
    answers = [
        Answer(HUB, heads((MORA, 5), (ORSA, 2), (TIBRO, 1))),
        Answer(ORSA_NODE, heads((ORSA, 2), (MORA, 9))),
    ]
    everything = judge(Held(k2062=5, k2034=2, k1472=1), answers, own=LEKSAND)
    assert everything.mismatched == []
    assert [o.origin for o in everything.origins] == [TIBRO, ORSA, MORA]
    scoped = judge(Held(k2062=5, k2034=2), answers, own=LEKSAND, scope=[ORSA])
    assert [o.origin for o in scoped.origins] == [ORSA]
    # An origin nobody holds or announces, asked for by name: nothing to disagree on.
    nobody = judge(Held(), [Answer(HUB, ())], own=LEKSAND, scope=[MORA]).origins[0]
    assert (nobody.status, nobody.ours) == (Agreement.AGREE, 0)
    assert nobody.describe() == "we hold none of the feed, in agreement with the hub"


def member(code: str, address: str = "", status: int = ACTIVE) -> directory_pb2.Member:
    key = SigningKey.generate().public
    return directory_pb2.Member(
        kommunkod=code,
        name=code,
        status=status,  # type: ignore[arg-type]
        revoked_at_ms=2 if status == REVOKED else 0,
        address=address,
        keys=[directory_pb2.MemberKey(public_key=key.raw, key_id=key.key_id)],
    )


@pytest.fixture
def directory() -> object:
    hub_key = SigningKey.generate()
    hub = hub_member(hub_key.public)
    hub.address = "hub.example:7443"
    members = [
        hub,
        member(LEKSAND, "leksand.example:7443"),  # ours
        member(MORA, "mora.example:7443"),
        member(ORSA, "orsa.example:7443"),
        member(TIBRO),  # pushes only: no address
        member("2031", "rattvik.example:7443", status=REVOKED),
    ]
    return build_directory(hub_key, version=3, members=members, issued_at_ms=1)


def test_plan_asks_the_hub_each_reachable_origin_node_and_the_peers(directory: object) -> None:
    plan = plan_sources(
        directory,  # type: ignore[arg-type]
        hub_address="hub.example:7443",
        own=LEKSAND,
        peers=["gagnef.example:7443", "mora.example:7443", "gagnef.example:7443"],
    )
    assert [(s.kind, s.address, s.origin) for s in plan] == [
        (SourceKind.HUB, "hub.example:7443", ""),
        (SourceKind.ORIGIN, "orsa.example:7443", ORSA),  # by kommunkod
        (SourceKind.ORIGIN, "mora.example:7443", MORA),
        (SourceKind.PEER, "gagnef.example:7443", ""),
    ]
    assert plan[2].label == "Mora's node"
    scoped = plan_sources(
        directory,  # type: ignore[arg-type]
        hub_address="hub.example:7443",
        own=LEKSAND,
        scope=[ORSA, HUB_ORIGIN],
    )
    assert [s.address for s in scoped] == ["hub.example:7443", "orsa.example:7443"]
    # Without a directory held: the hub alone.
    alone = plan_sources(None, hub_address="hub.example:7443", own=LEKSAND)
    assert [s.kind for s in alone] == [SourceKind.HUB]
