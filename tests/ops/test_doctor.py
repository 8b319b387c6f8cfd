"""``samverka doctor`` against real node folders broken one way at a time.

Each failure is made for real: an expired certificate issued by the node's own CA with
``not_before`` in the past, a private key made world-readable, a database file
overwritten with garbage, an unknown key in samverka.toml. Reaching a real hub (and
failing to) is in test_observability.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest
from hubkit import Completed, Procs
from opskit import clean_env
from samverka.config import load_config
from samverka.node import LOCAL_CA_KEY
from samverka.ops.doctor import Status, clock_finding, run_doctor
from samverka.transport.pki import CertKeyPair, issue_certificate

LEKSAND = "2029"


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``node init`` (the real command) for the module: each test breaks a copy."""
    path = tmp_path_factory.mktemp("doctor") / "leksand"
    Procs(path.parent, clean_env()).run("node", "init", "--kommun", LEKSAND, "--dir", str(path))
    return path


@pytest.fixture
def node_dir(procs: Procs, initialised: Path) -> Path:
    """A fresh node folder of Leksand's (a copy, modes kept: a second of CPU less a test)."""
    path = procs.tmp / "leksand"
    shutil.copytree(initialised, path)
    return path


def doctor(procs: Procs, node_dir: Path, *args: str) -> tuple[Completed, dict[str, dict[str, str]]]:
    """Run ``doctor --json``; the findings by check (the worst one of each check)."""
    result = procs.run("doctor", "--dir", str(node_dir), "--json", *args, check=False)
    findings: dict[str, dict[str, str]] = {}
    order = {"ok": 0, "warn": 1, "fail": 2}
    for f in json.loads(result.stdout)["findings"]:
        held = findings.get(f["check"])
        if held is None or order[f["status"]] > order[held["status"]]:
            findings[f["check"]] = f
    return result, findings


def reissue(node_dir: Path, *, not_before: dt.datetime, days: int) -> None:
    """Replace tls/node.pem and node.key with a certificate from the node's local CA."""
    ca = CertKeyPair(
        (node_dir / "tls" / "ca.pem").read_bytes(), (node_dir / LOCAL_CA_KEY).read_bytes()
    )
    cert = issue_certificate(ca, kommunkod=LEKSAND, not_before=not_before, days=days)
    (node_dir / "tls" / "node.pem").write_bytes(cert.cert_pem)
    key = node_dir / "tls" / "node.key"
    key.write_bytes(cert.key_pem)
    key.chmod(0o600)


def test_a_fresh_node_is_healthy(procs: Procs, node_dir: Path) -> None:
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 0, result
    assert {f["status"] for f in findings.values()} == {"ok"}
    text = procs.run("doctor", "--dir", str(node_dir)).stdout.splitlines()
    assert [line.split()[1] for line in text] == [
        "config", "keys", "certificates", "database", "directory", "witness", "hub", "clock",
    ]  # fmt: skip


def test_an_expired_certificate_fails(procs: Procs, node_dir: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    reissue(node_dir, not_before=now - dt.timedelta(days=40), days=30)
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 1, result
    cert = findings["certificates"]
    assert cert["status"] == "fail" and "expired" in cert["message"], cert
    assert "enroll" in cert["hint"]  # not enrolled: the way to a council certificate
    human = procs.run("doctor", "--dir", str(node_dir), check=False)
    assert any(line.startswith("FAIL  certificates") for line in human.stdout.splitlines())
    # People read Swedish by default, English on request; --json is English either way.
    assert "certifikatet" in human.stdout and " gick ut " in human.stdout
    assert "anslut (samverka node enroll)" in human.stdout
    english = procs.run("--lang", "en", "doctor", "--dir", str(node_dir), check=False)
    assert "certificate" in english.stdout and " expired at " in english.stdout


def test_a_certificate_expiring_within_30_days_warns(procs: Procs, node_dir: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    reissue(node_dir, not_before=now - dt.timedelta(days=1), days=11)
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 0, result  # a warning is not a failure
    cert = findings["certificates"]
    assert cert["status"] == "warn" and "expires in" in cert["message"], cert


def test_a_certificate_for_another_kommun_or_key_fails(procs: Procs, node_dir: Path) -> None:
    ca = CertKeyPair(
        (node_dir / "tls" / "ca.pem").read_bytes(), (node_dir / LOCAL_CA_KEY).read_bytes()
    )
    other = issue_certificate(ca, kommunkod="1472")
    (node_dir / "tls" / "node.pem").write_bytes(other.cert_pem)  # key left as it was
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 1 and findings["certificates"]["status"] == "fail"
    assert "expected 2029" in result.stdout and "not for the key" in result.stdout


def test_a_world_readable_private_key_fails(procs: Procs, node_dir: Path) -> None:
    key = node_dir / "keys" / "signing.key"
    key.chmod(0o644)
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 1
    keys = findings["keys"]
    assert keys["status"] == "fail" and "0644" in keys["message"]
    assert keys["hint"] == f"chmod 600 {key}"


def test_a_corrupt_database_fails(procs: Procs, node_dir: Path) -> None:
    db = node_dir / "samverka.db"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    db.write_bytes(os.urandom(8192))
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 1
    database = findings["database"]
    assert database["status"] == "fail" and "restore" in database["hint"], database


def test_a_missing_database_fails(procs: Procs, node_dir: Path) -> None:
    (node_dir / "samverka.db").unlink()
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 1
    assert "no database" in findings["database"]["message"]
    assert not (node_dir / "samverka.db").exists()  # doctor never creates one


def test_an_unknown_config_key_fails_and_an_unknown_section_warns(
    procs: Procs, node_dir: Path
) -> None:
    config = node_dir / "samverka.toml"
    original = config.read_text()
    config.write_text(original + "\n[metric]\nlisten = '127.0.0.1:9464'\n")
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 0 and findings["config"]["status"] == "warn"
    assert "[metric]" in findings["config"]["message"]

    config.write_text(original.replace("batch_size = 500", "batch_size = 500\nbatchsize = 5"))
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 1
    assert "unknown key [server] batchsize" in findings["config"]["message"]


def test_no_folder_at_all_exits_3(procs: Procs) -> None:
    result = procs.run("doctor", "--dir", str(procs.tmp / "nothing"), check=False)
    assert result.returncode == 3
    assert "samverka node init" in result.stdout


def test_offline_skips_the_network_checks(procs: Procs, node_dir: Path) -> None:
    report = run_doctor(node_dir, offline=True)
    assert {f.check for f in report.findings} == {
        "config", "keys", "certificates", "database", "directory", "witness",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("server_offset_ms", "status"),
    [(0, Status.OK), (3_000, Status.OK), (-8_000, Status.WARN), (700_000, Status.FAIL)],
)
def test_clock_skew_is_judged_against_the_tolerance(
    node_dir: Path, server_offset_ms: int, status: Status
) -> None:
    config = load_config(node_dir, env={})
    before, after = 1_000_000, 1_000_200  # the answer came within 200 ms
    finding = clock_finding(1_000_100 + server_offset_ms, before, after, config)
    assert finding.status is status, finding
    if status is Status.FAIL:
        said = finding.as_json()
        assert "clock_skew" in said["message"] and "ntp" in said["hint"].lower()


def test_the_schema_is_reported_by_alembic_revision(procs: Procs, node_dir: Path) -> None:
    """OK at the newest revision; FAIL at one this software does not know; WARN for a
    database made before Alembic that the next open takes over."""
    import sqlite3

    from samverka.store.migrations import latest_version

    _, findings = doctor(procs, node_dir)
    newest = f"newest Alembic revision (store {latest_version('store')})"
    assert newest in findings["database"]["message"]
    db = sqlite3.connect(node_dir / "samverka.db")
    try:
        with db:
            db.execute("UPDATE alembic_version_store SET version_num = 'store_9999'")
        result, findings = doctor(procs, node_dir)
        assert result.returncode != 0
        assert findings["database"]["status"] == "fail"
        assert "does not know" in findings["database"]["message"]
        with db:  # as the framework before Alembic left it
            db.execute("DROP TABLE alembic_version_store")
            db.execute(
                "CREATE TABLE schema_migrations (track VARCHAR(64), version INTEGER, "
                "name VARCHAR, applied_at_ms INTEGER, PRIMARY KEY (track, version))"
            )
            db.execute(
                "INSERT INTO schema_migrations VALUES ('store', 1, 'a', 0), ('store', 2, 'b', 0)"
            )
        _, findings = doctor(procs, node_dir)
        assert findings["database"]["status"] == "warn"
        assert "schema_migrations → Alembic" in findings["database"]["message"]
    finally:
        db.close()


def test_a_hub_database_copy_that_may_not_sign_fails_until_promoted(procs: Procs) -> None:
    """A hub folder copied with its SQLite file (a restored backup, a clone) is another
    database than the one that signed the directory: doctor FAILs under database with
    the way out (samverka hub promote); the original stays ok, and so does the copy
    once promoted."""
    import shutil

    hub_dir = procs.tmp / "hub"
    procs.run(
        "hub", "init", "--dir", str(hub_dir),
        "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
    )  # fmt: skip
    result, findings = doctor(procs, hub_dir, "--offline")
    assert result.returncode == 0, result
    assert findings["database"]["status"] == "ok"
    copy = procs.tmp / "hub-copy"
    shutil.copytree(hub_dir, copy)
    result, findings = doctor(procs, copy, "--offline")
    assert result.returncode == 1, result
    assert findings["database"]["status"] == "fail"
    assert "copy (restored or cloned)" in findings["database"]["message"]
    assert "samverka hub promote" in findings["database"]["hint"]
    assert "FAIL" in procs.run("doctor", "--dir", str(copy), "--offline", check=False).stdout
    procs.run("hub", "promote", "--reason", "doctor test", "--dir", str(copy))
    result, findings = doctor(procs, copy, "--offline")
    assert result.returncode == 0, result
    assert findings["database"]["status"] == "ok"


@pytest.mark.parametrize(
    "data",
    [b'[node]\nkommun = "2029"\nname = "\xff"\n', b"x = " + b"[" * 5000 + b"]" * 5000],
    ids=["not UTF-8", "5000 deep"],
)
def test_a_hostile_config_file_is_a_finding_not_a_traceback(
    procs: Procs, node_dir: Path, data: bytes
) -> None:
    """doctor reports a samverka.toml that is not UTF-8 or nests past tomllib's recursion
    as a config FAIL (exit 1), and serve refuses it as a configuration error (exit 3);
    before, both ended in a traceback."""
    (node_dir / "samverka.toml").write_bytes(data)
    result, findings = doctor(procs, node_dir)
    assert result.returncode == 1, result
    assert findings["config"]["status"] == "fail", findings
    served = procs.run("node", "serve", "--dir", str(node_dir), check=False)
    assert served.returncode == 3, served
    assert "Traceback" not in result.stderr + served.stderr
    assert "samverka.toml" in served.stderr
