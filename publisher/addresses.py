"""Addresses: the one check for an e-mail address and the one for a web (http) URL.

Every place that accepts an address — a source's author, the config's From, a
subscriber, a feed's ``<author>`` — and every place that accepts a link — a source's
article or image URL, the config's URLs, a link in a feed, page or digest — asks here,
so they can never disagree about what is valid.

E-mail addresses are checked with email-validator (syntax only, no DNS) and kept in
ASCII (an internationalised domain as punycode), so every mail server can take them;
a non-ASCII local part would need SMTPUTF8 end to end and is refused.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from email_validator import EmailNotValidError, validate_email

from publisher.errors import InvalidAddress

WEB_SCHEMES = ("http", "https")
_UNSAFE_IN_URL = frozenset("<>\"'`")


def email_address(text: str, *, local_domain: bool = False) -> str:
    """``text`` as a checked address (domain in ASCII, lower case), or InvalidAddress.

    ``local_domain`` also accepts a one-label domain such as ``localhost`` (a From
    address for a local mail server), which no public address has."""
    text = text.strip()
    try:
        # strict: the RFC 5321 length limits too (64 before the @), which servers enforce
        found = validate_email(text, check_deliverability=False, allow_smtputf8=False, strict=True)
    except EmailNotValidError as exc:
        local, at, domain = text.rpartition("@")
        if not (local_domain and at and domain.isascii() and domain.isalnum()):
            raise InvalidAddress(str(exc)) from None
        email_address(f"{local}@{domain}.example")  # the local part must still be valid
        return f"{local}@{domain.lower()}"
    return found.ascii_email or found.normalized


def email_or_none(text: str | None) -> str | None:
    """A checked address, or None for a missing or invalid one (a source's author)."""
    if not text:
        return None
    try:
        return email_address(text)
    except InvalidAddress:
        return None


def mailbox_key(text: str) -> str:
    """The canonical form under which a subscriber is kept: a checked address, lower-cased
    (as every large mail provider treats them), so "Reader@Example.COM" and
    "reader@example.com" are one subscriber."""
    return email_address(text).lower()


def http_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` made absolute against ``base``, or None unless it is a plain http(s) URL:
    a host, and no whitespace, control character or ``< > " ' ` `` anywhere in it."""
    if not url:
        return None
    url = url.strip()
    if any(c.isspace() or ord(c) < 0x20 or c in _UNSAFE_IN_URL for c in url):
        return None
    try:
        if base is not None:
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced [ in the host
        return None
    if parts.scheme not in WEB_SCHEMES or not parts.netloc:
        return None
    return url
