"""Schema version 1: the store as the first publisher release wrote it.

Never run: a store from before Alembic that says ``schema_version = 1`` is stamped here.
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("publisher stores are never downgraded")
