"""A node's server: FeedService over the node's store, on its mutual-TLS member port."""

from __future__ import annotations

from collections.abc import Callable

from samverka.config import NodeConfig
from samverka.membership.member import CachedDirectory, DirectoryPolicy
from samverka.node import known_objections
from samverka.protocol.kommuner import kommun_name
from samverka.protocol.signing import PublicKey
from samverka.replication.logstate import LogState
from samverka.store.logwatch import LogWatcher, watcher_for
from samverka.store.purge import PurgeTask
from samverka.store.store import Store
from samverka.transport.server.app import NodeServer
from samverka.transport.server.feed import FeedServicer, LogView, NodeIdentity
from samverka.transport.server.policy import CallerPolicy
from samverka.transport.server.settings import ServerSettings, ServerTls


def build_node_server(
    config: NodeConfig,
    store: Store,
    public_key: PublicKey,
    *,
    listen: str | None = None,
    settings: ServerSettings | None = None,
    watcher: LogWatcher | None = None,
    policy: CallerPolicy | None = None,
) -> NodeServer:
    """A NodeServer serving the node's feed on ``listen`` (default: ``[server] listen``).

    Pass ``watcher`` to call ``watcher.notify()`` after appending in this process. The
    default policy refuses callers whose kommun is revoked in the member directory the
    node holds (re-read when the file changes), and every member caller once the hub
    has not confirmed that directory for ``[hub] directory_max_age_seconds``; others
    with a certificate from the node's CA are members.
    """
    if policy is None:
        directory = CachedDirectory(config)
        max_age = config.hub.directory_max_age_seconds
        policy = DirectoryPolicy(
            directory,
            max_age_ms=int(max_age * 1000) if max_age > 0 else None,
            checked_at=directory.checked_at,
        )
    settings = settings or ServerSettings.from_section(config.server)
    watcher = watcher or watcher_for(store, config.store_url)
    identity = NodeIdentity(
        kommunkod=config.node.kommun,
        name=config.node.name or kommun_name(config.node.kommun),
        public_key=public_key,
    )
    feed = FeedServicer(
        store, identity, watcher, settings, policy=policy, log_view=lambda: node_log_view(config)
    )
    server = NodeServer(settings)
    server.add_resource(watcher)
    # The physical purge after erasures, in the background (samverka.store.purge).
    server.add_resource(PurgeTask(store))
    server.add_listener(
        "member",
        listen or config.server.listen,
        ServerTls.mutual_from_config(config),
        [feed.binding()],
    )
    return server


def node_log_view(config: NodeConfig) -> LogView:
    """GetLogView's answer: the checkpoint of the hub's log this node accepted last (its
    peers compare it with theirs: ``samverka crosscheck``) and the key objections it
    honours (its own among them: a kommun's objection reaches its peers even when the hub
    does not list it)."""
    held = LogState(config.dir).accepted()
    return LogView(
        checkpoint=held.note if held is not None else b"",
        objections=tuple(known_objections(config)),
    )


async def serve_node(
    config: NodeConfig,
    store: Store,
    public_key: PublicKey,
    *,
    listen: str | None = None,
    on_started: Callable[[NodeServer], None] | None = None,
) -> None:
    """Serve the node's feed until SIGTERM or SIGINT, then drain and return."""
    server = build_node_server(config, store, public_key, listen=listen)
    await server.run_until_signal(on_started=on_started)
