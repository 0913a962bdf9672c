"""Message bytes: the per-recipient fill gives exactly what encoding the whole,
already filled-in message would give, for any body and either transfer encoding
(property-based); the encoding chosen is the smaller one on the wire."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.mail import (
    BASE64,
    QUOTED_PRINTABLE,
    RECIPIENT,
    UNSUBSCRIBE_URL,
    MessageTemplate,
    Recipient,
    html_escape,
    sent_size,
    transfer_encoding,
)

NOW = datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
pieces = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=120),
    st.sampled_from(
        [UNSUBSCRIBE_URL, RECIPIENT, "\n", "\r\n", "\r", " \n", "\t\n", "=", ".", "\n.\n", "x" * 90]
    ),
)
bodies = st.lists(pieces, max_size=12).map("".join)
emails = st.sampled_from(["reader@example.com", "o'brien+tag@example.co.uk", "x&y@example.org"])


def build(html: str, text: str, encodings=(None, None)) -> MessageTemplate:
    return MessageTemplate.build(
        encodings=encodings,
        sender="Daily <d@example.com>",
        subject="서울 digest",
        date=NOW,
        list_id="D <d.example.com>",
        html_body=html,
        text_body=text,
    )


@settings(max_examples=150, deadline=None)
@given(
    html=bodies,
    text=bodies,
    email=emails,
    forced=st.sampled_from([(None, None), (BASE64, BASE64), (QUOTED_PRINTABLE, BASE64)]),
)
def test_filled_copy_equals_encoding_the_filled_message(html, text, email, forced):
    url = "https://news.example.com/unsubscribe/abc.DEF_123?x=1&y=2"
    to = Recipient(email, "Ann", url, "mailto:d@example.com?subject=unsubscribe", "<1@example.com>")
    filled_html = html.replace(UNSUBSCRIBE_URL, html_escape(url)).replace(RECIPIENT, html_escape(email))
    filled_text = text.replace(UNSUBSCRIBE_URL, url).replace(RECIPIENT, email)
    template = build(html, text, forced)
    message = template.personalise(to)
    assert message == build(filled_html, filled_text, template.encodings).personalise(to)
    assert message.data == re.sub(rb"(?m)^\.", b"..", message) + b".\r\n"  # SMTP's form, stuffed once
    body = message.split(b"\r\n\r\n", 1)[1]
    assert b"\r" not in body.replace(b"\r\n", b"") and b"\n" not in body.replace(b"\r\n", b"")
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    normalise = lambda s: s.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")  # noqa: E731
    assert normalise(parsed.get_body(("plain",)).get_content()) == normalise(filled_text)


def test_hangul_goes_base64_and_english_quoted_printable_whichever_is_smaller():
    korean = "<p>서울시는 오늘 새 지하철 노선을 개통했다고 밝혔다.</p>\n" * 200
    english = "<p>Seoul opened a new subway line today, the city said.</p>\n" * 200
    assert transfer_encoding(korean) == BASE64 and transfer_encoding(english) == QUOTED_PRINTABLE
    for body in (korean, english):
        chosen = sent_size(body)
        assert chosen == min(sent_size(body, BASE64), sent_size(body, QUOTED_PRINTABLE))
    # a Hangul syllable is 3 UTF-8 bytes: 9 as "=XX=XX=XX", 4 in base64
    assert sent_size(korean, QUOTED_PRINTABLE) > 1.9 * sent_size(korean, BASE64)
    message = build(korean, english).personalise(
        Recipient("r@example.com", "", "https://e.com/u", "mailto:d@example.com", "<1@e.com>")
    )
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    html = parsed.get_body(("html",))
    assert html["Content-Transfer-Encoding"] == "base64"
    assert parsed.get_body(("plain",))["Content-Transfer-Encoding"] == "quoted-printable"
    assert html.get_content().replace("\r\n", "\n") == korean
    raw = html.get_payload().encode("ascii")
    assert sent_size(korean) - 8 <= len(raw) <= sent_size(korean) + 8  # the parser may trim a line end
