"""The SMTP transport: one connection reused for many messages, pipelined
(RFC 2920) when the server offers it.

4xx replies and dropped connections are temporary failures (the ledger keeps the
delivery queued for a retry); 5xx replies are permanent. The password comes from
the environment variable named by ``password_env``, never from config.toml.
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import ssl

from publisher.config import SmtpConfig
from publisher.errors import DeliveryError

_DOT = re.compile(rb"(?m)^\.")


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
                conn = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
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
        try:
            return self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            cfg = self.cfg
            raise DeliveryError(
                f"SMTP {cfg.host}:{cfg.port} refused the login of {cfg.username!r} "
                f"(is {cfg.password_env} set?): {exc.smtp_code} {exc.smtp_error!r}",
                permanent=False,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot connect to SMTP {self.cfg.host}:{self.cfg.port}: {exc}", permanent=False
            ) from exc

    def send(self, sender: str, recipient: str, message: bytes) -> None:
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
            if self._pipelining:  # sendmail resets by itself; our pipelined MAIL is still open
                self._reset()
            raise DeliveryError(_reply(recipient, code, reply), permanent=code >= 500, code=code) from exc
        except smtplib.SMTPSenderRefused as exc:
            # about our From address, not the subscriber's: never counts as their bounce
            if exc.smtp_code == 421:
                self._drop()
            else:
                self._reset()
            raise DeliveryError(
                f"{recipient}: the server refused the sender {sender}: {exc.smtp_code} "
                f"{' '.join(exc.smtp_error.decode('utf-8', 'replace').split())} (check [digest] from)",
                permanent=False,
                code=exc.smtp_code,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:
                self._drop()
            else:
                self._reset()
            raise DeliveryError(
                _reply(recipient, exc.smtp_code, exc.smtp_error),
                permanent=exc.smtp_code >= 500,
                code=exc.smtp_code,
            ) from exc
        except UnicodeEncodeError as exc:  # an address imported around the checks
            self._reset()
            raise DeliveryError(
                f"{recipient}: not an ASCII address (SMTPUTF8 is not used)", permanent=True
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise DeliveryError(f"{recipient}: connection lost: {exc}", permanent=False) from exc

    @staticmethod
    def _send_pipelined(conn: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
        """MAIL, RCPT and DATA in one write, then the message (RFC 2920): two round
        trips per message instead of four. Replies are read in order; the first
        failure decides."""
        conn.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n")
        replies = [conn.getreply() for _ in range(3)]
        (mail_code, mail_msg), (rcpt_code, rcpt_msg), (data_code, data_msg) = replies
        if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
            conn.send(b".\r\n")  # the server should not have taken DATA; end it empty
            conn.getreply()
        if mail_code != 250:
            raise smtplib.SMTPSenderRefused(mail_code, mail_msg, sender)
        if rcpt_code not in (250, 251):
            if rcpt_code == 421:
                raise smtplib.SMTPResponseException(rcpt_code, rcpt_msg)
            raise smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_msg)})
        if data_code != 354:
            raise smtplib.SMTPDataError(data_code, data_msg)
        if message.startswith(b".") or b"\n." in message:
            message = _DOT.sub(b"..", message)
        if not message.endswith(b"\r\n"):
            message += b"\r\n"
        conn.send(message + b".\r\n")
        code, msg = conn.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, msg)

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


def _reply(recipient: str, code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{recipient}: {code} {' '.join(text.split())}"
