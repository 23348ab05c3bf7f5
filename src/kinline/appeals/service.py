"""Filing, answering, extending, escalating and withdrawing appeals; one transaction each.

Every step is a row in ``appeal_steps`` and an audit event on the person's
chain, in the step's transaction. Every filing and every escalation is a
protected activity (kind ``appeal``), so the retaliation report weighs a
restriction that follows it. The deadlines and the moves between levels are
the pure model's (``kinline.appeals.model``); this module loads, applies and
stores them.

A denial by silence that the sweep records writes the person a notice, in
their language, saying what comes next (``model.silence_explained``). Filing
is open to the person, to counsel for the people they represent, and to a
family member (a contact of the person) where the facility accepts it
(``family_may_file``); the entry points check who is bound to whom.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from kinline.appeals import repository
from kinline.appeals.model import (
    AppealError,
    FiledBy,
    Level,
    LevelConfig,
    Outcome,
    Route,
    Stage,
    Status,
    answered,
    config_from_stored,
    denied_by_silence,
    escalated,
    extended,
    file_window,
    filed,
    is_overdue,
    last_day,
    parse_config,
    silence_due,
    silence_explained,
    withdrawn,
)
from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.bounds import LONG_TEXT_CHARS, NAME_CHARS, REASON_CHARS, SERIAL_MAX
from kinline.courts import repository as courts_repository
from kinline.db.engine import Database
from kinline.db.routing import cross_facility
from kinline.db.tables import AppealRow, AppealStepRow
from kinline.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    KinlineError,
    LateFiling,
    NotFound,
    WrongState,
)
from kinline.notices.model import Change, ChangeFacts
from kinline.notices.service import write_notices
from kinline.people.model import Facility, Person
from kinline.people.service import require_facility, require_person
from kinline.rules.retaliation import ProtectedActivity

SECURITY_MEASURE = "security_measure"


@dataclass(frozen=True, slots=True)
class AppealStep:
    level: int
    kind: str
    at: datetime
    actor: str
    outcome: str | None
    text: str | None
    due: datetime | None


@dataclass(frozen=True, slots=True)
class Appeal:
    id: int
    facility_id: str
    person_id: str
    notice_id: int | None
    session_id: int | None
    filed_by: str
    filer: str
    text: str
    route: str
    level: int
    level_name: str
    status: str
    event_at: datetime
    filed_at: datetime
    answer_due: datetime | None
    file_next_by: datetime | None
    extended: bool
    overdue: bool
    steps: tuple[AppealStep, ...] = ()


def _error(error: AppealError) -> KinlineError:
    if error.late:
        return LateFiling(error.message, field=error.field)
    if error.conflict:
        return WrongState(error.message, field=error.field)
    return InvalidInput(error.message, field=error.field)


def _text(value: str | None, field: str, limit: int = LONG_TEXT_CHARS) -> str:
    if value is None or not value.strip():
        raise InvalidInput("must not be blank", field=field)
    if "\x00" in value:
        raise InvalidInput("must not contain a NUL character", field=field)
    if len(value) > limit:
        raise InvalidInput(f"must be at most {limit} characters", field=field)
    return value


def _optional_text(value: str | None, field: str, limit: int = REASON_CHARS) -> str | None:
    return None if value is None or not value.strip() else _text(value, field, limit)


def _config(session: Session, facility_id: str) -> LevelConfig:
    try:
        return config_from_stored(repository.stored_levels(session, facility_id))
    except AppealError as error:  # pragma: no cover - stored levels were validated
        raise InvalidInput(error.message, field=f"appeal_levels.{error.field}") from None


def _stage(row: AppealRow) -> Stage:
    return Stage(
        level=row.level,
        level_name=row.level_name,
        status=Status(row.status),
        answer_due=row.answer_due,
        file_next_by=row.file_next_by,
        extended=row.extended,
    )


def _apply(row: AppealRow, stage: Stage) -> None:
    row.level = stage.level
    row.level_name = stage.level_name
    row.status = str(stage.status)
    row.answer_due = stage.answer_due
    row.file_next_by = stage.file_next_by
    row.extended = stage.extended


def _view(row: AppealRow, at: datetime, steps: list[AppealStepRow] | None = None) -> Appeal:
    return Appeal(
        id=row.id,
        facility_id=row.facility_id,
        person_id=row.person_id,
        notice_id=row.notice_id,
        session_id=row.session_id,
        filed_by=row.filed_by,
        filer=row.filer,
        text=row.text,
        route=row.route,
        level=row.level,
        level_name=row.level_name,
        status=row.status,
        event_at=row.event_at,
        filed_at=row.filed_at,
        answer_due=row.answer_due,
        file_next_by=row.file_next_by,
        extended=row.extended,
        overdue=is_overdue(_stage(row), at),
        steps=tuple(
            AppealStep(
                s.level,
                s.kind,
                s.at,
                s.actor,
                None if s.outcome is None else s.outcome,
                s.text,
                s.due,
            )
            for s in steps or ()
        ),
    )


def _step(
    session: Session,
    row: AppealRow,
    kind: str,
    *,
    at: datetime,
    actor: str,
    recorded_at: datetime | None = None,
    outcome: str | None = None,
    text: str | None = None,
    due: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """One step: its row and its audit event (``recorded_at``: when, if not ``at``)."""
    repository.add_step(
        session,
        AppealStepRow(
            facility_id=row.facility_id,
            appeal_id=row.id,
            level=row.level,
            kind=kind,
            at=at,
            actor=actor,
            outcome=outcome,
            text=text,
            due=due,
        ),
    )
    record_event(
        session,
        facility_id=row.facility_id,
        chain=person_chain(row.facility_id, row.person_id),
        actor=actor,
        tag=f"appeals:appeal:{kind}",
        payload={
            "appeal_id": row.id,
            "level": row.level,
            "level_name": row.level_name,
            "status": row.status,
            "at": at,
            "outcome": outcome,
            "text": text,
            "due": due,
            **(extra or {}),
        },
        at=recorded_at or at,
    )


def _protected_activity(session: Session, row: AppealRow, at: datetime, actor: str) -> str:
    """The filing as a protected activity: what later restrictions are weighed against."""
    activity_id = f"appeal-{row.id}-{row.level}"
    courts_repository.add_activity(
        session, row.facility_id, ProtectedActivity(activity_id, row.person_id, "appeal", at), actor
    )
    return activity_id


def _load(session: Session, facility_id: str, appeal_id: int) -> AppealRow:
    # An id past the column's range names no appeal (PostgreSQL would refuse it).
    in_range = 1 <= appeal_id <= SERIAL_MAX
    row = repository.get_appeal(session, facility_id, appeal_id, lock=True) if in_range else None
    if row is None:
        raise NotFound(f"no appeal {appeal_id} in {facility_id!r}", field="appeal_id")
    return row


def _not_before_last_step(session: Session, row: AppealRow, at: datetime) -> None:
    last = repository.last_step_at(session, row.facility_id, row.id)
    if last is not None and at < last:
        raise InvalidInput(
            f"must not be before the appeal's last step ({last.isoformat()})", field="at"
        )


def _levels(config: LevelConfig, row: AppealRow) -> tuple[Level, ...]:
    return config.levels(Route(row.route))


# --- configuration --------------------------------------------------------------


def appeal_levels(db: Database, facility_id: str) -> LevelConfig:
    with db.transaction() as session:
        require_facility(session, facility_id)
        return _config(session, facility_id)


def configure_appeal_levels(
    db: Database, facility_id: str, levels: object, *, actor: str, at: datetime
) -> LevelConfig:
    """Set a facility's levels: a list (the standard route) or a mapping with
    ``standard`` and ``issuing_office``. Errors name the field, as
    ``levels[1].answer_days``. Open appeals keep their level; their next
    deadlines follow the new numbers."""
    try:
        config = parse_config(levels)
    except AppealError as error:
        raise _error(error) from None
    with db.transaction() as session:
        require_facility(session, facility_id, lock=True)
        repository.store_levels(session, facility_id, config.as_stored())
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=actor,
            tag="appeals:levels:configured",
            payload={"levels": config.as_stored()},
            at=at,
        )
    return config


# --- the lifecycle ---------------------------------------------------------------


def file_appeal(
    db: Database,
    facility_id: str,
    *,
    person_id: str,
    filed_by: str,
    filer: str,
    text: str,
    at: datetime,
    actor: str,
    notice_id: int | None = None,
    session_id: int | None = None,
    route: str = "standard",
    late_reason: str | None = None,
    contact_id: str | None = None,
) -> Appeal:
    """File an appeal against one notice or one decision at the first level.

    After the first level's window it is refused, naming ``at``, unless staff
    accept it late with ``late_reason`` (the entry point checks who may).
    Filed by ``family``, it names the filer's ``contact_id``, a contact of the
    person, and the facility must accept family filings (else ``Forbidden``)."""
    try:
        who = FiledBy(filed_by)
    except ValueError:
        raise InvalidInput("must be person, counsel or family", field="filed_by") from None
    if (who is FiledBy.FAMILY) != (contact_id is not None):
        raise InvalidInput(
            "a family filing names the filer's contact_id, and only a family filing does",
            field="contact_id",
        )
    try:
        way = Route(route)
    except ValueError:
        raise InvalidInput("must be standard or issuing_office", field="route") from None
    filer_name = _text(filer, "filer", NAME_CHARS)
    body = _text(text, "text")
    late = _optional_text(late_reason, "late_reason")
    if (notice_id is None) == (session_id is None):
        raise InvalidInput("name either a notice_id or a session_id", field="notice_id")
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        # The person's row lock makes the one-open-appeal check hold under races.
        require_person(session, facility_id, person_id, lock=True)
        if contact_id is not None:
            _family_filer(session, facility_id, person_id, contact_id)
        event_at, authorities, promised = _appealed(
            session, facility, person_id, notice_id, session_id
        )
        if way is Route.ISSUING_OFFICE and SECURITY_MEASURE not in authorities:
            raise InvalidInput(
                "only a security measure may be appealed to the issuing office", field="route"
            )
        if (
            repository.open_appeal_against(
                session, facility_id, person_id, notice_id=notice_id, session_id=session_id
            )
            is not None
        ):
            field = "notice_id" if notice_id is not None else "session_id"
            raise AlreadyExists("an appeal against it is already open", field=field)
        levels = _config(session, facility_id).levels(way)
        try:
            stage = filed(
                levels,
                event_at,
                at,
                facility.zone,
                accepted_late=late is not None,
                promised=promised,
            )
        except AppealError as error:
            raise _error(error) from None
        row = repository.add_appeal(
            session,
            AppealRow(
                facility_id=facility_id,
                person_id=person_id,
                notice_id=notice_id,
                session_id=session_id,
                filed_by=str(who),
                filer=filer_name,
                text=body,
                route=str(way),
                level=stage.level,
                level_name=stage.level_name,
                status=str(stage.status),
                event_at=event_at,
                filed_at=at,
                answer_due=stage.answer_due,
                file_next_by=None,
                extended=False,
                created_at=at,
            ),
        )
        was_late = not at < file_window(levels, event_at, facility.zone, promised)
        activity = _protected_activity(session, row, at, actor)
        _step(
            session,
            row,
            "filed",
            at=at,
            actor=actor,
            text=body,
            due=stage.answer_due,
            extra={
                "person_id": person_id,
                "notice_id": notice_id,
                "session_id": session_id,
                "filed_by": str(who),
                "filer": filer_name,
                "route": str(way),
                "activity_id": activity,
                "accepted_late": late if was_late else None,
                "contact_id": contact_id,
            },
        )
        return _view(row, at, repository.steps(session, facility_id, row.id))


def _family_filer(session: Session, facility_id: str, person_id: str, contact_id: str) -> None:
    if not repository.family_may_file(session, facility_id):
        raise Forbidden(
            f"{facility_id} does not accept appeals filed by family; the person or "
            "their counsel may file",
            field="filed_by",
        )
    if repository.contact_person(session, facility_id, contact_id) != person_id:
        raise NotFound(f"no contact {contact_id!r} of {person_id!r}", field="contact_id")


def _appealed(
    session: Session,
    facility: Facility,
    person_id: str,
    notice_id: int | None,
    session_id: int | None,
) -> tuple[datetime, set[str], date | None]:
    """When the appealed change or decision took effect, the authorities behind it, and
    the last day to appeal that a notice printed."""
    if notice_id is not None:
        in_range = 1 <= notice_id <= SERIAL_MAX
        notice = repository.get_notice(session, facility.id, notice_id) if in_range else None
        if notice is None or notice.person_id != person_id:
            raise NotFound(f"no notice {notice_id} to {person_id!r}", field="notice_id")
        authorities = {notice.authority} if notice.authority else set()
        return notice.effective_at, authorities, notice.appeal_deadline
    assert session_id is not None
    in_range = 1 <= session_id <= SERIAL_MAX
    decided = repository.get_session(session, facility.id, session_id) if in_range else None
    if decided is None or decided.person_id != person_id:
        raise NotFound(f"no decision {session_id} about {person_id!r}", field="session_id")
    rules = decided.decision.get("rules", [])
    named = [str(rule) for rule in rules] if isinstance(rules, list) else []
    return decided.started_at, repository.rule_authorities(session, facility.id, named), None


def answer_appeal(
    db: Database,
    facility_id: str,
    appeal_id: int,
    *,
    outcome: str,
    text: str,
    at: datetime,
    actor: str,
) -> Appeal:
    """Staff answer the current level: granted, partially_granted or denied."""
    try:
        result = Outcome(outcome)
    except ValueError:
        raise InvalidInput(
            "must be granted, partially_granted or denied", field="outcome"
        ) from None
    body = _text(text, "text")
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        row = _load(session, facility_id, appeal_id)
        _not_before_last_step(session, row, at)
        levels = _levels(_config(session, facility_id), row)
        try:
            stage = answered(_stage(row), levels, result, at, facility.zone)
        except AppealError as error:
            raise _error(error) from None
        late = row.answer_due is not None and at >= row.answer_due
        _apply(row, stage)
        _step(
            session,
            row,
            "answered",
            at=at,
            actor=actor,
            outcome=str(result),
            text=body,
            due=stage.file_next_by,
            extra={"late": late},
        )
        return _view(row, at, repository.steps(session, facility_id, row.id))


def extend_appeal(
    db: Database, facility_id: str, appeal_id: int, *, reason: str, at: datetime, actor: str
) -> Appeal:
    """Staff take the level's one extension, before the answer is due; the person is told why."""
    body = _text(reason, "reason", REASON_CHARS)
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        row = _load(session, facility_id, appeal_id)
        _not_before_last_step(session, row, at)
        levels = _levels(_config(session, facility_id), row)
        try:
            stage = extended(_stage(row), levels, at, facility.zone)
        except AppealError as error:
            raise _error(error) from None
        _apply(row, stage)
        _step(session, row, "extended", at=at, actor=actor, text=body, due=stage.answer_due)
        return _view(row, at, repository.steps(session, facility_id, row.id))


def escalate_appeal(
    db: Database,
    facility_id: str,
    appeal_id: int,
    *,
    text: str,
    at: datetime,
    actor: str,
    late_reason: str | None = None,
) -> Appeal:
    """The filer takes the appeal to the next level after a denial, a partial grant,
    or no answer in time (recorded first as a denial by silence)."""
    body = _text(text, "text")
    late = _optional_text(late_reason, "late_reason")
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        row = _load(session, facility_id, appeal_id)
        _not_before_last_step(session, row, at)
        levels = _levels(_config(session, facility_id), row)
        current = _stage(row)
        if silence_due(current, at):
            _silence(session, row, levels, facility.zone, at=at, actor=actor)
            current = _stage(row)
        try:
            stage = escalated(current, levels, at, facility.zone, accepted_late=late is not None)
        except AppealError as error:
            raise _error(error) from None
        was_late = current.file_next_by is not None and at >= current.file_next_by
        _apply(row, stage)
        activity = _protected_activity(session, row, at, actor)
        _step(
            session,
            row,
            "escalated",
            at=at,
            actor=actor,
            text=body,
            due=stage.answer_due,
            extra={"activity_id": activity, "accepted_late": late if was_late else None},
        )
        return _view(row, at, repository.steps(session, facility_id, row.id))


def withdraw_appeal(
    db: Database,
    facility_id: str,
    appeal_id: int,
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
) -> Appeal:
    body = _optional_text(reason, "reason")
    with db.transaction() as session:
        require_facility(session, facility_id)
        row = _load(session, facility_id, appeal_id)
        _not_before_last_step(session, row, at)
        try:
            stage = withdrawn(_stage(row))
        except AppealError as error:
            raise _error(error) from None
        _apply(row, stage)
        _step(session, row, "withdrawn", at=at, actor=actor, text=body)
        return _view(row, at, repository.steps(session, facility_id, row.id))


def _silence(
    session: Session,
    row: AppealRow,
    levels: tuple[Level, ...],
    zone: ZoneInfo,
    *,
    at: datetime,
    actor: str,
    tell: tuple[Facility, Person] | None = None,
) -> None:
    """No answer in time: a denial at the instant the answer window closed.

    With ``tell``, the person is written a notice saying so and what comes next
    (the sweep's denials: an escalation that finds the silence first is the
    person's own next step already)."""
    stage = denied_by_silence(_stage(row), levels, zone)
    denied_at = row.answer_due
    assert denied_at is not None
    if tell is not None:
        _silence_notice(session, row, stage, levels, tell, denied_at=denied_at, at=at, actor=actor)
    _apply(row, stage)
    _step(
        session,
        row,
        "denied_by_silence",
        at=denied_at,
        actor=actor,
        recorded_at=at,
        outcome="denied",
        due=stage.file_next_by,
    )


def _silence_notice(
    session: Session,
    row: AppealRow,
    stage: Stage,
    levels: tuple[Level, ...],
    tell: tuple[Facility, Person],
    *,
    denied_at: datetime,
    at: datetime,
    actor: str,
) -> None:
    facility, person = tell
    zone = facility.zone
    following = levels[row.level + 1].name if stage.file_next_by is not None else None
    file_by = None if stage.file_next_by is None else last_day(stage.file_next_by, zone)
    reason = silence_explained(
        person.language,
        appeal_id=row.id,
        level_name=row.level_name,
        answer_by=last_day(denied_at, zone),
        next_level=following,
        file_by=file_by,
        family_may_file=repository.family_may_file(session, facility.id),
    )
    facts = ChangeFacts(
        change=Change.APPEAL_SILENCE,
        subject=str(row.id),
        channel="all",
        effective_at=denied_at,
        reason=reason,
    )
    write_notices(session, facility, [person], facts, at=at, actor=actor, deadline=file_by)


def sweep_appeals(
    db: Database, *, at: datetime, actor: str, facility_id: str | None = None
) -> list[int]:
    """Every pending appeal whose answer window closed by ``at`` becomes denied by
    silence, which opens the next level's window. Returns the appeals swept."""
    swept: list[int] = []
    with db.transaction() as session:
        configs: dict[str, LevelConfig] = {}
        everywhere = cross_facility("appeal-sweep") if facility_id is None else nullcontext()
        with everywhere:
            due = repository.due_for_silence(session, at, facility_id)
        for row in due:
            facility = require_facility(session, row.facility_id)
            if row.facility_id not in configs:
                configs[row.facility_id] = _config(session, row.facility_id)
            levels = _levels(configs[row.facility_id], row)
            person = require_person(session, row.facility_id, row.person_id)
            tell = (facility, person)
            _silence(session, row, levels, facility.zone, at=at, actor=actor, tell=tell)
            swept.append(row.id)
    return swept


# --- settings --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppealSettings:
    facility_id: str
    family_may_file: bool


def appeal_settings(db: Database, facility_id: str) -> AppealSettings:
    with db.transaction() as session:
        require_facility(session, facility_id)
        return AppealSettings(facility_id, repository.family_may_file(session, facility_id))


def configure_appeal_settings(
    db: Database, facility_id: str, *, family_may_file: bool, at: datetime, actor: str
) -> AppealSettings:
    """Whether family members may file appeals for the person they are a contact of."""
    with db.transaction() as session:
        require_facility(session, facility_id, lock=True)
        repository.store_family_may_file(session, facility_id, family_may_file, at=at, actor=actor)
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=actor,
            tag="appeals:settings:configured",
            payload={"family_may_file": family_may_file},
            at=at,
        )
    return AppealSettings(facility_id, family_may_file)


# --- reading ---------------------------------------------------------------------


def list_appeals(
    db: Database,
    facility_id: str,
    *,
    at: datetime,
    person_id: str | None = None,
    overdue: bool = False,
) -> list[Appeal]:
    """Appeals, oldest first; ``overdue``: those whose answer is past due at ``at``."""
    with db.transaction() as session:
        require_facility(session, facility_id)
        if person_id is not None:
            require_person(session, facility_id, person_id)
        rows = repository.list_appeals(
            session, facility_id, person_id=person_id, overdue_at=at if overdue else None
        )
        return [_view(row, at) for row in rows]


def get_appeal(db: Database, facility_id: str, appeal_id: int, *, at: datetime) -> Appeal:
    """One appeal with every step."""
    with db.transaction() as session:
        row = repository.get_appeal(session, facility_id, appeal_id)
        if row is None:
            raise NotFound(f"no appeal {appeal_id} in {facility_id!r}", field="appeal_id")
        return _view(row, at, repository.steps(session, facility_id, row.id))
