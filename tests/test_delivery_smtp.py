"""The digest over SMTP to a real server on 127.0.0.1 (aiosmtpd): the message as a
mail client parses it, header injection, SMTP smuggling, fault injection, the
ledger's promises (exactly once, suppression, retries) and parallel connections."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from datetime import UTC, datetime
from email.header import decode_header, make_header

import pytest
from sqlalchemy import func, select

from publisher import audience, pipeline
from publisher import config as configuration
from publisher.config import SmtpConfig
from publisher.delivery.sender import IN_FLIGHT, SendPolicy, send_queued
from publisher.delivery.smtp import SmtpTransport
from publisher.delivery.unwell import GIVE_UP_AFTER
from publisher.mail import MessageTemplate, Recipient
from publisher.messages import Messages
from publisher.store import Store
from publisher.store.schema import deliveries
from tests.mailserver import MailServer, add_subscribers, ledger_state, smtp_site
from tests.sites import edit_config

NOW = datetime(2025, 5, 27, 7, 0, tzinfo=UTC)


@pytest.fixture(params=["pipelining", "one command at a time"])
def server(request):
    with MailServer() as s:
        s.handler.pipelining = request.param == "pipelining"
        yield s


def template(subject="Daily digest", text="Hello @@RECIPIENT@@\n", html="<p>Hello @@RECIPIENT@@</p>"):
    return MessageTemplate.build(
        sender="Korea JoongAng Daily <digest@news.example.com>",
        subject=subject,
        date=NOW,
        list_id="Korea JoongAng Daily <digest.news.example.com>",
        html_body=html,
        text_body=text,
    )


def recipient(email, name=""):
    return Recipient(
        email=email,
        name=name,
        unsubscribe_url="https://news.example.com/unsubscribe/TOKEN",
        unsubscribe_mailto="mailto:digest@news.example.com?subject=unsubscribe%20TOKEN",
        message_id=f"<2025-05-27.{email.split('@')[0]}@news.example.com>",
    )


def send_one(server, message, to):
    transport = SmtpTransport(SmtpConfig(host="127.0.0.1", port=server.port, security="none", timeout=5))
    try:
        transport.send("digest@news.example.com", to, message)
    finally:
        transport.close()


def test_digest_over_smtp_has_the_promised_headers_and_both_parts(site, server):
    config = smtp_site(site, server.port)
    add_subscribers(config, ["reader@example.com", "second@example.com"])
    report = pipeline.run(config, pipeline.Options())
    assert (report.delivery.sent, report.delivery.failed, report.delivery.queued) == (2, 0, 0)
    [received] = server.handler.to("reader@example.com")
    assert received.mail_from == "digest@news.example.com"
    msg = received.message
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    for title in ("OpenAI to open office in Seoul", "Kospi rebounds"):
        assert title in html and title in text
    assert msg["To"] == "reader@example.com"
    assert str(make_header(decode_header(msg["Subject"]))).startswith("Korea JoongAng Daily — your digest")
    assert msg["List-Id"] == '"Korea JoongAng Daily" <digest.127.0.0.1>'
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert https.startswith("http://127.0.0.1:8000/unsubscribe/") and mailto.startswith("mailto:digest@")
    assert https in html and https in text  # the footer link is this recipient's own
    assert "reader@example.com" not in msg["List-Unsubscribe"]
    assert re.fullmatch(r"<[\w.-]+@127\.0\.0\.1>", msg["Message-ID"])
    assert msg["Date"] and msg["MIME-Version"] == "1.0"
    raw = received.data
    assert b"\r\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    [other] = server.handler.to("second@example.com")
    assert other.message["Message-ID"] != msg["Message-ID"]


def test_message_id_is_stable_for_the_same_digest_and_subscriber(site, server):
    config = smtp_site(site, server.port)
    add_subscribers(config, ["reader@example.com"])
    pipeline.run(config, pipeline.Options())
    store = Store.open(config.store_url)
    try:
        [record] = store.ledger.all_digests()
        [sub] = store.subscribers.all()
        again = Messages.for_site(config, store).digest(record)(sub)
        later = Messages.for_site(config, store).digest(record)(sub)
    finally:
        store.close()
    [received] = server.handler.to("reader@example.com")
    ids = {re.search(rb"Message-ID: (\S+)", m).group(1) for m in (received.data, again, later)}
    assert len(ids) == 1


def test_non_ascii_subject_and_names_are_rfc2047_encoded(server):
    subject = "코리아중앙데일리 — 5월 27일 digest"
    message = template(subject=subject).personalise(recipient("minji@example.com", "김민지"))
    head = message.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # every header is 7-bit
    assert b"=?utf-8?" in head
    send_one(server, message, "minji@example.com")
    msg = server.handler.to("minji@example.com")[0].message
    assert msg["Subject"] == subject
    assert msg["To"].addresses[0].display_name == "김민지"


@pytest.mark.parametrize(
    "evil",
    [
        "Breaking\r\nBcc: victim@evil.example",
        "Breaking\nBcc: victim@evil.example",
        "Breaking\rBcc: victim@evil.example",
        "Breaking\u2028Bcc: victim@evil.example",
        "Breaking\x85Bcc: victim@evil.example",
    ],
)
def test_no_new_header_from_titles_or_names(server, evil):
    message = template(subject=evil).personalise(recipient("reader@example.com", evil))
    send_one(server, message, "reader@example.com")
    [received] = server.handler.to("reader@example.com")
    msg = received.message
    assert msg["Bcc"] is None and "victim@evil.example" not in received.rcpt_tos
    assert "Bcc: victim@evil.example" in str(msg["Subject"])  # kept as text on one line
    assert not any(line.startswith(b"Bcc") for line in received.data.split(b"\r\n"))


def test_injection_through_an_article_title_and_author_stays_in_its_header(site, server):
    (site / "seeds" / "010_evil.md").write_text(
        '+++\ntitle = "Evil\\r\\nBcc: victim@evil.example\\r\\nX-Injected: title"\n'
        "published = 2026-01-01T10:00:00+09:00\n"
        'authors = ["Kim\\nX-Injected: author"]\n+++\nBody.\n',
        encoding="utf-8",
    )
    edit_config(
        site,
        'subject = "{{ site.title }} — your digest for {{ date }}"',
        'subject = "{{ articles[0].title }} by {{ articles[0].article.authors[0].name }}"',
    )
    config = smtp_site(site, server.port)
    add_subscribers(config, ["reader@example.com"])
    pipeline.run(config, pipeline.Options())
    [received] = server.handler.to("reader@example.com")
    msg = received.message
    assert received.rcpt_tos == ["reader@example.com"]
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert msg["Subject"].startswith("Evil Bcc: victim@evil.example X-Injected: title by Kim")


def test_a_body_holding_an_smtp_dialogue_arrives_as_text_and_smuggles_nothing(server):
    smuggle = (
        "Before\r\n.\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n"
        "Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
        "bare LF\n.\nMAIL FROM:<evil2@example.net>\nbare CR\r.\rend\n"
    )
    message = template(text="@@RECIPIENT@@\n" + smuggle, html="<pre>" + smuggle + "</pre>").personalise(
        recipient("reader@example.com")
    )
    assert b"\r\n.\r\n" not in message
    body = message.replace(b"\r\n", b"")
    assert b"\r" not in body and b"\n" not in body
    send_one(server, message, "reader@example.com")
    time.sleep(0.1)
    assert len(server.handler.received) == 1
    assert not server.handler.to("victim@example.net")
    msg = server.handler.received[0].message
    text = msg.get_body(("plain",)).get_content()
    assert "MAIL FROM:<evil@example.net>" in text and "MAIL FROM:<evil2@example.net>" in text
    assert msg["Subject"] == "Daily digest"


def test_faults_are_retried_recorded_and_suppressed(site, server):
    faults = {
        "once@example.com": "451-once",
        "nouser@example.com": "550-no-such-user",
        "full@example.com": "552-full",
        "hangup@example.com": "421-mid-session",
        "drop@example.com": "drop-after-dot",
    }
    server.handler.faults.update(faults)
    normal = [f"reader{i}@example.com" for i in range(8)]
    config = smtp_site(site, server.port)
    add_subscribers(config, [*faults, *normal])
    report = pipeline.run(config, pipeline.Options())
    assert (report.delivery.sent, report.delivery.failed, report.delivery.queued) == (11, 2, 0)
    assert report.delivery.bounced == 1
    for address in [*normal, "once@example.com", "hangup@example.com"]:
        assert len(server.handler.to(address)) == 1, address
    assert 1 <= len(server.handler.to("drop@example.com")) <= 2  # the one in flight may arrive twice
    assert server.handler.tried["once@example.com"] == 2
    assert not server.handler.to("nouser@example.com") and not server.handler.to("full@example.com")
    counts, statuses = ledger_state(config)
    assert counts == {"sent": 11, "failed": 2}
    assert statuses["nouser@example.com"] == "bounced"  # 5.1.1: at once
    assert statuses["full@example.com"] == "active"  # one hard failure of bounce_limit 3
    assert any("5.1.1" in e for e in report.delivery.errors)


def test_other_hard_failures_suppress_after_bounce_limit(tmp_path, server):
    server.handler.faults["full@example.com"] = "552-full"
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    audience.add(store, "full@example.com")
    audience.add(store, "fine@example.com")
    smtp = SmtpConfig(host="127.0.0.1", port=server.port, security="none", timeout=5)
    policy = SendPolicy(workers=1, retries=0, retry_delay=0, bounce_limit=3)
    seen = []
    for n in range(4):
        record = store.ledger.create_digest(f"2025-05-2{n}", "s", "<p>x</p>", "x", [], NOW)
        report = send_queued(
            store.ledger,
            record.id,
            "digest@news.example.com",
            lambda s: b"Subject: x\r\n\r\nx\r\n",
            lambda: SmtpTransport(smtp),
            policy,
        )
        seen.append((report.sent, report.failed, store.subscribers.get("full@example.com").status))
    store.close()
    assert seen == [(1, 1, "active"), (1, 1, "active"), (1, 1, "bounced"), (1, 0, "bounced")]


def test_temporary_failures_stay_queued_and_the_next_run_sends_them(site, server):
    server.handler.faults["busy@example.com"] = "451-always"
    config = smtp_site(site, server.port)
    add_subscribers(config, ["busy@example.com", "reader@example.com"])
    report = pipeline.run(config, pipeline.Options())
    assert (report.delivery.sent, report.delivery.queued) == (1, 1)
    assert server.handler.tried["busy@example.com"] == 3  # the first try and two retries
    counts, statuses = ledger_state(config)
    assert counts == {"sent": 1, "queued": 1} and statuses["busy@example.com"] == "active"
    del server.handler.faults["busy@example.com"]
    report = pipeline.run(config, pipeline.Options())
    assert (report.delivery.sent, report.delivery.queued) == (1, 0)
    assert len(server.handler.to("busy@example.com")) == 1
    assert len(server.handler.to("reader@example.com")) == 1
    store = Store.open(config.store_url)
    assert [d.status for d in store.ledger.all_digests()] == ["done"]
    store.close()


def test_an_unsubscribe_committed_while_sending_wins(tmp_path, server):
    """The audience is read when a batch is claimed and again at every commit of
    outcomes: a reader who leaves while the issue goes out gets no message handed to the
    transport after the next commit. Here c leaves while a's copy is built, b's copy
    waits for the commit of a's outcome, so c's comes after it."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        audience.add(store, address)
    record = store.ledger.create_digest("2025-05-27", "s", "<p>x</p>", "x", [], NOW)
    committed = threading.Event()

    def message_for(sub):
        if sub.email == "a@example.com":  # while a's copy goes out, c unsubscribes
            audience.remove(store, "c@example.com")
        if sub.email == "b@example.com":
            assert committed.wait(10)  # a's outcome (and the audience read again) committed
        return b"Subject: x\r\n\r\nx\r\n"

    smtp = SmtpConfig(host="127.0.0.1", port=server.port, security="none", timeout=5)
    report = send_queued(
        store.ledger,
        record.id,
        "digest@news.example.com",
        message_for,
        lambda: SmtpTransport(smtp),
        progress=lambda done, total: committed.set(),
    )
    counts = store.ledger.delivery_counts()
    store.close()
    assert (report.sent, report.skipped) == (2, 1)
    assert not server.handler.to("c@example.com")
    assert counts == {"sent": 2, "skipped": 1}


def test_a_reader_who_left_before_the_claim_is_skipped_without_a_message(tmp_path, server):
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    for address in ("a@example.com", "b@example.com"):
        audience.add(store, address)
    record = store.ledger.create_digest("2025-05-27", "s", "<p>x</p>", "x", [], NOW)
    audience.remove(store, "b@example.com")
    built = []

    def message_for(sub):
        built.append(sub.email)
        return b"Subject: x\r\n\r\nx\r\n"

    smtp = SmtpConfig(host="127.0.0.1", port=server.port, security="none", timeout=5)
    report = send_queued(
        store.ledger, record.id, "d@news.example.com", message_for, lambda: SmtpTransport(smtp)
    )
    counts = store.ledger.delivery_counts()
    store.close()
    assert (report.sent, report.skipped) == (1, 1) and built == ["a@example.com"]
    assert counts == {"sent": 1, "skipped": 1}


def test_parallel_connections_are_each_reused(site, server):
    config = smtp_site(site, server.port)
    add_subscribers(config, [f"reader{i}@example.com" for i in range(40)])
    report = pipeline.run(config, pipeline.Options())
    assert report.delivery.sent == 40
    assert len(server.handler.received) == 40
    assert server.handler.sessions == 2  # connections = 2, each reused for 20 messages


def test_rate_limit_spaces_the_sends(site, server):
    config = smtp_site(site, server.port, smtp_extra="rate = 20\n")
    add_subscribers(config, [f"reader{i}@example.com" for i in range(11)])
    start = time.monotonic()
    report = pipeline.run(config, pipeline.Options())
    assert report.delivery.sent == 11
    assert time.monotonic() - start >= 0.5  # 11 sends at 20/s: at least 10 intervals of 50 ms


def test_now_and_status_report_sent_queued_failed(site, server, run_publish):
    server.handler.faults.update({"busy@example.com": "451-always", "nouser@example.com": "550-no-such-user"})
    config = smtp_site(site, server.port)
    add_subscribers(config, ["busy@example.com", "nouser@example.com", "reader@example.com"])
    out = run_publish(site, "now").stdout
    assert "delivered: 1 sent, 1 queued for retry, 1 failed (127.0.0.1:" in out
    assert "1 address suppressed as bounced" in out
    status = run_publish(site, "status").stdout
    assert "deliveries: 1 sent, 1 queued, 1 failed" in status
    assert "subscribers: 0 pending, 2 active, 0 unsubscribed, 1 bounced" in status


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_takes_the_password_from_the_environment(site, monkeypatch):
    with MailServer(auth=("digest", "s3cret")) as server:
        config = smtp_site(
            site, server.port, smtp_extra='username = "digest"\npassword_env = "DIGEST_SMTP_PW"\n'
        )
        add_subscribers(config, ["reader@example.com"])
        monkeypatch.setenv("DIGEST_SMTP_PW", "wrong")
        report = pipeline.run(config, pipeline.Options())
        assert (report.delivery.sent, report.delivery.queued) == (0, 1)
        assert any("DIGEST_SMTP_PW" in e and "'digest'" in e for e in report.delivery.errors)
        monkeypatch.setenv("DIGEST_SMTP_PW", "s3cret")
        report = pipeline.run(config, pipeline.Options())
        assert report.delivery.sent == 1 and len(server.handler.to("reader@example.com")) == 1


def test_a_server_that_is_down_leaves_everything_queued_after_a_few_tries(site):
    """Not a try (and three retries with backoff) for every reader: the run stops once
    ``GIVE_UP_AFTER`` tries in a row failed, having tried about that many readers."""
    with MailServer() as server:
        port = server.port
    config = smtp_site(site, port)  # nothing listens there any more
    add_subscribers(config, [f"reader{i}@example.com" for i in range(60)])
    report = pipeline.run(config, pipeline.Options())
    with Store.of(config) as store, store.engine.connect() as conn:
        tried = conn.execute(
            select(func.count()).select_from(deliveries).where(deliveries.c.last_error.is_not(None))
        ).scalar_one()
    # the tries that failed in a row, and at most IN_FLIGHT more on each connection
    assert 1 <= tried <= GIVE_UP_AFTER + IN_FLIGHT * config.delivery.smtp.connections, tried
    assert report.delivery.sent == 0 and report.delivery.queued >= 1
    assert any("cannot connect" in e for e in report.delivery.errors)
    assert any("the rest stays queued" in e for e in report.delivery.errors)
    counts, statuses = ledger_state(config)
    assert counts == {"queued": 60} and set(statuses.values()) == {"active"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and a server context using it."""
    import ssl

    from tests.sites import require_binary

    openssl = require_binary("openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_is_verified_and_used(site, certificate, monkeypatch, security):
    cert, context = certificate
    tls = {"starttls": context} if security == "starttls" else {"implicit_tls": context}
    with MailServer(**tls) as server:
        smtp_site(site, server.port)
        edit_config(site, 'security = "none"', f'security = "{security}"')
        config = configuration.load(site / "config.toml")
        add_subscribers(config, ["reader@example.com"])
        report = pipeline.run(config, pipeline.Options())  # the certificate is not trusted yet
        assert report.delivery.sent == 0
        assert any("certificate verify failed" in e for e in report.delivery.errors)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted as a local CA would be
        report = pipeline.run(config, pipeline.Options())
        assert report.delivery.sent == 1 and len(server.handler.to("reader@example.com")) == 1


def test_a_retry_waits_without_holding_up_the_others(site, server):
    server.handler.faults["busy@example.com"] = "451-always"
    config = smtp_site(site, server.port, retry_delay=0.3, connections=1)
    add_subscribers(config, ["busy@example.com", *[f"reader{i}@example.com" for i in range(10)]])
    report = pipeline.run(config, pipeline.Options())
    assert (report.delivery.sent, report.delivery.queued) == (10, 1)
    order = server.handler.rcpt_order
    assert order[0] == "busy@example.com" and order[-2:] == ["busy@example.com"] * 2, order


def test_a_refused_sender_is_our_problem_and_bounces_nobody(site, server):
    server.handler.refuse_sender = True
    config = smtp_site(site, server.port)
    add_subscribers(config, [f"reader{i}@example.com" for i in range(30)])
    report = pipeline.run(config, pipeline.Options())
    assert report.delivery.sent == 0 and report.delivery.failed == 0 and report.delivery.bounced == 0
    assert any("refused the sender digest@news.example.com" in e for e in report.delivery.errors)
    counts, statuses = ledger_state(config)
    assert counts == {"queued": 30} and set(statuses.values()) == {"active"}
    server.handler.refuse_sender = False
    assert pipeline.run(config, pipeline.Options()).delivery.sent == 30


def test_now_exits_1_when_nothing_could_be_delivered(site, server, run_publish):
    server.handler.refuse_sender = True
    config = smtp_site(site, server.port)
    add_subscribers(config, ["reader@example.com"])
    result = run_publish(site, "now", check=False)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("publish: SMTP 127.0.0.1:") and "refused the sender digest@" in line
    assert line.endswith("no address was blamed, 1 stay queued for the next run")


def test_an_unwell_server_stops_the_run_early(site, server):
    """20 temporary failures in a row stop the run: counted over both sender processes
    (not 20 each), so the tries are 20 and those in flight (2 processes x 2 connections)."""
    addresses = [f"reader{i}@example.com" for i in range(200)]
    server.handler.faults.update({a: "451-always" for a in addresses})
    config = smtp_site(site, server.port, retries=1, retry_delay=0.2, workers=2)
    add_subscribers(config, addresses)
    report = pipeline.run(config, pipeline.Options())
    assert report.delivery.sent == 0
    assert sum(server.handler.tried.values()) < 40  # not a try (and a timeout) for every address
    unwell = "20 temporary failures in a row: the rest stays queued for the next run"
    assert report.delivery.errors.count(unwell) == 1  # said once, by the process that counted the 20th
    counts, _ = ledger_state(config)
    assert counts == {"queued": 200}


def test_a_refused_connection_is_told_once_per_sender_not_once_per_try(site, run_publish):
    with MailServer() as server:
        port = server.port
    smtp_site(site, port, workers=1, connections=4, retries=3)  # nothing listens there any more
    run_publish(site, "subscribers", "import", str(_addresses(site, 30)))
    done = run_publish(site, "now", check=False)
    told = [line for line in done.stderr.splitlines() if "cannot connect to SMTP" in line]
    assert done.returncode != 0 and len(told) == 2, done.stderr  # the warning, and the run's one-line end


def _addresses(site, n):
    path = site / "readers.csv"
    path.write_text("email\n" + "".join(f"reader{i}@example.com\n" for i in range(n)), encoding="utf-8")
    return path
