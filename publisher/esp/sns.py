"""Amazon SNS messages (how SES reports bounces, complaints and deliveries to a
webhook), verified per AWS's documented scheme.

A message is trusted only when all of this holds:

- ``SignatureVersion`` is 1 (RSA with SHA1) or 2 (RSA with SHA256);
- ``SigningCertURL`` is https on a host the ``webhooks.sns_cert_hosts`` pattern
  matches (``sns.<region>.amazonaws.com``) and names a ``.pem`` file; the
  certificate is fetched from there with httpx (kept in memory per URL) and is
  within its validity period;
- ``Signature`` verifies with that certificate's key over the canonical string of
  the message's fields (``Message``, ``MessageId``, ``Subject`` if present,
  ``SubscribeURL``/``Token`` for confirmations, ``Timestamp``, ``TopicArn``, ``Type``:
  each name and value followed by a newline, in that order);
- ``TopicArn`` is one of ``webhooks.ses_topics`` (any AWS account can sign a
  message from its own topic, so the signature alone proves nothing about whose).

A ``SubscriptionConfirmation`` is confirmed by visiting its ``SubscribeURL`` (held to
the same host pattern) only after all of that.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from publisher.errors import Rejected

_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical text AWS signs for ``message`` (fields absent from it are skipped)."""
    fields = _NOTIFICATION_FIELDS if message.get("Type") == "Notification" else _CONFIRMATION_FIELDS
    return "".join(f"{k}\n{message[k]}\n" for k in fields if k in message).encode("utf-8")


class SnsVerifier:
    """Checks SNS messages; fetches and keeps the signing certificates."""

    def __init__(
        self, topics: list[str], host_pattern: str, ca_file: Path | None, timeout: float = 10.0
    ) -> None:
        self.topics = set(topics)
        self.hosts = re.compile(host_pattern)
        self.ca_file = ca_file
        self.timeout = timeout
        self._certs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def allowed_url(self, url: str) -> bool:
        """An https URL on a host the pattern allows (the certificate's, the SubscribeURL's)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            return False
        return parts.scheme == "https" and self.hosts.fullmatch(host) is not None and not parts.username

    def verify(self, body: bytes, now: datetime) -> dict[str, Any]:
        """The message, once its signature, certificate and topic check out; else ``Rejected``."""
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise Rejected(403, "not an SNS message (not JSON)") from None
        if not isinstance(message, dict) or message.get("Type") not in TYPES:
            raise Rejected(403, "not an SNS message (no known Type)")
        if not all(isinstance(v, str) for v in message.values()):
            raise Rejected(403, "not an SNS message (a field is not a string)")
        version = message.get("SignatureVersion")
        if version not in ("1", "2"):
            raise Rejected(403, f"unknown SignatureVersion {version!r}")
        cert_url = message.get("SigningCertURL", "")
        if not self.allowed_url(cert_url) or not urlsplit(cert_url).path.endswith(".pem"):
            raise Rejected(403, f"SigningCertURL {cert_url!r} is not an allowed https host")
        try:
            signature = base64.b64decode(message.get("Signature", ""), validate=True)
        except ValueError:
            raise Rejected(403, "Signature is not base64") from None
        cert = self._certificate(cert_url, now)
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Rejected(403, "the signing certificate does not hold an RSA key")
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303  (AWS's scheme v1)
        try:
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), digest)
        except InvalidSignature:
            raise Rejected(403, "the SNS signature does not match the message") from None
        if message.get("TopicArn") not in self.topics:
            raise Rejected(403, f"topic {message.get('TopicArn')!r} is not in webhooks.ses_topics")
        return message

    def _certificate(self, url: str, now: datetime) -> Any:
        with self._lock:
            cert = self._certs.get(url)
        if cert is None:
            cert = self._fetch(url)
            with self._lock:
                if len(self._certs) > 64:  # AWS rotates a handful; anything more is noise
                    self._certs.clear()
                self._certs[url] = cert
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise Rejected(403, f"the signing certificate at {url} is not valid now")
        return cert

    def _client(self) -> Any:
        import httpx

        return httpx.Client(
            verify=str(self.ca_file) if self.ca_file else True, timeout=self.timeout, follow_redirects=False
        )

    def _fetch(self, url: str) -> Any:
        import httpx
        from cryptography import x509

        try:
            with self._client() as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            raise Rejected(403, f"cannot fetch the signing certificate {url}: {exc}") from None
        if response.status_code != 200 or len(response.content) > 64 * 1024:
            raise Rejected(403, f"cannot fetch the signing certificate {url}: HTTP {response.status_code}")
        try:
            return x509.load_pem_x509_certificate(response.content)
        except ValueError:
            raise Rejected(403, f"{url} is not a PEM certificate") from None

    def confirm(self, message: dict[str, Any]) -> None:
        """Visit a verified SubscriptionConfirmation's SubscribeURL (allowed hosts only)."""
        import httpx

        url = message.get("SubscribeURL", "")
        if not self.allowed_url(url):
            raise Rejected(403, f"SubscribeURL {url!r} is not an allowed https host")
        try:
            with self._client() as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            raise Rejected(
                502, f"confirming the subscription to {message['TopicArn']} failed: {exc}"
            ) from None
        if response.status_code != 200:
            raise Rejected(
                502,
                f"confirming the subscription to {message['TopicArn']} failed: HTTP {response.status_code}",
            )
