"""court orders as records, and the authority cited by a rule that overrides one

``court_orders``: an order's court, case number, judge, date signed, text,
counsel of record and the court's address for notices. ``court_order_rules``:
the rules it created (a rule belongs to one order at most).
``court_order_documents``: every upload of its signed PDF, bytes and sha256.
``rule_citations``: the authority a rule's imposer relied on when it overrides
a court-order grant. Every key leads with facility_id.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kinline.db.types import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "court_orders",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("court", sa.String(length=200), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column("judge", sa.String(length=200), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("counsel", sa.JSON(), nullable=False),
        sa.Column("court_address", sa.Text(), nullable=True),
        sa.Column("court_email", sa.String(length=254), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_court_orders_facility_id_facilities")
        ),
        sa.PrimaryKeyConstraint("facility_id", "id", name=op.f("pk_court_orders")),
    )
    op.create_index("ix_court_orders_case", "court_orders", ["facility_id", "case_number"])
    op.create_table(
        "court_order_rules",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id", "order_id"],
            ["court_orders.facility_id", "court_orders.id"],
            name=op.f("fk_court_order_rules_facility_id_court_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["facility_id", "rule_id"],
            ["rules.facility_id", "rules.id"],
            name=op.f("fk_court_order_rules_facility_id_rules"),
        ),
        sa.PrimaryKeyConstraint(
            "facility_id", "order_id", "rule_id", name=op.f("pk_court_order_rules")
        ),
        sa.UniqueConstraint("facility_id", "rule_id", name="uq_court_order_rules_rule"),
    )
    op.create_table(
        "court_order_documents",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id", "order_id"],
            ["court_orders.facility_id", "court_orders.id"],
            name=op.f("fk_court_order_documents_facility_id_court_orders"),
        ),
        sa.PrimaryKeyConstraint(
            "facility_id", "order_id", "version", name=op.f("pk_court_order_documents")
        ),
    )
    op.create_table(
        "rule_citations",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("authority_cited", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("cited_at", UTCDateTime(), nullable=False),
        sa.Column("cited_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id", "rule_id"],
            ["rules.facility_id", "rules.id"],
            name=op.f("fk_rule_citations_facility_id_rules"),
        ),
        sa.PrimaryKeyConstraint("facility_id", "rule_id", name=op.f("pk_rule_citations")),
    )


def downgrade() -> None:
    op.drop_table("rule_citations")
    op.drop_table("court_order_documents")
    op.drop_table("court_order_rules")
    op.drop_index("ix_court_orders_case", table_name="court_orders")
    op.drop_table("court_orders")
