"""NodeServer: gRPC servers on one or more ports, their lifecycle and SIGTERM drain.

Each *listener* is one port with its own TLS and its own set of services, served by
its own ``grpc.aio.Server`` (gRPC cannot limit a service to one port of a server, and
the hub's public port must not expose member services). Every listener also serves
``grpc.health.v1`` and server reflection for exactly the services it carries.

A node has one listener (the member port, mutual TLS, FeedService). The hub adds its
servicers to that listener and a second, public listener::

    server = NodeServer(settings)
    server.add_resource(watcher)
    server.add_listener("member", "0.0.0.0:7443", member_tls, [feed.binding(), hub.binding()])
    server.add_listener("public", "0.0.0.0:7444", public_tls, [public_feed.binding()])
    await server.run_until_signal(on_started=print_addresses)

Health: SERVING once the ports are open; each resource's supervised task
(:mod:`samverka.retry`) also as service ``samverka.task.<name>``, and the whole server
("" and every service) NOT_SERVING while a critical task (the log listener, the hub's
directory watch) cannot do its job.

Shutdown (SIGTERM, SIGINT or :meth:`NodeServer.stop`): health turns NOT_SERVING, each
service's ``drain`` hook ends its live streams cleanly, the ports stop accepting, open
calls get ``grace_seconds`` to finish, then resources (the log watcher) close.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from samverka.errors import ConfigError
from samverka.protocol.wire import WireLimits
from samverka.retry import TaskState, task_observers
from samverka.transport.server.interceptors import RpcInterceptor
from samverka.transport.server.limits import (
    CallerLimiter,
    CallerLimits,
    GuardInterceptor,
)
from samverka.transport.server.settings import ServerSettings, ServerTls

log = logging.getLogger("samverka.transport.server")

#: Health service name of a supervised background task: ``samverka.task.log-listener``.
TASK_SERVICE_PREFIX = "samverka.task."


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """A service as a NodeServer needs it: its full name (for health and reflection),
    how to add it to a grpc.aio.Server, an optional hook run when draining, and the
    wire limits of methods whose requests may be larger than the server's default
    (by method name, e.g. ``{"Publish": WireLimits(...)}``)."""

    name: str
    register: Callable[[grpc.aio.Server], None]
    drain: Callable[[], None] | None = None
    request_limits: Mapping[str, WireLimits] = field(default_factory=dict)


class Resource(Protocol):
    """Something started before the ports open and closed after they stop."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Listener:
    """One port: address, TLS, services; after start, the port gRPC actually bound."""

    name: str
    address: str
    tls: ServerTls
    services: list[ServiceBinding]
    port: int = 0
    server: grpc.aio.Server | None = field(default=None, repr=False)
    health: health.aio.HealthServicer | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return split_address(self.address)[0]

    @property
    def bound_address(self) -> str:
        """host:port as clients reach it (the real port when 0 was asked for)."""
        host = self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        raise ConfigError(
            f"listen address {address!r} is not host:port",
            hint="e.g. 127.0.0.1:7443, 0.0.0.0:7443 or [::1]:7443 (port 0 picks a free port)",
        )
    try:
        number = int(port)
    except ValueError as exc:
        raise ConfigError(f"listen address {address!r}: port {port!r} is not a number") from exc
    if not 0 <= number <= 65535:
        raise ConfigError(f"listen address {address!r}: port out of range")
    return host.removeprefix("[").removesuffix("]"), number


def settle_heap() -> None:
    """Once a server has started: collect start-up's garbage, then move every object
    left (modules, settings, stores, key rings, grpc's and SQLAlchemy's own tables) out
    of the cyclic garbage collector's sight (``gc.freeze``).

    Python's full collections walk every tracked object, and a serving process holds
    hundreds of thousands from start-up that live as long as it does; py-spy of live
    subscribers storing one entry each put 12 % of their CPU in ``gc_collect_main``.
    What is frozen is never collected: only start-up's survivors are, so nothing leaks
    that would have been freed.
    """
    gc.collect()
    gc.freeze()


class NodeServer:
    """One process's gRPC serving: listeners, resources, health, reflection and drain."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        self.settings = settings
        self.listeners: list[Listener] = []
        self._resources: list[Resource] = []
        self._started: list[Resource] = []
        self._interceptors = [
            RpcInterceptor(unary_timeout=settings.unary_timeout_seconds),
            *interceptors,
        ]
        self.limiter = CallerLimiter(
            CallerLimits(
                max_concurrent=settings.caller_max_concurrent,
                rate_per_second=settings.caller_rate_per_second,
                burst=settings.caller_burst,
            )
        )
        self._stopping: asyncio.Event | None = None
        self._stopped = False
        self._health_updates: set[asyncio.Future[None]] = set()

    def add_listener(
        self, name: str, address: str, tls: ServerTls, services: Sequence[ServiceBinding]
    ) -> Listener:
        split_address(address)  # fail early on a bad address
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError(f"listener {name}: a service is bound twice: {names}")
        listener = Listener(name, address, tls, list(services))
        self.listeners.append(listener)
        return listener

    def add_resource(self, resource: Resource) -> None:
        """Start ``resource`` with the server. One with a ``task_state``
        (:class:`samverka.retry.TaskState`) has it reported by the health service."""
        self._resources.append(resource)

    @property
    def task_states(self) -> list[TaskState]:
        """The supervised background tasks of this server's resources."""
        states = (getattr(r, "task_state", None) for r in self._resources)
        return [s for s in states if isinstance(s, TaskState)]

    def _on_task_state(self, _state: TaskState) -> None:
        if self._stopped or self._stopping is None:
            return
        task = asyncio.ensure_future(self._report_health())
        self._health_updates.add(task)
        task.add_done_callback(self._health_updates.discard)

    async def _report_health(self) -> None:
        """Health per listener: each task as service ``samverka.task.<name>``, and the
        server as a whole ("" and each service) NOT_SERVING while a critical task is down."""
        if self._stopped:
            return
        serving, not_serving = (
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        )
        states = self.task_states
        whole = serving if all(s.up for s in states if s.critical) else not_serving
        for listener in self.listeners:
            if listener.health is None:
                continue
            for state in states:
                await listener.health.set(
                    TASK_SERVICE_PREFIX + state.name, serving if state.up else not_serving
                )
            for name in ("", *(s.name for s in listener.services)):
                await listener.health.set(name, whole)

    async def start(self) -> list[Listener]:
        """Start resources, bind every listener and report SERVING. Returns the listeners."""
        if not self.listeners:
            raise ConfigError("nothing to serve: no listener was added")
        self._stopping = asyncio.Event()
        try:
            for resource in self._resources:
                await resource.start()
                self._started.append(resource)
            for listener in self.listeners:
                await self._start_listener(listener)
            for state in self.task_states:
                state.observers.add(self._on_task_state)
                # Every task in /metrics from the start, also one that came up before
                # the metrics endpoint (a later resource) began counting.
                task_observers(state)
            await self._report_health()
        except BaseException:
            await self.stop(grace=0)
            raise
        return self.listeners

    async def _start_listener(self, listener: Listener) -> None:
        guard = self.guard(listener)
        largest = max([guard.default.max_bytes, *(lim.max_bytes for lim in guard.methods.values())])
        server = grpc.aio.server(
            interceptors=[*self._interceptors, guard],
            options=self.settings.grpc_options(max_receive_bytes=largest),
        )
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        for service in listener.services:
            service.register(server)
        reflection.enable_server_reflection(
            [
                *(s.name for s in listener.services),
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        try:
            port = server.add_secure_port(listener.address, listener.tls.credentials())
        except RuntimeError as exc:  # grpcio raises when it cannot bind
            raise ConfigError(
                f"cannot listen on {listener.address}: {exc}",
                hint="is another process using the port? choose another with --listen",
            ) from exc
        if port == 0:
            raise ConfigError(f"cannot listen on {listener.address}")
        listener.port = port
        listener.server = server
        listener.health = health_servicer
        await server.start()
        serving = health_pb2.HealthCheckResponse.SERVING
        for name in ("", *(s.name for s in listener.services)):
            await health_servicer.set(name, serving)
        log.info(
            "listener %s on %s (%s) serves %s",
            listener.name,
            listener.bound_address,
            "mutual TLS" if listener.tls.mutual else "server TLS",
            ", ".join(s.name for s in listener.services),
        )

    def guard(self, listener: Listener) -> GuardInterceptor:
        """The listener's wire limits (its services' own, the settings' default for the
        rest) and the process's caller limits."""
        settings = self.settings
        default = WireLimits(
            max_bytes=settings.max_request_bytes, max_items=settings.max_request_items
        )
        methods = {
            f"/{service.name}/{method}": limits
            for service in listener.services
            for method, limits in service.request_limits.items()
        }
        return GuardInterceptor(self.limiter, default=default, methods=methods)

    async def stop(self, grace: float | None = None) -> None:
        """Drain and stop: NOT_SERVING, end live streams, wait up to ``grace`` s, close."""
        if self._stopped:
            return
        self._stopped = True
        for state in self.task_states:
            state.observers.remove(self._on_task_state)
        grace = self.settings.grace_seconds if grace is None else grace
        for listener in self.listeners:
            if listener.health is not None:
                await listener.health.enter_graceful_shutdown()
        for listener in self.listeners:
            for service in listener.services:
                if service.drain is not None:
                    service.drain()
        servers = [lst.server for lst in self.listeners if lst.server is not None]
        await asyncio.gather(*(server.stop(grace) for server in servers))
        for resource in reversed(self._started):
            try:
                await resource.close()
            except Exception:
                log.warning("closing %r failed", resource, exc_info=True)
        self._started.clear()
        if self._stopping is not None:
            self._stopping.set()

    def request_stop(self) -> None:
        """Ask :meth:`run_until_signal` to drain and return (what SIGTERM does)."""
        if self._stopping is not None:
            self._stopping.set()

    async def run_until_signal(
        self, *, on_started: Callable[[NodeServer], None] | None = None
    ) -> None:
        """Start, serve until SIGTERM/SIGINT (or :meth:`request_stop`), then drain."""
        await self.start()
        settle_heap()
        assert self._stopping is not None
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self._stopping.set)
        try:
            if on_started is not None:
                on_started(self)
            await self._stopping.wait()
            log.info("stopping: draining for up to %.1f s", self.settings.grace_seconds)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self.stop()
