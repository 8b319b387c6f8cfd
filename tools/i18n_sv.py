"""make i18n: the message ids are Swedish, so the sv catalog's translation of each is the
id itself; fill what ``pybabel update`` left empty (the en catalog is written by people).

    python tools/i18n_sv.py node/samverka/locale/sv/LC_MESSAGES/samverka.po
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po


def fill(path: Path) -> int:
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


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {fill(Path(name))} filled")
