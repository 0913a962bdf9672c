"""Bytes to text: UTF-8 first (a UTF-16 byte order mark is honoured), then a detected legacy encoding (EUC-KR/CP949,
Windows-1252 ...) via charset-normalizer; binary files are refused. ``decode_document`` does the same for a
downloaded feed, honouring the encoding it declares and the one its server names before detecting."""

from __future__ import annotations

import codecs
import re

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
    from charset_normalizer import from_bytes  # only for what is not UTF-8: ~25 ms to import

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


# What labels mean in practice (the WHATWG Encoding Standard's reading): EUC-KR and its
# aliases are written as CP949 (its superset, with the 8,822 extra Hangul syllables);
# ISO-8859-1 and US-ASCII as Windows-1252 (curly quotes and dashes in 0x80-0x9F).
LABELS = {
    "euc-kr": "cp949",
    "euc_kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601_1987": "cp949",
    "ksc5601": "cp949",
    "korean": "cp949",
    "windows-949": "cp949",
    "uhc": "cp949",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}
_XML_DECLARATION = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def codec(label: str) -> str | None:
    """The Python codec for an encoding label, None when there is none."""
    name = LABELS.get(label.strip().lower(), label.strip().lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_document(data: bytes, content_type: str = "") -> tuple[str | None, str | None]:
    """A downloaded feed as text: (text, note). In order: a byte order mark; UTF-8
    when the bytes are valid UTF-8 (no legacy text is by accident); the encoding the
    document declares (XML declaration), then the one the server names (Content-Type
    charset) -- each read as the Encoding Standard reads it; then detection."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(name), None if name == "utf-8" else f"decoded as {name}"
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    declared = []
    if m := _XML_DECLARATION.match(data[:512]):
        declared.append(("declared in the document", m.group(1).decode("ascii")))
    if m := _CHARSET.search(content_type):
        declared.append(("named by the server", m.group(1)))
    for where, label in declared:
        name = codec(label)
        if name is None or name == "utf-8":
            continue
        try:
            return data.decode(name), f"decoded as {name} ({label} {where})"
        except UnicodeDecodeError:
            continue
    text, note = decode(data)
    return text, note
