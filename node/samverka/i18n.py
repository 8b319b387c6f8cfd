"""One language for people: what the CLI prints, in Swedish unless English is asked for.

Every human text goes through :func:`_` (or :func:`ngettext` when it counts something);
the messages are gettext catalogs in ``samverka/locale`` (``messages.pot`` extracted by
``pybabel extract``, ``sv`` and ``en`` ``.po`` files, their compiled ``.mo`` files beside
them: ``make i18n``). The message ids are Swedish (the default language), so the code
reads as the output does; the ``en`` catalog translates them.

The language is, in order: ``--lang`` on the ``samverka`` command (it sets it with
:func:`set_language`), ``SAMVERKA_LANG``, then the locale (``LANGUAGE``, ``LC_ALL``,
``LC_MESSAGES``, ``LANG``: the first set one decides, ``en*`` is English, anything else
Swedish; ``C``/``POSIX`` say nothing). ``--json`` output is never translated: its keys and
values are an API.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from pathlib import Path

DOMAIN = "samverka"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"
#: The locale variables, in the order gettext reads them.
LOCALE_VARS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_catalogs: dict[str, gettext.NullTranslations] = {}
_current: list[str] = []


def language_from_env(env: Mapping[str, str] | None = None) -> str:
    """The language the environment asks for: ``SAMVERKA_LANG``, then the locale."""
    env = os.environ if env is None else env
    own = env.get("SAMVERKA_LANG", "").strip().lower()
    if own:
        return "en" if own.startswith("en") else DEFAULT_LANGUAGE
    for var in LOCALE_VARS:
        value = env.get(var, "").split(":")[0].strip()
        if not value or value.upper().split(".")[0] in ("C", "POSIX"):
            continue
        return "en" if value.lower().startswith("en") else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def set_language(lang: str | None) -> str:
    """Speak ``lang`` (``sv``/``en``) from now on, or what the environment asks for
    when None; returns the language chosen."""
    chosen = language_from_env() if not lang else lang.strip().lower()[:2]
    if chosen not in LANGUAGES:
        chosen = DEFAULT_LANGUAGE
    _current[:] = [chosen]
    return chosen


def language() -> str:
    """The language texts are given in now."""
    if not _current:
        set_language(None)
    return _current[0]


def _catalog() -> gettext.NullTranslations:
    lang = language()
    catalog = _catalogs.get(lang)
    if catalog is None:
        catalog = gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)
        _catalogs[lang] = catalog
    return catalog


def _(message: str) -> str:
    """``message`` (a Swedish msgid) in the current language."""
    return _catalog().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the current language."""
    return _catalog().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in ``context`` (the same Swedish word meaning two things in English:
    ``pgettext("flera", "användningsfall")`` is "use cases")."""
    return _catalog().pgettext(context, message)


def catalog_messages() -> dict[str, str]:
    """The current language's messages (msgid to text), singular ones only."""
    messages = getattr(_catalog(), "_catalog", {})
    return {k: v for k, v in messages.items() if isinstance(k, str) and k}


def N_(message: str) -> str:
    """Mark ``message`` for extraction only; translate it with :func:`_` where shown."""
    return message


#: The context of a plural that is spelled as its singular in Swedish (``ursprung``).
PLURAL = "flera"


def NP_(context: str, message: str) -> str:
    """Mark ``message`` in ``context`` for extraction only (``NP_(PLURAL, "ursprung")``);
    translate it with :func:`pgettext` where shown."""
    return message


def plural_word(singular: str, plural: str, n: int) -> str:
    """The word for ``n`` things, translated: ``singular`` and ``plural`` are msgids; a
    plural spelled as its singular is looked up in the :data:`PLURAL` context."""
    if n == 1:
        return _(singular)
    return pgettext(PLURAL, plural) if plural == singular else _(plural)


def gettext_in(lang: str, message: str) -> str:
    """``message`` in ``lang`` whatever the current language (``--json`` texts that are
    English by contract)."""
    catalog = _catalogs.get(lang)
    if catalog is None:
        catalog = gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)
        _catalogs[lang] = catalog
    return catalog.gettext(message)


class Text:
    """A message put in words only when shown: a Swedish msgid (marked with ``N_`` where
    written) and the values it names. ``str()`` gives it in the current language,
    :meth:`in_language` in a given one (``in_language("en")`` for an English API)."""

    __slots__ = ("args", "msgid")

    def __init__(self, msgid: str, /, **args: object) -> None:
        self.msgid = msgid
        self.args = args

    def in_language(self, lang: str | None = None) -> str:
        template = _(self.msgid) if lang is None else gettext_in(lang, self.msgid)
        if not self.args:
            return template
        values = {
            k: v.in_language(lang) if isinstance(v, Text) else v for k, v in self.args.items()
        }
        return template.format(**values)

    def __str__(self) -> str:
        return self.in_language()

    def __repr__(self) -> str:
        return f"Text({self.msgid!r}, **{self.args!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and (self.msgid, self.args) == (other.msgid, other.args)

    def __hash__(self) -> int:
        return hash(self.msgid)


def in_language(text: str | Text, lang: str | None = None) -> str:
    """``text`` in words: a :class:`Text` in ``lang`` (default: the current language), a
    plain string as it is (a message that is no msgid, e.g. an error's own text)."""
    return text.in_language(lang) if isinstance(text, Text) else text
