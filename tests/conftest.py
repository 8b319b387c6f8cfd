"""Fixtures shared by every test folder.

PostgreSQL: ``pg_server`` (tests/pgserver.py), started lazily by the first test that
needs it: the running server ``SAMVERKA_TEST_PG`` names (a libpq URL such as
``postgresql://postgres@127.0.0.1:5432/test``; CI names the machine's), else a throwaway
cluster of our own on a free port, stopped and deleted at the end of the session. Each
test session creates a throwaway database ``samverka_t_<random>`` and drops it at the
end; each test that asks for ``pg_url`` gets a fresh schema in it (cheap, and fully
isolated). A server that cannot be had FAILS the tests that need it, never skips; tests
that stop or restart PostgreSQL (``pg_restartable``) get a throwaway cluster of their
own when the server is a named one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pgserver
import psycopg
import pytest

# The CLI speaks Swedish unless the locale or SAMVERKA_LANG says English
# (samverka.i18n): the tests, and the samverka processes they start, read the default
# language whatever the machine's locale (tests/cli/test_i18n.py sets English itself).
for _var in ("LANGUAGE", "LC_MESSAGES", "SAMVERKA_LANG"):
    os.environ.pop(_var, None)
for _var in ("LC_ALL", "LANG"):
    if os.environ.get(_var, "C").split(".")[0] not in ("C", "POSIX", "sv_SE"):
        os.environ[_var] = "C.UTF-8"

# -- Two workers (``make test`` runs ``pytest -n 2 --dist loadgroup``, pytest-xdist) ----
#
# Each worker is a session of its own: its own tmp folders, its own session database
# (and throwaway cluster when SAMVERKA_TEST_PG is unset), its own session fixtures. The
# unit of work a worker takes is a file, so a module's hub and servers start once; the
# folders and files in UNITS are one unit each. xdist's own loadgroup (xdist_group marks)
# groups nothing under pytest 9.2 (pytest-xdist issue 1386: it renames each test's id,
# which pytest 9.2 no longer takes), so --dist loadgroup gets the scheduler below, which
# groups by path in the controller.

#: Prefixes (from the repository's root) whose tests form one unit, by the unit's name.
UNITS = {
    # tests/attacks: one hub_arena (a session fixture stopped after the folder's last
    # test, see tests/attacks/conftest.py), and the flood, whose member calls must stay
    # under a second: with the tests below, which assert tight wall times or memory, one
    # after another and never beside each other.
    "tests/attacks/": "timed",
    "tests/load/test_load.py": "timed",
    "tests/hub/test_council_e2e.py": "timed",
    "tests/hub/test_replicas_harvest.py": "timed",
    "tests/hub/test_stats.py": "timed",
    "tests/server/test_live.py": "timed",
    "tests/server/test_postgres.py": "timed",
    # The seeded federations (SQLite, PostgreSQL) are session fixtures: seeded once.
    "tests/web/": "web",
}

#: The longest units, longest first (test-seconds of a two-worker run on a loaded
#: machine, 2026-12-03, ~1,720 tests: timed and web the largest, then
#: aggregation_e2e 123, demo 68, tour 58, drills 84 then ~55, ...): given out
#: first, so that no worker is left running a long one alone at the end. The rest follow
#: in collection order. Add a unit here when it grows past ~1 % (~25 s).
LONGEST_FIRST = (
    "timed",
    "web",
    "tests/hub/test_aggregation_e2e.py",  # 123 s
    "tests/demo/test_tour.py",  # 58, ~75 with test_demo's DEMO_KEEP test
    "tests/demo/test_demo.py",  # 68, ~45 without it
    "tests/ops/test_drills.py",  # ~55 (was 84)
    "tests/faults/test_replica_db_faults.py",  # 49
    "tests/hub/test_selective_sync_e2e.py",  # 47
    "tests/ops/test_observability.py",  # 45
    "tests/ops/test_deploy.py",  # 41
    "tests/hub/test_membership_e2e.py",  # 40
    "tests/hub/test_small_kommun_e2e.py",  # 38
    "tests/ops/test_backup.py",  # 37
    "tests/cli/test_bundle_cli.py",  # 32
    # under ~30 s in that run, or since
    "tests/hub/test_hub_key_rotation_e2e.py",  # 22-29 (was 51)
    "tests/ops/test_drill_hub_keys.py",  # ~20 (was 33)
    "tests/hub/test_tlog_witnesses.py",  # ~20 (was 35)
    "tests/faults/test_follow_resume.py",  # 18 (was 41)
    "tests/hub/test_erasure_e2e.py",  # ~15 (was 32)
    "tests/ops/test_doctor.py",
    "tests/hub/test_aggregation_agents.py",
    "tests/faults/test_hub_crash.py",
    "tests/hub/test_witness_e2e.py",
    "tests/hub/test_replicas.py",
    "tests/hub/test_membership_council.py",
)


def unit_of(nodeid: str) -> str:
    """The work unit of a test (its file's, unless UNITS names a larger one)."""
    path = nodeid.split("::", 1)[0]
    for prefix, name in UNITS.items():
        if path.startswith(prefix):
            return name
    return path


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("dist", default="no") == "loadgroup":
        # Units in the workers' order (below), not xdist's (more tests first).
        config.option.loadscopereorder = False


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # pytest-xdist asks (not with -p no:xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getoption("dist", default="no") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        """Whole units to a worker at a time (a unit runs on one worker, in order)."""

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return ByUnit(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker under ``--dist loadgroup``: the longest units first (the same order
    on every worker, as xdist requires). Tests of one file keep their order."""
    if not config.getoption("loadgroup", default=False):  # a worker's (its dist is "no")
        return
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(unit_of(item.nodeid), len(rank)))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    """The session's PostgreSQL server (see the module's docstring)."""
    try:
        server = pgserver.from_environment(say=lambda _: None)
    except pgserver.PgServerError as exc:
        pytest.fail(f"no PostgreSQL for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def pg_restartable(pg_server: pgserver.PgServer) -> Iterator[pgserver.PgServer]:
    """A server of our own, for tests that stop, start, pause or restart it: the
    session's when it is a throwaway cluster, else (``SAMVERKA_TEST_PG`` names one, which
    is not ours to restart: CI's) a throwaway cluster started for them, so they run
    everywhere and never skip."""
    if pg_server.throwaway:
        yield pg_server
        return
    try:
        server = pgserver.start_throwaway(say=lambda _: None)
    except pgserver.PgServerError as exc:
        pytest.fail(f"no throwaway PostgreSQL for the fault tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


def _pg_admin(server: pgserver.PgServer) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return server.connect()
    except psycopg.OperationalError as exc:
        advice = (
            f"its log:\n{server.log_tail()}"
            if isinstance(server, pgserver.Throwaway)
            else f"start it, or unset {pgserver.ENV} to have the tests start their own"
        )
        pytest.fail(f"{server.describe()} is unreachable ({exc}); {advice}", pytrace=False)


@pytest.fixture(scope="session")
def pg_database(pg_server: pgserver.PgServer) -> Iterator[str]:
    """A PostgreSQL database for this test session, as a SQLAlchemy URL."""
    name = f"samverka_t_{secrets.token_hex(4)}"
    with _pg_admin(pg_server) as admin:
        admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    try:
        yield pg_server.url(name)
    finally:
        with _pg_admin(pg_server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_schema(pg_database: str, prefix: str) -> Iterator[str]:
    """A new, empty schema in the session's database, dropped after: a URL whose
    search_path is it."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    dsn = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg_database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A fresh, empty schema for one test."""
    with fresh_schema(pg_database, "t") as url:
        yield url


@pytest.fixture(scope="module")
def pg_schema(pg_database: str) -> Iterator[str]:
    """A fresh, empty schema for a module's hub (shared by its tests)."""
    with fresh_schema(pg_database, "module") as url:
        yield url
