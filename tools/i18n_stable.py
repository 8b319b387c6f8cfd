"""make i18n: keep a catalog's header dates when its messages did not change.

``pybabel update`` stamps POT-Creation-Date and PO-Revision-Date with the time of the
run, so every ``make i18n`` showed a diff in the .po (and so the .mo) files. The Makefile
keeps a copy of each .po before the update; this puts the copy back, byte for byte, when
the new file differs from it only in those two header lines, so ``make i18n`` is
idempotent and the dates move only with the messages.

    python tools/i18n_stable.py OLD.po NEW.po
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The header lines ``pybabel update`` rewrites on every run.
DATE_FIELDS = ('"POT-Creation-Date:', '"PO-Revision-Date:')


def without_dates(text: str) -> list[str]:
    """The catalog's lines less the header dates."""
    return [line for line in text.splitlines() if not line.startswith(DATE_FIELDS)]


def keep(old: Path, new: Path) -> bool:
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


if __name__ == "__main__":
    old_path, new_path = Path(sys.argv[1]), Path(sys.argv[2])
    if not keep(old_path, new_path):
        print(f"{new_path}: messages changed")
