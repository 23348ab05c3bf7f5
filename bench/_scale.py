"""The large setup of ``authorize.py`` (``--population``, ``--history``, ``--scale``).

* A person's history: ``history`` sessions of one person over two years, each
  authorized and ended through kinline's own call path (``calls.path``) at
  its moment, so its sessions, counters, rolling entries and audit events are
  exactly what kinline writes. A rolling limit (``ROLLING_LIMIT``, 30 days,
  never reached) governs that person's calls, so the history has rolling
  entries and every one of their set-ups reads a month of them.
* ``check_copy``: a few people set up through the services and the same people
  written by ``_population``'s COPY, in two scratch databases, compared table
  by table.
* ``explain``: the statements ``_statements`` wrote down during a short run,
  counted, and each distinct one EXPLAINed on the large database with the
  parameters it ran with; every scan node of every plan is listed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from _population import copy_people, differences, libpq, table_rows
from _statements import decoded
from kinline.calls.path import authorize, connect, end
from kinline.db.engine import Database

HISTORY_DAYS = 730
ROLLING_LIMIT_ID = "bench-rolling-month"


def rolling_limit(person_id: str) -> dict[str, object]:
    """A limit on the history person's calls: 100,000 in any 30 days (never reached)."""
    return {
        "id": ROLLING_LIMIT_ID,
        "authority": "facility_policy",
        "kind": "limit",
        "channel": "phone",
        "person": person_id,
        "contacts": "any",
        "quota": {"count": 100_000, "per": {"rolling_days": 30}},
        "text": "A hundred thousand calls in any 30 days.",
    }


def add_history(
    url: str,
    facility_id: str,
    person_id: str,
    dialed: str,
    count: int,
    until: datetime,
    actor: str,
) -> float:
    """``count`` calls of ``person_id`` over the ``HISTORY_DAYS`` before ``until``,
    each authorized, connected 10 s later and ended by the call path at its own
    moments; the seconds it took."""
    db = Database(url, pool_size=1, max_overflow=0)
    span = timedelta(days=HISTORY_DAYS)
    first = until - span
    began = datetime.now()
    try:
        for index in range(count):
            at = first + span * index / max(count, 1)
            call = authorize(
                db,
                facility_id,
                person_id,
                dialed=dialed,
                idempotency_key=f"history-{index}",
                actor=actor,
                at=at,
            )
            if not call.allowed or call.hold_id is None:
                raise RuntimeError(f"history call {index} at {at} was refused: {call}")
            seconds = 30 + index * 7919 % 1500
            answered = at + timedelta(seconds=10)
            connect(db, facility_id, call.hold_id, actor=actor, at=answered)
            ended = answered + timedelta(seconds=seconds)
            end(db, facility_id, call.hold_id, seconds, actor=actor, at=ended)
    finally:
        db.dispose()
    return (datetime.now() - began).total_seconds()


def check_copy(
    made_url: str,
    copied_url: str,
    facility_id: str,
    country: str,
    indices: range,
    at: datetime,
    actor: str,
    phone_of: Callable[[int], tuple[str, str]],
    admit: Callable[[Database, int, datetime], object],
) -> list[str]:
    """Admit ``indices`` through the services into one database and by COPY into the
    other (both migrated, with the facility); what differs, table by table."""
    db = Database(made_url)
    try:
        for index in indices:
            admit(db, index, at)
    finally:
        db.dispose()
    copy_people(libpq(copied_url), facility_id, country, indices, at, actor, phone_of, 1)
    return list(differences(table_rows(made_url), table_rows(copied_url)))


@dataclass(frozen=True)
class Explained:
    sql: str
    runs: int
    scans: list[str]


SCAN = re.compile(
    r"(Seq Scan|Index Only Scan|Index Scan|Bitmap Heap Scan|Bitmap Index Scan)"
    r"(?: using (\S+))? on (\S+)"
)
EXPLAINABLE = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


def statements(prefix: Path) -> tuple[Counter[str], dict[str, Any]]:
    """How often each statement ran (every worker's file), and its first parameters."""
    runs: Counter[str] = Counter()
    first: dict[str, Any] = {}
    for path in sorted(prefix.parent.glob(prefix.name + ".*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            runs[entry["sql"]] += 1
            first.setdefault(entry["sql"], decoded(entry["params"]))
    return runs, first


def explain(libpq_url: str, runs: Counter[str], first: dict[str, Any]) -> list[Explained]:
    """Each distinct statement's plan's scans, on the database at ``libpq_url``."""
    found: list[Explained] = []
    with psycopg.connect(libpq_url, autocommit=True) as connection:
        for sql, count in runs.most_common():
            if not sql.lstrip().upper().startswith(EXPLAINABLE):
                found.append(Explained(sql, count, []))
                continue
            params = first[sql]
            try:
                with connection.transaction(force_rollback=True), connection.cursor() as cursor:
                    cursor.execute("EXPLAIN " + sql, params or None)
                    plan = [row[0] for row in cursor.fetchall()]
            except psycopg.Error as error:
                found.append(Explained(sql, count, [f"(not explained: {error})"]))
                continue
            found.append(Explained(sql, count, scans_of(plan)))
    return found


# A table this small is read whole by any plan, and should be (the facilities, the rules).
SMALL_TABLE = 1_000


def table_sizes(libpq_url: str, found: Sequence[Explained]) -> dict[str, int]:
    """The estimated rows of each table a plan scans (``pg_class.reltuples``)."""
    tables = sorted(
        {
            scan.removesuffix(" (whole index)").rsplit(" ", 1)[-1]
            for item in found
            for scan in item.scans
        }
    )
    with psycopg.connect(libpq_url) as connection:
        rows = connection.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s)",
            [tables],
        ).fetchall()
    return {name: max(int(tuples), 0) for name, tuples in rows}


def scans_of(plan: Sequence[str]) -> list[str]:
    """Each scan node of a plan, as ``<kind> <index> <table>``; an index scan with
    no ``Index Cond`` (a filter on the whole index) is marked ``(whole index)``."""
    scans: list[str] = []
    for number, line in enumerate(plan):
        match = SCAN.search(line)
        if not match:
            continue
        scan = " ".join(filter(None, match.groups()))
        if match.group(1) in ("Index Scan", "Index Only Scan"):
            depth = len(line) - len(line.lstrip(" ->"))
            details = []
            for below in plan[number + 1 :]:
                if "->" in below or len(below) - len(below.lstrip(" ")) <= depth - 3:
                    break
                details.append(below)
            if not any("Index Cond" in detail for detail in details):
                scan = f"{scan} (whole index)"
        scans.append(scan)
    return scans


def report_plans(found: Sequence[Explained], pairs: int, sizes: dict[str, int]) -> bool:
    """Print the statements and their scans; True if no plan reads a table of more
    than ``SMALL_TABLE`` rows whole (sequentially, or an index without a condition)."""
    total = sum(item.runs for item in found)
    print(
        f"statements of the call path: {total} in {pairs} pairs"
        f" ({total / max(pairs, 1):.1f} a pair), {len(found)} distinct;"
        " their plans on the large database:"
    )
    index_only = True
    for item in found:
        text = " ".join(item.sql.split())
        shown = []
        for scan in item.scans:
            table = scan.removesuffix(" (whole index)").rsplit(" ", 1)[-1]
            rows = sizes.get(table)
            if scan.startswith("Seq Scan") or scan.endswith("(whole index)"):
                small = rows is not None and rows <= SMALL_TABLE
                index_only = index_only and small
                scan += f" ({rows:,} rows{', small' if small else ', LARGE'})"
            elif rows is not None:
                scan += f" ({rows:,} rows)"
            shown.append(scan)
        print(f"  {item.runs / max(pairs, 1):5.2f}/pair  {text[:110]}")
        print(f"               -> {'; '.join(shown) if shown else 'no scan'}")
    verdict = (
        f"index scans by an index condition only (tables under {SMALL_TABLE:,} rows"
        " may be read whole)"
        if index_only
        else "LARGE TABLES READ WHOLE (sequentially or by a whole index) above"
    )
    print(f"plans: {verdict}")
    return index_only
