"""publisher.reports on its own: whatever arrives at the return path is read without
an exception (it becomes events, is ignored, or is kept as unreadable)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.reports import Reader
from tests.bounce_relay import dsn

READER = Reader(named=lambda address: None, by_public_id=lambda public_id: None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_are_read_without_an_exception(raw):
    reading = READER.read(raw)
    assert reading.events or reading.ignored or reading.problem


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=40),
    st.text(max_size=80),
    st.sampled_from(["failed", "delayed", "delivered", "", "weird"]),
)
def test_any_status_and_diagnostic_in_a_dsn_give_a_known_kind(status, diagnostic, action):
    raw = dsn(
        "bounces@news.example.com", "reader@example.com", "5.1.1", "550 5.1.1 unknown", b"Subject: x\n\n"
    )
    raw = raw.replace(b"Status: 5.1.1", f"Status: {status}".encode("utf-8", "replace").replace(b"\n", b" "))
    raw = raw.replace(
        b"Diagnostic-Code: smtp; 550 5.1.1 unknown",
        b"Diagnostic-Code: smtp; "
        + diagnostic.encode("utf-8", "replace").replace(b"\n", b" ").replace(b"\r", b" "),
    )
    raw = raw.replace(b"Action: failed", f"Action: {action}".encode())
    reading = READER.read(raw)
    assert all(e.address == "reader@example.com" for e in reading.events)


def test_a_delay_notice_is_a_delayed_event_and_not_spam_is_ignored():
    delayed = dsn(
        "bounces@news.example.com",
        "slow@example.com",
        "4.4.1",
        "451 4.4.1 no answer from host",
        b"Subject: x\n\n",
        action="delayed",
    )
    (event,) = READER.read(delayed).events
    assert (event.kind, event.status, event.address) == ("delayed", "4.4.1", "slow@example.com")
    not_spam = (
        b"From: fbl@mail.example.net\nSubject: report\nMessage-ID: <n@x>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nreport\n--b\nContent-Type: message/feedback-report\n\n"
        b"Feedback-Type: not-spam\nOriginal-Rcpt-To: reader@example.com\n\n--b--\n"
    )
    reading = READER.read(not_spam)
    assert reading.events == [] and reading.ignored == "a 'not spam' report"
