"""The per-message path as ``publish now`` runs it, end to end into a real SMTP
server (aiosmtpd on 127.0.0.1): many connections at once on SQLite and PostgreSQL,
and the message bytes (built from segments dot-stuffed once per rendition) received
intact, lines that start with a dot included."""

from __future__ import annotations

from publisher.store import Store
from tests.mailserver import add_subscribers, smtp_site


def test_twenty_connections_send_everyone(any_store, mail_server, run_publish):
    """More connections than SQLAlchemy's default pool (5 + 10 overflow) holds: the
    store's pool is sized from ``delivery.smtp.connections``."""
    config = smtp_site(any_store, mail_server.port, connections=20)
    addresses = [f"reader{i:02}@example.com" for i in range(60)]
    add_subscribers(config, addresses)
    out = run_publish(any_store, "now").stdout
    assert "delivered: 60 sent, 0 queued for retry, 0 failed" in out
    assert sorted(r.rcpt_tos[0] for r in mail_server.handler.received) == addresses
    assert mail_server.handler.sessions == 20
    with Store.of(config) as store:
        assert store.ledger.delivery_counts() == {"sent": 60}
