"""The HubService servicer: membership and aggregation methods over one runtime.

The servicer is split by concern into mixins, so each part is built and read on its
own: :class:`~samverka_hub.membership_service.MembershipMethods` (Enroll,
GetDirectory, RotateKey, RenewCertificate) and
:class:`~samverka_hub.aggregation_service.AggregationMethods` (Publish) and
:class:`~samverka_hub.insight_service.InsightMethods` (Search, GetStats) and
:class:`~samverka_hub.log_service.LogMethods` (the transparency log: GetCheckpoint,
GetConsistencyProof, GetInclusionProofs, AddCosignature). One instance serves one
port; ``public`` says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from samverka.transport.server.app import ServiceBinding
from samverka.v1 import hub_service_pb2, hub_service_pb2_grpc

from samverka_hub.aggregation_service import AggregationMethods
from samverka_hub.insight_service import InsightMethods
from samverka_hub.log_service import LogMethods
from samverka_hub.membership_service import MembershipMethods
from samverka_hub.runtime import HubRuntime

if TYPE_CHECKING:
    pass

SERVICE_NAME: str = hub_service_pb2.DESCRIPTOR.services_by_name["HubService"].full_name


class HubServicer(
    MembershipMethods,
    InsightMethods,
    AggregationMethods,
    LogMethods,
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
