"""Message bytes: one digest, personalised cheaply for each subscriber.

``MessageTemplate`` is built once per digest: the shared headers are encoded and
folded (RFC 2047 for non-ASCII) with the standard library's SMTP policy, and the
HTML (already inlined by premailer) and text parts are encoded (binascii, in C;
quoted-printable or base64, whichever is smaller: ``transfer_encoding``) except
the few lines holding a placeholder for a personal field (for base64: the part's
end from the first placeholder on).
``personalise`` then fills and encodes just those pieces and joins ready bytes: no
template rendering, premailer or ``email.message`` build per recipient, and the
result is byte for byte what encoding the filled-in message would give.

Nothing from content reaches a header as a new line: every header value passes
``single_line`` first, and bodies are emitted with CRLF line endings only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, parseaddr
from pathlib import Path

from publisher.errors import PublisherError
from publisher.text import single_line

UNSUBSCRIBE_URL = "@@UNSUBSCRIBE_URL@@"
RECIPIENT = "@@RECIPIENT@@"
PREFERENCES_URL = "@@PREFERENCES_URL@@"  # the reader's preference centre
PLACEHOLDERS = (UNSUBSCRIBE_URL, RECIPIENT, PREFERENCES_URL)


def _line(value: str) -> str:
    """``single_line``, with a fast path for the usual value that already is one."""
    if value.isprintable() and "  " not in value and value == value.strip():
        return value
    return single_line(value)


def encoded_header(name: str, value: str) -> bytes:
    """One header line of text, folded, as RFC 2047 encoded words where it is not ASCII."""
    value = _line(value)
    return _fold_ascii(name, value if value.isascii() else encoded_words(value))


def _fold_ascii(name: str, value: str, width: int = 78) -> bytes:
    """Fold at spaces, never right after the colon (the standard library's folder
    sometimes moves the whole value to a continuation line)."""
    if len(name) + 2 + len(value) <= width:  # the usual: one line as it is
        return f"{name}: {value}\r\n".encode("ascii")
    lines, line = [], f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > width and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def raw_header(name: str, value: str) -> bytes:
    """An ASCII header we composed ourselves (ids, URLs, already encoded words):
    no further encoding, folded at spaces. What cannot be sent as ASCII (an address
    with a non-ASCII local part) stops with an error naming the header."""
    value = _line(value)
    if not value.isascii():
        raise PublisherError(
            f"cannot put {value!r} in a {name} header: an address must be ASCII before the @"
        )
    return _fold_ascii(name, value)


# RFC 2047 section 2: an encoded word is at most 75 characters, and a header line
# should stay within 78. 39 bytes of UTF-8 are 52 base64 characters, 64 with
# "=?utf-8?b?" and "?=": room for "Subject: " (or "List-Id: ") before the first word.
_EW_BYTES = 39


def encoded_words(text: str) -> str:
    """``text`` as RFC 2047 base64 encoded words (each within 75 characters, never
    splitting a character), separated by spaces; plain ASCII words stay as they are
    when the text is ASCII."""
    words, chunk = [], b""
    for ch in text:
        b = ch.encode("utf-8")
        if len(chunk) + len(b) > _EW_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += b
    if chunk:
        words.append(chunk)
    return " ".join("=?utf-8?b?" + base64.b64encode(w).decode("ascii") + "?=" for w in words)


def phrase(text: str, *, quote: bool = True) -> str:
    """An RFC 5322 phrase (a display name, List-Id's description) as ASCII: a quoted
    string for ASCII text (bare atoms when ``quote`` is false and nothing needs
    quoting), encoded words otherwise."""
    text = _line(text)
    if not text.isascii():
        return encoded_words(text)
    if not quote and _ATOMS.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+( [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def list_id(description: str, list_id: str) -> str:
    """RFC 2919 List-Id value: ``"<description>" <list-id>``; the id is ASCII."""
    if not _LIST_ID.fullmatch(list_id):
        raise PublisherError(f"List-Id {list_id!r} is not ASCII labels joined by dots")
    return f"{phrase(description)} <{list_id}>" if _line(description) else f"<{list_id}>"


_LIST_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+")


def address(name: str, addr: str) -> str:
    """``Name <addr>`` with the name as an ASCII phrase (encoded words when needed)."""
    name = _line(name)
    local, at, domain = addr.rpartition("@")
    if at and not domain.isascii():
        try:
            addr = f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError:
            pass  # left as it is: raw_header refuses it, naming the header
    return f"{phrase(name, quote=False)} <{addr}>" if name else addr


def stuff(chunk: bytes) -> bytes:
    """SMTP's transparency (RFC 5321 4.5.2) for ``chunk``, which begins at a line's
    start: a period that begins a line is doubled."""
    if chunk.startswith(b"."):
        chunk = b"." + chunk
    return chunk.replace(b"\n.", b"\n..") if b"\n." in chunk else chunk


END_OF_DATA = b".\r\n"  # after the message's last CRLF


class Message(bytes):
    """A finished message (RFC 5322, CRLF line ends), which also carries ``data``: the
    same message as SMTP's DATA sends it, dot-stuffed and ending with the closing
    ``.`` line. ``MessageTemplate`` stuffs its shared segments once, so the transport
    never scans a whole message again."""

    data: bytes

    @classmethod
    def of(cls, message: bytes, data: bytes) -> Message:
        made = cls(message)
        made.data = data
        return made

    def signed(self, header: bytes) -> Message:
        """This message with ``header`` (a signature's) put before it."""
        return Message.of(header + self, stuff(header) + self.data)


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    unsubscribe_url: str  # "": a mail with no List-Unsubscribe (a confirmation mail)
    unsubscribe_mailto: str
    message_id: str
    preferences_url: str = ""  # the footer's "Manage your newsletters" link


@dataclass(frozen=True)
class MessageTemplate:
    """One message, encoded once: shared headers, and each body part as
    quoted-printable segments already final, except the few lines that hold a
    placeholder (kept as text, encoded per recipient). Quoted-printable encodes
    line by line, so encoding just those lines gives the very bytes a whole-body
    encoding of the filled-in part would.

    Every header line is ASCII: text goes through RFC 2047 (``encoded_header``,
    ``phrase``), ids and URLs through ``raw_header``."""

    shared_headers: bytes  # From, Subject, Date, List-Id, ... (CRLF-terminated lines)
    text_part: Part
    html_part: Part
    boundary: bytes
    layout: tuple[tuple[int, bytes | str, bytes | int], ...] = field(init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        *,
        sender: str,
        subject: str,
        date: datetime,
        html_body: str,
        text_body: str,
        list_id: str | None = None,
        reply_to: str = "",
        extra_headers: dict[str, str] | None = None,
        encodings: tuple[str | None, str | None] = (None, None),
    ) -> MessageTemplate:
        """``list_id`` is a finished List-Id value (see ``list_id()``); with it the
        message is a list message (List-Unsubscribe-Post). ``extra_headers`` are text
        (RFC 2047-encoded where not ASCII). ``encodings``: the text and HTML parts'
        transfer encodings; None: the smaller for that body (``transfer_encoding``)."""
        name, addr = parseaddr(single_line(sender))
        headers = [
            raw_header("From", address(name, addr)),
            *([raw_header("Reply-To", address(*parseaddr(single_line(reply_to))))] if reply_to else []),
            encoded_header("Subject", subject),
            raw_header("Date", format_datetime(date)),
            *(
                [
                    raw_header("List-Id", list_id),
                    raw_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ]
                if list_id is not None
                else []
            ),
            raw_header("MIME-Version", "1.0"),
            *(encoded_header(k, v) for k, v in (extra_headers or {}).items()),
        ]
        # "=" never occurs unescaped in quoted-printable output, "-" never in base64:
        # no body can hold the boundary line.
        seed = hashlib.sha256(b"".join(headers)).hexdigest()[:24]
        return cls(
            b"".join(headers),
            Part.encode("text/plain", text_body, encodings[0]),
            Part.encode("text/html", html_body, encodings[1]),
            f"==publisher-{seed}".encode("ascii"),
        )

    @property
    def encodings(self) -> tuple[str, str]:
        """The (text, HTML) transfer encodings chosen."""
        return self.text_part.encoding, self.html_part.encoding

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", self._lay_out())

    def _lay_out(self) -> tuple[tuple[int, bytes | str, bytes | int], ...]:
        """Everything after the per-recipient headers, in order: runs of shared bytes
        joined into one (as they are, and dot-stuffed: ``_SHARED``), and what is filled
        per recipient (a quoted-printable line of a part: ``_LINE``; a base64 part's
        tail: ``_TAIL``). Every piece begins at a line's start, so each is stuffed on
        its own; no header line and no base64 line begins with a period."""
        b = self.boundary
        pieces: list[tuple[int, bytes | str, bytes | int]] = []

        def shared(plain: bytes, stuffed: bytes) -> None:
            if pieces and pieces[-1][0] == _SHARED:
                _, before, before_stuffed = pieces.pop()
                plain, stuffed = before + plain, before_stuffed + stuffed  # type: ignore[operator]
            pieces.append((_SHARED, plain, stuffed))

        opening = b'Content-Type: multipart/alternative; boundary="' + b + b'"\r\n\r\n'
        for n, part in enumerate((self.text_part, self.html_part)):
            shared(opening + b"--" + b + b"\r\n" + part.head, opening + b"--" + b + b"\r\n" + part.head)
            opening = b""
            for segment in part.segments:
                if isinstance(segment, bytes):
                    shared(segment, stuff(segment))
                else:
                    pieces.append((_LINE, segment, n))
            if part.tail:
                pieces.append((_TAIL, part.tail, n))
        shared(b"--" + b + b"--\r\n", b"--" + b + b"--\r\n" + END_OF_DATA)
        return tuple(pieces)

    def personalise(self, to: Recipient) -> Message:
        """The complete RFC 5322 message for one recipient, CRLF line endings (with its
        dot-stuffed form for SMTP, ``Message.data``)."""
        values = (
            {UNSUBSCRIBE_URL: to.unsubscribe_url, RECIPIENT: to.email, PREFERENCES_URL: to.preferences_url},
            {
                UNSUBSCRIBE_URL: html_escape(to.unsubscribe_url),
                RECIPIENT: html_escape(to.email),
                PREFERENCES_URL: html_escape(to.preferences_url),
            },
        )
        plain = [
            self.shared_headers,
            raw_header("To", address(to.name, to.email)),
            raw_header("Message-ID", to.message_id),
        ]
        if to.unsubscribe_url:
            plain.append(raw_header("List-Unsubscribe", f"<{to.unsubscribe_url}>, <{to.unsubscribe_mailto}>"))
        data = plain.copy()
        for kind, piece, extra in self.layout:
            if kind == _SHARED:
                plain.append(piece)  # type: ignore[arg-type]
                data.append(extra)  # type: ignore[arg-type]
            elif kind == _LINE:
                line = _qp(_fill(piece, values[extra]))  # type: ignore[arg-type, index]
                plain.append(line)
                data.append(stuff(line))
            else:
                tail = _base64(_fill_bytes(piece, values[extra]))  # type: ignore[arg-type, index]
                plain.append(tail)
                data.append(tail)
        return Message.of(b"".join(plain), b"".join(data))


_SHARED, _LINE, _TAIL = 0, 1, 2  # MessageTemplate.layout's kinds of piece


GMAIL_CLIP_BYTES = 102 * 1024  # Gmail clips an HTML part past this many bytes as sent
QUOTED_PRINTABLE, BASE64 = "quoted-printable", "base64"


def transfer_encoding(body: str) -> str:
    """The transfer encoding that sends ``body`` in fewer bytes.

    Quoted-printable keeps ASCII as it is (about 1.02 bytes per character) but turns
    every other UTF-8 byte into "=XX": a Hangul syllable (3 bytes) costs 9. Base64
    costs a flat 4/3 per byte (4 per Hangul syllable, 1.37 per ASCII character). So
    an English digest goes quoted-printable, a Korean one base64. 8bit would be
    smaller still, but needs 8BITMIME on every hop (a relay without it re-encodes
    the part, breaking the DKIM signature) and is not 7-bit safe in a Maildir file."""
    data = body.replace("\r\n", "\n").replace("\r", "\n")
    size = len(data.encode("utf-8")) + data.count("\n")  # as CRLF
    if size == 0 or data.isascii():
        return QUOTED_PRINTABLE
    return (
        BASE64
        if _base64_size(size) < len(_qp(data if data.endswith("\n") else data + "\n"))
        else QUOTED_PRINTABLE
    )


def _base64_size(size: int) -> int:
    return -(-size // 3) * 4 + -(-size // _B64_CHUNK) * 2


def sent_size(body: str, encoding: str | None = None) -> int:
    """Bytes of ``body`` as a part's content on the wire (after the transfer encoding,
    CRLF line ends): what Gmail's 102 KB clip counts."""
    part = Part.encode("text/html", body, encoding)
    return sum(len(s) for s in part.filled({})) - len(part.head)


@dataclass(frozen=True)
class Part:
    """One body part, encoded once: ``head`` (its MIME headers), then final encoded
    ``segments`` and, where a placeholder is, text kept to encode per recipient.

    Quoted-printable encodes line by line, so the placeholder lines are kept as text
    (str segments). Base64 encodes 57-byte groups, so everything from the last group
    boundary before the first placeholder is kept (as UTF-8, a ``tail``): a footer's
    worth per recipient. Either way the result is the very bytes encoding the filled
    in part whole would give."""

    encoding: str
    head: bytes
    segments: tuple[bytes | str, ...]
    tail: bytes = b""  # base64: raw UTF-8 (CRLF) to fill and encode per recipient

    @classmethod
    def encode(cls, content_type: str, body: str, encoding: str | None = None) -> Part:
        encoding = encoding or transfer_encoding(body)
        head = (
            f'Content-Type: {content_type}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
        ).encode("ascii")
        lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if lines[-1] == "":
            lines.pop()
        if encoding == BASE64:
            data = "".join(line + "\r\n" for line in lines).encode("utf-8")
            first = min(
                (i for i in (data.find(p.encode("ascii")) for p in PLACEHOLDERS) if i >= 0), default=len(data)
            )
            cut = first - first % _B64_CHUNK
            return cls(encoding, head, (_base64(data[:cut]),), data[cut:])
        segments: list[bytes | str] = []
        static: list[str] = []
        for line in lines:
            if any(p in line for p in PLACEHOLDERS):
                if static:
                    segments.append(_qp("\n".join(static) + "\n"))
                    static = []
                segments.append(line + "\n")
            else:
                static.append(line)
        if static:
            segments.append(_qp("\n".join(static) + "\n"))
        return cls(encoding, head, tuple(segments))

    def filled(self, values: dict[str, str]) -> list[bytes]:
        """The part's bytes with the placeholders replaced by ``values``."""
        out = [self.head]
        out += [s if isinstance(s, bytes) else _qp(_fill(s, values)) for s in self.segments]
        if self.tail:
            out.append(_base64(_fill_bytes(self.tail, values)))
        return out


_B64_CHUNK = 57  # input bytes per 76-character base64 line (RFC 2045 6.8)


def _base64(data: bytes) -> bytes:
    b2a = binascii.b2a_base64
    return b"".join(
        b2a(data[i : i + _B64_CHUNK], newline=False) + b"\r\n" for i in range(0, len(data), _B64_CHUNK)
    )


def _qp(text: str) -> bytes:
    """Quoted-printable (binascii, in C) with CRLF line ends; ``text`` ends with LF."""
    encoded = binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False)
    lines = encoded.split(b"\n")
    if max(map(len, lines)) > _QP_LINE:
        encoded = b"\n".join(_rewrap(lines))
    return encoded.replace(b"\n", b"\r\n")


_QP_LINE = 76  # RFC 2045 6.7 (5)


def _rewrap(lines: list[bytes]) -> list[bytes]:
    """binascii lets a line grow to 78 when it ends in encoded whitespace ("=20"):
    break such lines again, never inside an "=XX" escape."""
    out = []
    for line in lines:
        while len(line) > _QP_LINE:
            cut = _QP_LINE - 1
            if line[cut - 1 : cut] == b"=":
                cut -= 1
            elif line[cut - 2 : cut - 1] == b"=":
                cut -= 2
            out.append(line[:cut] + b"=")
            line = line[cut:]
        out.append(line)
    return out


def html_escape(value: str) -> str:
    """Escape as lxml (under premailer) serialises: a value filled in later is byte
    for byte what a full render of the same recipient would have produced."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def _fill_bytes(template: bytes, values: dict[str, str]) -> bytes:
    for key, value in values.items():
        template = template.replace(key.encode("ascii"), value.encode("utf-8"))
    return template


# RFC 8058 section 4: the signature must cover List-Unsubscribe and List-Unsubscribe-Post.
DKIM_HEADERS = (
    b"From",
    b"Reply-To",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


class DkimSigner:
    """Signs finished messages (rsa-sha256, relaxed/relaxed) with the site's DKIM key."""

    def __init__(self, selector: str, domain: str, key: bytes) -> None:
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")
        self.key = key

    @classmethod
    def from_file(cls, selector: str, domain: str, path: Path) -> DkimSigner:
        try:
            key = Path(path).read_bytes()
        except OSError as exc:
            raise PublisherError(
                f"cannot read the DKIM key {path} ([delivery] dkim_key_file): {exc.strerror}"
            ) from None
        signer = cls(selector, domain, key)
        try:
            signer.sign(b"From: a@b\r\nSubject: test\r\n\r\nkey check\r\n")
        except Exception as exc:  # dkimpy raises several types for an unusable key
            raise PublisherError(
                f"{path} ([delivery] dkim_key_file) is not a usable DKIM key: {exc}"
            ) from None
        return signer

    def sign(self, message: bytes) -> bytes:
        import dkim  # only to sign: importing dkimpy (and dnspython) takes a while

        header = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=b"rsa-sha256",
            include_headers=[h for h in DKIM_HEADERS if _has_header(message, h)],
            linesep=b"\r\n",
        )
        return message.signed(header) if isinstance(message, Message) else header + message


def _has_header(message: bytes, name: bytes) -> bool:
    head = message.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(name.lower() + b":") or (b"\r\n" + name.lower() + b":") in head
