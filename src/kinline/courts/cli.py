"""``kinline report``: retaliation flags (court-order compliance: ``courts.report_cli``);
``kinline retaliation``: their review, findings and the report for counsel."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    database,
    friendly,
    opened,
    print_json,
    resolve_facility,
)
from kinline.courts.retaliation import (
    Finding,
    ReviewedFlag,
    person_review,
    record_finding,
    reviewed_flags,
)
from kinline.courts.retaliation_report import render_review_pdf
from kinline.courts.service import retaliation_report
from kinline.rules.periods import local

app = typer.Typer(no_args_is_help=True)


@app.command("retaliation", help="Adverse actions that closely follow a protected activity.")
@friendly
def retaliation_command(
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    place = resolve_facility(db, facility)
    flags = retaliation_report(db, place.id)
    rows = [
        {
            "person": flag.person,
            "action": flag.action,
            "action_at": local(flag.action_at, place.zone).isoformat(),
            "activity": flag.activity,
            "activity_at": local(flag.activity_at, place.zone).isoformat(),
            "days": flag.days,
        }
        for flag in flags
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("person", "action", "when", "after activity", "filed", "days")
    for row in rows:
        table.add_row(
            str(row["person"]),
            str(row["action"]),
            str(row["action_at"]),
            str(row["activity"]),
            str(row["activity_at"]),
            str(row["days"]),
        )
    console.print(table)
    console.print(f"{len(rows)} flags (window {place.retaliation_window_days} days)")


# --- kinline retaliation: the review of flags -------------------------------

retaliation_app = typer.Typer(
    no_args_is_help=True,
    help=(
        "The retaliation review: flags (an adverse action soon after a protected activity), "
        "a reviewer's finding on each, and the report for counsel."
    ),
)
_ACTOR_HELP = "Who records it, as the audit log names them."


@retaliation_app.command("flags", help="The flags, each with its current finding.")
@friendly
def retaliation_flags_command(
    person: Annotated[str | None, typer.Option(help="Only this person's flags.")] = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        flags = reviewed_flags(db, place.id, person)
    rows = [_flag_row(flag, place.zone) for flag in flags]
    if as_json:
        print_json(rows)
        return
    table = Table("person", "action", "when", "after activity", "filed", "days", "finding")
    for row in rows:
        current = row["finding"]
        table.add_row(
            escape(str(row["person"])),
            escape(str(row["action"])),
            str(row["action_at"]),
            escape(str(row["activity"])),
            str(row["activity_at"]),
            str(row["days"]),
            "-" if not isinstance(current, dict) else str(current["finding"]),
        )
    console.print(table)
    console.print(f"{len(rows)} flags (window {place.retaliation_window_days} days)")


@retaliation_app.command(
    "find", help="Record a finding on a flag: unfounded, substantiated or referred, and why."
)
@friendly
def retaliation_find_command(
    person: Annotated[str, typer.Argument(help="The person's id.")],
    action: Annotated[
        str, typer.Option(help="The flagged action: its rule id, or revoke:CONTACT:CHANNEL.")
    ],
    activity: Annotated[str, typer.Option(help="The protected activity the flag names.")],
    finding: Annotated[str, typer.Option(help="unfounded, substantiated or referred.")],
    reasoning: Annotated[str, typer.Option(help="What the finding rests on.")],
    actor: Annotated[str, typer.Option("--actor", help=_ACTOR_HELP)] = "kinline:cli",
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        found = record_finding(
            db,
            place.id,
            person,
            action=action,
            activity=activity,
            finding=finding,
            reasoning=reasoning,
            at=datetime.now(UTC),
            actor=actor,
        )
    if as_json:
        print_json(_finding_row(found, place.zone))
        return
    console.print(
        f"finding {found.finding} recorded on {escape(found.action)} "
        f"after {escape(found.activity_id)} ({found.id})"
    )


@retaliation_app.command("report", help="One person's review for counsel, as a PDF.")
@friendly
def retaliation_report_command(
    person: Annotated[str, typer.Argument(help="The person's id.")],
    pdf: Annotated[Path, typer.Option("--pdf", help="Write the PDF here.")],
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        review = person_review(db, place.id, person)
    pdf.write_bytes(render_review_pdf(review, prepared=datetime.now(UTC)))
    console.print(f"wrote {escape(str(pdf))}: {len(review.flags)} flags")


def _finding_row(finding: Finding, zone: ZoneInfo) -> dict[str, object]:
    return {
        "id": finding.id,
        "person": finding.person_id,
        "action": finding.action,
        "activity": finding.activity_id,
        "finding": str(finding.finding),
        "reasoning": finding.reasoning,
        "reviewer": finding.reviewer,
        "recorded_at": local(finding.recorded_at, zone).isoformat(timespec="seconds"),
    }


def _flag_row(flag: ReviewedFlag, zone: ZoneInfo) -> dict[str, object]:
    current = flag.finding
    return {
        "person": flag.person_id,
        "action": flag.action,
        "action_text": flag.action_text,
        "action_at": local(flag.action_at, zone).isoformat(),
        "activity": flag.activity_id,
        "activity_kind": flag.activity_kind,
        "activity_at": local(flag.activity_at, zone).isoformat(),
        "days": flag.days,
        "finding": None if current is None else _finding_row(current, zone),
        "findings": [_finding_row(f, zone) for f in flag.findings],
    }
