"""Schema migrations: Alembic scripts in ``app/store/migrations``, run from code (there is no
``alembic.ini`` to find). Every ``Store`` brings its database to the newest schema when it opens
it (``app.store.db.init_db``); ``python -m app.store`` runs them by hand and writes new ones.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# A table every database made by an earlier Hold Slayer (``create_all``) has.
LEGACY_MARKER_TABLE = "calls"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS_DIR}"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database of ``connection`` (inside the caller's transaction) to ``revision``."""
    current = current_revision(connection)
    if current is None and inspect(connection).has_table(LEGACY_MARKER_TABLE):
        # Made by create_all before migrations: 0001 creates only what it lacks and versions it.
        log.info("database without a schema version (made before migrations): adopting it")
    if current != head_revision() or revision != "head":
        log.info("migrating the database from %s to %s", current or "empty", revision)
    command.upgrade(alembic_config(connection), revision)
