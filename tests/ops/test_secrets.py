"""The database password stays out of samverka.toml: it comes from a password file, the
systemd credential or the environment, and ``doctor`` FAILs on one others can read.
(hub init on PostgreSQL with a password in the URL: tests/ops/test_drills.py.)"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hubkit import Procs
from samverka.config import (
    CONFIG_FILE,
    load_config,
    split_password,
    with_password,
)
from samverka.errors import ConfigError

PG = "postgresql+psycopg://samverka@db.example.se:5432/samverka"


def test_split_and_add_a_password() -> None:
    url = with_password(PG, "p@ss:w/rd ä")
    assert (
        url == "postgresql+psycopg://samverka:p%40ss%3Aw%2Frd%20%C3%A4@db.example.se:5432/samverka"
    )
    assert split_password(url) == (PG, "p@ss:w/rd ä")
    assert split_password(PG) == (PG, "")
    assert split_password("sqlite:///samverka.db") == ("sqlite:///samverka.db", "")
    with pytest.raises(ConfigError):
        with_password("postgresql://db.example.se/samverka", "x")  # no user to give it to


def node_with_store(tmp_path: Path, procs: Procs, lines: str) -> Path:
    folder = tmp_path / "node"
    procs.run("node", "init", "--kommun", "2029", "--dir", str(folder))
    config = folder / CONFIG_FILE
    text = config.read_text()
    text = text.replace('url = "sqlite:///samverka.db"\n', "", 1).replace(
        'password_file = ""\n', lines, 1
    )
    config.write_text(text)
    return folder


def test_password_file_and_systemd_credential_complete_the_url(
    tmp_path: Path, procs: Procs
) -> None:
    folder = node_with_store(tmp_path, procs, f'url = "{PG}"\npassword_file = "store-password"\n')
    (folder / "store-password").write_text("from-the-file\n")
    assert load_config(folder, env={}).store_url == with_password(PG, "from-the-file")
    # No password_file: the credential systemd passed (LoadCredential=store-password:…).
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "store-password").write_text("from-systemd\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "SAMVERKA_STORE_PASSWORD_FILE": ""}
    assert load_config(folder, env=env).store_url == with_password(PG, "from-systemd")
    # The environment names another file (compose secrets).
    other = tmp_path / "secret"
    other.write_text("from-compose")
    env = {"SAMVERKA_STORE_PASSWORD_FILE": str(other)}
    assert load_config(folder, env=env).store_url == with_password(PG, "from-compose")
    # A URL that carries a password (from the environment) keeps it.
    env = {"SAMVERKA_STORE_URL": with_password(PG, "in-env")}
    assert load_config(folder, env=env).store_url == with_password(PG, "in-env")


def doctor_keys(procs: Procs, folder: Path) -> list[dict[str, str]]:
    done = procs.run("doctor", "--dir", str(folder), "--only", "keys", "--json", check=False)
    return [f for f in json.loads(done.stdout)["findings"] if f["check"] == "keys"]


def test_doctor_fails_on_a_password_others_can_read(tmp_path: Path, procs: Procs) -> None:
    folder = node_with_store(tmp_path, procs, f'url = "{with_password(PG, "hunter2")}"\n')
    config = folder / CONFIG_FILE
    assert stat.S_IMODE(config.stat().st_mode) & 0o044  # as node init writes it
    found = doctor_keys(procs, folder)
    assert any(f["status"] == "fail" and "database password" in f["message"] for f in found)
    config.chmod(0o600)
    found = doctor_keys(procs, folder)
    assert not any(f["status"] == "fail" for f in found) and any(
        f["status"] == "warn" and "password" in f["message"] for f in found
    )

    folder2 = node_with_store(tmp_path / "2", procs, f'url = "{PG}"\npassword_file = "pw"\n')
    (folder2 / "pw").write_text("x\n")
    (folder2 / "pw").chmod(0o644)
    found = doctor_keys(procs, folder2)
    assert any(f["status"] == "fail" and "chmod 600" in f["hint"] for f in found), found
    (folder2 / "pw").chmod(0o600)
    assert not any(f["status"] == "fail" for f in doctor_keys(procs, folder2))
