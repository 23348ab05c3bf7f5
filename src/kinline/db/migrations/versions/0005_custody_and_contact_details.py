"""custody and contact details

A person's record at a facility is in custody, released or transferred out;
``custody_changed_at`` says when it last changed, ``transferred_to`` where a
transferred-out record went and ``transferred_from`` where a transferred-in
one came from (the person keeps one id across facilities). ``admitted_at`` is
when the record was opened. A contact gets the language they are written to
in and the country their numbers are read in.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kinline.db.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "custody_status", sa.String(length=16), server_default="in_custody", nullable=False
            )
        )
        batch_op.add_column(sa.Column("admitted_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("custody_changed_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("transferred_to", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("transferred_from", sa.String(length=64), nullable=True))

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("country")
        batch_op.drop_column("language")

    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("transferred_from")
        batch_op.drop_column("transferred_to")
        batch_op.drop_column("custody_changed_at")
        batch_op.drop_column("admitted_at")
        batch_op.drop_column("custody_status")
