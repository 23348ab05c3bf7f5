"""``kinline subject`` and ``kinline token``: who may call kinline, bound to what,
and the API tokens they call with."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from kinline.cli_base import DatabaseOption, JsonOption, console, database, friendly
from kinline.identity.model import Binding, Subject
from kinline.identity.service import (
    TokenInfo,
    add_subject,
    bind,
    create_token,
    issue_token,
    list_subjects,
    list_tokens,
    parse_job,
    parse_kind,
    parse_role,
    revoke_token,
    unbind,
)
from kinline.identity.signin import enroll_totp, set_password

subject_app = typer.Typer(no_args_is_help=True, help="Subjects: who may call kinline.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens: list, create, revoke.")
ACTOR = "cli"

FacilityBind = Annotated[str, typer.Option("--facility", help="The facility the binding is at.")]
RoleOption = Annotated[
    str | None,
    typer.Option(help="Staff: records, visiting, security, warden, admin or observer."),
]
PersonOption = Annotated[
    str | None, typer.Option("--person", help="Person: the person; counsel: one represented.")
]
ContactOption = Annotated[
    str | None, typer.Option("--contact", help="Family: one of their contact records.")
]
CaseOption = Annotated[str | None, typer.Option("--case", help="Court: a case number.")]
JobOption = Annotated[str | None, typer.Option(help="Machine: its job (telephony).")]


def _binding(
    facility: str,
    role: str | None,
    person: str | None,
    contact: str | None,
    case: str | None,
    job: str | None,
) -> Binding:
    return Binding(
        facility_id=facility,
        role=None if role is None else parse_role(role),
        person_id=person,
        contact_id=contact,
        case_number=case,
        job=None if job is None else parse_job(job),
    )


def _describe(binding: Binding) -> str:
    parts = [
        f"{name}={value}"
        for name in ("role", "person_id", "contact_id", "case_number", "job")
        if (value := getattr(binding, name)) is not None
    ]
    return f"{binding.facility_id}: {', '.join(parts)}"


def _subject_json(subject: Subject) -> dict[str, object]:
    return {
        "id": subject.id,
        "name": subject.name,
        "kind": str(subject.kind),
        "bindings": [
            {
                name: str(value)
                for name in ("facility_id", "role", "person_id", "contact_id", "case_number", "job")
                if (value := getattr(binding, name)) is not None
            }
            for binding in subject.bindings
        ],
    }


@subject_app.command("add", help="Add a subject, bound at once to one thing at a facility.")
@friendly
def subject_add(
    name: Annotated[str, typer.Option(help="The subject's name.")],
    kind: Annotated[str, typer.Option(help="staff, person, family, counsel, court or machine.")],
    facility: Annotated[str | None, typer.Option(help="Bind at this facility.")] = None,
    role: RoleOption = None,
    person: PersonOption = None,
    contact: ContactOption = None,
    case: CaseOption = None,
    job: JobOption = None,
    login: Annotated[str | None, typer.Option(help="Sign-in name, for people.")] = None,
    email: Annotated[str | None, typer.Option(help="Where password resets go.")] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    bindings: tuple[Binding, ...] = ()
    if facility is not None:
        bindings = (_binding(facility, role, person, contact, case, job),)
    subject = add_subject(
        database(database_url),
        name,
        parse_kind(kind),
        at=datetime.now(UTC),
        actor=ACTOR,
        bindings=bindings,
        login=login,
        email=email,
    )
    if as_json:
        typer.echo(json.dumps(_subject_json(subject)))
        return
    console.print(f"subject {subject.id}: {subject.name} ({subject.kind})")


@subject_app.command("bind", help="Bind a subject to one more thing at a facility.")
@friendly
def subject_bind(
    subject_id: Annotated[int, typer.Argument(help="The subject's id.")],
    facility: FacilityBind,
    role: RoleOption = None,
    person: PersonOption = None,
    contact: ContactOption = None,
    case: CaseOption = None,
    job: JobOption = None,
    database_url: DatabaseOption = None,
) -> None:
    binding = _binding(facility, role, person, contact, case, job)
    subject = bind(database(database_url), subject_id, binding, at=datetime.now(UTC), actor=ACTOR)
    console.print(f"subject {subject.id}: bound to {_describe(binding)}")


@subject_app.command("unbind", help="Take one binding away from a subject.")
@friendly
def subject_unbind(
    subject_id: Annotated[int, typer.Argument(help="The subject's id.")],
    facility: FacilityBind,
    role: RoleOption = None,
    person: PersonOption = None,
    contact: ContactOption = None,
    case: CaseOption = None,
    job: JobOption = None,
    database_url: DatabaseOption = None,
) -> None:
    binding = _binding(facility, role, person, contact, case, job)
    unbind(database(database_url), subject_id, binding, at=datetime.now(UTC), actor=ACTOR)
    console.print(f"subject {subject_id}: no longer bound to {_describe(binding)}")


@subject_app.command("password", help="Set a subject's sign-in password (asked twice, hidden).")
@friendly
def subject_password(
    subject_id: Annotated[int, typer.Argument(help="The subject's id.")],
    database_url: DatabaseOption = None,
) -> None:
    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    set_password(database(database_url), subject_id, password, at=datetime.now(UTC), actor=ACTOR)
    console.print(f"subject {subject_id}: password set")


@subject_app.command(
    "totp", help="Enrol a new TOTP second factor; prints the otpauth URI for an authenticator app."
)
@friendly
def subject_totp(
    subject_id: Annotated[int, typer.Argument(help="The subject's id.")],
    database_url: DatabaseOption = None,
) -> None:
    enrolled = enroll_totp(database(database_url), subject_id, at=datetime.now(UTC), actor=ACTOR)
    typer.echo(enrolled.uri)


@subject_app.command("list", help="Every subject and what it is bound to.")
@friendly
def subject_list(as_json: JsonOption = False, database_url: DatabaseOption = None) -> None:
    subjects = list_subjects(database(database_url))
    if as_json:
        typer.echo(json.dumps([_subject_json(subject) for subject in subjects]))
        return
    table = Table("id", "name", "kind", "bound to")
    for subject in subjects:
        bound = "; ".join(_describe(b) for b in subject.bindings) or "-"
        table.add_row(str(subject.id), subject.name, str(subject.kind), bound)
    console.print(table)


@token_app.command(
    "create",
    help=(
        "Issue a token and print its secret once (only its hash is kept): for a subject "
        "(--subject), or for a new subject made for one purpose (--name and --scope: staff "
        "is the admin role, read the observer role, telephony the call path)."
    ),
)
@friendly
def token_create(
    subject: Annotated[int | None, typer.Option(help="The subject the token acts for.")] = None,
    name: Annotated[str | None, typer.Option(help="The token's (or new subject's) name.")] = None,
    scope: Annotated[
        str | None, typer.Option(help="With --name: staff, read or telephony.")
    ] = None,
    facility: Annotated[
        str | None,
        typer.Option(help="The one facility it works at (default: each the subject is bound to)."),
    ] = None,
    days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="Expires after this many days.")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    now = datetime.now(UTC)
    expires_at = None if days is None else now + timedelta(days=days)
    if subject is not None:
        info, secret = issue_token(
            db, subject, facility_id=facility, at=now, actor=ACTOR, name=name, expires_at=expires_at
        )
    elif name is not None and scope is not None:
        info, secret = create_token(
            db, name, scope, at=now, facility_id=facility, expires_at=expires_at
        )
    else:
        raise typer.BadParameter("give --subject, or --name and --scope")
    console.print(secret)
    typer.echo(
        f"token {info.id} for subject {info.subject_id} ({info.subject_name}): "
        "keep it; it is not shown again",
        err=True,
    )


@token_app.command("list", help="Every token: whose, where, expiry, last use; never a secret.")
@friendly
def token_list(
    subject: Annotated[int | None, typer.Option(help="Only this subject's.")] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    tokens = list_tokens(database(database_url), subject)
    now = datetime.now(UTC)
    if as_json:
        typer.echo(json.dumps([_token_json(info, now) for info in tokens]))
        return
    table = Table("id", "name", "subject", "facility", "state", "expires", "last used")
    for info in tokens:
        table.add_row(
            str(info.id),
            info.name,
            f"{info.subject_id} {info.subject_name}",
            info.facility_id or "(each bound)",
            info.state(now),
            _when(info.expires_at),
            _when(info.last_used_at),
        )
    console.print(table)


@token_app.command("revoke", help="Revoke a token: refused from the next request on.")
@friendly
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (kinline token list).")],
    database_url: DatabaseOption = None,
) -> None:
    info = revoke_token(database(database_url), token_id, at=datetime.now(UTC), actor=ACTOR)
    console.print(f"token {info.id} ({info.name}) revoked")


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def _token_json(info: TokenInfo, now: datetime) -> dict[str, object]:
    return {
        "id": info.id,
        "name": info.name,
        "subject_id": info.subject_id,
        "subject_name": info.subject_name,
        "facility_id": info.facility_id,
        "state": info.state(now),
        "created_at": _when(info.created_at),
        "expires_at": None if info.expires_at is None else _when(info.expires_at),
        "last_used_at": None if info.last_used_at is None else _when(info.last_used_at),
    }
