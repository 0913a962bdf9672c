"""Message bytes: the per-recipient fill gives exactly what encoding the whole,
already filled-in message would give, for any body (property-based)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.mail import RECIPIENT, UNSUBSCRIBE_URL, MessageTemplate, Recipient, html_escape

NOW = datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
pieces = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=120),
    st.sampled_from(
        [UNSUBSCRIBE_URL, RECIPIENT, "\n", "\r\n", "\r", " \n", "\t\n", "=", ".", "\n.\n", "x" * 90]
    ),
)
bodies = st.lists(pieces, max_size=12).map("".join)
emails = st.sampled_from(["reader@example.com", "o'brien+tag@example.co.uk", "x&y@example.org"])


def build(html: str, text: str) -> MessageTemplate:
    return MessageTemplate.build(
        sender="Daily <d@example.com>",
        subject="서울 digest",
        date=NOW,
        list_id="D <d.example.com>",
        html_body=html,
        text_body=text,
    )


@settings(max_examples=150, deadline=None)
@given(html=bodies, text=bodies, email=emails)
def test_filled_copy_equals_encoding_the_filled_message(html, text, email):
    url = "https://news.example.com/unsubscribe/abc.DEF_123?x=1&y=2"
    to = Recipient(email, "Ann", url, "mailto:d@example.com?subject=unsubscribe", "<1@example.com>")
    filled_html = html.replace(UNSUBSCRIBE_URL, html_escape(url)).replace(RECIPIENT, html_escape(email))
    filled_text = text.replace(UNSUBSCRIBE_URL, url).replace(RECIPIENT, email)
    message = build(html, text).personalise(to)
    assert message == build(filled_html, filled_text).personalise(to)
    body = message.split(b"\r\n\r\n", 1)[1]
    assert b"\r" not in body.replace(b"\r\n", b"") and b"\n" not in body.replace(b"\r\n", b"")
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    normalise = lambda s: s.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")  # noqa: E731
    assert normalise(parsed.get_body(("plain",)).get_content()) == normalise(filled_text)
