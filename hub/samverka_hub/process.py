"""``hub serve``: the hub's gRPC server on its two ports.

- member port (``[server] listen``, mutual TLS: a client certificate from the hub's CA
  is required): FeedService and HubService for members; callers revoked in (or absent
  from) the member directory are refused with PERMISSION_DENIED;
- public port (``[public] listen``, server TLS only): HubService's Enroll and
  GetDirectory for anyone, FeedService with PUBLIC records only.

The harvester (``[harvest]``) pulls members' feeds from their nodes on a schedule.
Webhooks (``[webhooks]``, :mod:`samverka_hub.webhooks`) post a message about each new
PUBLIC record to chat channels, from the store's log, never in ingest's way.
The web catalog (``[web]``, :mod:`samverka_hub.web`) is served over plain HTTP from
the same asyncio loop, started and stopped with the ports.
Both ports carry health and reflection (see :class:`samverka.transport.server.NodeServer`). SIGTERM
drains both. The directory watcher starts before the ports open, so the first call
already sees the current directory.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from samverka.membership.member import DirectoryPolicy
from samverka.protocol.inclusion import MAX_LEAVES_PER_CALL
from samverka.protocol.kommuner import HUB_ORIGIN, kommun_name
from samverka.protocol.wire import WireLimits
from samverka.store.logwatch import watcher_for
from samverka.store.purge import PurgeTask
from samverka.transport.server.app import NodeServer, split_address
from samverka.transport.server.feed import FeedServicer, LogView, NodeIdentity
from samverka.transport.server.policy import PublicPolicy
from samverka.transport.server.settings import ServerSettings, ServerTls

from samverka_hub.aggregation_service import MAX_PUBLISH_ENTRIES
from samverka_hub.cosigned import CosignedLog
from samverka_hub.directory_watch import DirectoryWatcher
from samverka_hub.folder import Hub, log_host
from samverka_hub.harvest import harvester_for
from samverka_hub.keyfiles import log_signer_source, log_vkey_source
from samverka_hub.runtime import HubRuntime
from samverka_hub.service import HubServicer
from samverka_hub.tlog import Sequencer, ensure_log_key

log = logging.getLogger("samverka_hub")


def build_hub_server(
    hub: Hub,
    *,
    member_listen: str | None = None,
    public_listen: str | None = None,
    settings: ServerSettings | None = None,
    web_listen: str | None = None,
) -> tuple[NodeServer, HubRuntime]:
    """A NodeServer with the hub's two listeners, and the runtime its servicers share.

    ``web_listen`` overrides ``[web] listen``; "" serves no web catalog.
    """
    config = hub.config
    node = config.node
    member_address = member_listen or config.member_listen
    if not node.hub.address and split_address(member_address)[0] in ("0.0.0.0", "::", ""):
        log.warning(
            "[hub] address is empty and the member port listens on %s: enrolled nodes "
            "would be told an address they cannot call; set [hub] address in samverka.toml",
            member_address,
        )
    settings = settings or ServerSettings.from_section(node.server)
    log_watcher = watcher_for(hub.store, node.store_url)
    directory = DirectoryWatcher(hub.council, poll_seconds=config.directory.poll_seconds)
    member_policy = DirectoryPolicy(
        directory.current_or_none, require_listed=True, allow=frozenset({HUB_ORIGIN})
    )
    runtime = HubRuntime(
        hub=hub,
        directory=directory,
        member_policy=member_policy,
        log_watcher=log_watcher,
        settings=settings,
    )
    identity = NodeIdentity(
        kommunkod=HUB_ORIGIN, name=kommun_name(HUB_ORIGIN), public_key=hub.signing_key.public
    )

    def log_view() -> LogView:
        # GetLogView at the hub: the checkpoint it serves as cosigned (members compare
        # it with the one they accepted; `samverka crosscheck`).
        note = runtime.tlog.checkpoint_note() if runtime.tlog is not None else None
        return LogView(checkpoint=note or b"")

    member_feed = FeedServicer(
        hub.store,
        identity,
        log_watcher,
        settings,
        policy=member_policy,
        log_view=log_view,
        # Subscribers are told each new directory version at once (nodes fetch it).
        directory_version=lambda: directory.current.version,
    )
    public_feed = FeedServicer(
        hub.store,
        identity,
        log_watcher,
        settings,
        policy=PublicPolicy(),
        reader=member_feed.reader,
        log_view=log_view,
    )
    member_tls = ServerTls.mutual_from_config(node)
    public_tls = ServerTls(member_tls.cert_chain, member_tls.private_key, client_ca=None)

    server = NodeServer(settings)
    server.add_resource(log_watcher)
    # The physical purge after erasures, in the background (samverka.store.purge).
    server.add_resource(PurgeTask(hub.store))
    server.add_resource(directory)
    # The transparency log: after the directory watcher (which signs version 1 if due).
    ensure_log_key(hub.dir, log_host(node.hub.address))
    # Both read the log key as it is now: `hub rotate-keys --log` needs no restart.
    server.add_resource(
        Sequencer(
            hub.store.engine,
            log_signer_source(hub.dir),
            log_watcher,
            may_sign=hub.council.signing_allowed,
        )
    )
    runtime.tlog = CosignedLog(
        hub.store.engine,
        log_vkey_source(hub.dir),
        directory.current_or_none,
        witness_target=config.tlog.witness_target,
    )
    if config.harvest.enabled:
        # After the directory watcher: it starts first and knows the members.
        server.add_resource(harvester_for(hub, lambda: directory.current, log_watcher))
    if config.web.enabled and web_listen != "":
        # Imported here: the web stack (FastAPI, Jinja2) loads only when it is served.
        from samverka_hub.web.server import WebEndpoint

        runtime.web = WebEndpoint(
            hub.store,
            directory.current_or_none,
            config.web,
            listen=web_listen,
            grace_seconds=settings.grace_seconds,
            tlog=runtime.tlog,
        )
        server.add_resource(runtime.web)
    if config.webhooks.urls or config.webhooks.urls_file:
        # Imported here, like the catalog: loaded only when webhooks are configured.
        from samverka_hub.webhooks import WebhookDelivery, configured_urls

        urls = configured_urls(config)
        if urls:
            server.add_resource(
                WebhookDelivery(
                    hub.store,
                    urls,
                    config.webhooks,
                    directory.current_or_none,
                    log_watcher,
                    public_url=config.web.public_url,
                )
            )
    runtime.member_listener = server.add_listener(
        "member",
        member_address,
        member_tls,
        [
            member_feed.binding(),
            dataclasses.replace(
                HubServicer(runtime, public=False).binding(),
                request_limits={"Publish": publish_limits(settings), **log_limits(settings)},
            ),
        ],
    )
    server.add_listener(
        "public",
        public_listen or config.public.listen,
        public_tls,
        [
            public_feed.binding(),
            dataclasses.replace(
                HubServicer(runtime, public=True).binding(), request_limits=log_limits(settings)
            ),
        ],
    )
    return server, runtime


def publish_limits(settings: ServerSettings) -> WireLimits:
    """Publish on the member port: the server's largest message, at most
    MAX_PUBLISH_ENTRIES entries, counted on the wire before any is decoded (a log entry
    is 5 fields; 8 each leaves room). Every other method keeps the small default, and
    the public port has no Publish, so its receive size stays small too."""
    return WireLimits(
        max_bytes=settings.max_message_bytes,
        max_items=MAX_PUBLISH_ENTRIES,
        max_fields=MAX_PUBLISH_ENTRIES * 8 + 64,
    )


def log_limits(settings: ServerSettings) -> dict[str, WireLimits]:
    """GetInclusionProofs (both ports): at most MAX_LEAVES_PER_CALL leaf queries,
    counted on the wire before any is decoded (a query is 3 fields; 4 each leaves
    room), in the default request size (1,000 queries of a 4-digit origin and a
    sequence are ~15 KB)."""
    return {
        "GetInclusionProofs": WireLimits(
            max_bytes=settings.max_request_bytes,
            max_items=MAX_LEAVES_PER_CALL,
            max_fields=MAX_LEAVES_PER_CALL * 4 + 16,
        )
    }


async def serve_hub(
    hub: Hub,
    *,
    member_listen: str | None = None,
    public_listen: str | None = None,
    on_started: Callable[[NodeServer], None] | None = None,
) -> None:
    """Serve both ports until SIGTERM or SIGINT, then drain and return."""
    server, _runtime = build_hub_server(
        hub, member_listen=member_listen, public_listen=public_listen
    )
    await server.run_until_signal(on_started=on_started)
