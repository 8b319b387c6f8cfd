"""``hub serve`` serves the catalog from its own asyncio loop, beside the gRPC ports, and
stops it on SIGTERM; a busy catalog port does not keep the feeds from being served."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from webkit import Federation


@contextmanager
def hub_serve(hub_dir: Path, tmp: Path, *extra: str) -> Iterator[tuple[dict[str, str], Path]]:
    address_file = tmp / "addresses.json"
    address_file.unlink(missing_ok=True)
    log_path = tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "samverka", "hub", "serve", "--dir", str(hub_dir),
             "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
             "--metrics-listen", "", "--address-file", str(address_file), *extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "SAMVERKA_LOG_FORMAT": "json", "SAMVERKA_HARVEST_ENABLED": "false"},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not address_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"hub serve did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
            yield json.loads(address_file.read_text()), log_path
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
    assert code == 0, log_path.read_text()


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8")


def test_hub_serve_serves_the_catalog_and_stops_it_on_sigterm(
    federation: Federation, tmp_path: Path
) -> None:
    with hub_serve(federation.hub.dir, tmp_path, "--web-listen", "127.0.0.1:0") as (bound, log):
        assert {"member", "public", "web"} <= set(bound)
        status, html = get(f"http://{bound['web']}/sok?q=copilot")
        assert status == 200
        assert "Pilot med Microsoft 365 Copilot i administrationen" in html
        status, body = get(f"http://{bound['web']}/api/coverage")
        assert json.loads(body)["kommuner_total"] == 290
        assert f"hub web catalog on http://{bound['web']}/" in log.read_text()
    host, port = bound["web"].rsplit(":", 1)
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass


def test_a_busy_catalog_port_does_not_stop_the_hub(federation: Federation, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        with hub_serve(federation.hub.dir, tmp_path, "--web-listen", busy) as (bound, log):
            assert "web" not in bound and {"member", "public"} <= set(bound)
            assert "web_unavailable" in log.read_text()


def test_web_listen_empty_serves_no_catalog(federation: Federation, tmp_path: Path) -> None:
    with hub_serve(federation.hub.dir, tmp_path, "--web-listen", "") as (bound, log):
        assert "web" not in bound
        assert "web catalog" not in log.read_text()
