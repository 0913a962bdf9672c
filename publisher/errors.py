"""Errors that explain themselves: every error class of publisher lives here.

Every error carries a message a user can act on. Only the CLI prints them and chooses
the exit code (``exit_code``): 2 for configuration and usage problems, 1 for a failed
run.
"""

from __future__ import annotations

import smtplib
from pathlib import Path


class PublisherError(Exception):
    """Base class: ``str(error)`` is a complete one-line explanation."""

    exit_code = 1


class ConfigError(PublisherError):
    """The configuration file is missing, malformed or holds a wrong value."""

    exit_code = 2

    def __init__(self, path: Path | str, key: str | None, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class UsageError(PublisherError):
    """A command was given an argument it cannot use (bad address, missing file)."""

    exit_code = 2


class LockBusy(PublisherError):
    """Another process holds the site's lock."""


class LockLost(PublisherError):
    """A lock this process held expired and was taken by another (it was paused, or
    cut off from the database, for longer than the lease): it stopped before writing
    anything more that needs the lock."""


class InvalidAddress(ValueError):
    """An e-mail address or URL that fails its check (``publisher.addresses``);
    ``str(error)`` says what is wrong. Callers turn it into their own error."""


class StoreError(PublisherError):
    """The store cannot be used: locked by another program, read-only, full, damaged
    or not a publisher store. The message names the database and what to do."""


class StoreSetupError(StoreError):
    """The store's URL cannot be used as set up: a missing driver, a database server that
    does not answer or refuses us, a database that does not exist. Fixed by the one who
    sets up the site, like a configuration problem."""

    exit_code = 2


class SourceError(PublisherError):
    """A whole source could not be read this run (folder missing, feed down)."""


class ParseError(PublisherError, ValueError):
    """A file holds no usable article; the message says why (the file is skipped)."""


class OutputError(PublisherError):
    """The feeds and web edition cannot be written (outside the output folder, a
    full or read-only disk)."""


class IntakeError(PublisherError):
    """``publish bounces`` cannot read its mail now (a missing Maildir, an IMAP server
    that refuses us, a keep folder it cannot write): nothing was marked done, so the
    next run (or the mail server's retry) reads the same mail again."""


class Stopped(Exception):
    """Not an error: a stop was requested (SIGTERM) while waiting for a lock or
    working under one; the run is recorded as interrupted."""


class DeliveryError(PublisherError):
    """A message could not be handed to the transport.

    ``permanent``: trying this delivery again cannot succeed; ``bounce``: how it counts
    against the recipient's address ("now", "count" or "": not the address's fault);
    ``halt``: the server refuses the message or the sender itself, so no other delivery
    can get through now (the run stops, everything stays queued); ``policy``: that
    refusal was a security or policy one (x.7.x) about a recipient, so it may be only
    that recipient's mailbox provider refusing (see ``deliverability.gate``);
    ``code`` and ``status``: the server's basic and RFC 3463 codes, when it replied."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: int | None = None,
        bounce: str = "",
        halt: bool = False,
        status: str = "",
        policy: bool = False,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.bounce = bounce
        self.halt = halt
        self.status = status
        self.policy = policy


class ServerFault(smtplib.SMTPException):
    """The SMTP server broke the protocol: its replies cannot be trusted any further
    (raised inside the SMTP transport, which turns it into a ``DeliveryError``)."""


class RcptClosing(smtplib.SMTPResponseException):
    """421 to RCPT: the server closes the connection (not about the address; raised
    and handled inside the SMTP transport)."""


class DnsError(PublisherError):
    """A DNS server did not answer, or answered with an error: the record could not
    be read (which is not the same as "there is none")."""


class Rejected(Exception):
    """A webhook request that is not trusted or cannot be handled (publisher.esp):
    ``status`` is the HTTP status to answer (401 without credentials, 403 forged,
    tampered, stale or replayed), ``reason`` one line for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SpfError(Exception):
    """Evaluating an SPF record stopped (publisher.doctor.spf): ``result`` is RFC 7208's
    permerror or temperror, ``reason`` one line saying why."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


class UnknownChoice(UsageError):
    """A subscribe or preferences form named a newsletter or section the site does not
    have (``value``: the field's value as sent, for the page that says so)."""

    def __init__(self, value: str) -> None:
        self.value = value
        super().__init__(f"no newsletter or section {value!r} on this site")
