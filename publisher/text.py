"""Pure text helpers shared by every stage: no I/O, no third-party imports."""

from __future__ import annotations

import re
import unicodedata

# XML 1.0 allows #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]; of
# those, HTML also forbids the C1 controls U+0080-U+009F (and XML discourages them).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_LINE_BREAKS = re.compile(r"[\r\n\u0085\u2028\u2029\x0b\x0c\x1c-\x1e]+")
_SPACES = re.compile(r"\s+")


def xml_safe(text: str) -> str:
    """Remove the characters XML 1.0 or HTML forbid (C0 and C1 controls but tab and
    line breaks, DEL, surrogates, U+FFFE/U+FFFF), so feeds stay well-formed and valid."""
    return _XML_FORBIDDEN.sub("", text)


def single_line(text: str) -> str:
    """One line of plain text: no control characters, no line breaks, spaces folded.

    Used for titles, names and anything that may reach a mail header.
    """
    if text.isprintable():  # the usual case: no control, format or separator characters
        return _SPACES.sub(" ", text).strip()
    text = _LINE_BREAKS.sub(" ", text)
    text = "".join(
        ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cs") and ch not in "\ufffe\uffff"
    )
    return _SPACES.sub(" ", text).strip()


def slugify(text: str, max_length: int = 80, max_bytes: int = 200) -> str:
    """A lowercase slug that keeps every script's letters and digits.

    Latin letters lose their accents ("Café" -> "cafe", as slugs always were: a
    slug once given never changes); letters of other scripts stay as they are, in
    NFC ("서울 지하철 9호선" -> "서울-지하철-9호선"), so a Korean title gives a readable
    slug (percent-encoded in URLs, a valid IRI). Text without letters or digits
    gives "". At most ``max_length`` characters and ``max_bytes`` bytes of UTF-8 (a
    file name must stay within 255 bytes)."""
    kept = []
    for ch in unicodedata.normalize("NFKC", text):
        latin = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii")
        if latin:
            kept.append(latin)
        elif unicodedata.category(ch)[0] in "LN":
            kept.append(ch)
        elif unicodedata.category(ch)[0] in "PSZ" and ch not in _APOSTROPHES:
            kept.append("-")  # "3·1절" -> "3-1절"
        # else: a combining mark or an apostrophe ("Seoul’s" -> "seouls"): dropped
    slug = _NOT_WORD.sub("-", "".join(kept)).strip("-").lower()
    slug = unicodedata.normalize("NFC", slug[:max_length])
    while len(slug.encode("utf-8")) > max_bytes:
        slug = slug[:-1]
    return slug.rstrip("-")


_APOSTROPHES = "\u2019\u2018\u02bc\u2032"
_NOT_WORD = re.compile(r"[\W_]+")


def name_case(name: str) -> str:
    """Ordinary capitalisation for an upper-case byline name.

    "JEONG JAE-HONG" -> "Jeong Jae-hong" (Korean given names keep one capital),
    "MARY O'NEIL" -> "Mary O'Neil".
    """
    words = []
    for word in single_line(name).split(" "):
        if not word:
            continue
        parts = word.lower().split("-")
        parts[0] = _cap(parts[0])
        words.append("-".join(parts))
    return " ".join(words)


def _cap(word: str) -> str:
    if "'" in word:
        head, _, tail = word.partition("'")
        return f"{head[:1].upper()}{head[1:]}'{tail[:1].upper()}{tail[1:]}"
    return word[:1].upper() + word[1:]


def summarize(text: str, limit: int = 280) -> str:
    """The first ``limit`` characters of plain text, cut at a word, with an ellipsis."""
    text = single_line(text)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


# A full stop, ! or ? (and closing quotes) before a space and a word that does not go
# on in lower case ("e.g. this" is one sentence), or a CJK full stop.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s+[^\sa-z])|[。！？]")


def title_from_text(text: str, limit: int = 80) -> str:
    """A title for an item that has none (a microblog post): the first sentence of its
    text, shortened on a word boundary to at most ``limit`` characters with an ellipsis."""
    text = single_line(text)
    if m := _SENTENCE_END.search(text):
        text = text[: m.end()]
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :] or text[limit - 1] == " ":
        cut = cut if text[limit - 1] == " " else cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:-–— ") + "…"
