"""Recording a court order: its record, its rules and their notices, at once.

The order's rules are imposed as any rule is (``changes.service.impose_in``:
their notices, adverse actions and, where one overrides another order, the
loud part, citing this order as the authority), in the transaction that writes
the order, so an order is never half-written: a wrong rule, a person or rule id
that does not exist, a PDF that is not one, and nothing of it is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kinline.changes.service import impose_in
from kinline.courts import orders
from kinline.courts.orders import CourtOrder
from kinline.db.engine import Database
from kinline.errors import KinlineError


def record_order(
    db: Database,
    facility_id: str,
    data: Mapping[str, Any],
    *,
    at: datetime,
    actor: str,
    document: bytes | None = None,
    content_type: str = orders.PDF_TYPE,
) -> CourtOrder:
    """Record the order given as plain data (``courts.orders.parse_order``),
    impose the rules it creates, link those it names as already imposed, and
    keep its PDF when given; returns the order as recorded."""
    draft = orders.parse_order(data)
    if document is not None:
        orders.check_document(document, content_type)
    with db.transaction() as session:
        orders.add_order(session, facility_id, draft, at=at, actor=actor)
        for index, rule_data in enumerate(draft.rules):
            try:
                rule = impose_in(
                    session,
                    facility_id,
                    rule_data,
                    at=at,
                    actor=actor,
                    reason=draft.notice_reason,
                    authority_cited=draft.citation,
                )
            except KinlineError as error:
                error.field = _within(f"rules[{index}]", error.field)
                raise
            orders.link_rule(session, facility_id, draft, rule.id, field=f"rules[{index}]")
        for index, rule_id in enumerate(draft.existing_rules):
            orders.link_rule(session, facility_id, draft, rule_id, field=f"existing_rules[{index}]")
        if document is not None:
            orders.store_document(
                session, facility_id, draft.id, document, content_type, at=at, actor=actor
            )
        return orders.order_in(session, facility_id, draft.id)


def _within(prefix: str, field: str | None) -> str:
    """``rule.id`` of the third rule is ``rules[2].id``."""
    if field is None:
        return prefix
    return f"{prefix}.{field.removeprefix('rule.').removeprefix('rule')}".rstrip(".")


def upload_document(
    db: Database,
    facility_id: str,
    order_id: str,
    content: bytes,
    content_type: str,
    *,
    at: datetime,
    actor: str,
) -> orders.Document:
    """Keep a new version of the order's signed PDF."""
    with db.transaction() as session:
        return orders.store_document(
            session, facility_id, order_id, content, content_type, at=at, actor=actor
        )
