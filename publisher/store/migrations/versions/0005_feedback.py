"""Bounces, complaints and suppression: ``feedback_events`` (one row per report, its key
unique so a report read twice counts once) and ``suppressions`` (addresses and whole
``@domain``s never sent anything; a suspension for soft bounces has an end)."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("issue_id", sa.Integer),
        sa.Column("subscriber_id", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("diagnostic", sa.Text, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("recorded", sa.String(32), nullable=False),
    )
    op.create_index("ix_feedback_events_address", "feedback_events", ["address", "kind", "at"])
    op.create_index("ix_feedback_events_issue", "feedback_events", ["issue_id"])
    op.create_table(
        "suppressions",
        sa.Column("entry", sa.String(320), primary_key=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("expires", sa.String(32)),
    )


def downgrade() -> None:
    raise NotImplementedError("publisher stores are never downgraded")
