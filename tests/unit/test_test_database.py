"""The one place that decides a test's database (tests/database.py): every backend of the run, as
variants of the same test, and the marker that selects those tests."""

from __future__ import annotations

import pytest

from tests import database


def test_a_test_with_a_database_is_marked_and_runs_on_its_variants_backend(request, database_url, database_backend):
    assert request.node.get_closest_marker("database") is not None
    assert request.node.name.endswith(f"[{database_backend}]")
    expected = {database.SQLITE: "sqlite:///", database.POSTGRESQL: "postgresql+psycopg://"}[database_backend]
    assert database_url.startswith(expected)


def test_a_test_without_one_is_not(request):
    assert request.node.get_closest_marker("database") is None
    assert "[" not in request.node.name


@pytest.mark.parametrize("server", [None, "postgresql://u:p@127.0.0.1/db"])
def test_every_backend_of_the_run_gets_a_variant_and_postgresql_only_tests_one(pytester, monkeypatch, server):
    if server is None:
        monkeypatch.delenv(database.ENV, raising=False)
    else:
        monkeypatch.setenv(database.ENV, server)
    pytester.makeconftest("from tests.conftest import pytest_generate_tests, database_backend  # noqa: F401")
    pytester.makepyfile(
        "import pytest\n"
        "def test_any(database_backend):\n    pass\n"
        "@pytest.mark.postgresql\ndef test_pg(database_backend):\n    pass\n"
        "def test_none():\n    pass\n"
    )
    items, _ = pytester.inline_genitems("-p", "no:xdist", "-W", "ignore::pytest.PytestDeprecationWarning")
    backends = ["sqlite"] if server is None else ["sqlite", "postgresql"]
    assert [item.name for item in items] == [f"test_any[{b}]" for b in backends] + ["test_pg[postgresql]", "test_none"]


def test_postgresql_is_a_variant_only_with_a_server(monkeypatch):
    monkeypatch.delenv(database.ENV, raising=False)
    assert database.backends() == (database.SQLITE,)
    monkeypatch.setenv(database.ENV, "postgresql://u:p@127.0.0.1/db")
    assert database.backends() == (database.SQLITE, database.POSTGRESQL)


def test_sqlite_is_a_file_in_the_tests_directory_whatever_the_server(monkeypatch, tmp_path):
    monkeypatch.setenv(database.ENV, "postgresql://u:p@127.0.0.1/db")
    with database.fresh_database(tmp_path, database.SQLITE) as url:
        assert url == f"sqlite:///{tmp_path / 'holdslayer.db'}"


def test_a_server_that_is_not_postgresql_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(database.ENV, "mysql://root@localhost/test")
    with pytest.raises(ValueError, match="postgresql"):
        with database.fresh_database(tmp_path, database.POSTGRESQL):
            pass


def test_postgresql_without_a_server_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv(database.ENV, raising=False)
    with pytest.raises(ValueError, match=database.ENV):
        with database.fresh_database(tmp_path, database.POSTGRESQL):
            pass
