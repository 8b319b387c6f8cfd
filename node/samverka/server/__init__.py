"""The gRPC server side: FeedService, visibility policy, and the server lifecycle.

- :mod:`.app`: :class:`NodeServer` (listeners, health, reflection, SIGTERM drain);
- :mod:`.feed`: :class:`FeedServicer`;
- :mod:`.policy`: who the caller is and what they may see (:class:`CallerPolicy`);
- :mod:`.status`: Samverka errors as gRPC statuses with an ErrorInfo detail;
- :mod:`.node`: a node's server assembled from its folder's configuration.
"""

from samverka.server.app import Listener, NodeServer, ServiceBinding
from samverka.server.feed import FeedServicer, NodeIdentity
from samverka.server.node import build_node_server, serve_node
from samverka.server.policy import Audience, Caller, CallerPolicy, CertificatePolicy, PublicPolicy
from samverka.server.settings import ServerSettings, ServerTls
from samverka.server.status import AccessDenied, InvalidRequest, NotAuthenticated

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
    "build_node_server",
    "serve_node",
]
