"""Every statement the call path sends is one SQLAlchemy keeps compiled.

A statement without a cache key (a multi-row VALUES, a construct without
``cache_ok``) is compiled again on every execution; on the call path that was
an eighth of a set-up's CPU. The set-ups here charge two calendar quotas, so a
hold writes two counter rows (the upsert of several rows, ``counting_pg``), and
one is ended, released and authorized again with its key replayed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _databases import DbTemplate, scenario_template
from sqlalchemy import event
from sqlalchemy.engine import default

from kinline.calls import path
from kinline.calls.ledger import counting_pg
from kinline.db.engine import Database

FACILITY = "fci-cache"
SCENARIO = textwrap.dedent(
    """\
    scenario: call path statements kept compiled
    facility: {id: fci-cache, name: FCI Cache, timezone: America/Denver}
    people:
      - {id: ana, name: A. Ana, language: en}
    contacts:
      - {id: mom, person: ana, relationship: parent, phones: ["+1 303 555 0100"],
         approved: [phone]}
    rules:
      - {id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
         contacts: any, quota: {count: 30, per: month}, max_minutes: 15,
         text: Thirty calls a month.}
      - {id: l-week, authority: facility_policy, kind: limit, channel: phone, person: all,
         contacts: any, quota: {minutes: 300, per: week}, text: Five hours a week.}
    """
)


@pytest.fixture
def db(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    return fresh_db(scenario_template(SCENARIO))


def test_every_statement_of_the_call_path_is_kept_compiled(db: Database) -> None:
    uncached: list[str] = []
    sent: list[str] = []

    def after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if not isinstance(context, default.DefaultExecutionContext) or context.compiled is None:
            return  # a driver-level statement (BEGIN, COMMIT): nothing to compile
        sent.append(statement)
        if context.cache_hit is default.NO_CACHE_KEY:
            uncached.append(statement)

    event.listen(db.engine, "after_cursor_execute", after)
    at = datetime.now(UTC)
    try:
        for index in range(3):
            call = path.authorize(
                db,
                FACILITY,
                "ana",
                dialed="+1 303 555 0100",
                idempotency_key=f"pbx-{index}",
                actor="pbx",
                at=at + timedelta(minutes=index),
            )
            assert call.allowed and call.hold_id is not None
            if index == 0:
                path.end(db, FACILITY, call.hold_id, 61, actor="pbx", at=at + timedelta(seconds=70))
            else:
                path.release(db, FACILITY, call.hold_id, actor="pbx", at=at)
        replayed = path.authorize(
            db, FACILITY, "ana", dialed="+1 303 555 0100", idempotency_key="pbx-0", actor="pbx"
        )
        assert replayed.replayed
    finally:
        event.remove(db.engine, "after_cursor_execute", after)
    assert sent, "no statement seen"
    assert uncached == []


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_the_counters_upsert_has_a_cache_key(rows: int) -> None:
    assert counting_pg(rows)._generate_cache_key() is not None
