"""``python -m samverka_hub.demo`` (``make demo``): it runs the whole story, says so, and
leaves nothing running — after success, on Ctrl-C, and when it is killed outright —
unless ``DEMO_KEEP`` asks it to, when its ``stop.sh`` stops everything (that case is
checked in tests/demo/test_tour.py, on the ``DEMO_KEEP`` federation the tour runs
against: one demo run for both)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
from demokit import (
    addresses_in,
    processes_naming,
    refused,
    run_demo,
    start_demo,
    wait_for_output,
    wait_gone,
)
from samverka.protocol.kommuner import is_kommunkod
from samverka.protocol.validation import is_http_url, record_issues
from samverka.v1 import records_pb2
from samverka_hub.demo import content
from samverka_hub.demo.run import until_interrupted

#: A generous bound: the demo takes about 15 s here on 2 idle cores (60 s is the goal
#: on a busy machine), so only something badly wrong takes longer.
MAX_SECONDS = 120.0
KEY_ID = r"[0-9a-f]{32}"


# -- the content (pure) ------------------------------------------------------------------


def all_records() -> list[tuple[str, records_pb2.Record]]:
    records = [(code, r) for code, make in content.BY_KOMMUN.items() for r in make()]
    return [*records, (content.HUB, content.recommendation())]


def test_every_record_is_valid_as_receivers_check_it() -> None:
    for origin, record in all_records():
        record.header.origin = origin
        record.header.version = 1
        assert record_issues(record, origin=origin) == [], record.header.id


def test_links_are_http_and_partners_are_kommuner() -> None:
    for _, record in all_records():
        if record.HasField("lesson"):
            continue  # lessons have no links: they point at their use case
        body = getattr(record, str(record.WhichOneof("body")))
        links = [link.url for link in body.links]
        if record.HasField("solution"):
            links.append(record.solution.url)
        assert links, f"{record.header.id} links to no source"
        assert all(url.startswith("https://") and is_http_url(url) for url in links)
        if record.HasField("use_case"):
            assert all(is_kommunkod(k) for k in record.use_case.partner_kommuner)


def test_one_members_record_one_draft_and_references_resolve() -> None:
    records = all_records()
    visibilities = [r.header.visibility for _, r in records]
    assert visibilities.count(records_pb2.VISIBILITY_MEMBERS) == 1
    assert visibilities.count(records_pb2.VISIBILITY_DRAFT) == 1
    held = {(origin, r.header.id) for origin, r in records}
    refs = [(ref.origin, ref.id) for ref in content.recommendation().recommendation.references]
    refs += [(s.origin, s.record_id) for s in content.SEARCHES]
    assert refs and set(refs) <= held


# -- the demo, run for real --------------------------------------------------------------


@pytest.mark.timeout(300)
def test_demo_tells_the_story_and_leaves_nothing_running(no_leftovers: Path) -> None:
    tmp_path = no_leftovers
    run = run_demo(tmp_path)
    out = run.output
    assert run.returncode == 0, out
    # Gagnef finds Leksand's policy and Kungsbacka's assistant, signatures verified.
    assert re.search(
        r'"AI-policy" finds 2029 Leksand: policy "Policy för tillämpning av artificiell '
        rf'intelligens".*\n\s+signed by Leksand: signature verified \(key id {KEY_ID}\)',
        out,
    ), out
    assert re.search(
        r'"digital assistent" finds 1384 Kungsbacka: use case "Gemensam digital assistent för '
        rf'offentlig sektor".*\n\s+signed by Kungsbacka: signature verified \(key id {KEY_ID}\)',
        out,
    ), out
    # Both aggregation paths, the sync, the adoption flowing back, visibility, coverage.
    assert re.search(r"[1-9]\d* entries pushed by Kungsbacka and Tibro, [1-9]\d* harvested", out)
    assert re.search(r"hämtade \d+ (ny post|nya poster)", out), out
    assert re.search(
        rf"Leksand's node holds the adoption .*signed by Gagnef, signature verified "
        rf"\(key id {KEY_ID}\)",
        out,
    ), out
    assert "holds Kungsbacka's members-only lesson" in out
    # "Passar er" at Gagnef (issue 14, point 3): the top 3 with reasons, and the time
    # from nothing to its first adopted solution that fits its rules.
    suits = out[out.index("Gagnef asks what suits it") :].split("\n", 1)[1]
    assert re.match(r'\s+1\. \w+: ".+" \(\d{4}/\S+\)\n\s+– .*liknande kommun', suits), suits
    assert re.search(
        r"From nothing to Gagnef's first adopted solution that fits its rules: \d", out
    ), out
    # The transparency log in one step: a checkpoint cosigned by kommuner, one proof.
    assert re.search(r"transparency log .*cosigned by [2-9] kommuner as witnesses", out), out
    assert re.search(r"inclusion proof of Leksand's policy .*leaf \d+, \d+ hashes", out), out
    assert "4 of 290 kommuner are members" in out
    assert re.search(r"Stopped 4 servers in [\d.]+ s; the demo folder is removed", out), out
    # No walls of logs: numbered steps and short indented details only.
    assert max(int(n) for n in re.findall(r"^\s?(\d+)\. ", out, re.MULTILINE)) >= 12
    assert "Traceback" not in out and '"level"' not in out
    assert run.seconds < MAX_SECONDS, f"the demo took {run.seconds:.1f} s"
    # Nothing left: no process naming the folder, no port answering, no folder.
    assert processes_naming(tmp_path) == {}
    addresses = addresses_in(out)
    assert len(addresses) >= 4  # member, public, web, Leksand's node
    assert all(refused(a) for a in addresses), addresses
    assert not any(tmp_path.glob("samverka-demo-*"))


@pytest.mark.timeout(180)
def test_ctrl_c_stops_every_server(no_leftovers: Path) -> None:
    log = no_leftovers / "demo.out"
    proc = start_demo(no_leftovers, log)
    try:
        wait_for_output(log, r"^ 4\. ", proc, timeout=90)
        assert len(processes_naming(no_leftovers)) == 4
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert processes_naming(no_leftovers) == {}
    assert "demo interrupted" in log.read_text(encoding="utf-8")


def test_ctrl_c_ends_work_that_swallowed_the_first_cancellation() -> None:
    """A cancellation lost inside the work (Python 3.11 loses one that meets a timeout
    firing at the same moment; the demo then ran on and exited 0, seen once in a full
    run) must not lose Ctrl-C: it cancels again until the work ends, and the outcome is
    KeyboardInterrupt."""
    swallowed = 0

    async def stubborn() -> str:
        nonlocal swallowed
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
        for _ in range(100):
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise
        return "ran to the end"

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(until_interrupted(stubborn()))
    assert swallowed == 2 and time.monotonic() - started < 2


@pytest.mark.timeout(180)
def test_servers_stop_when_the_demo_is_killed(no_leftovers: Path) -> None:
    log = no_leftovers / "demo.out"
    proc = start_demo(no_leftovers, log)
    try:
        wait_for_output(log, r"^ 4\. ", proc, timeout=90)
        assert len(processes_naming(no_leftovers)) == 4
        began = time.monotonic()
        proc.kill()  # SIGKILL: no finally runs; the kernel tells the servers (guard)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = wait_gone(no_leftovers, timeout=30)
    assert left == {}, left
    assert time.monotonic() - began < 30


def test_each_kommun_publishes_a_valid_profile_and_leksand_accepts_minimal_risk() -> None:
    for code in content.BY_KOMMUN:
        record = content.profile(code)
        record.header.origin, record.header.version = code, 1
        assert record_issues(record, origin=code) == [], code
    leksand = content.profile(content.LEKSAND).kommun_profile.ai_rules
    assert leksand.max_risk_class == records_pb2.RISK_CLASS_MINIMAL
