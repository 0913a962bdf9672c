"""``publish doctor``: what a bulk sender must fix before the first big send.

Gmail, Yahoo and Microsoft refuse bulk mail that fails these (since 2024-2025): the
envelope domain's SPF must allow the host that sends, the mail must carry a DKIM
signature whose key is published under the configured selector, the From domain
must publish a valid DMARC record (RFC 9989) that SPF or DKIM aligns with, the
unsubscribe link must be https (RFC 8058 one-click), and bounces need a return path
that receives mail. Each check gives one ``Finding``: ``ok``, ``warn`` (worth a
look) or ``fix`` (receivers will refuse or junk the mail). DNS goes through
``publisher.resolver`` (``[dns] resolver``), so tests run against a loopback server.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import urlsplit

from publisher.config import Config
from publisher.doctor import dmarc, spf
from publisher.errors import DnsError
from publisher.resolver import Resolver

LEVELS = ("ok", "warn", "fix")


@dataclass(frozen=True)
class Finding:
    check: str  # spf, dkim, dmarc, alignment, mx, unsubscribe, return-path
    level: str  # ok | warn | fix
    text: str

    def line(self) -> str:
        return f"{self.level.upper() if self.level == 'fix' else self.level:<4} {self.check}: {self.text}"


def domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].lower()


def return_path(config: Config) -> str:
    """The envelope sender's address: ``delivery.return_path`` when set, else From."""
    return config.delivery.return_path or parseaddr(config.digest.from_)[1]


def examine(config: Config, resolver: Resolver | None = None) -> list[Finding]:
    """Every check, in the order an operator fixes them."""
    resolver = resolver or Resolver.of(config)
    doctor = _Doctor(config, resolver)
    findings: list[Finding] = []
    for check in (doctor.spf, doctor.dkim, doctor.dmarc, doctor.mx, doctor.return_path, doctor.unsubscribe):
        findings += _guarded(check)
    return findings


def _guarded(check: Callable[[], list[Finding]]) -> list[Finding]:
    try:
        return check()
    except DnsError as exc:
        name = check.__name__.replace("_", "-")
        return [Finding(name, "fix", f"could not be checked: {exc}")]


class _Doctor:
    def __init__(self, config: Config, resolver: Resolver) -> None:
        self.config, self.resolver = config, resolver
        self.from_domain = domain_of(config.digest.from_)
        self.envelope = return_path(config)
        self.envelope_domain = self.envelope.rpartition("@")[2].lower()
        self._policy: dmarc.DmarcRecord | None = None

    def sending_addresses(self) -> tuple[list[tuple[str, str]], str]:
        """(address, where it comes from) of every host that hands our mail to the
        world, and why there are none when there are none."""
        hosts = list(self.config.doctor.sending_ips)
        named = bool(hosts)  # addresses the operator names are taken as they are
        if not hosts:
            if self.config.delivery.transport != "smtp":
                return (
                    [],
                    "delivery.transport is maildir: set doctor.sending_ips to the relay's public addresses",
                )
            hosts = [self.config.delivery.smtp.host]
        found: list[tuple[str, str]] = []
        for host in hosts:
            try:
                found.append((str(ipaddress.ip_address(host)), host))
            except ValueError:
                found += [(a, host) for a in self.resolver.addresses(host)]
        public = [(a, h) for a, h in found if named or ipaddress.ip_address(a).is_global]
        if not public:
            shown = ", ".join(hosts)
            return (
                [],
                f"{shown} is not a public address: set doctor.sending_ips to the addresses mail leaves from",
            )
        return public, ""

    def spf(self) -> list[Finding]:
        domain = self.envelope_domain
        records = spf.spf_records(self.resolver, domain)
        if not records:
            return [
                Finding(
                    "spf",
                    "fix",
                    f'{domain} publishes no SPF record: add a TXT record "v=spf1 ... -all" naming your relay',
                )
            ]
        if len(records) > 1:
            return [
                Finding("spf", "fix", f"{domain} publishes {len(records)} SPF records: merge them into one")
            ]
        out: list[Finding] = []
        terms = records[0].lower().split()
        if "+all" in terms or "all" in terms:
            out.append(
                Finding("spf", "fix", f"the SPF record of {domain} ends in +all: it lets anyone send as you")
            )
        addresses, why = self.sending_addresses()
        if not addresses:
            return [
                *out,
                Finding("spf", "warn", f"{domain} has an SPF record, but which host sends is unknown: {why}"),
            ]
        for address, host in addresses:
            result = spf.check_host(self.resolver, address, domain, self.envelope)
            shown = address if address == host else f"{host} ({address})"
            if result.result == "pass":
                out.append(Finding("spf", "ok", f"{shown} may send for {domain} ({result.reason})"))
            elif result.result in ("permerror", "temperror"):
                out.append(
                    Finding("spf", "fix", f"the SPF record of {domain} cannot be evaluated: {result.reason}")
                )
            else:
                out.append(
                    Finding(
                        "spf",
                        "fix",
                        f"{shown} is not allowed to send for {domain} (SPF {result.result}): "
                        f"add ip{ipaddress.ip_address(address).version}:{address} or your relay's include: to the record",
                    )
                )
        return out

    def dkim(self) -> list[Finding]:
        d = self.config.delivery
        if not d.dkim_selector:
            return [
                Finding(
                    "dkim",
                    "fix",
                    "mail is not DKIM-signed: set delivery.dkim_selector, dkim_domain and dkim_key_file "
                    "(Gmail and Yahoo require DKIM of bulk senders)",
                )
            ]
        import dkim.crypto

        name = f"{d.dkim_selector}._domainkey.{d.dkim_domain}"
        records = [t for t in self.resolver.txt(name) if "p=" in t.replace(" ", "")]
        if not records:
            return [
                Finding(
                    "dkim",
                    "fix",
                    f"no DKIM key published at {name}: publish the TXT record for delivery.dkim_key_file",
                )
            ]
        tags = dict(
            (k.strip(), v.strip())
            for k, _, v in (p.partition("=") for p in records[0].split(";"))
            if k.strip()
        )
        published = re.sub(r"\s+", "", tags.get("p", ""))
        if not published:
            return [
                Finding("dkim", "fix", f"the key at {name} is revoked (empty p=): publish the current one")
            ]
        if tags.get("k", "rsa").lower() != "rsa":
            return [
                Finding(
                    "dkim", "fix", f"the key at {name} is k={tags['k']}, but delivery.dkim_key_file is RSA"
                )
            ]
        assert d.dkim_key_file is not None
        own = dkim.crypto.parse_pem_private_key(d.dkim_key_file.read_bytes())
        try:
            theirs = dkim.crypto.parse_public_key(base64.b64decode(published))
        except Exception:
            return [Finding("dkim", "fix", f"the p= of {name} is not an RSA public key")]
        if (theirs["modulus"], theirs["publicExponent"]) != (own["modulus"], own["publicExponent"]):
            return [
                Finding(
                    "dkim",
                    "fix",
                    f"the key at {name} does not match delivery.dkim_key_file: publish its public key",
                )
            ]
        bits = own["modulus"].bit_length()
        level = "ok" if bits >= 2048 else "warn"
        return [Finding("dkim", level, f"{name} publishes the {bits}-bit key of delivery.dkim_key_file")]

    def dmarc(self) -> list[Finding]:
        found = dmarc.discover(self.resolver, self.from_domain)
        if found is None:
            several = dmarc.records_at(self.resolver, self.from_domain)
            if len(several) > 1:
                return [
                    Finding(
                        "dmarc",
                        "fix",
                        f"_dmarc.{self.from_domain} publishes {len(several)} DMARC records: keep one",
                    )
                ]
            return [
                Finding(
                    "dmarc",
                    "fix",
                    f'no DMARC record for {self.from_domain}: publish _dmarc.{self.from_domain} TXT "v=DMARC1; p=none; rua=mailto:..."',
                )
            ]
        where, text = found
        record = dmarc.parse(text)
        self._policy = record
        out = [Finding("dmarc", "fix", f"_dmarc.{where}: {e}") for e in record.errors]
        out += [Finding("dmarc", "warn", f"_dmarc.{where}: {w}") for w in record.warnings]
        if not record.errors:
            rua = ", ".join(record.rua) or "none"
            test = " (t=y: test mode)" if record.tags.get("t") == "y" else ""
            out.insert(0, Finding("dmarc", "ok", f"_dmarc.{where}: p={record.p}{test}, rua={rua}"))
            out += self._report_authorisation(record)
        out += self._alignment(record)
        return out

    def _report_authorisation(self, record: dmarc.DmarcRecord) -> list[Finding]:
        """An rua= address in another organisation takes reports only if it says so
        (RFC 9989: ``<domain>._report._dmarc.<its domain>``)."""
        out = []
        own = dmarc.organizational_domain(self.resolver, self.from_domain)
        for uri in record.rua:
            if not uri.lower().startswith("mailto:"):
                continue
            target = uri[7:].split("!")[0].rpartition("@")[2].lower()
            if not target or dmarc.organizational_domain(self.resolver, target) == own:
                continue
            name = f"{self.from_domain}._report._dmarc.{target}"
            if not [t for t in self.resolver.txt(name) if dmarc.is_dmarc(t)]:
                out.append(
                    Finding(
                        "dmarc",
                        "warn",
                        f"rua {uri} is in another domain that does not accept your reports ({name} has no v=DMARC1)",
                    )
                )
        return out

    def _alignment(self, record: dmarc.DmarcRecord) -> list[Finding]:
        d = self.config.delivery
        dkim_ok = bool(d.dkim_domain) and dmarc.aligned(
            self.resolver, self.from_domain, d.dkim_domain, record.aligned("dkim")
        )
        spf_ok = dmarc.aligned(self.resolver, self.from_domain, self.envelope_domain, record.aligned("spf"))
        if dkim_ok or spf_ok:
            which = " and ".join(n for n, ok in (("DKIM", dkim_ok), ("SPF", spf_ok)) if ok)
            verb = "align" if dkim_ok and spf_ok else "aligns"
            return [Finding("alignment", "ok", f"{which} {verb} with the From domain {self.from_domain}")]
        return [
            Finding(
                "alignment",
                "fix",
                f"neither the DKIM domain ({d.dkim_domain or 'none'}) nor the return path's ({self.envelope_domain}) "
                f"aligns with the From domain {self.from_domain}: DMARC fails for every message",
            )
        ]

    def mx(self) -> list[Finding]:
        return [
            self._receives(
                "mx", self.from_domain, "replies and mailto: unsubscribe requests to the From address"
            )
        ]

    def _receives(self, check: str, domain: str, what: str) -> Finding:
        hosts = self.resolver.mx(domain)
        if hosts and all(not h for _, h in hosts):
            return Finding(check, "fix", f"{domain} publishes a null MX (accepts no mail): {what} are lost")
        if not hosts:
            if self.resolver.addresses(domain):
                return Finding(
                    check, "warn", f"{domain} has no MX record (mail goes to its A record): publish an MX"
                )
            return Finding(check, "fix", f"{domain} has no MX record and no address: {what} are lost")
        shown = ", ".join(h for _, h in hosts[:3])
        return Finding(check, "ok", f"{domain} receives mail at {shown}")

    def return_path(self) -> list[Finding]:
        if not self.config.delivery.return_path:
            return [
                Finding(
                    "return-path",
                    "warn",
                    "delivery.return_path is unset: bounces go to the From address and cannot name their delivery",
                )
            ]
        return [self._receives("return-path", self.envelope_domain, "bounces")]

    def unsubscribe(self) -> list[Finding]:
        base = self.config.site.base_url
        parts = urlsplit(base)
        if parts.scheme != "https":
            return [
                Finding(
                    "unsubscribe",
                    "fix",
                    f"site.base_url is {base}: one-click unsubscribe links must be https",
                )
            ]
        try:
            ipaddress.ip_address((parts.hostname or "").strip("[]"))
        except ValueError:
            return [Finding("unsubscribe", "ok", f"unsubscribe links are https on {parts.hostname}")]
        return [
            Finding(
                "unsubscribe",
                "warn",
                f"site.base_url is on an IP address ({parts.hostname}): use a domain name",
            )
        ]
