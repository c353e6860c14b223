"""The one place that decides a test's database (tests/database.py) and the marker that selects
those tests for the PostgreSQL run."""

from __future__ import annotations

import pytest

from tests import database


def test_a_test_with_a_database_is_marked_for_the_postgresql_run(request, database_url):
    assert request.node.get_closest_marker("database") is not None
    expected = "postgresql+psycopg://" if database.backend() == "postgresql" else "sqlite:///"
    assert database_url.startswith(expected)


def test_a_test_without_one_is_not(request):
    assert request.node.get_closest_marker("database") is None


def test_without_a_server_it_is_a_sqlite_file_in_the_tests_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(database.ENV, raising=False)
    with database.fresh_database(tmp_path) as url:
        assert url == f"sqlite:///{tmp_path / 'holdslayer.db'}"


def test_a_server_that_is_not_postgresql_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(database.ENV, "mysql://root@localhost/test")
    with pytest.raises(ValueError, match="postgresql"):
        with database.fresh_database(tmp_path):
            pass
