"""docs/OPERATIONS.md's drills walked with the documented commands, as real processes.

Covered here: the hub's restore drill on PostgreSQL (a restored copy cannot fork the
directory until ``hub promote``), the database password kept out of samverka.toml,
replicas on one host (every port from the environment, one shared folder) with the hub's
own certificate renewed (``hub renew-cert``) and picked up on restart, and what a
revoked node and a node whose hub cursor lies beyond a restored hub's log are told.
Enrollment, key rotation, node certificate renewal and revocation at the hub are walked
in tests/hub/test_membership_e2e.py; node backup/restore and the hub's pg_dump/pg_restore
in tests/ops/test_backup.py; replicas sharing PostgreSQL in tests/hub/test_replicas.py.
The commands each drill is about run as ``samverka`` processes; its setup (``hub init``,
enrollment) and the checks around it run in this process (opskit's ``init_hub_here``,
``enrolled_node(commands=False)``, ``Procs.run_here``/``json_here``: same code, a process
start less each).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from hubkit import Procs, RunningHub, launch_hub, run_async, start_hub, wait_for
from opskit import enrolled_node, init_hub_here
from pgserver import PgServer
from samverka.config import CONFIG_FILE
from samverka.ops.doctor import health_probe
from samverka_hub.config import load_hub_config

TIBRO = "1472"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served_certificate(address: str) -> x509.Certificate:
    """The certificate a TLS port presents (the hub's public port asks for none)."""
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
    return x509.load_der_x509_certificate(der)


# -- the hub's restore drill on PostgreSQL --------------------------------------------------


def test_hub_restore_drill_cannot_fork_the_directory(
    procs: Procs, pg_server: PgServer, tmp_path: Path
) -> None:
    with pg_server.database() as source, pg_server.database() as target:
        password = pg_server.password or "drill s3cr/t#"
        auth = f"{pg_server.user}:{quote(password, safe='')}"
        base = f"postgresql://{auth}@{pg_server.host}:{pg_server.port}"
        hub_dir = tmp_path / "hub"
        procs.run(
            "hub", "init", "--dir", str(hub_dir), "--store-url", f"{base}/{source}",
            "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
        )  # fmt: skip
        # The password went into a 0600 file, not into the 0644 samverka.toml.
        text = (hub_dir / CONFIG_FILE).read_text()
        assert password not in text and quote(password, safe="") not in text
        secret = hub_dir / "store-password"
        assert secret.read_text().strip() == password
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert tomllib.loads(text)["store"]["password_file"] == "store-password"
        # (checks around the drill run in this process: run_here, json_here)
        assert "FAIL" not in procs.run_here("doctor", "--dir", str(hub_dir), "--offline").stdout

        # The documented backup: pg_dump, the folder's files; restore into a new database.
        libpq = pg_server.url(driver="postgresql")
        dump = tmp_path / "hub.dump"
        subprocess.run(["pg_dump", "-Fc", "-f", str(dump), f"{libpq}/{source}"], check=True)
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "-d", f"{libpq}/{target}", str(dump)],
            check=True,
        )
        restored_dir = tmp_path / "hub-restored"
        shutil.copytree(hub_dir, restored_dir)
        drill = Procs(tmp_path, {**procs.env, "SAMVERKA_STORE_URL": f"{base}/{target}"})
        # doctor says the copy may not sign, and how it would (not to be done in a drill).
        doctor = drill.run("doctor", "--dir", str(restored_dir), "--offline", check=False)
        assert doctor.returncode == 1 and "kopia (återställd eller klonad)" in doctor.stdout, doctor
        assert "samverka hub promote" in doctor.stdout

        shown = drill.json_here("hub", "directory", "show", "--dir", str(restored_dir))
        assert shown["signing_allowed"] is False
        assert procs.json_here("hub", "directory", "show", "--dir", str(hub_dir))["signing_allowed"]
        # The drill's copy signs nothing: production signs version 2 meanwhile, and the
        # copy's "version 2" (other content) would fork what nodes follow.
        refused = drill.run(
            "hub", "directory", "reissue", "--min-version", "2", "--dir", str(restored_dir),
            check=False,
        )  # fmt: skip
        assert refused.returncode == 3, refused
        assert "copy" in refused.stderr and "samverka hub promote" in refused.stderr
        assert (
            "version 2," in procs.run("hub", "directory", "reissue", "--dir", str(hub_dir)).stdout
        )
        approve = drill.run(
            "hub", "members", "approve", TIBRO, "--dir", str(restored_dir), check=False
        )
        assert approve.returncode != 0  # nothing pending, and no signing either way

        # Production lost for good: the copy is declared production, then signs above.
        promoted = drill.json("hub", "promote", "--reason", "drill", "--dir", str(restored_dir))
        assert promoted["previous"] and promoted["database"] != promoted["previous"]
        reissued = drill.run(
            "hub", "directory", "reissue", "--min-version", "3", "--dir", str(restored_dir)
        )
        assert "version 3," in reissued.stdout
        assert "FAIL" not in drill.run("doctor", "--dir", str(restored_dir), "--offline").stdout
        # A password file others can read fails the doctor.
        secret.chmod(0o644)
        doctor = procs.run("doctor", "--dir", str(hub_dir), "--offline", check=False)
        assert doctor.returncode == 1 and "store-password" in doctor.stdout, doctor


# -- replicas on one host, and the hub's own certificate --------------------------------------


def replica_env(procs: Procs) -> dict[str, str]:
    """One replica's environment file, as docs/OPERATIONS.md's recipe writes it."""
    ports = {key: f"127.0.0.1:{free_port()}" for key in ("SERVER", "PUBLIC", "WEB", "METRICS")}
    return {**procs.env, **{f"SAMVERKA_{k}_LISTEN": v for k, v in ports.items()}}


def serve_together(hubs: dict[str, tuple[Procs, Path]]) -> dict[str, RunningHub]:
    """``hub serve`` for each NAME: (its processes' environment, folder), all started
    before waiting for any (hubkit.launch_hub)."""
    waits = {name: launch_hub(procs, hub_dir, name=name) for name, (procs, hub_dir) in hubs.items()}
    return {name: listening() for name, listening in waits.items()}


def test_replicas_on_one_host_and_the_hub_certificate_renewed(
    procs: Procs, pg_server: PgServer, tmp_path: Path
) -> None:
    with pg_server.database() as name:
        hub_dir = tmp_path / "hub"
        init_hub_here(procs, hub_dir, store_url=pg_server.url(name))  # setup, in this process
        envs = {replica: replica_env(procs) for replica in ("a", "b")}
        # systemctl enable --now samverka-hub@1 samverka-hub@2: both start at once.
        replicas = serve_together(
            {f"hub-{r}": (Procs(tmp_path, env, procs.started), hub_dir) for r, env in envs.items()}
        )
        replicas = {r: replicas[f"hub-{r}"] for r in envs}
        config = load_hub_config(hub_dir).node
        for replica, running in replicas.items():
            env = envs[replica]
            assert running.member == env["SAMVERKA_SERVER_LISTEN"]
            assert running.public == env["SAMVERKA_PUBLIC_LISTEN"]
            bound = json.loads((tmp_path / f"hub-{replica}.addresses").read_text())
            assert bound["web"] == env["SAMVERKA_WEB_LISTEN"]
            assert bound["metrics"] == env["SAMVERKA_METRICS_LISTEN"]
            assert run_async(health_probe(running.member, config)) == "SERVING"
        old_serial = served_certificate(replicas["b"].public).serial_number

        renewed = procs.json(
            "hub", "renew-cert", "--host", "replica-b.example.se", "--dir", str(hub_dir)
        )
        assert "replica-b.example.se" in renewed["hosts"] and "localhost" in renewed["hosts"]
        assert (hub_dir / "tls" / "node.pem.old").exists()
        # A running replica keeps its certificate until restarted, one at a time.
        assert served_certificate(replicas["b"].public).serial_number == old_serial
        replicas["b"].proc.send_signal(signal.SIGTERM)
        assert replicas["b"].proc.wait(timeout=30) == 0
        replicas["b"] = start_hub(Procs(tmp_path, envs["b"], procs.started), hub_dir, name="hub-b")
        cert = served_certificate(replicas["b"].public)
        assert format(cert.serial_number, "x") == renewed["serial"]
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "replica-b.example.se" in names.get_values_for_type(x509.DNSName)
        assert served_certificate(replicas["a"].public).serial_number == old_serial
        for running in replicas.values():
            assert run_async(health_probe(running.member, config)) == "SERVING"
        bad = procs.run_here(
            "hub", "renew-cert", "--host", "a b", "--dir", str(hub_dir), check=False
        )
        assert bad.returncode == 3 and "not a host name" in bad.stderr


# -- what a node is told: revoked, and a hub restored below its cursor -------------------------


@pytest.fixture
def hub(procs: Procs) -> RunningHub:
    procs.env["SAMVERKA_DIRECTORY_POLL_SECONDS"] = "0.1"
    init_hub_here(procs, procs.tmp / "hub")  # setup, in this process
    return start_hub(procs, procs.tmp / "hub")


def test_a_hub_restored_below_the_cursor_says_reset_it(procs: Procs, hub: RunningHub) -> None:
    from samverka.node import Node

    # Setup in this process: enrollment (commands with tests of their own), a first sync.
    node_dir = enrolled_node(procs, hub, TIBRO, commands=False)
    procs.run_here("sync", "--dir", str(node_dir))
    with Node.open(node_dir) as node:  # as if the hub's log had been longer before
        node.store.set_cursor("hub", node.store.get_cursor("hub") + 1000)
    ahead = procs.run("sync", "--dir", str(node_dir), check=False)
    assert ahead.returncode == 1, ahead
    assert "cursor_ahead" in ahead.stderr and "samverka sync --reset-cursor" in ahead.stderr
    reset = procs.run("sync", "--reset-cursor", "--dir", str(node_dir))
    assert "hubbens markör flyttad" in reset.stdout

    # Revoked: enroll is no longer "already enrolled, exit 0"; sync is denied, not transport.
    procs.run_here("hub", "members", "revoke", TIBRO, "--reason", "drill", "--dir", str(hub.dir))

    def refused() -> bool:
        return procs.run("sync", "--dir", str(node_dir), check=False).returncode == 6

    wait_for(refused, 15, "the hub to refuse the revoked node")
    again = procs.run(
        "node", "enroll", "--dir", str(node_dir), "--hub", hub.public, "--ca", str(hub.ca),
        check=False,
    )  # fmt: skip
    assert again.returncode == 6 and re.search("revoked|återkallat", again.stderr), again
    doctor = procs.run("doctor", "--dir", str(node_dir), "--json", check=False)
    findings = json.loads(doctor.stdout)["findings"]
    failed = {f["check"] for f in findings if f["status"] == "fail"}
    assert failed == {"hub"}, findings
    assert any("revoked" in f["message"] or "refuses" in f["message"] for f in findings)
