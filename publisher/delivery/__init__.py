"""Delivery: hand finished messages to a transport and keep the ledger true.

A transport is anything with ``send(sender, recipient, message)`` that raises
``DeliveryError`` (``permanent`` or not) when the message was not accepted, and
``close()``. ``open_transport`` picks one from ``[delivery] transport``.
"""

from __future__ import annotations

from typing import Protocol

from publisher.config import DeliveryConfig


class Transport(Protocol):
    def send(self, sender: str, recipient: str, message: bytes) -> None: ...

    def close(self) -> None: ...


def open_transport(cfg: DeliveryConfig) -> Transport:
    if cfg.transport == "smtp":
        from publisher.delivery.smtp import SmtpTransport

        return SmtpTransport(cfg.smtp)
    from publisher.delivery.maildir import MaildirTransport

    return MaildirTransport(cfg.maildir)
