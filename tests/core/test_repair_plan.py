"""Who a repair fetches from (samverka.replication.repair.plan_repairs, pure): the origin's
own node first, then peers by head; never the hub, never our own feed, never a fork.
Against real processes: tests/attacks/test_crosscheck.py (a withheld tail repaired)."""

from __future__ import annotations

import hashlib

from samverka.protocol.verify import FeedHead, StandIn
from samverka.replication.crosscheck import Answer, Source, SourceKind, judge
from samverka.replication.repair import Repair, plan_repairs

MORA, ORSA = "2062", "2034"
HUB = Source(SourceKind.HUB, "hub.example:7443", "the hub")
MORA_NODE = Source(SourceKind.ORIGIN, "mora.example:7443", "Mora's node", MORA)
ORSA_NODE = Source(SourceKind.ORIGIN, "orsa.example:7443", "Orsa's node", ORSA)

PEER = Source(SourceKind.PEER, "peer.example:7443", "Leksand's node", "2029")
OWN = "2029"


def digest(origin: str, sequence: int, history: str = "") -> bytes:
    return hashlib.sha256(f"{origin}#{sequence}{history}".encode()).digest()


def heads(*pairs: tuple[str, int], history: str = "") -> tuple[FeedHead, ...]:
    return tuple(FeedHead(o, n, digest(o, n, history)) for o, n in pairs)


class held:
    """A receiver holding each origin's feed up to a sequence (``k2062=5``)."""

    def __init__(self, **feeds: int) -> None:
        self.heads = {key.removeprefix("k"): n for key, n in feeds.items()}

    def head(self, origin: str) -> FeedHead | None:
        n = self.heads.get(origin, 0)
        return FeedHead(origin, n, digest(origin, n)) if n else None

    def entry_hash(self, origin: str, sequence: int) -> bytes | None:
        return digest(origin, sequence) if 1 <= sequence <= self.heads.get(origin, 0) else None

    def record_version(self, origin: str, record_id: str) -> int | None:
        return None

    def stand_in(self, origin: str, sequence: int) -> StandIn | None:
        return None


def test_the_origins_node_comes_first_then_peers_and_never_the_hub() -> None:
    answers = [
        Answer(HUB, heads((MORA, 6), (ORSA, 4))),  # the hub announces Mora #6, serves #5
        Answer(PEER, heads((MORA, 8), (ORSA, 4))),
        Answer(MORA_NODE, heads((MORA, 7))),
        Answer(ORSA_NODE, heads((ORSA, 4))),
    ]
    check = judge(held(k2062=5, k2034=4), answers, own=OWN)
    [plan] = plan_repairs(check)
    assert (plan.origin, plan.ours, plan.theirs, plan.hub_announced) == (MORA, 5, 8, True)
    assert [(s.kind, t) for s, t in plan.sources] == [
        (SourceKind.ORIGIN, 7),
        (SourceKind.PEER, 8),
    ]


def test_nothing_to_repair_when_only_the_hub_is_ahead_or_for_our_own_feed_or_a_fork() -> None:
    answers = [
        Answer(HUB, heads((MORA, 6))),
        Answer(PEER, heads((OWN, 9))),  # ahead of us on our own feed: a restored node
        Answer(ORSA_NODE, heads((ORSA, 4), history="another")),  # a fork
    ]
    check = judge(held(k2062=5, k2029=3, k2034=4), answers, own=OWN)
    assert plan_repairs(check) == []


def test_a_repair_says_what_it_did_in_swedish() -> None:
    done = Repair(MORA, 5, 8, 8, source=MORA_NODE, accepted=3)
    assert done.complete and done.describe().startswith(
        "reparerat Moras flöde (2062) #6..#8: 3 poster hämtade från Moras nod (mora.example:7443)"
    )
    assert done.as_json()["source"] == {
        "kind": "origin",
        "kommunkod": MORA,
        "address": "mora.example:7443",
    }
    failed = Repair(ORSA, 4, 4, 6, failures=["Orsas nod (orsa.example:7443): no answer"])
    assert not failed.complete
    assert failed.describe() == (
        "kunde inte reparera Orsas flöde (2034): vi har #4, andra anger #6 "
        "(Orsas nod (orsa.example:7443): no answer)"
    )
