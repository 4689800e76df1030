"""Decision-store databases for the tests, on both backends the store supports.

`decision_db_url` is parametrized over `sqlite` (a file in the test's temporary folder) and
`postgres` (a database of its own, created for the test and dropped after it, on one real
PostgreSQL 16 server that `pgserver` starts once per session from its wheel, in a temporary
folder, listening on a Unix socket only). `decision_store` is a migrated store on that URL.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from data.decisions import DecisionStore

BACKENDS = ("sqlite", "postgres")
_database_numbers = itertools.count(1)


def postgres_url(server: Any, database: str) -> str:
    """SQLAlchemy URL (psycopg 3) of `database` on a pgserver server."""
    return server.get_uri(database).replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One PostgreSQL server for the session, stopped and removed at the end."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
        warnings.simplefilter("ignore")
        import pgserver

        folder = Path(tempfile.mkdtemp(prefix="solvency-pg-"))
        server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def decision_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend, never migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'decisions' / 'decisions.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"test_{next(_database_numbers)}"
    admin = sa.create_engine(
        postgres_url(server, "postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url(server, name)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def decision_store(decision_db_url: str) -> Iterator[DecisionStore]:
    """A store migrated to the current revision."""
    store = DecisionStore(decision_db_url)
    store.upgrade()
    try:
        yield store
    finally:
        store.close()
