"""Webhook delivery: a chat message for each new PUBLIC record (``[webhooks]``).

The council lists incoming-webhook URLs (a Teams, Mattermost or Slack channel); for
every record that becomes public, ``hub serve`` posts one JSON message to each::

    {"text": "Ny öppen post i Samverka – Leksand delar en lösning: «AI-policy …»
              (Ledning och administration). ✓ Signatur verifierad.
              https://katalog.example.se/post/2029/sol-ai-policy",
     "samverka": {"origin": "2029", "kommun": "Leksand", "record_id": …, "url": …,
                  "signature": "verified", "entry_hash": …, …}}

``text`` is what all three take (the link on a line of its own, which each of them
turns into a link); ``samverka`` carries the same for other receivers (chat services
ignore fields they do not know).

**What is sent.** An entry of the log that is PUBLIC, not a tombstone, of a kind people
browse (use case, lesson, solution, recommendation), and *new to the public*: version 1,
or a later version of a record no earlier PUBLIC version of which was sent (a MEMBERS
record made public). Later versions of public records are not announced (the feeds show
them). The current view must still show the record as PUBLIC when the message is
built: a record made MEMBERS or retracted meanwhile is skipped, its title never sent.

**Never blocking ingest, never losing or repeating.** Delivery reads the store's log
after a cursor of its own per URL (the ``cursors`` table, key ``webhook:<hash of the
URL>``), in a task beside the servers: ingest never waits for it. The cursor moves past
a record only once its message was delivered or given up, so a hub restart resumes
where it stopped: nothing lost, nothing sent twice. Stopping (SIGTERM) lets a message
being posted finish before the task ends. Only a crash between a receiver's answer and
the cursor write sends that one message again (at-least-once). A URL seen for the
first time starts after the log's end (no flood of old records).

**Tries.** Each try has ``timeout_seconds``; a network error, a timeout, 408, 425, 429
or 5xx is tried again after :class:`samverka.retry.RetryPolicy`'s wait (``Retry-After``
honoured up to ``max_backoff_seconds``), up to ``max_attempts`` tries; any other answer
(a 4xx: the URL was revoked, the channel archived, the message refused) or the last
failure gives the message up, with a WARNING log line (event ``webhook_gave_up``).
Redirects are not followed. Each URL has its own loop, so a slow channel delays only
its own messages.

**Replicas.** Hub replicas on one PostgreSQL database deliver from one replica at a
time: the one holding a session advisory lock (:data:`LOCK_KEY`); the others wait and
take over when it stops. (If the lock holder loses its database connection while a
message is under way, that message may be sent twice.)

**Secrets.** A webhook URL lets anyone post to the channel: logs and metrics name a
receiver by its host and a hash of the URL (``hooks.slack.com#3f2a9c1e``), never by its
path.

Supervised (:func:`samverka.retry.supervise`, task ``webhooks``: ``samverka_task_up``,
health ``samverka.task.webhooks``); not critical. Counted in /metrics:
``samverka_webhook_messages_total{receiver,result}`` (``delivered``, ``gave_up``),
``samverka_webhook_tries_failed_total{receiver}`` and
``samverka_webhook_backlog_entries{receiver}`` (log positions not yet read).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from samverka.errors import SamverkaError
from samverka.protocol.directory import VerifiedDirectory
from samverka.protocol.vocab import RECORD_KIND, SERVICE_AREA
from samverka.retry import RetryPolicy, TaskState, cancel, pause, spawn, supervise
from samverka.store.logwatch import LogWatcher
from samverka.store.store import Store
from samverka.store.tables import cursors, log, records
from samverka.v1 import records_pb2

from samverka_hub.config import HubConfig, WebhooksSection, check_webhook_url
from samverka_hub.web import atom, present
from samverka_hub.web.catalog import BROWSABLE_KINDS
from samverka_hub.web.signature import KeyRings, SignatureCheck, check_signature

log_ = logging.getLogger("samverka_hub.webhooks")

PUBLIC = records_pb2.VISIBILITY_PUBLIC
#: PostgreSQL advisory lock of the replica that delivers ("SAMVHOOK").
LOCK_KEY = int.from_bytes(b"SAMVHOOK", "big")
#: Log positions read per query, and the most records taken from them.
SCAN_WINDOW = 2000
BATCH = 100
CURSOR_PREFIX = "webhook:"
#: Answers worth another try: a timeout, too early, too many, and server errors.
RETRYABLE = frozenset({408, 425, 429})
#: After the task failed (the database away): soon again, at most every 30 s.
TASK_RETRY = RetryPolicy(initial=1.0, maximum=30.0)
USER_AGENT = "Samverka-webhooks/1"
#: Most characters of a title in a message (chat previews cut long lines anyway).
MAX_TITLE = 200
MAX_SUMMARY = 500


# -- what is sent (pure) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receiver:
    """One configured URL, and the name logs and metrics give it."""

    url: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.url.encode("utf-8")).hexdigest()

    @property
    def name(self) -> str:
        """``host#hash``: tells receivers apart without showing the URL's secret path."""
        return f"{urlsplit(self.url).hostname or '?'}#{self.digest[:8]}"

    @property
    def cursor_key(self) -> str:
        return CURSOR_PREFIX + self.digest[:32]


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record new to the public, as its message shows it (the current view's text)."""

    position: int
    origin: str
    record_id: str
    kind: int
    version: int
    title: str
    summary: str
    service_area: int
    timestamp_ms: int
    #: The SignedEntry that made it public, as stored.
    signed_entry: bytes


_NOT_SHOWN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def plain(text: str, limit: int) -> str:
    """``text`` as one line of chat text that says only what it says.

    Record text is data: chat services read ``<…>`` (Slack's links and ``<!channel>``),
    ``@channel``/``@all`` (mentions that notify everyone), and Markdown links and
    images ``[x](url)`` / ``![x](url)`` (Mattermost, Teams). Angle brackets become
    ‹ ›, and a WORD JOINER (U+2060, invisible) after ``@`` and ``!`` and inside ``](``
    breaks the rest without changing what people read. Control and bidi characters
    are dropped, whitespace runs become one space, and the text is cut at ``limit``.
    """
    text = " ".join(_NOT_SHOWN.sub("", text).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    text = text.replace("<", "‹").replace(">", "›")
    text = text.replace("@", "@\u2060").replace("!", "!\u2060").replace("](", "]\u2060(")
    return text


def message(record: NewRecord, signature: SignatureCheck, *, base_url: str) -> dict[str, Any]:
    """The JSON body posted for ``record`` (``signature``: its SignatureCheck)."""
    base = base_url.rstrip("/")
    url = base + present.record_path(record.origin, record.record_id)
    kommun = present.kommun_name(record.origin)
    # Swedish nouns have a gender: ett användningsfall, en lärdom/lösning/rekommendation.
    article = "ett" if record.kind == records_pb2.RECORD_KIND_USE_CASE else "en"
    kind = f"{article} {present.kind_label(record.kind).lower()}"
    area = present.area_label(record.service_area)
    title = plain(record.title or record.record_id, MAX_TITLE)
    mark = atom.signature_line(signature).split(":", 1)[0]  # "✓ Signatur verifierad"
    who = f"{kommun} delar" if record.origin != "0000" else "AI-rådet ger"
    text = (
        f"Ny öppen post i Samverka – {plain(who, 80)} {plain(kind, 40)}: «{title}»"
        + (f" ({plain(area, 80)})" if area else "")
        + f". {mark}.\n{url}"
    )
    return {
        "text": text,
        "samverka": {
            "origin": record.origin,
            "kommun": kommun,
            "record_id": record.record_id,
            "kind": RECORD_KIND.key(record.kind),
            "title": record.title,
            "summary": record.summary[:MAX_SUMMARY],
            "service_area": SERVICE_AREA.key(record.service_area) if record.service_area else "",
            "version": record.version,
            "signed_at": atom.rfc3339(record.timestamp_ms),
            "url": url,
            "signature": str(signature.status),
            "key_id": signature.key_id,
            "entry_hash": signature.entry_hash,
        },
    }


# -- what the log holds (blocking: call from a worker thread) ---------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    records: list[NewRecord]
    #: Every position up to here was read: the cursor may move here once the
    #: records' messages are done.
    read_to: int
    #: The log's end when it was read (more to read while read_to is below it).
    end: int


def read_new_public(store: Store, after: int, *, window: int = SCAN_WINDOW) -> Batch:
    """Records new to the public at log positions after ``after`` (at most ``window``
    positions, at most BATCH records), in log order."""
    end = store.log_position()
    upto = min(end, after + window)
    if upto <= after:
        return Batch([], after, end)
    current = sa.and_(
        records.c.origin == log.c.origin,
        records.c.record_id == log.c.record_id,
    )
    stmt = (
        sa.select(
            log.c.position,
            log.c.origin,
            log.c.record_id,
            log.c.version.label("entry_version"),
            log.c.signed_entry,
            records.c.kind,
            records.c.version,
            records.c.visibility,
            records.c.tombstone,
            records.c.title,
            records.c.summary,
            records.c.service_area,
            records.c.timestamp_ms,
        )
        .join_from(log, records, current)
        .where(
            log.c.position > after,
            log.c.position <= upto,
            log.c.redacted == sa.false(),
            log.c.visibility == PUBLIC,
            log.c.tombstone == sa.false(),
            log.c.kind.in_(list(BROWSABLE_KINDS)),
        )
        .order_by(log.c.position)
        .limit(BATCH)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
        found: list[NewRecord] = []
        for r in rows:
            # Still PUBLIC and live in the current view: what the link will show.
            if r.visibility != PUBLIC or r.tombstone or r.signed_entry is None:
                continue
            if r.entry_version > 1 and _was_public_before(conn, r.origin, r.record_id, r.position):
                continue
            found.append(
                NewRecord(
                    position=int(r.position),
                    origin=r.origin,
                    record_id=r.record_id,
                    kind=int(r.kind),
                    version=int(r.version),
                    title=r.title,
                    summary=r.summary,
                    service_area=int(r.service_area),
                    timestamp_ms=int(r.timestamp_ms),
                    signed_entry=bytes(r.signed_entry),
                )
            )
    read_to = int(rows[-1].position) if len(rows) == BATCH else upto
    return Batch(found, read_to, end)


def _was_public_before(conn: sa.Connection, origin: str, record_id: str, position: int) -> bool:
    """Whether an earlier entry of the record was PUBLIC (its announcement was due then)."""
    earlier = conn.execute(
        sa.select(sa.literal(1))
        .where(
            log.c.origin == origin,
            log.c.position < position,
            log.c.record_id == record_id,
            log.c.visibility == PUBLIC,
            log.c.redacted == sa.false(),
        )
        .limit(1)
    ).first()
    return earlier is not None


def read_cursor(store: Store, key: str) -> int | None:
    """The receiver's cursor, or None when it has none yet."""
    with store.engine.connect() as conn:
        value = conn.execute(sa.select(cursors.c.position).where(cursors.c.peer == key)).scalar()
    return None if value is None else int(value)


# -- posting ----------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new address to post the message to."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


@dataclass(frozen=True, slots=True)
class Answer:
    """What one try got: an HTTP status (0: none, the request failed), and why."""

    status: int
    detail: str = ""
    #: Retry-After, in seconds, when the receiver sent one.
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status in RETRYABLE or self.status >= 500


def post(url: str, body: bytes, timeout: float) -> Answer:
    """POST ``body`` (JSON) to ``url`` once (blocking); never raises for the network."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return Answer(int(response.status))
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(OSError):
            exc.read(4096)
        return Answer(exc.code, f"HTTP {exc.code}", _retry_after(exc.headers.get("Retry-After")))
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused, TLS
        reason = getattr(exc, "reason", exc)
        return Answer(0, str(reason) or type(exc).__name__)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


# -- the task ---------------------------------------------------------------------------


@dataclass
class ReceiverStatus:
    delivered: int = 0
    gave_up: int = 0
    failed_tries: int = 0
    #: The receiver's cursor, as last written.
    cursor: int = 0


@dataclass
class WebhookStatus:
    receivers: dict[str, ReceiverStatus] = field(default_factory=dict)
    #: Whether this replica delivers (holds the lock), or waits for the one that does.
    active: bool = False


class WebhookDelivery:
    """A NodeServer resource: posts new PUBLIC records to ``urls`` (see the module)."""

    def __init__(
        self,
        store: Store,
        urls: tuple[str, ...],
        settings: WebhooksSection,
        directory: Callable[[], VerifiedDirectory | None],
        watcher: LogWatcher | None = None,
        *,
        public_url: str = "",
        poster: Callable[[str, bytes, float], Answer] = post,
    ) -> None:
        self.store = store
        self.receivers = [Receiver(u) for u in dict.fromkeys(urls)]
        self.settings = settings
        self.directory = directory
        self.watcher = watcher
        self.public_url = public_url
        self.poster = poster
        self.policy = RetryPolicy(settings.initial_backoff_seconds, settings.max_backoff_seconds)
        self.task_state = TaskState("webhooks")
        self.status = WebhookStatus({r.name: ReceiverStatus() for r in self.receivers})
        self._rings = KeyRings()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._collector: _Collector | None = None

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self._register_metrics()
        self._task = spawn(
            supervise(self.task_state, self._run, policy=TASK_RETRY, logger=log_),
            name="webhooks",
        )
        log_.info(
            "webhooks: a message for each new PUBLIC record to %d receiver%s: %s",
            len(self.receivers),
            "" if len(self.receivers) == 1 else "s",
            ", ".join(r.name for r in self.receivers),
            extra={"event": "webhooks_started", "receivers": [r.name for r in self.receivers]},
        )

    async def close(self) -> None:
        """Stop: a message under way gets its try finished (so it is not sent again
        after a restart), then the task ends."""
        self._stop.set()  # also ends a wait for the log (see _wait_beyond)
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), self.settings.timeout_seconds + 2)
            await cancel(task)
        self._unregister_metrics()

    # -- the loops ------------------------------------------------------------------

    async def _run(self) -> None:
        async with self._delivery_lock() as seat:
            while not await asyncio.to_thread(seat.take):
                self.status.active = False
                self.task_state.mark_up()  # waiting for the replica that delivers is its job
                if await pause(self.settings.poll_seconds, self._stop):
                    return
            self.status.active = True
            self.task_state.mark_up()
            try:
                async with asyncio.TaskGroup() as group:
                    for receiver in self.receivers:
                        group.create_task(self._follow(receiver), name=f"webhook-{receiver.name}")
                    if seat.conn is not None:
                        group.create_task(self._keep_seat(seat), name="webhook-seat")
            except ExceptionGroup as group:
                # One receiver's loop failed (the database away): the supervisor logs it
                # as itself, not as a group, and starts delivery again after its wait.
                raise group.exceptions[0] from None
            finally:
                self.status.active = False

    async def _keep_seat(self, seat: _Seat) -> None:
        """Check the lock's connection every poll: once it is lost, so is the lock
        (another replica may take it), and delivery stops here (LockLost; the task is
        started again and waits for the lock)."""
        while not await pause(self.settings.poll_seconds, self._stop):
            await asyncio.to_thread(seat.check)

    async def _follow(self, receiver: Receiver) -> None:
        status = self.status.receivers[receiver.name]
        cursor = await asyncio.to_thread(read_cursor, self.store, receiver.cursor_key)
        if cursor is None:
            cursor = await asyncio.to_thread(self.store.log_position)
            await asyncio.to_thread(self.store.set_cursor, receiver.cursor_key, cursor)
            log_.info(
                "webhook %s is new: it gets the records stored after log position %d",
                receiver.name,
                cursor,
                extra={"event": "webhook_cursor_started", "receiver": receiver.name},
            )
        status.cursor = cursor
        while not self._stop.is_set():
            batch = await asyncio.to_thread(read_new_public, self.store, cursor)
            for record in batch.records:
                if not await self._deliver(receiver, record):
                    return  # stopped while waiting to try again: the cursor stays
                cursor = record.position
                await asyncio.to_thread(self.store.set_cursor, receiver.cursor_key, cursor)
                status.cursor = cursor
                if self._stop.is_set():
                    return
            if batch.read_to > cursor:
                cursor = batch.read_to
                await asyncio.to_thread(self.store.set_cursor, receiver.cursor_key, cursor)
                status.cursor = cursor
            if batch.read_to < batch.end:
                continue  # more to read at once
            await self._wait_beyond(cursor)

    async def _wait_beyond(self, position: int) -> None:
        if self.watcher is None:
            await pause(self.settings.poll_seconds, self._stop)
            return
        waiting = asyncio.ensure_future(
            self.watcher.wait_beyond(position, self.settings.poll_seconds)
        )
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (waiting, stopping):
                future.cancel()

    async def _deliver(self, receiver: Receiver, record: NewRecord) -> bool:
        """Try until delivered or given up (True), or until stopped while waiting to
        try again (False: the message is sent after the restart)."""
        status = self.status.receivers[receiver.name]
        signature = check_signature(record.signed_entry, self.directory(), rings=self._rings)
        body = json.dumps(
            message(record, signature, base_url=self.public_url), ensure_ascii=False
        ).encode("utf-8")
        timeout = self.settings.timeout_seconds
        answer = Answer(0)
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                answer = await asyncio.wait_for(
                    asyncio.to_thread(self.poster, receiver.url, body, timeout), timeout + 1
                )
            except TimeoutError:
                answer = Answer(0, f"no answer within {timeout:g} s")
            if answer.delivered:
                status.delivered += 1
                log_.info(
                    "webhook %s: sent %s/%s (log position %d)",
                    receiver.name,
                    record.origin,
                    record.record_id,
                    record.position,
                    extra={
                        "event": "webhook_delivered",
                        "receiver": receiver.name,
                        "origin": record.origin,
                        "record_id": record.record_id,
                        "position": record.position,
                        "attempts": attempt,
                    },
                )
                return True
            status.failed_tries += 1
            if not answer.retryable or attempt == self.settings.max_attempts:
                break
            wait = self.policy.delay(attempt)
            if answer.retry_after is not None:
                wait = min(max(wait, answer.retry_after), self.settings.max_backoff_seconds)
            log_.info(
                "webhook %s: try %d of %s/%s failed (%s); trying again in %.1f s",
                receiver.name,
                attempt,
                record.origin,
                record.record_id,
                answer.detail or f"HTTP {answer.status}",
                wait,
                extra={"event": "webhook_retry", "receiver": receiver.name, "attempt": attempt},
            )
            if await pause(wait, self._stop):
                return False
        status.gave_up += 1
        log_.warning(
            "webhook %s: gave up the message about %s/%s after %d tr%s: %s",
            receiver.name,
            record.origin,
            record.record_id,
            attempt,
            "y" if attempt == 1 else "ies",
            answer.detail or f"HTTP {answer.status}",
            extra={
                "event": "webhook_gave_up",
                "receiver": receiver.name,
                "origin": record.origin,
                "record_id": record.record_id,
                "position": record.position,
                "attempts": attempt,
                "status": answer.status,
            },
        )
        return True

    # -- one replica at a time ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _delivery_lock(self) -> AsyncIterator[_Seat]:
        """Whether this replica may deliver (see :class:`_Seat`), on a connection kept
        for the lock (PostgreSQL), released when delivery ends."""
        if not self.store.is_postgres:
            yield _Seat(None)
            return
        conn = await asyncio.to_thread(self.store.engine.connect)

        def release() -> None:
            with contextlib.suppress(Exception):
                conn.execute(sa.select(sa.func.pg_advisory_unlock_all()))
                conn.commit()
            conn.close()

        try:
            yield _Seat(conn)
        finally:
            await asyncio.shield(asyncio.to_thread(release))

    # -- /metrics ------------------------------------------------------------------------

    def _register_metrics(self) -> None:
        from prometheus_client import REGISTRY

        self._collector = _Collector(self)
        REGISTRY.register(self._collector)

    def _unregister_metrics(self) -> None:
        from prometheus_client import REGISTRY

        collector, self._collector = self._collector, None
        if collector is not None:
            with contextlib.suppress(KeyError):
                REGISTRY.unregister(collector)


class LockLost(SamverkaError):
    """The connection holding the webhook delivery's lock was lost."""


class _Seat:
    """The right to deliver: always on SQLite (one process writes a SQLite hub); on
    PostgreSQL, the session advisory lock LOCK_KEY held on ``conn`` (blocking calls)."""

    def __init__(self, conn: sa.Connection | None) -> None:
        self.conn = conn

    def take(self) -> bool:
        if self.conn is None:
            return True
        got = self.conn.execute(sa.select(sa.func.pg_try_advisory_lock(LOCK_KEY))).scalar()
        self.conn.commit()
        return bool(got)

    def check(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute(sa.select(sa.literal(1)))
            self.conn.commit()
        except sa.exc.DBAPIError as exc:
            raise LockLost(
                "the database connection holding the webhook lock was lost",
                hint="delivery waits for the lock again; another replica may deliver meanwhile",
            ) from exc


class _Collector:
    """The delivery's counts, read when Prometheus scrapes (like ServerCollector)."""

    def __init__(self, delivery: WebhookDelivery) -> None:
        self.delivery = delivery

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        messages = CounterMetricFamily(
            "samverka_webhook_messages",
            "Messages about new PUBLIC records, by receiver and result (delivered, gave_up).",
            labels=["receiver", "result"],
        )
        failed = CounterMetricFamily(
            "samverka_webhook_tries_failed",
            "Tries to post a webhook message that failed (each retried or given up).",
            labels=["receiver"],
        )
        backlog = GaugeMetricFamily(
            "samverka_webhook_backlog_entries",
            "Log positions the receiver's cursor is behind the log's end.",
            labels=["receiver"],
        )
        end = self.delivery.watcher.position if self.delivery.watcher is not None else 0
        for name, s in self.delivery.status.receivers.items():
            messages.add_metric([name, "delivered"], s.delivered)
            messages.add_metric([name, "gave_up"], s.gave_up)
            failed.add_metric([name], s.failed_tries)
            backlog.add_metric([name], max(0, end - s.cursor))
        yield messages
        yield failed
        yield backlog


def configured_urls(config: HubConfig) -> tuple[str, ...]:
    """``[webhooks] urls`` and the lines of ``urls_file`` (checked like urls)."""
    section = config.webhooks
    urls = list(section.urls)
    if section.urls_file:
        from samverka.errors import ConfigError

        path = config.node.path(section.urls_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read [webhooks] urls_file {path}: {exc}",
                hint="one webhook URL a line, UTF-8; or empty urls_file",
            ) from exc
        for number, line in enumerate(lines, 1):
            url = line.strip()
            if url and not url.startswith("#"):
                check_webhook_url(url, f"{path}, line {number}")
                urls.append(url)
    return tuple(dict.fromkeys(urls))
