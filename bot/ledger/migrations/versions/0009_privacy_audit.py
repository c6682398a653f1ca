"""privacy_audit: exports, erasures and purges of message text

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "privacy_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_privacy_audit_created_at", "privacy_audit", ["created_at"])
    op.create_index("ix_privacy_audit_action", "privacy_audit", ["action"])


def downgrade() -> None:
    op.drop_index("ix_privacy_audit_action", table_name="privacy_audit")
    op.drop_index("ix_privacy_audit_created_at", table_name="privacy_audit")
    op.drop_table("privacy_audit")
