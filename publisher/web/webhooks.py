"""``POST /webhooks/<provider>``: ESP reports of bounces, complaints and deliveries.

Each request is verified by its provider's scheme (``publisher.esp``) before
anything is read from it; a forged, tampered, stale or replayed request changes
nothing and is answered 401 (no credentials) or 403, with one log line saying why.
A trusted one becomes feedback Events that ``feedback.record`` applies and commits
before the 200 answer (the same event twice counts once). A provider whose secret
(``[webhooks]``) is not set answers 404: that webhook is off.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from publisher.config import Config
from publisher.errors import Rejected
from publisher.esp import PROVIDERS, mailgun, postmark, sendgrid, ses
from publisher.esp.sns import SnsVerifier
from publisher.feedback import Event, record
from publisher.messages import Messages

log = logging.getLogger("publisher.web")

MAX_BODY = 4 * 1024 * 1024  # SendGrid posts batches; anything larger is not a webhook


class Webhooks:
    def __init__(
        self, config: Config, store: Callable[[], Any], messages: Callable[[], Messages | None]
    ) -> None:
        self.config = config
        self.settings = config.webhooks
        self._store, self._messages = store, messages
        self.sns = SnsVerifier(
            self.settings.ses_topics, self.settings.sns_cert_hosts, self.settings.sns_ca_file, timeout=10.0
        )

    async def receive(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        if provider not in PROVIDERS:
            return Response(status_code=404)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return Response(status_code=413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            counted = await run_in_threadpool(self.handle, provider, headers, body, datetime.now(UTC))
        except Rejected as exc:
            log.warning("webhook %s: %s (answered %d)", provider, exc.reason, exc.status)
            challenge = {"www-authenticate": 'Basic realm="webhooks"'} if exc.status == 401 else None
            return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=challenge)
        return JSONResponse(counted)

    def handle(self, provider: str, headers: dict[str, str], body: bytes, now: datetime) -> dict[str, int]:
        """Verify, read and record one request; ``Rejected`` when it is not trusted."""
        if provider == "ses":
            return self._ses(body, now)
        if provider == "postmark":
            user = self._secret(provider, self.settings.postmark_user_env, required=False)
            password = self._secret(provider, self.settings.postmark_password_env)
            found = postmark.verify(headers.get("authorization", ""), body, user, password)
            return self._record(postmark.events(found, now))
        if provider == "mailgun":
            key = self._secret(provider, self.settings.mailgun_key_env)
            data, token = mailgun.verify(body, key, now, self.settings.max_age)
            taken = f"mailgun:{token}"
            if not self.store.webhook_tokens.take(taken, now, keep=2 * self.settings.max_age):
                raise Rejected(403, "a Mailgun token seen before (a replayed request)")
            try:
                return self._record(mailgun.events(data, self._delivery, now))
            except BaseException:
                self.store.webhook_tokens.release(taken)  # Mailgun's retry must get through
                raise
        text = self._secret(provider, self.settings.sendgrid_key_env)
        try:
            key = sendgrid.load_key(text)
        except ValueError:
            raise Rejected(
                503, f"${self.settings.sendgrid_key_env} does not hold an ECDSA P-256 public key"
            ) from None
        return self._record(
            sendgrid.events(sendgrid.verify(headers, body, key, now, self.settings.max_age), now)
        )

    def _ses(self, body: bytes, now: datetime) -> dict[str, int]:
        if not self.settings.ses_topics:
            raise Rejected(404, "webhooks.ses_topics is empty: the SES webhook is off")
        message = self.sns.verify(body, now)
        kind = message["Type"]
        if kind == "SubscriptionConfirmation":
            self.sns.confirm(message)
            log.warning("webhook ses: confirmed the subscription to %s", message["TopicArn"])
            return {"recorded": 0, "duplicates": 0}
        if kind == "UnsubscribeConfirmation":
            log.warning("webhook ses: %s unsubscribed this endpoint", message["TopicArn"])
            return {"recorded": 0, "duplicates": 0}
        try:
            notification = json.loads(message.get("Message", ""))
        except ValueError:
            raise Rejected(400, "an SNS notification whose Message is not JSON") from None
        if not isinstance(notification, dict):
            raise Rejected(400, "an SNS notification whose Message is not a JSON object")
        return self._record(ses.events(notification, self._delivery, now))

    @property
    def store(self) -> Any:
        return self._store()

    def _secret(self, provider: str, env: str, *, required: bool = True) -> str:
        value = os.environ.get(env, "")
        if required and not value:
            raise Rejected(404, f"${env} is not set: the {provider} webhook is off")
        return value

    def _delivery(self, envelope: str) -> tuple[int, int] | None:
        """The delivery our VERP return path (``bounces+<token>@domain``) names, if it is one."""
        messages = self._messages()
        return messages.delivery_named(envelope) if messages is not None and envelope else None

    def _record(self, events: list[Event]) -> dict[str, int]:
        done = record(self.store, events, self.config.bounces)
        return {"recorded": done.new, "duplicates": done.duplicates}
