"""Samverka errors on the wire: a gRPC status with a ``google.rpc.ErrorInfo`` detail.

One codec for both ends. The server turns a :class:`~samverka.errors.SamverkaError`
into a status code, a human message and an ErrorInfo (``reason`` = the machine-readable
reason, ``domain`` = ``"samverka"``, ``metadata`` = origin and sequence when known);
the client turns such a status back into the matching exception, so a refusal reads
the same on both sides of the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from samverka.errors import (
    ConfigError,
    DirectoryRefused,
    EnrollmentRefused,
    EntryRefused,
    Overloaded,
    QuotaExhausted,
    Reason,
    RecordInvalid,
    RequestRefused,
    SamverkaError,
    StoreError,
    TransportError,
)

DOMAIN = "samverka"
#: The trailing-metadata key grpcio-status uses for a serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

#: Refusals that are about the order of a feed, not about the entry itself.
_PRECONDITION_REASONS = frozenset({Reason.SEQUENCE_GAP, Reason.FORK, Reason.VERSION_NOT_NEWER})


class AccessDenied(SamverkaError):
    """The caller may not make this call (not a member, revoked, wrong port)."""

    reason = "access_denied"


class NotAuthenticated(AccessDenied):
    """The call needs a client certificate naming a kommun, and none came."""

    reason = "unauthenticated"


class InvalidRequest(SamverkaError):
    """A request is malformed (an unknown kommunkod in a filter, a reversed time range)."""

    reason = "invalid_request"


class CursorAhead(SamverkaError):
    """A reader's cursor lies past the end of this server's log.

    The reader's position came from a log this server does not have (a database
    restored from an older backup, or a different server at the same address).
    Serving it would silently skip whatever is appended below that position.
    """

    reason = "cursor_ahead"


class Conflict(SamverkaError):
    """A request does not fit the server's current state (e.g. an enrollment for a kommun
    that is already a member). ``reason`` says which conflict; the hint travels along."""

    reason = "conflict"

    def __init__(self, message: str, *, reason: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        if reason:
            self.reason = reason


class NotFound(SamverkaError):
    """What the request names does not exist here (a leaf not in a tree of the size
    asked, a checkpoint not yet signed). Travels as NOT_FOUND with ``reason``."""

    reason = "not_found"

    def __init__(self, message: str, *, reason: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        if reason:
            self.reason = reason


@dataclass(frozen=True, slots=True)
class WireError:
    """What travels: status code, message, and the ErrorInfo reason and metadata."""

    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict[str, str] = field(default_factory=dict)

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)
        info.metadata.update(self.metadata)
        detail = any_pb2.Any()
        detail.Pack(info)
        status = status_pb2.Status(code=self.code.value[0], message=self.message, details=[detail])
        return ((STATUS_DETAILS_KEY, status.SerializeToString()),)


def to_wire(exc: BaseException) -> WireError:
    """The status a server answers with for ``exc`` (any exception, never a traceback).

    A Samverka error's ``hint`` travels in the ErrorInfo metadata, so the caller's
    message says what to do, not only what went wrong.
    """
    wire = _to_wire(exc)
    hint = exc.hint if isinstance(exc, SamverkaError) else ""
    if hint and wire.reason != "internal":
        wire.metadata.setdefault("hint", hint)
    return wire


def _to_wire(exc: BaseException) -> WireError:
    if isinstance(exc, EntryRefused):
        code = (
            grpc.StatusCode.FAILED_PRECONDITION
            if exc.reason in _PRECONDITION_REASONS
            else grpc.StatusCode.INVALID_ARGUMENT
        )
        meta = {"detail": exc.detail}
        if exc.origin:
            meta |= {"origin": exc.origin, "sequence": str(exc.sequence)}
        return WireError(code, str(exc), exc.reason.value, meta)
    if isinstance(exc, RecordInvalid):
        fields = ",".join(issue.field for issue in exc.issues)
        return WireError(
            grpc.StatusCode.INVALID_ARGUMENT,
            str(exc),
            Reason.SCHEMA_INVALID.value,
            {"fields": fields} if fields else {},
        )
    if isinstance(exc, NotAuthenticated):
        return WireError(grpc.StatusCode.UNAUTHENTICATED, str(exc), exc.reason)
    if isinstance(exc, AccessDenied):
        return WireError(grpc.StatusCode.PERMISSION_DENIED, str(exc), exc.reason)
    if isinstance(exc, EnrollmentRefused | DirectoryRefused):
        meta = {"detail": exc.detail} | ({"hint": exc.hint} if exc.hint else {})
        return WireError(grpc.StatusCode.INVALID_ARGUMENT, str(exc), exc.reason.value, meta)
    if isinstance(exc, Conflict):
        meta = {"hint": exc.hint} if exc.hint else {}
        return WireError(grpc.StatusCode.FAILED_PRECONDITION, str(exc), exc.reason, meta)
    if isinstance(exc, CursorAhead):
        return WireError(grpc.StatusCode.FAILED_PRECONDITION, str(exc), exc.reason)
    if isinstance(exc, NotFound):
        return WireError(grpc.StatusCode.NOT_FOUND, str(exc), exc.reason)
    if isinstance(exc, InvalidRequest | RequestRefused):
        return WireError(grpc.StatusCode.INVALID_ARGUMENT, str(exc), exc.reason)
    if isinstance(exc, QuotaExhausted):
        meta = {"retry_at_ms": str(exc.retry_at_ms)}
        return WireError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), exc.reason, meta)
    if isinstance(exc, Overloaded):
        return WireError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), exc.reason)
    if isinstance(exc, StoreError):
        # Usually transient (a locked SQLite file, a PostgreSQL failover): worth a retry.
        return WireError(grpc.StatusCode.UNAVAILABLE, "the server's store is unavailable", "store")
    if isinstance(exc, TimeoutError):
        return WireError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "the server's time limit for this call ran out",
            "timeout",
        )
    if isinstance(exc, ConfigError | SamverkaError):
        return WireError(grpc.StatusCode.INTERNAL, str(exc), "internal")
    return WireError(grpc.StatusCode.INTERNAL, "internal error", "internal")


class PeerError(TransportError):
    """A peer answered a call with an error status (or could not be reached)."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})


_HINTS = {
    grpc.StatusCode.UNAVAILABLE: "check the address, that the peer runs, and that both sides "
    "trust the same CA (a refused TLS handshake also shows as UNAVAILABLE)",
    grpc.StatusCode.PERMISSION_DENIED: "the peer does not accept this node's certificate for "
    "this call: check enrollment and that the membership is not revoked",
    grpc.StatusCode.UNAUTHENTICATED: "connect with the node's certificate (tls/node.pem)",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the peer is slow or the network is: retry, or raise "
    "the timeout",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "a message was larger than the configured limit "
    "([server] max_message_bytes) or the peer is overloaded",
}


def from_rpc_error(err: grpc.RpcError) -> SamverkaError:
    """The Samverka exception for a failed call: EntryRefused for refusals, else PeerError."""
    code: grpc.StatusCode = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message: str = (err.details() if hasattr(err, "details") else "") or code.name
    info = _error_info(err)
    if info is not None:
        try:
            reason = Reason(info.reason)
        except ValueError:
            reason = None
        if reason is not None:
            origin = info.metadata.get("origin", "")
            sequence = int(info.metadata.get("sequence", "0") or 0)
            detail = info.metadata.get("detail", message)
            return EntryRefused(reason, detail, origin=origin, sequence=sequence)
        return PeerError(
            f"{code.name}: {message}",
            code=code,
            reason=info.reason,
            metadata=dict(info.metadata),
            hint=info.metadata.get("hint") or _HINTS.get(code, ""),
        )
    return PeerError(f"{code.name}: {message}", code=code, hint=_HINTS.get(code, ""))


def _error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    trailing: Any = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailing or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info) and info.domain == DOMAIN:
                return info
    return None
