"""Renditions: an issue as the readers who narrowed its newsletter to some sections
get it (one per distinct choice), and each delivery points to its rendition (NULL:
the whole issue, which every delivery before this revision was)."""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "renditions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest_id", sa.Integer, sa.ForeignKey("digests.id"), nullable=False),
        sa.Column("sections", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_renditions_digest", "renditions", ["digest_id"])
    # SQLite: a foreign key means rebuilding the table (a batch); named as PostgreSQL names it.
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("rendition_id", sa.Integer))
        batch.create_foreign_key("deliveries_rendition_id_fkey", "renditions", ["rendition_id"], ["id"])


def downgrade() -> None:
    raise NotImplementedError("publisher stores are never downgraded")
