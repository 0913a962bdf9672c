"""Which mailbox provider holds an address: by its domain for the large ones, else by
the hosts the domain's MX records name (a company domain hosted by Google Workspace or
Microsoft 365 is Gmail or Outlook to the sender: the same filters judge the mail).

``Providers`` classifies addresses; MX hosts come from ``mx`` (the store's cache, with
lookups through ``publisher.resolver`` for domains not seen before, see
``publisher.deliverability.mx``). Unknown domains and domains whose MX is not a known
provider's are "other".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    key: str
    label: str
    domains: frozenset[str]
    mx: re.Pattern[str]  # an MX host name of this provider


PROVIDERS = (
    Provider(
        "gmail",
        "Gmail",
        frozenset({"gmail.com", "googlemail.com"}),
        re.compile(r"(^|\.)(google\.com|googlemail\.com)$"),
    ),
    Provider(
        "outlook",
        "Outlook/Hotmail",
        frozenset(
            {
                "outlook.com",
                "hotmail.com",
                "hotmail.co.uk",
                "hotmail.fr",
                "hotmail.de",
                "hotmail.it",
                "live.com",
                "live.co.uk",
                "live.fr",
                "msn.com",
                "windowslive.com",
                "outlook.kr",
                "passport.com",
            }
        ),
        re.compile(r"(^|\.)(protection\.outlook\.com|outlook\.com|hotmail\.com)$"),
    ),
    Provider(
        "yahoo",
        "Yahoo/AOL",
        frozenset(
            {
                "yahoo.com",
                "yahoo.co.uk",
                "yahoo.fr",
                "yahoo.de",
                "yahoo.co.kr",
                "ymail.com",
                "rocketmail.com",
                "aol.com",
                "aim.com",
                "verizon.net",
                "att.net",
            }
        ),
        re.compile(r"(^|\.)(yahoodns\.net|yahoo\.com|aol\.com)$"),
    ),
    Provider(
        "icloud",
        "Apple iCloud",
        frozenset({"icloud.com", "me.com", "mac.com"}),
        re.compile(r"(^|\.)(icloud\.com|me\.com)$"),
    ),
    Provider("naver", "Naver", frozenset({"naver.com"}), re.compile(r"(^|\.)naver\.com$")),
    Provider(
        "daum",
        "Daum/Kakao",
        frozenset({"daum.net", "hanmail.net", "kakao.com"}),
        re.compile(r"(^|\.)(daum\.net|hanmail\.net|kakao\.com)$"),
    ),
)
OTHER = Provider("other", "other mail servers", frozenset(), re.compile(r"$^"))
BY_KEY = {p.key: p for p in (*PROVIDERS, OTHER)}
_BY_DOMAIN = {d: p for p in PROVIDERS for d in p.domains}


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def known(domain: str) -> Provider | None:
    """The provider of a domain it owns (gmail.com: Gmail), without any lookup."""
    return _BY_DOMAIN.get(domain)


def by_mx(hosts: list[str]) -> Provider:
    """The provider whose MX hosts these are (the most preferred one decides), else other."""
    for host in hosts:
        for provider in PROVIDERS:
            if provider.mx.search(host.lower().rstrip(".")):
                return provider
    return OTHER


class Providers:
    """Classifies addresses; ``mx(domain)`` gives a domain's MX hosts (or None: unknown)."""

    def __init__(self, mx: Callable[[str], list[str] | None] | Mapping[str, list[str]]) -> None:
        self._mx = mx.get if isinstance(mx, Mapping) else mx
        self._seen: dict[str, Provider] = {}

    def of(self, address: str) -> Provider:
        domain = domain_of(address)
        found = self._seen.get(domain)
        if found is None:
            found = known(domain)
            if found is None:
                hosts = self._mx(domain)
                found = by_mx(hosts) if hosts else OTHER
            self._seen[domain] = found
        return found
