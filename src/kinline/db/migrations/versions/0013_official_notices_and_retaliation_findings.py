"""official notices and retaliation findings

``notice_issues``: each notice's reference number and who issued it (name and
role), fixed when it is written. ``facility_letterheads``: a facility's postal
address for its notices' letterhead. ``retaliation_findings``: a reviewer's
finding on a retaliation flag, with the reasoning.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kinline.db.types import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_issues",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("issuer_role", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("facility_id", "notice_id", name=op.f("pk_notice_issues")),
        sa.UniqueConstraint("facility_id", "reference", name="uq_notice_issues_reference"),
    )
    op.create_table(
        "facility_letterheads",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("facility_id", name=op.f("pk_facility_letterheads")),
    )
    op.create_table(
        "retaliation_findings",
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=200), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("finding", sa.String(length=16), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("facility_id", "id", name=op.f("pk_retaliation_findings")),
    )
    op.create_index(
        "ix_retaliation_findings_person",
        "retaliation_findings",
        ["facility_id", "person_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_retaliation_findings_person", table_name="retaliation_findings")
    op.drop_table("retaliation_findings")
    op.drop_table("facility_letterheads")
    op.drop_table("notice_issues")
