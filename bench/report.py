"""Seconds for one court order's compliance report over two years, with 200,000
sessions in the database, against a hand-written SQL aggregate of the same
numbers, on SQLite and PostgreSQL in the same run.

The database: a facility whose person ``ana`` has a court order (four calls a
month with her two children, from the first month reported), a security
measure that stood over the order for three months, and ``--mine`` sessions
of her own over the two years (completed, refused, released, expired; with
the children, her spouse, on the phone and on video); the rest of the
``--sessions`` belong to ``--people`` other people. Sessions are loaded in
bulk (executemany on SQLite, COPY on PostgreSQL), never through the call
path: this times the report, not the load.

Timed, best of ``--repeat`` rounds, each round running the report then the
floor (so that load on a shared machine falls on both):

* the report: ``courts.compliance.order_report`` without a timeline, written
  as the JSON document ``GET .../compliance?format=json`` answers
  (``report_render.json_bytes``: the bytes sent, not values still to write);
* the floor: one hand-written SQL statement counting the completed sessions
  per month of the person with the order's contacts on its channel, plus
  the arithmetic of what each month entitled.

Both must give the same entitled and delivered per month (the script exits 1
if not), and the last line is ``ratio report/sql: X`` (target <= 3).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, create_engine, make_url, text

from kinline.courts.compliance import order_report
from kinline.courts.report_render import json_bytes
from kinline.db.engine import Database
from kinline.db.migrate import upgrade
from kinline.db.tables import SessionRow
from kinline.db.types import UTCDateTime
from kinline.scenario import load_into

FACILITY = "fci-bench"
ZONE = ZoneInfo("America/Denver")
PERSON = "ana"
ORDER = "order-ana"
ORDER_CONTACTS = ("kid", "kid2")
FIRST, LAST = "2024-01", "2025-12"
START = datetime(2024, 1, 1, tzinfo=ZONE)
END = datetime(2026, 1, 1, tzinfo=ZONE)
COUNT = 4

SCENARIO = textwrap.dedent(
    f"""\
    scenario: compliance-report-bench
    facility: {{id: {FACILITY}, name: FCI Bench, timezone: America/Denver}}
    people:
      - {{id: {PERSON}, name: A. Ana, language: en}}
    contacts:
      - {{id: kid, person: ana, name: K. Ana, relationship: child,
         phones: ["+1 303 555 0100"], approved: [phone, video]}}
      - {{id: kid2, person: ana, name: L. Ana, relationship: child,
         phones: ["+1 303 555 0101"], approved: [phone]}}
      - {{id: wife, person: ana, name: W. Ana, relationship: spouse,
         phones: ["+1 303 555 0102"], approved: [phone]}}
    rules:
      - {{id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
         contacts: any, quota: {{minutes: 600, per: month}}, max_minutes: 20,
         text: Standard telephone allowance.}}
      - {{id: {ORDER}, authority: court_order, kind: grant, channel: phone, person: ana,
         contacts: {{ids: [kid, kid2]}}, quota: {{count: {COUNT}, per: month}}, max_minutes: 15,
         from: 2024-01-01, case_number: CV-42,
         text: Four calls a month with the children.}}
      - {{id: lockdown, authority: security_measure, kind: deny, channel: phone, person: ana,
         contacts: any, from: 2024-09-01, until: 2024-12-01, overrides: [{ORDER}],
         text: Calls suspended during the unit's lockdown.}}
    """
)

# What a session of ana's is, with what weight: (status, contact, channel).
MINE: list[tuple[tuple[str, str, str], int]] = [
    (("completed", "kid", "phone"), 30),
    (("completed", "kid2", "phone"), 20),
    (("completed", "wife", "phone"), 20),
    (("completed", "kid", "video"), 5),
    (("denied", "kid", "phone"), 12),
    (("denied", "kid2", "phone"), 5),
    (("released", "kid", "phone"), 4),
    (("expired", "kid2", "phone"), 4),
]


def build(db: Database, *, sessions: int, mine: int, people: int, seed: int) -> None:
    """The scenario, then ``sessions`` sessions (``mine`` of them ana's) spread
    over the two years, loaded in bulk."""
    with tempfile.TemporaryDirectory(prefix="kinline-bench-") as folder:
        path = Path(folder) / "scenario.yaml"
        path.write_text(SCENARIO)
        load_into(str(path), db)
    rows = session_rows(sessions=sessions, mine=mine, people=people, seed=seed)
    add_sessions(db, rows)


def add_sessions(db: Database, rows: list[dict[str, object]]) -> None:
    """Sessions loaded in bulk: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    if db.url.startswith("postgresql"):
        _copy(db, rows)
    else:
        with db.transaction() as session:
            for chunk in range(0, len(rows), 20_000):
                session.execute(SessionRow.__table__.insert(), rows[chunk : chunk + 20_000])


def session_rows(*, sessions: int, mine: int, people: int, seed: int) -> list[dict[str, object]]:
    picker = random.Random(seed)
    span = (END - START).total_seconds()
    kinds = [kind for kind, _ in MINE]
    weights = [weight for _, weight in MINE]
    rows: list[dict[str, object]] = []
    for index in range(sessions):
        at = START + timedelta(seconds=int(picker.random() * span))
        at = at.astimezone(UTC).replace(microsecond=0)
        if index < mine:
            status, contact, channel = picker.choices(kinds, weights)[0]
            person = PERSON
        else:
            person = f"p{picker.randrange(people):05d}"
            status, contact, channel = "completed", f"{person}-c{picker.randrange(3)}", "phone"
        refused = status == "denied"
        decision = {
            "allowed": not refused,
            "reason": "denied" if refused else None,
            "rules": ["lockdown"] if refused else ["g-phone"],
        }
        rows.append(
            {
                "facility_id": FACILITY,
                "person_id": person,
                "contact_id": contact,
                "channel": channel,
                "started_at": at,
                "minutes": 0 if refused else 12,
                "status": status,
                "reason": "denied" if refused else None,
                "charged_to": None if refused else "g-phone",
                "governed_by": [] if refused else ["g-phone"],
                "decision": decision,
                "recorded_at": at,
                "source": "recorded",
            }
        )
    return rows


def _copy(db: Database, rows: list[dict[str, object]]) -> None:
    """COPY the rows into ``sessions`` (PostgreSQL)."""
    import json

    import psycopg

    columns = list(rows[0])
    url = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        statement = f"COPY sessions ({', '.join(columns)}) FROM STDIN"
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [json.dumps(v) if isinstance(v, list | dict) else v for v in row.values()]
                )
        connection.commit()
        cursor.execute("ANALYZE sessions")
        connection.commit()


def month_bounds() -> list[tuple[str, datetime, datetime]]:
    """Each month of the range, with its first and next first instants (UTC)."""
    found = []
    year, month = START.year, START.month
    while (year, month) < (END.year, END.month):
        nxt = (year + 1, 1) if month == 12 else (year, month + 1)
        begin = datetime(year, month, 1, tzinfo=ZONE).astimezone(UTC)
        finish = datetime(nxt[0], nxt[1], 1, tzinfo=ZONE).astimezone(UTC)
        found.append((f"{year:04d}-{month:02d}", begin, finish))
        year, month = nxt
    return found


def sql_figures(db: Database) -> dict[str, tuple[int, int]]:
    """(entitled, delivered) per month: entitled by arithmetic (the order is in
    force from the first month), delivered by one SQL statement."""
    bounds = month_bounds()
    cases = " ".join(
        f"WHEN started_at >= :s{i} AND started_at < :e{i} THEN '{key}'"
        for i, (key, _, _) in enumerate(bounds)
    )
    statement = text(  # the cases are month keys made here, never input
        f"SELECT CASE {cases} END AS period, count(*) FROM sessions"  # noqa: S608
        " WHERE facility_id = :facility AND person_id = :person AND channel = 'phone'"
        " AND status = 'completed' AND contact_id IN ('kid', 'kid2')"
        " AND started_at >= :first AND started_at < :last GROUP BY period"
    ).bindparams(
        *(bindparam(f"s{i}", type_=UTCDateTime()) for i in range(len(bounds))),
        *(bindparam(f"e{i}", type_=UTCDateTime()) for i in range(len(bounds))),
        bindparam("first", type_=UTCDateTime()),
        bindparam("last", type_=UTCDateTime()),
    )
    values: dict[str, object] = {"facility": FACILITY, "person": PERSON}
    for i, (_, begin, finish) in enumerate(bounds):
        values[f"s{i}"], values[f"e{i}"] = begin, finish
    values["first"], values["last"] = bounds[0][1], bounds[-1][2]
    with db.transaction() as session:
        counted = {str(k): int(n) for k, n in session.execute(statement, values).all()}
    return {key: (COUNT, counted.get(key, 0)) for key, _, _ in bounds}


def report_document(db: Database, at: datetime) -> bytes:
    """The report's JSON document, as the API answers it (what is timed)."""
    return json_bytes(order_report(db, FACILITY, ORDER, FIRST, LAST, at=at, timeline=False))


def report_figures(db: Database, at: datetime) -> dict[str, tuple[int, int]]:
    """(entitled, delivered) per month, read back from the report's document."""
    requirement = json.loads(report_document(db, at))["requirements"][0]
    return {p["period"]: (p["entitled"], p["delivered"]) for p in requirement["periods"]}


def _best_of_each(repeat: int, *works: Callable[[], object]) -> list[float]:
    """Each work's best time over ``repeat`` rounds, the works run in turn in
    every round: on a shared machine a burst of load then falls on both
    sides, not on whichever happened to run during it."""
    best = [float("inf")] * len(works)
    for _ in range(repeat):
        for index, work in enumerate(works):
            began = time.perf_counter()
            work()
            best[index] = min(best[index], time.perf_counter() - began)
    return best


def run(url: str, args: argparse.Namespace) -> float:
    upgrade(url)
    db = Database(url)
    try:
        began = time.perf_counter()
        build(db, sessions=args.sessions, mine=args.mine, people=args.people, seed=args.seed)
        with db.transaction() as session:
            total = session.execute(text("SELECT count(*) FROM sessions")).scalar_one()
        backend = url.split(":", 1)[0]
        print(
            f"{backend}: {total:,} sessions ({args.mine:,} of the order's person) "
            f"loaded in {time.perf_counter() - began:.1f} s"
        )
        at = datetime.now(UTC)
        ours, floor = report_figures(db, at), sql_figures(db)
        if ours != floor:
            wrong = {k: (ours.get(k), floor.get(k)) for k in floor if ours.get(k) != floor[k]}
            print(f"{backend}: the report and the SQL disagree: {wrong}", file=sys.stderr)
            raise SystemExit(1)
        delivered = sum(d for _, d in floor.values())
        print(
            f"{backend}: {len(floor)} months, entitled {COUNT * len(floor)}, "
            f"delivered {delivered}: the report and the SQL agree"
        )
        report_s, sql_s = _best_of_each(
            args.repeat, lambda: report_document(db, at), lambda: sql_figures(db)
        )
        print(
            f"{backend}: report (json) {report_s * 1000:.1f} ms, sql aggregate "
            f"{sql_s * 1000:.1f} ms (ratio {report_s / sql_s:.2f})"
        )
        return report_s / sql_s
    finally:
        db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=200_000, help="sessions in all")
    parser.add_argument("--mine", type=int, default=6_000, help="of them, the order's person's")
    parser.add_argument("--people", type=int, default=2_000, help="other people")
    parser.add_argument(
        "--repeat", type=int, default=30, help="timed rounds (report, then SQL); the best counts"
    )
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--server",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where a scratch database may be created",
    )
    args = parser.parse_args(argv)
    ratios: list[float] = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="kinline-bench-report-") as folder:
            ratios.append(run(f"sqlite:///{folder}/bench.db", args))
    if args.backend in ("postgresql", "both"):
        server = make_url(args.server)
        name = f"kinline_bench_report_{uuid.uuid4().hex[:8]}"
        admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = server.set(database=name).render_as_string(hide_password=False)
            ratios.append(run(url, args))
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(f"ratio report/sql: {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
