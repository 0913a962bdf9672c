"""Recording what sending did: the outcome of each delivery, and what it says about the
address (a delivered message clears its hard failures; a 5.1.1 bounces it at once, other
hard failures once ``bounce_limit`` of them have accumulated, and a bounced address goes
on the suppression list). Written inside a claim's commit (``store.claims``): a delivery
changes only while its row still points at the claim (the fencing token). Statements
compiled once for a driver cursor: the sending loop's hot path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, update

from publisher.models import Outcome
from publisher.store.feedback import suppression_of
from publisher.store.rows import Compiled, ids_text, in_ids
from publisher.store.schema import deliveries, subscribers


class OutcomeWriter:
    """The statements recording outcomes of one issue's deliveries."""

    def __init__(self, engine: Engine, digest_id: int) -> None:
        d, sub = deliveries.c, subscribers.c
        self.by_delivery = Compiled(
            engine,
            update(deliveries)
            .where(
                d.digest_id == digest_id,
                d.subscriber_id == bindparam("sid"),
                d.claim_id == bindparam("mine"),  # the fencing token: rows still the claim's only
            )
            .values(
                status=bindparam("new_status"),
                attempts=d.attempts + 1,
                last_error=bindparam("error"),
                changed=bindparam("now"),
                reply_code=bindparam("code"),
                reply_status=bindparam("reply"),
            ),
        )
        self.count = Compiled(
            engine,
            update(subscribers).where(sub.id == bindparam("sid")).values(hard_failures=sub.hard_failures + 1),
        )
        self.suppress = Compiled(
            engine,
            update(subscribers)
            .where(
                sub.id == bindparam("sid"), sub.status == "active", sub.hard_failures >= bindparam("limit")
            )
            .values(status="bounced", changed=bindparam("now")),
        )
        self.listed = Compiled(engine, suppression_of(engine.dialect.name))
        # The messages delivered, all alike but for the reader, in one statement each
        # (their ids as one parameter, rows.in_ids) instead of one per message: fewer
        # statements to send and parse on PostgreSQL, fewer arguments to build on both
        dialect = engine.dialect.name
        self.many = (
            Compiled(
                engine,
                update(deliveries)
                .where(
                    in_ids(dialect, d.subscriber_id, "sids", within=(d.digest_id, digest_id)),
                    d.claim_id == bindparam("mine"),
                )
                .values(
                    status="sent",
                    attempts=d.attempts + 1,
                    last_error=None,
                    changed=bindparam("now"),
                    reply_code=None,
                    reply_status=None,
                ),
            ),
            Compiled(
                engine,
                update(subscribers)
                .where(in_ids(dialect, sub.id, "sids"), sub.hard_failures > 0)
                .values(hard_failures=0),
            ),
        )
        self.dialect = dialect
        self._sent: tuple[int | None, Callable[..., Any]] = (None, self.many[0].args)  # bound for one claim
        self._clear = self.many[1].bound()

    def write(self, cur: Any, mine: int, outcomes: Sequence[Outcome], when: str | None, limit: int) -> int:
        """Record ``outcomes`` of claim ``mine`` on the driver cursor ``cur`` (the caller
        commits): a delivery changes only while its row still points at the claim (one
        taken over keeps its new holder's); what the outcomes say about the addresses is
        true whoever holds the rows (the server did accept or refuse). Returns how many
        addresses became bounced."""
        sent = [o.subscriber_id for o in outcomes if o.status == "sent"]
        plain = [o for o in outcomes if not _alike(o)]
        if len(plain) < len(outcomes):
            alike = ids_text(self.dialect, [o.subscriber_id for o in outcomes if _alike(o)])
            if self._sent[0] != mine:
                self._sent = (mine, self.many[0].bound(mine=mine))
            cur.execute(self.many[0].sql, self._sent[1](sids=alike, now=when))
        if sent:
            cur.execute(self.many[1].sql, self._clear(sids=ids_text(self.dialect, sent)))
        if plain:
            cur.executemany(self.by_delivery.sql, [self._args(mine, o, when) for o in plain])
        bounced = 0
        for o in outcomes:
            if o.status == "failed" and o.bounce:
                cur.execute(self.count.sql, self.count.args(sid=o.subscriber_id))
                at = 1 if o.bounce == "now" else limit
                cur.execute(self.suppress.sql, self.suppress.args(sid=o.subscriber_id, limit=at, now=when))
                if cur.rowcount > 0:  # it just bounced: on the suppression list too
                    bounced += 1
                    detail = (o.error or "")[:500]
                    cur.execute(
                        self.listed.sql, self.listed.args(sid=o.subscriber_id, detail=detail, now=when)
                    )
        return bounced

    @staticmethod
    def alike(outcomes: Sequence[Outcome]) -> bool:
        """Whether every outcome is a delivered message's with nothing of its own but the
        reader (``many`` records them)."""
        return all(_alike(o) for o in outcomes)

    def _args(self, mine: int, o: Outcome, when: str | None) -> Any:
        return self.by_delivery.args(
            mine=mine,
            sid=o.subscriber_id,
            new_status=o.status,
            error=o.error,
            now=when,
            code=o.reply_code,
            reply=o.reply_status or None,
        )


def _alike(o: Outcome) -> bool:
    """A delivered message's outcome with nothing of its own but the reader."""
    return o.status == "sent" and o.error is None and o.reply_code is None and not o.reply_status
