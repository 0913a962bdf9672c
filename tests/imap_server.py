"""A real IMAP server for the tests: Debian's dovecot-imapd with a throwaway
configuration in a temporary folder, IMAPS on a free port of 127.0.0.1 with a
certificate made for the test (trusted through SSL_CERT_FILE), one user whose
password comes from the test."""

from __future__ import annotations

import getpass
import imaplib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_binary

USER, PASSWORD = "bounces", "imap-secret-for-tests"


@dataclass
class ImapServer:
    port: int  # IMAPS (TLS from the start)
    starttls_port: int  # IMAP with STARTTLS (required before login)
    cert: Path  # the CA a client must trust (SSL_CERT_FILE)
    user: str = USER
    password: str = PASSWORD

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4_SSL]:
        context = ssl.create_default_context(cafile=str(self.cert))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        imap.login(self.user, self.password)
        try:
            yield imap
        finally:
            imap.logout()

    def append(self, folder: str, message: bytes) -> None:
        with self.client() as imap:
            imap.create(folder)
            status, data = imap.append(
                folder, None, None, message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            )
            assert status == "OK", data

    def flags(self, folder: str) -> list[set[str]]:
        """The flags of every message in ``folder``, in order."""
        with self.client() as imap:
            imap.select(folder, readonly=True)
            _, found = imap.uid("SEARCH", "ALL")
            result = []
            for uid in (found[0] or b"").split():
                _, data = imap.uid("FETCH", uid, "(FLAGS)")
                text = data[0].decode()
                result.append(
                    set(text[text.index("FLAGS (") + 7 : text.index(")", text.index("FLAGS ("))].split())
                )
            return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    dovecot = require_binary("dovecot")
    openssl = require_binary("openssl")
    # Not under pytest's tmp_path: dovecot's own users must reach its files and the mail.
    root = Path(tempfile.mkdtemp(prefix="publisher-dovecot-"))
    root.chmod(0o755)
    try:
        yield from _serve(dovecot, openssl, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve(dovecot: str, openssl: str, root: Path) -> Iterator[ImapServer]:
    run, home = root / "run", root / "home" / USER
    run.mkdir(parents=True)
    home.mkdir(parents=True)
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    if os.geteuid() == 0:  # dovecot drops root: the mail belongs to its own user
        internal, login, mail_user = "dovecot", "dovenull", "dovecot"
        shutil.chown(home, mail_user, mail_user)
    else:
        internal = login = mail_user = getpass.getuser()
    port, starttls_port = _free_port(), _free_port()
    (root / "dovecot.conf").write_text(
        f"""\
base_dir = {run}
state_dir = {run}
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
first_valid_uid = 1
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {starttls_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
"""
    )
    process = subprocess.Popen(
        [dovecot, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                    out = process.stdout.read().decode() if process.stdout else ""
                    raise RuntimeError(f"dovecot did not start:\n{out}\n{log}") from None
                time.sleep(0.1)
        yield ImapServer(port, starttls_port, cert)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
