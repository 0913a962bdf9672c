"""Bytes to text: UTF-8 first, then a detected legacy encoding (EUC-KR/CP949,
Windows-1252 ...) via charset-normalizer; binary files are refused."""

from __future__ import annotations

from charset_normalizer import from_bytes


def decode(data: bytes) -> tuple[str | None, str | None]:
    """Return (text, note). text is None when the bytes are not text; note says why,
    or which fallback encoding was used."""
    if not data.strip():
        return None, "empty file"
    if b"\x00" in data:
        return None, "binary file (contains NUL bytes)"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        return None, "not text in any known encoding"
    return str(best), f"decoded as {best.encoding} (not UTF-8)"
