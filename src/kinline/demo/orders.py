"""The demo's court order as a record: case CV-17, whose rule ``order-17`` the
scenario file imposes (two 15-minute calls a month with his daughters), with
the judge who signed it, the court and the counsel of record, so the order's
pages, conflicts and reports have an order to show."""

from __future__ import annotations

from datetime import datetime

from kinline.changes.court_orders import record_order
from kinline.db.engine import Database

ACTOR = "kinline:demo"

ORDER_17 = {
    "id": "cv-17",
    "court": "United States District Court for the District of Colorado",
    "case_number": "CV-17",
    "judge": "Hon. M. Alvarez",
    "signed_on": "2023-06-20",
    "person": "salazar",
    "text": (
        "The Bureau of Prisons shall permit the petitioner, R. Salazar, two telephone "
        "calls of fifteen minutes each calendar month with each of, or together, his "
        "daughters A. Salazar and M. Salazar, from July 1, 2023, until further order."
    ),
    "counsel": [{"name": "D. Ruiz, Law Office of D. Ruiz", "email": "druiz@ruizlaw.example"}],
    "court_address": "Alfred A. Arraj U.S. Courthouse\n901 19th Street\nDenver, CO 80294",
    "court_email": "cv17-chambers@cod.uscourts.example",
    "existing_rules": ["order-17"],
}


def load_order(db: Database, facility_id: str, *, at: datetime) -> None:
    """Record order CV-17 as the order of the scenario's rule ``order-17``."""
    record_order(db, facility_id, ORDER_17, at=at, actor=ACTOR)
