"""The database of every test that opens a store or starts the app, decided in one place.

By default a SQLite file in the test's own directory. With ``HOLDSLAYER_TEST_DATABASE`` set to a
PostgreSQL server URL whose role may create databases (``postgresql://user:password@host/postgres``,
as ``scripts/test-postgres`` sets it), each test gets a database of its own, created for it and
dropped after it, so tests on parallel workers never meet.

Tests ask for it through the ``database_url`` fixture (``module_database_url`` for a module's
shared app); ``conftest.py`` marks every test that does ``database``, which is how
``scripts/test -m database`` selects the tests to run again on PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ENV = "HOLDSLAYER_TEST_DATABASE"
FIXTURES = frozenset({"database_url", "module_database_url"})


def server_url() -> str | None:
    return os.environ.get(ENV) or None


def backend() -> str:
    return "postgresql" if server_url() else "sqlite"


@contextmanager
def fresh_database(directory: Path) -> Iterator[str]:
    """The URL of an empty database, gone afterwards (SQLite: a file in ``directory``)."""
    server = server_url()
    if server is None:
        yield f"sqlite:///{directory / 'holdslayer.db'}"
        return
    given = make_url(server)
    if given.get_backend_name() != "postgresql":
        raise ValueError(f"{ENV} must be a postgresql:// URL, not {given.get_backend_name()}")
    admin = given.set(drivername="postgresql+psycopg")
    name = f"hs_test_{uuid.uuid4().hex[:16]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            # FORCE: connections the test left open (an engine not disposed, a killed subprocess).
            with engine.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        engine.dispose()
