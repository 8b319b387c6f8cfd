"""Alembic environment of the store's track (see samverka.store.migrations)."""

from typing import cast

from alembic import context
from alembic.runtime.environment import EnvironmentContext
from samverka.store.migrations import run_env

# alembic.context is a module standing for the running EnvironmentContext.
run_env(cast(EnvironmentContext, context))
