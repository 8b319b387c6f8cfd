"""Alembic environment of the hub's track (see samverka_hub.migrations)."""

from typing import cast

import samverka_hub.migrations  # noqa: F401  (registers the track and its models)
from alembic import context
from alembic.runtime.environment import EnvironmentContext
from samverka.store.migrations import run_env

# alembic.context is a module standing for the running EnvironmentContext.
run_env(cast(EnvironmentContext, context))
