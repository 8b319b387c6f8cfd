"""Webhook delivery of new PUBLIC records ([webhooks], samverka_hub.webhooks).

End to end: a real ``hub serve`` process posts to real HTTP receivers on loopback; the
hub is stopped mid-way (one receiver failing, a message waiting for its next try, a
record stored while the hub is down) and started again: every receiver gets each new
PUBLIC record once, a failing one once it answers, a dead one given up after
``max_attempts`` tries, and nothing that is not PUBLIC ever. Pure parts (the message
text, what counts as new, the URL rules) are tested on their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import webkit
from samverka.errors import ConfigError
from samverka.store.store import Store
from samverka.v1 import records_pb2 as R
from samverka_hub.config import WebhooksSection, load_hub_config
from samverka_hub.folder import init_hub
from samverka_hub.web.signature import SignatureCheck, SignatureStatus
from samverka_hub.webhooks import (
    Answer,
    NewRecord,
    Receiver,
    WebhookDelivery,
    configured_urls,
    message,
    plain,
    post,
    read_new_public,
)
from webkit import LEKSAND, SECRET, TIBRO, Federation

sys.path.insert(0, str(Path(__file__).parent.parent / "hub"))
sys.path.insert(0, str(Path(__file__).parent.parent / "ops"))
from hubkit import run_async, wait_for
from opskit import scrape, value

PUBLIC_URL = "https://katalog.example.se"


# -- a receiver, as a chat service's incoming webhook -------------------------------------


@dataclass
class Channel:
    """One path of the receiver: the bodies it took (2xx) and every try it saw."""

    #: Statuses to answer, in turn; 200 once they run out. ``fail_always`` wins.
    script: list[int] = field(default_factory=list)
    fail_always: int = 0
    taken: list[dict[str, Any]] = field(default_factory=list)
    tries: list[dict[str, Any]] = field(default_factory=list)

    def record_ids(self) -> list[str]:
        return [m["samverka"]["record_id"] for m in self.taken]


class ChatReceiver:
    """A real HTTP server on loopback with a few channels (paths)."""

    def __init__(self, *paths: str) -> None:
        self.channels = {p: Channel() for p in paths}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with receiver.lock:
                    channel = receiver.channels.get(self.path)
                    if channel is None:
                        status = 404
                    else:
                        channel.tries.append(body)
                        status = channel.fail_always or (
                            channel.script.pop(0) if channel.script else 200
                        )
                        if 200 <= status < 300:
                            channel.taken.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[ChatReceiver]:
    chat = ChatReceiver("/kanal", "/ostadig", "/dod")
    try:
        yield chat
    finally:
        chat.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Federation]:
    with webkit.seeded_hub(tmp_path / "seed") as seeded:
        yield seeded


@contextmanager
def hub_serve(
    hub_dir: Path, tmp: Path, env: dict[str, str], name: str
) -> Iterator[tuple[dict[str, str], Path]]:
    address_file = tmp / f"{name}.json"
    log_path = tmp / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "samverka", "hub", "serve", "--dir", str(hub_dir),
             "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
             "--web-listen", "", "--metrics-listen", "127.0.0.1:0",
             "--address-file", str(address_file)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "SAMVERKA_LOG_FORMAT": "json",
                 "SAMVERKA_HARVEST_ENABLED": "false", **env},
        )  # fmt: skip
        try:
            wait_for(lambda: address_file.exists() or proc.poll() is not None, 30, "hub serve")
            assert proc.poll() is None, log_path.read_text()
            yield json.loads(address_file.read_text()), log_path
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
    assert code == 0, log_path.read_text()


def events(log: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def use_case(record_id: str, title: str, **kw: Any) -> R.Record:
    return webkit.use_case(
        record_id,
        title=title,
        summary=kw.pop("summary", "Ett nytt användningsfall."),
        service_area=kw.pop("service_area", R.SERVICE_AREA_ELDERLY_CARE),
        status=R.USE_CASE_STATUS_PILOT,
        **kw,
    )


def test_each_receiver_gets_each_new_public_record_once_across_hub_restarts(
    fresh: Federation, receiver: ChatReceiver, tmp_path: Path
) -> None:
    kanal, ostadig, dod = (receiver.channels[p] for p in ("/kanal", "/ostadig", "/dod"))
    env = {
        "SAMVERKA_WEBHOOKS_URLS": ",".join(receiver.url(p) for p in ("/kanal", "/ostadig", "/dod")),
        "SAMVERKA_WEBHOOKS_INITIAL_BACKOFF_SECONDS": "0.2",
        "SAMVERKA_WEBHOOKS_MAX_BACKOFF_SECONDS": "0.5",
        "SAMVERKA_WEBHOOKS_MAX_ATTEMPTS": "3",
        "SAMVERKA_WEBHOOKS_POLL_SECONDS": "0.5",
        "SAMVERKA_WEB_PUBLIC_URL": PUBLIC_URL,
    }
    ostadig.script = [503, 503]  # the first message needs three tries
    dod.fail_always = 500  # every message given up after three tries
    hub_dir = fresh.hub.dir
    with hub_serve(hub_dir, tmp_path, env, "first") as (bound, log):
        wait_for(lambda: len(events(log, "webhook_cursor_started")) == 3, 15, "3 cursors")
        # The seed was stored before: nothing of it is sent.
        time.sleep(0.5)
        assert kanal.tries == ostadig.tries == dod.tries == []

        published = time.monotonic()
        fresh.publish(LEKSAND, use_case("uc-ny-1", "Robotdammsugare i äldreboendet"))
        wait_for(lambda: kanal.taken, 10, "the first message")
        latency = time.monotonic() - published
        print(f"first message {latency:.2f} s after the record was stored")
        assert latency < 5
        # Not sent: a MEMBERS record, a new version of a public record, a draft.
        fresh.publish(
            TIBRO,
            use_case("uc-internt", f"{SECRET}: internt", visibility=R.VISIBILITY_MEMBERS),
        )
        fresh.publish(
            LEKSAND,
            webkit.solution(
                "sol-ai-policy",
                title="AI-policy för Leksands kommun, version 2",
                summary="Nu med regler för bildgenerering.",
                solution_type=R.SOLUTION_TYPE_POLICY,
                licence="CC-BY-4.0",
            ),
        )
        # Sent: a MEMBERS record made public (new to the public), with its new title.
        fresh.publish(
            LEKSAND,
            use_case("uc-members-only", "Chattbot i socialtjänsten, nu öppen", summary="Öppen."),
        )
        wait_for(lambda: len(kanal.taken) == 2 and len(ostadig.taken) == 2, 20, "2 messages")
        wait_for(lambda: len(events(log, "webhook_gave_up")) == 2, 20, "2 given up")
        assert kanal.record_ids() == ostadig.record_ids() == ["uc-ny-1", "uc-members-only"]
        assert len(ostadig.tries) == 4  # 503, 503, 200, then 200 at once
        assert len(dod.tries) == 6 and dod.taken == []  # 3 tries each, then given up

        first = kanal.taken[0]
        assert first["text"] == (
            "Ny öppen post i Samverka – Leksand delar ett användningsfall: "
            "«Robotdammsugare i äldreboendet» (Äldreomsorg). ✓ Signatur verifierad.\n"
            f"{PUBLIC_URL}/post/{LEKSAND}/uc-ny-1"
        )
        assert first["samverka"]["signature"] == "verified"
        assert first["samverka"]["url"] == f"{PUBLIC_URL}/post/{LEKSAND}/uc-ny-1"
        assert len(first["samverka"]["entry_hash"]) == 64
        assert kanal.taken[1]["samverka"]["title"] == "Chattbot i socialtjänsten, nu öppen"

        samples = scrape(f"http://{bound['metrics']}/metrics")
        assert value(samples, "samverka_task_up", {"task": "webhooks"}) == 1
        kanal_name = Receiver(receiver.url("/kanal")).name
        dod_name = Receiver(receiver.url("/dod")).name
        assert kanal_name.startswith("127.0.0.1#")
        messages = "samverka_webhook_messages_total"
        assert value(samples, messages, {"receiver": kanal_name, "result": "delivered"}) == 2
        assert value(samples, messages, {"receiver": dod_name, "result": "gave_up"}) == 2

        # Now the unsteady channel fails for good: the next message waits for its
        # next try when the hub is stopped.
        ostadig.fail_always = 503
        fresh.publish(TIBRO, use_case("uc-ny-2", "Schemaläggning med AI i hemtjänsten"))
        wait_for(lambda: kanal.record_ids()[-1:] == ["uc-ny-2"], 20, "uc-ny-2 at kanal")
        wait_for(lambda: len(ostadig.tries) >= 5, 20, "a failed try at ostadig")
    log_first = log

    # While the hub is down: one more record; the channel mends.
    fresh.publish(LEKSAND, use_case("uc-ny-3", "Översättning av biståndsbeslut"))
    ostadig.fail_always = 0
    with hub_serve(hub_dir, tmp_path, env, "second") as (bound, log):
        wait_for(lambda: ostadig.record_ids()[-2:] == ["uc-ny-2", "uc-ny-3"], 20, "ostadig")
        wait_for(lambda: kanal.record_ids()[-1:] == ["uc-ny-3"], 20, "uc-ny-3 at kanal")
        wait_for(
            lambda: len(events(log_first, "webhook_gave_up") + events(log, "webhook_gave_up")) == 4,
            20,
            "dod gives up 4 messages in all",
        )
        time.sleep(1.0)  # anything sent twice would come now
        samples = scrape(f"http://{bound['metrics']}/metrics")
        assert value(samples, "samverka_task_up", {"task": "webhooks"}) == 1
    expected = ["uc-ny-1", "uc-members-only", "uc-ny-2", "uc-ny-3"]
    assert kanal.record_ids() == expected
    assert ostadig.record_ids() == expected
    # The dead channel: each message given up once, after 3 tries (a message whose tries
    # a restart cut short gets 3 more: the count of tries is not kept across restarts).
    given_up = events(log_first, "webhook_gave_up") + events(log, "webhook_gave_up")
    assert sorted(e["record_id"] for e in given_up) == sorted(expected)
    assert all(e["attempts"] == 3 and e["status"] == 500 for e in given_up)
    assert dod.taken == [] and 4 * 3 <= len(dod.tries) <= 4 * 3 + 2
    # Nothing that is not PUBLIC, and the URLs' paths (secrets) never in the logs.
    for channel in (kanal, ostadig, dod):
        assert SECRET not in json.dumps(channel.tries, ensure_ascii=False)
    for path in (log_first, log):
        text = path.read_text()
        assert "/kanal" not in text and "/ostadig" not in text and "/dod" not in text
        assert events(path, "webhooks_started")


def test_read_new_public_takes_only_records_new_to_the_public(fresh: Federation) -> None:
    store = fresh.hub.store
    start = store.log_position()
    fresh.publish(LEKSAND, use_case("uc-a", "A"))
    fresh.publish(LEKSAND, use_case("uc-a", "A, andra versionen"))  # a new version: no
    fresh.publish(LEKSAND, use_case("uc-b", f"{SECRET} B", visibility=R.VISIBILITY_MEMBERS))
    fresh.publish(LEKSAND, use_case("uc-c", "C"))
    fresh.members[LEKSAND].publisher.retire("uc-c")  # retracted before sent: no
    fresh.publish(LEKSAND, use_case("uc-b", "B öppen"))  # MEMBERS made PUBLIC: yes
    fresh.publish(
        LEKSAND, webkit.adoption("adopt-x", webkit.ref(TIBRO, "uc-copilot-pilot"))
    )  # an adoption: no
    profile = R.Record(
        header=webkit.header("kommunprofil", R.RECORD_KIND_KOMMUN_PROFILE),
        kommun_profile=R.KommunProfile(
            population_band=R.POPULATION_BAND_FROM_10K_TO_25K, kommun_group=R.KOMMUN_GROUP_C9
        ),
    )
    fresh.publish(LEKSAND, profile)  # a kommun profile: no
    fresh.push(fresh.members[LEKSAND])
    batch = read_new_public(store, start)
    assert [(r.record_id, r.version) for r in batch.records] == [("uc-a", 2), ("uc-b", 2)]
    # The current view's title: what the link shows now.
    assert [r.title for r in batch.records] == ["A, andra versionen", "B öppen"]
    assert batch.read_to == batch.end == store.log_position()
    # A small window reads in steps, never past what it read.
    first = read_new_public(store, start, window=1)
    assert first.read_to == start + 1 and [r.record_id for r in first.records] == ["uc-a"]


def test_message_text_cannot_mention_or_link_anyone() -> None:
    record = NewRecord(
        position=9,
        origin=LEKSAND,
        record_id="uc-x",
        kind=R.RECORD_KIND_USE_CASE,
        version=1,
        title="@channel <!here> [klicka](https://evil.example) ![bild](https://t.example/p.png)\n"
        "andra raden\u202e",
        summary="s",
        service_area=0,
        timestamp_ms=1_750_000_000_000,
        signed_entry=b"",
    )
    sig = SignatureCheck(SignatureStatus.VERIFIED, "k", LEKSAND, 1, "ab" * 32, 4)
    text = message(record, sig, base_url="")["text"]
    title = text.split("«", 1)[1].split("»", 1)[0]
    assert "@channel" not in title and "<!" not in title and "](" not in title
    assert "![" not in title and "\n" not in title and "\u202e" not in title
    visible = title.replace("\u2060", "")
    assert visible == (
        "@channel ‹!here› [klicka](https://evil.example) ![bild](https://t.example/p.png) "
        "andra raden"
    )
    assert text.endswith("\n/post/2029/uc-x")  # no public_url: a path
    assert plain("x" * 300, 200) == "x" * 199 + "…"


def test_webhook_urls_are_https_except_on_loopback(tmp_path: Path) -> None:
    ok = WebhooksSection(urls="https://a.example/x, http://127.0.0.1:9/h,http://[::1]:9/h")
    assert ok.urls == ("https://a.example/x", "http://127.0.0.1:9/h", "http://[::1]:9/h")
    for bad in (
        "http://hooks.example.se/secret-path",
        "ftp://a.example/x",
        "https://user:pw@a.example/x",
        "https://a.example/x#frag",
        "inte en adress",
    ):
        with pytest.raises(ConfigError) as caught:
            WebhooksSection(urls=(bad,))
        assert "secret-path" not in str(caught.value)  # errors never show the path
    # urls_file: one a line, comments allowed, checked the same way.
    hub = tmp_path / "hub"
    init_hub(hub).close()
    (hub / "webhooks.txt").write_text(
        "# Teams-kanalen\nhttps://example.webhook.office.com/a\n\nhttps://b.example/x\n"
    )
    config = load_hub_config(
        hub,
        {
            "SAMVERKA_WEBHOOKS_URLS_FILE": "webhooks.txt",
            "SAMVERKA_WEBHOOKS_URLS": "https://c.example/",
        },
    )
    assert configured_urls(config) == (
        "https://c.example/",
        "https://example.webhook.office.com/a",
        "https://b.example/x",
    )
    (hub / "webhooks.txt").write_text("http://hooks.example.se/x\n")
    with pytest.raises(ConfigError, match="line 1"):
        configured_urls(config)


def test_post_reports_what_the_receiver_said(receiver: ChatReceiver) -> None:
    receiver.channels["/kanal"].script = [429]
    assert post(receiver.url("/kanal"), b"{}", 5).status == 429
    assert post(receiver.url("/kanal"), b"{}", 5) == Answer(200)
    assert post(receiver.url("/saknas"), b"{}", 5).status == 404
    refused = post("http://127.0.0.1:9/ingen", b"{}", 5)  # nothing listens on port 9
    assert refused.status == 0 and refused.retryable and refused.detail
    assert not Answer(404).retryable and Answer(503).retryable and Answer(429).retryable


def test_replicas_on_one_postgresql_database_deliver_each_message_once(
    pg_database: str, receiver: ChatReceiver, tmp_path: Path
) -> None:
    """Two replicas' deliveries on one database: one delivers (it holds the advisory
    lock), the other waits; when the first stops, the second takes over from the same
    cursor."""
    schema = f"hooks_{secrets.token_hex(6)}"
    dsn = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{pg_database}?options=-csearch_path%3D{schema}"
    kanal = receiver.channels["/kanal"]
    settings = WebhooksSection(
        urls=(receiver.url("/kanal"),),
        poll_seconds=0.2,
        initial_backoff_seconds=0.1,
        max_backoff_seconds=0.2,
    )

    async def until(predicate: Any, what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)

    async def scenario(federation: Federation, stores: list[Store]) -> None:
        directory = federation.hub.council.current_directory
        first, second = (
            WebhookDelivery(s, settings.urls, settings, directory, public_url=PUBLIC_URL)
            for s in stores
        )
        await first.start()
        await until(lambda: first.status.active, "the first replica to deliver")
        await second.start()
        await asyncio.sleep(0.6)
        assert not second.status.active and second.task_state.up  # waiting is its job
        await asyncio.to_thread(federation.publish, LEKSAND, use_case("uc-r1", "Replik ett"))
        await until(lambda: kanal.record_ids() == ["uc-r1"], "uc-r1")
        await first.close()
        await until(lambda: second.status.active, "the second replica to take over")
        await asyncio.to_thread(federation.publish, TIBRO, use_case("uc-r2", "Replik två"))
        await until(lambda: kanal.record_ids() == ["uc-r1", "uc-r2"], "uc-r2")
        await asyncio.sleep(0.6)  # anything sent twice would come now
        await second.close()

    try:
        with webkit.seeded_hub(tmp_path, store_url=url) as federation:
            stores = [Store.open(url), Store.open(url)]
            try:
                run_async(scenario(federation, stores))
            finally:
                for store in stores:
                    store.close()
        assert kanal.record_ids() == ["uc-r1", "uc-r2"]
        assert len(kanal.tries) == 2
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
