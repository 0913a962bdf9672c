"""The indexes of what is still to send, partial (only queued deliveries): unclaimed
ones of an issue in subscriber order (a claim's search over a whole issue), and one
claim's (its commits' re-check), each read in order with no sort.
``ix_deliveries_queue`` (every status, rendition before claim) made both sort every
queued row of the issue each time, so sending slowed as the list grew (PostgreSQL,
50,000 readers: 42,000 rows sorted for each batch of 100)."""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_unclaimed",
        "deliveries",
        ["digest_id", "subscriber_id"],
        postgresql_where=sa.text("status = 'queued' AND claim_id IS NULL"),
        sqlite_where=sa.text("status = 'queued' AND claim_id IS NULL"),
    )
    op.create_index(
        "ix_deliveries_waiting",
        "deliveries",
        ["digest_id", "claim_id", "subscriber_id"],
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )


def downgrade() -> None:
    raise NotImplementedError("publisher stores are never downgraded")
