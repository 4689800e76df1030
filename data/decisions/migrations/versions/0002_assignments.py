"""Assignments: which underwriter looks after a (policyholder, buyer) limit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("policyholder_id", sa.String(length=64), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("assigned_to", sa.String(length=128), nullable=False),
        sa.Column("assigned_by", sa.String(length=128), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint(
            "policyholder_id", "buyer_id", name=op.f("uq_assignments_policyholder_id_buyer_id")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_assignments_assigned_to"), "assignments", ["assigned_to"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_assignments_assigned_to"), table_name="assignments")
    op.drop_table("assignments")
