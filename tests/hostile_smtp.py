"""A hostile SMTP server on 127.0.0.1, written on a raw socket: it says exactly the
bytes a test gives it, including what aiosmtpd cannot be made to say (reply lines
over 8 KB, a greeting dripped one byte at a time, an EHLO that never ends, any
reply code and enhanced status at any stage).

Replies are bytes (sent as they are, CRLF included) or str (one line, CRLF added);
``rcpt`` and ``data`` may be a dict by recipient address with a default under "*".
A ``greeting`` or ``ehlo`` that is a callable is run with a ``send(bytes)`` and a
``stopping`` event: it can drip for as long as the test runs.

A connection cut in the middle of a message's content delivers nothing (RFC 5321
4.1.1.4). ``hold`` keeps each reply to a message's content back that many seconds, and
``early`` counts the replies whose next command had already arrived by then: a client
that announces its next message with this one's content (RFC 2920) does not wait.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Reply = bytes | str | Callable[[Callable[[bytes], None], threading.Event], None]


def _bytes(reply: bytes | str) -> bytes:
    return reply if isinstance(reply, bytes) else reply.encode() + b"\r\n"


def drip(data: bytes, every: float) -> Reply:
    """A reply sent one byte per ``every`` seconds, then forever more bytes of the line."""

    def send_slowly(send: Callable[[bytes], None], stopping: threading.Event) -> None:
        i = 0
        while not stopping.is_set():
            send(data[i : i + 1] if i < len(data) else b"x")
            i += 1
            time.sleep(every)

    return send_slowly


def endless(line: bytes) -> Reply:
    """A multi-line reply that never ends (``250-line`` forever)."""

    def send_forever(send: Callable[[bytes], None], stopping: threading.Event) -> None:
        while not stopping.is_set():
            send(line * 50)

    return send_forever


@dataclass
class Script:
    greeting: Reply = "220 hostile.example ESMTP"
    ehlo: Reply = b"250-hostile.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
    mail: Reply = "250 2.1.0 OK"
    rcpt: Reply | dict[str, Reply] = "250 2.1.5 OK"
    data: Reply | dict[str, Reply] = "250 2.0.0 queued"
    received: list[tuple[str, str, bytes]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    connections: int = 0
    contents: int = 0  # messages' contents read to their end, accepted or refused
    hold: float = 0.0  # seconds each reply to a message's content is held back
    early: int = 0  # replies to a content whose next command had already arrived
    lock: threading.Lock = field(default_factory=threading.Lock)

    def for_address(self, which: Reply | dict[str, Reply], address: str) -> Reply:
        if isinstance(which, dict):
            return which.get(address, which.get("*", "250 OK"))
        return which


class HostileSmtp:
    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.stopping = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._session(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.allow_reuse_address = True
        self.server.server_bind()
        self.server.server_activate()
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HostileSmtp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def _session(self, sock: socket.socket) -> None:
        s = self.script
        with s.lock:
            s.connections += 1
        sock.settimeout(30)
        reader = _Lines(sock)

        def send(data: bytes) -> None:
            sock.sendall(data)

        def say(reply: Reply) -> None:
            if callable(reply):
                reply(send, self.stopping)
            else:
                send(_bytes(reply))

        try:
            say(s.greeting)
            sender, rcpt, accepted = "", "", False
            while not self.stopping.is_set():
                line = reader.readline(100_000)
                if not line:
                    return
                verb = line[:4].upper().decode("ascii", "replace")
                with s.lock:
                    s.commands.append(line.decode("utf-8", "replace").strip())
                if verb == "EHLO":
                    say(s.ehlo)
                elif verb == "HELO":
                    say("250 hostile.example")
                elif verb == "MAIL":
                    sender, accepted = _address(line), False
                    say(s.mail)
                elif verb == "RCPT":
                    rcpt = _address(line)
                    reply = s.for_address(s.rcpt, rcpt)
                    accepted = isinstance(reply, bytes | str) and _bytes(reply)[:1] == b"2"
                    say(reply)
                elif verb == "DATA":
                    if not accepted:
                        say("554 5.5.1 no valid recipients")
                        continue
                    say("354 go ahead")
                    body = b""
                    while (chunk := reader.readline(100_000)) != b".\r\n":
                        if not chunk:
                            return  # cut in the middle of the content: nothing is delivered
                        body += chunk
                    if s.hold:
                        time.sleep(s.hold)
                    with s.lock:
                        s.contents += 1
                        s.early += reader.waiting()
                    reply = s.for_address(s.data, rcpt)
                    if isinstance(reply, bytes | str) and _bytes(reply)[:1] == b"2":
                        with s.lock:
                            s.received.append((sender, rcpt, body))
                    say(reply)
                elif verb == "RSET":
                    accepted = False
                    say("250 2.0.0 OK")
                elif verb == "QUIT":
                    say("221 2.0.0 bye")
                    return
                else:
                    say("250 OK")
        except OSError:
            return
        finally:
            sock.close()


class _Lines:
    """Lines read from a socket, and whether more has arrived than was read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.pos = sock, b"", 0

    def readline(self, limit: int) -> bytes:
        """The next line (up to ``limit`` bytes), or what is left when the peer closes."""
        while True:
            end = self.buf.find(b"\n", self.pos, self.pos + limit)
            if end >= 0 or len(self.buf) - self.pos >= limit:
                cut = end + 1 if end >= 0 else self.pos + limit
                line, self.pos = self.buf[self.pos : cut], cut
                return line
            chunk = self.sock.recv(65536)
            if not chunk:
                line, self.buf, self.pos = self.buf[self.pos :], b"", 0
                return line
            self.buf, self.pos = self.buf[self.pos :] + chunk, 0

    def waiting(self) -> bool:
        return self.pos < len(self.buf) or bool(select.select([self.sock], [], [], 0)[0])


def _address(line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    start, end = text.find("<"), text.find(">")
    return text[start + 1 : end] if 0 <= start < end else ""
