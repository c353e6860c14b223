"""The store's migrations by hand: ``python -m app.store upgrade | current | revision``.

The app migrates its database itself when it opens it; this is for looking (``current``), for
upgrading before a start (``upgrade``), and for writing the next migration after a change to
``app/store/models.py`` (``revision -m "what changed"``: Alembic compares the models with a
scratch SQLite database at the newest migration and writes the difference as a new script in
``app/store/migrations/versions``; read it, and test it on SQLite and PostgreSQL).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from alembic import command

from app.store import migrate
from app.store.db import create_engine_for, database_url, init_db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.store", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: HOLDSLAYER_DATABASE_URL, as the app reads it)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("current", help="the database's schema revision, and the newest there is")
    sub.add_parser("upgrade", help="migrate the database to the newest revision")
    revision = sub.add_parser("revision", help="write the next migration from the models' changes")
    revision.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)

    if args.command == "revision":
        print(write_revision(args.message))
        return 0
    url = args.url or _configured_url()
    engine = create_engine_for(url)
    try:
        if args.command == "upgrade":
            init_db(engine)
        with engine.connect() as connection:
            current = migrate.current_revision(connection)
        print(f"{database_url(url).render_as_string(hide_password=True)}: {current or 'no schema'} (newest: {migrate.head_revision()})")
    finally:
        engine.dispose()
    return 0


def write_revision(message: str) -> Path:
    """Autogenerate the next migration (numbered after the newest) against a scratch database."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine_for(f"sqlite:///{Path(scratch) / 'head.db'}")
        try:
            init_db(engine)
            with engine.begin() as connection:
                number = f"{int(migrate.head_revision()) + 1:04d}"
                script = command.revision(
                    migrate.alembic_config(connection), message=message, autogenerate=True, rev_id=number
                )
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def _configured_url() -> str:
    from app.config import SettingsError, load_settings

    try:
        return load_settings().database_url
    except SettingsError as error:
        sys.exit(f"python -m app.store: {error}")


if __name__ == "__main__":
    sys.exit(main())
