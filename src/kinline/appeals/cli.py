"""``kinline appeals``: file, answer, extend, escalate, withdraw and sweep appeals;
list them; show and set a facility's appeal levels and whether family may file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich import box
from rich.table import Table

from kinline.appeals import service
from kinline.appeals.model import LevelConfig, Route, last_day
from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    friendly,
    moment,
    opened,
    print_json,
)
from kinline.errors import InvalidInput, not_utf8
from kinline.people.model import Facility
from kinline.rules.periods import local

app = typer.Typer(no_args_is_help=True)
levels_app = typer.Typer(
    help="A facility's appeal levels and their deadlines.", no_args_is_help=True
)
app.add_typer(levels_app, name="levels")

AtOption = Annotated[
    str | None,
    typer.Option(
        "--at", help="Local wall time in the facility (ISO 8601, no offset); default now."
    ),
]
ActorOption = Annotated[
    str, typer.Option("--actor", help="Who does this, as the audit log records it.")
]
AppealArgument = Annotated[int, typer.Argument(help="The appeal's id.", min=1)]
LateOption = Annotated[
    str | None,
    typer.Option("--late-reason", help="Accept it after its window closed, and why (staff)."),
]
DEFAULT_ACTOR = "kinline:cli"


def _wall(value: Any, place: Facility) -> str | None:
    return None if value is None else local(value, place.zone).isoformat()


def _day(value: Any, place: Facility) -> str | None:
    return None if value is None else last_day(value, place.zone).isoformat()


def _as_dict(appeal: service.Appeal, place: Facility) -> dict[str, Any]:
    result: dict[str, Any] = {
        "id": appeal.id,
        "person_id": appeal.person_id,
        "notice_id": appeal.notice_id,
        "session_id": appeal.session_id,
        "filed_by": appeal.filed_by,
        "filer": appeal.filer,
        "route": appeal.route,
        "level": appeal.level,
        "level_name": appeal.level_name,
        "status": appeal.status,
        "event_at": _wall(appeal.event_at, place),
        "filed_at": _wall(appeal.filed_at, place),
        "answer_by": _day(appeal.answer_due, place),
        "escalate_by": _day(appeal.file_next_by, place),
        "extended": appeal.extended,
        "overdue": appeal.overdue,
        "text": appeal.text,
    }
    if appeal.steps:
        result["steps"] = [
            {
                "level": step.level,
                "kind": step.kind,
                "at": _wall(step.at, place),
                "actor": step.actor,
                "outcome": step.outcome,
                "text": step.text,
                "due": _day(step.due, place),
            }
            for step in appeal.steps
        ]
    return result


def _print(appeals: list[service.Appeal], place: Facility, as_json: bool) -> None:
    rows = [_as_dict(appeal, place) for appeal in appeals]
    if as_json:
        print_json(rows)
        return
    table = Table(
        "id", "person", "against", "level", "status", "answer by", "next by", box=box.SIMPLE_HEAD
    )
    for appeal, row in zip(appeals, rows, strict=True):
        against = (
            f"notice {appeal.notice_id}"
            if appeal.notice_id is not None
            else f"decision {appeal.session_id}"
        )
        status = f"{row['status']} (overdue)" if appeal.overdue else str(row["status"])
        table.add_row(
            str(appeal.id),
            appeal.person_id,
            against,
            appeal.level_name,
            status,
            row["answer_by"] or "",
            row["escalate_by"] or "",
        )
    console.print(table)
    console.print(f"{len(appeals)} appeals")


def _one(appeal: service.Appeal, place: Facility, as_json: bool, said: str) -> None:
    if as_json:
        print_json(_as_dict(appeal, place))
        return
    row = _as_dict(appeal, place)
    console.print(
        f"appeal {appeal.id} {said}: {appeal.level_name}, {appeal.status}"
        + (f", answer by {row['answer_by']}" if appeal.status == "pending" else "")
        + (f", escalate by {row['escalate_by']}" if row["escalate_by"] else "")
    )


@app.command("list", help="List appeals, oldest first.")
@friendly
def list_command(
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only appeals whose answer is past due.")
    ] = False,
    person: Annotated[str | None, typer.Option("--person", help="Only this person's.")] = None,
    at: AtOption = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        appeals = service.list_appeals(
            db, place.id, at=moment(at, place), person_id=person, overdue=overdue
        )
        _print(appeals, place, as_json)


@app.command("show", help="Show one appeal with every step.")
@friendly
def show_command(
    appeal_id: AppealArgument,
    at: AtOption = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        appeal = service.get_appeal(db, place.id, appeal_id, at=moment(at, place))
        if as_json:
            print_json(_as_dict(appeal, place))
            return
        _print([appeal], place, False)
        table = Table("level", "step", "at", "by", "outcome", "due", "text", box=box.SIMPLE_HEAD)
        for step in appeal.steps:
            table.add_row(
                str(step.level),
                step.kind,
                str(_wall(step.at, place))[:16],
                step.actor,
                step.outcome or "",
                _day(step.due, place) or "",
                step.text or "",
            )
        console.print(table)


@app.command("file", help="File an appeal against a notice or a decision.")
@friendly
def file_command(
    person: Annotated[str, typer.Option("--person", help="Who appeals (person id).")],
    text: Annotated[str, typer.Option("--text", help="The appeal, in free text.")],
    filer: Annotated[str, typer.Option("--filer", help="The filer's name.")],
    notice: Annotated[
        int | None, typer.Option("--notice", help="The notice appealed against.")
    ] = None,
    session: Annotated[
        int | None,
        typer.Option("--session", help="Or the decision appealed against (a session id)."),
    ] = None,
    filed_by: Annotated[
        str, typer.Option("--filed-by", help="person, counsel or family.")
    ] = "person",
    contact: Annotated[
        str | None,
        typer.Option(
            "--contact",
            help="With --filed-by family: the filer's contact record (a contact of the person).",
        ),
    ] = None,
    route: Annotated[
        str,
        typer.Option("--route", help="standard, or issuing_office for a security measure."),
    ] = "standard",
    late_reason: LateOption = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        appeal = service.file_appeal(
            db,
            place.id,
            person_id=person,
            notice_id=notice,
            session_id=session,
            filed_by=filed_by,
            contact_id=contact,
            filer=filer,
            text=text,
            route=route,
            at=moment(at, place),
            actor=actor,
            late_reason=late_reason,
        )
        _one(appeal, place, as_json, "filed")


@app.command("answer", help="Answer an appeal at its current level (staff).")
@friendly
def answer_command(
    appeal_id: AppealArgument,
    outcome: Annotated[
        str, typer.Option("--outcome", help="granted, partially_granted or denied.")
    ],
    text: Annotated[str, typer.Option("--text", help="The answer, with its reasons.")],
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        appeal = service.answer_appeal(
            db, place.id, appeal_id, outcome=outcome, text=text, at=moment(at, place), actor=actor
        )
        _one(appeal, place, as_json, "answered")


@app.command("extend", help="Take the level's one extension of the time to answer (staff).")
@friendly
def extend_command(
    appeal_id: AppealArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why more time; the person is told.")],
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        appeal = service.extend_appeal(
            db, place.id, appeal_id, reason=reason, at=moment(at, place), actor=actor
        )
        _one(appeal, place, as_json, "extended")


@app.command(
    "escalate",
    help="Take an appeal to the next level after a denial, a partial grant or no answer in time.",
)
@friendly
def escalate_command(
    appeal_id: AppealArgument,
    text: Annotated[str, typer.Option("--text", help="The appeal to the next level.")],
    late_reason: LateOption = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        appeal = service.escalate_appeal(
            db,
            place.id,
            appeal_id,
            text=text,
            at=moment(at, place),
            actor=actor,
            late_reason=late_reason,
        )
        _one(appeal, place, as_json, "escalated")


@app.command("withdraw", help="Withdraw an appeal that is still open.")
@friendly
def withdraw_command(
    appeal_id: AppealArgument,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, if the filer says.")] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        appeal = service.withdraw_appeal(
            db, place.id, appeal_id, reason=reason, at=moment(at, place), actor=actor
        )
        _one(appeal, place, as_json, "withdrawn")


@app.command(
    "sweep",
    help="Record a denial by silence for every appeal whose answer is past due; "
    "it opens the next level's window.",
)
@friendly
def sweep_command(
    at: AtOption = None,
    actor: ActorOption = "kinline:sweep",
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        swept = service.sweep_appeals(db, at=moment(at, place), actor=actor, facility_id=place.id)
        if as_json:
            print_json({"denied_by_silence": swept})
            return
        console.print(f"{len(swept)} appeals denied by silence")


def _levels_dict(config: LevelConfig) -> dict[str, list[dict[str, object]]]:
    return {str(route): [level.as_dict() for level in config.levels(route)] for route in Route}


@levels_app.command("show", help="Show the facility's appeal levels (default: the federal ones).")
@friendly
def levels_show(
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        config = service.appeal_levels(db, place.id)
        if as_json:
            print_json(_levels_dict(config))
            return
        table = Table(
            "route",
            "#",
            "level",
            "file",
            "answer",
            "extension",
            box=box.SIMPLE_HEAD,
            caption="calendar days",
        )
        for route in Route:
            for index, level in enumerate(config.levels(route)):
                table.add_row(
                    str(route),
                    str(index),
                    level.name,
                    str(level.file_days),
                    str(level.answer_days),
                    str(level.extension_days),
                )
        console.print(table)


@levels_app.command(
    "set",
    help="Set the facility's appeal levels from a YAML file: a list of levels (name, "
    "file_days, answer_days, extension_days), or a mapping with `standard` and "
    "`issuing_office` lists.",
)
@friendly
def levels_set(
    file: Annotated[Path, typer.Option("--file", help="The levels, as YAML.")],
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{file} is {not_utf8(error)}", field="--file") from None
    except (OSError, yaml.YAMLError) as error:
        raise InvalidInput(f"cannot read {file}: {error}", field="--file") from None
    except RecursionError:
        raise InvalidInput(f"{file} is nested too deeply to be levels", field="--file") from None
    with opened(database_url, facility) as (db, place):
        config = service.configure_appeal_levels(
            db, place.id, data, actor=actor, at=moment(at, place)
        )
        names = ", ".join(level.name for level in config.standard)
        console.print(f"appeal levels of {place.id} set: {names}")


@app.command(
    "family-filing",
    help=(
        "Show, or with --allow or --refuse set, whether family members (contacts of a "
        "person) may file appeals for that person at the facility. Allowed by default, as "
        "every notice's 'how to appeal' says."
    ),
)
@friendly
def family_filing_command(
    allow: Annotated[
        bool | None,
        typer.Option(
            "--allow/--refuse", help="Accept, or refuse, appeals filed by family members."
        ),
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        if allow is None:
            settings = service.appeal_settings(db, place.id)
        else:
            settings = service.configure_appeal_settings(
                db, place.id, family_may_file=allow, at=moment(at, place), actor=actor
            )
        if as_json:
            print_json({"family_may_file": settings.family_may_file})
            return
        said = "accepts" if settings.family_may_file else "does not accept"
        console.print(f"{place.id} {said} appeals filed by family")
