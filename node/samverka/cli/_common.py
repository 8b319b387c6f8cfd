"""What every ``samverka`` command shares: ``--dir``, opening the node, ``--json``
output, and the one place errors become messages and exit codes.

Exit codes:

====  ===========================================================================
0     success
1     refused or invalid input: a record, an entry, an import file, a bundle
2     usage: an unknown option or a missing argument (click's own code)
3     configuration: no node in the folder, a bad samverka.toml, a missing key
4     transport: a peer could not be reached or answered with an error
5     storage: the database cannot be opened, migrated or written
6     denied: the peer refuses this node (PERMISSION_DENIED, UNAUTHENTICATED: not a
      member, revoked, a certificate it does not accept)
7     unproven: the hub served an entry or directory version it cannot prove is in
      its transparency log (``not_in_log``), or with a proof that does not hold
      (``bad_proof``); what came before it was stored
====  ===========================================================================

Every :class:`~samverka.errors.SamverkaError` that reaches the root group is printed as
``error: <message>`` and, when it has one, ``hint: <what to do>`` on stderr; a command
never prints a traceback for a problem it knows about.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from samverka.config import resolve_dir
from samverka.errors import ConfigError, SamverkaError, StoreError, TransportError

if TYPE_CHECKING:
    from samverka.node import Node


def counted(number: int, singular: str, plural: str | None = None) -> str:
    """``1 entry``, ``2 entries``: a number with its noun in the right form."""
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"


EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_TRANSPORT = 4
EXIT_STORE = 5
EXIT_DENIED = 6
EXIT_UNPROVEN = 7
EXIT_ALARM = 8

EXIT_CODES_HELP = (
    "\b\nExit codes: 0 ok, 1 refused or invalid input, 2 usage, 3 configuration, "
    "4 transport, 5 storage, 6 denied by the peer (not a member, revoked), 7 the hub "
    "cannot prove what it served is in its transparency log (not_in_log, bad_proof), "
    "8 monitor alarm: the hub bound a key to this kommun, or served an entry in its "
    "feed, that this node never held or signed (evidence in tlog/evidence/)."
)

#: A peer refusing this node (a PeerError of ``samverka.transport.server.status``): these
#: status codes, or these reasons whatever the code (a revoked kommun enrolling again).
_DENIED_CODES = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED"})
_DENIED_REASONS = frozenset({"member_revoked"})
#: Refusals of what the hub served for want of a proof in its transparency log.
_UNPROVEN_REASONS = frozenset({"not_in_log", "bad_proof"})

P = ParamSpec("P")
R = TypeVar("R")


def exit_code_for(exc: SamverkaError) -> int:
    """The documented exit code for an error (see the module docstring)."""
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if denied(exc):
        return EXIT_DENIED
    if str(getattr(exc, "reason", "")) in _UNPROVEN_REASONS:
        return EXIT_UNPROVEN
    if str(getattr(exc, "reason", "")) == "monitor_alarm":
        return EXIT_ALARM
    if isinstance(exc, TransportError):
        return EXIT_TRANSPORT
    if isinstance(exc, StoreError):
        return EXIT_STORE
    return EXIT_REFUSED


def denied(exc: SamverkaError) -> bool:
    """Whether ``exc`` is a peer refusing this node rather than a network failure."""
    code = getattr(getattr(exc, "code", None), "name", "")
    reason = str(getattr(exc, "reason", ""))
    if not code:  # not a peer's answer: an AccessDenied raised on this side
        return reason in ("access_denied", "unauthenticated")
    return code in _DENIED_CODES or reason in _DENIED_REASONS


def report_error(exc: SamverkaError) -> None:
    """Print ``error:`` and ``hint:`` lines for ``exc`` on stderr (one JSON log line
    instead when a ``serve`` command set up JSON logging)."""
    logs = sys.modules.get("samverka.ops.logs")
    if logs is not None and logs.json_active():
        logging.getLogger("samverka.cli").error(
            "%s", exc, extra={"event": "error", "hint": exc.hint or None}
        )
        return
    click.echo(f"error: {exc}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)


class SamverkaGroup(click.Group):
    """The root group: turns every SamverkaError from any subcommand into a message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SamverkaError as exc:
            report_error(exc)
            ctx.exit(exit_code_for(exc))


class LazyGroup(SamverkaGroup):
    """A click group whose subcommands are ``"module:attribute"`` paths, imported when used.

    ``lazy`` maps a command name to ``(import path, one-line help)``; the help is shown
    in ``--help`` listings without importing the module.
    """

    def __init__(
        self,
        *args: Any,
        lazy: dict[str, tuple[str, str]] | None = None,
        plugins: bool = False,
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.lazy: dict[str, tuple[str, str]] = dict(lazy or {})
        #: Whether commands registered by other packages are still to be read
        #: (:mod:`samverka.cli.plugins`): only when a name is not the node's own.
        self._plugins_pending = plugins

    def _read_plugins(self) -> None:
        if self._plugins_pending:
            self._plugins_pending = False
            from samverka.cli.plugins import plugin_commands

            for name, spec in plugin_commands().items():
                self.lazy.setdefault(name, spec)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._read_plugins()
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            self._read_plugins()
        if cmd_name in self.lazy:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
                continue
            cmd = super().get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _load(self, cmd_name: str) -> click.Command:
        import_path, short_help = self.lazy[cmd_name]
        module_name, attr = import_path.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only "this optional module is not there" is turned into a message; an
            # import error inside an existing module is a bug and must show as one.
            missing = exc.name or ""
            if not missing or not (module_name + ".").startswith(missing + "."):
                raise
            return _unavailable(cmd_name, short_help, module_name)
        cmd = getattr(module, attr)
        if not isinstance(cmd, click.Command):
            raise TypeError(f"{import_path} is not a click command")
        return cmd


def _unavailable(name: str, short_help: str, module_name: str) -> click.Command:
    """A stand-in for a command whose module is not installed: it explains and exits 3."""

    def run(**_: Any) -> None:
        raise ConfigError(
            f"`samverka {name}` is not available: module {module_name} is not installed",
            hint="this installation lacks that part of samverka; reinstall the full package "
            "(`make install` in a checkout)",
        )

    return click.Command(
        name,
        callback=run,
        help=f"{short_help} (not installed)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        add_help_option=False,
    )


def fail(message: str, *, hint: str = "") -> SamverkaError:
    """A plain refusal (exit code 1) for a command to raise."""
    return SamverkaError(message, hint=hint)


# -- options -----------------------------------------------------------------------


def dir_option(f: Callable[P, R]) -> Callable[P, R]:
    """``--dir DIR`` (or ``SAMVERKA_DIR``), passed on as ``node_dir: Path``."""
    return click.option(
        "--dir",
        "node_dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="SAMVERKA_DIR",
        show_envvar=True,
        callback=lambda _ctx, _param, value: resolve_dir(value),
        help="The node folder [default: the current folder].",
    )(f)


def json_option(f: Callable[P, R]) -> Callable[P, R]:
    """``--json``: print machine-readable JSON instead of text, passed on as ``as_json``."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of text."
    )(f)


@contextmanager
def open_node(node_dir: Path) -> Iterator[Node]:
    """Open the node in ``node_dir`` for one command and close it afterwards."""
    # Imported here so commands that never open a node (--help, --version) stay fast.
    from samverka.node import Node

    node = Node.open(node_dir)
    try:
        yield node
    finally:
        node.close()


def with_node(f: Callable[..., R]) -> Callable[..., R]:
    """Add ``--dir`` and pass the opened node as ``node``; it is closed after the command."""

    @functools.wraps(f)
    def wrapper(*args: Any, node_dir: Path, **kwargs: Any) -> R:
        with open_node(node_dir) as node:
            return f(*args, node=node, **kwargs)

    return dir_option(wrapper)


# -- output ------------------------------------------------------------------------


def print_json(data: Any) -> None:
    """Stable, readable JSON on stdout (UTF-8 text, not \\u escapes)."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False))


def stdin_is_terminal() -> bool:
    """Whether a person is typing (then missing fields may be prompted for)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
