"""Alembic's environment for the store's migrations (run by ``app.store.migrate``, never by an
``alembic.ini``): the connection comes from the caller, inside its transaction."""

from __future__ import annotations

from alembic import context

from app.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the store's migrations run through app.store.migrate (python -m app.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place: a future column change is rendered as a copy of
    # the table (batch mode); PostgreSQL alters in place.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
