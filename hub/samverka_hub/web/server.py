"""Serving the catalog: inside ``hub serve``, or alone with ``samverka hub web``.

:class:`WebEndpoint` is a :class:`samverka.transport.server.app.NodeServer` resource, like the
metrics endpoint: ``start`` binds the port and starts uvicorn **in the running
asyncio loop** (the one the gRPC servers use), ``close`` stops it. SIGTERM stops the
hub's NodeServer, which closes its resources, so the catalog stops with the ports:
open requests get up to ``grace_seconds`` to finish.

uvicorn's ``Server.serve()`` would install its own SIGTERM/SIGINT handlers and
re-raise the signal when done; inside ``hub serve`` the NodeServer owns the signals,
so the endpoint drives uvicorn's ``startup`` / ``main_loop`` / ``shutdown`` steps
itself, on a socket it bound (so port 0 works and a busy port is a clear error).

The server is a supervised background task (:func:`samverka.retry.supervise`, task
``web-catalog``): a port that cannot be bound, or a server that stops listening or
ends unbidden, is logged once with the wait before the next try, marks the task down
(``samverka_task_up{task="web-catalog"} 0``, health service
``samverka.task.web-catalog`` NOT_SERVING) and is tried again under :data:`RETRY`
until it serves. The task is not critical: ``hub serve`` goes on serving the members'
feeds meanwhile, as it does without metrics. ``samverka hub web`` (the catalog alone)
fails instead when its first try cannot bind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from samverka.errors import ConfigError, SamverkaError
from samverka.protocol.directory import VerifiedDirectory
from samverka.retry import RetryPolicy, TaskState, cancel, pause, spawn, supervise
from samverka.store.store import Store
from samverka.transport.server.app import split_address

from samverka_hub.config import WebSection
from samverka_hub.tlog import LogReader
from samverka_hub.web.app import create_app
from samverka_hub.web.catalog import Catalog
from samverka_hub.web.limits import MAX_HEAD_BYTES, GuardedH11Protocol, QuietInvalidRequests

log = logging.getLogger("samverka_hub.web")

DirectorySource = Callable[[], VerifiedDirectory | None]

#: After the catalog failed: soon again (a port freed by a process that ended), but a
#: port taken for good costs one try every 10 s at most.
RETRY = RetryPolicy(initial=0.5, maximum=10.0)


class CatalogStopped(SamverkaError):
    """The catalog's server stopped listening, or ended, without being asked to."""


class WebEndpoint:
    """The catalog on ``listen`` (host:port; port 0 picks one) while a server runs."""

    def __init__(
        self,
        store: Store,
        directory: DirectorySource,
        settings: WebSection,
        *,
        listen: str | None = None,
        grace_seconds: float = 5.0,
        tlog: LogReader | None = None,
    ) -> None:
        self.settings = settings
        self.listen = listen or settings.listen
        self.host, self.port = split_address(self.listen)
        self.catalog = Catalog(store, directory)
        self.app = create_app(self.catalog, settings, tlog)
        self.grace_seconds = grace_seconds
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._tried: asyncio.Event | None = None
        #: Up while the catalog is served; down (and retried) while it cannot be.
        self.task_state = TaskState("web-catalog")
        #: Why the catalog could not be started the last time it was tried, if so.
        self.error: Exception | None = None

    @property
    def bound_address(self) -> str:
        host = self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The catalog's address, e.g. ``http://127.0.0.1:7480/``."""
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    @property
    def serving(self) -> bool:
        """Whether the catalog is served now."""
        return self.task_state.up

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"cannot serve the web catalog on {self.listen}: {exc.strerror or exc}",
                hint="choose another [web] listen (or --web-listen), or set [web] enabled = false",
            ) from exc
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        """Start the supervised server and wait for its first try: on return the
        catalog is served, or :attr:`error` says why not (and it is being retried)."""
        # uvicorn's own messages ("Shutting down", at INFO on a logger named
        # "uvicorn.error") read like errors in the hub's logs; its warnings and
        # errors (a request that failed) still come through.
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.setLevel(logging.WARNING)
        if not any(isinstance(f, QuietInvalidRequests) for f in uvicorn_log.filters):
            uvicorn_log.addFilter(QuietInvalidRequests())
        self._stop.clear()
        self._tried = asyncio.Event()
        self._task = spawn(
            supervise(self.task_state, self._run, policy=RETRY, stop=self._stop, logger=log),
            name="web-catalog",
        )
        await self._tried.wait()
        if self.serving:
            # Build the in-memory projection now, off the loop, so the first search with
            # a technique filter or the first record page does not wait for it.
            threading.Thread(target=self._warm_up, name="web-catalog-warm-up", daemon=True).start()

    async def _run(self) -> None:
        """One life of the server: bind, start, serve until asked to stop (returns) or
        until it stops listening (raises CatalogStopped); always shut down after."""
        assert self._tried is not None
        try:
            sock = self._bind()
            server = self._new_server()
            try:
                await server.startup(sockets=[sock])
            except BaseException:
                sock.close()
                raise
        except Exception as exc:
            self.error = exc
            self._tried.set()
            raise
        try:
            self.port = sock.getsockname()[1]
            self._server, self.error = server, None
            self.task_state.mark_up()
            log.info(
                "web catalog on %s",
                self.url,
                extra={"event": "web_listening", "address": self.bound_address},
            )
            self._tried.set()
            await self._serve(server)
        finally:
            self._server = None
            # Shielded: a cancelled task still closes its port and open connections.
            await asyncio.shield(self._shut_down(server, sock))

    def _new_server(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=max(1, round(self.grace_seconds)),
            # The limits uvicorn lacks (samverka_hub.web.limits).
            http=GuardedH11Protocol,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        return server

    async def _serve(self, server: uvicorn.Server) -> None:
        """uvicorn's main loop (its ticks keep the Date header current), checking at
        each tick that the server still listens."""
        counter = 0
        while not await server.on_tick(counter):
            if not all(s.is_serving() for s in server.servers):
                raise CatalogStopped(
                    f"the web catalog on {self.bound_address} stopped listening",
                    hint="it is started again; if this repeats, see the log before it",
                )
            counter = (counter + 1) % 864000
            if await pause(0.1, self._stop):
                return
        raise CatalogStopped(f"the web catalog on {self.bound_address} ended unbidden")

    @staticmethod
    async def _shut_down(server: uvicorn.Server, sock: socket.socket) -> None:
        server.should_exit = True
        if getattr(server, "servers", None) is None:  # startup failed before listening
            sock.close()
            return
        await server.shutdown(sockets=[sock])

    def _warm_up(self) -> None:
        started = time.monotonic()
        try:
            self.catalog.coverage()
            self.catalog.projection.refresh()
        except Exception:
            log.warning("warming up the web catalog failed", exc_info=True)
            return
        log.debug("web catalog warmed up in %.2f s", time.monotonic() - started)

    async def close(self) -> None:
        """Stop serving: open requests get up to ``grace_seconds`` to finish."""
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            # _run returns once it sees the stop event (within a tick) and shuts down;
            # past the grace and a margin, cancel it.
            await asyncio.wait_for(asyncio.shield(task), self.grace_seconds + 5)
        await cancel(task)


class CachedDirectory:
    """The hub's newest signed directory, read from the database at most every
    ``max_age`` seconds (for ``samverka hub web``, which runs no directory watcher)."""

    def __init__(self, read: DirectorySource, *, max_age: float = 5.0) -> None:
        self._read = read
        self._max_age = max_age
        self._lock = threading.Lock()
        self._value: VerifiedDirectory | None = None
        self._at = float("-inf")

    def __call__(self) -> VerifiedDirectory | None:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self._max_age:
                try:
                    self._value = self._read()
                except Exception:
                    # An unreachable database must not take the catalog down: the
                    # directory held stays in force until the next read succeeds.
                    log.warning("reading the member directory failed", exc_info=True)
                self._at = now
            return self._value


async def serve_alone(
    endpoint: WebEndpoint, *, on_started: Callable[[WebEndpoint], None] | None = None
) -> None:
    """Serve ``endpoint`` until SIGTERM or SIGINT (``samverka hub web``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    await endpoint.start()
    if endpoint.error is not None:
        await endpoint.close()
        raise endpoint.error
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_started is not None:
            on_started(endpoint)
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await endpoint.close()
