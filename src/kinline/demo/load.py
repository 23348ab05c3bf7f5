"""The whole demo facility, as ``kinline demo`` (and so ``make run``) loads it:
the supermax scenario, its visiting sessions and the court order of case CV-17.
The browser tests load it through here too, so they see what a user sees."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from kinline.db.engine import Database
from kinline.demo.orders import load_order
from kinline.demo.visits import load_visits
from kinline.scenario import load_into
from kinline.scenariofile import Scenario

DEMO = Path(__file__).parent / "supermax-family-contact.yaml"


def load_demo(db: Database, *, at: datetime) -> Scenario:
    """Load the demo facility into an empty database; return its scenario."""
    scenario = load_into(str(DEMO), db)
    load_visits(db, scenario.facility.id, at=at)
    load_order(db, scenario.facility.id, at=at)
    return scenario
