"""``samverka hub web``: the web catalog alone, against a hub folder.

For a catalog on another host than the gRPC ports (a copy of the hub folder on
PostgreSQL, like a replica), or to look at a hub's data without serving its feeds.
``hub serve`` serves the same catalog with the ports ([web] in samverka.toml).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from samverka.cli._common import EXIT_CODES_HELP, dir_option, help_parts
from samverka.i18n import N_


@click.command(
    epilog=help_parts(
        N_("Stannar vid SIGTERM eller Ctrl-C. Bara läsning: den skriver inget till hubben."),
        "\n\n",
        EXIT_CODES_HELP,
    ),
    help=N_(
        "Kör den läsbara webbkatalogen över hubbens OFFENTLIGA poster i MAPP.\n\n"
        "Sidor på svenska (sök, poster, kommuner, täckning, beprövade lösningar), ett "
        "JSON-API under /api (OpenAPI på /api/openapi.json) och CSV-export; "
        "transparensloggen under /log/ som hubben senast signerade den (ingen sekvenserare "
        "kör här)."
    ),
)
@dir_option
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default=None,
    help=N_(
        "Var den ska lyssna (vanlig HTTP; port 0 väljer en ledig port) [standard: [web] listen]."
    ),
)
@click.option(
    "--address-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=N_('Skriv {"web": HOST:PORT} hit när den kör (för skript).'),
)
def web(node_dir: Path, listen: str | None, address_file: Path | None) -> None:
    """Serve the read-only web catalog of PUBLIC records from the hub in DIR.

    Pages in Swedish (search, records, kommuner, coverage, proven solutions), a
    JSON API under /api (OpenAPI at /api/openapi.json) and CSV export; the
    transparency log under /log/ as the hub last signed it (no sequencer runs here).
    """
    import asyncio

    import uvloop
    from samverka.cli.serve import configure_logging
    from samverka.config import load_config
    from samverka.ops.logs import announce

    from samverka_hub.cosigned import cosigned_log
    from samverka_hub.folder import open_hub
    from samverka_hub.web.server import CachedDirectory, WebEndpoint, serve_alone

    configure_logging(load_config(node_dir), None, None)
    hub = open_hub(node_dir)
    try:
        directory = CachedDirectory(hub.council.current_directory)
        endpoint = WebEndpoint(
            hub.store,
            directory,
            hub.config.web,
            listen=listen,
            tlog=cosigned_log(hub, directory),
        )

        def started(endpoint: WebEndpoint) -> None:
            announce(f"hub web catalog on {endpoint.url}", event="web_serving", url=endpoint.url)
            if address_file is not None:
                tmp = address_file.with_name(address_file.name + ".tmp")
                tmp.write_text(json.dumps({"web": endpoint.bound_address}) + "\n", "utf-8")
                os.replace(tmp, address_file)

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve_alone(endpoint, on_started=started))
    finally:
        hub.close()
    announce("stopped", event="stopped")
