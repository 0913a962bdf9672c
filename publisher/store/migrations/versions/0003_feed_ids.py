"""Schema version 3: every article keeps the feed id minted when it was first collected."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("articles", sa.Column("feed_id", sa.Text))
    missing = sa.column("feed_id").is_(None)
    op.create_index(
        "ix_articles_no_feed_id", "articles", ["id"], sqlite_where=missing, postgresql_where=missing
    )


def downgrade() -> None:
    raise NotImplementedError("publisher stores are never downgraded")
