"""Tokens of signed webhook requests already taken (Mailgun's ``token``): a token
seen before is a replay. Kept only as long as its signed timestamp could still
pass the staleness check; older ones are deleted as new ones arrive."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from publisher.store.schema import webhook_tokens


class WebhookTokens:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def take(self, token: str, now: datetime, keep: float) -> bool:
        """Remember ``token``; False when it was taken before (a replay). Atomic: of
        two requests with one token, exactly one gets True."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(webhook_tokens).where(webhook_tokens.c.seen < now - timedelta(seconds=keep))
                )
                conn.execute(insert(webhook_tokens).values(token=token, seen=now))
        except IntegrityError:
            return False
        return True

    def release(self, token: str) -> None:
        """Forget ``token`` (its request could not be recorded: a retry must get through)."""
        with self.engine.begin() as conn:
            conn.execute(delete(webhook_tokens).where(webhook_tokens.c.token == token))
