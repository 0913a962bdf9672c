"""Every mail the product sends, built one way.

``Messages`` holds what all of a site's mails share and decides each header from
the site's settings: the From (and Reply-To), the List-Id (``"<title>" <<key>.<list
id>>``, the id ASCII from ``digest.list_id`` or the base_url host, never from the
title), stable Message-IDs on the base_url host, the unsubscribe links (https and
mailto, naming the newsletter; the preference centre's link) and DKIM signing. ``publisher.mail`` turns that into bytes (RFC 2047 headers,
encoded bodies). The digest (``digest``: built once, cheap per subscriber) and the
confirmation mails (``single``) both come from here, so both are encoded and
signed the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.utils import make_msgid, parseaddr
from urllib.parse import urlsplit

from publisher import mail
from publisher.config import Config
from publisher.links import Links, unsubscribe_mailto
from publisher.mail import DkimSigner, MessageTemplate, Recipient
from publisher.models import DIGEST, DigestRecord, Subscriber
from publisher.store import Store
from publisher.tokens import Signer, signer_for

DIGEST_KEY = DIGEST  # the single newsletter's key (List-Id, Message-ID)


def list_id_domain(config: Config) -> str:
    """The ASCII namespace of the site's List-Ids: ``digest.list_id`` or the base_url host."""
    return config.digest.list_id or host_of(config.site.base_url)


def host_of(base_url: str) -> str:
    host = urlsplit(base_url).hostname or "localhost"
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"


class Messages:
    """The site's mail builder (one per run or per web server)."""

    def __init__(self, config: Config, signer: Signer) -> None:
        self.config = config
        self.links = Links(config.site.base_url)
        self.host = host_of(self.links.base)
        self.list_domain = list_id_domain(config)
        self.sender = config.digest.from_
        self.sender_addr = parseaddr(config.digest.from_)[1]
        self.signer = signer
        d = config.delivery
        self.dkim = (
            DkimSigner.from_file(d.dkim_selector, d.dkim_domain, d.dkim_key_file) if d.dkim_key_file else None
        )

    @classmethod
    def for_site(cls, config: Config, store: Store) -> Messages:
        return cls(config, signer_for(config.server.secret_env, store.meta.get_or_create_secret))

    # -- the decisions --------------------------------------------------------------

    def list_id(self, key: str = DIGEST_KEY, title: str | None = None) -> str:
        """``"<title>" <<key>.<list id>>`` (RFC 2919), ready for the header."""
        return mail.list_id(self.config.site.title if title is None else title, f"{key}.{self.list_domain}")

    def message_id(self, *parts: str) -> str:
        """A stable Message-ID: the same parts give the same id (a resend is recognisable)."""
        return f"<{'.'.join(parts)}@{self.host}>"

    def unsubscribe_links(self, sub: Subscriber, newsletter: str = DIGEST_KEY) -> tuple[str, str]:
        """The one-click https link and the mailto: address of ``sub``'s List-Unsubscribe
        for ``newsletter``: both leave that newsletter only."""
        token = self.signer.sign("unsubscribe", sub.public_id, newsletter)
        return self.links.unsubscribe(token), unsubscribe_mailto(self.sender_addr, token)

    def preferences_url(self, sub: Subscriber) -> str:
        """``sub``'s preference centre ("Manage your newsletters"), the same from every mail."""
        return self.links.preferences(self.signer.sign("preferences", sub.public_id))

    def envelope(self, issue_id: int, sub: Subscriber) -> str:
        """The envelope sender (MAIL FROM, Return-Path) of ``sub``'s copy of issue
        ``issue_id`` (0: a mail outside any issue, such as a confirmation): with
        ``delivery.return_path``, ``local+<token>@domain`` naming that delivery (VERP,
        signed, never the address); without, the From address."""
        return_path = self.config.delivery.return_path
        if not return_path:
            return self.sender_addr
        local, _, domain = return_path.strip().rpartition("@")
        return f"{local}+{self.signer.return_token(issue_id, sub.id)}@{domain}"

    def delivery_named(self, address: str) -> tuple[int, int] | None:
        """(issue id, subscriber id) that a bounce's return-path address names, when
        it is one of ours with a valid signature; None for any other or a forgery."""
        return_path = self.config.delivery.return_path
        if not return_path:
            return None
        local, _, domain = return_path.strip().lower().rpartition("@")
        mine, _, theirs = address.strip().strip("<>").lower().rpartition("@")
        base, plus, token = mine.partition("+")
        if theirs != domain or base != local or not plus:
            return None
        return self.signer.read_return_token(token)

    def issue_message_id(self, newsletter: str, key: str, public_id: str) -> str:
        """Stable per (issue, subscriber): a resent copy carries the same id. The
        single digest keeps the ids it had before newsletters."""
        parts = (key, public_id) if newsletter == DIGEST_KEY else (newsletter, key, public_id)
        return self.message_id(*parts)

    def sign(self, message: bytes) -> bytes:
        return self.dkim.sign(message) if self.dkim is not None else message

    # -- the mails ------------------------------------------------------------------

    def digest(
        self, record: DigestRecord, newsletter: str = DIGEST_KEY, title: str | None = None
    ) -> Callable[[Subscriber], bytes]:
        """Build an issue's (or one rendition's) shared message once; return the cheap
        per-recipient step. ``title``: the newsletter's, for its List-Id."""
        template = MessageTemplate.build(
            sender=self.sender,
            subject=record.subject,
            date=record.created,
            list_id=self.list_id(newsletter, title),
            reply_to=self.config.digest.reply_to,
            html_body=record.html,
            text_body=record.text,
        )

        def make(sub: Subscriber) -> bytes:
            url, mailto = self.unsubscribe_links(sub, newsletter)
            message_id = self.issue_message_id(newsletter, record.key, sub.public_id)
            to = Recipient(sub.email, sub.name, url, mailto, message_id, self.preferences_url(sub))
            return self.sign(template.personalise(to))

        return make

    def held_copy(self, record: DigestRecord, to: Subscriber, *, subject: str, html: str, text: str) -> bytes:
        """An editor's test copy of an issue (``publisher.digest.held_copy`` marks it):
        no list headers, personal links pointing at the site."""
        for placeholder in mail.PLACEHOLDERS:
            value = to.email if placeholder == mail.RECIPIENT else self.links.base
            html = html.replace(placeholder, mail.html_escape(value))
            text = text.replace(placeholder, value)
        return self.single(
            to, subject=subject, html=html, text=text, date=record.created, kind="held", headers=None
        )

    def single(
        self,
        to: Subscriber,
        *,
        subject: str,
        html: str,
        text: str,
        date: datetime,
        kind: str,
        headers: dict[str, str] | None = None,
        message_id: str | None = None,
    ) -> bytes:
        """One mail to one address outside any list (a confirmation): the same
        headers, encoding and signature as the digest, its own Message-ID (a new one
        unless given), no List-Id, marked Auto-Submitted."""
        template = MessageTemplate.build(
            sender=self.sender,
            subject=subject,
            date=date,
            reply_to=self.config.digest.reply_to,
            html_body=html,
            text_body=text,
            extra_headers={"Auto-Submitted": "auto-generated", **(headers or {})},
        )
        message_id = message_id or make_msgid(kind, domain=self.host)
        return self.sign(template.personalise(Recipient(to.email, to.name, "", "", message_id)))
