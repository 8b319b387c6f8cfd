"""One interceptor for every RPC: a log line with the caller's kommunkod, error mapping,
and a cap on unary work.

Handlers raise :class:`~samverka.errors.SamverkaError` subclasses; this turns them into
a gRPC status with an ErrorInfo detail (see :mod:`samverka.server.status`). Anything
else becomes INTERNAL without a traceback on the wire (the traceback goes to the log).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from samverka.errors import SamverkaError
from samverka.server.policy import Caller
from samverka.server.status import to_wire

log = logging.getLogger("samverka.rpc")

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
            "request_deserializer": handler.request_deserializer,
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
                return await behavior(request, context)
            except BaseException as exc:
                await call.fail(exc)
                raise
            finally:
                call.done()

        return writer


class _CallLog:
    """Timing and outcome of one call, logged once when it ends."""

    def __init__(self, method: str, context: Context) -> None:
        self.method = method
        self.context = context
        self.caller = Caller.from_context(context)
        self.started = time.monotonic()
        self.messages = 0
        self.outcome = "OK"

    async def fail(self, exc: BaseException) -> None:
        """Record the outcome; for a Samverka error or a bug, abort with a mapped status.

        Returns only for cancellation and an abort the handler made itself (the caller
        re-raises those); otherwise raises grpc's AbortError.
        """
        if isinstance(exc, asyncio.CancelledError):
            self.outcome = "CANCELLED"
            return  # the caller went away or the server is stopping: nothing to send
        if isinstance(exc, grpc.aio.AbortError):
            self.outcome = "ABORTED"
            return  # the handler already chose a status
        if not isinstance(exc, Exception):
            return
        wire = to_wire(exc)
        self.outcome = f"{wire.code.name} {wire.reason}"
        if not isinstance(exc, SamverkaError | TimeoutError):
            log.error("%s from %s failed", self.method, self.caller.label, exc_info=exc)
        # abort() sends the status and raises AbortError, which replaces the original
        # exception on its way out: grpc then ends the call quietly.
        await self.context.abort(wire.code, wire.message, wire.trailing_metadata())

    def done(self) -> None:
        elapsed_ms = (time.monotonic() - self.started) * 1000
        log.info(
            "%s caller=%s peer=%s %s %.1f ms%s",
            self.method,
            self.caller.label,
            self.caller.peer,
            self.outcome,
            elapsed_ms,
            f" messages={self.messages}" if self.messages else "",
        )
