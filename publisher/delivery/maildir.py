"""The default transport: each message becomes a file in a Maildir (``outbox/new``).

Nothing to start, readable with any mail client (``mutt -f outbox``) or Python's
``mailbox.Maildir``. Files are written to ``tmp/`` and renamed into ``new/``, so a
reader never sees half a message. Each file starts with ``Return-Path: <sender>``, the
envelope sender, as a mail server's final delivery writes it. A message sent with a ``key`` (its stable identity)
gets a file name made from it and is linked into ``new/`` only if no file of that
name is there: sending it again after an interruption delivers it once.

Files left in ``tmp/`` by a killed writer are removed on the first send once they
are older than a day (as the Maildir convention says: no writer takes that long).
"""

from __future__ import annotations

import mailbox
import os
import socket
import time
from pathlib import Path

from publisher.delivery import Following
from publisher.errors import DeliveryError

STALE_TMP = 36 * 3600.0  # seconds: qmail's rule for leftovers in tmp/


class MaildirTransport:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: mailbox.Maildir | None = None

    def send(
        self,
        sender: str,
        recipient: str,
        message: bytes,
        key: str | None = None,
        following: Following | None = None,  # nothing to announce: each message is a file
    ) -> None:
        try:
            if self._box is None:
                for sub in ("tmp", "new", "cur"):  # a half-made Maildir is completed
                    (self.path / sub).mkdir(parents=True, exist_ok=True)
                self._box = mailbox.Maildir(self.path, factory=None, create=True)
                sweep_tmp(self.path)
            # Local mail files use LF; the wire format (SMTP) keeps CRLF. The envelope
            # sender goes first as Return-Path, as a delivering mail server writes it.
            data = b"Return-Path: <" + sender.encode("ascii", "replace") + b">\n"
            data += message.replace(b"\r\n", b"\n")
            if key is None:
                self._box.add(data)
            else:
                self._add_once(data, key)
        except OSError as exc:
            raise DeliveryError(f"cannot write to the Maildir {self.path}: {exc}", permanent=False) from exc

    def delivered(self, key: str) -> bool:
        """Whether the message sent with ``key`` is in the Maildir (new/ or, read, cur/)."""
        name = _name(key)
        if (self.path / "new" / name).exists():
            return True
        try:
            return any(e.name.split(":", 1)[0] == name for e in os.scandir(self.path / "cur"))
        except FileNotFoundError:
            return False

    def _add_once(self, data: bytes, key: str) -> None:
        name = _name(key)
        tmp = self.path / "tmp" / f"{name}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, self.path / "new" / name)  # fails if it is there: never two copies
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    def close(self) -> None:
        self._box = None


def _name(key: str) -> str:
    """A Maildir file name for ``key`` (unique, stable, free of / and :)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return f"{safe}.{socket.gethostname().replace('/', '_').replace(':', '_')}"


def sweep_tmp(path: Path, now: float | None = None) -> int:
    """Remove files a killed writer left in ``path/tmp`` (older than ``STALE_TMP``)."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(path / "tmp"))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > STALE_TMP:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            pass
    return removed
