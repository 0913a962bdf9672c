"""The SMTP transport: one connection reused for many messages.

4xx replies and dropped connections are temporary failures (the ledger keeps the
delivery queued for a retry); 5xx replies are permanent. The password comes from
the environment variable named by ``password_env``, never from config.toml.
"""

from __future__ import annotations

import os
import smtplib
import ssl

from publisher.config import SmtpConfig
from publisher.errors import DeliveryError


class SmtpTransport:
    def __init__(self, cfg: SmtpConfig) -> None:
        self.cfg = cfg
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.cfg
        try:
            if cfg.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
                if cfg.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if cfg.username:
                conn.login(cfg.username, os.environ.get(cfg.password_env, ""))
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP {cfg.host}:{cfg.port} refused the login of {cfg.username!r} "
                f"(is {cfg.password_env} set?): {exc.smtp_code} {exc.smtp_error!r}",
                permanent=False,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot connect to SMTP {cfg.host}:{cfg.port}: {exc}", permanent=False
            ) from exc
        return conn

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._conn.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients[recipient]
            raise DeliveryError(_reply(recipient, code, reply), permanent=code >= 500, code=code) from exc
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise DeliveryError(
                _reply(recipient, exc.smtp_code, exc.smtp_error),
                permanent=exc.smtp_code >= 500,
                code=exc.smtp_code,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise DeliveryError(f"{recipient}: connection lost: {exc}", permanent=False) from exc

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
