"""request columns: output mode, verifier outcome, time to first token, queue wait, delivery path, redactions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("output_mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch.add_column(
            sa.Column("verify_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch.add_column(sa.Column("verify_detail", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("ttft_ms", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("visible_ttft_ms", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("queue_ms", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("delivery", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch.add_column(sa.Column("redactions", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        for name in (
            "redactions",
            "delivery",
            "queue_ms",
            "visible_ttft_ms",
            "ttft_ms",
            "verify_detail",
            "verify_status",
            "output_mode",
        ):
            batch.drop_column(name)
