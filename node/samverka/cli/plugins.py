"""What packages built on the node add to it: ``samverka`` subcommands and doctor profiles.

The node never imports those packages (the hub is built on the node, not the reverse).
They declare Python entry points in two groups instead, read only when needed:

- ``samverka.commands``: a :class:`CommandSpec` per subcommand (``samverka hub``). Its
  help is listed by ``samverka --help``; its module is imported when it is run.
- ``samverka.doctor``: a function ``(folder, raw config) -> Profile | None`` that says
  what kind of folder ``samverka doctor`` checks when the node's profile does not fit
  (the hub's folder, kommun 0000).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, NamedTuple

from samverka.ops.doctor import Profile

COMMANDS_GROUP = "samverka.commands"
DOCTOR_GROUP = "samverka.doctor"

DoctorProfiler = Callable[[Path, Mapping[str, Any]], Profile | None]


class CommandSpec(NamedTuple):
    """A subcommand another package adds: ``"module:attribute"`` of its click command."""

    import_path: str
    short_help: str


def plugin_commands() -> dict[str, tuple[str, str]]:
    """Subcommand name → (import path, help) for every registered command."""
    commands: dict[str, tuple[str, str]] = {}
    for entry in entry_points(group=COMMANDS_GROUP):
        spec = entry.load()
        if isinstance(spec, CommandSpec):
            commands[entry.name] = (spec.import_path, spec.short_help)
    return commands


def doctor_profilers() -> Iterator[DoctorProfiler]:
    for entry in entry_points(group=DOCTOR_GROUP):
        profiler = entry.load()
        if callable(profiler):
            yield profiler
