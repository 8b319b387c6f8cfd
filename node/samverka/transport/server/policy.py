"""Who is calling, and what they may see: the one place a server decides visibility.

Identity comes from TLS, never from anything the caller says: on a mutual-TLS port
gRPC has already checked the client certificate against our CA, and its common name
is the caller's kommunkod. On a public port (server TLS only, the hub's) gRPC does not
ask for a client certificate, so every caller there is anonymous.

Servicers ask a :class:`CallerPolicy` for the caller's :class:`Audience` and pass it on
to the store, which redacts what the audience may not read. Drafts are never part of
any audience: they do not leave their node. The hub plugs in its own policy (e.g. one
that also refuses members revoked in its directory) without touching the servicers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from samverka.protocol.kommuner import is_origin
from samverka.transport.server.status import AccessDenied


class Audience(enum.Enum):
    """What a caller may read. Drafts are readable by no remote caller."""

    #: PUBLIC records; MEMBERS records are redacted.
    PUBLIC = "public"
    #: PUBLIC and MEMBERS records.
    MEMBERS = "members"

    @property
    def member(self) -> bool:
        return self is Audience.MEMBERS


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller as TLS identified it."""

    #: gRPC's peer string, e.g. ``ipv4:127.0.0.1:53122``; for logs only.
    peer: str
    #: Common name of a client certificate gRPC verified against our CA; None if none came.
    common_name: str | None

    @property
    def kommunkod(self) -> str | None:
        """The caller's kommunkod, when its certificate names one."""
        return self.common_name if self.common_name and is_origin(self.common_name) else None

    @property
    def label(self) -> str:
        """How logs name the caller."""
        return self.common_name or "anonymous"

    @classmethod
    def from_context(cls, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        auth = context.auth_context() or {}
        names = list(auth.get("x509_common_name") or ())
        common_name = names[0].decode("utf-8", "replace") if names else None
        return cls(peer=str(context.peer() or ""), common_name=common_name)


class CallerPolicy(Protocol):
    """Decides what a caller may read; raises AccessDenied to refuse the call.

    ``revision()`` changes whenever what :meth:`audience` decides by changes (a new
    member directory, one grown too old). Streams compare it before every message and
    at least every :data:`~samverka.transport.server.feed.POLICY_RECHECK_SECONDS`
    while idle, and ask :meth:`audience` again when it moved: a revocation ends an
    open stream, not only the next call. It is called often: keep it cheap.
    """

    async def audience(self, caller: Caller) -> Audience: ...

    def revision(self) -> object: ...


class CertificatePolicy:
    """The node's policy: a certificate from our CA makes a member; no certificate, public.

    A certificate whose common name is not a kommunkod (or the hub's 0000) is refused:
    our CA never issues one, so it is a misissued or foreign certificate.
    """

    async def audience(self, caller: Caller) -> Audience:
        if caller.common_name is None:
            return Audience.PUBLIC
        if caller.kommunkod is None:
            raise AccessDenied(
                f"certificate common name {caller.common_name!r} is not a kommunkod",
                hint="use a certificate issued by the council's CA to a kommun",
            )
        return Audience.MEMBERS

    def revision(self) -> object:
        return 0  # decided by the certificate alone, which cannot change mid-call


class PublicPolicy:
    """Everyone is public, certificate or not (e.g. for a public catalog port)."""

    async def audience(self, caller: Caller) -> Audience:
        return Audience.PUBLIC

    def revision(self) -> object:
        return 0
