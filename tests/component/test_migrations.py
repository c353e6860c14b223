"""The store's schema comes from its migrations (app/store/migrations), on the test's database
(SQLite, or PostgreSQL with HOLDSLAYER_TEST_DATABASE): they build exactly what the models say, a
database made before migrations is adopted with its rows, and an older one upgrades keeping them."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect, insert, text
from sqlalchemy.engine import make_url

from app.calls.models import CallStatus
from app.store import Store
from app.store import migrate
from app.store.db import create_engine_for
from app.store.models import Base

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)
FIRST = "0001"  # the schema as create_all made it before there were migrations


def schema_differences(engine, metadata: MetaData = Base.metadata) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), metadata)


def revision(engine) -> str | None:
    with engine.connect() as connection:
        return migrate.current_revision(connection)


def migrated_to(url: str, target: str, *, unversioned: bool = False):
    """An engine on a database migrated to ``target`` only; ``unversioned``: as create_all left
    databases before migrations (the tables, no alembic_version)."""
    engine = create_engine_for(url)
    with engine.begin() as connection:
        migrate.upgrade(connection, target)
        if unversioned:
            connection.execute(text("DROP TABLE alembic_version"))
    return engine


def old_rows(engine) -> None:
    """A finished call with an event and a classification segment, and a flow: rows written the
    way the first schema's Hold Slayer wrote them."""
    tables = Base.metadata.tables
    with engine.begin() as connection:
        connection.execute(
            insert(tables["calls"]).values(
                id="old", number="8005550100", intent="billing", device="sip_phone", status="completed",
                reason="bridged", created_at=T0, ended_at=T0, hold_seconds=61.5,
            )
        )  # fmt: skip
        connection.execute(
            insert(tables["call_events"]).values(
                call_id="old", seq=1, type="CALL_CREATED", at=T0, data={"number": "8005550100"}
            )
        )
        connection.execute(
            insert(tables["classifications"]).values(
                call_id="old", t_start=0.0, t_end=3.0, audio_class="MUSIC", confidence=0.8, features={"windows": 6}
            )
        )
        connection.execute(
            insert(tables["call_flows"]).values(
                id="acme", name="Acme", company="Acme Bank", phone_number="8005550100", description="",
                steps=[{"id": "hold", "type": "HOLD"}], version=3, tags=["bank"], success_count=2, fail_count=1,
                created_at=T0, updated_at=T0, stale=False,
            )
        )  # fmt: skip


def assert_old_rows_kept(store: Store) -> None:
    call = store.get_call("old")
    assert (call.status, call.intent, call.hold_seconds, call.ended_at) == (CallStatus.COMPLETED, "billing", 61.5, T0)
    assert [(e["type"], e["data"]) for e in call.events] == [("CALL_CREATED", {"number": "8005550100"})]
    assert [(c["audio_class"], c["features"]) for c in call.classifications] == [("MUSIC", {"windows": 6})]
    flow = store.get_flow("acme")
    assert (flow.version, flow.tags, flow.success_count, flow.fail_count) == (3, ["bank"], 2, 1)


def test_the_migrations_build_exactly_the_schema_of_the_models(database_url):
    store = Store(database_url)
    try:
        assert revision(store.engine) == migrate.head_revision()
        assert schema_differences(store.engine) == []
        # The comparison sees a difference when there is one: a model without one of its tables.
        fewer = MetaData()
        for table in Base.metadata.sorted_tables:
            if table.name != "line_recordings":
                table.to_metadata(fewer)
        differences = schema_differences(store.engine, fewer)
        assert ("remove_table", "line_recordings") in [(d[0], d[1].name) for d in differences]
    finally:
        store.close()


def test_opening_a_database_again_changes_nothing(database_url):
    Store(database_url).close()
    store = Store(database_url)
    try:
        assert revision(store.engine) == migrate.head_revision()
        assert schema_differences(store.engine) == []
    finally:
        store.close()


def test_a_database_made_before_migrations_is_adopted_with_its_rows(database_url):
    engine = migrated_to(database_url, FIRST, unversioned=True)
    old_rows(engine)
    assert revision(engine) is None
    engine.dispose()

    store = Store(database_url)
    try:
        assert_old_rows_kept(store)
        assert revision(store.engine) == migrate.head_revision()
        assert schema_differences(store.engine) == []
    finally:
        store.close()


def test_an_unversioned_database_from_before_a_table_existed_gets_that_table(database_url):
    # Older still: made before line_recordings was added to the models.
    engine = migrated_to(database_url, FIRST, unversioned=True)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE line_recordings"))
    old_rows(engine)
    engine.dispose()

    store = Store(database_url)
    try:
        assert_old_rows_kept(store)
        assert inspect(store.engine).has_table("line_recordings")
        store.save_line_recordings("8005550100", [b"\x01\x02"])
        assert store.line_recordings("8005550100") == [b"\x01\x02"]
        assert schema_differences(store.engine) == []
    finally:
        store.close()


def test_upgrading_a_database_of_the_first_version_keeps_its_rows(database_url):
    engine = migrated_to(database_url, FIRST)
    old_rows(engine)
    assert revision(engine) == FIRST
    engine.dispose()

    store = Store(database_url)
    try:
        assert_old_rows_kept(store)
        assert revision(store.engine) == migrate.head_revision()
        assert schema_differences(store.engine) == []
        # Tables added since (0002: the devices) start empty; the first start fills them.
        assert store.list_devices() == []
        store.apply_device_settings({"sip_phone": "PJSIP/userphone"}, "sip_phone")
        assert [(d.name, d.is_default) for d in store.list_devices()] == [("sip_phone", True)]
    finally:
        store.close()


def test_processes_opening_a_new_database_at_once_migrate_it_once(database_url):
    # Stand-ins for two processes starting together: each Store has its own engine.
    stores: list[Store] = []
    failures: list[BaseException] = []
    ready = threading.Barrier(4)

    def open_store() -> None:
        ready.wait()
        try:
            stores.append(Store(database_url))
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert failures == []
        assert len(stores) == 4
        assert revision(stores[0].engine) == migrate.head_revision()
        assert schema_differences(stores[0].engine) == []
    finally:
        for store in stores:
            store.close()


def test_the_migrations_by_hand_show_and_upgrade_the_revision(database_url, capsys):
    from app.store.__main__ import main

    assert main(["--url", database_url, "current"]) == 0
    assert capsys.readouterr().out.strip().endswith(f": no schema (newest: {migrate.head_revision()})")
    assert main(["--url", database_url, "upgrade"]) == 0
    shown = capsys.readouterr().out
    assert f": {migrate.head_revision()} (newest: {migrate.head_revision()})" in shown
    password = make_url(database_url).password
    assert not password or f":{password}@" not in shown  # a password is never printed
