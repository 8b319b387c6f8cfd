"""A serving node loads what serving needs: opening a migrated store does not load
Alembic (nor Mako and Pygments with it), and the serve path imports none of the heavy
optional modules (issue 15: node idle RSS within 10 MB of the design card's stack)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import samverka_hub.migrations  # noqa: F401  (registers the hub's track)
from samverka.store import migrations
from samverka.store.store import Store

#: Modules a serving node must not load (each only where it is used: migrations, the web
#: catalog, exports, metrics endpoint, reading spreadsheets, YAML imports).
HEAVY = (
    "alembic",
    "mako",
    "pygments",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "openpyxl",
    "yaml",
    "prometheus_client",
    "samverka_hub",
)


def test_a_tracks_head_from_its_file_names_is_alembics_head() -> None:
    for name in ("store", "hub"):
        assert migrations.registered(name).head() == migrations.revisions(name)[-1]


def test_at_head_only_when_every_track_is_at_its_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with Store.open(url, migrate=False) as store:
        assert not migrations.at_head(store.engine, ["store"])  # no version table yet
        store.migrate(upto=1)
        assert not migrations.at_head(store.engine, ["store"])
        assert store.migrate() == list(range(2, migrations.latest_version() + 1))
        assert migrations.at_head(store.engine, ["store"])
        assert not migrations.at_head(store.engine, ["store", "hub"])


def test_the_serve_path_over_a_migrated_store_loads_no_heavy_module(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    Store.open(url).close()  # migrated here, in this process
    script = f"""
import json, sys
import samverka.cli, samverka.cli.serve, samverka.cli.node
import samverka.membership.serving, samverka.membership.mirror, samverka.node
import samverka.store.logwatch, samverka.replication.push, samverka.replication.sync
from samverka.store.store import Store
with Store.open({url!r}) as store:
    store.search("äldreomsorg")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
