"""docs/OPERATIONS.md's drill "Rotating the hub's keys", walked with the documented
commands as real processes: a hub (SQLite, fixed ports across restarts) and one
enrolled node; the hub backed up, its directory key, log key and CA rotated, restarted;
the node follows on ``node directory --refresh``, doctor says so and asks for a renewal,
the node renews, the hub finishes the CA rotation (refused before) and is restarted,
and the node syncs with the hub presenting its certificate from the new CA. The setup
(``hub init``, the node's enrollment) and the checks between the steps (``node
directory --json``, the doctor after the renewal and on the hub) run in this process
(opskit's ``init_hub_here``, ``enrolled_node(commands=False)``, ``Procs.json_here``): same
code, a process start less each; every documented step is a ``samverka`` process.

The full federation (two serving, witnessing nodes and one offline through two
rotations, forged rotations) is tests/hub/test_hub_key_rotation_e2e.py.
"""

from __future__ import annotations

import signal
import socket
import ssl
import stat
import tarfile
from pathlib import Path

import pytest
from cryptography import x509
from hubkit import Procs, RunningHub, start_hub
from opskit import enrolled_node, init_hub_here

TIBRO = "1472"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served_issuer(address: str) -> str:
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).issuer.rfc4514_string()


def restart(procs: Procs, hub: RunningHub) -> RunningHub:
    """``systemctl restart samverka-hub``: SIGTERM, then serve again (same ports)."""
    hub.proc.send_signal(signal.SIGTERM)
    assert hub.proc.wait(timeout=30) == 0
    again = start_hub(procs, hub.dir)
    assert (again.member, again.public) == (hub.member, hub.public)
    return again


@pytest.mark.timeout(400)  # 9 commands and three hub starts: ~12 s on an idle machine
def test_rotating_the_hubs_keys_drill(procs: Procs, tmp_path: Path) -> None:
    procs.env |= {
        "SAMVERKA_SERVER_LISTEN": f"127.0.0.1:{free_port()}",
        "SAMVERKA_PUBLIC_LISTEN": f"127.0.0.1:{free_port()}",
        "SAMVERKA_METRICS_LISTEN": "",
        "SAMVERKA_WEB_ENABLED": "false",
        "SAMVERKA_HARVEST_ENABLED": "false",
        "SAMVERKA_DIRECTORY_POLL_SECONDS": "0.1",
    }
    # Setup the drill is not about, in this process (hub init, the node's enrollment:
    # commands with tests of their own); the drill's own commands run as processes.
    init_hub_here(procs, tmp_path / "hub")
    hub = start_hub(procs, tmp_path / "hub")
    node = enrolled_node(procs, hub, TIBRO, commands=False)
    hub_dir = hub.dir
    before = procs.json_here("node", "directory", "--dir", str(node))
    first_issuer = served_issuer(hub.member)

    # samverka node backup --dir HUB --out hub-before-rotation.tar.gz
    archive = tmp_path / "hub-before-rotation.tar.gz"
    procs.run("node", "backup", "--dir", str(hub_dir), "--out", str(archive))
    with tarfile.open(archive) as tar:
        assert any(name.endswith("ca/ca.key") for name in tar.getnames())

    # samverka hub rotate-keys --dir HUB --directory --log --ca
    rotated = procs.run(
        "hub", "rotate-keys", "--dir", str(hub_dir), "--directory", "--log", "--ca"
    )  # fmt: skip
    assert rotated.stdout.startswith("Bytt: katalognyckeln, loggnyckeln, CA:n."), rotated
    assert "samverka hub rotate-keys --finish" in rotated.stdout
    for kept in ("keys/retired", "keys/retired-log", "ca/retired"):
        files = list((hub_dir / kept).iterdir())
        assert files and all(
            stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files if f.suffix == ".key"
        )
    # systemctl restart samverka-hub (after --ca)
    hub = restart(procs, hub)
    assert served_issuer(hub.member) == first_issuer  # the old CA's, until --finish

    # samverka node directory --refresh --dir NODE
    refreshed = procs.run("node", "directory", "--refresh", "--dir", str(node))
    assert "followed the hub's key rotation (directory key, log key, CA)" in refreshed.stdout
    after = procs.json_here("node", "directory", "--dir", str(node))
    assert after["hub_key_id"] != before["hub_key_id"]
    assert after["log_key"] != before["log_key"]
    # samverka doctor --dir NODE
    doctor = procs.json("doctor", "--dir", str(node), "--offline")
    said = [f for f in doctor["findings"] if f["check"] == "directory"]
    assert any("followed 1 hub key rotation(s)" in f["message"] for f in said), said
    assert any(f["status"] == "warn" and "renew-cert" in f["hint"] for f in said), said

    # The finish waits for the member's renewal, naming it.
    early = procs.run("hub", "rotate-keys", "--dir", str(hub_dir), "--finish", check=False)
    assert early.returncode == 3 and TIBRO in early.stderr, early
    # samverka node renew-cert --dir NODE
    procs.run("node", "renew-cert", "--dir", str(node))
    doctor = procs.json_here("doctor", "--dir", str(node), "--offline")
    assert not [f for f in doctor["findings"] if f["status"] != "ok"], doctor
    # samverka hub rotate-keys --dir HUB --finish; systemctl restart samverka-hub
    finished = procs.run("hub", "rotate-keys", "--dir", str(hub_dir), "--finish")
    assert finished.stdout.startswith("CA-rotationen är avslutad"), finished
    hub = restart(procs, hub)
    assert served_issuer(hub.member) != first_issuer
    # The node goes on: its sync is proven under the new log key, over the new CA.
    assert procs.json("sync", "--dir", str(node))["pushed"] is not None
    doctor = procs.json_here("doctor", "--dir", str(hub_dir), "--offline")
    assert not [f for f in doctor["findings"] if f["status"] == "fail"], doctor
