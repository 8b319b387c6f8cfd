"""What the hub's servicers share while ``hub serve`` runs (:class:`HubRuntime`).

Its own module so that the servicer's mixins and the servicer that combines them
(:mod:`samverka_hub.service`) all import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from samverka.protocol.verify import KeyRing
from samverka.store.logwatch import LogWatcher
from samverka.store.store import Store
from samverka.transport.server.app import Listener
from samverka.transport.server.policy import CallerPolicy
from samverka.transport.server.settings import ServerSettings

from samverka_hub.directory_watch import DirectoryWatcher
from samverka_hub.folder import Hub

if TYPE_CHECKING:
    from samverka_hub.cosigned import CosignedLog
    from samverka_hub.web.server import WebEndpoint


@dataclass
class HubRuntime:
    """What the hub's servicers share while ``hub serve`` runs."""

    hub: Hub
    #: The newest member directory, kept current (see DirectoryWatcher).
    directory: DirectoryWatcher
    #: Who may call the member port: refuses revoked and unlisted kommuner.
    member_policy: CallerPolicy
    #: Notify after appending to the store in this process, so subscribers wake.
    log_watcher: LogWatcher
    settings: ServerSettings
    #: The member port's listener, once added (its bound port is known after start).
    member_listener: Listener | None = None
    #: The web catalog served with the ports ([web]), if enabled.
    web: WebEndpoint | None = None
    #: The transparency log with its witnesses' cosignatures (samverka_hub.cosigned).
    tlog: CosignedLog | None = None

    @property
    def member_address(self) -> str:
        """Where enrolled nodes call the hub: [hub] address, else the member port bound."""
        config = self.hub.config
        if config.node.hub.address:
            return config.node.hub.address
        if self.member_listener is not None and self.member_listener.port:
            return self.member_listener.bound_address
        return config.member_address

    @property
    def store(self) -> Store:
        return self.hub.store

    def keyring(self) -> KeyRing:
        """The keys entries are verified with: the current directory's."""
        return self.directory.current.keyring()
