"""Signed tokens for links in mail (confirm, unsubscribe, the preference centre) and for
the return path.

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

The return-path token (VERP, ``bounces+<token>@domain``) names one delivery, an issue id
and a subscriber id, never the address: 32 lower-case base32 characters (an issue id of
4 bytes, a subscriber id of 6 and an 80-bit HMAC-SHA256 tag), so the local part stays
within RFC 5321's 64 characters and survives a mail system that changes its case.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes

YEARS_2 = 2 * 365 * 24 * 3600
PURPOSES = {"confirm": 7 * 24 * 3600, "unsubscribe": YEARS_2, "preferences": YEARS_2}


@dataclass(frozen=True)
class Claim:
    """What a valid token says: whose link it is, since when, and (an unsubscribe token
    of a newsletter's mail) which newsletter it leaves."""

    public_id: str
    issued: datetime  # whole seconds, UTC
    newsletter: str | None = None


RETURN_TOKEN_LENGTH = 32  # characters: base32 of 4 + 6 + 10 bytes
_RETURN_SALT = b"publisher.return-path"


_PLAIN = re.compile(r"[0-9A-Za-z_.~-]*")  # a string whose JSON is itself in quotes


class Signer:
    def __init__(self, secret: str, previous: Sequence[str] = ()) -> None:
        # itsdangerous signs with the last key and verifies with any of them.
        self._keys = [*previous, secret]
        self._serializers = {
            purpose: URLSafeTimedSerializer(self._keys, salt=f"publisher.{purpose}") for purpose in PURPOSES
        }
        self._fast = {purpose: _Signing(s) for purpose, s in self._serializers.items()}

    def sign(self, purpose: str, public_id: str, newsletter: str | None = None) -> str:
        """A token of ``purpose`` for ``public_id`` (and, for an unsubscribe link, one
        newsletter's key)."""
        assert purpose in PURPOSES
        assert newsletter is None or purpose == "unsubscribe"
        return self._fast[purpose].dumps(public_id if newsletter is None else [public_id, newsletter])

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

    def return_token(self, issue_id: int, subscriber_id: int) -> str:
        """The VERP token of the delivery of issue ``issue_id`` to ``subscriber_id``."""
        payload = issue_id.to_bytes(4, "big") + subscriber_id.to_bytes(6, "big")
        data = payload + self._tag(self._keys[-1], payload)
        return base64.b32encode(data).decode("ascii").lower()

    def read_return_token(self, token: str) -> tuple[int, int] | None:
        """(issue id, subscriber id) of a token ``return_token`` made with this
        secret (or a previous one); None for anything forged, altered or malformed."""
        if len(token) != RETURN_TOKEN_LENGTH:
            return None
        try:
            data = base64.b32decode(token.upper())
        except ValueError:
            return None
        payload, tag = data[:10], data[10:]
        if not any(hmac.compare_digest(tag, self._tag(key, payload)) for key in self._keys):
            return None
        return int.from_bytes(payload[:4], "big"), int.from_bytes(payload[4:], "big")

    @staticmethod
    def _tag(key: str, payload: bytes) -> bytes:
        return hmac.new(key.encode("utf-8"), _RETURN_SALT + payload, hashlib.sha256).digest()[:10]

    def verify_issued(self, purpose: str, token: str) -> tuple[str | None, datetime | None, str]:
        """Like ``verify``, with the time the token was signed (whole seconds, UTC)."""
        claim, reason = self.read(purpose, token)
        return (claim.public_id, claim.issued, "") if claim is not None else (None, None, reason)


class _Signing:
    """``URLSafeTimedSerializer.dumps`` for the values tokens carry (an id, or an id and a
    newsletter key, of URL-safe characters), at a few microseconds instead of tens: every
    mail signs two. The same token format, from itsdangerous's own signer (its key
    derived once, its timestamp, so a test moving its clock still moves this); the
    payload is never compressed (a random id compresses to nothing shorter; itsdangerous
    reads either form). Other values take itsdangerous's whole way."""

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        self.serializer = serializer
        self.signer = serializer.make_signer()
        key = self.signer.derive_key()
        self.mac = hmac.new(key, digestmod=self.signer.digest_method)
        self.sep = self.signer.sep
        self.stamped = (-1, b"")  # (timestamp, its base64): one per second

    def dumps(self, value: Any) -> str:
        plain = [value] if isinstance(value, str) else value
        if not all(isinstance(v, str) and _PLAIN.fullmatch(v) for v in plain):
            return self.serializer.dumps(value)
        json = (
            f'"{value}"' if isinstance(value, str) else "[" + ",".join(f'"{v}"' for v in value) + "]"
        ).encode("ascii")
        now = self.signer.get_timestamp()
        if self.stamped[0] != now:
            self.stamped = (now, base64_encode(int_to_bytes(now)))
        signed = base64_encode(json) + self.sep + self.stamped[1]
        mac = self.mac.copy()
        mac.update(signed)
        return (signed + self.sep + base64_encode(mac.digest())).decode("ascii")


def signer_for(secret_env: str, stored_secret: Callable[[], str]) -> Signer:
    """The site's signer: the environment's secret if set, else the stored one."""
    secret = os.environ.get(secret_env, "")
    previous = [s for s in os.environ.get(secret_env + "_PREVIOUS", "").split(",") if s]
    return Signer(secret or stored_secret(), previous)
