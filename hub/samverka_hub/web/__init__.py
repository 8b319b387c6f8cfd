"""The hub's read-only web catalog: PUBLIC records, in Swedish, in a browser.

Staff in a kommun find what others have done with AI, who to ask and what to take
home; the council sees where the country stands. Server-rendered pages (no script,
no front-end build, every asset served from this package), a JSON API with an
OpenAPI description, CSV export, Atom feeds of new and changed records.

- :mod:`~samverka_hub.web.catalog`: the read model; PUBLIC records only, decided there.
- :mod:`~samverka_hub.web.projection`: what the store's current view lacks
  (techniques, lessons of a use case, reuse), followed from the log in memory.
- :mod:`~samverka_hub.web.signature`: a stored signed entry checked again against
  the directory in force when its record is shown.
- :mod:`~samverka_hub.web.chart`: the coverage picture's layout (one square per kommun).
- :mod:`~samverka_hub.web.app`, :mod:`~samverka_hub.web.pages`,
  :mod:`~samverka_hub.web.api`: the ASGI app, its pages and its API.
- :mod:`~samverka_hub.web.feeds`, :mod:`~samverka_hub.web.atom`: the Atom feeds
  (``/flode.atom`` and narrower ones; docs/FEEDS.md) and the documents they serve.
- :mod:`~samverka_hub.web.server`: serving it inside ``hub serve`` or alone.
"""
