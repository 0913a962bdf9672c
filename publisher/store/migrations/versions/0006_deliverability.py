"""Deliverability: each delivery's last SMTP reply (``reply_code``, ``reply_status``),
recipient domains' MX hosts kept between runs (``mx_hosts``), and the tokens of signed
webhook requests already taken (``webhook_tokens``: a replay carries one)."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("reply_code", sa.Integer))
    op.add_column("deliveries", sa.Column("reply_status", sa.String(16)))
    op.create_table(
        "mx_hosts",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("hosts", sa.Text, nullable=False),
        sa.Column("checked", sa.String(32), nullable=False),
    )
    op.create_table(
        "webhook_tokens",
        sa.Column("token", sa.String(200), primary_key=True),
        sa.Column("seen", sa.String(32), nullable=False),
    )
    op.create_index("ix_webhook_tokens_seen", "webhook_tokens", ["seen"])


def downgrade() -> None:
    raise NotImplementedError("publisher stores are never downgraded")
