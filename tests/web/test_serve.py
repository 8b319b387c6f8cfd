"""``hub serve`` serves the catalog from its own asyncio loop, beside the gRPC ports, and
stops it on SIGTERM; a busy catalog port does not keep the feeds from being served, and
the catalog is a supervised task: down in /metrics and health while it cannot serve,
tried again until it does, started again when its server stops listening."""

from __future__ import annotations

import asyncio
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
from grpc_health.v1 import health_pb2, health_pb2_grpc
from samverka.transport.client import ClientTls, FeedClient
from samverka_hub.web.server import WebEndpoint
from webkit import Federation

sys.path.insert(0, str(Path(__file__).parent.parent / "hub"))
sys.path.insert(0, str(Path(__file__).parent.parent / "ops"))
from hubkit import run_async, wait_for
from opskit import scrape, value


@contextmanager
def hub_serve(
    hub_dir: Path, tmp: Path, *extra: str, metrics: str = ""
) -> Iterator[tuple[dict[str, str], Path]]:
    address_file = tmp / "addresses.json"
    address_file.unlink(missing_ok=True)
    log_path = tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "samverka", "hub", "serve", "--dir", str(hub_dir),
             "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
             "--metrics-listen", metrics, "--address-file", str(address_file), *extra],
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
    """The catalog's port is taken when the hub starts: the feeds are served, the
    failure is logged once with the next try, /metrics and health show the task down;
    once the port is free the catalog comes up by itself and shows up again."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        serving = hub_serve(
            federation.hub.dir, tmp_path, "--web-listen", busy, metrics="127.0.0.1:0"
        )
        with serving as (bound, log):
            assert "web" not in bound and {"member", "public"} <= set(bound)
            metrics = f"http://{bound['metrics']}/metrics"
            tls = ClientTls.from_files(federation.hub.dir / "tls" / "ca.pem")
            wait_for(lambda: task_up(metrics) == 0, 10, "web-catalog down in /metrics")
            assert run_async(health(bound["public"], tls, TASK)) == NOT_SERVING
            # The catalog is not critical: the hub as a whole goes on serving.
            assert run_async(health(bound["public"], tls)) == SERVING
            wait_for(lambda: task_failures(metrics) >= 3, 15, "three tries at the port")
            failures = [e for e in events(log) if e.get("event") == "task_failed"]
            warned = [e for e in failures if e["level"] == "warning"]
            assert len(warned) == 1, failures  # once per streak; the same again is DEBUG
            assert warned[0]["task"] == "web-catalog"
            assert "cannot serve the web catalog on" in warned[0]["message"]
            assert "trying again in" in warned[0]["message"]
            taken.close()
            wait_for(lambda: task_up(metrics) == 1, 15, "web-catalog up once the port is free")
            status, body = get(f"http://{busy}/api/coverage")
            assert status == 200 and json.loads(body)["kommuner_total"] == 290
            assert run_async(health(bound["public"], tls, TASK)) == SERVING
            assert task_failures(metrics) == 0
            assert any(e.get("event") == "task_recovered" for e in events(log))


TASK = "samverka.task.web-catalog"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def task_up(metrics_url: str) -> float | None:
    return scrape(metrics_url).get(("samverka_task_up", frozenset({("task", "web-catalog")})))


def task_failures(metrics_url: str) -> float:
    return value(scrape(metrics_url), "samverka_task_failures", {"task": "web-catalog"})


def events(log: Path) -> list[dict[str, object]]:
    lines = log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


async def health(address: str, tls: ClientTls, service: str = "") -> int:
    async with FeedClient.connect(address, tls) as feed:
        stub = health_pb2_grpc.HealthStub(feed.channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)


def test_a_catalog_that_stops_listening_is_started_again(federation: Federation) -> None:
    """The catalog's server stops listening under it (its socket closed): the supervisor
    notices within a tick, marks it down, and serves again on the same port."""
    hub = federation.hub

    async def scenario() -> None:
        endpoint = WebEndpoint(
            hub.store, hub.council.current_directory, hub.config.web, listen="127.0.0.1:0"
        )
        changes: list[bool] = []
        endpoint.task_state.observers.add(lambda state: changes.append(state.up))
        await endpoint.start()
        try:
            assert endpoint.serving and endpoint.error is None
            url = f"http://{endpoint.bound_address}/api/coverage"
            assert (await asyncio.to_thread(get, url))[0] == 200
            server = endpoint._server
            assert server is not None
            for listening in server.servers:
                listening.close()  # the fault: nothing accepts on the port any more
            deadline = time.monotonic() + 5
            while False not in changes:
                assert time.monotonic() < deadline, "the supervisor did not notice"
                await asyncio.sleep(0.05)
            assert "stopped listening" in endpoint.task_state.last_error
            while not (endpoint.serving and endpoint._server not in (None, server)):
                assert time.monotonic() < deadline, "the catalog was not started again"
                await asyncio.sleep(0.05)
            assert (await asyncio.to_thread(get, url))[0] == 200
            assert changes[-1] is True and endpoint.task_state.failures == 0
        finally:
            await endpoint.close()
        with pytest.raises(OSError):
            await asyncio.to_thread(get, url)

    run_async(scenario())


def test_web_listen_empty_serves_no_catalog(federation: Federation, tmp_path: Path) -> None:
    with hub_serve(federation.hub.dir, tmp_path, "--web-listen", "") as (bound, log):
        assert "web" not in bound
        assert "web catalog" not in log.read_text()
