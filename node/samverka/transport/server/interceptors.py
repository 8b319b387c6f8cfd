"""One interceptor for every RPC: a log line with the caller's kommunkod, the latency
metric, error mapping, and a cap on unary work.

Handlers raise :class:`~samverka.errors.SamverkaError` subclasses; this turns them into
a gRPC status with an ErrorInfo detail (see :mod:`samverka.transport.server.status`). Anything
else becomes INTERNAL without a traceback on the wire (the traceback goes to the log).
A request whose bytes do not decode (corrupt protobuf, invalid UTF-8 in a string,
nesting past protobuf's limit) is refused as INVALID_ARGUMENT with reason
``malformed`` before any handler runs: grpcio itself would answer UNKNOWN with the
decoder's exception text, log a traceback and skip this interceptor's accounting.

Each finished call is one log event (``event`` "rpc", with ``method``, ``peer`` = the
caller's kommunkod, ``code``, ``reason``, ``duration_ms``; see :mod:`samverka.ops.logs`)
and one observation of ``samverka_rpc_duration_seconds{method,code}`` (see
:mod:`samverka.ops.metrics`). py-grpc-prometheus has no asyncio support, and the timing and
final status are known here anyway. Health checks log at DEBUG (probes poll them).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from samverka.errors import SamverkaError, StoreError
from samverka.observers import Observers
from samverka.transport.server.policy import Caller
from samverka.transport.server.status import InvalidRequest, to_wire

log = logging.getLogger("samverka.rpc")

#: Told of every finished RPC: (method, final code, seconds, stream messages sent).
rpc_observers: Observers[[str, str, float, int]] = Observers()

Behavior = Callable[..., Any]
if TYPE_CHECKING:  # the stubs' generics are not subscriptable at run time
    Context = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]


class RpcInterceptor(grpc.aio.ServerInterceptor):
    """Logs each RPC and maps errors to statuses; caps unary calls at ``unary_timeout`` s."""

    def __init__(self, *, unary_timeout: float) -> None:
        self.unary_timeout = unary_timeout

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        kwargs = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, self.unary_timeout), **kwargs
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary, self.unary_timeout), **kwargs
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream), **kwargs
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(method, handler.stream_stream), **kwargs
            )
        return handler

    def _unary(self, method: str, behavior: Behavior, timeout: float) -> Behavior:
        async def unary(request: Any, context: Context) -> Any:
            call = _CallLog(method, context)
            try:
                _refuse_undecodable(request, method)
                async with asyncio.timeout(timeout):
                    result = behavior(request, context)
                    if inspect.isawaitable(result):
                        result = await result
                return result
            except BaseException as exc:
                await call.fail(exc)
                raise
            finally:
                call.done()

        return unary

    def _stream(self, method: str, behavior: Behavior) -> Behavior:
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                call = _CallLog(method, context)
                try:
                    _refuse_undecodable(request, method)
                    async for response in behavior(request, context):
                        call.messages += 1
                        yield response
                except BaseException as exc:
                    await call.fail(exc)
                    raise
                finally:
                    call.done()

            return stream

        # A handler that writes with context.write (e.g. health's Watch): keep its style.
        async def writer(request: Any, context: Context) -> Any:
            call = _CallLog(method, context)
            try:
                _refuse_undecodable(request, method)
                return await behavior(request, context)
            except BaseException as exc:
                await call.fail(exc)
                raise
            finally:
                call.done()

        return writer


class MalformedRequest(InvalidRequest):
    """A request's bytes do not decode as the method's request message."""

    reason = "malformed"


class _Undecodable:
    """Stands in for a request whose bytes did not decode; the call is refused."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """The method's request decoder, returning :class:`_Undecodable` instead of raising
    (an exception here would reach the caller as UNKNOWN with the decoder's text)."""
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception as exc:  # DecodeError, and whatever a decoder may raise on junk
            return _Undecodable(exc)

    return deserialize


def _refuse_undecodable(request: Any, method: str) -> None:
    if isinstance(request, _Undecodable):
        raise MalformedRequest(
            f"the {method.rsplit('/', 1)[-1]} request does not decode: {request.error}",
            hint="send a request serialized from the samverka.v1 protobuf messages",
        )


class _CallLog:
    """Timing and outcome of one call, logged once when it ends."""

    def __init__(self, method: str, context: Context) -> None:
        self.method = method
        self.context = context
        self.caller = Caller.from_context(context)
        self.started = time.monotonic()
        self.messages = 0
        self.outcome = "OK"
        #: The final status code's name, once known from a failure.
        self.code = ""
        self.reason = ""

    async def fail(self, exc: BaseException) -> None:
        """Record the outcome; for a Samverka error or a bug, abort with a mapped status.

        Returns only for cancellation and an abort the handler made itself (the caller
        re-raises those); otherwise raises grpc's AbortError.
        """
        if isinstance(exc, asyncio.CancelledError):
            self.outcome = self.code = "CANCELLED"
            return  # the caller went away or the server is stopping: nothing to send
        if isinstance(exc, grpc.aio.AbortError):
            self.outcome = "ABORTED"
            return  # the handler already chose a status (read in done())
        if not isinstance(exc, Exception):
            return
        wire = to_wire(exc)
        self.outcome = f"{wire.code.name} {wire.reason}"
        self.code, self.reason = wire.code.name, wire.reason
        if not isinstance(exc, SamverkaError | TimeoutError):
            log.error("%s from %s failed", self.method, self.caller.label, exc_info=exc)
        elif isinstance(exc, StoreError):
            # The caller is told only that the store is unavailable (retry later); the
            # operator needs the cause (disk full, read-only file, database down).
            log.warning("%s from %s: %s", self.method, self.caller.label, exc)
        # abort() sends the status and raises AbortError, which replaces the original
        # exception on its way out: grpc then ends the call quietly.
        await self.context.abort(wire.code, wire.message, wire.trailing_metadata())

    def done(self) -> None:
        elapsed = time.monotonic() - self.started
        code = self.code or _status_name(self.context)
        rpc_observers(self.method, code, elapsed, self.messages)
        level = logging.DEBUG if self.method.startswith(_HEALTH_PREFIX) else logging.INFO
        log.log(
            level,
            "%s caller=%s peer=%s %s %.1f ms%s",
            self.method,
            self.caller.label,
            self.caller.peer,
            self.outcome,
            elapsed * 1000,
            f" messages={self.messages}" if self.messages else "",
            extra={
                "event": "rpc",
                "method": self.method,
                "peer": self.caller.kommunkod,
                "caller": self.caller.label,
                "remote": self.caller.peer,
                "code": code,
                "reason": self.reason,
                "duration_ms": round(elapsed * 1000, 3),
                "messages": self.messages or None,
            },
        )


_HEALTH_PREFIX = "/grpc.health.v1.Health/"


def _status_name(context: Context) -> str:
    """The status a handler set itself (abort, set_code), else OK."""
    try:
        code = context.code()
    except (AttributeError, RuntimeError):  # older grpcio; a context already torn down
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    return "OK"
