"""The ``kinline`` command: each feature's commands mounted on one Typer app."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from kinline.appeals.cli import app as appeals_app
from kinline.audit.cli import app as audit_app
from kinline.calls.cli import decide_command, holds_app, import_app
from kinline.changes.cli import (
    approve_command,
    edit_contact_command,
    release_command,
    remove_phone_command,
    reset_command,
    revoke_command,
    transfer_command,
)
from kinline.changes.orders_cli import app as orders_app
from kinline.changes.visitor_cli import app as visitors_app
from kinline.cli_base import report
from kinline.cli_support import DatabaseOption, console, database, errors, friendly
from kinline.courts.cli import app as report_app
from kinline.courts.cli import retaliation_app
from kinline.courts.report_cli import compliance_command as compliance_report_command
from kinline.db.engine import configured_url, shown_url
from kinline.db.migrate import upgrade
from kinline.demo.callers import DemoAccess, demo_access
from kinline.demo.load import load_demo
from kinline.errors import KinlineError, ServiceUnavailable
from kinline.events.cli import app as events_app
from kinline.identity.cli import subject_app, token_app
from kinline.notices.cli import app as notices_app
from kinline.notices.delivery.cli import deliveries_command, print_app, worker_command
from kinline.people.cli import contacts_app, people_app
from kinline.scenario import FreshDatabases, check_file, load_into
from kinline.scenariofile import ScenarioFormatError
from kinline.visits.booking_cli import app as visits_app
from kinline.visits.request_cli import (
    allocate_command,
    request_command,
    requests_command,
    withdraw_request_command,
)

app = typer.Typer(
    help="kinline: lawful, explained contact between incarcerated people and their families.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
scenario_app = typer.Typer(
    help="Scenario files: the contract of the contact rules.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(scenario_app, name="scenario")
app.add_typer(people_app, name="people", help="People: admit, transfer, release, edit, list, show.")
app.add_typer(contacts_app, name="contacts", help="Contacts: add, edit, list, phone numbers.")
people_app.command("transfer", help="Transfer a person to another facility, with a notice.")(
    transfer_command
)
people_app.command("release", help="Release a person: their custody ends, with a notice.")(
    release_command
)
contacts_app.command("edit", help="Edit a contact (a new relationship is noticed).")(
    edit_contact_command
)
contacts_app.command("approve", help="Approve a contact for a channel, with a notice.")(
    approve_command
)
contacts_app.command("revoke", help="End a contact's approval for a channel, with a notice.")(
    revoke_command
)
contacts_app.command(
    "remove-phone", help="Remove a number (an approved contact's last is noticed)."
)(remove_phone_command)
app.add_typer(audit_app, name="audit", help="The tamper-evident audit log.")
app.add_typer(events_app, name="events", help="Domain events: NATS JetStream and webhooks.")
app.add_typer(appeals_app, name="appeals", help="Appeals against notices and decisions.")
app.add_typer(
    visitors_app,
    name="visitors",
    help="Visitors: apply, check ID, officer consent, decide, restrict, settings.",
)
app.add_typer(
    visits_app,
    name="visits",
    help="Visits: rooms, session templates, blocks, slots, booking through to completion.",
)
visits_app.command(
    "request", help="Ask for a visit in one of up to five ranked sessions of a week."
)(request_command)
visits_app.command("requests", help="List visit requests and their outcomes.")(requests_command)
visits_app.command("withdraw-request", help="Withdraw a pending visit request.")(
    withdraw_request_command
)
visits_app.command(
    "allocate", help="Allocate every request window that has closed: book the met, say why not."
)(allocate_command)
app.add_typer(notices_app, name="notices", help="Notices of changes to what a person may do.")
app.add_typer(report_app, name="report", help="Reports for courts and counsel.")
app.add_typer(retaliation_app, name="retaliation")
report_app.command(
    "compliance", help="A court order's compliance report: periods, status, evidence; PDF, CSV."
)(compliance_report_command)
app.add_typer(orders_app, name="orders", help="Court orders: add, list, show, document, impose.")
app.add_typer(token_app, name="token", help="API tokens: create, list, revoke.")
app.add_typer(subject_app, name="subject", help="Who may call kinline, bound to what.")
subject_app.command("reset", help="Queue a password reset email with a one-time link.")(
    reset_command
)
app.add_typer(holds_app, name="holds", help="Call set-ups held on an allowance.")
app.add_typer(import_app, name="import", help="Import records from other systems.")
app.add_typer(print_app, name="print", help="Printed notices: daily batches per housing unit.")
app.command("worker", help="Send notice emails from the outbox and make daily print batches.")(
    worker_command
)
app.command("deliveries", help="Show how a notice was delivered, with every attempt.")(
    deliveries_command
)
app.command("decide", help="Decide whether a person may contact a contact now (or --at).")(
    decide_command
)


@db_app.command("upgrade", help="Migrate the database to the newest schema.")
@friendly
def db_upgrade(database_url: DatabaseOption = None) -> None:
    url = database_url or configured_url()
    database(url).dispose()  # it answers, or one line says it does not
    upgrade(url)
    console.print(f"database at {url} is up to date")


@db_app.command(
    "citus-plan",
    help="Print the SQL that shards a migrated database by facility with Citus, in order"
    " (docs/scaling.md explains it).",
)
def db_citus_plan() -> None:
    from kinline.db.citus import citus_plan

    for statement in citus_plan():
        print(statement)


@scenario_app.command("check", help="Run scenario files on fresh embedded databases and compare.")
def scenario_check(
    files: Annotated[list[Path], typer.Argument(help="Scenario YAML files.")],
) -> None:
    databases = FreshDatabases()
    passed = failed = 0
    malformed = False
    try:
        for path in files:
            try:
                result = check_file(str(path), databases)
            except ScenarioFormatError as error:
                # Each file is reported and the others still run.
                errors.print(f"[red]malformed[/red] {escape(str(error))}")
                malformed = True
                continue
            for failure in result.failures:
                console.print(str(failure))
            passed += result.passed
            failed += len(result.failures)
    finally:
        databases.close()
    console.print(f"{passed} passed, {failed} failed")
    if malformed:
        raise typer.Exit(ScenarioFormatError.exit_code)
    if failed:
        raise typer.Exit(1)


@scenario_app.command("load", help="Load a scenario's facility, people, rules and timeline.")
@friendly
def scenario_load(
    file: Annotated[Path, typer.Argument(help="A scenario YAML file.")],
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    upgrade(db.url)
    try:
        scenario = load_into(str(file), db)
    finally:
        db.dispose()
    console.print(
        f"loaded {scenario.name}: facility {scenario.facility.id}, {len(scenario.people)} people, "
        f"{len(scenario.contacts)} contacts, {len(scenario.rules)} rules, "
        f"{len(scenario.steps)} timeline steps"
    )


@app.command(
    "demo",
    help=(
        "Load the demo facility (the supermax case) unless it is there, and print how to "
        "sign in to it and a staff API token (new passwords and token each time)."
    ),
)
@friendly
def demo(
    database_url: DatabaseOption = None,
    base_url: Annotated[
        str, typer.Option(help="Where kinline will be served, for the examples printed.")
    ] = "http://127.0.0.1:8000",
) -> None:
    db = database(database_url)
    upgrade(db.url)
    from kinline.people.service import list_facilities

    try:
        if any(f.id == "usp-red-mesa" for f in list_facilities(db)):
            console.print("the demo facility usp-red-mesa is already loaded")
        else:
            scenario = load_demo(db, at=datetime.now(UTC))
            console.print(f"loaded the demo facility {scenario.facility.id}, with its visits")
        _print_demo_access(demo_access(db), base_url.rstrip("/"))
    finally:
        db.dispose()


def _print_demo_access(access: DemoAccess, base: str) -> None:
    console.print(
        f"\n[bold]Sign in[/bold] at {base}/signin in a browser (or POST login, password and, "
        f"for staff, totp to {base}/v1/auth/sign-in):\n"
        f"  staff (admin):   login staff    password {access.staff_password}\n"
        f"                   TOTP secret {access.totp_secret} "
        f"(code now: {access.totp_now()}; add the secret to an authenticator app)\n"
        f"  the person:      login salazar  password {access.person_password}\n"
        f"  family:          login daughter password {access.family_password}\n"
        f"  counsel:         login counsel  password {access.counsel_password}\n"
        f"  court:           login court    password {access.court_password}\n"
        "\n[bold]A staff API token[/bold] for usp-red-mesa, valid 30 days:\n"
        f"  export TOKEN={access.token}\n"
        f'  curl -H "Authorization: Bearer $TOKEN" {base}/v1/people\n'
        f"API documentation: {base}/docs"
    )


@app.command("serve", help="Serve the API (binds 127.0.0.1 unless told otherwise).")
@friendly
def serve(
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes (production: one per CPU core).")
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    worker: Annotated[
        bool,
        typer.Option(
            help="Also run the delivery worker in each server process (SMTP from "
            "KINLINE_SMTP_*; see `kinline worker --help`)."
        ),
    ] = False,
    publisher: Annotated[
        bool,
        typer.Option(
            help="Also publish domain events in each server process (NATS from "
            "KINLINE_NATS_URL, and webhooks; see `kinline events publish --help`)."
        ),
    ] = False,
) -> None:
    import os

    import uvicorn

    # A server that cannot reach its database says so and does not start.
    database().dispose()
    if worker:
        os.environ["KINLINE_WORKER"] = "1"
    if publisher:
        os.environ["KINLINE_PUBLISHER"] = "1"

    uvicorn.run(
        "kinline.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        # A worker process starting on a busy machine may take longer than
        # uvicorn's 5 s to import the app; it would be killed and restarted
        # over and over instead of serving.
        timeout_worker_healthcheck=120,
    )


def main() -> None:
    """The console script: a domain error or a database that stops answering
    mid-command is one line and an exit code, never a traceback."""
    try:
        app()
    except KinlineError as error:
        report(error)
        sys.exit(error.exit_code)
    except (OperationalError, PoolTimeout) as error:
        reason = (str(getattr(error, "orig", None) or error).strip().splitlines() or ["?"])[0]
        unavailable = ServiceUnavailable(
            f"the database at {shown_url(configured_url())} stopped answering: {reason}"
        )
        report(unavailable)
        sys.exit(unavailable.exit_code)
