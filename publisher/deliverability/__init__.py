"""``publish deliverability``: how each mailbox provider treats the last issues.

For every provider (Gmail, Outlook/Hotmail, Yahoo/AOL, Apple iCloud, Naver, Daum/Kakao,
other; see ``providers``) the last issues' deliveries are counted: sent, deferred (the
last reply was 4xx, or a DSN said "delayed"), bounced (refused in the session, or a
bounce reported later), complained, refused for policy (4.7.x/5.7.x), still queued;
with rates and the commonest replies and what they mean (``delivery.replies``).
Domains that are not a provider's own are grouped by their MX hosts, looked up through
``[dns] resolver`` once and kept in the store (``mx_hosts``) for ``MX_DAYS`` days.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from publisher.config import Config
from publisher.deliverability.gate import ProviderGate
from publisher.deliverability.providers import BY_KEY, PROVIDERS, Providers, domain_of, known
from publisher.delivery.replies import is_policy, meaning
from publisher.errors import DnsError
from publisher.i18n import count

MX_DAYS = 30
MAX_LOOKUPS = 300  # new domains looked up per report; the rest wait for the next one
COMPLAINT_CEILING = 0.003  # Gmail's and Yahoo's bulk sender limit (0.3 %)


@dataclass(frozen=True)
class Reply:
    code: int | None
    status: str
    count: int
    meaning: str

    def text(self) -> str:
        shown = " ".join(str(p) for p in (self.code, self.status) if p)
        return f"{shown} ×{self.count} ({self.meaning})"


@dataclass
class ProviderHealth:
    provider: str
    label: str
    deliveries: int = 0
    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    complained: int = 0
    policy: int = 0
    queued: int = 0
    replies: list[Reply] = field(default_factory=list)

    def count_status(self, status: str, n: int) -> None:
        """Deliveries of the ledger in ``status``."""
        self.deliveries += n
        if status == "sent":
            self.sent += n
        elif status == "failed":
            self.bounced += n
        elif status == "queued":
            self.queued += n

    def count_feedback(self, kind: str) -> None:
        """One late report (a DSN, an ARF complaint, a webhook) of ``kind``."""
        if kind in ("hard_bounce", "soft_bounce"):
            self.bounced += 1
        elif kind == "complaint":
            self.complained += 1
        elif kind == "delayed":
            self.deferred += 1
        elif kind == "policy":
            self.policy += 1

    def rate(self, count: int, of: int | None = None) -> float:
        base = self.deliveries if of is None else of
        return count / base if base else 0.0

    @property
    def rates(self) -> dict[str, float]:
        return {
            "deferred": self.rate(self.deferred),
            "bounced": self.rate(self.bounced),
            "complained": self.rate(self.complained, self.sent),
            "policy": self.rate(self.policy),
        }

    def line(self) -> str:
        def pct(value: float) -> str:
            return f"{value * 100:.2f}".rstrip("0").rstrip(".") + "%"

        r = self.rates
        text = (
            f"{self.label}: {count(self.deliveries, '%(num)s delivery', '%(num)s deliveries')}, "
            f"{self.sent:,} sent, {self.deferred:,} deferred ({pct(r['deferred'])}), "
            f"{self.bounced:,} bounced ({pct(r['bounced'])}), "
            f"{self.complained:,} complained ({pct(r['complained'])} of sent), "
            f"{self.policy:,} refused for policy ({pct(r['policy'])})"
            + (f", {self.queued:,} queued" if self.queued else "")
        )
        if r["complained"] >= COMPLAINT_CEILING and self.complained:
            text += f"; over the {pct(COMPLAINT_CEILING)} complaint rate bulk senders must stay under"
        return text


@dataclass
class Report:
    issues: list[str] = field(default_factory=list)
    providers: list[ProviderHealth] = field(default_factory=list)
    unresolved: int = 0  # domains whose MX could not be looked up (counted as other)

    def lines(self) -> list[str]:
        if not self.issues:
            return ["deliverability: no issue has been sent yet"]
        last = count(len(self.issues), "the last issue", "the last %(num)s issues")
        out = [f"deliverability of {last}: {', '.join(self.issues)}"]
        for p in self.providers:
            out.append(p.line())
            if p.replies:
                out.append(f"  {p.label} replies: " + "; ".join(r.text() for r in p.replies))
        if self.unresolved:
            domains = count(self.unresolved, "%(num)s domain's MX", "%(num)s domains' MX")
            out.append(f"{domains} could not be looked up now: counted with other mail servers")
        return out

    def as_dict(self) -> dict[str, object]:
        return {
            "issues": self.issues,
            "unresolved": self.unresolved,
            "providers": [
                {
                    **{k: v for k, v in vars(p).items() if k != "replies"},
                    "rates": p.rates,
                    "replies": [vars(r) for r in p.replies],
                }
                for p in self.providers
            ],
        }


def report(
    config: Config, store: object, *, issues: int = 5, newsletter: str | None = None, lookups: bool = True
) -> Report:
    """The per-provider health of the last ``issues`` issues (of ``newsletter``, or all)."""
    health = store.health  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    found = health.last_issues(issues, newsletter)
    result = Report(issues=[f"{i.newsletter}/{i.key}" for i in found])
    if not found:
        return result
    ids = [i.id for i in found]
    rows = health.deliveries(ids)
    feedback = health.feedback(ids, min(i.created for i in found))
    domains = {r.domain for r in rows} | {domain_of(f.address) for f in feedback}
    mx, result.unresolved = mx_hosts(config, health, domains, now, lookups=lookups)
    providers = Providers(mx)
    by_key: dict[str, ProviderHealth] = {}
    replies: dict[str, Counter[tuple[int | None, str]]] = {}

    def entry(address: str) -> ProviderHealth:
        p = providers.of(address)
        if p.key not in by_key:
            by_key[p.key] = ProviderHealth(p.key, p.label)
            replies[p.key] = Counter()
        return by_key[p.key]

    for r in rows:
        h = entry("@" + r.domain)
        h.count_status(r.status, r.count)
        if r.status == "queued" and r.reply_code is not None and 400 <= r.reply_code < 500:
            h.deferred += r.count
        if is_policy(r.reply_status):
            h.policy += r.count
        if r.reply_code is not None and not 200 <= r.reply_code < 300:
            replies[h.provider][(r.reply_code, r.reply_status)] += r.count
    once = {(f.issue_id or 0, f.address, f.kind): f.status for f in feedback}  # one per issue, address, kind
    for (_, address, kind), status in sorted(once.items()):
        h = entry(address)
        h.count_feedback(kind)
        if status and kind != "delivered":
            replies[h.provider][(None, status)] += 1
    order = [p.key for p in PROVIDERS] + ["other"]
    for key in order:
        if key in by_key:
            h = by_key[key]
            h.replies = [Reply(c, s, n, meaning(c, s)) for (c, s), n in replies[key].most_common(3)]
            result.providers.append(h)
    return result


def gate_for(config: Config, store: object) -> ProviderGate:
    """The gate of one run: providers by domain and by the MX hosts the store keeps (no
    lookups while sending), the site's ``[deliverability]`` thresholds."""
    fresh = datetime.now(UTC) - timedelta(days=MX_DAYS)
    providers = Providers(store.health.all_mx(fresh))  # type: ignore[attr-defined]
    return ProviderGate(providers, config.deliverability.pause_rate, config.deliverability.pause_after)


def mx_hosts(
    config: Config, health: object, domains: set[str], now: datetime, *, lookups: bool = True
) -> tuple[dict[str, list[str]], int]:
    """MX hosts of the domains no provider owns: kept ones, then fresh lookups (at most
    ``MAX_LOOKUPS``), kept for next time. Returns (hosts by domain, domains not resolved)."""
    unknown = {d for d in domains if d and known(d) is None}
    found: dict[str, list[str]] = health.mx(unknown, now - timedelta(days=MX_DAYS))  # type: ignore[attr-defined]
    missing = sorted(unknown - set(found))
    if not lookups or not missing:
        return found, 0
    from publisher.resolver import Resolver

    resolver = Resolver.of(config)
    fresh: dict[str, list[str]] = {}
    unresolved = 0
    for domain in missing[:MAX_LOOKUPS]:
        try:
            fresh[domain] = [host for _, host in resolver.mx(domain) if host]
        except DnsError:
            unresolved += 1
    health.keep_mx(fresh, now)  # type: ignore[attr-defined]
    found.update(fresh)
    return found, unresolved + max(0, len(missing) - MAX_LOOKUPS)


__all__ = ["BY_KEY", "ProviderHealth", "Report", "report"]
