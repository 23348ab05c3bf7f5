"""a webhook that kept failing is suspended, with the reason

``webhooks.suspended_at`` and ``webhooks.suspended_reason``: set when one event
failed to reach the webhook ``KINLINE_WEBHOOK_GIVE_UP_ATTEMPTS`` times in a
row; nothing more is sent to it until an admin resumes it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 08:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kinline.db.types import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("suspended_at", UTCDateTime(), nullable=True))
    op.add_column("webhooks", sa.Column("suspended_reason", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.drop_column("suspended_reason")
        batch.drop_column("suspended_at")
