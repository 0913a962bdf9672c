"""Bytes to text: UTF-8 first (a UTF-16 byte order mark is honoured), then a detected legacy encoding (EUC-KR/CP949,
Windows-1252 ...) via charset-normalizer; binary files are refused."""

from __future__ import annotations

from charset_normalizer import from_bytes

# Python codec names, as charset-normalizer reports them.
PREFERRED = ("cp949", "euc_kr", "cp1252", "latin_1")


def decode(data: bytes) -> tuple[str | None, str | None]:
    """Return (text, note). text is None when the bytes are not text; note says why,
    or which fallback encoding was used."""
    if not data.strip():
        return None, "empty file"
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[2:].decode(codec), f"decoded as {codec} (not UTF-8)"
            except UnicodeDecodeError:
                return None, f"starts with a {codec} byte order mark but is not {codec}"
    if _looks_binary(data):
        return None, "binary file (control bytes such as NUL throughout)"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    results = from_bytes(data)
    best = results.best()
    if best is None:
        return None, "not text in any known encoding"
    # Short texts often fit several single-byte code pages equally well; among those
    # the detector ranks equal, take the one a newsroom most likely wrote.
    ties = [m for m in results if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    for encoding in PREFERRED:
        if any(encoding in m.could_be_from_charset for m in ties):
            try:
                return data.decode(encoding), f"decoded as {encoding} (not UTF-8)"
            except UnicodeDecodeError:
                continue
    return str(best), f"decoded as {best.encoding} (not UTF-8)"


_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def _looks_binary(data: bytes) -> bool:
    """Images, archives and other binary files are full of control bytes; a text file
    with a stray NUL or escape is still text (the stray bytes are removed later)."""
    sample = data[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > 0 and controls * 20 > len(sample)
