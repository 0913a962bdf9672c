"""A real SMTP server on 127.0.0.1 (aiosmtpd, in the test process) that records
what it accepted and misbehaves on request, per recipient address.

Faults (``server.faults[address] = kind``):
- ``"451-once"``: the first RCPT gets 451 4.3.0, later ones succeed;
- ``"550-no-such-user"``: every RCPT gets 550 5.1.1 user unknown;
- ``"552-full"``: every DATA gets 552 5.2.2 mailbox full (a recipient's hard failure
  that is not 5.1.1: counted, suppressed after bounce_limit);
- ``"421-mid-session"``: the first DATA gets 421 and the server hangs up;
- ``"drop-after-dot"``: the first message is stored, then the connection is cut
  before the server's reply (the client cannot know it was accepted);
- ``"451-always"``: every RCPT gets 451.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from publisher import audience
from publisher import config as configuration
from publisher.store import Store
from tests.sites import edit_config


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # as it arrived, after dot-unstuffing

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)  # type: ignore[return-value]


@dataclass
class Handler:
    faults: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)
    tried: Counter[str] = field(default_factory=Counter)
    rcpt_order: list[str] = field(default_factory=list)
    sessions: int = 0
    delay: float = 0.0  # seconds before each DATA reply (a slow server)
    pipelining: bool = True  # advertise RFC 2920 PIPELINING
    refuse_sender: bool = False  # 553 to every MAIL FROM
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: ANN001
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        if self.pipelining:  # aiosmtpd handles pipelined commands in order, but does not say so
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: ANN001
        if self.refuse_sender:
            return "553 5.7.1 Sender address rejected: not owned by user"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        with self.lock:
            self.tried[address] += 1
            self.rcpt_order.append(address)
            n = self.tried[address]
        fault = self.faults.get(address)
        if fault == "451-once" and n == 1 or fault == "451-always":
            return "451 4.3.0 Temporary failure, try again later"
        if fault == "550-no-such-user":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        if self.delay:
            await asyncio.sleep(self.delay)
        [address] = envelope.rcpt_tos
        fault = self.faults.get(address)
        with self.lock:
            self.commands[address] += 1
            n = self.commands[address]
        if fault == "552-full":
            return "552 5.2.2 Mailbox full"
        if fault == "421-mid-session" and n == 1:
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.3.2 Service shutting down, closing transmission channel"
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        if fault == "drop-after-dot" and n == 1:
            server.transport.abort()
        return "250 2.0.0 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.rcpt_tos]


class MailServer:
    def __init__(
        self,
        auth: tuple[str, str] | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = Handler()
        options: dict[str, object] = {}
        if starttls is not None:
            options.update(tls_context=starttls, require_starttls=True)
        if implicit_tls is not None:
            options.update(ssl_context=implicit_tls)
        if auth is not None:  # AUTH PLAIN/LOGIN without TLS: loopback only, for tests

            def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
                given = (auth_data.login.decode(), auth_data.password.decode())
                return AuthResult(success=given == auth, handled=False)

            options.update(authenticator=authenticator, auth_require_tls=False, auth_required=True)
        with socket.socket() as probe:  # a free port (the controller cannot take port 0)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, data_size_limit=10_000_000, **options
        )

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


# -- a site that delivers over SMTP to a loopback server -------------------------------


def smtp_site(site, port, smtp_extra="", timeout=5, connections=2, **delivery):
    """The demo site, delivering over SMTP to 127.0.0.1:port (``delivery`` sets keys of
    [delivery], ``smtp_extra`` adds lines to [delivery.smtp]); its loaded config."""
    settings = {"retry_delay": 0.01, "retries": 2, **delivery}
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in settings.items())
    edit_config(
        site,
        'transport = "maildir"\nmaildir = "outbox"\n',
        f'transport = "smtp"\n{extra}[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\n'
        f'security = "none"\nconnections = {connections}\ntimeout = {timeout}\n{smtp_extra}',
    )
    return configuration.load(site / "config.toml")


def add_subscribers(config, addresses):
    store = Store.open(config.store_url)
    try:
        for a in addresses:
            audience.add(store, a)
    finally:
        store.close()


def ledger_state(config):
    store = Store.open(config.store_url)
    try:
        return store.ledger.delivery_counts(), {s.email: s.status for s in store.subscribers.all()}
    finally:
        store.close()
