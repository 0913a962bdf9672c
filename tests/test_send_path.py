"""The per-message path as ``publish now`` runs it, end to end into a real SMTP
server (aiosmtpd on 127.0.0.1): many connections at once on SQLite and PostgreSQL,
and the message bytes (built from segments dot-stuffed once per rendition) received
intact, lines that start with a dot included."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from publisher.config import SmtpConfig
from publisher.delivery.smtp import SmtpTransport
from publisher.mail import DkimSigner, Message, MessageTemplate, Recipient
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


NOW = datetime(2025, 5, 27, 7, 0, tzinfo=UTC)
# Lines that begin with a period: in the shared text, as a placeholder's line (filled per
# recipient), right after one (a shared segment that begins with it), a lone "." (which
# would end DATA early) and "..". Quoted-printable keeps a leading "." as it is, except
# on a line of its own ("=2E").
DOTS_TEXT = (
    ".NET arrives in Seoul\nplain line\n.. two dots\n@@RECIPIENT@@\n.right after a placeholder\n"
    ".@@UNSUBSCRIBE_URL@@ starts with a dot\n.\nend\n"
)
DOTS_HTML = (
    "<p>\n.intro line of an article\n</p>\n<p>@@RECIPIENT@@</p>\n.after the placeholder\n"
    ".<a href='@@PREFERENCES_URL@@'>x</a>\n" + "x" * 75 + ".soft break before a dot\n"
)


HEADERS = {"sender": "Daily <digest@news.example.com>", "subject": "Dots", "date": NOW}


def dotted(text: str = DOTS_TEXT, html: str = DOTS_HTML) -> Message:
    template = MessageTemplate.build(
        **HEADERS, list_id='"Daily" <d.example.com>', html_body=html, text_body=text
    )
    to = Recipient(
        "reader@example.com",
        "Reader",
        "https://news.example.com/unsubscribe/T",
        "mailto:digest@news.example.com?subject=unsubscribe%20T",
        "<1.reader@news.example.com>",
        "https://news.example.com/preferences/P",
    )
    return template.personalise(to)


def stuffed_whole(message: bytes) -> bytes:
    """What the transport sent before segments were stuffed: one pass over the whole message."""
    return re.sub(rb"(?m)^\.", b"..", message) + b".\r\n"


def test_prebuilt_data_is_the_whole_message_stuffed():
    message = dotted()
    lines = bytes(message).split(b"\r\n")
    assert b".NET arrives in Seoul" in lines and b".right after a placeholder" in lines
    assert b".https://news.example.com/unsubscribe/T starts with a dot" in lines
    assert any(line.startswith(b".soft break") for line in lines)  # after a soft line break
    assert b".." in message.data and message.data.endswith(b"\r\n.\r\n")
    assert message.data == stuffed_whole(message)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one command at a time"])
def test_lines_starting_with_a_dot_arrive_intact(mail_server, pipelining):
    mail_server.handler.pipelining = pipelining
    message = dotted()
    transport = SmtpTransport(SmtpConfig(host="127.0.0.1", port=mail_server.port, security="none", timeout=5))
    try:
        transport.send("digest@news.example.com", "reader@example.com", message)
    finally:
        transport.close()
    [received] = mail_server.handler.received
    assert received.data == bytes(message)
    lines = received.message.get_body(("plain",)).get_content().splitlines()
    assert lines[:3] == [".NET arrives in Seoul", "plain line", ".. two dots"]
    assert lines[-4:] == [
        ".right after a placeholder",
        ".https://news.example.com/unsubscribe/T starts with a dot",
        ".",
        "end",
    ]


def test_a_signed_message_keeps_its_stuffed_form(dkim_key):
    key_file, _public = dkim_key
    signed = DkimSigner.from_file("s", "example.com", key_file).sign(dotted())
    assert isinstance(signed, Message) and signed.startswith(b"DKIM-Signature:")
    assert signed.data == stuffed_whole(signed)


def test_an_article_title_starting_with_a_dot_arrives_intact(site, mail_server, run_publish):
    (site / "seeds" / "999_dotnet.txt").write_text(
        ".NET comes to Seoul's start-ups\nPublished: 27 May. 2025, 09:00\n"
        ".NET 9 is what three of the city's new companies build on.\n",
        encoding="utf-8",
    )
    config = smtp_site(site, mail_server.port)
    add_subscribers(config, ["reader@example.com"])
    run_publish(site, "now")
    [received] = mail_server.handler.received
    text = received.message.get_body(("plain",)).get_content().splitlines()
    assert ".NET comes to Seoul's start-ups" in text
    assert ".NET comes to Seoul" in received.message.get_body(("html",)).get_content()


def test_a_large_queue_is_claimed_in_larger_batches_and_its_end_in_the_smallest(site, mail_server):
    """Each claim is a transaction (on PostgreSQL a few round trips, ~5 ms of work even on
    SQLite): while much is left a sender claims up to five times ``claim_size`` at once;
    the last of the queue in ``claim_size`` batches, so every sender shares it instead of
    one sending a large last batch alone."""
    from publisher import pipeline
    from publisher.delivery.sender import SendPolicy, send_queued
    from publisher.messages import Messages
    from publisher.pipeline import Step
    from publisher.store.claims import Claim

    config = smtp_site(site, mail_server.port)
    add_subscribers(config, [f"reader{i:03}@example.com" for i in range(600)])
    pipeline.run(config, pipeline.Options(), (Step.COLLECT, Step.DIGEST))
    asked: list[int] = []

    class Counted(Claim):
        def take(self, size: int):  # noqa: ANN201
            asked.append(size)
            return super().take(size)

    with Store.of(config) as store:
        [record] = store.ledger.unfinished()
        part = store.ledger.part(record.id, None, record.newsletter)
        part.claim = lambda digest_id, ttl: Counted(store.engine, digest_id, record.newsletter, ttl, (None,))
        messages = Messages.for_site(config, store)
        report = send_queued(
            part,
            record.id,
            lambda sub: messages.envelope(record.id, sub),
            messages.digest(record, record.newsletter),
            lambda: SmtpTransport(config.delivery.smtp),
            SendPolicy(workers=2, claim_size=5),
        )
    assert report.sent == 600 and len(mail_server.handler.received) == 600
    assert asked[0] == 25  # five times claim_size: 600 left
    assert asked[-2:] == [5, 5]  # the end: the smallest (the last take finds nothing left)
    assert len(asked) < 600 // 5  # fewer claims than claim_size batches would make
