"""The databases the suites run on: SQLite by default, PostgreSQL when ``DATABASE_URL`` says.

``tests/settings.py`` reads ``DATABASE_URL`` here; the tests that start processes of their own
(the demo under gunicorn, the cache race) ask :func:`scratch_database` for a database of their
own on the same server.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def url() -> str | None:
    return os.environ.get("DATABASE_URL") or None


def is_postgres() -> bool:
    found = url()
    return found is not None and urlsplit(found).scheme.startswith(("postgres", "pgsql"))


def databases() -> dict[str, dict[str, Any]]:
    """``DATABASES`` for the library's suite: ``default``, and ``other`` for the tests that
    need a second database (a change saved there is announced when *it* commits)."""
    found = url()
    if found is None:
        return {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
        }
    import dj_database_url

    default: dict[str, Any] = dict(dj_database_url.parse(found))
    other = {**default, "NAME": f"{default['NAME']}_other"}
    return {"default": default, "other": other}


@contextmanager
def scratch_database(tmp: Path) -> Iterator[str]:
    """A ``DATABASE_URL`` for a database of its own, dropped afterwards: an SQLite file under
    ``tmp``, or a new database on the PostgreSQL server of ``DATABASE_URL``."""
    if not is_postgres():
        yield f"sqlite:///{tmp / 'scratch.sqlite3'}"
        return
    import psycopg

    found = url()
    assert found is not None
    parts = urlsplit(found)
    name = f"apiauth_scratch_{secrets.token_hex(4)}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
