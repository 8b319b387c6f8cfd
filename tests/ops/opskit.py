"""Helpers for the operations tests (``import opskit``)."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

from aggkit import enroll_here
from hubkit import Procs, RunningHub, wait_for
from prometheus_client.parser import text_string_to_metric_families
from samverka.node import init_node
from samverka.transport.client import ClientTls
from samverka_hub.folder import init_hub

REPO = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    """The environment without any SAMVERKA_* setting of the person running the tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}


def enrolled_node(procs: Procs, hub: RunningHub, code: str, *, commands: bool = True) -> Path:
    """``node init`` (in this process: what the command runs, a subprocess less; the
    command has tests of its own) + ``node enroll`` + ``hub members approve`` + ``node
    enroll`` again: as ``samverka`` processes, or with ``commands=False`` in this process
    (``aggkit.enroll_here``: three subprocesses less, for tests about something else)."""
    node_dir = procs.tmp / f"node-{code}"
    with init_node(node_dir, code, listen="127.0.0.1:0"):
        pass
    if not commands:
        enroll_here(procs, hub, node_dir, code)
        return node_dir
    enroll = ("node", "enroll", "--dir", str(node_dir), "--hub", hub.public, "--ca", str(hub.ca))
    assert procs.json(*enroll)["status"] == "pending"
    procs.run("hub", "members", "approve", code, "--dir", str(hub.dir))
    assert procs.json(*enroll)["status"] == "approved"
    return node_dir


def init_hub_here(procs: Procs, hub_dir: Path, *, store_url: str = "") -> None:
    """What ``hub init --dir HUB [--store-url URL] --listen 127.0.0.1:0 --public-listen
    127.0.0.1:0`` runs (the command is init_hub and nothing more), in this process under
    the processes' environment (``procs.env``): a process start less (~1.5-2.5 s here),
    for drills about something else; ``hub init`` has tests of its own."""
    with mock.patch.dict(os.environ, procs.env, clear=True):
        init_hub(
            hub_dir, member_listen="127.0.0.1:0", public_listen="127.0.0.1:0", store_url=store_url
        ).close()


def member_tls(node_dir: Path) -> ClientTls:
    tls = node_dir / "tls"
    return ClientTls.from_files(tls / "ca.pem", tls / "node.pem", tls / "node.key")


def hub_metrics_address(procs: Procs, name: str = "hub") -> str:
    """The metrics HOST:PORT a ``hub serve`` wrote into its address file."""
    bound = json.loads((procs.tmp / f"{name}.addresses").read_text())
    return str(bound["metrics"])


def printed_metrics_url(procs: Procs, name: str) -> str:
    """The ``metrics on URL`` line a ``serve`` command printed on stdout."""

    def find() -> str | None:
        for line in (procs.tmp / f"{name}.out").read_text().splitlines():
            if line.startswith("{"):  # under JSON logging (not a terminal): an event
                event = json.loads(line)
                if event["event"] == "metrics_serving":
                    return str(event["url"])
            elif line.startswith("metrics on "):
                return line.removeprefix("metrics on ").strip()
        return None

    return str(wait_for(find, 30, f"{name} to print its metrics address"))


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """GET a /metrics endpoint and parse it with Prometheus' own text-format parser."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        content_type = response.headers["Content-Type"]
        assert content_type.startswith("text/plain"), content_type
        text = response.read().decode("utf-8")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, labels: Mapping[str, str] | None = None) -> float:
    """A sample's value (0 when absent: a counter nobody incremented is not exported)."""
    return samples.get((name, frozenset((labels or {}).items())), 0.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
