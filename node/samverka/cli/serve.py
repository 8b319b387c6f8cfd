"""``samverka node serve``: serve this node's feed over mutual TLS until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click
import uvloop

from samverka.cli._common import EXIT_CODES_HELP, dir_option, open_node


@click.command(
    "serve",
    epilog="Stops on SIGTERM or Ctrl-C: health turns NOT_SERVING, live subscriptions end "
    "cleanly, open reads get [server] grace_seconds, then it exits 0.\n\n" + EXIT_CODES_HELP,
)
@dir_option
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where to listen [default: [server] listen]. Port 0 picks a free port; "
    "the address actually bound is printed.",
)
@click.option(
    "--address-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the bound HOST:PORT to this file once serving (for scripts).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log level of the per-call log on stderr.",
)
def serve(node_dir: Path, listen: str | None, address_file: Path | None, log_level: str) -> None:
    """Serve this node's feed (FeedService, health, reflection) over mutual TLS."""
    from samverka.server import NodeServer, serve_node

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with open_node(node_dir) as node:

        def started(server: NodeServer) -> None:
            for listener in server.listeners:
                click.echo(
                    f"serving {node.origin} {node.name} on {listener.bound_address} "
                    f"({'mutual TLS' if listener.tls.mutual else 'server TLS'})"
                )
            if address_file is not None:
                tmp = address_file.with_name(address_file.name + ".tmp")
                tmp.write_text(server.listeners[0].bound_address + "\n", encoding="utf-8")
                os.replace(tmp, address_file)  # readers never see a half-written file

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(
                serve_node(
                    node.config,
                    node.store,
                    node.signing_key.public,
                    listen=listen,
                    on_started=started,
                )
            )
    click.echo("stopped")
