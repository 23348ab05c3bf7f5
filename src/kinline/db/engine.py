"""The database: engine, transactions, and the configured URL.

SQLite is the embedded default. Every SQLite transaction begins IMMEDIATE, so
writers serialise on the database lock instead of failing on upgrade; on
PostgreSQL, services that need it take row locks explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///kinline.db"


def configured_url() -> str:
    """``KINLINE_DATABASE_URL``, else an SQLite file in the working directory."""
    return os.environ.get("KINLINE_DATABASE_URL") or DEFAULT_URL


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _make_sqlite_transactional(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # As many connections as the server runs requests at once (its thread pool
    # holds 40), so a busy process reuses connections instead of opening new ones.
    kwargs.setdefault("pool_size", int(os.environ.get("KINLINE_DB_POOL_SIZE", "20")))
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _make_sqlite_transactional(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine and its sessions; ``transaction()`` is the only way to write."""

    def __init__(self, url: str | None = None, **engine_kwargs: Any) -> None:
        self.url = url or configured_url()
        self.engine = make_engine(self.url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def core(session: Session) -> Connection:
    """The session's connection, for statements built once and run without the
    ORM (the hot paths), after the session's pending changes are flushed, as
    an ORM query would autoflush them."""
    session.flush()
    return session.connection()
