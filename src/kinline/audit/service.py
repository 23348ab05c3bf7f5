# placeholder until the audit package lands
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session


def person_chain(facility_id: str, person_id: str) -> str:
    return f"person:{facility_id}:{person_id}"


def facility_chain(facility_id: str) -> str:
    return f"facility:{facility_id}"


def record_event(
    session: Session,
    *,
    facility_id: str,
    chain: str,
    actor: str,
    tag: str,
    payload: Mapping[str, object],
    at: datetime,
) -> None:
    pass
