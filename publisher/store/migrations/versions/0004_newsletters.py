"""Newsletters: one subscription per (subscriber, newsletter); issues belong to a newsletter.

- ``subscriptions``: every pending or active subscriber gets the same subscription to the
  newsletter ``digest`` (the one a site without ``[[newsletters]]`` has), unsubscribed and
  bounced ones an unsubscribed one: a site keeps sending to exactly whom it sent before.
- ``digests`` (the issues) gain ``newsletter``: existing rows belong to ``digest``. Their
  ``key`` stays the date part (``YYYY-MM-DD[-N]``), now unique per newsletter; the issue key
  shown to people is ``<newsletter>/<key>``, so the digest 2026-12-04 of a site before this
  revision is the issue ``digest/2026-12-04``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("newsletter", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sections", sa.Text, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("changed", sa.String(32), nullable=False),
    )
    op.create_index("ix_subscriptions_newsletter", "subscriptions", ["newsletter", "status", "subscriber_id"])
    op.execute(
        "INSERT INTO subscriptions (subscriber_id, newsletter, status, sections, created, changed) "
        "SELECT id, 'digest', CASE WHEN status IN ('pending', 'active') THEN status "
        "ELSE 'unsubscribed' END, '[]', created, changed FROM subscribers"
    )

    if op.get_bind().dialect.name == "sqlite":  # a unique constraint changes by rebuilding the table
        naming = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
        with op.batch_alter_table("digests", recreate="always", naming_convention=naming) as batch:
            batch.add_column(sa.Column("newsletter", sa.String(64), nullable=False, server_default="digest"))
            batch.drop_constraint("uq_digests_key", type_="unique")
            batch.create_unique_constraint("uq_digests_newsletter_key", ["newsletter", "key"])
        return
    op.add_column("digests", sa.Column("newsletter", sa.String(64), nullable=False, server_default="digest"))
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints("digests"):
        if constraint["column_names"] == ["key"]:
            op.drop_constraint(constraint["name"], "digests", type_="unique")
    op.create_unique_constraint("uq_digests_newsletter_key", "digests", ["newsletter", "key"])


def downgrade() -> None:
    raise NotImplementedError("publisher stores are never downgraded")
