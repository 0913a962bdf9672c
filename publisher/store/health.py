"""What ``publish deliverability`` reads: the last issues' deliveries (recipient, status,
last SMTP reply), the feedback reports about them, and the MX hosts kept per domain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, delete, func, insert, or_, select

from publisher.store.schema import deliveries, digests, feedback_events, mx_hosts, subscribers


@dataclass(frozen=True)
class IssueRef:
    id: int
    newsletter: str
    key: str
    created: datetime


@dataclass(frozen=True)
class DeliveryRow:
    """How many deliveries to one recipient domain ended alike."""

    domain: str
    status: str  # queued | sent | failed | skipped
    reply_code: int | None
    reply_status: str
    count: int


@dataclass(frozen=True)
class FeedbackRow:
    issue_id: int | None
    address: str
    kind: str
    status: str


class Health:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def last_issues(self, count: int, newsletter: str | None = None) -> list[IssueRef]:
        """The ``count`` newest issues that went out (or are going out), newest first."""
        q = select(digests.c.id, digests.c.newsletter, digests.c.key, digests.c.created).where(
            digests.c.status.in_(("sending", "done"))
        )
        if newsletter:
            q = q.where(digests.c.newsletter == newsletter)
        q = q.order_by(digests.c.created.desc(), digests.c.id.desc()).limit(count)
        with self.engine.connect() as conn:
            return [IssueRef(*r) for r in conn.execute(q)]

    def deliveries(self, issue_ids: list[int]) -> list[DeliveryRow]:
        """These issues' deliveries counted by recipient domain, status and last reply
        (the database adds them up: a list of 100,000 is a few hundred rows here)."""
        d, s = deliveries.c, subscribers.c
        at = func.instr(s.email, "@") if self.engine.dialect.name == "sqlite" else func.strpos(s.email, "@")
        domain = func.lower(func.substr(s.email, at + 1)).label("domain")
        q = (
            select(domain, d.status, d.reply_code, d.reply_status, func.count().label("n"))
            .join(subscribers, s.id == d.subscriber_id)
            .where(d.digest_id.in_(issue_ids))
            .group_by(domain, d.status, d.reply_code, d.reply_status)
        )
        with self.engine.connect() as conn:
            return [
                DeliveryRow(r.domain, r.status, r.reply_code, r.reply_status or "", r.n)
                for r in conn.execute(q)
            ]

    def feedback(self, issue_ids: list[int], since: datetime) -> list[FeedbackRow]:
        """Reports naming these issues, and reports naming no issue (only an address)
        that arrived since ``since`` about an address these issues went to."""
        f = feedback_events.c
        recipients = (
            select(subscribers.c.email)
            .join(deliveries, deliveries.c.subscriber_id == subscribers.c.id)
            .where(deliveries.c.digest_id.in_(issue_ids))
        )
        q = select(f.issue_id, f.address, f.kind, f.status).where(
            or_(
                f.issue_id.in_(issue_ids),
                and_(f.issue_id.is_(None), f.at >= since, f.address.in_(recipients)),
            )
        )
        with self.engine.connect() as conn:
            return [FeedbackRow(r.issue_id, r.address, r.kind, r.status or "") for r in conn.execute(q)]

    def mx(self, domains: Iterable[str], fresh_since: datetime) -> dict[str, list[str]]:
        """The kept MX hosts of ``domains`` looked up since ``fresh_since``."""
        wanted = sorted(set(domains))
        found: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                q = select(mx_hosts).where(
                    mx_hosts.c.domain.in_(wanted[i : i + 500]), mx_hosts.c.checked >= fresh_since
                )
                found.update((r.domain, r.hosts.split()) for r in conn.execute(q))
        return found

    def all_mx(self, fresh_since: datetime) -> dict[str, list[str]]:
        """Every kept MX answer looked up since ``fresh_since`` (one read before sending)."""
        q = select(mx_hosts.c.domain, mx_hosts.c.hosts).where(mx_hosts.c.checked >= fresh_since)
        with self.engine.connect() as conn:
            return {r.domain: r.hosts.split() for r in conn.execute(q)}

    def keep_mx(self, found: dict[str, list[str]], now: datetime) -> None:
        if not found:
            return
        with self.engine.begin() as conn:
            conn.execute(delete(mx_hosts).where(mx_hosts.c.domain.in_(list(found))))
            conn.execute(
                insert(mx_hosts),
                [{"domain": d, "hosts": " ".join(h), "checked": now} for d, h in found.items()],
            )
