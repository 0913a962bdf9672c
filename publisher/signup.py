"""Double opt-in: subscribe requests, confirmation mail, confirm and unsubscribe by link.

The web server is only a trigger; what a request does lives here, without HTTP.

- ``allow`` records a subscribe request against the per-address limit. It does the
  same work whatever the address's state, so callers can answer before ``request``
  (the state-dependent part: a pending subscriber and a mail) runs.
- ``enqueue`` commits the mail a request asks for to the outbox (before the answer
  promises it): a confirmation link for a new, pending, unsubscribed or bounced
  address, an "already subscribed" note (with an unsubscribe link) for an active one.
  ``publisher.confirmations`` sends it; ``message`` builds it.
- ``confirm`` and ``unsubscribe`` take a signed token; ``check`` verifies one without
  changing anything (for the pages that GET and HEAD show).

Tokens sign the subscriber's opaque ``public_id``. A confirm token only activates a
subscriber whose status has not changed since it was signed: an old confirmation
link cannot undo a later unsubscribe.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy

from publisher import audience
from publisher.config import Config
from publisher.i18n import for_config
from publisher.links import Links, unsubscribe_token
from publisher.messages import Messages
from publisher.models import Subscriber
from publisher.store import Store
from publisher.tokens import Signer

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class LinkCheck:
    """What a token is worth: a subscriber, or the reason it is refused."""

    subscriber: Subscriber | None
    reason: str = ""  # "", "invalid" or "expired"
    newsletter: str | None = None  # the newsletter an unsubscribe link leaves (None: an old link)

    @property
    def ok(self) -> bool:
        return self.subscriber is not None


class Signup:
    def __init__(self, config: Config, store: Store, signer: Signer) -> None:
        self.config = config
        self.store = store
        self.signer = signer
        self.links = Links(config.site.base_url)
        self.messages = Messages(config, signer)
        self.host = self.messages.host
        self._target_key = store.meta.get_or_create_secret("subscribe-limit-key").encode()

    # -- subscribing -----------------------------------------------------------------

    def allow(self, email: str, now: datetime | None = None) -> bool:
        """Count one request for ``email`` (already normalised); False past the limit."""
        target = hmac.new(self._target_key, email.encode(), hashlib.sha256).hexdigest()
        return self.store.subscribers.allow_request(
            target, now or datetime.now(UTC), WINDOW, self.config.server.mails_per_address
        )

    def enqueue(
        self, email: str, now: datetime | None = None, newsletters: Sequence[str] | None = None
    ) -> str:
        """Commit the mail a subscribe request asks for to the outbox, with a pending
        subscription to each of ``newsletters`` (None: those offered at sign-up) that the
        address does not get yet; return the mail's kind: "confirm", or "already" (the
        address is active and gets every one of them)."""
        now = now or datetime.now(UTC)
        sub, waiting = audience.subscribe(self.store, self.config, email, newsletters, now=now)
        kind = "already" if sub.status == "active" and not waiting else "confirm"
        self.store.outbox.add(sub.id, kind, now)
        return kind

    def message(self, sub: Subscriber, kind: str, now: datetime, message_id: str | None = None) -> bytes:
        """The confirmation (or "already subscribed") mail, built by the site's one
        message builder (the digest's header encoding, DKIM signature); ``message_id``
        given: that one (a retry of the same outbox mail), else a new one."""
        from publisher.render import site_environment

        site = self.config.site
        context = {
            "site": site,
            "links": self.links,
            "email": sub.email,
            "kind": kind,
            "confirm_url": self.links.confirm(self.signer.sign("confirm", sub.public_id)),
            "unsubscribe_url": self.links.unsubscribe(self.signer.sign("unsubscribe", sub.public_id)),
            "days": 7,
        }
        text = site_environment(self.config, autoescape=False)
        html = site_environment(self.config)
        language = for_config(self.config)
        subject = (
            language.gettext("Confirm your subscription to %(title)s", title=site.title)
            if kind == "confirm"
            else language.gettext("You are already subscribed to %(title)s", title=site.title)
        )
        return self.messages.single(
            sub,
            subject=subject,
            html=html.get_template("subscribe_mail.html").render(**context),
            text=text.get_template("subscribe_mail.txt").render(**context),
            date=now,
            kind="subscribe",
        )

    # -- links -------------------------------------------------------------------------

    def check(self, purpose: str, token: str) -> LinkCheck:
        """Verify a token and find its subscriber; change nothing."""
        claim, reason = self.signer.read(purpose, token)
        if claim is None:
            return LinkCheck(None, reason or "invalid")
        sub = self.store.subscribers.by_public_id(claim.public_id)
        if sub is None:
            return LinkCheck(None, "invalid")
        if purpose == "confirm" and sub.status != "active" and not _signed_after_change(claim.issued, sub):
            return LinkCheck(None, "expired")  # superseded by a later change: subscribe again
        return LinkCheck(sub, newsletter=claim.newsletter)

    def confirm(self, token: str) -> LinkCheck:
        """Activate the token's subscriber and its pending subscriptions (idempotent)."""
        found = self.check("confirm", token)
        if found.subscriber is not None:
            audience.confirm(self.store, found.subscriber)
        return found

    def unsubscribe(self, token: str) -> LinkCheck:
        """Unsubscribe the token's subscriber (idempotent; committed on return)."""
        found = self.check("unsubscribe", token)
        if found.subscriber is not None:
            self.store.subscribers.change_status(
                found.subscriber.public_id, "unsubscribed", datetime.now(UTC), unless="unsubscribed"
            )
        return found


def token_in_mail(message: bytes) -> str | None:
    """The unsubscribe token of a mail sent to the digest's List-Unsubscribe mailto:
    address ("Subject: unsubscribe <token>"), or None when it carries none."""
    from email.parser import BytesHeaderParser

    subject = str(BytesHeaderParser(policy=policy.default).parsebytes(message).get("Subject", ""))
    return unsubscribe_token(subject)


def _signed_after_change(issued: datetime, sub: Subscriber) -> bool:
    """itsdangerous timestamps are whole seconds: compare at that precision."""
    changed = sub.changed or sub.created
    return changed is None or changed.replace(microsecond=0) <= issued
