"""Double opt-in and the links in mail: subscribe requests, confirmation mail, confirm,
unsubscribe from one newsletter, the preference centre's choices.

The web server is only a trigger; what a request does lives here, without HTTP.

- ``allow`` records a subscribe request against the per-address limit. It does the
  same work whatever the address's state, so callers can answer before ``enqueue``
  (the state-dependent part) runs.
- ``enqueue`` asks for newsletters (new subscriptions wait, pending, for the double
  opt-in; existing ones are untouched) and commits the mail the request asks for to
  the outbox (before the answer promises it): a confirmation link while a subscription
  waits for one, else an "already subscribed" note linking to the preference centre.
  ``publisher.confirmations`` sends it; ``message`` builds it.
- ``confirm``, ``unsubscribe`` take a signed token; ``check`` verifies one without
  changing anything (for the pages that GET and HEAD show).
- ``save``: the preference centre's choices, kept as they are (its signed link proves
  the address: no confirmation).

Tokens sign the subscriber's opaque ``public_id``. A confirm token only activates a
subscriber whose status has not changed since it was signed: an old confirmation
link cannot undo a later unsubscribe. An unsubscribe token names the newsletter its
mail came from and leaves just that one. One signed before newsletters names none: it
came from the one list a site had then, ``digest``, and leaves that; on a site that no
longer has a newsletter keyed ``digest`` it leaves every newsletter (the reader asked
for no more of the mail that list became, and it cannot be told which).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy

from publisher import audience, categories
from publisher.config import Config
from publisher.i18n import for_config
from publisher.links import Links, unsubscribe_token
from publisher.messages import DIGEST_KEY, Messages
from publisher.models import Subscriber
from publisher.store import Store
from publisher.tokens import Signer

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)
NAMES_FOR = 60.0  # seconds the section names read from the store are kept


@dataclass(frozen=True)
class LinkCheck:
    """What a token is worth: a subscriber, or the reason it is refused."""

    subscriber: Subscriber | None
    reason: str = ""  # "", "invalid" or "expired"
    newsletter: str | None = None  # the newsletter an unsubscribe link leaves (None: an old link)

    @property
    def ok(self) -> bool:
        return self.subscriber is not None


@dataclass(frozen=True)
class Standing:
    """A subscriber's newsletters (titles, in the site's order) by state."""

    pending: list[str]
    active: list[str]


@dataclass(frozen=True)
class Leaving:
    """What an unsubscribe link leaves: ``title`` of the newsletter (None: every one),
    ``done`` when it is left already, ``remaining``: the titles still received."""

    subscriber: Subscriber
    title: str | None
    done: bool
    remaining: list[str]


class Signup:
    def __init__(self, config: Config, store: Store, signer: Signer) -> None:
        self.config = config
        self.store = store
        self.signer = signer
        self.links = Links(config.site.base_url)
        self.messages = Messages(config, signer)
        self.host = self.messages.host
        self._target_key = store.meta.get_or_create_secret("subscribe-limit-key").encode()
        self._names: tuple[float, dict[str, str]] | None = None

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
            "asked": self.standing(sub).pending if kind == "confirm" else [],
            "confirm_url": self.links.confirm(self.signer.sign("confirm", sub.public_id)),
            "preferences_url": self.preferences_url(sub),
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

    # -- what a subscriber has -------------------------------------------------------

    def subscriptions(self, sub: Subscriber) -> dict[str, tuple[str, tuple[str, ...]]]:
        """newsletter key -> (status, section slugs) of every subscription ``sub`` has."""
        return {key: (s.status, s.sections) for key, s in self.store.subscriptions.of(sub.id).items()}

    def standing(self, sub: Subscriber) -> Standing:
        """The titles of ``sub``'s newsletters waiting for confirmation and received."""
        held = self.subscriptions(sub)
        mine = [(n.title, held[n.key][0]) for n in self.config.newsletters if n.key in held]
        return Standing(
            pending=[title for title, status in mine if status == "pending"],
            active=[title for title, status in mine if status == "active"],
        )

    def section_names(self) -> dict[str, str]:
        """slug -> the name readers see for each section: as the pages spell it (read
        from the store at most once a minute), else as the configuration does (a section
        no article has shown yet); empty when no newsletter offers sections."""
        if not any(n.reader_sections for n in self.config.newsletters):
            return {}
        now = time.monotonic()
        if self._names is None or now - self._names[0] > NAMES_FOR:
            configured = {
                slug: name for n in self.config.newsletters for slug, name in n.section_names.items()
            }
            self._names = (now, configured | categories.names(self.store.articles.category_lists()))
        return self._names[1]

    def preferences_url(self, sub: Subscriber) -> str:
        return self.messages.preferences_url(sub)

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
        """Activate the token's subscriber and its waiting subscriptions (idempotent)."""
        found = self.check("confirm", token)
        if found.subscriber is not None:
            audience.confirm(self.store, found.subscriber)
        return found

    def leaves(self, found: LinkCheck) -> str | None:
        """The newsletter an unsubscribe link leaves; None: every one (see the module)."""
        if found.newsletter is not None:
            return found.newsletter
        return DIGEST_KEY if self.config.newsletter(DIGEST_KEY) is not None else None

    def leaving(self, found: LinkCheck) -> Leaving:
        """What an unsubscribe link's pages say: what it leaves, whether that is done,
        what the reader still receives."""
        assert found.subscriber is not None
        key = self.leaves(found)
        held = self.subscriptions(found.subscriber)
        newsletter = self.config.newsletter(key) if key is not None else None
        if key is None:
            done = all(status == "unsubscribed" for status, _ in held.values())
        else:
            done = held.get(key, ("unsubscribed", ()))[0] == "unsubscribed"
        remaining = [n.title for n in self.config.newsletters if held.get(n.key, ("",))[0] == "active"]
        title = None if key is None else newsletter.title if newsletter is not None else key
        return Leaving(found.subscriber, title, done, remaining)

    def unsubscribe(self, token: str) -> LinkCheck:
        """Leave the newsletter the token names (idempotent; committed on return). An
        address left with no newsletter is unsubscribed, as leaving the one list of a site
        always made it."""
        found = self.check("unsubscribe", token)
        if found.subscriber is not None:
            key = self.leaves(found)
            held = self.subscriptions(found.subscriber)
            others = [k for k, (status, _) in held.items() if k != key and status in ("pending", "active")]
            if key is None or not others:
                audience.unsubscribe_all(self.store, found.subscriber)
            else:
                audience.unsubscribe(self.store, found.subscriber, key)
        return found

    def save(self, sub: Subscriber, chosen: dict[str, tuple[str, ...]]) -> None:
        """The preference centre's choices: exactly the ``chosen`` newsletters (key ->
        section slugs, () = whole), active at once, every other one left; none chosen:
        the address is unsubscribed. Committed on return."""
        if chosen:
            audience.set_preferences(self.store, self.config, sub, chosen)
        else:
            audience.unsubscribe_all(self.store, sub)


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
