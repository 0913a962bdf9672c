"""The List-Unsubscribe mailto: link works: a mail to it, piped to
`publish subscribers unsubscribe-mail`, unsubscribes exactly its sender's address."""

import subprocess
from urllib.parse import unquote, urlsplit

import pytest

from tests.mailserver import smtp_site
from tests.sites import edit_config, mails, publish


def pipe(site, message: bytes) -> subprocess.CompletedProcess[str]:
    """A mail piped to ``publish subscribers unsubscribe-mail`` (as an MTA would)."""
    return publish(site, "subscribers", "unsubscribe-mail", check=False, input=message.decode())


@pytest.mark.slow
def test_a_mail_to_the_mailto_link_unsubscribes_that_reader_only(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "subscribers", "add", "other@example.com")
    run_publish(site, "now")
    digest = next(m for m in mails(site) if "reader@example.com" in m["To"])
    mailto = next(p.strip(" <>") for p in str(digest["List-Unsubscribe"]).split(",") if "mailto:" in p)
    parts = urlsplit(mailto)
    subject = unquote(parts.query.removeprefix("subject="))
    request = f"From: reader@example.com\r\nTo: {parts.path}\r\nSubject: {subject}\r\n\r\n\r\n".encode()

    result = pipe(site, request)
    assert result.returncode == 0 and "unsubscribed reader@example.com" in result.stdout
    listed = run_publish(site, "subscribers", "list").stdout
    assert "reader@example.com\tunsubscribed" in listed and "other@example.com\tactive" in listed
    assert pipe(site, request).returncode == 0  # idempotent

    forged = request.replace(subject[-6:].encode(), b"AAAAAA")
    refused = pipe(site, forged)
    assert refused.returncode == 0 and "ignored: the token is invalid" in refused.stderr
    junk = pipe(site, b"From: x@example.com\r\nSubject: hello\r\n\r\nhi\r\n")
    assert junk.returncode == 0 and "ignored" in junk.stderr
    assert "other@example.com\tactive" in run_publish(site, "subscribers", "list").stdout


def with_reply_to(site, address="Newsroom desk <desk@example.com>"):
    edit_config(site, "[digest]\n", f'[digest]\nreply_to = "{address}"\n')


def forwarded(site, to="desk@example.com"):
    return [m for m in mails(site) if to in str(m["To"])]


READER_REPLY = (
    "From: 김민지 <minji@example.kr>\r\nTo: digest@example.com\r\n"
    "Subject: Re: Korea JoongAng Daily\r\nMessage-ID: <reply-1@example.kr>\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n지하철 기사 잘 읽었습니다. A question about the subway story.\r\n"
).encode()


def test_a_reply_to_the_digest_address_is_forwarded_to_reply_to_through_the_maildir(site, run_publish):
    with_reply_to(site)
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "now")
    [digest] = [m for m in forwarded(site, "reader@example.com")]
    assert digest["Reply-To"] == "Newsroom desk <desk@example.com>"

    result = pipe(site, READER_REPLY)
    assert result.returncode == 0 and "forwarded to desk@example.com" in result.stderr, result.stderr
    [fwd] = forwarded(site)
    assert str(fwd["Reply-To"]) == "김민지 <minji@example.kr>"  # answering it answers the reader
    assert fwd["Auto-Submitted"] == "auto-forwarded" and fwd["Subject"] == "Fwd: Re: Korea JoongAng Daily"
    [attached] = [p for p in fwd.iter_attachments() if p.get_content_type() == "message/rfc822"]
    original = attached.get_content()
    assert original["Message-ID"] == "<reply-1@example.kr>"
    assert "지하철 기사 잘 읽었습니다" in original.get_content()

    # a request whose token does not verify reaches the desk too; an unsubscribed reader is no forward
    forged = b"From: x@example.com\r\nSubject: unsubscribe AAAA.BBBB.CCCC\r\n\r\nplease\r\n"
    assert "forwarded" in pipe(site, forged).stderr
    assert len(forwarded(site)) == 2
    # machines are not forwarded: an out-of-office reply, a bounce
    ooo = READER_REPLY.replace(b"Subject: Re:", b"Auto-Submitted: auto-replied\r\nSubject: Out of office Re:")
    bounce = b"From: MAILER-DAEMON@example.com\r\nSubject: Undelivered\r\n\r\nx\r\n"
    for machine in (ooo, bounce):
        out = pipe(site, machine)
        assert out.returncode == 0 and "not forwarded" in out.stderr
    assert len(forwarded(site)) == 2  # and our own forward, piped back, loops no further
    loop = pipe(site, forwarded(site)[0].as_bytes())
    assert "not forwarded" in loop.stderr and len(forwarded(site)) == 2


def test_a_reply_is_forwarded_over_smtp_and_a_refusal_leaves_it_with_the_mail_server(
    site, run_publish, mail_server
):
    with_reply_to(site, "desk@example.com")
    smtp_site(site, mail_server.port)
    result = pipe(site, READER_REPLY)
    assert result.returncode == 0, result.stderr
    [got] = mail_server.handler.to("desk@example.com")
    assert got.message["Subject"] == "Fwd: Re: Korea JoongAng Daily"
    mail_server.handler.faults["desk@example.com"] = "451-always"
    deferred = pipe(site, READER_REPLY)
    assert deferred.returncode == 75 and "could not forward" in deferred.stderr  # the MTA retries later
    assert "Traceback" not in deferred.stderr
