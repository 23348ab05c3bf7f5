"""``kinline orders``: court orders as records.

``add FILE.yaml [--pdf F]`` records an order and imposes the rules it creates
(their notices written) in one transaction, or writes nothing; ``list`` and
``show ID`` read them, ``show`` with every rule in force that conflicts with
the order; ``document ID F`` keeps a new version of its signed PDF.

The YAML file holds the order's fields (``courts.orders.parse_order``)::

    id: cv-17
    court: United States District Court for the District of Colorado
    case_number: CV-17
    judge: Hon. M. Alvarez
    signed_on: 2023-06-20
    person: salazar
    text: Two 15-minute calls a month with his daughters.
    counsel: [{name: D. Ruiz, email: druiz@ruizlaw.example}]
    court_address: "901 19th Street, Denver, CO 80294"
    court_email: cv17-chambers@cod.uscourts.example
    rules:            # created by the order (court_order authority, its case number)
      - {id: order-17, kind: grant, channel: phone, contacts: {ids: [daughter-a]},
         quota: {count: 2, per: month}, max_minutes: 15, text: Two calls a month.}
    existing_rules: []  # court-order rules of the case already imposed
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from kinline.changes.court_orders import record_order, upload_document
from kinline.changes.service import impose_rule
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
from kinline.courts import orders
from kinline.courts.orders import CourtOrder, OrderConflict
from kinline.errors import InvalidInput, not_utf8
from kinline.people.cli import DEFAULT_ACTOR, ActorOption, AtOption
from kinline.people.model import Facility
from kinline.rules.periods import local

app = typer.Typer(no_args_is_help=True)

OrderArgument = Annotated[str, typer.Argument(help="The order's id (as recorded, e.g. cv-17).")]
PdfOption = Annotated[
    Path | None,
    typer.Option("--pdf", help="The signed order as a PDF (at most 1 MiB), kept with it."),
]


class _Loader(yaml.SafeLoader):
    """YAML with dates and times left as text: the order's parser reads them."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}", field="FILE") from None
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{path} is {not_utf8(error)}", field="FILE") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise InvalidInput(f"{path} is not valid YAML: {error}", field="FILE") from None
    except RecursionError:
        raise InvalidInput(f"{path} is nested too deeply to be an order", field="FILE") from None


def _read_pdf(path: Path) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}", field="--pdf") from None
    return content


def order_dict(order: CourtOrder, place: Facility) -> dict[str, Any]:
    document = order.document
    return {
        "id": order.id,
        "court": order.court,
        "case_number": order.case_number,
        "judge": order.judge,
        "signed_on": order.signed_on.isoformat(),
        "person": order.person,
        "text": order.text,
        "counsel": [{"name": c.name, "email": c.email} for c in order.counsel],
        "court_address": order.court_address,
        "court_email": order.court_email,
        "rules": list(order.rules),
        "document": None
        if document is None
        else {
            "version": document.version,
            "sha256": document.sha256,
            "size_bytes": document.size_bytes,
            "uploaded_at": local(document.uploaded_at, place.zone).isoformat(),
            "uploaded_by": document.uploaded_by,
        },
        "created_at": local(order.created_at, place.zone).isoformat(),
        "created_by": order.created_by,
    }


def conflict_dict(conflict: OrderConflict, place: Facility) -> dict[str, Any]:
    def wall(value: datetime | None) -> str | None:
        return None if value is None else local(value, place.zone).isoformat()

    return {
        "relation": conflict.relation,
        "order_rule": conflict.order_rule,
        "rule": conflict.rule,
        "authority": conflict.authority,
        "kind": conflict.kind,
        "person": conflict.person or "all",
        "text": conflict.text,
        "starts_at": wall(conflict.starts_at),
        "imposed_by": conflict.imposed_by,
        "imposed_at": wall(conflict.imposed_at),
        "reason": conflict.reason,
        "authority_cited": conflict.authority_cited,
    }


@app.command("add", help="Record a court order from a YAML file and impose the rules it creates.")
@friendly
def add_command(
    file: Annotated[Path, typer.Argument(help="The order as YAML (see `kinline orders --help`).")],
    pdf: PdfOption = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    data = _read_yaml(file)
    document = None if pdf is None else _read_pdf(pdf)
    with opened(database_url, facility) as (db, place):
        order = record_order(
            db, place.id, data, at=moment(at, place), actor=actor, document=document
        )
    if as_json:
        print_json(order_dict(order, place))
        return
    console.print(
        f"order {order.id} (case {order.case_number}) recorded with rules "
        f"{', '.join(order.rules)}"
        + ("" if order.document is None else f"; PDF sha256 {order.document.sha256}")
    )


@app.command("list", help="List the facility's court orders.")
@friendly
def list_command(
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        found = orders.list_orders(db, place.id)
    rows = [order_dict(order, place) for order in found]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "case", "court", "judge", "signed", "person", "rules", "PDF")
    for row in rows:
        table.add_row(
            row["id"],
            row["case_number"],
            row["court"],
            row["judge"],
            row["signed_on"],
            row["person"] or "all",
            ", ".join(row["rules"]),
            "yes" if row["document"] else "no",
        )
    console.print(table)
    console.print(f"{len(rows)} orders")


@app.command("show", help="Show a court order, with every rule in force that conflicts with it.")
@friendly
def show_command(
    order_id: OrderArgument,
    at: AtOption = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        order = orders.get_order(db, place.id, order_id)
        conflicts = orders.order_conflicts(db, place.id, order_id, moment(at, place))
    body = order_dict(order, place)
    body["conflicts"] = [conflict_dict(c, place) for c in conflicts]
    if as_json:
        print_json(body)
        return
    console.print(
        f"[bold]order {order.id}[/bold], case {order.case_number}: {order.court}, "
        f"{order.judge}, signed {order.signed_on.isoformat()}",
        markup=True,
    )
    console.print(order.text, markup=False)
    for counsel in order.counsel:
        console.print(f"counsel of record: {counsel.name} <{counsel.email or 'no email'}>")
    if order.court_email or order.court_address:
        console.print(
            f"court notices: {order.court_email or '-'}; "
            f"{(order.court_address or '-').replace(chr(10), ', ')}",
            markup=False,
        )
    console.print(f"rules: {', '.join(order.rules)}")
    if order.document is not None:
        console.print(
            f"PDF: version {order.document.version}, {order.document.size_bytes} bytes, "
            f"sha256 {order.document.sha256}"
        )
    for row in body["conflicts"]:
        relation = (
            f"overrides the order's {row['order_rule']}"
            if row["relation"] == "overrides"
            else f"outranked by the order's {row['order_rule']}"
        )
        when = row["imposed_at"] or row["starts_at"]
        when = "the start (in force when loaded)" if when is None else when
        console.print(
            f"- {row['rule']} ({row['authority']} {row['kind']}, {row['person']}) {relation}: "
            f"{row['text']}\n  imposed by {row['imposed_by']} at {when}; "
            f"why: {row['reason'] or '-'}; authority cited: {row['authority_cited'] or '-'}",
            markup=False,
        )
    console.print(f"{len(conflicts)} conflicts")


@app.command("document", help="Keep a new version of a court order's signed PDF.")
@friendly
def document_command(
    order_id: OrderArgument,
    pdf: Annotated[Path, typer.Argument(help="The signed order as a PDF (at most 1 MiB).")],
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    content = _read_pdf(pdf)
    with opened(database_url, facility) as (db, place):
        kept = upload_document(
            db,
            place.id,
            order_id,
            content,
            orders.PDF_TYPE,
            at=datetime.now(UTC),
            actor=actor,
        )
    if as_json:
        print_json({"order": order_id, "version": kept.version, "sha256": kept.sha256})
        return
    console.print(f"order {order_id}: PDF version {kept.version}, sha256 {kept.sha256}")


@app.command(
    "impose",
    help=(
        "Impose a rule (YAML, SPEC 3) with its notices. One overriding a recorded "
        "order's grant needs --authority-cited; the order's court and counsel are emailed."
    ),
)
@friendly
def impose_command(
    file: Annotated[Path, typer.Argument(help="The rule as YAML (SPEC 3).")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why; the person reads it in their notice.")
    ],
    authority_cited: Annotated[
        str | None,
        typer.Option(
            "--authority-cited",
            help='The authority relied on, e.g. "28 CFR 540.100(a)" (needed to override an order).',
        ),
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    data = _read_yaml(file)
    if not isinstance(data, dict):
        raise InvalidInput("must be a rule: a mapping of its fields", field="FILE")
    with opened(database_url, facility) as (db, place):
        rule = impose_rule(
            db,
            place.id,
            data,
            at=moment(at, place),
            actor=actor,
            reason=reason,
            authority_cited=authority_cited,
        )
    if as_json:
        print_json({"rule": rule.id, "authority_cited": authority_cited})
        return
    console.print(f"rule {rule.id} imposed; the people it concerns are sent a notice")
