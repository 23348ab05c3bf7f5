"""imported call records and a facility's appeal settings

``imported_calls``: every vendor call record an import has counted, keyed by
facility and record, so importing a file again (or two imports of it at
once) counts nothing twice. ``appeal_settings``: whether a facility accepts
appeals filed by a person's family (no row: it does).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 13:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kinline.db.types import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imported_calls",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("record_key", sa.String(length=64), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("facility_id", "record_key", name=op.f("pk_imported_calls")),
    )
    op.create_table(
        "appeal_settings",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("family_may_file", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("facility_id", name=op.f("pk_appeal_settings")),
    )


def downgrade() -> None:
    op.drop_table("appeal_settings")
    op.drop_table("imported_calls")
