"""domain events and webhooks

The transactional outbox of domain events (a CloudEvent per audit event, written
with it), the facilities' webhook subscriptions and each event's delivery to
each webhook. Every key leads with facility_id.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kinline.db.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "domain_events",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("chain", sa.String(length=140), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("facility_id", "id", name=op.f("pk_domain_events")),
    )
    op.create_index(
        "ix_domain_events_unpublished", "domain_events", ["published_at", "recorded_at"]
    )
    op.create_index(
        "ix_domain_events_order", "domain_events", ["facility_id", "recorded_at", "chain", "seq"]
    )
    op.create_table(
        "webhooks",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_through", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("facility_id", "id", name=op.f("pk_webhooks")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("webhook_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint(
            "facility_id", "webhook_id", "event_id", name=op.f("pk_webhook_deliveries")
        ),
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_index("ix_domain_events_order", table_name="domain_events")
    op.drop_index("ix_domain_events_unpublished", table_name="domain_events")
    op.drop_table("domain_events")
