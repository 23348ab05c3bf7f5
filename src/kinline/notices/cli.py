"""``kinline notices``: the notices written to a person."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    friendly,
    opened,
    print_json,
)
from kinline.errors import InvalidInput
from kinline.notices.render import render_html, render_pdf
from kinline.notices.service import (
    Notice,
    acknowledge_notice,
    get_letterhead,
    get_notice_document,
    list_notices,
    overdue_notices,
    set_letterhead,
)
from kinline.people.model import Facility, check_language
from kinline.rules.periods import local

app = typer.Typer(no_args_is_help=True)


@app.command("list", help="List a person's notices, oldest first.")
@friendly
def list_command(
    person: Annotated[str, typer.Option(help="Person id.")],
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        notices = list_notices(db, place.id, person)
    if as_json:
        print_json(
            [
                {
                    "id": n.id,
                    "person_id": n.person_id,
                    "language": n.language,
                    "change": n.change,
                    "subject": n.subject,
                    "authority": n.authority,
                    "effective_at": local(n.effective_at, place.zone).isoformat(),
                    "appeal_deadline": n.appeal_deadline.isoformat(),
                    "reference": n.reference,
                    "title": n.title,
                    "body": n.body,
                    "acknowledged_at": (
                        None
                        if n.acknowledged_at is None
                        else local(n.acknowledged_at, place.zone).isoformat()
                    ),
                    "acknowledged_by": n.acknowledged_by,
                }
                for n in notices
            ]
        )
        return
    table = Table("id", "change", "subject", "effective", "appeal by", "title")
    for n in notices:
        effective = local(n.effective_at, place.zone).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            str(n.id), n.change, n.subject, effective, n.appeal_deadline.isoformat(), n.title
        )
    console.print(table)
    console.print(f"{len(notices)} notices")


NoticeId = Annotated[int, typer.Argument(help="The notice's id.", min=1, max=2_147_483_647)]
OutputOption = Annotated[
    Path, typer.Option("--output", "-o", help="File to write (`-` for standard output).")
]
LanguageOption = Annotated[
    str | None,
    typer.Option(
        "--language",
        help="Language to render in (default: the notice's); one without a catalog: English.",
    ),
]


@app.command("pdf", help="Write a notice as a printable PDF letter.")
@friendly
def pdf_command(
    notice_id: NoticeId,
    output: OutputOption,
    language: LanguageOption = None,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        document = get_notice_document(db, place.id, notice_id, language=_language(language))
    _write(output, render_pdf([document]))


@app.command("html", help="Write a notice as an HTML page.")
@friendly
def html_command(
    notice_id: NoticeId,
    output: OutputOption,
    language: LanguageOption = None,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        document = get_notice_document(db, place.id, notice_id, language=_language(language))
    _write(output, render_html(document).encode("utf-8"))


@app.command("acknowledge", help="Record that a notice was read; again: no change.")
@friendly
def acknowledge_command(
    notice_id: NoticeId,
    by: Annotated[str, typer.Option(help="Who acknowledges: the person, or who read it to them.")],
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        notice = acknowledge_notice(db, place.id, notice_id, by=by, at=datetime.now(UTC))
    if as_json:
        print_json(_notice_json(notice, place))
        return
    assert notice.acknowledged_at is not None
    when = local(notice.acknowledged_at, place.zone).strftime("%Y-%m-%d %H:%M")
    console.print(f"notice {notice.id} acknowledged by {notice.acknowledged_by} at {when}")


@app.command("overdue", help="List notices nobody has acknowledged, oldest first.")
@friendly
def overdue_command(
    days: Annotated[
        int, typer.Option(min=0, help="Only notices written more than this many days ago.")
    ] = 7,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        notices = overdue_notices(db, place.id, days=days, now=datetime.now(UTC))
    if as_json:
        print_json([_notice_json(n, place) for n in notices])
        return
    table = Table("id", "person", "written", "effective", "appeal by", "title")
    for n in notices:
        table.add_row(
            str(n.id),
            n.person_id,
            local(n.created_at, place.zone).strftime("%Y-%m-%d %H:%M"),
            local(n.effective_at, place.zone).strftime("%Y-%m-%d %H:%M"),
            n.appeal_deadline.isoformat(),
            n.title,
        )
    console.print(table)
    console.print(f"{len(notices)} notices unacknowledged after {days} days")


def _language(code: str | None) -> str | None:
    return None if code is None else check_language(code, "--language")


def _write(output: Path, content: bytes) -> None:
    if str(output) == "-":
        typer.get_binary_stream("stdout").write(content)
        return
    try:
        output.write_bytes(content)
    except OSError as error:
        raise InvalidInput(f"cannot write {output}: {error.strerror}", field="--output") from None
    console.print(f"wrote {output} ({len(content)} bytes)")


def _notice_json(n: Notice, place: Facility) -> dict[str, object]:
    return {
        "id": n.id,
        "person_id": n.person_id,
        "language": n.language,
        "change": n.change,
        "subject": n.subject,
        "effective_at": local(n.effective_at, place.zone).isoformat(),
        "appeal_deadline": n.appeal_deadline.isoformat(),
        "created_at": local(n.created_at, place.zone).isoformat(),
        "title": n.title,
        "acknowledged_at": (
            None if n.acknowledged_at is None else local(n.acknowledged_at, place.zone).isoformat()
        ),
        "acknowledged_by": n.acknowledged_by,
    }


@app.command(
    "letterhead",
    help="Show the facility's letterhead, or set its postal address with --address "
    "(lines separated by '\\n' or newlines); printed atop every notice.",
)
@friendly
def letterhead_command(
    address: Annotated[
        str | None, typer.Option(help="The postal address to print; omit to show it.")
    ] = None,
    actor: Annotated[
        str, typer.Option("--actor", help="Who sets it, as the audit log records it.")
    ] = "kinline:cli",
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        if address is not None:
            stored: str | None = set_letterhead(
                db, place.id, address.replace("\\n", "\n"), at=datetime.now(UTC), actor=actor
            )
        else:
            stored = get_letterhead(db, place.id)
    if as_json:
        print_json({"facility_id": place.id, "name": place.name, "address": stored})
        return
    console.print(escape(place.name))
    console.print(escape(stored) if stored is not None else "(no address set)")
