"""SPF (RFC 7208): may this address send mail for this domain?

``check_host(resolver, ip, domain, sender)`` evaluates the domain's ``v=spf1``
record the way a receiving server does (include, redirect, a, mx, ip4, ip6,
exists, macros), with the limits receivers enforce: 10 DNS-querying terms and 2
lookups that find nothing. ``ptr`` is deprecated (RFC 7208 5.5) and never matches
here. The result is one of pass, fail, softfail, neutral, none, permerror and
temperror, with a short reason.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from publisher.errors import DnsError, SpfError
from publisher.resolver import Resolver

MAX_LOOKUPS = 10  # RFC 7208 4.6.4
MAX_VOID = 2
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_MACRO = re.compile(r"%\{([slodiphcrtv])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-", re.IGNORECASE)


@dataclass(frozen=True)
class SpfResult:
    result: str  # pass, fail, softfail, neutral, none, permerror, temperror
    reason: str
    record: str = ""  # the domain's own v=spf1 record, as published


def spf_records(resolver: Resolver, domain: str) -> list[str]:
    """The ``v=spf1`` TXT records of ``domain`` (one is right; none or several is an error)."""
    return [t for t in resolver.txt(domain) if re.match(r"v=spf1(\s|$)", t, re.IGNORECASE)]


def check_host(resolver: Resolver, ip: str, domain: str, sender: str = "") -> SpfResult:
    """The SPF result for mail from ``ip`` with envelope sender ``sender`` at ``domain``."""
    state = _State(resolver, ipaddress.ip_address(ip), sender or f"postmaster@{domain}")
    try:
        records = spf_records(resolver, domain)
    except DnsError as exc:
        return SpfResult("temperror", str(exc))
    if not records:
        return SpfResult("none", f"{domain} publishes no SPF record")
    if len(records) > 1:
        return SpfResult(
            "permerror", f"{domain} publishes {len(records)} SPF records (one is allowed)", records[0]
        )
    try:
        result, reason = state.evaluate(domain, records[0])
    except SpfError as exc:
        return SpfResult(exc.result, exc.reason, records[0])
    except DnsError as exc:
        return SpfResult("temperror", str(exc), records[0])
    return SpfResult(result, reason, records[0])


class _State:
    def __init__(
        self, resolver: Resolver, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, sender: str
    ) -> None:
        self.resolver, self.ip, self.sender = resolver, ip, sender
        self.lookups = self.void = 0

    def _count(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise SpfError(
                "permerror", f"more than {MAX_LOOKUPS} DNS lookups (at {term!r}): receivers stop there"
            )

    def _found(self, answers: list) -> list:  # type: ignore[type-arg]
        if not answers:
            self.void += 1
            if self.void > MAX_VOID:
                raise SpfError("permerror", f"more than {MAX_VOID} SPF lookups found nothing")
        return answers

    def check(self, domain: str) -> tuple[str, str]:
        records = spf_records(self.resolver, domain)
        if not records:
            return "none", f"{domain} publishes no SPF record"
        if len(records) > 1:
            return "permerror", f"{domain} publishes {len(records)} SPF records"
        return self.evaluate(domain, records[0])

    def evaluate(self, domain: str, record: str) -> tuple[str, str]:
        redirect = None
        for term in record.split()[1:]:
            name, eq, value = term.partition("=")
            if eq and re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]*", name):
                if name.lower() == "redirect":
                    if redirect is not None:
                        raise SpfError("permerror", f"{domain}: redirect given twice")
                    redirect = self.expand(value, domain)
                continue  # exp= and unknown modifiers do not change the result
            qualifier = _QUALIFIERS.get(term[0], "")
            body = term[1:] if qualifier else term
            if self.matches(body, domain):
                return qualifier or "pass", f"{term!r} in the SPF record of {domain}"
        if redirect is not None and not any(t.lstrip("+-~?").lower() == "all" for t in record.split()):
            self._count("redirect=" + redirect)
            result, reason = self.check(redirect)
            if result == "none":
                raise SpfError("permerror", f"{domain} redirects to {redirect}, which has no SPF record")
            return result, reason
        return "neutral", f"nothing in the SPF record of {domain} matches"

    def matches(self, body: str, domain: str) -> bool:
        found = re.fullmatch(r"([A-Za-z0-9]+)(?::([^/]*))?((?:/\d+)?(?://\d+)?)", body)
        if found is None or found.group(1).lower() not in _MECHANISMS:
            raise SpfError("permerror", f"{domain}: unknown SPF term {body!r}")
        kind, arg, cidr = found.group(1).lower(), found.group(2), found.group(3) or ""
        v4, _, v6 = cidr.lstrip("/").partition("//")
        if cidr.startswith("//"):
            v4, v6 = "", cidr[2:]
        if kind == "all":
            return True
        if kind in ("ip4", "ip6"):
            try:
                net = ipaddress.ip_network(f"{arg}{cidr}", strict=False)
            except ValueError:
                raise SpfError("permerror", f"{domain}: bad address in {body!r}") from None
            return self.ip.version == net.version and self.ip in net
        target = self.expand(arg, domain) if arg else domain
        self._count(f"{kind}:{target}" if arg else kind)
        if kind == "include":
            if not arg:
                raise SpfError("permerror", f"{domain}: include needs a domain")
            result, reason = self.check(target)
            if result in ("permerror", "temperror"):
                raise SpfError(result, reason)
            if result == "none":
                raise SpfError("permerror", f"{domain} includes {target}, which has no SPF record")
            return result == "pass"
        if kind == "exists":
            return bool(self._found(self.resolver.addresses(target)[:1]))
        if kind == "ptr":
            return False
        if kind == "a":
            return self._in(self._found(self.resolver.addresses(target)), v4, v6)
        hosts = self._found([h for _, h in self.resolver.mx(target) if h])
        if len(hosts) > 10:
            raise SpfError("permerror", f"{target} has more than 10 MX hosts")
        return any(self._in(self.resolver.addresses(h), v4, v6) for h in hosts)

    def _in(self, addresses: list[str], v4: str, v6: str) -> bool:
        bits = v4 if self.ip.version == 4 else v6
        for address in addresses:
            net = ipaddress.ip_network(f"{address}/{bits}" if bits else address, strict=False)
            if net.version == self.ip.version and self.ip in net:
                return True
        return False

    def expand(self, spec: str, domain: str) -> str:
        """RFC 7208 section 7 macros (%{d}, %{i}, %{s}, %{l}, %{o}, with digits and r)."""
        local, _, sender_domain = self.sender.rpartition("@")
        values = {
            "s": self.sender,
            "l": local or "postmaster",
            "o": sender_domain,
            "d": domain,
            "i": self.ip.exploded if self.ip.version == 4 else ".".join(self.ip.exploded.replace(":", "")),
            "v": "in-addr" if self.ip.version == 4 else "ip6",
            "h": domain,
            "p": "unknown",
        }

        def one(m: re.Match[str]) -> str:
            if m.group(0) == "%%":
                return "%"
            if m.group(0) == "%_":
                return " "
            if m.group(0) == "%-":
                return "%20"
            value = values.get(m.group(1).lower(), "")
            parts = re.split("[" + re.escape(m.group(4) or ".") + "]", value)
            if m.group(3):
                parts.reverse()
            if m.group(2):
                parts = parts[-int(m.group(2)) :] if int(m.group(2)) else parts
            return ".".join(parts)

        if "%" in _MACRO.sub("", spec):
            raise SpfError("permerror", f"{domain}: bad macro in {spec!r}")
        return _MACRO.sub(one, spec).rstrip(".")
