"""Prometheus metrics of a node or hub process, and the HTTP endpoint that serves them.

Counted where things happen (metrics in prometheus-client's default registry, so every
part of a process adds to the same numbers), from the moment a process serves them
(:class:`MetricsEndpoint` starting calls :func:`start_counting`). A process without an
endpoint, e.g. a node with ``[metrics] listen`` empty (the default) or a CLI command,
counts nothing and never loads prometheus-client: about 2 MB of a serving node's
memory. What is counted:

- ``samverka_entries_ingested_total{source}``, ``samverka_entries_duplicate_total{source}``
  and ``samverka_entries_refused_total{reason,source}``: every batch through
  :func:`samverka.replication.ingest.ingest` (the one way in), observed by :func:`observe_ingest`;
  ``source`` is how the entries came (``sync``, ``push``, ``harvest``, ``bundle``, …);
- ``samverka_stand_ins_filled_total{source}``: held redacted stand-ins replaced by the
  signed entry behind them (an entry some source hid, recovered from another);
- ``samverka_ingest_duration_seconds{source}``: time per ingested batch;
- ``samverka_rpc_duration_seconds{method,code}`` (histogram) and
  ``samverka_rpc_stream_messages_sent_total{method}``: every RPC a server handles, by
  the full gRPC method name and the status code it ended with (observed by
  :class:`samverka.transport.server.interceptors.RpcInterceptor`, which also logs each call).

Read when Prometheus scrapes (:class:`ServerCollector`, registered while a server
runs; cheap indexed queries, so they are true across processes: entries the CLI
authored into the node's SQLite file count too):

- ``samverka_log_position``: the newest position of this server's log;
- ``samverka_published_entries``: the newest sequence of this server's own feed;
- ``samverka_feed_head_sequence{origin}`` and
  ``samverka_feed_newest_entry_age_seconds{origin}``: each held feed's head, and how
  long ago its newest entry was written (a feed that falls silent shows here);
- ``samverka_sync_lag_entries{peer,origin}``: at a node that syncs, the peer's head
  sequence (as the peer last reported it, see :func:`note_peer_heads`) minus ours;
- ``samverka_live_subscribers``: open Subscribe streams;
- ``samverka_store_size_bytes``: the SQLite file with its WAL, or the PostgreSQL
  database; ``samverka_store_up``: 0 when the store could not be read at scrape time;
- ``samverka_erasure_purge_pending``: 1 while erased content awaits its physical
  purge (the durable mark, samverka.store.purge); with the counters
  ``samverka_erasures_applied_total{by}`` (``own``/``council``) and
  ``samverka_erasure_purges_total{outcome}`` (``done``/``failed``);
- ``samverka_build_info{version}`` and the standard ``process_*`` metrics.

The endpoint (:class:`MetricsEndpoint`) is plain HTTP on ``[metrics] listen``: keep it on
loopback or a monitoring network. It is a server *resource*: it starts before the gRPC
ports open and stops after they close.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

import samverka
from samverka.membership.monitor import ENTRY_NOT_SIGNED, KEY_NOT_HELD, alarm_observers
from samverka.replication.ingest import ingest_observers
from samverka.replication.logstate import witness_observers
from samverka.replication.sync import peer_heads_observers
from samverka.retry import TaskState, task_observers
from samverka.store.db import sqlite_path
from samverka.store.purge import erasure_observers, purge_observers
from samverka.store.tables import feed_heads
from samverka.transport.server.interceptors import rpc_observers

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector, CollectorRegistry

    from samverka.protocol.verify import FeedHead
    from samverka.replication.ingest import IngestReport
    from samverka.store.logwatch import LogWatcher
    from samverka.store.store import Store
    from samverka.transport.server.app import NodeServer

log = logging.getLogger("samverka.ops.metrics")

# -- counted where it happens ---------------------------------------------------------

_INGEST_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)


class _Counted:
    """The metrics counted where things happen (made once, by :func:`start_counting`)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram, Info

        self.entries_ingested = Counter(
            "samverka_entries_ingested",
            "Entries verified and stored, by how they came.",
            ["source"],
        )
        self.entries_duplicate = Counter(
            "samverka_entries_duplicate",
            "Entries offered again that were already held (idempotent, not an error).",
            ["source"],
        )
        self.stand_ins_filled = Counter(
            "samverka_stand_ins_filled",
            "Held redacted stand-ins replaced by the signed entry behind them, by how it came.",
            ["source"],
        )
        self.entries_refused = Counter(
            "samverka_entries_refused",
            "Entries refused by verification, by reason and by how they came.",
            ["reason", "source"],
        )
        self.ingest_seconds = Histogram(
            "samverka_ingest_duration_seconds",
            "Time to verify and store one batch of entries.",
            ["source"],
            buckets=_INGEST_BUCKETS,
        )
        self.rpc_seconds = Histogram(
            "samverka_rpc_duration_seconds",
            "Server-side duration of RPCs by method and final status code (streams: whole stream).",
            ["method", "code"],
            buckets=_RPC_BUCKETS,
        )
        self.rpc_messages = Counter(
            "samverka_rpc_stream_messages_sent",
            "Messages sent on server streams (ReadEntries, Subscribe), by method.",
            ["method"],
        )
        self.task_up = Gauge(
            "samverka_task_up",
            "1 while a supervised background task does its job, 0 while it fails and retries.",
            ["task"],
        )
        self.task_failures = Gauge(
            "samverka_task_failures",
            "Failures in a row of a supervised background task (0 when it works).",
            ["task"],
        )
        self.witness_events = Counter(
            "samverka_witness_events",
            "The node as witness of the hub's log: checkpoints cosigned, accepted, refused "
            "(by reason) and split views found (by kind).",
            ["event", "reason"],
        )
        self.monitor_alarms = Counter(
            "samverka_monitor_alarms",
            "Alarms of the node as monitor of its own kommunkod in the hub's log: a key "
            "bound to it that it never held, an entry of its feed it never signed (by kind).",
            ["kind"],
        )
        for kind in (KEY_NOT_HELD, ENTRY_NOT_SIGNED):
            self.monitor_alarms.labels(kind)  # shown at 0 before any alarm
        self.erasures_applied = Counter(
            "samverka_erasures_applied",
            "Erasure entries applied to the store, by whose: own (a kommun's of its own "
            "feed) or council (the hub's, on a kommun's request).",
            ["by"],
        )
        self.erasure_purges = Counter(
            "samverka_erasure_purges",
            "Physical purges of erased content from the database files, by outcome "
            "(done, failed: tried again later).",
            ["outcome"],
        )
        for by in ("own", "council"):
            self.erasures_applied.labels(by)  # shown at 0 before any erasure
        for outcome in ("done", "failed"):
            self.erasure_purges.labels(outcome)
        self.build_info = Info("samverka_build", "The Samverka version of this process.")
        self.build_info.info({"version": samverka.__version__})


_counted: _Counted | None = None
_counted_lock = threading.Lock()


def start_counting() -> None:
    """Count from now on, in prometheus-client's default registry (idempotent).

    The metrics endpoint calls it when it starts; before, :func:`observe_ingest` and
    :func:`observe_rpc` count nothing.
    """
    global _counted
    with _counted_lock:
        if _counted is None:
            _counted = _Counted()
            ingest_observers.add(observe_ingest)
            rpc_observers.add(observe_rpc)
            peer_heads_observers.add(note_peer_heads)
            task_observers.add(observe_task)
            witness_observers.add(observe_witness)
            alarm_observers.add(observe_alarm)
            erasure_observers.add(observe_erasure)
            purge_observers.add(observe_purge)


def observe_ingest(report: IngestReport, seconds: float | None = None) -> None:
    """Count one ingested batch (an observer of :func:`samverka.replication.ingest.ingest`)."""
    source = report.source or "unspecified"
    counted = _counted
    if counted is not None:
        if report.accepted:
            counted.entries_ingested.labels(source).inc(report.accepted)
        if report.duplicates:
            counted.entries_duplicate.labels(source).inc(report.duplicates)
        if report.stand_ins_filled:
            counted.stand_ins_filled.labels(source).inc(report.stand_ins_filled)
        for reason, count in report.refused.items():
            counted.entries_refused.labels(reason.value, source).inc(count)
        if seconds is not None:
            counted.ingest_seconds.labels(source).observe(seconds)


def observe_task(state: TaskState) -> None:
    """Set samverka_task_up/_failures (an observer of :mod:`samverka.retry`)."""
    counted = _counted
    if counted is not None:
        counted.task_up.labels(state.name).set(1 if state.up else 0)
        counted.task_failures.labels(state.name).set(state.failures)


def observe_alarm(kind: str) -> None:
    """Count a monitor alarm (an observer of :mod:`samverka.membership.monitor`)."""
    counted = _counted
    if counted is not None:
        counted.monitor_alarms.labels(kind).inc()


def observe_erasure(by: str) -> None:
    """Count an erasure applied (an observer of :mod:`samverka.store.purge`)."""
    counted = _counted
    if counted is not None:
        counted.erasures_applied.labels(by).inc()


def observe_purge(outcome: str) -> None:
    """Count a purge done or failed (an observer of :mod:`samverka.store.purge`)."""
    counted = _counted
    if counted is not None:
        counted.erasure_purges.labels(outcome).inc()


def observe_witness(event: str, reason: str) -> None:
    """Count a witness event (an observer of :mod:`samverka.replication.logstate`)."""
    counted = _counted
    if counted is not None:
        counted.witness_events.labels(event, reason).inc()


def observe_rpc(method: str, code: str, seconds: float, messages: int = 0) -> None:
    """Count one finished RPC (an observer of the server interceptor)."""
    counted = _counted
    if counted is None:
        return
    counted.rpc_seconds.labels(method, code).observe(seconds)
    if messages:
        counted.rpc_messages.labels(method).inc(messages)


# -- sync lag ---------------------------------------------------------------------------

_peer_heads: dict[str, dict[str, int]] = {}
_peer_lock = threading.Lock()


def note_peer_heads(peer: str, heads: Iterable[FeedHead]) -> None:
    """Remember ``peer``'s head sequences (a sync calls this when it starts).

    ``samverka_sync_lag_entries{peer,origin}`` is then that head minus ours, read at
    scrape time: it falls as the sync stores entries, and shows how far behind this
    node was when the peer last reported its heads.
    """
    snapshot = {h.origin: h.sequence for h in heads}
    with _peer_lock:
        _peer_heads[peer] = snapshot


def peer_heads() -> dict[str, dict[str, int]]:
    with _peer_lock:
        return {peer: dict(heads) for peer, heads in _peer_heads.items()}


# -- read at scrape time ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _HeadRow:
    origin: str
    sequence: int
    timestamp_ms: int | None


class ServerCollector:
    """What a running server's store and watcher say, read when Prometheus scrapes.

    A prometheus-client collector (``describe`` and ``collect``; registries take any
    object that has them), written without its base class so that this module loads
    without prometheus-client.
    """

    def __init__(self, store: Store, own_origin: str, watcher: LogWatcher | None = None) -> None:
        self.store = store
        self.own_origin = own_origin
        self.watcher = watcher

    def describe(self) -> list[Any]:
        return []  # dynamic: do not let the registry collect() at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from prometheus_client.core import GaugeMetricFamily

        subscribers = GaugeMetricFamily(
            "samverka_live_subscribers", "Open Subscribe streams on this server."
        )
        subscribers.add_metric([], self.watcher.subscribers if self.watcher else 0)
        yield subscribers
        up = GaugeMetricFamily("samverka_store_up", "1 if the store answered this scrape.")
        try:
            position = self.store.log_position()
            heads = self._heads()
            size = store_size_bytes(self.store)
            pending = self.store.purge_pending()
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: cannot read the store: %s", exc, extra={"event": "metrics"})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _gauge("samverka_log_position", "Newest position of this server's log.", position)
        own = next((h.sequence for h in heads if h.origin == self.own_origin), 0)
        yield _gauge(
            "samverka_published_entries", "Newest sequence of this server's own feed.", own
        )
        if size is not None:
            yield _gauge("samverka_store_size_bytes", "Size of the database on disk.", size)
        yield _gauge(
            "samverka_erasure_purge_pending",
            "1 while erased content awaits its physical purge from the database files.",
            1 if pending else 0,
        )
        sequence = GaugeMetricFamily(
            "samverka_feed_head_sequence", "Newest sequence held of each feed.", labels=["origin"]
        )
        age = GaugeMetricFamily(
            "samverka_feed_newest_entry_age_seconds",
            "Seconds since the newest held entry of each feed was written.",
            labels=["origin"],
        )
        now = time.time()
        local = {}
        for head in heads:
            local[head.origin] = head.sequence
            sequence.add_metric([head.origin], head.sequence)
            if head.timestamp_ms:
                age.add_metric([head.origin], max(0.0, now - head.timestamp_ms / 1000))
        yield sequence
        yield age
        lag = GaugeMetricFamily(
            "samverka_sync_lag_entries",
            "Entries a peer reported holding that this server does not hold yet.",
            labels=["peer", "origin"],
        )
        for peer, reported in sorted(peer_heads().items()):
            for origin, peer_sequence in sorted(reported.items()):
                lag.add_metric([peer, origin], max(0, peer_sequence - local.get(origin, 0)))
        yield lag

    def _heads(self) -> list[_HeadRow]:
        stmt = sa.select(feed_heads.c.origin, feed_heads.c.sequence, feed_heads.c.timestamp_ms)
        with self.store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [_HeadRow(r[0], int(r[1]), r[2]) for r in rows]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def store_size_bytes(store: Store) -> int | None:
    """The database's size on disk: SQLite file + WAL, or PostgreSQL's database size."""
    if store.is_postgres:
        with store.engine.connect() as conn:
            size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
        return int(size or 0)
    path = sqlite_path(store.url)
    if path is None:
        return None
    total = 0
    for candidate in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(candidate).st_size
    return total


# -- the HTTP endpoint ------------------------------------------------------------------


class MetricsEndpoint:
    """``GET /metrics`` on ``listen`` (host:port; port 0 picks one) while a server runs.

    A server resource (see :class:`samverka.transport.server.app.NodeServer.add_resource`):
    ``start`` starts counting (:func:`start_counting`), registers the collector and
    binds; ``close`` stops serving (counting goes on). A port that cannot be bound is
    logged as an error and the server runs on without metrics: a monitoring problem
    must not stop a kommun's feed. ``registry``: prometheus-client's default one
    unless given.
    """

    def __init__(
        self,
        listen: str,
        collector: ServerCollector | None = None,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        from samverka.transport.server.app import split_address

        self.listen = listen
        self.host, self.port = split_address(listen)
        self.collector = cast("Collector | None", collector)
        self._registry = registry
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def bound_address(self) -> str:
        host = self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def serving(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://{self.bound_address}/metrics"

    @property
    def registry(self) -> CollectorRegistry:
        if self._registry is None:
            from prometheus_client import REGISTRY

            self._registry = REGISTRY
        return self._registry

    async def start(self) -> None:
        from prometheus_client import start_http_server

        start_counting()
        if self.collector is not None:
            self.registry.register(self.collector)
        try:
            server, thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            # Metrics must never keep the feed from being served: say so loudly and go
            # on (Prometheus shows the target as down).
            if self.collector is not None:
                self.registry.unregister(self.collector)
            log.error(
                "cannot serve metrics on %s: %s; serving without metrics "
                "(choose another [metrics] listen, or set it empty)",
                self.listen,
                exc.strerror or exc,
                extra={"event": "metrics_unavailable", "address": self.listen},
            )
            return
        self._server, self._thread = server, thread
        self.port = server.server_address[1]
        log.info(
            "metrics on %s",
            self.url,
            extra={"event": "metrics_listening", "address": self.bound_address},
        )

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.collector is not None:
            with contextlib.suppress(KeyError):
                self.registry.unregister(self.collector)


def serve_metrics(
    server: NodeServer,
    listen: str,
    store: Store,
    own_origin: str,
    watcher: LogWatcher | None = None,
) -> MetricsEndpoint | None:
    """Add a /metrics endpoint on ``listen`` to ``server`` (nothing when ``listen`` is empty)."""
    if not listen:
        return None
    endpoint = MetricsEndpoint(listen, ServerCollector(store, own_origin, watcher))
    server.add_resource(endpoint)
    return endpoint
