"""The demo facility's visits, loaded by ``kinline demo`` after its scenario file.

The scenario file is the rules contract shared with other implementations, and
it has no visiting rooms or visitors, so they are added here through the same
services the API and the CLI use. What it sets up is the motivating case:

* a non-contact visiting room (the facility holds him under special security
  measures: visits behind glass) open on Saturday and Sunday mornings, and a
  video suite on Tuesday and Thursday evenings, after school in Mexico;
* video visits as a facility policy (four a month), beside the scenario's
  in-person visits;
* his twin daughters in Mexico, who have no visas, approved as video visitors
  (ID checked: Mexican passports), their times shown in Mexico City's;
* his wife in Los Angeles, a released former co-defendant on supervised
  release, whose application waits on both keys: her supervising officer's
  consent and the warden's decision.
"""

from __future__ import annotations

from datetime import date, datetime, time

from kinline.changes.service import impose_rule
from kinline.changes.visitors import decide_visitor
from kinline.db.engine import Database
from kinline.rules.model import Channel
from kinline.visits import sessions, visitors
from kinline.visits.model import Supervision, Verdict
from kinline.visits.visitors import Application

ACTOR = "kinline:demo"
OPENED = date(2024, 1, 6)  # the first Saturday of the year the scenario starts in

VIDEO_RULE = {
    "id": "policy-video",
    "authority": "facility_policy",
    "kind": "grant",
    "channel": "video",
    "person": "all",
    "contacts": "any",
    "quota": {"count": 4, "per": "month"},
    "max_minutes": 45,
    "text": "Video visiting.",
}

# (id, room, weekday, start, end, kind, open places, closed places)
TEMPLATES = (
    ("booths-sat", "visiting-room", 5, time(8, 30), time(11, 30), "non_contact", 3, 1),
    ("booths-sun", "visiting-room", 6, time(8, 30), time(11, 30), "non_contact", 3, 1),
    ("video-tue", "video-suite", 1, time(17, 0), time(17, 45), "video", 2, 0),
    ("video-thu", "video-suite", 3, time(17, 0), time(17, 45), "video", 2, 0),
)

DAUGHTERS = (
    ("daughter-a", "G41920377"),
    ("daughter-b", "G41920378"),
)


def load_visits(db: Database, facility_id: str, *, at: datetime) -> None:
    """Rooms, session templates, the video rule and the family's applications."""
    sessions.add_room(
        db, facility_id, "visiting-room", "Non-contact visiting room", actor=ACTOR, at=at
    )
    sessions.add_room(db, facility_id, "video-suite", "Video visiting suite", actor=ACTOR, at=at)
    for template_id, room, weekday, starts, ends, kind, places, closed in TEMPLATES:
        sessions.add_template(
            db,
            facility_id,
            template_id,
            room_id=room,
            weekday=weekday,
            starts=starts,
            ends=ends,
            kind=kind,
            capacity_open=places,
            capacity_closed=closed,
            valid_from=OPENED,
            actor=ACTOR,
            at=at,
        )
    impose_rule(db, facility_id, VIDEO_RULE, at=at, actor=ACTOR, in_force_at_start=True)
    for contact_id, passport in DAUGHTERS:
        daughter = visitors.apply(
            db,
            facility_id,
            Application(
                contact_id=contact_id,
                date_of_birth=date(2005, 2, 14),
                address="Av. Insurgentes Sur 1602, Ciudad de México",
                country="MX",
                criminal_record_declared=False,
                timezone="America/Mexico_City",
            ),
            at=at,
            actor=ACTOR,
        )
        visitors.check_id(
            db,
            facility_id,
            daughter.id,
            document_type="passport",
            document_number=passport,
            at=at,
            actor=ACTOR,
        )
        decide_visitor(
            db,
            facility_id,
            daughter.id,
            verdict=Verdict.APPROVE,
            reason="Daughter; identity checked (Mexican passport). No visa: video visits.",
            at=at,
            actor=ACTOR,
            channels=(Channel.VIDEO,),
        )
    wife = visitors.apply(
        db,
        facility_id,
        Application(
            contact_id="wife",
            date_of_birth=date(1979, 8, 2),
            address="1420 W 6th St, Los Angeles, CA 90017",
            country="US",
            criminal_record_declared=True,
            criminal_record="Co-defendant in his case; served her sentence, released in 2023.",
            supervision=Supervision.SUPERVISED_RELEASE,
            supervising_officer="K. Marsh",
            supervising_office="U.S. Probation Office, Central District of California",
            co_defendant=True,
        ),
        at=at,
        actor=ACTOR,
    )
    visitors.check_id(
        db,
        facility_id,
        wife.id,
        document_type="driving_licence",
        document_number="D4471920",
        at=at,
        actor=ACTOR,
    )
