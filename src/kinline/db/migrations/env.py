"""Alembic environment: the URL comes from the config, else KINLINE_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from kinline.db import tables  # noqa: F401  (registers every table on the metadata)
from kinline.db.base import Base
from kinline.db.engine import configured_url, make_engine

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
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
