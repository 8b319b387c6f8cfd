"""``samverka doctor``: check a node or hub folder; one line per finding, how to fix it."""

from __future__ import annotations

from pathlib import Path

import click

from samverka.cli._common import EXIT_CODES_HELP, dir_option, help_parts, json_option, print_json
from samverka.cli.plugins import doctor_profilers
from samverka.config import CONFIG_FILE, read_toml
from samverka.errors import ConfigError
from samverka.ops.doctor import ALL_CHECKS, Profile, format_findings, run_doctor


@click.command(
    "doctor",
    epilog=help_parts(
        "Exit status: 0 when nothing FAILs (warnings included), 1 when a check FAILs, "
        "3 when the folder holds no configuration at all.\n\n",
        EXIT_CODES_HELP,
    ),
)
@dir_option
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(ALL_CHECKS),
    help="Run only this check (repeatable). `--only server` probes this folder's own "
    "running server: a container health check.",
)
@click.option("--offline", is_flag=True, help="Skip the checks that need the network (hub, clock).")
@json_option
def doctor(node_dir: Path, only: tuple[str, ...], offline: bool, as_json: bool) -> None:
    """Check this node or hub folder: config, keys and their permissions, certificates
    (expiry within 30 days warns), the database, the member directory, reaching the
    hub over mutual TLS, and clock skew against the hub.

    \b
    Examples:
      samverka doctor --dir /var/lib/samverka/node
      samverka doctor --offline             # before starting the service
      samverka doctor --only server         # is the running server healthy?
    """
    report = run_doctor(node_dir, profile=profile_for(node_dir), only=only, offline=offline)
    if as_json:
        print_json(
            {
                "dir": str(node_dir),
                "ok": not report.failed,
                "findings": [f.as_json() for f in report.findings],
            }
        )
    else:
        for line in format_findings(report.findings):
            click.echo(line)
    if report.failed:
        missing = not (node_dir / CONFIG_FILE).exists()
        raise SystemExit(3 if missing else 1)


def profile_for(folder: Path) -> Profile:
    """The profile a registered package claims ``folder`` for (the hub's: kommun 0000),
    else the node's."""
    try:
        raw = read_toml(folder / CONFIG_FILE)
    except ConfigError:
        return Profile()  # the config check reports it
    for profiler in doctor_profilers():
        profile = profiler(folder, raw)
        if profile is not None:
            return profile
    return Profile()
