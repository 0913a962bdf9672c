"""The confirmation sender: works through the mail outbox (``store.outbox``) that
POST /subscribe fills, in ``publish serve`` and ``publish run`` alike.

Promises:
- every mail the outbox holds is sent: a killed or stopped sender's mails are sent
  by the next one to start (a row left ``sending`` is tried again; the Maildir
  transport delivers such a mail once, SMTP may see the one interrupted mail twice);
- one sender per site at a time (``locks.CONFIRMATIONS_LOCK``), so no mail is taken by
  two processes; a second stands by and takes over when the first is gone;
- a temporary failure is retried with exponential backoff (``delivery.retry_delay``,
  doubling, at most an hour apart) for a day, then recorded as failed, as is a
  permanent refusal;
- stopping never waits on a stalled server longer than ``STOP_WAIT``: the mail being
  sent stays in the outbox for the next start.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from publisher.config import Config
from publisher.delivery import Transport, open_transport
from publisher.errors import DeliveryError, LockBusy, Stopped
from publisher.locks import CONFIRMATIONS_LOCK, Lock
from publisher.models import OutboxMail
from publisher.signup import Signup
from publisher.store import Store
from publisher.tokens import signer_for

log = logging.getLogger(__name__)

POLL = 1.0  # seconds between looks at the outbox when nothing woke the sender
STOP_WAIT = 5.0  # seconds ``stop`` waits for the mail being sent
GIVE_UP = timedelta(days=1)
MAX_BACKOFF = 3600.0


class ConfirmationSender:
    def __init__(self, config: Config, store: Store, signup: Signup, what: str) -> None:
        self.config = config
        self.store = store
        self.signup = signup
        self.what = what
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._main, name="confirmations", daemon=True)

    def start(self) -> ConfirmationSender:
        self._thread.start()
        return self

    @property
    def stopped(self) -> bool:
        return not self._thread.is_alive()

    def wake(self) -> None:
        """A mail was just added: send it now rather than at the next look."""
        self._wake.set()

    def stop(self, wait: float = STOP_WAIT) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(wait)
        if self._thread.is_alive():
            log.warning(
                "confirmation mail: the server did not answer; the mail stays queued for the next start"
            )

    def _main(self) -> None:
        lock = Lock(self.store.meta, CONFIRMATIONS_LOCK, self.what, float(self.config.store.lease))
        announced = False
        try:
            while not self._stop.is_set():
                try:
                    lock.acquire(0, stop=self._stop)
                except LockBusy:
                    if not announced:
                        log.info("confirmation mails: another process of this site sends them for now")
                        announced = True
                    self._stop.wait(POLL)
                    continue
                try:
                    self._drain(lock)
                finally:
                    lock.release()
        except Stopped:
            pass
        except Exception:  # a bug or a store that went away: say so, the mails stay queued
            log.exception("confirmation mail: the sender stopped")

    def _drain(self, lock: Lock) -> None:
        transport: Transport | None = None
        try:
            while not self._stop.is_set() and not lock.lost.is_set():
                self._wake.clear()
                mails = self.store.outbox.due(datetime.now(UTC))
                if not mails:
                    if transport is not None:
                        transport.close()
                        transport = None
                    self._wake.wait(self._idle())
                    continue
                for mail in mails:
                    if self._stop.is_set() or lock.lost.is_set():
                        return
                    transport = transport or open_transport(self.config.delivery)
                    if not self._send(transport, mail):
                        transport.close()  # a failing connection is not reused
                        transport = None
        finally:
            if transport is not None:
                transport.close()

    def _idle(self) -> float:
        due = self.store.outbox.next_due()
        if due is None:
            return POLL
        return max(0.01, min(POLL, (due - datetime.now(UTC)).total_seconds()))

    def _send(self, transport: Transport, mail: OutboxMail) -> bool:
        """Send one mail and record what happened; False after a failure."""
        outbox, now = self.store.outbox, datetime.now(UTC)
        sub = mail.subscriber
        if mail.in_doubt and getattr(transport, "delivered", None) and transport.delivered(mail.key):  # type: ignore[attr-defined]
            outbox.sent(mail.id, now)  # it went out before the interruption
            return True
        held = self.store.feedback.suppressed(sub.email, now)
        if held is not None:  # never sent anything, not even a confirmation
            outbox.failed(mail.id, now, f"{held.entry} is on the suppression list ({held.reason})")
            log.info("subscribe: no mail to subscriber %s: on the suppression list", sub.public_id)
            return True
        outbox.sending(mail.id, now)
        message = self.signup.message(sub, mail.kind, mail.created, message_id=self._message_id(mail))
        try:
            transport.send(self.signup.messages.envelope(0, sub), sub.email, message, key=mail.key)
        except DeliveryError as exc:
            now = datetime.now(UTC)
            if exc.permanent or now - mail.created > GIVE_UP:
                outbox.failed(mail.id, now, str(exc))
                log.warning("confirmation mail to subscriber %s failed: %s", sub.public_id, exc)
            else:
                delay = min(MAX_BACKOFF, max(self.config.delivery.retry_delay, 0.01) * 2**mail.attempts)
                outbox.retry(mail.id, now, now + timedelta(seconds=delay), str(exc))
                log.warning("confirmation mail: %s; tried again in %.0f s", exc, delay)
            return False
        outbox.sent(mail.id, datetime.now(UTC))
        log.info("subscribe: %s mail sent to subscriber %s", mail.kind, sub.public_id)
        return True

    def _message_id(self, mail: OutboxMail) -> str:
        return f"<subscribe.{mail.id}.{mail.token}@{self.signup.host}>"


class running:
    """``with running(config, "publish run"):`` a confirmation sender with its own store."""

    def __init__(self, config: Config, what: str) -> None:
        self.config = config
        self.what = what
        self.store: Store | None = None
        self.sender: ConfirmationSender | None = None

    def __enter__(self) -> ConfirmationSender:
        self.store = Store.open(self.config.store_url)
        signer = signer_for(self.config.server.secret_env, self.store.meta.get_or_create_secret)
        self.sender = ConfirmationSender(
            self.config, self.store, Signup(self.config, self.store, signer), self.what
        )
        return self.sender.start()

    def __exit__(self, *exc: object) -> None:
        assert self.sender is not None and self.store is not None
        self.sender.stop()
        if self.sender.stopped:  # else a stalled send still uses it; the process is ending
            self.store.close()
