"""kinline's app, writing down every SQL statement it sends (for ``authorize.py --explain``).

``create_app`` is ``kinline.api.create_app`` with a ``before_cursor_execute``
listener on every SQLAlchemy engine, and a watcher of the statements sent on
psycopg's own connection (``kinline.db.raw``): each statement the server executes is
appended, with its parameters (the first set of an ``executemany``), as one
JSON line to ``$KINLINE_BENCH_STATEMENTS.<pid>``. A short run of the load
against it gives the call path's statements and how often each runs; the
benchmark then asks PostgreSQL to EXPLAIN each distinct one on the large
database, with the parameters it was run with.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from typing import Any

from psycopg.types.json import Json, Jsonb
from sqlalchemy import event
from sqlalchemy.engine import Engine

from kinline.api import create_app as kinline_app
from kinline.db import raw

ENVIRONMENT = "KINLINE_BENCH_STATEMENTS"


def encoded(value: object) -> object:
    """A parameter as JSON: instants and dates tagged, to be read back as such."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes | memoryview):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, Json | Jsonb):  # a JSON column's value, as psycopg wraps it
        return json.dumps(value.obj)
    return str(value)  # a UUID, a Decimal: their text is what PostgreSQL reads


def decoded(value: Any) -> Any:
    """``encoded`` undone, recursively."""
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        if set(value) == {"$date"}:
            return date.fromisoformat(value["$date"])
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {key: decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value


def create_app() -> Any:
    out = open(f"{os.environ[ENVIRONMENT]}.{os.getpid()}", "a", encoding="utf-8")  # noqa: SIM115

    def written(
        connection: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if executemany and parameters:
            parameters = parameters[0]
        try:
            line = json.dumps({"sql": statement, "params": parameters}, default=encoded)
        except (TypeError, ValueError):
            line = json.dumps({"sql": statement, "params": None})
        out.write(line + "\n")
        out.flush()

    event.listen(Engine, "before_cursor_execute", written)
    # The rounds' statements go on psycopg's connection, past SQLAlchemy's events.
    raw.WATCHERS.append(lambda sql, params: written(None, None, sql, params, None, False))
    return kinline_app()
