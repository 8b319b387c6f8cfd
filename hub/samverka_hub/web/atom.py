"""Atom 1.0 (RFC 4287) documents of the catalog's feeds (pure: items in, bytes out).

Built with :mod:`xml.etree.ElementTree` rather than a feed library: an Atom feed is a
dozen elements, ElementTree escapes every text and attribute value, and the one thing
a library would not do for us either is the one that matters here: record text is
data from 290 kommuner, and XML 1.0 cannot carry some characters at all (NUL, most C0
controls, U+FFFE/U+FFFF). :func:`xml_text` drops those, so no record can make a feed
ill-formed (lxml-based builders such as feedgen raise on them instead, failing the
whole feed).

What an entry says (docs/FEEDS.md has the table):

- ``id``: ``tag:<host>,2025:post/<origin>/<record id>/v<version>``, where ``<host>`` is
  that of ``[web] public_url`` ("localhost" without one). Each version a kommun signs
  is its own entry: a reader shows a new version as a new item instead of silently
  editing one it has shown (many readers ignore a changed ``updated``).
- ``updated``: when the version was signed (the entry's timestamp), UTC.
- ``author``: the kommun (``AI-rådet`` for the council), with its catalog page.
- ``link rel=alternate``: the record's page (text/html) and its JSON
  (application/json); absolute when ``[web] public_url`` is set, else paths, which a
  reader resolves against the feed's own address. Never the request's Host header.
- ``category``: the kind, the service area and (use cases) the status, as the
  vocabularies' stable keys with the Swedish label.
- ``summary``: the verified-signature mark, then the record's summary (plain text,
  what Outlook and Teams show); ``content`` (HTML, escaped): the mark with the key
  id, the fields and a link to the record.
- ``samverka:signature``: the same check for machines: status, key id, chain hash
  (SHA-256 of the signed entry bytes), sequence and the directory version checked
  against.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from samverka.protocol.vocab import RECORD_KIND, SERVICE_AREA, USE_CASE_STATUS
from samverka.v1 import records_pb2

from samverka_hub.web import present
from samverka_hub.web.catalog import FeedItem
from samverka_hub.web.signature import SignatureCheck, SignatureStatus

ATOM_NS = "http://www.w3.org/2005/Atom"
#: The namespace of Samverka's extension element (a name, not an address to fetch).
SAMVERKA_NS = "urn:samverka:atom:1"
MEDIA_TYPE = "application/atom+xml"
#: The date part of every tag: URI (RFC 4151); never changes, or every id would.
TAG_DATE = "2025"
#: The feed's ``updated`` when it holds no entry (a fixed time, so its ETag is stable).
EMPTY_UPDATED_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z

#: Characters XML 1.0 cannot hold (Char production): C0 controls but tab, LF and CR,
#: surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (ElementTree escapes the
    rest: ``&``, ``<``, ``>`` and quotes)."""
    return _NOT_XML.sub("", text)


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """What a feed is: its address, its title and the page that shows the same."""

    #: The feed's path, e.g. ``/flode/kommun/2029.atom`` (with its query, if any).
    path: str
    #: The specific part of the feed's tag: URI, e.g. ``flode/kommun/2029``.
    name: str
    title: str
    subtitle: str
    #: The catalog page showing the same records (``rel=alternate``).
    page: str


def tag_authority(base_url: str) -> str:
    """The host that mints the tag: URIs: ``[web] public_url``'s, else "localhost"."""
    host = urlsplit(base_url).hostname if base_url else None
    return (host or "localhost").lower()


def entry_id(authority: str, origin: str, record_id: str, version: int) -> str:
    return (
        f"tag:{authority},{TAG_DATE}:post/{quote(origin, safe='')}/"
        f"{quote(record_id, safe='')}/v{version}"
    )


def rfc3339(ms: int) -> str:
    """Unix ms → ``2025-06-15T08:30:00Z``."""
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def signature_line(sig: SignatureCheck) -> str:
    """The verified-signature mark in words (what the record page says at its top)."""
    who = present.kommun_name(sig.origin) if sig.origin else "okänd avsändare"
    if sig.status is SignatureStatus.VERIFIED:
        return f"✓ Signatur verifierad: signerad av {who}"
    if sig.status is SignatureStatus.UNKNOWN_KEY:
        return (
            f"Signaturen kontrollerades när navet tog emot posten från {who} (nyckeln "
            "finns inte i den medlemskatalog som gäller nu)"
        )
    return "⚠ Signaturen kunde inte verifieras: lita inte på innehållet"


def render(meta: FeedMeta, items: Sequence[FeedItem], *, base_url: str) -> bytes:
    """The Atom document (UTF-8, with its XML declaration)."""
    base = base_url.rstrip("/")
    authority = tag_authority(base_url)
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xmlns:samverka": SAMVERKA_NS, "xml:lang": "sv"})
    _text(feed, "id", f"tag:{authority},{TAG_DATE}:{meta.name}")
    _text(feed, "title", meta.title)
    _text(feed, "subtitle", meta.subtitle)
    newest = max((i.summary.timestamp_ms for i in items), default=EMPTY_UPDATED_MS)
    _text(feed, "updated", rfc3339(newest))
    _link(feed, base + meta.path, rel="self", type=MEDIA_TYPE)
    _link(feed, base + meta.page, rel="alternate", type="text/html")
    author = ET.SubElement(feed, "author")
    _text(author, "name", "Samverka – AI-rådets katalog")
    _text(author, "uri", base + "/om")
    _text(feed, "generator", "Samverka", uri=base + "/om")
    for item in items:
        _entry(feed, item, base=base, authority=authority)
    ET.indent(feed, space=" ")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def _entry(feed: ET.Element, item: FeedItem, *, base: str, authority: str) -> None:
    s, sig = item.summary, item.signature
    page = base + present.record_path(s.origin, s.record_id)
    entry = ET.SubElement(feed, "entry")
    _text(entry, "id", entry_id(authority, s.origin, s.record_id, s.version))
    _text(entry, "title", s.title or s.record_id)
    _text(entry, "updated", rfc3339(s.timestamp_ms))
    author = ET.SubElement(entry, "author")
    _text(author, "name", present.kommun_name(s.origin))
    _text(author, "uri", base + f"/kommun/{quote(s.origin, safe='')}")
    _link(entry, page, rel="alternate", type="text/html")
    _link(
        entry,
        base + f"/api/records/{quote(s.origin, safe='')}/{quote(s.record_id, safe='')}",
        rel="alternate",
        type="application/json",
    )
    _category(entry, "typ", RECORD_KIND.key(s.kind), present.kind_label(s.kind))
    if s.service_area:
        _category(
            entry, "omrade", SERVICE_AREA.key(s.service_area), present.area_label(s.service_area)
        )
    if s.status and s.kind == records_pb2.RECORD_KIND_USE_CASE:
        _category(entry, "status", USE_CASE_STATUS.key(s.status), present.status_label(s.status))
    mark = signature_line(sig)
    _text(entry, "summary", f"{mark}. {s.summary}" if s.summary else f"{mark}.", type="text")
    _text(entry, "content", _content_html(item, page), type="html")
    ET.SubElement(
        entry,
        "samverka:signature",
        {
            "status": str(sig.status),
            "key-id": xml_text(sig.key_id),
            "entry-hash": sig.entry_hash,
            "sequence": str(sig.sequence),
            "directory-version": str(sig.directory_version),
        },
    )


def _content_html(item: FeedItem, page: str) -> str:
    """The entry's content as HTML, every record value escaped (the document escapes
    the whole again as XML text: two layers, as ``type="html"`` means)."""
    s, sig = item.summary, item.signature
    e = html.escape
    mark = e(signature_line(sig))
    parts = [f"<p><strong>{mark}</strong>"]
    if sig.key_id:
        parts.append(
            f" med nyckeln <code>{e(sig.key_id)}</code>, kontrollerad mot AI-rådets "
            f"medlemskatalog version {sig.directory_version}"
        )
    parts.append(".</p>")
    if s.summary:
        parts.append(f"<p>{e(s.summary)}</p>")
    facts = [f"{e(present.kind_label(s.kind))} från {e(present.kommun_name(s.origin))}"]
    if s.service_area:
        facts.append(f"Verksamhetsområde: {e(present.area_label(s.service_area))}")
    if s.status and s.kind == records_pb2.RECORD_KIND_USE_CASE:
        facts.append(f"Status: {e(present.status_label(s.status))}")
    if s.risk_class:
        facts.append(f"Riskklass: {e(present.risk_label(s.risk_class))}")
    facts.append(f"Version {s.version}, {e(present.date(s.timestamp_ms))}")
    parts.append("<ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>")
    parts.append(f'<p><a href="{e(page)}">Läs hela posten i Samverka</a></p>')
    return "".join(parts)


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = xml_text(text)
    return element


def _link(parent: ET.Element, href: str, *, rel: str, type: str) -> None:
    ET.SubElement(parent, "link", {"rel": rel, "type": type, "href": xml_text(href)})


def _category(parent: ET.Element, scheme: str, term: str, label: str) -> None:
    if term:
        ET.SubElement(
            parent,
            "category",
            {"scheme": f"{SAMVERKA_NS}:{scheme}", "term": term, "label": xml_text(label)},
        )
