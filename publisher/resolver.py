"""DNS lookups: the one module that uses dnspython.

``Resolver(config)`` asks the server named by ``[dns] resolver`` ("host" or
"host:port"; empty: the system's, from /etc/resolv.conf). A name that does not
exist, or has no record of the type asked, is an empty answer; a server that does
not answer in time, or answers with an error, raises ``DnsError`` (one line naming
the query), because "no record" and "could not tell" lead to different advice.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from publisher.errors import DnsError


def parse_server(text: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"``, ``"[::1]:53"`` or ``"9.9.9.9"`` as (address, port); ValueError if not one."""
    text = text.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(text)
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = int(number)
    else:
        host = text
    ipaddress.ip_address(host)
    if not 1 <= port <= 65535:
        raise ValueError(text)
    return host, port


class Resolver:
    """TXT, MX and address lookups with the site's resolver and timeout."""

    def __init__(self, server: str = "", timeout: float = 5.0) -> None:
        import dns.resolver

        if server:
            host, port = parse_server(server)  # checked when the configuration was read
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [host]
            self._resolver.port = port
        else:
            try:
                self._resolver = dns.resolver.Resolver()
            except Exception as exc:  # no /etc/resolv.conf, or one without a nameserver
                raise DnsError(
                    f"no DNS resolver configured on this machine ({exc}): set dns.resolver"
                ) from None
        self._resolver.lifetime = timeout
        self._resolver.timeout = min(timeout, 2.0)
        self.server = server or "the system resolver"
        self.lookups = 0
        self._down = ""

    @classmethod
    def of(cls, config: Any) -> Resolver:
        return cls(config.dns.resolver, config.dns.timeout)

    def _query(self, name: str, rdtype: str) -> list[Any]:
        import dns.exception
        import dns.name
        import dns.resolver

        if self._down:  # one timeout is enough: the rest would wait as long for nothing
            raise DnsError(f"DNS: {rdtype} {name}: {self._down}")
        self.lookups += 1
        try:
            answer = self._resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.NoNameservers:
            raise DnsError(
                f"DNS: {rdtype} {name}: the server answered with an error (SERVFAIL or REFUSED)"
            ) from None
        except dns.exception.Timeout:
            self._down = f"no answer from {self.server} in time"
            raise DnsError(f"DNS: {rdtype} {name}: {self._down}") from None
        except (dns.name.LabelTooLong, dns.name.NameTooLong, dns.name.EmptyLabel):
            return []
        except dns.exception.DNSException as exc:
            raise DnsError(f"DNS: {rdtype} {name}: {exc}") from None
        return list(answer) if answer.rrset is not None else []

    def txt(self, name: str) -> list[str]:
        """Each TXT record of ``name`` as one string (its character-strings joined)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._query(name, "TXT")]

    def mx(self, name: str) -> list[tuple[int, str]]:
        """``name``'s MX records as (preference, host) sorted by preference; a null MX
        (RFC 7505) is ``(0, "")``."""
        import dns.name

        return sorted(
            (
                r.preference,
                "" if r.exchange == dns.name.root else r.exchange.to_text(omit_final_dot=True).lower(),
            )
            for r in self._query(name, "MX")
        )

    def addresses(self, name: str) -> list[str]:
        """IPv4 and IPv6 addresses of ``name`` (A then AAAA)."""
        return [r.address for r in self._query(name, "A")] + [r.address for r in self._query(name, "AAAA")]

    def exists(self, name: str) -> bool:
        return bool(self._query(name, "A"))
