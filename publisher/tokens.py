"""Signed tokens for links in mail: confirm, unsubscribe and the preference centre.

A token signs a subscriber's opaque ``public_id`` (itsdangerous payloads are readable,
so never the address), with one salt per purpose so a token of one purpose is worth
nothing for another. An unsubscribe token of a newsletter's mail also names that
newsletter (payload ``[public_id, newsletter key]``: the one-click link leaves just that
newsletter); one signed before newsletters names none (``Claim.newsletter`` is None;
``publisher.signup`` decides what such a link leaves).

Lifetimes: a confirm token lasts 7 days; unsubscribe and preferences tokens, which every
mail carries, two years. The secret comes from the environment variable named by
``[server] secret_env``, else one random secret created once and kept in the store;
``previous`` secrets still verify, so a rotation does not break links already sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

YEARS_2 = 2 * 365 * 24 * 3600
PURPOSES = {"confirm": 7 * 24 * 3600, "unsubscribe": YEARS_2, "preferences": YEARS_2}


@dataclass(frozen=True)
class Claim:
    """What a valid token says: whose link it is, since when, and (an unsubscribe token
    of a newsletter's mail) which newsletter it leaves."""

    public_id: str
    issued: datetime  # whole seconds, UTC
    newsletter: str | None = None


class Signer:
    def __init__(self, secret: str, previous: Sequence[str] = ()) -> None:
        # itsdangerous signs with the last key and verifies with any of them.
        self._keys = [*previous, secret]
        self._serializers = {
            purpose: URLSafeTimedSerializer(self._keys, salt=f"publisher.{purpose}") for purpose in PURPOSES
        }

    def sign(self, purpose: str, public_id: str, newsletter: str | None = None) -> str:
        """A token of ``purpose`` for ``public_id`` (and, for an unsubscribe link, one
        newsletter's key)."""
        assert purpose in PURPOSES
        assert newsletter is None or purpose == "unsubscribe"
        return self._serializers[purpose].dumps(public_id if newsletter is None else [public_id, newsletter])

    def read(self, purpose: str, token: str) -> tuple[Claim | None, str]:
        """(claim, "") when valid, else (None, reason): "expired" or "invalid"."""
        try:
            value, issued = self._serializers[purpose].loads(
                token, max_age=PURPOSES[purpose], return_timestamp=True
            )
        except SignatureExpired:
            return None, "expired"
        except BadData:
            return None, "invalid"
        if isinstance(value, str):
            return Claim(value, issued), ""
        if (
            purpose == "unsubscribe"
            and isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, str) for v in value)
        ):
            return Claim(value[0], issued, value[1]), ""
        return None, "invalid"

    def verify(self, purpose: str, token: str) -> tuple[str | None, str]:
        """(public_id, "") when valid, else (None, reason): "expired" or "invalid"."""
        claim, reason = self.read(purpose, token)
        return (claim.public_id, "") if claim is not None else (None, reason)

    def verify_for(self, purpose: str, token: str) -> tuple[str | None, str | None, str]:
        """(public_id, newsletter key or None, "") when valid, else (None, None, reason)."""
        claim, reason = self.read(purpose, token)
        return (claim.public_id, claim.newsletter, "") if claim is not None else (None, None, reason)

    def verify_issued(self, purpose: str, token: str) -> tuple[str | None, datetime | None, str]:
        """Like ``verify``, with the time the token was signed (whole seconds, UTC)."""
        claim, reason = self.read(purpose, token)
        return (claim.public_id, claim.issued, "") if claim is not None else (None, None, reason)


def signer_for(secret_env: str, stored_secret: Callable[[], str]) -> Signer:
    """The site's signer: the environment's secret if set, else the stored one."""
    secret = os.environ.get(secret_env, "")
    previous = [s for s in os.environ.get(secret_env + "_PREVIOUS", "").split(",") if s]
    return Signer(secret or stored_secret(), previous)
