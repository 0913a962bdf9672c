"""The default transport: each message becomes a file in a Maildir (``outbox/new``).

Nothing to start, readable with any mail client (``mutt -f outbox``) or Python's
``mailbox.Maildir``. Files are written to ``tmp/`` and renamed into ``new/``, so a
reader never sees half a message.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

from publisher.errors import DeliveryError


class MaildirTransport:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: mailbox.Maildir | None = None

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        try:
            if self._box is None:
                self._box = mailbox.Maildir(self.path, factory=None, create=True)
            # Local mail files use LF; the wire format (SMTP) keeps CRLF.
            self._box.add(message.replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise DeliveryError(f"cannot write to the Maildir {self.path}: {exc}", permanent=False) from exc

    def close(self) -> None:
        self._box = None
