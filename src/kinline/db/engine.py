"""The database: engine, transactions, and the configured URL.

SQLite is the embedded default. Every SQLite transaction begins IMMEDIATE, so
writers serialise on the database lock instead of failing on upgrade; on
PostgreSQL, services that need it take row locks explicitly.

A database that hangs must not hang the service: every statement is bounded
(``KINLINE_DB_STATEMENT_TIMEOUT_MS``, 15000; 0 for none: PostgreSQL's
``statement_timeout``, which also bounds a wait for a lock, and SQLite's busy
timeout, its wait for the database lock), so is a wait for a pooled connection
(``KINLINE_DB_POOL_TIMEOUT_SECONDS``, 10) and for a new one
(``KINLINE_DB_CONNECT_TIMEOUT_SECONDS``, 10). What exceeds one raises
sqlalchemy's ``OperationalError`` or ``TimeoutError``, which the API answers 503.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, NoSuchModuleError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from kinline.db import routing
from kinline.errors import ServiceUnavailable

DEFAULT_URL = "sqlite:///kinline.db"


def configured_url() -> str:
    """``KINLINE_DATABASE_URL``, else an SQLite file in the working directory."""
    return os.environ.get("KINLINE_DATABASE_URL") or DEFAULT_URL


def shown_url(url: str) -> str:
    """``url`` as it may be printed: its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def _setting(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {text!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {text!r}")
    return value


def statement_timeout_ms() -> int:
    """``KINLINE_DB_STATEMENT_TIMEOUT_MS``: the longest a statement (or a wait for a
    lock) may take, 15000; 0: no bound."""
    return int(_setting("KINLINE_DB_STATEMENT_TIMEOUT_MS", 15_000))


def pool_timeout_seconds() -> float:
    """``KINLINE_DB_POOL_TIMEOUT_SECONDS``: the longest a request waits for a pooled
    connection, 10."""
    return _setting("KINLINE_DB_POOL_TIMEOUT_SECONDS", 10.0)


def connect_timeout_seconds() -> int:
    """``KINLINE_DB_CONNECT_TIMEOUT_SECONDS``: the longest PostgreSQL may take to
    accept a new connection, 10 (at least 2: libpq's floor)."""
    return max(2, int(_setting("KINLINE_DB_CONNECT_TIMEOUT_SECONDS", 10)))


def make_engine(url: str, *, statement_timeout: int | None = None, **kwargs: Any) -> Engine:
    """An engine on ``url`` whose statements are bounded by ``statement_timeout``
    milliseconds (None: ``KINLINE_DB_STATEMENT_TIMEOUT_MS``; 0: no bound), and,
    under ``KINLINE_ROUTING_CHECK=1``, checked to route to one facility's shard."""
    engine = _bounded_engine(url, statement_timeout, **kwargs)
    routing.installed_from_environment(engine)
    return engine


def _bounded_engine(url: str, statement_timeout: int | None, **kwargs: Any) -> Engine:
    timeout_ms = statement_timeout_ms() if statement_timeout is None else statement_timeout
    kwargs.setdefault("pool_timeout", pool_timeout_seconds())
    if url.startswith("sqlite"):
        # SQLite cannot cut a running statement short; what hangs is a wait for
        # the database lock, bounded by the busy timeout (0: wait, as before, 30 s).
        busy_ms = timeout_ms or 30_000
        engine = create_engine(url, connect_args={"timeout": busy_ms / 1000}, **kwargs)
        _make_sqlite_transactional(engine, busy_ms)
        return engine
    if url.startswith("postgresql"):
        connect_args: dict[str, Any] = {"connect_timeout": connect_timeout_seconds()}
        given = make_url(url).query.get("options")
        options = given if isinstance(given, str) else " ".join(given or ())
        # Sessions in UTC (the URL's own options after, so one may say
        # otherwise): psycopg then gives instants with ``datetime.UTC`` itself,
        # which ``UTCDateTime`` keeps as they are instead of converting each.
        options = f"-c timezone=UTC {options}".strip()
        if timeout_ms:
            options = f"{options} -c statement_timeout={timeout_ms}"
        connect_args["options"] = options
        kwargs["connect_args"] = {**connect_args, **kwargs.get("connect_args", {})}
    if url.startswith("postgresql"):
        # No ping per checkout (a round trip before every transaction, four per
        # call set-up and end): a connection known broken is replaced for free,
        # and one the server dropped unseen fails its first statement, which
        # makes SQLAlchemy drop the whole pool; that request is answered 503
        # with nothing written, the next one gets a new connection.
        kwargs.setdefault("pool_pre_ping", False)
        engine = create_engine(url, **_pooled(kwargs))
        event.listen(engine, "checkout", _replace_broken)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **_pooled(kwargs))


def _pooled(kwargs: dict[str, Any]) -> dict[str, Any]:
    # As many connections as the server runs requests at once (its thread pool
    # holds 40), so a busy process reuses connections instead of opening new ones.
    kwargs.setdefault("pool_size", int(os.environ.get("KINLINE_DB_POOL_SIZE", "20")))
    kwargs.setdefault("max_overflow", 20)
    return kwargs


def _replace_broken(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the driver already knows is closed or broken is not
    handed out (``DisconnectionError`` makes the pool open another)."""
    if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
        raise DisconnectionError("the pooled connection is closed")


def _make_sqlite_transactional(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine and its sessions; ``transaction()`` is the only way to write."""

    def __init__(self, url: str | None = None, **engine_kwargs: Any) -> None:
        self.url = url or configured_url()
        try:
            self.engine = make_engine(self.url, **engine_kwargs)
        except (ArgumentError, NoSuchModuleError) as error:
            raise ServiceUnavailable(
                f"{shown_url(self.url)} is not a database URL kinline can open: {error}",
            ) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def ensure_reachable(self) -> None:
        """Connect once, or raise ``ServiceUnavailable`` saying which database
        (password hidden) cannot be reached and why, in one line: what a command
        or a server that is starting tells its user instead of a traceback."""
        try:
            with self.engine.connect():
                pass
        except (DBAPIError, PoolTimeout) as error:
            cause = getattr(error, "orig", None) or error
            reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            raise ServiceUnavailable(
                f"cannot reach the database at {shown_url(self.url)}: {reason}",
            ) from None

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
