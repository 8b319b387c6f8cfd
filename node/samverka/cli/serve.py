"""``samverka node serve``: serve this node's feed over mutual TLS until SIGTERM.

Also home of what every long-running ``serve`` command shares (``hub serve`` imports
them): the ``--log-format``/``--log-level``/``--metrics-listen`` options and
:func:`configure_logging`, which applies them over the folder's ``[log]`` section.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click
import uvloop

from samverka.cli._common import EXIT_CODES_HELP, dir_option, help_parts, open_node
from samverka.config import LOG_FORMATS, LOG_LEVELS, NodeConfig
from samverka.i18n import N_
from samverka.ops.logs import announce

if TYPE_CHECKING:
    from samverka.ops.metrics import MetricsEndpoint

P = ParamSpec("P")
R = TypeVar("R")


def server_options(f: Callable[P, R]) -> Callable[P, R]:
    """``--log-format``, ``--log-level`` and ``--metrics-listen`` (each over samverka.toml)."""
    f = click.option(
        "--metrics-listen",
        metavar="HOST:PORT",
        default=None,
        help=N_(
            'Lämna ut Prometheus-mått på http://HOST:PORT/metrics ("" för inga) '
            "[standard: [metrics] listen]."
        ),
    )(f)
    f = click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS),
        default=None,
        help=N_("Lägsta nivå som loggas på stderr [standard: [log] level, info]."),
    )(f)
    return click.option(
        "--log-format",
        type=click.Choice(LOG_FORMATS),
        default=None,
        help=N_(
            "json: en händelse per rad; console: för människor; auto: console på en terminal, "
            "annars json [standard: [log] format, auto]."
        ),
    )(f)


def configure_logging(config: NodeConfig, log_format: str | None, log_level: str | None) -> str:
    """Set up logging from the options, else ``[log]``; returns the format chosen."""
    from samverka.ops.logs import setup_logging

    return setup_logging(log_format or config.log.format, log_level or config.log.level)


@click.command(
    "serve",
    epilog=help_parts(
        N_(
            "Stannar vid SIGTERM eller Ctrl-C: hälsan blir NOT_SERVING, levande prenumerationer "
            "avslutas rent, pågående läsningar får [server] grace_seconds, sedan avslutas den "
            "med 0."
        ),
        "\n\n",
        EXIT_CODES_HELP,
    ),
    help=N_(
        "Lämna ut nodens flöde (FeedService, hälsa, reflektion) över ömsesidig TLS.\n\n"
        "Loggar går till stderr (en JSON-händelse per rad, eller text); Prometheus-mått "
        "lämnas ut när [metrics] listen eller --metrics-listen anger en adress."
    ),
)
@dir_option
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help=N_(
        "Var den ska lyssna [standard: [server] listen]. Port 0 väljer en ledig port; "
        "adressen som faktiskt binds skrivs ut."
    ),
)
@click.option(
    "--address-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=N_("Skriv också den bundna HOST:PORT till den här filen när den kör (för skript)."),
)
@server_options
def serve(
    node_dir: Path,
    listen: str | None,
    address_file: Path | None,
    log_format: str | None,
    log_level: str | None,
    metrics_listen: str | None,
) -> None:
    """Serve this node's feed (FeedService, health, reflection) over mutual TLS.

    Logs go to stderr (one JSON event a line, or console text); Prometheus metrics
    are served when [metrics] listen or --metrics-listen names an address.
    """
    from samverka.config import load_config
    from samverka.membership.mirror import hub_agents
    from samverka.membership.serving import build_node_server
    from samverka.ops.metrics import serve_metrics
    from samverka.store.logwatch import watcher_for
    from samverka.transport.server import NodeServer

    configure_logging(load_config(node_dir), log_format, log_level)
    with open_node(node_dir) as node:
        config = node.config
        watcher = watcher_for(node.store, config.store_url)
        server = build_node_server(
            config, node.store, node.signing_key.public, listen=listen, watcher=watcher
        )
        # Enrolled: push this node's feed to the hub and follow the hub ([hub] push/follow).
        for agent in hub_agents(node, watcher):
            server.add_resource(agent)
        endpoint = serve_metrics(
            server,
            config.metrics.listen if metrics_listen is None else metrics_listen,
            node.store,
            node.origin,
            watcher,
        )

        def started(server: NodeServer) -> None:
            for listener in server.listeners:
                announce(
                    f"serving {node.origin} {node.name} on {listener.bound_address} "
                    f"({'mutual TLS' if listener.tls.mutual else 'server TLS'})",
                    event="serving",
                    listener=listener.name,
                    address=listener.bound_address,
                )
            echo_metrics(endpoint)
            if address_file is not None:
                tmp = address_file.with_name(address_file.name + ".tmp")
                tmp.write_text(server.listeners[0].bound_address + "\n", encoding="utf-8")
                os.replace(tmp, address_file)  # readers never see a half-written file

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(server.run_until_signal(on_started=started))
    announce("stopped", event="stopped")


def echo_metrics(endpoint: MetricsEndpoint | None) -> None:
    """Print where metrics are served (``metrics on http://…/metrics``), if they are."""
    if endpoint is not None and endpoint.serving:
        announce(f"metrics on {endpoint.url}", event="metrics_serving", url=endpoint.url)
