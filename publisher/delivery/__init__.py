"""Delivery: hand finished messages to a transport and keep the ledger true.

A transport is anything with ``send(sender, recipient, message, key=None,
following=None)`` that raises ``DeliveryError`` (``permanent`` or not) when the
message was not accepted, and ``close()``; ``key``, a message's stable identity, lets
a transport that can (the Maildir) deliver a message sent again after an interruption
only once; ``following``, the next message's envelope on request, lets one that can
(SMTP) announce it with this message (``delivery.smtp``). One transport serves one
sending thread; ``transports`` returns a factory for the configured kind and how many
may send in parallel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from publisher.config import DeliveryConfig

# The next message's (sender, recipient), given on a transport's request (or None).
Following = Callable[[], tuple[str, str] | None]


class Transport(Protocol):
    def send(
        self,
        sender: str,
        recipient: str,
        message: bytes,
        key: str | None = None,
        following: Following | None = None,
    ) -> None: ...

    def close(self) -> None: ...


def transports(cfg: DeliveryConfig) -> tuple[Callable[[], Transport], int]:
    """(a factory of connected-on-demand transports, how many may run at once)."""
    if cfg.transport == "smtp":
        from publisher.delivery.smtp import SmtpTransport

        return (lambda: SmtpTransport(cfg.smtp)), cfg.smtp.connections
    from publisher.delivery.maildir import MaildirTransport

    return (lambda: MaildirTransport(cfg.maildir)), 1


def open_transport(cfg: DeliveryConfig) -> Transport:
    return transports(cfg)[0]()
