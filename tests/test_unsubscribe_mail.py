"""The List-Unsubscribe mailto: link works: a mail to it, piped to
`publish subscribers unsubscribe-mail`, unsubscribes exactly its sender's address."""

import mailbox
import os
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from urllib.parse import unquote, urlsplit

from tests.conftest import ROOT


def pipe(site, message: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "publisher",
            "--config",
            str(site / "config.toml"),
            "subscribers",
            "unsubscribe-mail",
        ],
        input=message.decode(),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )


def test_a_mail_to_the_mailto_link_unsubscribes_that_reader_only(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "subscribers", "add", "other@example.com")
    run_publish(site, "now")
    box = mailbox.Maildir(site / "outbox", create=False)
    digest = next(
        m
        for m in (BytesParser(policy=policy.default).parsebytes(box.get_bytes(k)) for k in box.keys())
        if "reader@example.com" in m["To"]
    )
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
