"""Resource limits on every call, before and around the handler.

:class:`GuardInterceptor` sits inside :class:`~.interceptors.RpcInterceptor` (which
logs the call and maps errors to statuses) on every listener and does two things:

- **Wire limits.** It replaces each method's request decoder with one that first walks
  the request's bytes against the method's :class:`~samverka.protocol.wire.WireLimits`
  (size, items per repeated field, fields in all, nesting, unknown fields, uint64
  range) and only then decodes them. A request over a limit is never materialized:
  it is refused as INVALID_ARGUMENT with reason ``too_large``, ``too_many_items``,
  ``malformed`` or ``out_of_range`` (see :mod:`samverka.protocol.wire`).
- **Caller limits.** Each caller (its kommunkod when its certificate names one,
  otherwise its IP address) may have at most ``max_concurrent`` calls open and start
  calls at ``rate_per_second`` with bursts of ``burst`` (a token bucket). Past either,
  the call is refused as RESOURCE_EXHAUSTED with reason ``overloaded`` before the
  handler runs. One flooding caller thus cannot take the event loop, the thread pool
  or the store from the others.

The per-listener gRPC options that go with these (receive size = the largest method
limit of the listener, compression refused, handshake and idle timeouts) are
:meth:`~.settings.ServerSettings.grpc_options`'.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor

from samverka.errors import Overloaded, RequestRefused
from samverka.protocol.wire import WireLimits, check_request
from samverka.transport.server.policy import Caller

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]

Behavior = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class CallerLimits:
    """What one caller may have open and start."""

    #: Calls open at once (streams included, for as long as they last).
    max_concurrent: int = 64
    #: Calls started per second, sustained ...
    rate_per_second: float = 100.0
    #: ... and in a burst.
    burst: int = 200


#: Callers remembered at most; idle ones are forgotten first (anonymous callers are
#: keyed by address, so their number is the attacker's to choose).
MAX_TRACKED_CALLERS = 10_000


class _Bucket:
    __slots__ = ("open", "stamp", "tokens")

    def __init__(self, burst: int, now: float) -> None:
        self.open = 0
        self.tokens = float(burst)
        self.stamp = now


class CallerLimiter:
    """Concurrency and rate per caller. One per process, shared by its listeners."""

    def __init__(self, limits: CallerLimits, *, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock = clock
        self._callers: dict[str, _Bucket] = {}

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        """Hold one of ``key``'s call slots; raises :class:`Overloaded` if none is free."""
        limits, now = self.limits, self._clock()
        bucket = self._callers.get(key)
        if bucket is None:
            if len(self._callers) >= MAX_TRACKED_CALLERS:
                self._forget_idle(now)
            bucket = self._callers[key] = _Bucket(limits.burst, now)
        bucket.tokens = min(
            float(limits.burst), bucket.tokens + (now - bucket.stamp) * limits.rate_per_second
        )
        bucket.stamp = now
        if bucket.open >= limits.max_concurrent:
            raise Overloaded(
                f"{key} has {bucket.open} calls open; at most {limits.max_concurrent}",
                hint="wait for open calls to finish before starting more",
            )
        if bucket.tokens < 1:
            raise Overloaded(
                f"{key} starts calls faster than {limits.rate_per_second:g} a second",
                hint="slow down and retry in a second",
            )
        bucket.tokens -= 1
        bucket.open += 1
        try:
            yield
        finally:
            bucket.open -= 1

    def _forget_idle(self, now: float) -> None:
        limits = self.limits
        full = [
            key
            for key, b in self._callers.items()
            if b.open == 0 and b.tokens + (now - b.stamp) * limits.rate_per_second >= limits.burst
        ]
        for key in full:
            del self._callers[key]
        if len(self._callers) >= MAX_TRACKED_CALLERS:  # all busy: drop the idle anyway
            for key in [k for k, b in self._callers.items() if b.open == 0]:
                del self._callers[key]


def caller_key(caller: Caller) -> str:
    """A caller's kommunkod, or for anyone else the address it calls from."""
    if caller.kommunkod:
        return caller.kommunkod
    host = caller.peer.rsplit(":", 1)[0] if caller.peer.count(":") >= 2 else caller.peer
    return f"{caller.common_name or 'anonymous'}@{host}"


def request_descriptor(method: str) -> Descriptor | None:
    """The request message of ``/package.Service/Method``, from protobuf's default pool
    (every generated module registers there); None for a method it does not know."""
    service, _, name = method.strip("/").partition("/")
    try:
        found = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except KeyError:
        return None
    input_type: Descriptor = found.input_type
    return input_type


class _Refused:
    """Stands in for a request refused by its wire limits; the call raises ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: RequestRefused) -> None:
        self.error = error


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Wire limits per method, caller limits per call. One per listener."""

    def __init__(
        self,
        limiter: CallerLimiter,
        *,
        default: WireLimits,
        methods: Mapping[str, WireLimits] | None = None,
    ) -> None:
        self.limiter = limiter
        self.default = default
        #: Limits by full method path (``/samverka.v1.HubService/Publish``).
        self.methods = dict(methods or {})

    def limits_for(self, method: str) -> WireLimits:
        return self.methods.get(method, self.default)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        if handler.request_streaming:
            return handler  # none of ours; gRPC's own size cap applies per message
        kwargs = {
            "request_deserializer": self._guarded(method, handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream), **kwargs
            )
        return handler

    def _guarded(
        self, method: str, deserializer: Callable[[bytes], Any] | None
    ) -> Callable[[bytes], Any]:
        descriptor = request_descriptor(method)
        limits = self.limits_for(method)

        def deserialize(raw: bytes) -> Any:
            try:
                if descriptor is None:
                    if len(raw) > limits.max_bytes:
                        raise RequestRefused(
                            "too_large", f"{len(raw)} bytes; at most {limits.max_bytes}"
                        )
                else:
                    check_request(raw, descriptor, limits)
            except RequestRefused as exc:
                return _Refused(exc)
            return raw if deserializer is None else deserializer(raw)

        return deserialize

    def _unary(self, behavior: Behavior) -> Behavior:
        async def unary(request: Any, context: Context) -> Any:
            if isinstance(request, _Refused):
                raise request.error
            with self.limiter.slot(caller_key(Caller.from_context(context))):
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
                return result

        return unary

    def _stream(self, behavior: Behavior) -> Behavior:
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                if isinstance(request, _Refused):
                    raise request.error
                with self.limiter.slot(caller_key(Caller.from_context(context))):
                    async for response in behavior(request, context):
                        yield response

            return stream

        async def writer(request: Any, context: Context) -> Any:
            if isinstance(request, _Refused):
                raise request.error
            with self.limiter.slot(caller_key(Caller.from_context(context))):
                return await behavior(request, context)

        return writer
