"""covering indexes for the digest and the review

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER_WINDOW = [
    "purpose", "created_at", "skill", "tier", "escalated_from", "status", "cost_known",
    "cost_usd", "latency_ms", "user_id", "id",
]  # fmt: skip


def upgrade() -> None:
    # Plain index DDL (no batch mode): nothing here needs the table rebuilt.
    op.drop_index("ix_requests_purpose", table_name="requests")
    op.create_index("ix_requests_user_window", "requests", USER_WINDOW)
    op.create_index("ix_feedback_request_score", "feedback", ["request_id", "score"])


def downgrade() -> None:
    op.drop_index("ix_feedback_request_score", table_name="feedback")
    op.drop_index("ix_requests_user_window", table_name="requests")
    op.create_index("ix_requests_purpose", "requests", ["purpose"])
