"""A real ``publish serve`` process on loopback for the web tests, and the outbox helpers
they share (the site's Maildir, read back with the standard email parser)."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import httpx

from publisher.store import Store
from tests.sites import demo_site, edit_config, mails, publish, publish_command, publish_env

SECRET = "web-tests-current-secret"
OLD_SECRET = "web-tests-previous-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_site(folder: Path, port: int, extra_server: str = "") -> Path:
    """A copy of the demo site whose base_url is the server's own address."""
    demo_site(folder, base_url=f'"http://127.0.0.1:{port}/"')
    edit_config(folder, "[server]\n", "[server]\n" + extra_server)
    return folder


def env_for(extra: dict[str, str] | None = None) -> dict[str, str]:
    return publish_env({"PUBLISHER_SECRET": SECRET, "PUBLISHER_SECRET_PREVIOUS": OLD_SECRET, **(extra or {})})


class Server:
    """``python -m publisher serve`` as a subprocess; stopped with SIGTERM."""

    def __init__(
        self,
        site: Path,
        port: int,
        env: dict[str, str] | None = None,
        *,
        port_flag: bool = True,
        args: tuple[str, ...] = (),
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.site = site
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = site / "serve.log"
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen(
            publish_command(site, "serve") + (["--port", str(port)] if port_flag else []) + list(args),
            cwd=site,
            env=env_for(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code in (200, 503):  # answering
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"publish serve did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.client = httpx.Client(
            base_url=self.base, timeout=10, follow_redirects=False, headers={"accept-encoding": "identity"}
        )

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


messages = mails  # every message in the site's outbox, oldest first


def outbox_counts(site: Path) -> dict[str, int]:
    """The site's confirmation mails by state (queued, sending, sent, failed)."""
    store = Store.open(f"sqlite:///{site / 'publisher.db'}")
    try:
        return store.outbox.counts()
    finally:
        store.close()


def confirmations_settled(site: Path) -> bool:
    """Whether the sender has nothing queued or in flight (each mail sent or failed)."""
    return set(outbox_counts(site)) <= {"sent", "failed"}


def operator_publish(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with the server's secrets, as an operator runs both."""
    return publish(site, *args, env={"PUBLISHER_SECRET": SECRET, "PUBLISHER_SECRET_PREVIOUS": OLD_SECRET})


def subscriptions_of(where: Server | Path, email: str) -> dict[str, tuple[str, list[str]]]:
    """newsletter key -> (status, sections), as the site's SQLite store holds them."""
    site = where.site if isinstance(where, Server) else where
    with sqlite3.connect(site / "publisher.db") as db:
        rows = db.execute(
            "SELECT s.newsletter, s.status, s.sections FROM subscriptions s "
            "JOIN subscribers r ON r.id = s.subscriber_id WHERE r.email = ?",
            (email,),
        ).fetchall()
    return {key: (status, json.loads(sections)) for key, status, sections in rows}


def status_of(where: Server | Path, email: str) -> str | None:
    """The subscriber's status in the SQLite store of a site (or of a server's site)."""
    site = where.site if isinstance(where, Server) else where
    store = Store.open(f"sqlite:///{site / 'publisher.db'}")
    try:
        sub = store.subscribers.get(email)
        return None if sub is None else sub.status
    finally:
        store.close()


def mails_to(site: Path, address: str) -> list[EmailMessage]:
    return [m for m in messages(site) if address in str(m["To"])]


def wait_for_mails(site: Path, address: str, count: int, timeout: float = 10) -> list[EmailMessage]:
    """The mails to ``address`` once there are ``count`` of them (sent after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        found = mails_to(site, address)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def link_in(msg: EmailMessage, kind: str) -> str:
    """The first ``/confirm/`` or ``/unsubscribe/`` link of a message's text part."""
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(rf"https?://\S+/{kind}/\S+", text)
    assert match, f"no {kind} link in:\n{text}"
    return match.group(0)
