"""A second process reads the feed after a cursor, is killed mid-way, and resumes
with no duplicate and no gap."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

from samverka.node import Node
from samverka.protocol.entries import parse_signed
from samverka.store.store import Store
from serverkit import FEED, LEKSAND, Pki, Processes, ServerProcess, publish, wait_for

EXTRA = 114  # entries beyond FEED, so the reader needs a dozen pages


def test_killed_reader_resumes_without_duplicate_or_gap(
    node: Node,
    pki: Pki,
    processes: Processes,
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    for i in range(EXTRA):
        publish(node, "lesson", f"lesson-{i}", title=f"Lärdom nummer {i}")
    total = len(FEED) + EXTRA
    server = start_server(node.dir)
    reader_db = tmp_path / "reader.db"
    args = [
        str(Path(__file__).parent / "scripts" / "reader.py"),
        "--address",
        server.address,
        "--tls",
        str(pki.ca.parent),
        "--store",
        str(reader_db),
        "--trust",
        f"{LEKSAND}={node.config.public_key_path}",
        "--batch-size",
        "10",
    ]

    first = processes.python(*args, "--page-delay", "0.2", name="reader1")
    wait_for(lambda: processes.output("reader1").count("page ") >= 3, 30, "three pages")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    printed = [int(line.split()[1]) for line in processes.output("reader1").splitlines()]
    assert 0 < printed[-1] < total, "the reader must be killed mid-way"

    second = processes.python(*args, name="reader2")
    assert second.wait(timeout=60) == 0, processes.errors("reader2")
    report = json.loads(processes.output("reader2").splitlines()[-1])

    # It resumed from its stored cursor (at least as far as the first run printed) ...
    assert report["start_position"] >= printed[-1]
    assert report["position"] == total
    assert report["accepted"] + report["duplicates"] == total - report["start_position"]
    # ... and the mirror holds every entry exactly once, a whole verified chain.
    reader = Store.open(f"sqlite:///{reader_db}")
    try:
        assert reader.log_position() == total
        items = reader.feed_items(LEKSAND, limit=total + 10)
        assert [i.redacted.sequence or parse_signed(i.signed).sequence for i in items] == list(
            range(1, total + 1)
        )
        assert [i.redacted.sequence for i in items if i.HasField("redacted")] == [3]  # the draft
        assert reader.heads() == node.store.heads()
        assert reader.get_cursor(server.address) == total
    finally:
        reader.close()
