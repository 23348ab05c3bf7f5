"""protected activities keep the order they were recorded in

Of several activities at one instant the retaliation report names the
later-listed (SPEC 7); ``seq`` numbers a facility's activities as recorded.
Existing rows are numbered by instant, then id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("protected_activities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE protected_activities SET seq = ("
        " SELECT count(*) FROM protected_activities AS earlier"
        " WHERE earlier.facility_id = protected_activities.facility_id"
        " AND (earlier.occurred_at < protected_activities.occurred_at"
        " OR (earlier.occurred_at = protected_activities.occurred_at"
        " AND earlier.id <= protected_activities.id)))"
    )


def downgrade() -> None:
    with op.batch_alter_table("protected_activities", schema=None) as batch_op:
        batch_op.drop_column("seq")
