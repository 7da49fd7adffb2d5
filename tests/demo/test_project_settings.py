from __future__ import annotations

import pytest

from project.settings import database_from_url, env_bool, env_list


def test_sqlite_urls() -> None:
    db = database_from_url("sqlite:////tmp/x.db")
    assert (db["ENGINE"], db["NAME"]) == ("django.db.backends.sqlite3", "/tmp/x.db")
    assert db["OPTIONS"] == {"transaction_mode": "IMMEDIATE", "timeout": 20}
    assert (db["CONN_MAX_AGE"], db["CONN_HEALTH_CHECKS"]) == (600, True)
    assert database_from_url("sqlite:///db.sqlite3")["NAME"] == "db.sqlite3"
    assert database_from_url("sqlite://")["NAME"] == ":memory:"


def test_postgres_url() -> None:
    db = database_from_url("postgres://app:p%40ss@db.internal:5433/api")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "app",
        "p@ss",
        "db.internal",
        5433,
        "api",
    )
    assert (db["CONN_MAX_AGE"], db["CONN_HEALTH_CHECKS"]) == (600, True)
    assert "OPTIONS" not in db or "transaction_mode" not in db["OPTIONS"]


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError):
        database_from_url("nosuch://x/y")


def test_env_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "yes")
    monkeypatch.setenv("ITEMS", " a, ,b ")
    assert env_bool("FLAG") and not env_bool("MISSING")
    assert env_list("ITEMS") == ["a", "b"]
