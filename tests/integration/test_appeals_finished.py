"""Appeals, finished: the notice a denial by silence sends, the overdue list that an
answer or an escalation leaves, and filings by counsel and by family. On the supermax
scenario (R. Salazar, Spanish; his wife and daughters are his contacts), SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from _databases import SUPERMAX, DbTemplate
from _identity import person_token, token_for
from sqlalchemy import select
from typer.testing import CliRunner

from kinline.api import create_app
from kinline.appeals.model import silence_explained
from kinline.appeals.service import (
    Appeal,
    answer_appeal,
    appeal_settings,
    configure_appeal_levels,
    configure_appeal_settings,
    escalate_appeal,
    file_appeal,
    get_appeal,
    list_appeals,
    sweep_appeals,
    withdraw_appeal,
)
from kinline.audit.service import verify_log
from kinline.changes.service import impose_rule
from kinline.cli import app as cli
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, NoticeDeliveryRow
from kinline.errors import Forbidden, InvalidInput, NotFound
from kinline.identity.model import Binding, Kind
from kinline.identity.service import create_token
from kinline.notices.service import Notice, list_notices
from kinline.people.model import Person
from kinline.people.service import admit_person, edit_person

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FAC = "usp-red-mesa"
DENVER = ZoneInfo("America/Denver")
runner = CliRunner()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=DENVER).astimezone(UTC)


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


def children_notice(db: Database) -> int:
    return next(n.id for n in list_notices(db, FAC, "salazar") if n.subject == "sam-children")


def file(db: Database, when: str = "2024-05-10T09:00", **overrides: Any) -> Appeal:
    arguments: dict[str, Any] = {
        "person_id": "salazar",
        "notice_id": children_notice(db),
        "filed_by": "person",
        "filer": "R. Salazar",
        "text": "Nobody told me why calls with my daughters stopped.",
        "at": at(when),
        "actor": "kiosk",
    }
    arguments.update(overrides)
    return file_appeal(db, FAC, **arguments)


def silence_notices(db: Database) -> list[Notice]:
    return [n for n in list_notices(db, FAC, "salazar") if n.change == "appeal_silence"]


def overdue(db: Database, when: str) -> list[int]:
    return [a.id for a in list_appeals(db, FAC, at=at(when), overdue=True)]


# --- the notice of a denial by silence -------------------------------------------------


def test_a_sweep_denial_tells_the_person_in_spanish_what_comes_next(db: Database) -> None:
    appeal = file(db)
    assert silence_notices(db) == []
    assert sweep_appeals(db, at=at("2024-06-02T03:00"), actor="sweep") == [appeal.id]
    (notice,) = silence_notices(db)
    assert notice.language == "es"
    assert notice.subject == str(appeal.id)
    assert notice.title == f"Su apelación {appeal.id} queda denegada: no hubo respuesta a tiempo"
    assert notice.effective_at == at("2024-05-31T00:00")  # when the answer window closed
    # The last day to take it to the warden, not the facility's usual appeal days.
    assert notice.appeal_deadline == date(2024, 6, 20)
    assert notice.reason is not None
    assert "No hubo respuesta antes del 2024-05-30" in notice.reason
    assert "Puede llevarla al nivel warden hasta el 2024-06-20" in notice.reason
    assert "Su abogado o un familiar puede presentarla" in notice.reason
    assert notice.reason in notice.body
    # Written like every notice: its audit event on the person's chain, its deliveries.
    with db.transaction() as session:
        written = session.scalars(
            select(AuditEventRow.payload).where(AuditEventRow.tag == "notices:notice:written")
        ).all()
        deliveries = session.scalars(
            select(NoticeDeliveryRow.id).where(NoticeDeliveryRow.notice_id == notice.id)
        ).all()
    assert any(json.loads(p)["notice_id"] == notice.id for p in written)
    assert deliveries
    assert verify_log(db).problem is None
    # A second sweep finds nothing and writes nothing more.
    assert sweep_appeals(db, at=at("2024-06-03T03:00"), actor="sweep") == []
    assert len(silence_notices(db)) == 1


def test_the_notice_is_in_english_for_a_person_who_reads_english(db: Database) -> None:
    edit_person(db, FAC, "salazar", at=at("2024-05-09T09:00"), actor="records", language="en")
    appeal = file(db)
    sweep_appeals(db, at=at("2024-06-02T03:00"), actor="sweep")
    (notice,) = silence_notices(db)
    assert notice.title == f"Your appeal {appeal.id} is denied: no answer came in time"
    assert notice.reason is not None
    assert notice.reason.startswith(
        f"No answer came by 2024-05-30, so your appeal {appeal.id} is denied at the "
        "informal resolution level."
    )
    assert "You may take it to the warden level until 2024-06-20" in notice.reason


def test_at_the_last_level_the_notice_says_the_appeals_are_over(db: Database) -> None:
    configure_appeal_levels(
        db,
        FAC,
        [{"name": "warden", "file_days": 20, "answer_days": 10}],
        actor="admin",
        at=at("2024-05-01T00:00"),
    )
    appeal = file(db)
    sweep_appeals(db, at=at("2024-05-25T00:00"), actor="sweep")
    assert get_appeal(db, FAC, appeal.id, at=at("2024-05-25T00:00")).file_next_by is None
    (notice,) = silence_notices(db)
    assert notice.reason is not None
    assert "Este era el último nivel" in notice.reason
    assert "Puede llevarla" not in notice.reason


def test_without_family_filing_the_notice_names_counsel_only(db: Database) -> None:
    configure_appeal_settings(db, FAC, family_may_file=False, at=at("2024-05-01T00:00"), actor="a")
    file(db)
    sweep_appeals(db, at=at("2024-06-02T03:00"), actor="sweep")
    (notice,) = silence_notices(db)
    assert notice.reason is not None
    assert "Su abogado puede presentarla por usted." in notice.reason
    assert "familiar" not in notice.reason


def test_an_escalation_that_finds_the_silence_itself_writes_no_notice(db: Database) -> None:
    appeal = file(db)
    warden = escalate_appeal(
        db, FAC, appeal.id, text="No answer.", at=at("2024-06-05T09:00"), actor="kiosk"
    )
    assert [s.kind for s in get_appeal(db, FAC, appeal.id, at=at("2024-06-05T09:00")).steps] == [
        "filed",
        "denied_by_silence",
        "escalated",
    ]
    assert warden.level_name == "warden"
    assert silence_notices(db) == []


@pytest.mark.parametrize("language", ["en", "es", "fr"])
def test_the_words_name_the_next_level_and_its_last_day(language: str) -> None:
    words = silence_explained(
        language,
        appeal_id=7,
        level_name="warden",
        answer_by=date(2024, 5, 30),
        next_level="regional director",
        file_by=date(2024, 6, 20),
        family_may_file=True,
    )
    assert "7" in words
    assert "2024-05-30" in words
    assert "regional director" in words
    assert "2024-06-20" in words
    assert ("Puede llevarla" in words) is (language == "es")


# --- the overdue list ---------------------------------------------------------------


def test_an_answered_appeal_leaves_the_overdue_list(db: Database) -> None:
    appeal = file(db)
    assert overdue(db, "2024-05-31T00:00") == [appeal.id]
    answer_appeal(
        db, FAC, appeal.id, outcome="denied", text="No.", at=at("2024-06-01T09:00"), actor="w"
    )
    assert overdue(db, "2024-06-01T09:00") == []
    assert overdue(db, "2024-07-01T00:00") == []
    assert not get_appeal(db, FAC, appeal.id, at=at("2024-07-01T00:00")).overdue


def test_an_appeal_answered_late_after_the_sweep_leaves_the_overdue_list(db: Database) -> None:
    appeal = file(db)
    sweep_appeals(db, at=at("2024-06-02T03:00"), actor="sweep")
    assert overdue(db, "2024-06-02T03:00") == [appeal.id]
    answer_appeal(
        db,
        FAC,
        appeal.id,
        outcome="partially_granted",
        text="Calls with one daughter resume.",
        at=at("2024-06-03T09:00"),
        actor="w",
    )
    assert overdue(db, "2024-06-03T09:00") == []


@pytest.mark.parametrize("swept", [True, False], ids=["after_the_sweep", "unswept"])
def test_an_escalated_appeal_leaves_the_overdue_list_until_the_next_answer_is_due(
    db: Database, swept: bool
) -> None:
    appeal = file(db)
    if swept:
        sweep_appeals(db, at=at("2024-06-02T03:00"), actor="sweep")
    assert overdue(db, "2024-06-02T03:00") == [appeal.id]
    warden = escalate_appeal(
        db, FAC, appeal.id, text="No answer.", at=at("2024-06-03T09:00"), actor="kiosk"
    )
    assert overdue(db, "2024-06-03T09:00") == []
    assert warden.answer_due is not None
    # Overdue again only when the warden owes an answer past its own day.
    assert overdue(db, "2024-06-23T23:59") == []
    assert overdue(db, "2024-06-24T00:00") == [appeal.id]


def test_a_withdrawn_appeal_leaves_the_overdue_list(db: Database) -> None:
    appeal = file(db)
    sweep_appeals(db, at=at("2024-06-02T03:00"), actor="sweep")
    withdraw_appeal(db, FAC, appeal.id, at=at("2024-06-03T09:00"), actor="kiosk")
    assert overdue(db, "2024-06-03T09:00") == []


# --- filing on the person's behalf: services ----------------------------------------


def test_family_files_naming_their_contact_record(db: Database) -> None:
    appeal = file(db, filed_by="family", filer="E. Salazar", contact_id="wife")
    assert (appeal.filed_by, appeal.filer) == ("family", "E. Salazar")
    with db.transaction() as session:
        payloads = session.scalars(
            select(AuditEventRow.payload).where(AuditEventRow.tag == "appeals:appeal:filed")
        ).all()
    assert json.loads(payloads[-1])["contact_id"] == "wife"


def test_a_family_filing_needs_a_contact_of_that_person(db: Database) -> None:
    with pytest.raises(InvalidInput) as missing:
        file(db, filed_by="family", filer="E. Salazar")
    assert missing.value.field == "contact_id"
    with pytest.raises(InvalidInput) as stray:
        file(db, filed_by="person", contact_id="wife")
    assert stray.value.field == "contact_id"
    with pytest.raises(NotFound) as stranger:
        file(db, filed_by="family", filer="X", contact_id="nobody")
    assert stranger.value.field == "contact_id"
    assert list_appeals(db, FAC, at=at("2024-05-10T09:00")) == []


def test_a_facility_may_refuse_family_filings(db: Database) -> None:
    assert appeal_settings(db, FAC).family_may_file is True
    configure_appeal_settings(db, FAC, family_may_file=False, at=at("2024-05-01T00:00"), actor="a")
    assert appeal_settings(db, FAC).family_may_file is False
    with pytest.raises(Forbidden) as refused:
        file(db, filed_by="family", filer="E. Salazar", contact_id="wife")
    assert refused.value.field == "filed_by"
    assert file(db, filed_by="counsel", filer="D. Ruiz").filed_by == "counsel"
    with db.transaction() as session:
        tags = session.scalars(
            select(AuditEventRow.tag).where(AuditEventRow.tag == "appeals:settings:configured")
        ).all()
    assert tags == ["appeals:settings:configured"]


def test_the_family_filing_command_shows_and_sets_the_setting(db: Database) -> None:
    base = ["appeals", "family-filing", "--facility", FAC, "--database-url", db.url]
    shown = runner.invoke(cli, base)
    assert shown.exit_code == 0, shown.output
    assert f"{FAC} accepts appeals filed by family" in shown.output
    refused = runner.invoke(cli, [*base, "--refuse", "--json"])
    assert refused.exit_code == 0, refused.output
    assert json.loads(refused.output) == {"family_may_file": False}
    assert appeal_settings(db, FAC).family_may_file is False
    helped = runner.invoke(cli, ["appeals", "family-filing", "--help"])
    assert "--allow" in helped.output and "--refuse" in helped.output


# --- filing on the person's behalf: the API, through the one access policy ----------


class Caller:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client, self.token = client, token

    def file(self, **body: Any) -> httpx.Response:
        return self.client.post(
            "/v1/appeals", json=body, headers={"Authorization": f"Bearer {self.token}"}
        )


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db), raise_server_exceptions=False) as made:
        yield made


def todays_notice(db: Database) -> int:
    """A notice written now: callers other than staff file at the present moment,
    so what they appeal must still be open to appeal today (made once per test)."""
    made = [n.id for n in list_notices(db, FAC, "salazar") if n.subject == "fresh-limit"]
    if made:
        return made[0]
    rule = {
        "id": "fresh-limit",
        "authority": "facility_policy",
        "kind": "limit",
        "channel": "phone",
        "person": "salazar",
        "contacts": "any",
        "quota": {"count": 3, "per": "month"},
        "max_minutes": 15,
        "text": "Three calls a month.",
    }
    impose_rule(db, FAC, rule, at=datetime.now(UTC), actor="security")
    return next(n.id for n in list_notices(db, FAC, "salazar") if n.subject == "fresh-limit")


def filing(db: Database, **extra: Any) -> dict[str, Any]:
    return {
        "person_id": "salazar",
        "notice_id": todays_notice(db),
        "filer": "Someone",
        "text": "Calls with his daughters stopped without a reason.",
        **extra,
    }


def test_counsel_bound_to_the_person_files_as_counsel(db: Database, client: TestClient) -> None:
    counsel = Caller(
        client, token_for(db, "D. Ruiz", Kind.COUNSEL, Binding(FAC, person_id="salazar"))
    )
    # What the body claims does not decide who filed: the caller does.
    made = counsel.file(**filing(db, filed_by="person"))
    assert made.status_code == 201, made.text
    assert made.json()["filed_by"] == "counsel"


def test_counsel_for_someone_else_cannot_file(db: Database, client: TestClient) -> None:
    admit_person(db, Person(FAC, "okafor", "D. Okafor", "en"), at=at("2024-05-01T00:00"), actor="r")
    other = Caller(client, token_for(db, "Other", Kind.COUNSEL, Binding(FAC, person_id="okafor")))
    assert other.file(**filing(db)).status_code in (403, 404)
    assert list_appeals(db, FAC, at=at("2024-05-10T09:00")) == []


def test_family_of_the_person_files_as_family_where_allowed(
    db: Database, client: TestClient
) -> None:
    wife = Caller(client, token_for(db, "E. Salazar", Kind.FAMILY, Binding(FAC, contact_id="wife")))
    made = wife.file(**filing(db))
    assert made.status_code == 201, made.text
    assert made.json()["filed_by"] == "family"
    with db.transaction() as session:
        payload = session.scalars(
            select(AuditEventRow.payload).where(AuditEventRow.tag == "appeals:appeal:filed")
        ).one()
    assert json.loads(payload)["contact_id"] == "wife"


def test_family_cannot_file_where_the_facility_refuses(db: Database, client: TestClient) -> None:
    configure_appeal_settings(db, FAC, family_may_file=False, at=at("2024-05-01T00:00"), actor="a")
    wife = Caller(client, token_for(db, "E. Salazar", Kind.FAMILY, Binding(FAC, contact_id="wife")))
    refused = wife.file(**filing(db))
    assert refused.status_code == 403, refused.text
    assert refused.json()["field"] == "filed_by"
    assert list_appeals(db, FAC, at=at("2024-05-10T09:00")) == []


def test_family_cannot_file_for_someone_they_are_not_a_contact_of(
    db: Database, client: TestClient
) -> None:
    wife = Caller(client, token_for(db, "E. Salazar", Kind.FAMILY, Binding(FAC, contact_id="wife")))
    stranger = wife.file(**{**filing(db), "person_id": "someone-else"})
    assert stranger.status_code == 404, stranger.text
    # Nor may they name a contact record that is not theirs.
    theirs_not = wife.file(**filing(db, contact_id="daughter-a"))
    assert theirs_not.status_code == 403, theirs_not.text
    assert theirs_not.json()["field"] == "contact_id"


def test_staff_enter_a_familys_paper_filing(db: Database, client: TestClient) -> None:
    token = create_token(db, "records-client", "staff", at=at("2024-01-01T00:00"))[1]
    staff = Caller(client, token)
    body = filing(db, filed_by="family", contact_id="daughter-a")
    made = staff.file(**body)
    assert made.status_code == 201, made.text
    assert made.json()["filed_by"] == "family"
    withdraw_appeal(db, FAC, made.json()["id"], at=datetime.now(UTC), actor="records")
    # The person at the kiosk files as the person, whatever the body says.
    kiosk = Caller(client, person_token(db, FAC, "salazar"))
    again = kiosk.file(**{**body, "filer": "R. Salazar"})
    assert again.status_code == 201, again.text
    assert again.json()["filed_by"] == "person"
