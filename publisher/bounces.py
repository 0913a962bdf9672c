"""``publish bounces``: the return path's mail, read from a mail pipe, a Maildir or an
IMAP folder, recorded through ``publisher.feedback`` (``publisher.reports`` reads it).

Nothing is lost and nothing counts twice:
- a mail is marked done (moved to ``cur/`` as seen, or flagged ``\\Seen`` on the IMAP
  server) only after ``feedback.record`` committed its events; a run killed between
  the two reads it again next time and the event keys make the second reading a no-op;
- a mail that cannot be read is kept where the operator will find it (moved to
  ``cur/`` flagged, or left unseen and flagged on the server; from a mail pipe, into
  the Maildir ``bounces.keep``) and reported in one line;
- from a mail pipe, a failure the mail server can retry (the store is locked or away,
  the keep folder is full) exits 75 so it tries again later.
"""

from __future__ import annotations

import imaplib
import logging
import mailbox
import os
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from publisher.config import Config
from publisher.errors import IntakeError
from publisher.feedback import Recorded, record
from publisher.messages import Messages
from publisher.reports import Reader, Reading
from publisher.store import Store
from publisher.text import single_line

log = logging.getLogger(__name__)


@dataclass
class IntakeReport:
    """What one run read: mails recorded, ignored and kept unread (with a line each)."""

    mails: int = 0
    recorded: Recorded = field(default_factory=Recorded)
    ignored: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def reader_for(config: Config, store: Store) -> Reader:
    messages = Messages.for_site(config, store)

    def by_public_id(public_id: str) -> int | None:
        sub = store.subscribers.by_public_id(public_id)
        return None if sub is None else sub.id

    return Reader(messages.delivery_named, by_public_id)


def take(
    config: Config,
    store: Store,
    reader: Reader,
    raw: bytes,
    report: IntakeReport,
    where: str,
    envelope_to: Iterable[str] = (),
) -> Reading:
    """Read one mail and record its events (committed when this returns)."""
    reading = reader.read(raw, envelope_to)
    report.mails += 1
    if reading.events:
        report.recorded.add(record(store, reading.events, config.bounces))
    elif reading.ignored:
        report.ignored.append(f"{where}: ignored: {reading.ignored}")
    else:
        report.unreadable.append(f"{where}: kept unread: {reading.problem} ({_about(reading)})")
    return reading


def from_pipe(config: Config, store: Store, raw: bytes, envelope_to: Iterable[str]) -> IntakeReport:
    """One mail from a mail pipe. One that cannot be read goes to the ``bounces.keep``
    Maildir; ``IntakeError`` (exit 75) when even that fails."""
    report = IntakeReport()
    reading = take(config, store, reader_for(config, store), raw, report, "stdin", envelope_to)
    if not reading.events and not reading.ignored:
        keep = config.bounces.keep
        try:
            for sub in ("tmp", "new", "cur"):
                (keep / sub).mkdir(parents=True, exist_ok=True)
            name = mailbox.Maildir(keep, factory=None, create=True).add(raw)
        except OSError as exc:
            raise IntakeError(f"cannot keep an unreadable mail in {keep}: {exc}") from None
        report.unreadable[-1] += f" in {keep / 'new' / name}"
    return report


def from_maildir(config: Config, store: Store, path: Path) -> IntakeReport:
    """Every mail in ``path/new``: read ones move to ``cur/`` seen, unreadable ones to
    ``cur/`` flagged (kept, and shown as such by any mail client)."""
    if not (path / "new").is_dir():
        raise IntakeError(f"{path} is not a Maildir (no new/ folder in it)")
    report = IntakeReport()
    reader = reader_for(config, store)
    for name in sorted(os.listdir(path / "new")):
        source = path / "new" / name
        if name.startswith("."):
            continue
        try:
            raw = source.read_bytes()
        except FileNotFoundError:  # another reader took it meanwhile
            continue
        except OSError as exc:
            report.unreadable.append(f"{source}: cannot read: {exc.strerror}")
            continue
        reading = take(config, store, reader, raw, report, str(source))
        flags = "S" if reading.events or reading.ignored else "F"
        try:
            os.replace(source, path / "cur" / f"{name.split(':', 1)[0]}:2,{flags}")
        except FileNotFoundError:
            pass
    return report


def from_imap(config: Config, store: Store) -> IntakeReport:
    """Every unseen, unflagged mail of ``bounces.imap_folder``: read ones are marked
    seen, unreadable ones flagged and left unseen; nothing is deleted."""
    report = IntakeReport()
    reader = reader_for(config, store)
    b = config.bounces
    with _imap(config) as imap:
        status, _ = imap.select(_quote(b.imap_folder))
        if status != "OK":
            raise IntakeError(f"the IMAP folder {b.imap_folder!r} cannot be opened on {b.imap_host}")
        status, found = imap.uid("SEARCH", "UNSEEN", "UNFLAGGED")
        if status != "OK":
            raise IntakeError(f"{b.imap_host}: SEARCH failed: {_said(found)}")
        for uid in (found[0] or b"").split():
            status, data = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in data if isinstance(item, tuple)), None)
            where = f"imap {b.imap_folder} uid {uid.decode()}"
            if status != "OK" or raw is None:
                report.unreadable.append(f"{where}: cannot fetch: {_said(data)}")
                continue
            reading = take(config, store, reader, raw, report, where)
            flag = "\\Seen" if reading.events or reading.ignored else "\\Flagged"
            imap.uid("STORE", uid, "+FLAGS.SILENT", f"({flag})")
    return report


@contextmanager
def _imap(config: Config) -> Iterator[imaplib.IMAP4]:
    b = config.bounces
    password = os.environ.get(b.imap_password_env, "")
    if not password:
        raise IntakeError(f"no IMAP password: set the environment variable {b.imap_password_env}")
    context = ssl.create_default_context()
    try:
        if b.imap_security == "ssl":
            imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                b.imap_host, b.imap_port, ssl_context=context, timeout=b.timeout
            )
        else:
            imap = imaplib.IMAP4(b.imap_host, b.imap_port, timeout=b.timeout)
            if b.imap_security == "starttls":
                imap.starttls(context)
        imap.login(b.imap_user, password)
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise IntakeError(
            f"cannot log in to the IMAP server {b.imap_host}:{b.imap_port}: {_reason(exc)}"
        ) from None
    try:
        yield imap
    except (OSError, imaplib.IMAP4.error) as exc:
        raise IntakeError(f"the IMAP server {b.imap_host}:{b.imap_port} failed: {_reason(exc)}") from None
    finally:
        try:
            imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _said(data: object) -> str:
    return single_line(repr(data))[:200]


def _reason(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return single_line(str(text)) or type(exc).__name__


def _about(reading: Reading) -> str:
    return f"from {reading.sender or 'no sender'}, subject {reading.subject or '(none)'!r}"
