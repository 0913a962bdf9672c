"""Serving output.dir: feeds and pages from memory, with validators and gzip.

Feed readers poll every few minutes, so a feed must be answered cheaply: each file is
read once into a ``CachedFile`` holding its bytes, its gzip bytes and the complete
header lists of every answer (200, gzip 200, 304), with a precomputed ETag. A request
is a dict lookup and one ``send``. Whether the file changed is checked with one
``stat`` at most once a second per file; the writer replaces files atomically, so a
changed file is always seen whole.

Only regular files inside output.dir are served: no ``..``, no hidden files (the
writer's temporary files start with a dot), no symbolic link that leads outside.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import stat
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

from publisher.links import FORMATS

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CHECK_EVERY = 1.0  # seconds between two stat() of one cached file
MAX_CACHED = 16 * 1024 * 1024  # larger files are streamed from disk (none in a normal site)
MIN_GZIP = 256  # smaller bodies are sent as they are

# Pages of the web edition may not be framed by another site (clickjacking), nor carry
# plugins or a <base> that redirects their links; what they load is theirs to choose.
PAGE_HEADERS = [
    (b"content-security-policy", b"frame-ancestors 'none'; base-uri 'self'; object-src 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]

# Feeds by file name first (rss.xml is not just any XML), then by extension.
FEED_TYPES = {f.name: f.media_type + "; charset=utf-8" for f in FORMATS}
EXTENSION_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}
COMPRESSIBLE = (
    "text/",
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/xml",
    "application/json",
    "image/svg+xml",
    "text/javascript",
)


def content_type(name: str) -> str:
    if name in FEED_TYPES:
        return FEED_TYPES[name]
    ext = os.path.splitext(name)[1].lower()
    if ext in EXTENSION_TYPES:
        return EXTENSION_TYPES[ext]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def cache_control(ctype: str) -> bytes:
    """Feeds: readers may reuse a copy for 5 minutes; pages for 1; assets for 1 hour.
    Every answer carries validators, so revalidation after that is a cheap 304."""
    if ctype.startswith(("application/rss", "application/atom", "application/feed")):
        return b"public, max-age=300"
    if ctype.startswith("text/html"):
        return b"public, max-age=60"
    return b"public, max-age=3600"


@dataclass
class CachedFile:
    path: Path
    size: int
    mtime_ns: int
    ino: int
    body: bytes
    gz: bytes | None
    etag: bytes
    gz_etag: bytes
    last_modified: float  # whole seconds since the epoch
    plain_headers: list[tuple[bytes, bytes]]
    gzip_headers: list[tuple[bytes, bytes]]
    plain_304: list[tuple[bytes, bytes]]
    gzip_304: list[tuple[bytes, bytes]]
    checked: float = 0.0

    @classmethod
    def load(cls, path: Path, st: os.stat_result) -> CachedFile:
        body = path.read_bytes()
        ctype = content_type(path.name)
        content_hash = hashlib.blake2b(body, digest_size=12).hexdigest()
        etag, gz_etag = f'"{content_hash}"'.encode(), f'"{content_hash}-gz"'.encode()
        gz = None
        if len(body) >= MIN_GZIP and ctype.startswith(COMPRESSIBLE):
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            gz = packed if len(packed) < len(body) else None
        seconds = float(int(st.st_mtime))
        common = [
            (b"last-modified", formatdate(seconds, usegmt=True).encode()),
            (b"cache-control", cache_control(ctype)),
            (b"x-content-type-options", b"nosniff"),
        ]
        if ctype.startswith("text/html"):
            common += PAGE_HEADERS
        if gz is not None:
            common.append((b"vary", b"accept-encoding"))
        ctype_b = ctype.encode()
        return cls(
            path=path,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            ino=st.st_ino,
            body=body,
            gz=gz,
            etag=etag,
            gz_etag=gz_etag,
            last_modified=seconds,
            plain_headers=[
                (b"content-type", ctype_b),
                (b"content-length", str(len(body)).encode()),
                (b"etag", etag),
                *common,
            ],
            gzip_headers=[
                (b"content-type", ctype_b),
                (b"content-length", str(len(gz or b"")).encode()),
                (b"content-encoding", b"gzip"),
                (b"etag", gz_etag),
                *common,
            ],
            plain_304=[(b"etag", etag), *common],
            gzip_304=[(b"etag", gz_etag), *common],
            checked=time.monotonic(),
        )

    def same_file(self, st: os.stat_result) -> bool:
        return (st.st_mtime_ns, st.st_size, st.st_ino) == (self.mtime_ns, self.size, self.ino)

    def matches(self, if_none_match: bytes) -> bool:
        """Weak comparison (RFC 9110 13.1.2): either encoding's tag, with or without W/."""
        if if_none_match.strip() == b"*":
            return True
        for tag in if_none_match.split(b","):
            tag = tag.strip()
            if tag.startswith(b"W/"):
                tag = tag[2:]
            if tag == self.etag or tag == self.gz_etag:
                return True
        return False

    def not_modified_since(self, value: bytes) -> bool:
        try:
            since = parsedate_to_datetime(value.decode("latin-1")).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return self.last_modified <= since


class FileCache:
    """URL path -> CachedFile for every regular file under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = os.path.realpath(root)
        self._files: dict[str, CachedFile] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every cached file (the outputs were just rebuilt): each is read again."""
        with self._lock:
            self._files.clear()

    def get(self, url_path: str) -> CachedFile | Path | str | None:
        """The cached file for ``url_path`` (ASGI's decoded path); a Path is a file too
        large to keep in memory; a str is a relative redirect target (a folder asked
        without its slash); None: nothing to serve."""
        entry = self._files.get(url_path)
        if entry is not None:
            now = time.monotonic()
            if now - entry.checked < CHECK_EVERY:
                return entry
            return self._refresh(url_path, entry, now)
        relative = safe_relative(url_path)
        if relative is None:
            return None
        canonical = "/" + "/".join(relative) + ("/" if relative and url_path.endswith("/") else "")
        if canonical != url_path:
            return self.get(canonical)  # only canonical paths become keys: bounded memory
        return self._lookup(canonical, relative)

    def _refresh(self, url_path: str, entry: CachedFile, now: float) -> CachedFile | Path | str | None:
        try:
            st = os.stat(entry.path)
        except OSError:
            st = None
        if st is not None and entry.same_file(st):
            entry.checked = now
            return entry
        with self._lock:
            self._files.pop(url_path, None)
        return self.get(url_path)

    def _lookup(self, url_path: str, relative: list[str]) -> CachedFile | Path | str | None:
        real = os.path.realpath(os.path.join(self._real_root, *relative))
        if real != self._real_root and not real.startswith(self._real_root + os.sep):
            return None  # a symbolic link that leads out of output.dir
        try:
            st = os.stat(real)
        except OSError:
            return None
        if stat.S_ISDIR(st.st_mode):
            if not url_path.endswith("/"):
                return relative[-1] + "/"
            real = os.path.join(real, "index.html")
            try:
                st = os.stat(real)
            except OSError:
                return None
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > MAX_CACHED:
            return Path(real)
        try:
            entry = CachedFile.load(Path(real), st)
        except OSError:
            return None
        with self._lock:
            self._files[url_path] = entry
        return entry


def safe_relative(url_path: str) -> list[str] | None:
    """The path's segments below the root, or None when it is not a plain path there:
    ``..``, ``.``, hidden names, backslashes or NUL are refused. ASGI paths are
    already percent-decoded, so an encoded ``%2e%2e`` arrives here as ``..``."""
    if not url_path.startswith("/"):
        return None
    parts = url_path[1:].split("/")
    if parts[-1] == "":
        parts.pop()
    for part in parts:
        if not part or part.startswith(".") or "\\" in part or "\x00" in part:
            return None
    return parts


def accepts_gzip(value: bytes) -> bool:
    """True when Accept-Encoding allows gzip (or *) with a non-zero quality."""
    for item in value.lower().split(b","):
        name, _, params = item.strip().partition(b";")
        if name.strip() not in (b"gzip", b"x-gzip", b"*"):
            continue
        q = params.strip()
        if q.startswith(b"q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


async def respond(entry: CachedFile, scope: Scope, send: Send) -> None:
    """Answer a GET or HEAD for ``entry``: 304 when the validators match, else the
    body, gzipped when the client accepts it."""
    inm = ims = ae = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            inm = value
        elif name == b"if-modified-since":
            ims = value
        elif name == b"accept-encoding":
            ae = value
    zipped = entry.gz is not None and ae is not None and accepts_gzip(ae)
    if (inm is not None and entry.matches(inm)) or (
        inm is None and ims is not None and entry.not_modified_since(ims)
    ):
        await send(
            {
                "type": "http.response.start",
                "status": 304,
                "headers": entry.gzip_304 if zipped else entry.plain_304,
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": entry.gzip_headers if zipped else entry.plain_headers,
        }
    )
    body = b"" if scope["method"] == "HEAD" else (entry.gz if zipped else entry.body)
    await send({"type": "http.response.body", "body": body or b""})
