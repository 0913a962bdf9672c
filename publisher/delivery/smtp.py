"""The SMTP transport: one connection reused for many messages, pipelined
(RFC 2920) when the server offers it: a message's MAIL, RCPT and DATA go in one
write, and the next message's go with this one's content (``following``: RFC 2920
lets a group begin with a message's content and end with DATA), so a connection
that always has a next message waits for one round trip per message, not two. The
next message is announced only once it may be sent; if it then is not (the run
stops, the next message is another's), the connection is dropped in its DATA state,
which a server discards (RFC 5321 4.1.1.4): it is never ended with an empty message.

Every reply is read against a deadline (``timeout`` for the whole reply, not per
read), within a size bound (8 KB a line, 100 lines, 64 KB), so a server that drips
its greeting or sends an endless EHLO cannot keep a run going: it is given up on in
bounded time, as a dropped connection. A server that breaks the protocol (an
overlong line, a reply that is not SMTP) stops the run with everything queued.

What a refusal means is ``publisher.delivery.replies``' business: only a recipient's
own failure counts against its address; a refusal of the sender or of the message
itself stops the run. The password comes from the environment variable named by
``password_env``, never from config.toml.
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import ssl
import time

from publisher.config import SmtpConfig
from publisher.delivery import Following
from publisher.delivery.replies import Stage, classify, is_policy, reply_status
from publisher.errors import DeliveryError, RcptClosing, ServerFault
from publisher.mail import END_OF_DATA, Message

_DOT = re.compile(rb"(?m)^\.")
MAX_LINE = 8192  # RFC 5321 4.5.3.1.5 asks for 512; smtplib's own bound is this
MAX_LINES = 100  # an EHLO lists a dozen extensions
MAX_REPLY = 64 * 1024
_SLACK = 0.05  # seconds a reply's first read may run past its deadline (no timeout change per read)


class _Bounded:
    """smtplib's reply reader, bounded in time and size (the rest of smtplib is kept)."""

    sock: socket.socket | None
    timeout: float
    _rbuf: bytes = b""

    def getreply(self) -> tuple[int, bytes]:
        deadline = time.monotonic() + self.timeout
        lines: list[bytes] = []
        size = 0
        while True:
            line = self._readline(deadline)
            size += len(line)
            if len(lines) >= MAX_LINES or size > MAX_REPLY:
                self.close()  # type: ignore[attr-defined]
                raise ServerFault(f"a reply of more than {MAX_LINES} lines or {MAX_REPLY // 1024} KB")
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                self.close()  # type: ignore[attr-defined]
                shown = line[:60].decode("ascii", "replace").strip()
                raise ServerFault(f"a reply that is not SMTP: {shown!r}") from None
            if line[3:4] != b"-":
                return code, b"\n".join(lines)

    def _readline(self, deadline: float) -> bytes:
        while True:
            end = self._rbuf.find(b"\n", 0, MAX_LINE + 1)
            if end >= 0:
                line, self._rbuf = self._rbuf[: end + 1], self._rbuf[end + 1 :]
                return line
            if len(self._rbuf) > MAX_LINE:
                self.close()  # type: ignore[attr-defined]
                raise ServerFault(f"a reply line longer than {MAX_LINE // 1024} KB")
            left = deadline - time.monotonic()
            if self.sock is None or left <= 0:
                self.close()  # type: ignore[attr-defined]
                raise smtplib.SMTPServerDisconnected(f"no complete reply within {self.timeout:g} s")
            try:
                # the socket's own timeout is the whole bound for a reply's first read;
                # a drip's later reads get what is left (sending keeps its own bound)
                shorter = left < self.timeout - _SLACK
                if shorter:
                    self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(16384)
                finally:
                    if shorter:
                        self.sock.settimeout(self.timeout)
            except OSError as exc:
                self.close()  # type: ignore[attr-defined]
                if isinstance(exc, TimeoutError):
                    raise smtplib.SMTPServerDisconnected(
                        f"no complete reply within {self.timeout:g} s"
                    ) from None
                raise smtplib.SMTPServerDisconnected(f"connection unexpectedly closed: {exc}") from None
            if not chunk:
                self.close()  # type: ignore[attr-defined]
                raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")
            self._rbuf += chunk

    def starttls(self, *args: object, **kwargs: object) -> tuple[int, bytes]:
        reply = super().starttls(*args, **kwargs)  # type: ignore[misc]
        self._rbuf = b""  # nothing sent before the handshake may be read as if after it
        return reply

    def close(self) -> None:
        self._rbuf = b""
        super().close()  # type: ignore[misc]


class _SMTP(_Bounded, smtplib.SMTP):
    pass


class _SMTP_SSL(_Bounded, smtplib.SMTP_SSL):
    pass


class SmtpTransport:
    def __init__(self, cfg: SmtpConfig) -> None:
        self.cfg = cfg
        self._conn: smtplib.SMTP | None = None
        self._pipelining = False
        # (sender, recipient) of the transaction whose MAIL, RCPT and DATA went out with
        # the last message's content, their replies not yet read
        self._announced: tuple[str, str] | None = None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.cfg
        conn: smtplib.SMTP | None = None
        try:
            if cfg.security == "ssl":
                conn = _SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
                )
            else:
                conn = _SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
                if cfg.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            conn.ehlo_or_helo_if_needed()
            if cfg.username:
                password = os.environ.get(cfg.password_env, "")
                if "plain" in conn.esmtp_features.get("auth", "").lower().split():
                    # one clear attempt; login() would walk on to mechanisms some servers stall on
                    conn.user, conn.password = cfg.username, password
                    conn.auth("PLAIN", conn.auth_plain, initial_response_ok=True)
                else:
                    conn.login(cfg.username, password)
            if conn.sock is not None:
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return conn

    def _open(self) -> smtplib.SMTP:
        cfg = self.cfg
        try:
            return self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP {cfg.host}:{cfg.port} refused the login of {cfg.username!r} "
                f"(is {cfg.password_env} set?): {exc.smtp_code} {_text(exc.smtp_error)!r}",
                permanent=False,
            ) from exc
        except ServerFault as exc:
            raise DeliveryError(
                f"SMTP {cfg.host}:{cfg.port} broke the protocol: {exc}", permanent=False, halt=True
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot connect to SMTP {cfg.host}:{cfg.port}: {exc}", permanent=False
            ) from exc

    def send(
        self,
        sender: str,
        recipient: str,
        message: bytes,
        key: str | None = None,
        following: Following | None = None,
    ) -> None:
        """Send one message. ``following`` is asked, just before the message's content
        goes out, for the envelope (sender, recipient) of the message this transport will
        be given next, or None: that envelope goes out with the content. The next
        ``send`` must then be of that envelope, or the announced transaction is dropped
        with the connection."""
        if self._announced is not None and self._announced != (sender, recipient):
            self._drop()  # announced, then not sent: a connection cut in DATA delivers nothing
        if self._conn is None:
            self._conn = self._open()
            self._pipelining = self._conn.has_extn("pipelining")
        try:
            if self._pipelining:
                self._send_pipelined(self._conn, sender, recipient, message, following)
            else:
                self._conn.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients[recipient]
            if code == 421:
                self._drop()
            elif self._pipelining:  # sendmail resets by itself; our pipelined MAIL is still open
                self._reset()
            raise self._refusal("rcpt", sender, recipient, code, reply) from exc
        except smtplib.SMTPSenderRefused as exc:
            self._end_transaction(exc.smtp_code)
            raise self._refusal("mail", sender, recipient, exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPResponseException as exc:  # the message refused (or a 421 anywhere)
            self._end_transaction(exc.smtp_code)
            stage: Stage = "rcpt" if isinstance(exc, RcptClosing) else "data"
            raise self._refusal(stage, sender, recipient, exc.smtp_code, exc.smtp_error) from exc
        except ServerFault as exc:
            self._drop()
            cfg = self.cfg
            raise DeliveryError(
                f"SMTP {cfg.host}:{cfg.port} broke the protocol: {exc}", permanent=False, halt=True
            ) from exc
        except UnicodeEncodeError as exc:  # an address imported around the checks
            self._reset()
            raise DeliveryError(
                f"{recipient}: not an ASCII address (SMTPUTF8 is not used)", permanent=True, bounce="count"
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise DeliveryError(f"{recipient}: connection lost: {exc}", permanent=False) from exc

    def _refusal(
        self, stage: Stage, sender: str, recipient: str, code: int, reply: bytes | str
    ) -> DeliveryError:
        """The DeliveryError for a server's refusal, classified by its reply."""
        text = _text(reply)
        verdict = classify(stage, code, text)
        status = reply_status(text)
        if not verdict.halt:
            return DeliveryError(
                f"{recipient}: {code} {text}",
                permanent=verdict.permanent,
                code=code,
                bounce=verdict.bounce,
                status=status,
                policy=is_policy(status),
            )
        where = f"SMTP {self.cfg.host}:{self.cfg.port}"
        if stage == "mail":
            what = f"{where} refused the sender {sender}: {code} {text} (check [digest] from)"
        else:
            what = (
                f"{where} refused the message itself ({verdict.reason}, which is about the sender "
                f"or the message, not the address; sent to {recipient}): {code} {text}"
            )
        policy = verdict.reason == "policy" and stage != "mail"  # a recipient's provider may refuse alone
        return DeliveryError(what, permanent=False, code=code, halt=True, status=status, policy=policy)

    def _send_pipelined(
        self,
        conn: smtplib.SMTP,
        sender: str,
        recipient: str,
        message: bytes,
        following: Following | None,
    ) -> None:
        """MAIL, RCPT and DATA in one write (unless they went with the last message's
        content), then the message in one more (RFC 2920: its content may be sent only
        after DATA's 354), with the next message's MAIL, RCPT and DATA when ``following``
        gives its envelope: one round trip per message while there is a next one, two
        without, instead of four. Replies are read in order; the first failure decides.
        A ``Message`` brings its DATA form (dot-stuffed once per rendition, as
        ``MessageTemplate`` builds it); other bytes are stuffed here."""
        if self._announced is None:
            conn.send(_envelope(sender, recipient))
        self._announced = None  # its replies are read now
        replies = [conn.getreply() for _ in range(3)]
        (mail_code, mail_msg), (rcpt_code, rcpt_msg), (data_code, data_msg) = replies
        if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
            self._drop()  # it should not have taken DATA: cut, never ended with an empty message
        if mail_code != 250:
            raise smtplib.SMTPSenderRefused(mail_code, mail_msg, sender)
        if rcpt_code not in (250, 251):
            if rcpt_code == 421:
                raise RcptClosing(rcpt_code, rcpt_msg)
            raise smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_msg)})
        if data_code != 354:
            raise smtplib.SMTPDataError(data_code, data_msg)
        data = message.data if isinstance(message, Message) else _data(message)
        after = following() if following is not None else None
        try:
            announce = _envelope(*after) if after is not None else b""
        except UnicodeEncodeError:  # its own send says what is wrong with the address
            after, announce = None, b""
        conn.send(data + announce)
        self._announced = after
        code, msg = conn.getreply()
        if code != 250:  # this transaction is over either way; an announced one goes on
            raise smtplib.SMTPDataError(code, msg)

    def _end_transaction(self, code: int) -> None:
        """After a refusal: a 421 means the server is closing; else RSET and go on (not
        when the next transaction was announced: the refusal ended this one, and the
        server is taking the next one's commands)."""
        if code == 421:
            self._drop()
        elif self._announced is None:
            self._reset()

    def _reset(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        self._announced = None
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        if self._announced is not None:  # in DATA: a QUIT would be taken for content
            self._drop()
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._drop()


def _envelope(sender: str, recipient: str) -> bytes:
    """One transaction's MAIL, RCPT and DATA, as one pipelined group."""
    return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii")


def _data(message: bytes) -> bytes:
    """``message`` as DATA sends it: dot-stuffed, ending with CRLF and the closing line."""
    if message.startswith(b".") or b"\n." in message:
        message = _DOT.sub(b"..", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + END_OF_DATA


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())
