"""The web catalog as an ASGI application (FastAPI on Starlette).

:func:`create_app` wires the pieces: the server-rendered pages
(:mod:`samverka_hub.web.pages`), the JSON API under ``/api`` with its OpenAPI
description at ``/api/openapi.json`` (:mod:`samverka_hub.web.api`), the static
files (CSS and SVG, served from the package: no CDN, the hub may have no internet),
and the headers every response carries.

Security headers, on every response:

- ``Content-Security-Policy``: scripts, styles, images and forms from this origin
  only, no inline script or style, no framing, no plugins. The pages use no
  script at all; the policy makes sure injected markup could not run one either.
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``,
  ``X-Frame-Options: DENY`` (for browsers without CSP frame-ancestors).

Limits (:mod:`.limits`): every request is checked before routing: a target over 8 KiB
is 414, headers over 16 KiB or 64 of them 431, a request body 413; the server itself
caps connections and the time to send a request head.

Caching: pages and API answers may be cached for a short while
(``max-age=30``): the catalog is public and a record changes rarely. Static files
are linked with a content hash (``/static/style.css?v=…``) and cached for a year.

FastAPI's own documentation pages are turned off: they load their scripts from a
CDN. The OpenAPI description is plain JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from samverka.errors import StoreError
from starlette.exceptions import HTTPException as StarletteHTTPException

from samverka_hub.config import WebSection
from samverka_hub.tlog import LogReader
from samverka_hub.web import api, exports, feeds, pages
from samverka_hub.web import log as log_routes
from samverka_hub.web.catalog import BadFilter, Catalog
from samverka_hub.web.context import STATIC_DIR, WebContext, context, template_environment
from samverka_hub.web.limits import request_problem

log = logging.getLogger("samverka_hub.web")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
PAGE_CACHE = "public, max-age=30"
STATIC_CACHE = "public, max-age=31536000, immutable"
STATIC_CACHE_UNVERSIONED = "public, max-age=3600"


def create_app(
    catalog: Catalog, settings: WebSection | None = None, tlog: LogReader | None = None
) -> FastAPI:
    """The catalog's ASGI app over ``catalog`` (PUBLIC records only), and the
    transparency log under ``/log/`` when ``tlog`` is given (:mod:`.log`)."""
    app = FastAPI(
        title="Samverka – katalog",
        summary="Öppna (PUBLIC) poster i Samverka: AI-användningsfall, lärdomar, lösningar "
        "och AI-rådets rekommendationer från Sveriges kommuner.",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.web = WebContext(catalog, settings or WebSection(), template_environment())
    # Every page links the catalog's main feeds; a page with a narrower one says so.
    app.state.web.templates.globals["default_feeds"] = feeds.page_feeds()
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(feeds.router)
    app.state.web.templates.globals["record_exports"] = exports.record_exports
    app.include_router(exports.router)
    app.state.tlog = tlog
    app.include_router(log_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        problem = request_problem(request.scope)
        if problem is None:
            response = await call_next(request)
        else:  # refused before routing: too long a target, too many headers, a body
            response = refusal(request, *problem)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/static/"):
            versioned = "v" in request.query_params
            response.headers["Cache-Control"] = (
                STATIC_CACHE if versioned else STATIC_CACHE_UNVERSIONED
            )
        else:
            response.headers.setdefault("Cache-Control", PAGE_CACHE)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        if request.url.path.startswith("/log/"):
            return PlainTextResponse(
                f"{exc.detail}\n",
                status_code=exc.status_code,
                headers={"Cache-Control": "no-cache"},
            )
        return error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(BadFilter)
    async def bad_filter(request: Request, exc: BadFilter) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return error_page(request, 400, str(exc))

    @app.exception_handler(StoreError)
    @app.exception_handler(sa.exc.OperationalError)
    async def store_error(request: Request, exc: Exception) -> Response:
        # Logged, and answered like any page: the database is down or locked for now.
        log.error("the web catalog cannot read the store: %s", exc)
        detail = "Katalogen kan inte läsa sin databas just nu. Försök igen om en stund."
        if request.url.path.startswith("/api/"):
            response: Response = JSONResponse({"detail": detail}, status_code=503)
        else:
            response = error_page(request, 503, detail)
        response.headers["Retry-After"] = "30"
        return response

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette answers unhandled errors outside the middleware above, so this
        # response gets the security headers here (uvicorn logs the traceback).
        if request.url.path.startswith("/api/"):
            response: Response = JSONResponse({"detail": "internal error"}, status_code=500)
        else:
            response = error_page(request, 500, "Ett oväntat fel uppstod i katalogen.")
        response.headers.update(SECURITY_HEADERS)
        return response

    return app


#: Starlette's own (English) details, for the error page.
_DEFAULT_DETAILS = {
    "Not Found": "Det finns ingen sida med den adressen.",
    "Method Not Allowed": "Katalogen går bara att läsa.",
}
ERROR_TITLES = {
    400: "Felaktig fråga",
    404: "Sidan finns inte",
    405: "Metoden stöds inte",
    410: "Posten har dragits tillbaka",
    413: "Katalogen tar inte emot data",
    414: "Adressen är för lång",
    431: "Förfrågan är för stor",
    503: "Katalogen är inte tillgänglig just nu",
}


def refusal(request: Request, status_code: int, detail: str) -> Response:
    """A request refused before routing, in the form its path expects."""
    path = request.url.path
    if path.startswith("/api/"):
        return JSONResponse({"detail": detail}, status_code=status_code)
    if path.startswith("/log/"):
        return PlainTextResponse(f"{detail}\n", status_code=status_code)
    return error_page(request, status_code, detail)


def error_page(request: Request, status_code: int, detail: str) -> Response:
    ctx = context(request)
    title = ERROR_TITLES.get(status_code, "Något gick fel")
    detail = _DEFAULT_DETAILS.get(detail, detail)
    response = ctx.render(
        request, "error.html", status_code=status_code, title=title, detail=detail
    )
    response.headers["Cache-Control"] = "no-store"
    return response
