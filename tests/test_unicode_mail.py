"""Any Unicode in a site's settings reaches mail as ASCII headers (RFC 2047, folded),
the List-Id's id stays ASCII, every mail comes from one builder (and is signed the
same way), and a run that cannot build its messages leaves no digest stuck."""

from __future__ import annotations

import base64
import mailbox
import re
import sqlite3
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesParser
from email.utils import parseaddr

import dkim
import pytest

from publisher import config as configuration
from publisher import pipeline
from publisher.mail import MessageTemplate, Recipient, encoded_header, list_id, phrase
from publisher.messages import Messages
from publisher.models import Subscriber
from publisher.signup import Signup
from publisher.store import Store
from publisher.tokens import signer_for
from tests.sites import edit_config

HANGUL_TITLE = "중앙일보 코리아 — 오늘의 뉴스"


def raw_messages(site):
    box = mailbox.Maildir(site / "outbox", create=False)
    return [box.get_bytes(k) for k in sorted(box.keys())]


def header_lines(raw: bytes) -> list[bytes]:
    return re.split(rb"\r?\n", raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0])


def digests_in(site) -> list[tuple[str, str]]:
    with sqlite3.connect(site / "publisher.db") as db:
        return db.execute("SELECT key, status FROM digests ORDER BY id").fetchall()


def hangul_site(site):
    edit_config(site, 'title = "Korea JoongAng Daily"', f'title = "{HANGUL_TITLE}"')
    edit_config(
        site,
        'from = "Korea JoongAng Daily <digest@news.example.com>"',
        'from = "중앙일보 편집국 \\"다이제스트\\" <digest@news.example.com>"',
    )


@pytest.mark.slow
def test_a_hangul_title_sends_its_digest_with_ascii_headers(site, run_publish):
    hangul_site(site)
    run_publish(site, "subscribers", "add", "reader@example.com", "--name", "김민지")
    run_publish(site, "collect")
    assert run_publish(site, "digest", "--preview", str(site / "preview.html")).returncode == 0
    assert HANGUL_TITLE in (site / "preview.html").read_text(encoding="utf-8")
    result = run_publish(site, "now")
    assert "Traceback" not in result.stderr
    (raw,) = raw_messages(site)
    for line in header_lines(raw):
        assert line.isascii() and len(line) <= 998, line
    for word in re.findall(rb"=\?[^?]+\?[bBqQ]\?[^?]*\?=", raw.split(b"\n\n", 1)[0]):
        assert len(word) <= 75, word
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    # The phrase is encoded words (RFC 2047 forbids them inside quotes): decoded, the title.
    assert msg["List-Id"] == f"{HANGUL_TITLE} <digest.127.0.0.1>"
    assert re.search(rb"\nList-Id: =\?utf-8\?b\?", raw)
    assert msg["From"].addresses[0].display_name == "중앙일보 편집국 다이제스트"  # quotes: syntax
    assert msg["To"].addresses[0].display_name == "김민지"
    assert HANGUL_TITLE in str(msg["Subject"])
    assert digests_in(site)[0][1] == "done"


@pytest.mark.slow
def test_list_id_comes_from_digest_list_id_never_from_the_title(site, run_publish):
    hangul_site(site)
    edit_config(site, "skip_if_empty = true", 'skip_if_empty = true\nlist_id = "news.joongang.example"')
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "now")
    (raw,) = raw_messages(site)
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert msg["List-Id"] == f"{HANGUL_TITLE} <digest.news.joongang.example>"


def test_a_non_ascii_list_id_is_a_config_error(site, run_publish):
    edit_config(site, "skip_if_empty = true", 'skip_if_empty = true\nlist_id = "뉴스.example"')
    result = run_publish(site, "now", check=False)
    assert result.returncode == 2
    assert "digest.list_id" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_run_that_cannot_render_its_digest_leaves_no_stuck_digest(site, run_publish):
    (site / "templates").mkdir()
    (site / "templates" / "digest.txt").write_text(
        "{{ site.title }}\n{{ no_such_field }}\n", encoding="utf-8"
    )
    run_publish(site, "subscribers", "add", "reader@example.com")
    for _ in range(2):
        failed = run_publish(site, "now", check=False)
        assert failed.returncode == 1, failed.stderr
        assert "digest.txt line 2" in failed.stderr and "no_such_field" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert digests_in(site) == []
    (site / "templates" / "digest.txt").unlink()
    run_publish(site, "now")
    assert [status for _, status in digests_in(site)] == ["done"]
    assert len(raw_messages(site)) == 1


@pytest.mark.slow
def test_a_digest_an_earlier_run_left_queued_is_finished_by_the_next(site, run_publish):
    """What an older version left after crashing while sending (recorded, queued,
    nothing sent): the next run sends it and starts no second digest."""
    hangul_site(site)
    run_publish(site, "subscribers", "add", "reader@example.com")
    config = configuration.load(site / "config.toml")
    run_publish(site, "collect")
    store = Store.open(config.store_url)
    try:
        pipeline.prepare_digest(config, store, datetime.now(UTC), pipeline.Options(), pipeline.RunReport())
    finally:
        store.close()
    assert [status for _, status in digests_in(site)] == ["sending"]
    run_publish(site, "now")
    assert [status for _, status in digests_in(site)] == ["done"]
    assert len(raw_messages(site)) == 1


def test_encoded_words_stay_within_75_characters_and_never_split_a_character():
    text = "가나다라마바사아자차카타파하" * 6 + " 😀 e\u0301"
    header = encoded_header("Subject", text)
    assert header.isascii()
    lines = header.decode("ascii").split("\r\n")
    assert all(len(line) <= 78 for line in lines if line)
    assert all(len(w) <= 75 for w in re.findall(r"=\?[^?]+\?[bq]\?[^?]*\?=", header.decode(), re.I))
    assert str(BytesParser(policy=policy.default).parsebytes(header + b"\r\n")["Subject"]) == text
    value = list_id(text, "digest.example.com")
    words = value.rsplit(" <", 1)[0].split(" ")
    assert all(len(w) <= 75 for w in words)
    assert all(base64.b64decode(w[10:-2]).decode("utf-8") for w in words)  # each word whole UTF-8
    assert phrase('A "quoted" \\ name') == '"A \\"quoted\\" \\\\ name"'


def test_the_confirmation_mail_comes_from_the_same_builder_and_is_signed(site, dkim_key):
    key_file, public = dkim_key
    hangul_site(site)
    edit_config(
        site,
        'maildir = "outbox"\n',
        'maildir = "outbox"\ndkim_selector = "mail2026"\ndkim_domain = "news.example.com"\n'
        f'dkim_key_file = "{key_file}"\n',
    )
    config = configuration.load(site / "config.toml")
    store = Store.open(config.store_url)
    try:
        signer = signer_for(config.server.secret_env, store.meta.get_or_create_secret)
        sub = Subscriber(1, "pub1", "reader@example.com", "")
        raw = Signup(config, store, signer).message(sub, "confirm", datetime(2026, 1, 10, tzinfo=UTC))
    finally:
        store.close()
    for line in header_lines(raw):
        assert line.isascii()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert "DKIM-Signature" in msg and msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Id"] is None and msg["List-Unsubscribe"] is None
    assert re.fullmatch(r"<[0-9.]+\.subscribe@127\.0\.0\.1>", msg["Message-ID"])
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)


def test_digest_and_confirmation_share_the_header_encoding(site):
    hangul_site(site)
    config = configuration.load(site / "config.toml")
    store = Store.open(config.store_url)
    try:
        messages = Messages.for_site(config, store)
        assert messages.list_id() == list_id(HANGUL_TITLE, "digest.127.0.0.1")
        assert messages.list_id("daily", "아침 브리핑") == phrase("아침 브리핑") + " <daily.127.0.0.1>"
        assert messages.message_id("2026-01-10", "pub1") == "<2026-01-10.pub1@127.0.0.1>"
    finally:
        store.close()


@pytest.mark.parametrize("name", ["김민지", 'Kim "MJ" Min-ji', ""])
def test_to_names_of_any_kind_round_trip(name):
    template = MessageTemplate.build(
        sender=f"{HANGUL_TITLE} <d@example.com>",
        subject=HANGUL_TITLE,
        date=datetime(2026, 1, 10, tzinfo=UTC),
        list_id=list_id(HANGUL_TITLE, "digest.example.com"),
        html_body="<p>본문</p>",
        text_body="본문",
    )
    raw = template.personalise(
        Recipient("r@example.com", name, "https://e.com/u/t", "mailto:d@e.com", "<1@e>")
    )
    assert all(line.isascii() for line in header_lines(raw))
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    # RFC 2047 decoding (the default policy's address parser puts a space between
    # adjacent encoded words of a display name, which RFC 2047 6.2 says to drop).
    assert parseaddr(decoded(msg["To"])) == (name, "r@example.com")
    assert parseaddr(decoded(msg["From"])) == (HANGUL_TITLE, "d@example.com")


def decoded(value: str) -> str:
    return str(make_header(decode_header(value)))
