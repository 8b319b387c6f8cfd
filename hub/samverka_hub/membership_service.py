"""HubService's membership methods: Enroll, GetDirectory, RotateKey, RenewCertificate,
ObjectToKey.

A mixin of :class:`samverka_hub.service.HubServicer`; the aggregation methods live in
:mod:`samverka_hub.aggregation_service`. Which port a call came in on matters:

=================  ==============================  =================================
method             public port (server TLS)         member port (mutual TLS)
=================  ==============================  =================================
Enroll             anyone                          any member (same answer)
GetDirectory       anyone                          members, not revoked ones
RotateKey          refused (UNAUTHENTICATED)       the caller's own key only
RenewCertificate   refused (UNAUTHENTICATED)       the caller's own certificate
ObjectToKey        refused (UNAUTHENTICATED)       objections for the caller only
=================  ==============================  =================================

Database work runs in worker threads (``asyncio.to_thread``); errors are Samverka
errors that the server's interceptor turns into statuses (INVALID_ARGUMENT for a bad
request, FAILED_PRECONDITION for a state conflict, PERMISSION_DENIED for a revoked
caller, RESOURCE_EXHAUSTED ``renewal_limit`` for a member past ``[ca] max_renewals``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from samverka.protocol.directory import VerifiedDirectory
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.transport.server.policy import Caller
from samverka.transport.server.status import NotAuthenticated
from samverka.v1 import hub_service_pb2

from samverka_hub.members import APPROVED, PENDING, STATUS_NAMES
from samverka_hub.tables import EnrollmentRow

if TYPE_CHECKING:
    import grpc

    from samverka_hub.runtime import HubRuntime

    Context = grpc.aio.ServicerContext[Any, Any]


class MembershipMethods:
    """Enroll, GetDirectory, RotateKey, RenewCertificate and ObjectToKey over a
    :class:`HubRuntime`."""

    runtime: HubRuntime
    public: bool

    async def caller_kommun(self, context: Context) -> str:
        """The calling member's kommunkod, checked against the directory (member port)."""
        if self.public:
            raise NotAuthenticated(
                "this call needs a member certificate: use the hub's member port",
                hint="call the [hub] address in samverka.toml with the node's certificate",
            )
        caller = Caller.from_context(context)
        await self.runtime.member_policy.audience(caller)
        code = caller.kommunkod
        if code is None or code == HUB_ORIGIN:
            raise NotAuthenticated("this call needs a kommun's member certificate")
        return code

    async def check_caller(self, context: Context) -> None:
        """On the member port, apply the caller policy (refuses revoked members)."""
        if not self.public:
            await self.runtime.member_policy.audience(Caller.from_context(context))

    async def Enroll(
        self, request: hub_service_pb2.EnrollRequest, context: Context
    ) -> hub_service_pb2.EnrollResponse:
        council = self.runtime.hub.council
        row = await asyncio.to_thread(council.submit_enrollment, request.request)
        return await self._enroll_response(row)

    async def _enroll_response(self, row: EnrollmentRow) -> hub_service_pb2.EnrollResponse:
        hub = self.runtime.hub
        reply = hub_service_pb2.EnrollResponse(status=row.status)  # type: ignore[arg-type]
        if row.status == PENDING:
            reply.message = (
                f"pending: the council has not decided yet. Ask AI-rådet to confirm the key "
                f"id {row.key_id} with you and run `samverka hub members approve "
                f"{row.kommunkod}`"
            )
            return reply
        reply.message = row.message or STATUS_NAMES.get(row.status, "")
        if row.status == APPROVED:
            directory = await asyncio.to_thread(hub.council.current_directory)
            assert directory is not None and row.certificate_pem is not None
            if directory.is_revoked(row.kommunkod):
                # Approved once, revoked since: the certificate is worth nothing now.
                reply.status = hub_service_pb2.ENROLLMENT_STATUS_REJECTED
                reply.message = f"kommun {row.kommunkod}'s membership has been revoked"
                return reply
            reply.certificate_pem = row.certificate_pem
            # Every CA members trust now (old and new while the CA is rotated).
            reply.ca_pem = await asyncio.to_thread(hub.ca.bundle_pem)
            reply.directory.CopyFrom(directory.signed)
            # The key that signed the directory served (after `hub rotate-keys` the
            # new one, whatever this process loaded at start).
            reply.hub_public_key = signing_key_of(directory)
            reply.member_address = self.runtime.member_address
        return reply

    async def GetDirectory(
        self, request: hub_service_pb2.GetDirectoryRequest, context: Context
    ) -> hub_service_pb2.GetDirectoryResponse:
        await self.check_caller(context)
        directory = await asyncio.to_thread(self.runtime.hub.council.current_directory)
        if directory is None:  # only before hub init finished; serve waits for one
            raise RuntimeError("the hub has no directory yet")
        if request.known_version == directory.version:
            return hub_service_pb2.GetDirectoryResponse(not_modified=True)
        if 0 < request.known_version < directory.version:
            # A node behind a hub key rotation takes nothing signed by the new key
            # before it has followed the rotation: the version that carries it first
            # (the node then asks again from there, as a TUF client walks its roots).
            step = await asyncio.to_thread(
                self.runtime.hub.council.rotation_step, request.known_version
            )
            if step is not None:
                return hub_service_pb2.GetDirectoryResponse(directory=step.signed)
        return hub_service_pb2.GetDirectoryResponse(directory=directory.signed)

    async def RotateKey(
        self, request: hub_service_pb2.RotateKeyRequest, context: Context
    ) -> hub_service_pb2.RotateKeyResponse:
        code = await self.caller_kommun(context)
        council = self.runtime.hub.council
        row = await asyncio.to_thread(council.submit_rotation, request.rotation, caller=code)
        if row.status == PENDING:
            message = (
                f"pending: ask AI-rådet to confirm the new key id {row.new_key_id} and run "
                f"`samverka hub keys approve {code}`"
            )
        else:
            message = row.message or STATUS_NAMES.get(row.status, "")
        return hub_service_pb2.RotateKeyResponse(
            status=row.status,  # type: ignore[arg-type]
            message=message,
        )

    async def ObjectToKey(
        self, request: hub_service_pb2.ObjectToKeyRequest, context: Context
    ) -> hub_service_pb2.ObjectToKeyResponse:
        """A member objects to a key listed for it: kept, and listed in a directory
        version signed at once (every node then refuses the key)."""
        code = await self.caller_kommun(context)
        council = self.runtime.hub.council
        row, directory = await asyncio.to_thread(
            council.object_to_key, request.objection, caller=code
        )
        return hub_service_pb2.ObjectToKeyResponse(
            message=f"objection of {code} to key {row.objected_key_id} kept; listed in "
            f"directory version {directory.version}"
        )

    async def RenewCertificate(
        self, request: hub_service_pb2.RenewCertificateRequest, context: Context
    ) -> hub_service_pb2.RenewCertificateResponse:
        code = await self.caller_kommun(context)
        council = self.runtime.hub.council
        pem = await asyncio.to_thread(council.renew_certificate, code, bytes(request.csr_der))
        return hub_service_pb2.RenewCertificateResponse(certificate_pem=pem)


def signing_key_of(directory: VerifiedDirectory) -> bytes:
    """The raw hub key that signed ``directory`` (listed under "0000" in it)."""
    hub = directory.member(HUB_ORIGIN)
    for key in hub.keys if hub is not None else ():
        if key.key_id == directory.directory.hub_key_id:
            return bytes(key.public_key)
    raise RuntimeError(f"directory version {directory.version} does not list its signing key")
