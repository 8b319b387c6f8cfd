"""Schema migrations on Alembic, in independent tracks, run from code.

A *track* is one Alembic environment shipped inside a package: its ``env.py`` and
``versions/`` folder, its own version table (``alembic_version_<track>``) and the
sqlmodel tables it owns. The store's own track is ``"store"``
(``samverka/store/alembic/``); the hub registers ``"hub"`` (``samverka_hub/alembic/``)
and names it when it opens the store::

    register_track(Track("hub", Path(__file__).parent / "alembic", HUB_TABLES))
    store = Store.open(url, tracks=("store", "hub"))

Rules:

- The models are the source of truth. Each track's ``env.py`` hands Alembic the
  sqlmodel metadata, limited to the track's own tables (:meth:`Track.include_name`), so
  ``alembic check`` (:func:`check`; ``make lint`` and tests/store/test_migrations.py)
  proves that the models and the migrated database agree, on SQLite and PostgreSQL.
  What is not a model — the full-text index (:mod:`samverka.store.fulltext`: an FTS5
  table and its shadow tables, or a tsvector table with a GIN index), the legacy
  ``schema_migrations`` table, the other tracks' tables — is made by migration ops
  and left out of that comparison.
- Each track's revisions form one line (no branches); a revision's *version* is its
  place on that line, 1, 2, 3, … as the version numbers of the framework before
  Alembic, which :func:`migrate` takes over (below). A revision is never edited once
  released: a change is a new revision (``alembic revision --autogenerate`` against a
  database at head, see docs/OPERATIONS.md).
- :func:`migrate` runs every track's pending revisions in ONE write transaction
  (:func:`~samverka.store.db.write_transaction`: SQLite's write lock, PostgreSQL's
  advisory lock; both engines have transactional DDL), the store's track first.
  Concurrent openers (two processes, two hub replicas) serialize on that lock and
  read the version tables after taking it, so each revision runs exactly once, and
  a crash leaves the database as it was.
- Takeover: a database made before Alembic holds ``schema_migrations`` (track,
  version) rows and no version table. Its track is stamped at the revision of the
  same version, then upgraded; no row is touched. ``schema_migrations`` stays, unused.
- A database at a revision this software does not know (or, before Alembic, a
  version past its newest) is refused (``StoreError``): a newer Samverka wrote it.
- Alembic (with Mako and Pygments, ~11 MB and ~0.3 s of a process) is imported only
  when there is something to do: :func:`migrate` first reads each track's version
  table, and a database already at every track's head (:meth:`Track.head`, from the
  revision files' names) is left as it is without loading it. So a serving node or hub
  does not carry Alembic.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from samverka.errors import StoreError
from samverka.store import tables  # noqa: F401  (the store's models, in SQLModel.metadata)
from samverka.store.db import read_transaction, write_transaction

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext, MigrationInfo

STORE_TRACK = "store"

#: A revision file: ``<track>_<NNNN>_<what>.py`` holds revision ``<track>_<NNNN>``.
REVISION_FILE = re.compile(r"^([a-z]+_[0-9]{4})_\w*\.py$")

#: The table of the framework before Alembic: (track, version, name, applied_at_ms).
LEGACY_TABLE = "schema_migrations"


@dataclass(frozen=True, slots=True)
class Track:
    """One Alembic environment: where its scripts are, which tables it owns."""

    name: str
    #: The folder holding env.py, script.py.mako and versions/.
    script_location: Path
    #: The sqlmodel tables this track creates and keeps (compared by ``alembic check``).
    tables: frozenset[str]

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"

    def head(self) -> str | None:
        """The newest revision id, read from the names of the revision files (each
        revision ``<track>_<NNNN>`` lives in ``versions/<track>_<NNNN>_<what>.py``, one
        line of revisions), without loading Alembic. None when there is none."""
        found = [
            m.group(1)
            for p in (self.script_location / "versions").glob(f"{self.name}_*.py")
            if (m := REVISION_FILE.match(p.name))
        ]
        return max(found, default=None)

    def include_name(self, name: str | None, type_: str, parent_names: Any) -> bool:
        """Alembic's filter: only this track's tables are reflected and compared."""
        if type_ == "table":
            return name in self.tables
        return True

    def include_object(
        self, obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table":
            return name in self.tables
        return True


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    track: str
    version: int
    revision: str
    name: str


_TRACKS: dict[str, Track] = {}


def register_track(track: Track) -> None:
    """Register a track (again: harmless; another track under a taken name: an error)."""
    known = _TRACKS.get(track.name)
    if known is not None and known != track:
        raise ValueError(f"migration track {track.name!r} is already registered")
    _TRACKS[track.name] = track


def registered(name: str) -> Track:
    try:
        return _TRACKS[name]
    except KeyError:
        raise StoreError(
            f"no migrations are registered for track {name!r}",
            hint="import the package that registers it before opening the store",
        ) from None


def alembic_config(track: Track, connection: Connection | None = None) -> Config:
    """An Alembic config for ``track`` without an alembic.ini: the env.py runs on
    ``connection`` (inside the caller's transaction) when one is given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(track.script_location))
    config.attributes["track"] = track.name
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def revisions(name: str) -> list[str]:
    """The track's revision ids, oldest first (revision i+1 is version i+1)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(registered(name)))
    heads = script.get_heads()
    if len(heads) != 1:
        raise StoreError(f"migration track {name!r} has {len(heads)} heads, not one line")
    line = [r.revision for r in script.walk_revisions("base", heads[0])]
    return list(reversed(line))


def revision_number(revision: str) -> int:
    """The version number of a revision id ``<track>_<NNNN>`` (``store_0002`` → 2): every
    revision of both tracks is named so, numbered as the framework before Alembic was,
    so what reports versions (backup manifests, doctor) keeps its numbers. -1 for an id
    not of that form (a revision this software did not make)."""
    _, _, number = revision.rpartition("_")
    return int(number) if number.isdigit() else -1


def latest_version(name: str = STORE_TRACK) -> int:
    return len(revisions(name))


def run_env(context: EnvironmentContext) -> None:
    """The body of every track's env.py: migrate (or compare) on the connection the
    caller passed in ``config.attributes``, or on ``sqlalchemy.url`` when run by the
    ``alembic`` command line with an ini file."""
    config = context.config
    track = registered(str(config.attributes.get("track") or config.get_main_option("track")))
    if context.is_offline_mode():
        raise StoreError("Samverka's migrations run online only (no --sql)")
    conn: Connection | None = config.attributes.get("connection")
    if conn is not None:
        _configure_and_run(context, track, conn)
        return
    from samverka.store.db import create_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise StoreError("no database: set sqlalchemy.url or pass a connection")
    engine = create_engine(url, pool_size=1)
    try:
        with write_transaction(engine) as conn:
            _configure_and_run(context, track, conn)
    finally:
        engine.dispose()


def _configure_and_run(context: EnvironmentContext, track: Track, conn: Connection) -> None:
    applied: list[AppliedMigration] | None = context.config.attributes.get("applied")

    def on_apply(
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        rev = step.up_revision_id
        if applied is not None and step.is_upgrade and rev is not None:
            line = revisions(track.name)
            doc = str(getattr(step.up_revision, "doc", ""))  # a Script's first docstring line
            applied.append(AppliedMigration(track.name, line.index(rev) + 1, rev, doc))

    context.configure(
        connection=conn,
        target_metadata=SQLModel.metadata,
        version_table=track.version_table,
        include_name=track.include_name,
        include_object=track.include_object,
        compare_type=True,
        on_version_apply=on_apply,
    )
    with context.begin_transaction():
        context.run_migrations()


def legacy_versions(conn: Connection) -> dict[str, int]:
    """The newest version of each track in a database made before Alembic."""
    if not sa.inspect(conn).has_table(LEGACY_TABLE):
        return {}
    rows = conn.exec_driver_sql(
        f"SELECT track, MAX(version) FROM {LEGACY_TABLE} GROUP BY track"
    ).all()
    return {str(track): int(version) for track, version in rows}


def _current(conn: Connection, track: Track) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": track.version_table})
    heads = context.get_current_heads()
    if len(heads) > 1:
        raise StoreError(f"the database's {track.name} schema has several heads: {heads}")
    return heads[0] if heads else None


def _newer(track: str, what: str) -> StoreError:
    return StoreError(
        f"the database's {track} schema is at {what}, newer than this software knows",
        hint="run a Samverka version at least as new as the one that wrote it",
    )


def migrate(
    engine: Engine,
    tracks: Sequence[str] = (STORE_TRACK,),
    *,
    upto: Mapping[str, int] | None = None,
) -> list[AppliedMigration]:
    """Take over and apply every pending migration of ``tracks`` (each only up to
    version ``upto[track]``), all in one write transaction."""
    if upto is None and at_head(engine, tracks):
        return []
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    applied: list[AppliedMigration] = []
    with write_transaction(engine) as conn:
        legacy = legacy_versions(conn)
        for name in tracks:
            track = registered(name)
            line = revisions(name)
            config = alembic_config(track, conn)
            config.attributes["applied"] = applied
            current = _current(conn, track)
            if current is None and legacy.get(name, 0) > 0:
                version = legacy[name]
                if version > len(line):
                    raise _newer(name, f"version {version}")
                script = ScriptDirectory.from_config(config)
                context = MigrationContext.configure(
                    conn, opts={"version_table": track.version_table}
                )
                context.stamp(script, line[version - 1])
                current = line[version - 1]
            if current is not None and current not in line:
                raise _newer(name, f"revision {current}")
            limit = (upto or {}).get(name, len(line))
            if limit <= 0 or (current is not None and line.index(current) + 1 >= limit):
                continue
            command.upgrade(config, line[limit - 1])
    return applied


def at_head(engine: Engine, tracks: Sequence[str]) -> bool:
    """Whether every track's version table holds exactly its head revision: the usual
    open of a migrated database, answered with one read and without Alembic. False
    whenever in doubt (no version table, a database from before Alembic, another
    revision), and :func:`migrate` then does the whole work under its write lock."""
    heads = {name: registered(name).head() for name in tracks}
    with read_transaction(engine) as conn:
        inspector = sa.inspect(conn)
        for name, head in heads.items():
            table = registered(name).version_table
            if head is None or not inspector.has_table(table):
                return False
            found = [row[0] for row in conn.exec_driver_sql(f"SELECT version_num FROM {table}")]
            if found != [head]:
                return False
    return True


def applied_versions(engine: Engine, tracks: Sequence[str] | None = None) -> dict[str, int]:
    """The version of each track (of ``tracks``, default every registered one) in the
    database: absent for a track never applied, ``-1`` for a revision this software
    does not know. A database from before Alembic reports its legacy versions."""
    with read_transaction(engine) as conn:
        legacy = legacy_versions(conn)
        found: dict[str, int] = {}
        for name in tracks if tracks is not None else list(_TRACKS):
            track = registered(name)
            current = _current(conn, track)
            if current is None:
                if legacy.get(name):
                    found[name] = legacy[name]
                continue
            line = revisions(name)
            found[name] = line.index(current) + 1 if current in line else -1
    return found


def awaiting_takeover(engine: Engine, tracks: Sequence[str]) -> list[str]:
    """The tracks of ``tracks`` that a database made before Alembic holds in
    ``schema_migrations`` and that no Alembic version table records yet."""
    with read_transaction(engine) as conn:
        legacy = legacy_versions(conn)
        return [t for t in tracks if legacy.get(t) and _current(conn, registered(t)) is None]


def check(engine: Engine, tracks: Sequence[str] = (STORE_TRACK,)) -> None:
    """``alembic check`` of each track against ``engine``'s database (migrated to head):
    raises StoreError naming the differences between the models and the database."""
    from alembic import command
    from alembic.util.exc import AutogenerateDiffsDetected

    for name in tracks:
        with engine.connect() as conn, conn.begin():
            try:
                command.check(alembic_config(registered(name), conn))
            except AutogenerateDiffsDetected as exc:
                raise StoreError(
                    f"the {name} models and migrations disagree: {exc}",
                    hint="add a migration (alembic revision --autogenerate) for the change",
                ) from exc


register_track(
    Track(
        STORE_TRACK,
        Path(__file__).parent / "alembic",
        frozenset({"log", "feed_heads", "records", "cursors"}),
    )
)
