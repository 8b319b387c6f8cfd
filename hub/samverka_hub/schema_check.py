"""``alembic check`` of both migration tracks, as ``make lint`` runs it.

    python -m samverka_hub.schema_check [DATABASE_URL ...]

Migrates a fresh throwaway SQLite database (a node's: the store's track; a hub's: the
store's and the hub's) to head and has Alembic compare each track's models with it;
each URL given (an empty PostgreSQL database or schema) gets the same. Exit 0 when the
models and the migrations agree, 1 with Alembic's differences otherwise. The same
comparison runs on PostgreSQL in the tests (tests/store/test_migrations.py,
tests/hub/test_hub_migrations.py).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from samverka.errors import StoreError
from samverka.store import migrations
from samverka.store.store import Store

from samverka_hub.migrations import HUB_TRACK

NODE = (migrations.STORE_TRACK,)
HUB = (migrations.STORE_TRACK, HUB_TRACK)


def check_url(url: str, tracks: Sequence[str]) -> None:
    """Migrate ``url`` to head for ``tracks``, then ``alembic check`` each of them."""
    with Store.open(url, tracks=tracks) as store:
        migrations.check(store.engine, tracks)


def main(argv: Sequence[str] | None = None) -> int:
    urls = list(sys.argv[1:] if argv is None else argv)
    try:
        with tempfile.TemporaryDirectory(prefix="samverka-schema-check-") as tmp:
            check_url(f"sqlite:///{Path(tmp) / 'node.db'}", NODE)
            check_url(f"sqlite:///{Path(tmp) / 'hub.db'}", HUB)
        for url in urls:
            check_url(url, HUB)
    except StoreError as exc:
        print(f"schema check failed: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    where = ", ".join(["SQLite", *(u.split(":", 1)[0] for u in urls)])
    print(f"alembic check: the models and the migrations agree ({where}; tracks {', '.join(HUB)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
