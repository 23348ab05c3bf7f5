"""Round trips and CPU per authorize+end pair through the call path's lean
route, one pair after another, on a scratch PostgreSQL database.

Counts what a pair costs apart from any load: the statements kinline sends
(a ``before_cursor_execute`` listener) and its transactions (a ``commit``
listener; each is a BEGIN and a COMMIT, two more round trips), and the
process's CPU per pair (server and in-process test client together). The
people are set up as ``bench/authorize.py`` sets them up (its ``populate``).

    .venv/bin/python bench/callpath_trips.py [--pairs 200]

It also prints the bytes a pair leaves in the database (every table's size
with its indexes, before and after the measured pairs): what docs/scaling.md's
storage figures are made from.
"""

from __future__ import annotations

import argparse
import time
import uuid
import warnings
from collections.abc import Sequence

from sqlalchemy import event, text

from _support import PostgresServer
from authorize import FACILITY, Caller, migrate, populate
from kinline.api import create_app
from kinline.db.engine import Database

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

WARMUP = 20

# Every table's size with its indexes and TOAST: what the calls leave behind.
STORED = text(
    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND c.relkind = 'r'"
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=200, help="pairs measured (default 200)")
    parser.add_argument("--people", type=int, default=50, help="people set up (default 50)")
    args = parser.parse_args(argv)
    pg = PostgresServer("127.0.0.1", 5432, "postgres")
    with pg.scratch_database("kinline_trips") as database:
        url = pg.url(database)
        migrate(url)
        callers, secret = populate(url, args.people, 1, 2)
        db = Database(url)
        counts = {"statements": 0, "transactions": 0}

        def statement(*_: object) -> None:
            counts["statements"] += 1

        def commit(*_: object) -> None:
            counts["transactions"] += 1

        event.listen(db.engine, "before_cursor_execute", statement)
        event.listen(db.engine, "commit", commit)
        headers = {"Authorization": f"Bearer {secret}"}
        query = f"?facility_id={FACILITY.id}"
        with TestClient(create_app(db)) as http:

            def pair(caller: Caller) -> None:
                body = {
                    "person_id": caller.person_id,
                    "dialed": caller.dialed,
                    "idempotency_key": uuid.uuid4().hex,
                }
                held = http.post(f"/v1/calls/authorize{query}", json=body, headers=headers)
                assert held.status_code == 200 and held.json()["allowed"], held.text
                hold_id = held.json()["hold_id"]
                ended = http.post(
                    f"/v1/calls/{hold_id}/end{query}", json={"seconds": 90}, headers=headers
                )
                assert ended.status_code == 200, ended.text

            for index in range(WARMUP):
                pair(callers[index % len(callers)])
            with db.engine.connect() as connection:
                stored = int(connection.execute(STORED).scalar_one())
            counts.update(statements=0, transactions=0)
            wall, cpu = time.perf_counter(), time.process_time()
            for index in range(args.pairs):
                pair(callers[index % len(callers)])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            with db.engine.connect() as connection:
                connection.execute(text("CHECKPOINT"))
                stored = int(connection.execute(STORED).scalar_one()) - stored
        db.dispose()
    statements = counts["statements"] / args.pairs
    transactions = counts["transactions"] / args.pairs
    print(
        f"per authorize+end pair: {statements:.1f} statements in {transactions:.1f}"
        f" transactions = {statements + 2 * transactions:.1f} round trips;"
        f" CPU {1000 * cpu / args.pairs:.2f} ms (server and client), wall"
        f" {1000 * wall / args.pairs:.1f} ms; stored {stored / args.pairs:,.0f} bytes"
        " (tables, indexes, TOAST; pages are 8 KB, so measure a few thousand pairs)"
    )


if __name__ == "__main__":
    main()
