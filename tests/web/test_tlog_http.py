"""The hub's transparency log over HTTP, checked by the independent verifier.

A real ``hub serve`` process (SQLite) with the demo federation enrolled (members'
feeds ingested as a push does, MEMBERS records and drafts among them); its sequencer
logs what arrives while it runs. tests/tlogcheck.py (no samverka imports) checks
the checkpoint's signature with the key served at /log/key, every tile and entry
bundle, sampled inclusion proofs, and a consistency proof between a checkpoint
fetched before and one after more pushes (crossing a full 256-leaf tile).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import factories
import tlogcheck
import webkit
from samverka.v1 import records_pb2
from samverka_hub.tlog import LOG_VKEY_FILE
from test_serve import hub_serve


def lesson(code: str, record_id: str, **fields: Any) -> records_pb2.Record:
    return factories.make_record("lesson", record_id=record_id, origin=code, **fields)


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def expected_size(federation: webkit.Federation) -> int:
    directory = federation.hub.council.current_directory()
    assert directory is not None
    return directory.version + federation.hub.store.log_position()


def wait_for_size(base: str, size: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        status, _, body = fetch(base + "checkpoint")
        if status == 200 and int(body.split(b"\n")[1]) >= size:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the log did not reach {size} leaves: {status} {body!r}")
        time.sleep(0.1)


def all_leaves(base: str, size: int) -> list[bytes]:
    leaves: list[bytes] = []
    for n in range((size + 255) // 256):
        fetcher = tlogcheck.http_fetcher(base)
        leaves += tlogcheck.read_bundle(fetcher, n, min(256, size - 256 * n))
    return leaves


def test_a_running_hub_serves_a_log_the_independent_verifier_accepts(tmp_path: Path) -> None:
    with webkit.seeded_hub(tmp_path / "fed") as federation:
        hub_dir = federation.hub.dir
        with hub_serve(hub_dir, tmp_path, "--web-listen", "127.0.0.1:0") as (bound, log_path):
            base = f"http://{bound['web']}/log/"
            status, headers, key = fetch(base + "key")
            assert status == 200 and headers["content-type"].startswith("text/plain")
            vkey = key.decode().strip()
            assert vkey == (hub_dir / LOG_VKEY_FILE).read_text().strip()

            first_size = expected_size(federation)
            wait_for_size(base, first_size)
            status, headers, _ = fetch(base + "checkpoint")
            assert headers["cache-control"] == "no-cache"
            log_fetch = tlogcheck.http_fetcher(base)
            report, old = tlogcheck.check_log(log_fetch, vkey, audit_all=True)
            assert report.size == first_size and report.origin == vkey.split("+")[0]

            # More pushes while it serves, a MEMBERS record among them, past one full tile.
            leksand, tibro = webkit.LEKSAND, webkit.TIBRO
            for i in range(150):
                for code in (leksand, tibro):
                    federation.members[code].publisher.publish(
                        lesson(code, f"l-{i}", title=f"Kort lärdom {i}")
                    )
            federation.members[tibro].publisher.publish(
                lesson(tibro, "hemlig", visibility=webkit.MEM, title=f"{webkit.SECRET} bara här")
            )
            federation.push(federation.members[leksand])
            federation.push(federation.members[tibro])
            new_size = expected_size(federation)
            assert new_size > 256 > first_size
            wait_for_size(base, new_size)
            report, new = tlogcheck.check_log(log_fetch, vkey, previous=old, audit_all=True)
            assert report.consistency == (old.size, new.size)
            assert len(report.leaves_checked) >= 2

            # The log leaks nothing of MEMBERS records (nor drafts): no leaf holds text.
            leaves = all_leaves(base, new.size)
            assert len(leaves) == new.size
            assert not any(webkit.SECRET.encode() in leaf for leaf in leaves)
            assert not any(b"Kort" in leaf for leaf in leaves)

            # Serving rules: full tiles immutable, partial ones short, beyond the tree 404.
            status, headers, body = fetch(base + "tile/0/000")
            assert status == 200 and len(body) == 256 * 32
            assert "immutable" in headers["cache-control"]
            assert headers["content-type"] == "application/octet-stream"
            status, headers, _ = fetch(base + "tile/entries/001.p/1")
            assert status == 200 and "immutable" not in headers["cache-control"]
            for beyond in ("tile/0/009", "tile/entries/005", "tile/1/000", "tile/0/001.p/255"):
                status, _, _ = fetch(base + beyond)
                assert status == 404, beyond
            for bad in ("tile/0/1", "tile/x/000", "tile/0/000.p/0", "../key"):
                status, _, _ = fetch(base + bad)
                assert status == 404, bad
        assert "tlog-sequencer failed" not in log_path.read_text()
        # `hub web` alone serves the log as the hub last signed it.
        with hub_web_alone(hub_dir, tmp_path) as alone:
            _, _, last = fetch(alone + "checkpoint")
            assert int(last.split(b"\n")[1]) == new.size
            tlogcheck.check_log(tlogcheck.http_fetcher(alone), vkey, previous=old)


@contextmanager
def hub_web_alone(hub_dir: Path, tmp: Path) -> Iterator[str]:
    """``samverka hub web`` on the folder: the log's base URL; SIGTERM afterwards."""
    address_file, log_path = tmp / "web-alone.json", tmp / "web-alone.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "samverka", "hub", "web", "--dir", str(hub_dir),
             "--listen", "127.0.0.1:0", "--address-file", str(address_file)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not address_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"hub web did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
            yield f"http://{json.loads(address_file.read_text())['web']}/log/"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()


def test_hub_init_prints_the_log_key(tmp_path: Path) -> None:
    env = {**os.environ, "SAMVERKA_LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-m", "samverka", "hub", "init", "--dir", str(tmp_path / "hub"),
         "--json", "--address", "hub.example.se:7443"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    info = json.loads(done.stdout)
    assert info["log_key"].startswith("hub.example.se/samverka-log+")
    assert info["log_key"] == (tmp_path / "hub" / LOG_VKEY_FILE).read_text().strip()
    tlogcheck.parse_vkey(info["log_key"])
    assert (tmp_path / "hub" / "keys" / "log.key").stat().st_mode & 0o777 == 0o600
