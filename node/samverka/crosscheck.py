"""Cross-checking feed heads with a second source: what a relay can still hide.

Signatures and hash chains (:mod:`samverka.verify`) leave a relaying hub no way to
forge, alter or reorder an entry, or to drop one from the middle of a feed, without
the receiver refusing at that very entry (origin and sequence named). What they cannot
show is a feed's *end*: a hub that withholds an origin's newest entries, or stops
relaying an origin at all, hands out a valid, shorter prefix, and nothing in that
prefix is wrong.

A receiver notices only by comparing with a source that holds the feed on its own:
best the origin's own node (its head is the feed's truth), else another member or the
hub's own announcement of its heads. :func:`compare_heads` does that comparison
(pure); :func:`cross_check` asks a peer's FeedService for its heads and compares.

What a mismatch means:

- ``behind``: the source holds entries of the origin after ours. They were withheld
  from us, or have not reached us yet (a push or sync in flight): ask again after a
  sync; a gap that stays is withholding.
- ``fork``: the source holds a different entry at a sequence we hold. Two histories
  of the feed exist: the origin signed both (a restored or copied node folder, or a
  stolen key), since nobody else can sign its entries.

A source *behind* us is not reported: it has not seen the newest entries yet, and
what it lacks cannot hide anything from us.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from samverka.client import FeedClient
from samverka.verify import FeedHead, FeedState


class MismatchKind(enum.StrEnum):
    BEHIND = "behind"
    FORK = "fork"


@dataclass(frozen=True, slots=True)
class HeadMismatch:
    """One origin whose feed a source holds differently from us."""

    origin: str
    kind: MismatchKind
    #: Our head's sequence (0: we hold none of the feed) and the source's.
    ours: int
    theirs: int
    #: Who was asked (an address or a name, for the message).
    source: str

    @property
    def sequence(self) -> int:
        """The first sequence in question: our first missing one, or the forked one."""
        return self.ours + 1 if self.kind is MismatchKind.BEHIND else self.theirs

    def __str__(self) -> str:
        if self.kind is MismatchKind.BEHIND:
            return (
                f"{self.origin}#{self.sequence}: {self.source} holds the feed up to "
                f"#{self.theirs}, we only up to #{self.ours}: entries "
                f"#{self.sequence}..#{self.theirs} were withheld from us or have not "
                "reached us yet"
            )
        return (
            f"{self.origin}#{self.theirs}: {self.source} holds a different entry at this "
            "sequence than we do: the feed has two histories"
        )


def compare_heads(
    state: FeedState, heads: Iterable[FeedHead], *, source: str
) -> list[HeadMismatch]:
    """What ``source``'s heads say we lack or hold differently, one item per origin."""
    found: list[HeadMismatch] = []
    for theirs in heads:
        ours = state.head(theirs.origin)
        our_sequence = ours.sequence if ours is not None else 0
        if theirs.sequence > our_sequence:
            found.append(
                HeadMismatch(
                    theirs.origin, MismatchKind.BEHIND, our_sequence, theirs.sequence, source
                )
            )
        elif state.entry_hash(theirs.origin, theirs.sequence) != theirs.entry_hash:
            found.append(
                HeadMismatch(
                    theirs.origin, MismatchKind.FORK, our_sequence, theirs.sequence, source
                )
            )
    return found


async def cross_check(
    state: FeedState,
    client: FeedClient,
    *,
    source: str,
    origins: Sequence[str] = (),
) -> list[HeadMismatch]:
    """Ask ``client``'s peer for its heads (of ``origins``, default all) and compare.

    Raises TransportError/PeerError when the peer cannot answer. ``state`` is read in
    a worker thread (a store's lookups are blocking).
    """
    heads = await client.get_heads(list(origins))
    return await asyncio.to_thread(compare_heads, state, heads.heads, source=source)
