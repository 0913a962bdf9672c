"""Claims: a sender claims a batch of an issue's queued deliveries before sending them
(``publisher.store.claims``). A ``claims`` row is one sender's hold on its batches until
``expires`` (set by the database's clock); its id, monotonic, is the fencing token every
commit of outcomes checks (``deliveries.claim_id``). The queue index serves the claim's
search (queued, unclaimed, of one rendition, in subscriber order) and replaces
``ix_deliveries_status``, a prefix of it."""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest_id", sa.Integer, sa.ForeignKey("digests.id"), nullable=False),
        sa.Column("worker", sa.Text, nullable=False),
        sa.Column("expires", sa.String(32), nullable=False),
        sqlite_autoincrement=True,  # ids never reused: a fencing token only grows
    )
    op.create_index("ix_claims_digest", "claims", ["digest_id"])
    op.add_column("deliveries", sa.Column("claim_id", sa.Integer))  # no rebuild: no foreign key
    op.drop_index("ix_deliveries_status", "deliveries")
    op.create_index(
        "ix_deliveries_queue",
        "deliveries",
        ["digest_id", "status", "rendition_id", "claim_id", "subscriber_id"],
    )


def downgrade() -> None:
    raise NotImplementedError("publisher stores are never downgraded")
