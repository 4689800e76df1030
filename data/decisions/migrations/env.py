"""Alembic environment of the decision store, configured from Python (no alembic.ini).

`data.decisions.migrate` hands in an open connection (`config.attributes["connection"]`);
SQLite runs in batch mode, since it can alter a table only by recreating it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from data.decisions.schema import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the decision store migrates online only: use `DecisionStore(url).upgrade()`")
run_online()
