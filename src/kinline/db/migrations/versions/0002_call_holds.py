"""call holds: sessions held for a call set-up, idempotency keys, settlement

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kinline.db.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="recorded", nullable=False)
        )
        batch_op.add_column(sa.Column("hold_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("max_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("connected_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("ended_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("settled_by", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("reserved", sa.JSON(), nullable=True))
        batch_op.create_index("ix_sessions_due", ["status", "expires_at"], unique=False)
        batch_op.create_unique_constraint("uq_sessions_hold_id", ["hold_id"])
        batch_op.create_unique_constraint(
            "uq_sessions_idempotency_key", ["facility_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_sessions_idempotency_key", type_="unique")
        batch_op.drop_constraint("uq_sessions_hold_id", type_="unique")
        batch_op.drop_index("ix_sessions_due")
        for column in (
            "reserved",
            "settled_by",
            "ended_at",
            "connected_at",
            "expires_at",
            "max_minutes",
            "request_hash",
            "idempotency_key",
            "hold_id",
            "source",
        ):
            batch_op.drop_column(column)
