"""Alembic environment: the URL comes from the config, else KINLINE_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from kinline.db import tables  # noqa: F401  (registers every table on the metadata)
from kinline.db.base import Base
from kinline.db.engine import configured_url, make_engine
from kinline.db.routing import cross_facility

config = context.config
url = config.get_main_option("sqlalchemy.url") or configured_url()


def run_migrations() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    # A migration may rewrite a large table: no statement timeout.
    engine = make_engine(url, statement_timeout=0)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # A migration that recreates a table (batch mode) drops it while
            # others refer to it: SQLite's way is foreign keys off for the
            # change (only possible outside a transaction, so on the driver's
            # connection before one begins) and the migration checks them after.
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


# A migration changes every facility's rows at once.
with cross_facility("migrations"):
    run_migrations()
