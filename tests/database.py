"""The database of every test that opens a store or starts the app, decided in one place.

Every such test runs once per backend of the run (``backends``): on a SQLite file in the test's
own directory, and, with ``HOLDSLAYER_TEST_DATABASE`` set to a PostgreSQL server URL whose role
may create databases (``postgresql://user:password@host/postgres``, as ``scripts/test`` sets it),
again on a PostgreSQL database of its own, created for it and dropped after it, so tests on
parallel workers never meet. Both variants are items of the same pytest run (``test_x[sqlite]``,
``test_x[postgresql]``), so they share its workers instead of running one suite after the other.

Tests ask for it through the ``database_url`` fixture (``module_database_url`` for a module's
shared app, ``database_backend`` for the backend's name alone); ``conftest.py`` parametrises
them by backend and marks them ``database`` (``-m database`` selects them). A test marked
``postgresql`` runs on PostgreSQL only (worker processes, LISTEN/NOTIFY), skipped without a server.
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
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
FIXTURES = frozenset({"database_url", "module_database_url", "database_backend"})


def server_url() -> str | None:
    return os.environ.get(ENV) or None


def backends() -> tuple[str, ...]:
    """The backends a test that opens a database runs on: SQLite, and PostgreSQL when a server is given."""
    return (SQLITE, POSTGRESQL) if server_url() else (SQLITE,)


@contextmanager
def fresh_database(directory: Path, backend: str) -> Iterator[str]:
    """The URL of an empty database of ``backend``, gone afterwards (SQLite: a file in ``directory``)."""
    if backend == SQLITE:
        yield f"sqlite:///{directory / 'holdslayer.db'}"
        return
    if backend != POSTGRESQL:
        raise ValueError(f"no such test database backend: {backend!r}")
    server = server_url()
    if server is None:
        raise ValueError(f"a PostgreSQL test database needs {ENV}")
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
