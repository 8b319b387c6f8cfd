"""The gRPC server side: FeedService, visibility policy, and the server lifecycle.

- :mod:`.app`: :class:`NodeServer` (listeners, health, reflection, SIGTERM drain);
- :mod:`.feed`: :class:`FeedServicer`;
- :mod:`.policy`: who the caller is and what they may see (:class:`CallerPolicy`);
- :mod:`.status`: Samverka errors as gRPC statuses with an ErrorInfo detail.

A node's server assembled from its folder is :mod:`samverka.membership.serving`'s: its
default caller policy is the member directory the node holds.
"""

from samverka.transport.server.app import Listener, NodeServer, ServiceBinding
from samverka.transport.server.feed import FeedServicer, NodeIdentity
from samverka.transport.server.policy import (
    Audience,
    Caller,
    CallerPolicy,
    CertificatePolicy,
    PublicPolicy,
)
from samverka.transport.server.settings import ServerSettings, ServerTls
from samverka.transport.server.status import AccessDenied, InvalidRequest, NotAuthenticated

__all__ = [
    "AccessDenied",
    "Audience",
    "Caller",
    "CallerPolicy",
    "CertificatePolicy",
    "FeedServicer",
    "InvalidRequest",
    "Listener",
    "NodeIdentity",
    "NodeServer",
    "NotAuthenticated",
    "PublicPolicy",
    "ServerSettings",
    "ServerTls",
    "ServiceBinding",
]
