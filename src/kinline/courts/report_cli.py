"""``kinline report compliance``: a court order's compliance report.

With ``--from`` and ``--to`` (months), the report in the monitors' form
(``courts.report``): a table of each requirement's periods and status on the
terminal (or ``--json``), and the same report written as ``--pdf``, ``--csv``
or ``--html`` files. With ``--key``, the report embeds a fresh signed audit
checkpoint and prints its digest; otherwise it says it is unsigned.

``--period`` keeps the one-line answer for one period (SPEC 7's figures).
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kinline.audit.checkpoint import load_private_key
from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    friendly,
    opened,
    print_json,
)
from kinline.courts import report_render
from kinline.courts.compliance import order_report
from kinline.courts.report import STATUS_WORDS
from kinline.courts.service import compliance_report
from kinline.db.engine import Database
from kinline.errors import InvalidInput


@friendly
def compliance_command(
    order: Annotated[str, typer.Option(help="The order record's id, or a court-order rule's id.")],
    first: Annotated[
        str | None,
        typer.Option("--from", help="The first month reported, YYYY-MM."),
    ] = None,
    last: Annotated[
        str | None,
        typer.Option("--to", help="The last month reported, YYYY-MM (default: --from)."),
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(
            help="One period only (YYYY-MM, YYYY-Www or YYYY-MM-DD of the order's quota): "
            "its entitled, delivered and shortfall on one line. Not with --from."
        ),
    ] = None,
    pdf: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write the report as a PDF here.")
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Write one row per requirement and period, and its evidence rows, as CSV here.",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Write the report as a standalone HTML page here."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="An Ed25519 private key (PEM) to sign a fresh audit checkpoint the report "
            "embeds; without it the report says it is unsigned.",
        ),
    ] = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        if period is not None:
            if first is not None or last is not None:
                raise InvalidInput("give --period, or --from and --to, not both", field="period")
            _one_period(db, place.id, order, period, as_json)
            return
        if first is None:
            raise InvalidInput(
                "give the months to report: --from YYYY-MM [--to YYYY-MM]", field="from"
            )
        signing = None
        if key is not None:
            try:
                signing = load_private_key(key.read_bytes())
            except OSError as error:
                raise InvalidInput(f"cannot read {key}: {error.strerror}", field="key") from None
        report = order_report(
            db,
            place.id,
            order,
            first,
            last or first,
            at=datetime.now(UTC),
            key=signing,
            timeline=pdf is not None or html is not None,  # only the pages draw one
        )
    if pdf is not None:
        _write(pdf, report_render.as_pdf(report))
    if csv is not None:
        _write(csv, report_render.as_csv(report).encode("utf-8"))
    if html is not None:
        _write(html, report_render.as_html(report).encode("utf-8"))
    if as_json:
        print_json(report_render.as_json(report))
        return
    for requirement in report.requirements:
        table = Table(
            "period",
            "entitled",
            "delivered",
            "outside policy",
            "refused",
            "shortfall",
            "status",
            "evidence",
            title=f"{requirement.rule_id}: {requirement.text}",
        )
        for p in requirement.periods:
            table.add_row(
                p.key,
                str(p.entitled),
                str(p.delivered),
                str(p.outside_policy),
                str(p.refused),
                str(p.shortfall),
                STATUS_WORDS[p.status],
                str(len(p.evidence)),
            )
        console.print(table)
        console.print(
            f"{requirement.rule_id}: entitled {requirement.entitled}, delivered "
            f"{requirement.delivered}, shortfall {requirement.shortfall}: "
            f"{STATUS_WORDS[requirement.status]}"
        )
    console.print(f"order {report.order_id}: {STATUS_WORDS[report.status]}")
    if report.signature is None:
        console.print("unsigned (no --key)")
    else:
        console.print(
            f"signed audit checkpoint {report.signature.taken_at}, digest {report.signature.digest}"
        )
    for path in (pdf, csv, html):
        if path is not None:
            console.print(f"wrote {path}")


def _one_period(db: Database, facility_id: str, order: str, period: str, as_json: bool) -> None:
    report = compliance_report(db, facility_id, order, period)
    body = {
        "order": report.order,
        "period": report.period,
        "entitled": report.entitled,
        "delivered": report.delivered,
        "shortfall": report.shortfall,
    }
    if as_json:
        print_json(body)
        return
    console.print(
        f"order {report.order}, {report.period}: entitled {report.entitled}, "
        f"delivered {report.delivered}, shortfall {report.shortfall}"
    )


def _write(path: Path, data: bytes) -> None:
    """Written beside the target and renamed over it: never a half-written report."""
    temporary: str | None = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.resolve().parent)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        raise InvalidInput(f"cannot write {path}: {error.strerror}", field=str(path)) from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
