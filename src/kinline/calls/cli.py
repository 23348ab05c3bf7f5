"""``kinline decide``: a decision, explained by the rules responsible."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from kinline.calls.service import decide_contact
from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    database,
    friendly,
    moment,
    print_json,
    resolve_facility,
)
from kinline.rules.periods import local


@friendly
def decide_command(
    person: Annotated[str, typer.Option(help="Person id.")],
    contact: Annotated[str, typer.Option(help="Contact id.")],
    channel: Annotated[str, typer.Option(help="phone, video or visit.")] = "phone",
    at: Annotated[
        str | None, typer.Option(help="Local wall time in the facility, e.g. 2024-03-04T10:00.")
    ] = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    place = resolve_facility(db, facility)
    explained = decide_contact(db, place.id, person, contact, channel, at=moment(at, place))
    decision = explained.decision
    rules = explained.explained()
    if as_json:
        body = decision.as_dict()
        body["at"] = local(explained.at, place.zone).isoformat()
        body["explanation"] = [
            {"id": r.id, "authority": str(r.authority), "kind": str(r.kind), "text": r.text}
            for r in rules
        ]
        print_json(body)
        return
    when = local(explained.at, place.zone).strftime("%Y-%m-%d %H:%M")
    verdict = (
        "[green]allowed[/green]" if decision.allowed else f"[red]refused: {decision.reason}[/red]"
    )
    console.print(
        f"{person} -> {contact} by {explained.channel} at {when} ({place.timezone}): {verdict}"
    )
    if decision.allowed:
        console.print(
            f"charged to {decision.charged_to}; at most {decision.max_minutes} minutes; "
            f"monitoring {decision.monitoring}; interpreter {decision.interpreter or 'none'}"
        )
    table = Table("rule", "authority", "kind", "role", "text")
    for rule in rules:
        role = "conflict (outranked)" if rule.id in decision.conflicts else "responsible"
        table.add_row(rule.id, str(rule.authority), str(rule.kind), role, rule.text)
    if rules:
        console.print(table)
