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

Under JSON, **every** line the process writes is JSON: what a ``serve`` command
announces on stdout (the addresses bound, ``stopped``) goes through :func:`announce`,
Python warnings and uncaught exceptions become log records, and the CLI reports a
fatal error as one JSON line (:func:`json_active`).
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import re
import sys
import threading
import time
from types import TracebackType
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
    "url",
    "hint",
    # a hub key rotation followed or made (samverka.membership.hubtrust, hub rotate-keys)
    "key_id",
    # a supervised background task's failure (samverka.retry.supervise)
    "task",
    "failures",
    "retry_in_seconds",
    # the hub's webhook delivery (samverka_hub.webhooks): the receiver is host#hash
    "receiver",
    "record_id",
    "position",
    "attempts",
    "status",
    # an erasure by the council (samverka hub erase): the erasure entry and the
    # kommun's request it answers (the diarienummer)
    "erasure",
    "request_ref",
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
    own_stderr = stream is None
    stream = stream or sys.stderr
    chosen = resolve_format(fmt, stream)
    global _json
    # Process-wide only for the process's own stderr (a test's StringIO changes nothing).
    _json = chosen == "json" and own_stderr
    if _json:
        stream = _relay_native_stderr()
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
    if _json:
        # Nothing else may write plain text on the streams: warnings and uncaught
        # exceptions (main thread and others) become records of the same handler.
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_thread_uncaught
    return chosen


#: Whether the last :func:`setup_logging` chose JSON for this process's stderr.
_json = False


def json_active() -> bool:
    """Whether this process logs JSON (so its other output must be JSON too)."""
    return _json


def announce(message: str, *, event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """What a long-running command tells on stdout (``serving … on HOST:PORT``, ``stopped``).

    Plain text for people; under JSON logging one JSON line like a log record's (logger
    ``samverka.serve``, level info, the ``event`` and ``fields`` named in :data:`FIELDS`).
    """
    out = stream or sys.stdout
    if not _json:
        out.write(message + "\n")
        out.flush()
        return
    record = logging.LogRecord("samverka.serve", logging.INFO, "", 0, message, None, None)
    record.__dict__.update(fields, event=event)
    out.write(JsonFormatter().format(record) + "\n")
    out.flush()


#: The stream JSON records go to once :func:`_relay_native_stderr` took file descriptor 2.
_relayed: TextIO | None = None

#: ``I1203 09:08:09.430394   21260 ssl_transport_security.cc:2563] Handshake failed …``
_NATIVE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([^\]]+)\] ?(.*)$")
_NATIVE_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "critical"}


def _relay_native_stderr() -> TextIO:
    """Make what native code writes on stderr JSON too; returns the stream for our records.

    grpc's C core (and any other library below Python) writes plain lines straight to
    file descriptor 2. Descriptor 2 becomes a pipe read by a thread that passes JSON
    lines through and wraps any other line as an event (``native_log``, logger
    ``native``, grpc's level letter mapped); this module's own records go to the
    original stderr directly. Done once per process; at exit the pipe is drained.
    """
    global _relayed
    if _relayed is not None:
        return _relayed
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    out = open(original, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115

    def relay() -> None:
        with open(read_end, "rb", closefd=True) as pipe:
            for raw in pipe:
                out.write(_as_json_line(raw.decode("utf-8", errors="replace").rstrip("\n")))
                out.flush()

    thread = threading.Thread(target=relay, name="samverka-stderr-relay", daemon=True)
    thread.start()

    def drain() -> None:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the relay reads EOF
        thread.join(timeout=2)

    atexit.register(drain)
    _relayed = out
    return out


def _as_json_line(line: str) -> str:
    """A line another writer put on stderr, as one JSON line (JSON passes unchanged)."""
    if line.startswith("{"):
        try:
            if isinstance(json.loads(line), dict):
                return line + "\n"
        except ValueError:
            pass
    level, where, message = "warning", "", line
    native = _NATIVE.match(line)
    if native:
        level, where, message = _NATIVE_LEVELS[native[1]], native[2], native[3]
    event = {
        "time": _iso_time(time.time()),
        "level": level,
        "logger": "native",
        "event": "native_log",
        "message": message,
    }
    if where:
        event["source"] = where
    return json.dumps(event, ensure_ascii=False) + "\n"


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("samverka").critical(
        "uncaught %s: %s", kind.__name__, exc, exc_info=(kind, exc, tb),
        extra={"event": "uncaught_exception"},
    )  # fmt: skip


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("samverka").critical(
        "uncaught %s in thread %s: %s",
        args.exc_type.__name__, name, args.exc_value,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"event": "uncaught_exception"},
    )  # fmt: skip


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
