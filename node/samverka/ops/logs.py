"""Logging for long-running processes (``node serve``, ``hub serve``): one setup, two formats.

- **json**: one event per line on stderr, for journald, container runtimes and log
  shippers. Every line is a JSON object with ``time`` (UTC, ISO 8601 with
  milliseconds), ``level``, ``logger``, ``event`` (a short, stable name such as
  ``rpc`` or ``entry_refused``), ``message`` (the human sentence), and the event's
  fields: ``peer`` (the caller's kommunkod, when a certificate named one),
  ``method``, ``code``, ``duration_ms``, ``origin``/``sequence``/``reason`` for
  refusals, ``exception`` with the traceback for errors.
- **console**: for a person at a terminal: time, level, logger, the message, then the
  event's fields as ``key=value``.

Code logs with the standard library and passes fields as ``extra``::

    log.info("entry refused", extra={"event": "entry_refused", "origin": "2029", ...})

Only the fields listed in :data:`FIELDS` are picked from ``extra``, so a line never
carries an attribute by accident. ``auto`` (the default) picks console when stderr is
a terminal and JSON otherwise (a service under systemd or in a container).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from samverka.config import LOG_FORMATS, LOG_LEVELS

#: Event fields a log call may pass in ``extra``, in the order lines show them.
FIELDS = (
    "peer",
    "caller",
    "method",
    "code",
    "reason",
    "duration_ms",
    "messages",
    "origin",
    "sequence",
    "source",
    "count",
    "address",
    "listener",
    "remote",
)

#: The handler this module installed, so a second setup replaces it (tests, re-exec).
_HANDLER_ATTR = "_samverka_handler"


def resolve_format(fmt: str, stream: TextIO) -> str:
    """``auto`` → ``console`` on a terminal, else ``json``; other values as given."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: use one of {LOG_FORMATS}")
    if fmt != "auto":
        return fmt
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def setup_logging(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> str:
    """Send every ``logging`` record at ``level`` or above to ``stream`` (stderr) in ``fmt``.

    Replaces a handler an earlier call installed; leaves other handlers alone.
    Returns the format used (``auto`` resolved).
    """
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {LOG_LEVELS}")
    stream = stream or sys.stderr
    chosen = resolve_format(fmt, stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else ConsoleFormatter())
    setattr(handler, _HANDLER_ATTR, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_ATTR, False):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # grpc's own Python loggers are noisy at debug about things we log ourselves.
    logging.getLogger("grpc").setLevel(max(logging.INFO, root.level))
    return chosen


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The event fields a record carries (see :data:`FIELDS`), in a stable order."""
    found: dict[str, Any] = {}
    for name in FIELDS:
        value = record.__dict__.get(name)
        if value is not None and value != "":
            found[name] = value
    return found


def event_name(record: logging.LogRecord) -> str:
    """The record's ``event``, else its logger's last name (``….replication.sync`` → ``sync``)."""
    event = record.__dict__.get("event")
    if isinstance(event, str) and event:
        return event
    return record.name.rsplit(".", 1)[-1]


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside strings are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event_name(record),
            "message": record.getMessage(),
        }
        for key, value in event_fields(record).items():
            line[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """``12:03:04.512 INFO  samverka.rpc  message  key=value …`` (local time)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        text = f"{stamp} {record.levelname:<5} {record.name}  {record.getMessage()}"
        fields = event_fields(record)
        if fields:
            text += "  " + " ".join(f"{k}={_console_value(v)}" for k, v in fields.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _iso_time(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _console_value(value: Any) -> str:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text
