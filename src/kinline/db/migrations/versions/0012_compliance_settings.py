"""a facility's rule for a court order's compliance status

``compliance_settings``: when a period of a court order counts as compliant
(delivered at least ``compliant_percent`` of what it entitled) or partial (at
least ``partial_percent``); below that it is non-compliant. No row: the
defaults (100 and 50).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 13:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kinline.db.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "compliance_settings",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("compliant_percent", sa.Integer(), nullable=False),
        sa.Column("partial_percent", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("facility_id", name=op.f("pk_compliance_settings")),
    )


def downgrade() -> None:
    op.drop_table("compliance_settings")
