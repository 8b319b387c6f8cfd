"""Observers: how a lower layer reports upward without importing what is above it.

Ingest, sync and the RPC interceptor say what happened by calling an :class:`Observers`
list of their own; :mod:`samverka.ops.metrics` adds its counters to those lists when a
process starts serving ``/metrics``. Without observers a report costs one empty loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Observers(Generic[P]):
    """Callables told of each event, in the order they were added (each at most once)."""

    __slots__ = ("_callbacks",)

    def __init__(self) -> None:
        self._callbacks: tuple[Callable[P, None], ...] = ()

    def add(self, callback: Callable[P, None]) -> None:
        """Tell ``callback`` of every later event (adding it again changes nothing)."""
        if callback not in self._callbacks:
            # A new tuple, not a mutated list: events on other threads never see it half-made.
            self._callbacks = (*self._callbacks, callback)

    def remove(self, callback: Callable[P, None]) -> None:
        self._callbacks = tuple(c for c in self._callbacks if c != callback)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for callback in self._callbacks:
            callback(*args, **kwargs)
