"""The node's samverka.toml: rendering, reading, types and environment overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from samverka.config import (
    CONFIG_FILE,
    LimitsSection,
    load_config,
    render_config,
)
from samverka.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / CONFIG_FILE).write_text(text, encoding="utf-8")
    return tmp_path


def test_rendered_config_loads_with_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, render_config("2029")), env={})
    assert config.node.kommun == "2029" and config.node.name == "Leksand"
    assert config.limits == LimitsSection()
    assert config.max_clock_skew_ms == 600_000
    assert config.store_url == f"sqlite:///{tmp_path}/samverka.db"
    rendered = tomllib.loads(render_config("2029"))
    assert set(rendered) == {"node", "server", "tls", "store", "hub", "limits", "metrics", "log"}


@pytest.mark.parametrize(
    ("var", "value", "attr", "expected"),
    [
        ("SAMVERKA_SERVER_BATCH_SIZE", "17", ("server", "batch_size"), 17),
        ("SAMVERKA_SERVER_GRACE_SECONDS", "2.5", ("server", "grace_seconds"), 2.5),
        ("SAMVERKA_SERVER_GRACE_SECONDS", "3", ("server", "grace_seconds"), 3.0),
        (
            "SAMVERKA_LIMITS_MAX_CLOCK_SKEW_SECONDS",
            "30",
            ("limits", "max_clock_skew_seconds"),
            30.0,
        ),
        ("SAMVERKA_SERVER_LISTEN", "0.0.0.0:7443", ("server", "listen"), "0.0.0.0:7443"),
        ("SAMVERKA_NODE_KOMMUN", "1472", ("node", "kommun"), "1472"),
    ],
)
def test_environment_overrides(
    tmp_path: Path, var: str, value: str, attr: tuple[str, str], expected: object
) -> None:
    config = load_config(write(tmp_path, render_config("2029")), env={var: value})
    got = getattr(getattr(config, attr[0]), attr[1])
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        (
            {"SAMVERKA_SERVER_BATCH_SIZE": "many"},
            "SAMVERKA_SERVER_BATCH_SIZE='many' is not a whole",
        ),
        ({"SAMVERKA_SERVER_BATCH_SIZE": "1.5"}, "not a whole number"),
        ({"SAMVERKA_SERVER_GRACE_SECONDS": "soon"}, "not a number"),
        ({"SAMVERKA_SERVER_GRACE_SECONDS": "nan"}, "finite"),
        ({"SAMVERKA_SERVER_GRACE_SECONDS": "-1"}, "0 or more"),
        ({"SAMVERKA_NODE_KOMMUN": "9999"}, "not a kommunkod"),
    ],
)
def test_bad_environment_overrides_are_named(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        load_config(write(tmp_path, render_config("2029")), env=env)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[node]\nkommun = "2029"\nkommune = "x"\n', r"unknown key \[node\] kommune"),
        ('[node]\nkommun = "2029"\n[server]\nlisten = 7443\n', r"\[server\] listen must be text"),
        ('[node]\nkommun = "2029"\n[server]\nbatch_size = "500"\n', "must be a whole number"),
        ('[node]\nkommun = "2029"\n[server]\nbatch_size = true\n', "must be a whole number"),
        ('[node]\nkommun = "2029"\n[server]\nbatch_size = -1\n', "0 or more"),
        ('[node]\nkommun = "2029"\n[limits]\nmax_clock_skew_seconds = "10"\n', "must be a number"),
        ('[node]\nkommun = "2029"\n[limits]\nmax_clock_skew_seconds = inf\n', "finite"),
        ("[node]\nkommun = 2029\n", "must be text"),
        ('[node]\nname = "x"\n', r"missing key \[node\] kommun"),
        ("node = 5\n", "must be a table"),
        ('[node]\nkommun = "2029"\n[server\n', "not valid TOML"),
    ],
)
def test_bad_files_are_refused_naming_the_key(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_config(write(tmp_path, text), env={})


def test_integers_are_fine_floats(tmp_path: Path) -> None:
    text = '[node]\nkommun = "2029"\n[limits]\nmax_clock_skew_seconds = 5\n'
    config = load_config(write(tmp_path, text), env={})
    assert config.limits.max_clock_skew_seconds == 5.0 and config.max_clock_skew_ms == 5_000


def test_a_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert "node init" in info.value.hint


NODE = b'[node]\nkommun = "2029"\n'


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (NODE + b"# " + b"x" * (1024 * 1024) + b"\n", "larger than 1024 KiB"),
        (NODE + b'name = "\xff\xfe"\n', "not UTF-8 text"),
        (NODE + b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deep"),
        (NODE + b"x = " + b"{ a = " * 3000 + b"1" + b" }" * 3000 + b"\n", "nested too deep"),
        (NODE + b"[server]\nbatch_size = " + b"9" * 5000 + b"\n", "too many digits"),
        (NODE + b"[server]\nbatch_size = 9223372036854775808\n", r"at most 2\^63 - 1"),
        (NODE + b"[server]\ngrace_seconds = 1e308\n", r"at most 10\^12"),
        (NODE + b'name = "a\x00b"\n', "not valid TOML"),
    ],
    ids=[
        "over 1 MiB",
        "not UTF-8",
        "5000 deep",
        "3000 deep",
        "5000 digits",
        "2^63",
        "1e308",
        "NUL",
    ],
)
def test_hostile_files_are_refused_as_configuration_errors(
    tmp_path: Path, data: bytes, words: str
) -> None:
    """Whatever samverka.toml holds, reading it ends in a ConfigError naming the file
    (the CLI's exit 3 with the reason), never another exception (a traceback: before,
    UnicodeDecodeError, RecursionError and ValueError; a 20 MB file was read whole and
    a 30-digit batch_size accepted)."""
    (tmp_path / CONFIG_FILE).write_bytes(data)
    with pytest.raises(ConfigError, match=words) as info:
        load_config(tmp_path, env={})
    assert CONFIG_FILE in str(info.value)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\xff\xfe secret\n", "not UTF-8"),
        (b"x" * (64 * 1024 + 1), "larger than 64 KiB"),
        (b"", "empty"),
    ],
    ids=["not UTF-8", "over 64 KiB", "empty"],
)
def test_a_hostile_password_file_is_a_configuration_error(
    tmp_path: Path, data: bytes, words: str
) -> None:
    """``[store] password_file`` is read as one line of UTF-8 text, at most 64 KiB of it."""
    text = (
        render_config("2029")
        .replace('password_file = ""', 'password_file = "store-password"')
        .replace('url = "sqlite:///samverka.db"', 'url = "postgresql://samverka@db/samverka"')
    )
    config = load_config(write(tmp_path, text), env={})
    (tmp_path / "store-password").write_bytes(data)
    with pytest.raises(ConfigError, match=words):
        _ = config.store_url
