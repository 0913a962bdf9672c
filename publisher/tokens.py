"""Signed tokens for links in mail: confirm, unsubscribe and the preference centre.

A token signs a subscriber's opaque ``public_id`` (itsdangerous payloads are readable,
so never the address), with one salt per purpose so a confirm token cannot
unsubscribe and vice versa. An unsubscribe token of a newsletter's mail also names
that newsletter (payload ``[public_id, newsletter key]``: the one-click link leaves
just that newsletter); one without (a confirmation mail's, or one sent before
newsletters) names none: ``verify_for`` gives None for it. The secret comes from the environment variable named by
``[server] secret_env``, else one random secret created once and kept in the store;
``previous`` secrets still verify, so a rotation does not break links already sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

PURPOSES = {
    "confirm": 7 * 24 * 3600,
    "unsubscribe": 2 * 365 * 24 * 3600,
    "preferences": 2 * 365 * 24 * 3600,
}


class Signer:
    def __init__(self, secret: str, previous: Sequence[str] = ()) -> None:
        # itsdangerous signs with the last key and verifies with any of them.
        self._keys = [*previous, secret]
        self._serializers = {
            purpose: URLSafeTimedSerializer(self._keys, salt=f"publisher.{purpose}") for purpose in PURPOSES
        }

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return self._serializers[purpose]

    def sign(self, purpose: str, public_id: str, newsletter: str | None = None) -> str:
        """A token of ``purpose`` for ``public_id`` (and, given, one newsletter's key)."""
        assert purpose in PURPOSES
        return self._serializer(purpose).dumps(public_id if newsletter is None else [public_id, newsletter])

    def verify(self, purpose: str, token: str) -> tuple[str | None, str]:
        """(public_id, "") when valid, else (None, reason): "expired" or "invalid"."""
        public_id, _, reason = self.verify_for(purpose, token)
        return public_id, reason

    def verify_for(self, purpose: str, token: str) -> tuple[str | None, str | None, str]:
        """(public_id, newsletter key or None, "") when valid, else (None, None, reason)."""
        try:
            value = self._serializer(purpose).loads(token, max_age=PURPOSES[purpose])
        except SignatureExpired:
            return None, None, "expired"
        except BadData:
            return None, None, "invalid"
        public_id, newsletter = _payload(value)
        return (public_id, newsletter, "") if public_id is not None else (None, None, "invalid")

    def verify_issued(self, purpose: str, token: str) -> tuple[str | None, datetime | None, str]:
        """Like ``verify``, with the time the token was signed (whole seconds, UTC)."""
        try:
            value, issued = self._serializer(purpose).loads(
                token, max_age=PURPOSES[purpose], return_timestamp=True
            )
        except SignatureExpired:
            return None, None, "expired"
        except BadData:
            return None, None, "invalid"
        public_id, _ = _payload(value)
        return (public_id, issued, "") if public_id is not None else (None, None, "invalid")


def _payload(value: object) -> tuple[str | None, str | None]:
    """(public_id, newsletter) of a token's payload: a string, or [public_id, key]."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    return None, None


def signer_for(secret_env: str, stored_secret: Callable[[], str]) -> Signer:
    """The site's signer: the environment's secret if set, else the stored one."""
    secret = os.environ.get(secret_env, "")
    previous = [s for s in os.environ.get(secret_env + "_PREVIOUS", "").split(",") if s]
    return Signer(secret or stored_secret(), previous)
