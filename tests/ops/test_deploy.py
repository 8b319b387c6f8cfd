"""The files in deploy/ and the docs that must not drift, checked for real.

- systemd units: ``systemd-analyze verify`` on copies whose ExecStart points at this
  venv's ``samverka`` (verify needs the binary to exist; the real units stay as they are);
- compose.yaml: ``docker compose config`` where it works, else parsed as YAML; then the
  hub service is run from its own environment and command through the container's
  real entrypoint against the local PostgreSQL, and answers health SERVING;
- docs/CONFIGURATION.md: regenerated from the dataclasses and compared;
- README.md: every ``samverka …`` command it shows answers ``--help``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from cryptography import x509
from hubkit import Procs, run_async, wait_for
from opskit import REPO, scrape, value
from pgserver import PgServer
from samverka.config import load_config
from samverka.ops.doctor import health_probe

DEPLOY = REPO / "deploy"
SAMVERKA = Path(sys.executable).with_name("samverka")


# -- systemd ------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["samverka-node.service", "samverka-hub.service"])
def test_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed"
    text = (DEPLOY / "systemd" / unit).read_text()
    for setting in (
        "User=samverka", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
        "NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "Restart=on-failure",
        "RestartSec=", "ReadWritePaths=/var/lib/samverka/", "ExecStartPre=",
    ):  # fmt: skip
        assert setting in text, f"{unit} lacks {setting!r}"
    stop = int(re.search(r"^TimeoutStopSec=(\d+)s$", text, re.M).group(1))  # type: ignore[union-attr]
    assert stop >= 5 * 2  # well above [server] grace_seconds (5 s)
    assert SAMVERKA.exists()
    copy = tmp_path / unit
    copy.write_text(text.replace("/opt/samverka/bin/samverka", str(SAMVERKA)))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # verify reports bad settings as warnings and still exits 0: there must be none.
    assert unit not in result.stderr and "Unknown" not in result.stderr, result.stderr


def test_the_hub_keeps_restarting_while_its_database_is_away() -> None:
    """No start limit: the start check (doctor) fails while a remote database is away, and
    systemd tries again every RestartSec for as long as that takes (a 5-in-600 s burst at
    5 s left a hub failed for good after ~30 s)."""
    for unit in ("samverka-hub.service", "samverka-hub@.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        assert re.search(r"^StartLimitIntervalSec=0$", text, re.M), unit
        assert "StartLimitBurst" not in text, unit
        assert re.search(r"^Restart=on-failure$", text, re.M), unit
        delay = re.search(r"^RestartSec=(\d+)s$", text, re.M)
        assert delay and 1 <= int(delay.group(1)) <= 60, unit
        # The database password: a systemd credential, never in the unit or the folder.
        assert re.search(r"^LoadCredential=store-password:/etc/samverka/", text, re.M), unit
        assert "PASSWORD" not in text.split("[Unit]", 1)[1], unit


def test_the_replica_template_is_the_hub_unit_with_its_own_ports(tmp_path: Path) -> None:
    hub = (DEPLOY / "systemd" / "samverka-hub.service").read_text()
    template = (DEPLOY / "systemd" / "samverka-hub@.service").read_text()

    def settings(text: str) -> list[str]:
        body = text.split("[Unit]", 1)[1]
        return [
            line
            for line in body.splitlines()
            if line and not line.startswith(("#", "Description=", "EnvironmentFile="))
        ]

    assert settings(template) == settings(hub)
    assert re.search(r"^EnvironmentFile=/etc/samverka/hub-%i\.env$", template, re.M)
    for key in ("SERVER", "PUBLIC", "WEB", "METRICS"):  # the recipe names every port
        assert f"SAMVERKA_{key}_LISTEN=" in template
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed"
    copy = tmp_path / "samverka-hub@1.service"
    copy.write_text(template.replace("/opt/samverka/bin/samverka", str(SAMVERKA)))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "samverka-hub@" not in result.stderr and "Unknown" not in result.stderr, result.stderr


def test_the_crosscheck_timer_and_its_service_verify(tmp_path: Path) -> None:
    """A daily oneshot, as hardened as the node's unit, on the node's folder."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed"
    service = (DEPLOY / "systemd" / "samverka-crosscheck.service").read_text()
    timer = (DEPLOY / "systemd" / "samverka-crosscheck.timer").read_text()
    node = (DEPLOY / "systemd" / "samverka-node.service").read_text()
    hardening = [
        line
        for line in node.splitlines()
        if line.startswith(("Protect", "Restrict", "SystemCall", "Capability", "NoNew", "Private"))
    ]
    assert len(hardening) > 10
    for line in [*hardening, "Type=oneshot", "User=samverka", "UMask=0077"]:
        assert f"\n{line}\n" in service, f"samverka-crosscheck.service lacks {line!r}"
    assert "Environment=SAMVERKA_DIR=/var/lib/samverka/node" in service
    assert "ReadWritePaths=/var/lib/samverka/node" in service
    assert re.search(r"^ExecStart=\S+/samverka crosscheck\b", service, re.M)
    assert re.search(r"^ExecStartPre=\S+/samverka sync --no-push\b", service, re.M)
    assert re.search(r"^OnCalendar=", timer, re.M) and "Persistent=true" in timer
    assert "WantedBy=timers.target" in timer
    for name, text in (
        ("samverka-crosscheck.service", service),
        ("samverka-crosscheck.timer", timer),
    ):
        (tmp_path / name).write_text(text.replace("/opt/samverka/bin/samverka", str(SAMVERKA)))
    units = [
        str(tmp_path / "samverka-crosscheck.service"),
        str(tmp_path / "samverka-crosscheck.timer"),
    ]
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "samverka-crosscheck" not in result.stderr and "Unknown" not in result.stderr, (
        result.stderr
    )
    # The options the units pass exist.
    for args in (["crosscheck", "--quiet", "--help"], ["sync", "--no-push", "--quiet", "--help"]):
        shown = subprocess.run([str(SAMVERKA), *args], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr


def test_sysusers_and_tmpfiles_match_the_units() -> None:
    users = (DEPLOY / "systemd" / "samverka.sysusers").read_text()
    assert re.search(r"^u samverka ", users, re.M)
    tmpfiles = (DEPLOY / "systemd" / "samverka.tmpfiles").read_text()
    for folder in ("/var/lib/samverka/node", "/var/lib/samverka/hub"):
        assert re.search(rf"^d {re.escape(folder)}\s+0700 samverka samverka", tmpfiles, re.M)


# -- container and compose -----------------------------------------------------------------


def test_containerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2 and " AS builder" in text
    assert "pip wheel" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r"^HEALTHCHECK .*\n.*samverka.*doctor.*--only.*server", text, re.M)
    assert 'VOLUME ["/var/lib/samverka"]' in text
    assert "deploy/container/entrypoint.sh" in text
    assert os.access(DEPLOY / "container" / "entrypoint.sh", os.X_OK)


def compose_config() -> dict[str, object]:
    path = DEPLOY / "compose.yaml"
    docker = shutil.which("docker")
    if docker:
        result = subprocess.run(
            [docker, "compose", "-f", str(path), "config", "--format", "yaml"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode == 0:  # the compose plugin is there: its verdict counts
            return dict(yaml.safe_load(result.stdout))
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_has_hub_postgres_and_node_with_health_ordering() -> None:
    config = compose_config()
    services = config["services"]
    assert isinstance(services, dict)
    assert {"postgres", "hub", "node"} <= set(services)
    for name in ("postgres", "hub", "node"):
        assert "healthcheck" in services[name], name
    assert services["hub"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["node"]["depends_on"]["hub"]["condition"] == "service_healthy"
    hub_env = services["hub"]["environment"]
    assert hub_env["SAMVERKA_STORE_URL"].startswith("postgresql://")
    # The password is a compose secret, in no environment and no URL.
    assert "@" in hub_env["SAMVERKA_STORE_URL"]
    assert ":" not in hub_env["SAMVERKA_STORE_URL"].split("://", 1)[1].split("@", 1)[0]
    assert hub_env["SAMVERKA_STORE_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in services["postgres"]["environment"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    for name in ("hub", "postgres"):
        assert any(
            (s if isinstance(s, str) else s["source"]) == "store_password"
            for s in services[name]["secrets"]
        ), name
    for name in ("hub", "node"):  # data in volumes, ports only on loopback
        assert any(str(v).endswith(":/var/lib/samverka") for v in services[name]["volumes"])
        assert all(str(p).startswith("127.0.0.1:") for p in services[name]["ports"])


@pytest.fixture
def throwaway_db(pg_server: PgServer) -> Iterator[str]:
    with pg_server.database() as name:
        yield name


def local(address: str) -> str:
    """A container's 0.0.0.0:PORT as a free loopback port here."""
    return "127.0.0.1:0" if address.startswith(("0.0.0.0:", "[::]:")) else address


def test_hub_runs_from_the_compose_configuration(
    procs: Procs, tmp_path: Path, throwaway_db: str, pg_server: PgServer
) -> None:
    service = compose_config()["services"]["hub"]  # type: ignore[index]
    env = {str(k): str(v) for k, v in service["environment"].items()}
    # What differs outside the container: the database host and user, the folder, ports.
    url = urlsplit(env["SAMVERKA_STORE_URL"])
    env["SAMVERKA_STORE_URL"] = urlunsplit(
        (url.scheme, pg_server.netloc, f"/{throwaway_db}", "", "")
    )
    env["SAMVERKA_DIR"] = str(tmp_path / "hub-volume")
    # The compose secret, as the runtime mounts it (a file under /run/secrets there).
    secret = compose_config()["secrets"]["store_password"]  # type: ignore[index]
    mounted = tmp_path / "secrets" / Path(env["SAMVERKA_STORE_PASSWORD_FILE"]).name
    mounted.parent.mkdir()
    source = Path(str(secret["file"]))
    mounted.write_bytes((source if source.is_absolute() else DEPLOY / source).read_bytes())
    mounted.chmod(0o600)
    env["SAMVERKA_STORE_PASSWORD_FILE"] = str(mounted)
    for key, address in env.items():
        if key.endswith("_LISTEN"):
            env[key] = local(address)
    run_env = {**procs.env, **env, "PATH": f"{SAMVERKA.parent}:{os.environ['PATH']}"}
    address_file = tmp_path / "hub.addresses"
    command = [str(DEPLOY / "container" / "entrypoint.sh"), *service["command"]]
    with open(tmp_path / "hub.out", "wb") as out, open(tmp_path / "hub.err", "wb") as err:
        proc = subprocess.Popen(
            [*command, "--address-file", str(address_file)],
            env=run_env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:

        def ready() -> dict[str, str] | None:
            if proc.poll() is not None:
                err = (tmp_path / "hub.err").read_text()
                raise AssertionError(f"hub exited {proc.returncode}: {err}")
            return json.loads(address_file.read_text()) if address_file.exists() else None

        bound = wait_for(ready, 60, "the hub from compose.yaml to serve")
        config = load_config(Path(env["SAMVERKA_DIR"]), env=env)
        password = mounted.read_text().strip()
        assert password in config.store_url and password not in env["SAMVERKA_STORE_URL"]
        assert password not in (Path(env["SAMVERKA_DIR"]) / "samverka.toml").read_text()
        assert run_async(health_probe(bound["member"], config)) == "SERVING"
        samples = scrape(f"http://{bound['metrics']}/metrics")
        assert value(samples, "samverka_store_up") == 1
        with urllib.request.urlopen(f"http://{bound['web']}/", timeout=10) as page:
            assert page.status == 200  # the public catalog, as compose publishes it
        # The JSON logs the compose file asks for: every stderr line is one event.
        for line in (tmp_path / "hub.err").read_text().splitlines():
            json.loads(line)
        # The certificate names the compose service, so nodes can reach "hub:7443".
        cert = (Path(env["SAMVERKA_DIR"]) / "tls" / "node.pem").read_bytes()
        names = (
            x509.load_pem_x509_certificate(cert)
            .extensions.get_extension_for_class(x509.SubjectAlternativeName)
            .value.get_values_for_type(x509.DNSName)
        )
        assert "hub" in names
    finally:
        proc.send_signal(signal.SIGTERM)  # the entrypoint exec'd: the server gets it
        assert proc.wait(timeout=30) == 0, (tmp_path / "hub.err").read_text()


# -- docs that must not drift --------------------------------------------------------------


def test_configuration_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "gen_config_doc.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def readme_commands() -> list[list[str]]:
    """Every distinct ``samverka …`` command in the README's code blocks (words before
    the first option or argument)."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|console|bash)?\n(.*?)```", text, re.S)
    commands: dict[tuple[str, ...], None] = {}
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line.startswith("samverka "):
                continue
            words = []
            for word in line.split()[1:]:
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                words.append(word)
            commands[tuple(words)] = None
    return [list(c) for c in commands]


def test_every_command_in_the_readme_exists(procs: Procs) -> None:
    commands = readme_commands()
    assert len(commands) >= 15, commands
    for words in commands:
        result = procs.run(*words, "--help", check=False)
        assert result.returncode == 0, f"README shows `samverka {' '.join(words)}`: {result}"
        assert "Användning:" in result.stdout
