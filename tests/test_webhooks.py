"""ESP webhooks on a real ``publish serve`` (tests/webserver.py): events signed with keys
and certificates the tests make (tests/esp_keys.py), checked by each provider's
documented scheme. A forged, tampered, stale or replayed request changes nothing and
gets 401/403; a genuine one is recorded before the 200, and the same event twice
counts once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from publisher.tokens import Signer
from tests.esp_keys import Https, certificate, ec_key, pem, rsa_key
from tests.sites import publish as _publish
from tests.webserver import SECRET, Server, env_for, free_port, make_site

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
MAILGUN_KEY = "key-mailgun-signing-0123456789"
POSTMARK = ("hooks", "s3cret-pw")


class Site:
    def __init__(
        self, folder: Path, https: Https, server: Server, sendgrid: ec.EllipticCurvePrivateKey
    ) -> None:
        self.folder, self.https, self.server, self.sendgrid = folder, https, server, sendgrid
        self.sns_key = rsa_key()
        self.sns_cert = certificate("sns.amazonaws.com", self.sns_key)
        https.files["/SimpleNotificationService-test.pem"] = pem(self.sns_cert)

    def rows(self, sql: str, *args: object) -> list[tuple]:
        with sqlite3.connect(self.folder / "publisher.db") as db:
            return db.execute(sql, args).fetchall()

    def status(self, email: str) -> str:
        return self.rows("SELECT status FROM subscribers WHERE email = ?", email)[0][0]

    def events(self, address: str) -> list[tuple]:
        return self.rows(
            "SELECT kind, status, source, issue_id FROM feedback_events WHERE address = ?",
            address,
        )

    def post(self, provider: str, body: bytes, headers: dict[str, str] | None = None, **kw) -> httpx.Response:
        return self.server.client.post(f"/webhooks/{provider}", content=body, headers=headers or {}, **kw)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("webhooks")
    https = Https(folder)
    port = free_port()
    make_site(folder / "site", port)
    root = folder / "site"
    sendgrid = ec_key()
    der = sendgrid.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    config_text = (root / "config.toml").read_text()
    (root / "config.toml").write_text(
        config_text.replace(
            'transport = "maildir"', 'transport = "maildir"\nreturn_path = "bounces@news.example.com"'
        )
    )
    with (root / "config.toml").open("a") as config:
        config.write(
            f"\n[webhooks]\nses_topics = [\"{TOPIC}\"]\nsns_cert_hosts = '127\\.0\\.0\\.1'\n"
            f'sns_ca_file = "{https.ca_file}"\nmax_age = 300\n'
        )
    env = {
        "PUBLISHER_POSTMARK_USER": POSTMARK[0],
        "PUBLISHER_POSTMARK_PASSWORD": POSTMARK[1],
        "PUBLISHER_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
        "PUBLISHER_SENDGRID_PUBLIC_KEY": base64.b64encode(der).decode(),
    }
    (root / "readers.csv").write_text(
        "email,name\n" + "".join(f"reader{n}@example.com,\n" for n in range(12))
    )
    _publish(root, "subscribers", "import", str(root / "readers.csv"), env=env_for())
    with https.running():
        server = Server(root, port, env)
        try:
            yield Site(root, https, server, sendgrid)
        finally:
            server.stop()


# -- Amazon SES through SNS ------------------------------------------------------------


def sns_message(site: Site, kind: str, version: str = "1", key=None, **fields: str) -> dict[str, str]:
    """An SNS message signed as AWS documents it: each field name and value on its own
    line, in a fixed order, signed with RSA (SHA1 for version 1, SHA256 for 2)."""
    message = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC,
        "Timestamp": "2026-12-04T12:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": f"{site.https.base}/SimpleNotificationService-test.pem",
        **fields,
    }
    if kind == "Notification":
        order = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        order = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{name}\n{message[name]}\n" for name in order if name in message)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = (key or site.sns_key).sign(text.encode(), padding.PKCS1v15(), digest)
    message["Signature"] = base64.b64encode(signature).decode()
    return message


def ses_bounce(address: str, status: str, bounce_type: str = "Permanent", feedback: str | None = None) -> str:
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {
                        "emailAddress": address,
                        "status": status,
                        "diagnosticCode": f"smtp; {'550' if status[0] == '5' else '452'} {status} mailbox trouble",
                    }
                ],
                "timestamp": "2026-12-04T11:59:00.000Z",
                "feedbackId": feedback or str(uuid.uuid4()),
            },
            "mail": {
                "messageId": "0100-test",
                "source": "bounces@news.example.com",
                "destination": [address],
            },
        }
    )


def test_ses_subscription_is_confirmed_only_after_the_signature_checks(site: Site) -> None:
    visit = f"{site.https.base}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=abc"
    forged = sns_message(
        site, "SubscriptionConfirmation", "2", key=rsa_key(), SubscribeURL=visit + "1", Token="t", Message="m"
    )
    assert site.post("ses", json.dumps(forged).encode()).status_code == 403
    assert not [v for v in site.https.visits if "Token=abc1" in v]
    good = sns_message(
        site, "SubscriptionConfirmation", "2", SubscribeURL=visit + "2", Token="t", Message="m"
    )
    answer = site.post("ses", json.dumps(good).encode())
    assert answer.status_code == 200, answer.text
    assert [v for v in site.https.visits if "Token=abc2" in v]


def test_ses_bounce_suppresses_once_and_a_replay_counts_once(site: Site) -> None:
    message = sns_message(site, "Notification", "1", Message=ses_bounce("reader1@example.com", "5.1.1"))
    body = json.dumps(message).encode()
    first = site.post("ses", body)
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 1, "duplicates": 0}
    assert site.status("reader1@example.com") == "bounced"
    again = site.post("ses", body)
    assert again.json() == {"recorded": 0, "duplicates": 1}
    assert site.events("reader1@example.com") == [("hard_bounce", "5.1.1", "webhook:ses", None)]


def test_ses_forged_tampered_or_foreign_messages_change_nothing(site: Site) -> None:
    bounce = ses_bounce("reader2@example.com", "5.1.1")
    tampered = sns_message(site, "Notification", "2", Message=ses_bounce("reader3@example.com", "4.2.2"))
    tampered["Message"] = bounce
    foreign = sns_message(
        site, "Notification", "2", Message=bounce, TopicArn="arn:aws:sns:us-east-1:999:other"
    )
    other_host = sns_message(site, "Notification", "2", Message=bounce)
    other_host["SigningCertURL"] = "https://sns.evil.example.com/cert.pem"
    plain_http = sns_message(site, "Notification", "2", Message=bounce)
    plain_http["SigningCertURL"] = plain_http["SigningCertURL"].replace("https:", "http:")
    unsigned_version = sns_message(site, "Notification", "3", Message=bounce)
    old_key = rsa_key()  # a certificate that expired: its signatures are refused
    expired = certificate("sns.amazonaws.com", old_key, start=datetime.now(UTC) - timedelta(days=90), days=30)
    site.https.files["/SimpleNotificationService-expired.pem"] = pem(expired)
    expired_url = f"{site.https.base}/SimpleNotificationService-expired.pem"
    stale_cert = sns_message(
        site, "Notification", "2", key=old_key, Message=bounce, SigningCertURL=expired_url
    )
    for message in (tampered, foreign, other_host, plain_http, unsigned_version, stale_cert):
        answer = site.post("ses", json.dumps(message).encode())
        assert answer.status_code == 403, (message, answer.text)
    assert site.post("ses", b"not json").status_code == 403
    assert site.status("reader2@example.com") == "active"
    assert site.events("reader2@example.com") == []
    log = site.server.log.read_text()
    assert "webhook ses: the SNS signature does not match the message (answered 403)" in log
    assert "is not in webhooks.ses_topics" in log
    assert "SimpleNotificationService-expired.pem is not valid now" in log
    assert "Traceback" not in log


def test_ses_complaint_and_soft_bounce(site: Site) -> None:
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "reader4@example.com"}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2026-12-04T11:59:00.000Z",
            "feedbackId": "complaint-1",
        },
        "mail": {"messageId": "0100-test", "source": "digest@news.example.com"},
    }
    site.post(
        "ses", json.dumps(sns_message(site, "Notification", "2", Message=json.dumps(complaint))).encode()
    )
    assert site.status("reader4@example.com") == "unsubscribed"
    soft = ses_bounce("reader5@example.com", "4.2.2", "Transient")
    assert (
        site.post(
            "ses", json.dumps(sns_message(site, "Notification", "2", Message=soft)).encode()
        ).status_code
        == 200
    )
    assert site.status("reader5@example.com") == "active"
    assert [e[0] for e in site.events("reader5@example.com")] == ["soft_bounce"]


# -- Postmark ----------------------------------------------------------------------------


def postmark_bounce(address: str, record_id: int, kind: str = "HardBounce", details: str = "") -> bytes:
    return json.dumps(
        {
            "RecordType": "Bounce" if kind != "SpamComplaint" else "SpamComplaint",
            "ID": record_id,
            "Type": kind,
            "Email": address,
            "Details": details,
            "BouncedAt": "2026-12-04T11:58:00Z",
            "MessageID": str(uuid.uuid4()),
        }
    ).encode()


def test_postmark_needs_its_credentials(site: Site) -> None:
    body = postmark_bounce("reader6@example.com", 101, "SpamComplaint")
    none = site.post("postmark", body)
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Basic")
    assert site.post("postmark", body, auth=(POSTMARK[0], "wrong")).status_code == 403
    assert site.post("postmark", body, auth=("other", POSTMARK[1])).status_code == 403
    assert site.status("reader6@example.com") == "active"
    assert site.post("postmark", body, auth=POSTMARK).json() == {"recorded": 1, "duplicates": 0}
    assert site.post("postmark", body, auth=POSTMARK).json() == {"recorded": 0, "duplicates": 1}
    assert site.status("reader6@example.com") == "unsubscribed"


def test_postmark_reads_the_reply_when_there_is_one(site: Site) -> None:
    policy = postmark_bounce(
        "reader7@example.com", 102, "HardBounce", "smtp;550 5.7.1 message refused as spam"
    )
    assert site.post("postmark", policy, auth=POSTMARK).status_code == 200
    assert site.status("reader7@example.com") == "active"  # a policy refusal is never the reader's
    assert site.events("reader7@example.com")[0][:2] == ("policy", "5.7.1")


# -- Mailgun -----------------------------------------------------------------------------


def mailgun_body(
    event: dict, *, timestamp: int | None = None, token: str | None = None, key: str = MAILGUN_KEY
) -> bytes:
    timestamp = int(time.time()) if timestamp is None else timestamp
    token = token or uuid.uuid4().hex * 2
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": str(timestamp), "token": token, "signature": signature},
            "event-data": event,
        }
    ).encode()


def mailgun_failed(
    address: str, code: int = 550, message: str = "5.1.1 The email account does not exist", sender: str = ""
) -> dict:
    return {
        "event": "failed",
        "id": str(uuid.uuid4()),
        "severity": "permanent",
        "reason": "bounce",
        "recipient": address,
        "timestamp": time.time(),
        "envelope": {"sender": sender or "digest@news.example.com"},
        "delivery-status": {"code": code, "message": message},
    }


def test_mailgun_signature_staleness_and_replays(site: Site) -> None:
    event = mailgun_failed("reader8@example.com")
    assert site.post("mailgun", mailgun_body(event, key="another-key")).status_code == 403
    assert site.post("mailgun", mailgun_body(event, timestamp=int(time.time()) - 3600)).status_code == 403
    assert site.post("mailgun", mailgun_body(event, timestamp=int(time.time()) + 3600)).status_code == 403
    tampered = json.loads(mailgun_body(event))
    tampered["signature"]["timestamp"] = str(int(tampered["signature"]["timestamp"]) + 1)
    assert site.post("mailgun", json.dumps(tampered).encode()).status_code == 403
    assert site.status("reader8@example.com") == "active"
    body = mailgun_body(event)
    assert site.post("mailgun", body).json() == {"recorded": 1, "duplicates": 0}
    replay = site.post("mailgun", body)
    assert replay.status_code == 403
    assert "replayed" in replay.json()["error"]
    assert site.status("reader8@example.com") == "bounced"
    assert len(site.events("reader8@example.com")) == 1


def test_mailgun_names_the_delivery_from_the_verp_return_path(site: Site) -> None:
    subscriber = site.rows("SELECT id FROM subscribers WHERE email = ?", "reader9@example.com")[0][0]
    token = Signer(SECRET).return_token(7, subscriber)
    event = mailgun_failed(
        "reader9@example.com", 552, "5.2.2 mailbox full", f"bounces+{token}@news.example.com"
    )
    assert site.post("mailgun", mailgun_body(event)).status_code == 200
    assert site.events("reader9@example.com") == [("soft_bounce", "5.2.2", "webhook:mailgun", 7)]
    forged = Signer("another secret").return_token(8, subscriber)
    event = mailgun_failed(
        "reader9@example.com", 552, "5.2.2 mailbox full", f"bounces+{forged}@news.example.com"
    )
    assert site.post("mailgun", mailgun_body(event)).status_code == 200
    issues = {e[3] for e in site.events("reader9@example.com")}
    assert issues == {None, 7}  # the forged token names nothing


# -- SendGrid ----------------------------------------------------------------------------


def sendgrid_headers(site: Site, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = site.sendgrid.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
        "content-type": "application/json",
    }


def test_sendgrid_signed_batches(site: Site) -> None:
    now = int(time.time())
    batch = json.dumps(
        [
            {
                "email": "reader10@example.com",
                "event": "bounce",
                "status": "5.1.1",
                "reason": "550 5.1.1 unknown user",
                "timestamp": now,
                "sg_event_id": "sg-1",
            },
            {"email": "reader11@example.com", "event": "spamreport", "timestamp": now, "sg_event_id": "sg-2"},
            {
                "email": "reader0@example.com",
                "event": "delivered",
                "response": "250 2.0.0 OK",
                "timestamp": now,
                "sg_event_id": "sg-3",
            },
            {"email": "reader0@example.com", "event": "open", "timestamp": now, "sg_event_id": "sg-4"},
        ]
    ).encode()
    assert site.post("sendgrid", batch).status_code == 401
    assert site.post("sendgrid", batch + b" ", sendgrid_headers(site, batch)).status_code == 403
    assert site.post("sendgrid", batch, sendgrid_headers(site, batch, now - 3600)).status_code == 403
    other = ec_key().sign(str(now).encode() + batch, ec.ECDSA(hashes.SHA256()))
    forged = {
        **sendgrid_headers(site, batch),
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(other).decode(),
    }
    assert site.post("sendgrid", batch, forged).status_code == 403
    assert site.status("reader10@example.com") == "active"
    answer = site.post("sendgrid", batch, sendgrid_headers(site, batch))
    assert answer.json() == {"recorded": 3, "duplicates": 0}
    assert site.post("sendgrid", batch, sendgrid_headers(site, batch)).json() == {
        "recorded": 0,
        "duplicates": 3,
    }
    assert site.status("reader10@example.com") == "bounced"
    assert site.status("reader11@example.com") == "unsubscribed"
    assert site.status("reader0@example.com") == "active"
    assert site.events("reader0@example.com") == [("delivered", "2.0.0", "webhook:sendgrid", None)]


def test_unknown_providers_and_unset_secrets_are_404(site: Site, tmp_path: Path, monkeypatch) -> None:
    assert site.post("sparkpost", b"{}").status_code == 404
    assert site.server.client.get("/webhooks/mailgun").status_code in (404, 405)
    from publisher import config
    from publisher.errors import Rejected
    from publisher.web.webhooks import Webhooks

    monkeypatch.delenv("PUBLISHER_MAILGUN_SIGNING_KEY", raising=False)
    (tmp_path / "config.toml").write_text("")
    hooks = Webhooks(config.load(tmp_path / "config.toml"), lambda: None, lambda: None)
    for provider in ("ses", "postmark", "mailgun", "sendgrid"):
        with pytest.raises(Rejected) as refused:
            hooks.handle(provider, {}, b"{}", datetime.now(UTC))
        assert refused.value.status == 404
        assert "is off" in refused.value.reason


def test_what_each_provider_reports_becomes() -> None:
    """The mapping alone (no server): event publishing's eventType, delays, deliveries,
    a not-spam complaint and records that are no feedback."""
    from publisher.esp import mailgun, postmark, sendgrid, ses

    now = datetime.now(UTC)
    mail = {"messageId": "m-1", "source": "digest@news.example.com"}
    delay = {
        "eventType": "DeliveryDelay",
        "mail": mail,
        "deliveryDelay": {
            "timestamp": "2026-12-04T11:00:00Z",
            "delayType": "TransientCommunicationFailure",
            "delayedRecipients": [
                {
                    "emailAddress": "a@example.com",
                    "status": "4.4.1",
                    "diagnosticCode": "smtp; 421 4.4.1 no answer",
                }
            ],
        },
    }
    [delayed] = ses.events(delay, lambda _: None, now)
    assert (delayed.kind, delayed.status, delayed.address, delayed.at.hour) == (
        "delayed",
        "4.4.1",
        "a@example.com",
        11,
    )
    delivered = {
        "notificationType": "Delivery",
        "mail": mail,
        "delivery": {"recipients": ["b@example.com"], "smtpResponse": "250 2.0.0 OK"},
    }
    assert [e.kind for e in ses.events(delivered, lambda _: None, now)] == ["delivered"]
    not_spam = {
        "notificationType": "Complaint",
        "mail": mail,
        "complaint": {
            "complaintFeedbackType": "not-spam",
            "complainedRecipients": [{"emailAddress": "c@example.com"}],
        },
    }
    assert ses.events(not_spam, lambda _: None, now) == []
    no_status = {
        "notificationType": "Bounce",
        "mail": mail,
        "bounce": {
            "bounceType": "Transient",
            "bounceSubType": "ContentRejected",
            "bouncedRecipients": [{"emailAddress": "d@example.com"}],
        },
    }
    assert [e.kind for e in ses.events(no_status, lambda _: None, now)] == ["policy"]
    assert postmark.events({"RecordType": "Open", "Email": "e@example.com"}, now) == []
    assert [
        e.kind
        for e in postmark.events(
            {"RecordType": "Bounce", "Type": "SoftBounce", "ID": 9, "Email": "f@example.com"}, now
        )
    ] == ["soft_bounce"]
    temporary = {
        "event": "failed",
        "severity": "temporary",
        "recipient": "g@example.com",
        "id": "x",
        "delivery-status": {"code": 452, "message": "4.2.2 full"},
    }
    assert [(e.kind, e.status) for e in mailgun.events(temporary, lambda _: None, now)] == [
        ("delayed", "4.2.2")
    ]
    assert [
        e.kind
        for e in sendgrid.events(
            [
                {
                    "event": "deferred",
                    "email": "h@example.com",
                    "response": "450 4.7.1 later",
                    "sg_event_id": "s",
                }
            ],
            now,
        )
    ] == ["delayed"]
