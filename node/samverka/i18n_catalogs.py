"""Maintaining the CLI's gettext catalogs (``make i18n``; not used at run time).

Two steps of ``make i18n``, run as ``python -m samverka.i18n_catalogs``:

- ``fill-sv PO``: the message ids are Swedish, so the sv catalog's translation of each is
  the id itself; fill what ``pybabel update`` left empty (the en catalog is written by
  people).
- ``keep-dates OLD NEW``: ``pybabel update`` stamps POT-Creation-Date and
  PO-Revision-Date with the time of the run, so every ``make i18n`` showed a diff in the
  .po (and so the .mo) files. The Makefile keeps a copy of each .po before the update;
  this puts the copy back, byte for byte, when the new file differs from it only in those
  two header lines, so ``make i18n`` is idempotent and the dates move only with the
  messages.

Babel is a development dependency: it is imported only by ``fill-sv``.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The header lines ``pybabel update`` rewrites on every run.
DATE_FIELDS = ('"POT-Creation-Date:', '"PO-Revision-Date:')


def fill_sv(path: Path) -> int:
    """Give each untranslated message of the sv catalog its (Swedish) id; how many."""
    from babel.messages.pofile import read_po, write_po

    with path.open("rb") as f:
        catalog = read_po(f)
    filled = 0
    for message in catalog:
        if not message.id or (message.string and all(message.string)):
            continue
        message.string = message.id
        filled += 1
    with path.open("wb") as f:
        write_po(f, catalog, sort_output=True, omit_header=False, ignore_obsolete=True)
    return filled


def without_dates(text: str) -> list[str]:
    """The catalog's lines less the header dates."""
    return [line for line in text.splitlines() if not line.startswith(DATE_FIELDS)]


def keep_dates(old: Path, new: Path) -> bool:
    """Put ``old`` back over ``new`` when they differ only in the header dates."""
    if not old.is_file():
        return False
    before = old.read_bytes()
    after = new.read_bytes()
    if before == after:
        return True
    if without_dates(before.decode("utf-8")) != without_dates(after.decode("utf-8")):
        return False
    new.write_bytes(before)
    return True


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "fill-sv":
        print(f"{argv[1]}: {fill_sv(Path(argv[1]))} filled")
        return 0
    if len(argv) == 3 and argv[0] == "keep-dates":
        if not keep_dates(Path(argv[1]), Path(argv[2])):
            print(f"{argv[2]}: messages changed")
        return 0
    print(
        "usage: python -m samverka.i18n_catalogs fill-sv PO | keep-dates OLD NEW", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
