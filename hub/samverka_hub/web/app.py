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

Caching: pages and API answers may be cached for a short while
(``max-age=30``): the catalog is public and a record changes rarely. Static files
are linked with a content hash (``/static/style.css?v=…``) and cached for a year.

FastAPI's own documentation pages are turned off: they load their scripts from a
CDN. The OpenAPI description is plain JSON.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from samverka.errors import StoreError
from starlette.exceptions import HTTPException as StarletteHTTPException

from samverka_hub.config import WebSection
from samverka_hub.web import present
from samverka_hub.web.catalog import BadFilter, Catalog

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

WEB_DIR = Path(str(resources.files("samverka_hub.web")))
STATIC_DIR = WEB_DIR / "static"
TEMPLATE_DIR = WEB_DIR / "templates"


@dataclass
class WebContext:
    """What every route reads: the catalog, the settings, the templates."""

    catalog: Catalog
    settings: WebSection
    templates: jinja2.Environment
    #: Pages rendered from one shared object (the coverage), kept while it is current.
    rendered: dict[Hashable, tuple[object, str]] = field(default_factory=dict)

    def render(
        self, request: Request, name: str, *, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        html = self.templates.get_template(name).render(request=request, **values)
        return HTMLResponse(html, status_code=status_code)

    def render_from(
        self, source: object, key: Hashable, request: Request, name: str, **values: Any
    ) -> HTMLResponse:
        """A page that depends only on ``source`` and ``key``, rendered once per
        ``source`` object (the coverage page: 290 squares and a 290-row table)."""
        held = self.rendered.get(key)
        if held is not None and held[0] is source:
            return HTMLResponse(held[1])
        html = self.templates.get_template(name).render(request=request, **values)
        if len(self.rendered) >= 64:
            self.rendered.clear()
        self.rendered[key] = (source, html)
        return HTMLResponse(html)


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx


def static_versions() -> dict[str, str]:
    """File name → a short hash of its content, for cache-busting links."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        for p in sorted(STATIC_DIR.iterdir())
        if p.is_file()
    }


def template_environment() -> jinja2.Environment:
    """Jinja2 with autoescaping on for every template (.html): record text is data."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    versions = static_versions()

    def static(name: str) -> str:
        version = versions.get(name)
        return f"/static/{name}?v={version}" if version else f"/static/{name}"

    env.globals.update(
        static=static,
        kind_label=present.kind_label,
        kind_plural=present.KIND_PLURAL,
        area_label=present.area_label,
        area_key=present.area_key,
        status_label=present.status_label,
        risk_label=present.risk_label,
        category_label=present.category_label,
        solution_type_label=present.solution_type_label,
        kommun_name=present.kommun_name,
        county_of=present.county_of,
        county_name=present.county_name,
        record_path=present.record_path,
        signed_entry_path=present.signed_entry_path,
        safe_href=present.safe_href,
    )
    env.filters.update(
        date=present.date,
        sek=present.sek,
        number=present.number,
        percent=present.percent,
        yes_no=present.yes_no,
    )
    return env


def create_app(catalog: Catalog, settings: WebSection | None = None) -> FastAPI:
    """The catalog's ASGI app over ``catalog`` (PUBLIC records only)."""
    from samverka_hub.web import api, pages

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
    app.include_router(pages.router)
    app.include_router(api.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
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
    503: "Katalogen är inte tillgänglig just nu",
}


def error_page(request: Request, status_code: int, detail: str) -> Response:
    ctx = context(request)
    title = ERROR_TITLES.get(status_code, "Något gick fel")
    detail = _DEFAULT_DETAILS.get(detail, detail)
    response = ctx.render(
        request, "error.html", status_code=status_code, title=title, detail=detail
    )
    response.headers["Cache-Control"] = "no-store"
    return response
