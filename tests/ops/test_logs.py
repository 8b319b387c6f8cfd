"""The two log formats and how one is chosen (the JSON of a real server is checked in
test_observability.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
from collections.abc import Iterator
from pathlib import Path

import pytest
from samverka.config import CONFIG_FILE, load_config, render_config
from samverka.errors import ConfigError
from samverka.ops.logs import resolve_format, setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def test_json_lines_carry_the_event_fields(restore_logging: None) -> None:
    out = io.StringIO()
    assert setup_logging("json", "info", out) == "json"
    log = logging.getLogger("samverka.test")
    log.info(
        "entry refused: %s",
        "fork",
        extra={"event": "entry_refused", "origin": "2029", "sequence": 7, "reason": "fork"},
    )
    log.debug("not shown at info")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the traceback's newlines stay inside one JSON string
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "entry_refused" and first["message"] == "entry refused: fork"
    assert (first["origin"], first["sequence"], first["reason"]) == ("2029", 7, "fork")
    assert first["level"] == "info" and first["logger"] == "samverka.test"
    assert second["event"] == "test" and "ValueError: boom" in second["exception"]


def test_a_council_erasure_line_carries_the_request_reference(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("json", "info", out)
    logging.getLogger("samverka_hub.erase").info(
        "council erased",
        extra={
            "event": "council_erasure",
            "record_id": "uc-x",
            "erasure": "0000#12",
            "request_ref": "KS 2026/114",
        },
    )
    line = json.loads(out.getvalue())
    assert (line["erasure"], line["request_ref"]) == ("0000#12", "KS 2026/114")


def test_console_lines_are_for_people(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("console", "debug", out)
    logging.getLogger("samverka.rpc").info(
        "call done", extra={"peer": "1472", "method": "/x/Y", "duration_ms": 1.25}
    )
    line = out.getvalue().strip()
    assert "INFO  samverka.rpc  call done" in line
    assert line.endswith("peer=1472 method=/x/Y duration_ms=1.2")


def test_a_second_setup_replaces_the_first(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("json", "info", first)
    setup_logging("json", "info", second)
    logging.getLogger("samverka.test").warning("once")
    assert first.getvalue() == "" and second.getvalue().count("once") == 1


def test_auto_is_console_on_a_terminal_and_json_otherwise() -> None:
    assert resolve_format("auto", io.StringIO()) == "json"
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert resolve_format("auto", terminal) == "console"
    finally:
        os.close(leader)
        os.close(follower)
    assert resolve_format("console", io.StringIO()) == "console"


def test_log_section_refuses_unknown_values(tmp_path: Path) -> None:
    text = render_config("2029").replace('format = "auto"', 'format = "xml"')
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(ConfigError, match="format"):
        load_config(tmp_path, env={})
    (tmp_path / CONFIG_FILE).write_text(render_config("2029"))
    with pytest.raises(ConfigError, match="level"):
        load_config(tmp_path, env={"SAMVERKA_LOG_LEVEL": "verbose"})
    config = load_config(tmp_path, env={"SAMVERKA_LOG_FORMAT": "json"})
    assert (config.log.format, config.log.level, config.metrics.listen) == ("json", "info", "")
