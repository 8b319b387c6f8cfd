"""The HubService servicer: membership and aggregation methods over one runtime.

The servicer is split by concern into mixins, so each part is built and read on its
own: :class:`~samverka_hub.membership_service.MembershipMethods` (Enroll,
GetDirectory, RotateKey, RenewCertificate) and
:class:`~samverka_hub.aggregation_service.AggregationMethods` (Publish) and
:class:`~samverka_hub.insight_service.InsightMethods` (Search, GetStats). One instance
serves one port; ``public`` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from samverka.protocol.verify import KeyRing
from samverka.store.logwatch import LogWatcher
from samverka.store.store import Store
from samverka.transport.server.app import Listener, ServiceBinding
from samverka.transport.server.policy import CallerPolicy
from samverka.transport.server.settings import ServerSettings
from samverka.v1 import hub_service_pb2, hub_service_pb2_grpc

from samverka_hub.aggregation_service import AggregationMethods
from samverka_hub.directory_watch import DirectoryWatcher
from samverka_hub.folder import Hub
from samverka_hub.insight_service import InsightMethods
from samverka_hub.membership_service import MembershipMethods

if TYPE_CHECKING:
    from samverka_hub.web.server import WebEndpoint

SERVICE_NAME: str = hub_service_pb2.DESCRIPTOR.services_by_name["HubService"].full_name


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


class HubServicer(
    MembershipMethods,
    InsightMethods,
    AggregationMethods,
    hub_service_pb2_grpc.HubServiceServicer,
):
    """HubService on one port (``public``: the server-TLS-only port)."""

    def __init__(self, runtime: HubRuntime, *, public: bool) -> None:
        self.runtime = runtime
        self.public = public

    def binding(self) -> ServiceBinding:
        return ServiceBinding(
            name=SERVICE_NAME,
            register=lambda server: hub_service_pb2_grpc.add_HubServiceServicer_to_server(
                self, server
            ),
        )
