"""Engine creation and schema set-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from psycopg.types.string import StrDumperUnknown
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import StaticPool

from app.store import migrate

# Execution option: open the transaction with BEGIN IMMEDIATE (SQLite). A deferred transaction
# that reads and then writes can fail at once with "database is locked" when another connection
# committed in between, whatever the busy timeout; taking the write lock up front makes it wait.
WRITE_TRANSACTION = "holdslayer_write_transaction"

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# PostgreSQL advisory locks (transaction-scoped): held while migrating, so that two processes
# starting at once take turns; and by the writes that read before they write (a flow stored if
# new, the devices' one default), which SQLite serialises with BEGIN IMMEDIATE.
MIGRATION_LOCK_KEY = 0x486F6C64  # "Hold"
EXCLUSIVE_WRITE_LOCK_KEY = 0x486F6C65


class _NulSafeStrDumper(StrDumperUnknown):
    """PostgreSQL text cannot hold a NUL character, which JSON, a URL or a flow file can carry:
    it is stored (and looked up) as U+FFFD, the replacement character, rather than failing the
    request. SQLite keeps it as it is."""

    def dump(self, obj: str):  # type: ignore[override]
        return super().dump(obj.replace("\x00", "\ufffd"))


def is_sqlite_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def database_url(url: str) -> URL:
    """``url`` as SQLAlchemy takes it; a PostgreSQL URL without a driver (``postgresql://``,
    ``postgres://``) gets psycopg 3, the driver Hold Slayer ships with."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engine_for(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and thread-safe settings."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        engine = create_engine(parsed, pool_pre_ping=True)

        @event.listens_for(engine, "connect")
        def _nul_safe(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.adapters.register_dumper(str, _NulSafeStrDumper)

        return engine
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)

    if is_sqlite_memory(url):
        # One shared connection, or every thread would see its own empty database.
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
        )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (below): the driver's own transaction handling does not
        # begin on SELECT and cannot BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL, much faster
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_TRANSACTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def init_db(engine: Engine) -> None:
    """Bring the database to the newest schema (``app.store.migrate``), in one transaction that
    holds the write lock (SQLite) or an advisory lock (PostgreSQL): a second process starting at
    the same moment waits, then finds nothing left to do."""
    with engine.execution_options(**{WRITE_TRANSACTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        migrate.upgrade(connection)
