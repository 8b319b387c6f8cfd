"""What every route of the web catalog reads: the catalog, the settings, the templates.

:mod:`samverka_hub.web.app` makes one :class:`WebContext` per app; the routers
(:mod:`.pages`, :mod:`.api`) reach it through :func:`context`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from samverka.records import transparency

from samverka_hub.config import WebSection
from samverka_hub.web import present
from samverka_hub.web.catalog import Catalog

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
        band_label=present.band_label,
        group_label=present.group_label,
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
        record_sections=transparency.sections,
    )
    env.filters.update(
        date=present.date,
        sek=present.sek,
        number=present.number,
        percent=present.percent,
        yes_no=present.yes_no,
    )
    return env
