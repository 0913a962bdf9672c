"""One delivery attempt: a message handed to a transport, and what happened to it.

``attempt`` returns an ``Outcome`` (sent, failed for good, skipped) or what the sending
loop (``delivery.sender``) must do next: ``Retry`` after a backoff (a temporary
failure), ``Halt`` the run (the server refused the message itself), or leave it queued
because its mailbox provider is ``Paused`` (``deliverability.gate``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from publisher.deliverability.gate import ProviderGate
from publisher.delivery import Following, Transport
from publisher.errors import DeliveryError
from publisher.models import Outcome, Subscriber

Job = tuple[Subscriber, int]  # (subscriber, tries made so far)


@dataclass(frozen=True)
class Retry:
    """A temporary failure: try ``sub`` again after a backoff (its worker moves on)."""

    sub: Subscriber
    attempts: int  # tries made so far
    error: str
    code: int | None = None
    status: str = ""


@dataclass(frozen=True)
class Halt:
    """The server refused the message itself: ``sub`` stays queued and the run stops."""

    sub: Subscriber
    error: str
    code: int | None = None
    status: str = ""


@dataclass(frozen=True)
class Paused:
    """``sub``'s mailbox provider is paused (``line``: it just was, and why): it stays
    queued; ``error`` is the refusal that paused it, when one did."""

    sub: Subscriber
    line: str = ""
    error: str | None = None
    code: int | None = None
    status: str = ""


def attempt(
    job: Job,
    sender: str | Callable[[Subscriber], str],
    message_for: Callable[[Subscriber], bytes],
    transport: Transport,
    ready: Callable[[], None],
    may_send: Callable[[Subscriber], Outcome | None],
    gate: ProviderGate | None = None,
    following: Following | None = None,
) -> Outcome | Retry | Halt | Paused:
    """Try to deliver one message: build it, wait until ``ready`` (the rate limit), ask
    ``may_send`` (an outcome instead when the reader left or the sending stops), hand it
    to the transport (with ``following``: the next message's envelope, on its request),
    and say what happened."""
    sub, attempts = job
    if gate is not None and gate.paused(sub.email):
        return Paused(sub)
    message = message_for(sub)
    ready()
    instead = may_send(sub)
    if instead is not None:
        return instead
    try:
        transport.send(envelope_sender(sender, sub), sub.email, message, following=following)
    except DeliveryError as exc:
        error, code, status = str(exc), exc.code, exc.status
        if gate is not None:
            line = gate.observe(sub.email, error if exc.policy else "", at_once=exc.policy and exc.halt)
            if exc.policy and (exc.halt or line):  # its provider refuses our mail: only it is paused
                return Paused(sub, line, error, code, status)
        if exc.halt:
            return Halt(sub, error, code, status)
        if exc.permanent:
            return Outcome(sub.id, "failed", error, exc.bounce, code, status)
        return Retry(sub, attempts + 1, error, code, status)
    if gate is not None:
        gate.observe(sub.email)
    return Outcome(sub.id, "sent")


def envelope_sender(sender: str | Callable[[Subscriber], str], sub: Subscriber) -> str:
    """The MAIL FROM of ``sub``'s message: the run's, or the reader's own (VERP)."""
    return sender if isinstance(sender, str) else sender(sub)
