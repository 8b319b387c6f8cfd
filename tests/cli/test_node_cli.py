"""`samverka node init`, the root group, --dir/SAMVERKA_DIR and the error handler."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from clikit import LEKSAND, Cli, Run
from samverka import config
from samverka.cli._common import EXIT_CONFIG, LazyGroup
from samverka.errors import ConfigError
from samverka.node import Node, init_node, pin_key, pinned_keys
from samverka.protocol.signing import SigningKey
from samverka.transport.pki import kommunkod_of


def test_init_creates_a_working_node_in_a_subprocess(run: Run, tmp_path: Path) -> None:
    folder = tmp_path / "leksand"
    result = run("node", "init", "--kommun", LEKSAND, "--dir", folder)
    assert result.returncode == 0, result.stderr
    assert "Leksand (2029)" in result.stdout
    for name in ("samverka.toml", "keys/signing.key", "keys/signing.pub", "tls/ca.pem",
                 "tls/node.pem", "tls/node.key", "samverka.db"):  # fmt: skip
        assert (folder / name).is_file(), name
    for secret in ("keys/signing.key", "tls/node.key", "tls/local-ca.key"):
        assert stat.S_IMODE((folder / secret).stat().st_mode) == 0o600, secret
    assert kommunkod_of((folder / "tls/node.pem").read_bytes()) == LEKSAND
    loaded = config.load_config(folder, env={})
    assert loaded.node.kommun == LEKSAND
    with Node.open(folder) as node:
        assert node.origin == LEKSAND
        assert node.store.heads() == []
        assert len(node.keyring()) == 1


def test_init_refuses_an_unknown_kommunkod(run: Run, tmp_path: Path) -> None:
    result = run("node", "init", "--kommun", "9999", "--dir", tmp_path / "x")
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.startswith("fel: '9999' är ingen kommunkod")
    assert "tips:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


def test_init_never_overwrites_a_node(cli: Cli, leksand: Path) -> None:
    before = (leksand / "keys/signing.key").read_bytes()
    result = cli("node", "init", "--kommun", "1472", "--dir", leksand)
    assert result.exit_code == EXIT_CONFIG
    assert "already holds a node" in result.stderr
    assert (leksand / "keys/signing.key").read_bytes() == before


def test_init_json_and_listen_host_in_certificate(cli: Cli, tmp_path: Path) -> None:
    result = cli("node", "init", "--kommun", "1472", "--dir", tmp_path / "t",
                 "--listen", "[::1]:7555", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"kommun": "1472"' in result.stdout
    assert 'listen = "[::1]:7555"' in (tmp_path / "t/samverka.toml").read_text()


def test_commands_without_a_node_say_how_to_make_one(cli: Cli, tmp_path: Path) -> None:
    result = cli("usecase", "list", "--dir", tmp_path)
    assert result.exit_code == EXIT_CONFIG
    assert "ingen samverka.toml" in result.stderr
    assert "samverka node init" in result.stderr


def test_samverka_dir_environment_variable(run: Run, leksand: Path) -> None:
    result = run("usecase", "list", node=leksand)
    assert result.returncode == 0, result.stderr
    assert "inga poster av typen användningsfall" in result.stdout


def test_root_help_is_fast_and_lists_every_command(run: Run) -> None:
    start = time.monotonic()
    result = run("--help")
    elapsed = time.monotonic() - start
    assert result.returncode == 0
    for name in ("node", "usecase", "lesson", "solution", "import", "search", "bundle", "hub"):
        assert f"  {name}" in result.stdout
    assert "Slutkoder" in result.stdout
    assert elapsed < 5  # generous for a loaded 2-core machine; ~0.15 s when idle


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and "samverka" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["node", "init"], ["usecase", "add"], ["usecase", "edit"], ["usecase", "retire"],
        ["usecase", "list"], ["usecase", "show"], ["lesson", "add"], ["solution", "add"],
        ["adopt"], ["import"], ["search"], ["bundle", "export"], ["bundle", "import"],
        ["bundle", "inspect"],
    ],
)  # fmt: skip
def test_every_command_has_help_with_an_example_and_dir(cli: Cli, args: list[str]) -> None:
    result = cli(*args, "--help")
    assert result.exit_code == 0, result.output
    assert "Exempel:" in result.stdout or "Example:" in result.stdout  # Swedish where translated
    assert "--dir" in result.stdout


def test_a_missing_optional_module_fails_gracefully() -> None:
    @click.group(cls=LazyGroup, lazy={"gone": ("samverka_not_installed.cli:gone", "Gone.")})
    def root() -> None:
        pass

    result = CliRunner().invoke(root, ["gone", "--anything"])
    assert result.exit_code == EXIT_CONFIG
    assert "finns inte" in result.stderr and "samverka_not_installed" in result.stderr
    listing = CliRunner().invoke(root, ["--help"])
    assert "gone" in listing.stdout


def test_pinned_keys_round_trip(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = pin_key(tmp_path, "1472", key.public)
    assert pin_key(tmp_path, "1472", key.public) == path  # idempotent
    [trusted] = pinned_keys(tmp_path)
    assert trusted.origin == "1472" and trusted.key_id == key.key_id
    (path.parent / "not-a-code.pub").write_bytes(key.public.to_pem())
    with pytest.raises(ConfigError, match="must start with its kommunkod"):
        pinned_keys(tmp_path)


def test_init_node_refuses_a_file_as_signing_key_target(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "signing.key").write_text("old")
    with pytest.raises(ConfigError, match="already holds a node"):
        init_node(tmp_path, LEKSAND)
