"""The SMTP transport: one connection reused for many messages, pipelined
(RFC 2920) when the server offers it.

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

    def send(self, sender: str, recipient: str, message: bytes, key: str | None = None) -> None:
        if self._conn is None:
            self._conn = self._open()
            self._pipelining = self._conn.has_extn("pipelining")
        try:
            if self._pipelining:
                self._send_pipelined(self._conn, sender, recipient, message)
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

    @staticmethod
    def _send_pipelined(conn: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
        """MAIL, RCPT and DATA in one write, then the message in one more (RFC 2920:
        its content may be sent only after DATA's 354): two round trips per message
        instead of four. Replies are read in order; the first failure decides. A
        ``Message`` brings its DATA form (dot-stuffed once per rendition, as
        ``MessageTemplate`` builds it); other bytes are stuffed here."""
        conn.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii"))
        replies = [conn.getreply() for _ in range(3)]
        (mail_code, mail_msg), (rcpt_code, rcpt_msg), (data_code, data_msg) = replies
        if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
            conn.send(b".\r\n")  # the server should not have taken DATA; end it empty
            conn.getreply()
        if mail_code != 250:
            raise smtplib.SMTPSenderRefused(mail_code, mail_msg, sender)
        if rcpt_code not in (250, 251):
            if rcpt_code == 421:
                raise RcptClosing(rcpt_code, rcpt_msg)
            raise smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_msg)})
        if data_code != 354:
            raise smtplib.SMTPDataError(data_code, data_msg)
        conn.send(message.data if isinstance(message, Message) else _data(message))
        code, msg = conn.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, msg)

    def _end_transaction(self, code: int) -> None:
        """After a refusal: a 421 means the server is closing; else RSET and go on."""
        if code == 421:
            self._drop()
        else:
            self._reset()

    def _reset(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._drop()


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
