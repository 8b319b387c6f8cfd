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
``fel: <message>`` and, when it has one, ``tips: <what to do>`` on stderr (``error:`` and
``hint:`` in English); a command never prints a traceback for a problem it knows about.

What people read is in Swedish unless English is asked for (``--lang en``, the locale):
:mod:`samverka.i18n`. Help texts are marked with ``N_()`` and translated when shown
(:class:`TranslatingFormatter`), so they follow ``--lang`` whenever a module was imported.
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
from samverka.i18n import (
    LANGUAGES,
    N_,
    _,
    catalog_messages,
    language,
    plural_word,
    set_language,
)

if TYPE_CHECKING:
    from samverka.node import Node


def counted(number: int, singular: str, plural: str) -> str:
    """``1 post``, ``2 poster``: a number with its noun in the right form and language
    (``singular`` and ``plural`` are Swedish msgids, marked where written with ``N_``)."""
    return f"{number} {plural_word(singular, plural, number)}"


EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_TRANSPORT = 4
EXIT_STORE = 5
EXIT_DENIED = 6
EXIT_UNPROVEN = 7
EXIT_ALARM = 8

EXIT_CODES_HELP = N_(
    "\b\nSlutkoder: 0 klart, 1 vägrat eller ogiltig indata, 2 användning, 3 konfiguration, "
    "4 nätverk, 5 lagring, 6 nekad av motparten (inte medlem, återkallad), 7 hubben "
    "kan inte bevisa att det den skickade finns i dess transparenslogg (not_in_log, "
    "bad_proof), 8 larm: hubben band en nyckel till den här kommunen, eller skickade en "
    "post i dess flöde, som noden aldrig haft eller signerat (bevis i tlog/evidence/)."
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
    click.echo(_("fel: {message}").format(message=_(str(exc))), err=True)
    if exc.hint:
        click.echo(_("tips: {hint}").format(hint=_(exc.hint)), err=True)


# -- language --------------------------------------------------------------------------


#: Click's own help texts (in English) as our msgids, so ``--help`` speaks one language.
CLICK_TEXTS = {
    "Usage:": N_("Användning:"),
    "Options": N_("Flaggor"),
    "Commands": N_("Kommandon"),
    "Arguments": N_("Argument"),
    "Show this message and exit.": N_("Visa den här hjälpen och avsluta."),
    "Show the version and exit.": N_("Visa versionen och avsluta."),
    "env var:": N_("miljövariabel:"),
    "default:": N_("standard:"),
    "required": N_("krävs"),
}


def click_text(text: str) -> str:
    """One of click's own texts in the reader's language (others as they are)."""
    msgid = CLICK_TEXTS.get(text)
    return _(msgid) if msgid else text


#: Joins help texts that are translated one by one (:func:`help_parts`).
_PART = "\ue000"


def help_parts(*msgids: str) -> str:
    """A help text or epilog of several msgids (``help_parts(text, EXIT_CODES_HELP)``),
    each translated on its own when shown."""
    return _PART.join(msgids)


class TranslatingFormatter(click.HelpFormatter):
    """Click's help formatter, translating help texts (msgids marked with ``N_``) as they
    are written: a command's help and epilog, each option's or subcommand's help, and
    click's own headings and texts (:data:`CLICK_TEXTS`)."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, click_text("Usage:") + " " if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        super().write_heading(click_text(heading))

    def write_text(self, text: str) -> None:
        super().write_text("".join(_(part) for part in text.split(_PART)))

    def write_dl(self, rows: Any, col_max: int = 30, col_spacing: int = 2) -> None:
        super().write_dl([(term, _help_cell(text)) for term, text in rows], col_max, col_spacing)


def _help_cell(text: str) -> str:
    """An option's help (``text  [default: …]``) or a command's short help, translated."""
    if _PART in text:
        parts = text.split(_PART)
        if not parts[0].rstrip().endswith("."):  # an option's help of several parts
            return "".join(_(part) for part in parts)
        # A command's short help cut from help_parts(…): its first sentence.
        first = _(parts[0]).split("\n\n", 1)[0].replace("\n", " ")
        return first.split(". ", 1)[0].rstrip(".") + "."
    body, extra = text, ""
    if text.endswith("]") and "  [" in text:
        body, _sep, rest = text.rpartition("  [")
        extra = "  [" + "; ".join(_extra_part(p) for p in rest[:-1].split("; ")) + "]"
    translated = click_text(body) if body in CLICK_TEXTS else _(body)
    if translated == body and body and language() != "sv":
        translated = _short_help_translation(body)
    return translated + extra


def _extra_part(part: str) -> str:
    """``env var: X``, ``default: Y`` or ``required``, with click's words translated."""
    for word in ("env var:", "default:"):
        if part.startswith(word):
            return click_text(word) + part[len(word) :]
    return click_text(part)


def _short_help_translation(short: str) -> str:
    """The short help click made of a long help text (its first sentence, perhaps cut
    with ``...``): the first sentence of that text's translation."""
    stem = short.removesuffix("...").rstrip()
    for msgid, msgstr in catalog_messages().items():
        if msgid.startswith(stem) and msgid != msgstr:
            first = msgstr.split("\n\n")[0].replace("\n", " ")
            sentence = first.split(". ")[0].rstrip(".") + "."
            if len(sentence) <= len(short) + 20:
                return sentence
            cut = sentence[: len(short) - 3].rsplit(" ", 1)[0]
            return cut.rstrip(",;:") + "..."
    return short


# Every click context (the root's and each subcommand's) formats help with it.
click.Context.formatter_class = TranslatingFormatter


def _lang_in(args: list[str]) -> str | None:
    """The value of ``--lang`` among the root's arguments (before the subcommand)."""
    for i, arg in enumerate(args):
        if arg == "--lang" and i + 1 < len(args):
            return args[i + 1] if args[i + 1] in LANGUAGES else None
        if arg.startswith("--lang="):
            value = arg.partition("=")[2]
            return value if value in LANGUAGES else None
        if not arg.startswith("-"):
            break
    return None


def _set_lang(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    set_language(value)


def lang_option(f: Callable[P, R]) -> Callable[P, R]:
    """``--lang sv|en`` (or ``SAMVERKA_LANG``; else the locale): the language people read."""
    return click.option(
        "--lang",
        type=click.Choice(LANGUAGES),
        envvar="SAMVERKA_LANG",
        show_envvar=True,
        is_eager=True,
        expose_value=False,
        callback=_set_lang,
        help=N_(
            "Språk för text till människor: sv eller en [standard: sv, eller en när "
            "LANG/LC_ALL/LANGUAGE säger engelska]. --json påverkas inte."
        ),
    )(f)


class SamverkaGroup(click.Group):
    """The root group: turns every SamverkaError from any subcommand into a message."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            # The language first, so that eager options (--help, --version) and usage
            # errors already speak it; --lang's own callback sets it again.
            set_language(_lang_in(args))
        return super().parse_args(ctx, args)

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

    def run(**_args: Any) -> None:
        raise ConfigError(
            _("`samverka {name}` finns inte: modulen {module} är inte installerad").format(
                name=name, module=module_name
            ),
            hint=_(
                "den här installationen saknar den delen av samverka; installera hela "
                "paketet igen (`make install` i en utcheckning)"
            ),
        )

    return click.Command(
        name,
        callback=run,
        help=_("{help} (inte installerat)").format(help=_(short_help)),
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
        help=N_("Nodens mapp [standard: mappen du står i]."),
    )(f)


def json_option(f: Callable[P, R]) -> Callable[P, R]:
    """``--json``: print machine-readable JSON instead of text, passed on as ``as_json``."""
    return click.option(
        "--json", "as_json", is_flag=True, help=N_("Skriv JSON för skript i stället för text.")
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
